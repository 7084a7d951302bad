//! The compaction-aware checks, both ways: each fed a history with its anomaly must catch it, and a legal
//! compacted history must pass.

use std::collections::{BTreeMap, BTreeSet};

use super::compare_records;
use crate::checker::{check, CheckInput, CheckReport, FinalState, ProducerFacts, ReplicaLog};
use crate::history::{History, OpBody, OpType, ReadRecord};

/// A history on topic `t` partition 0, compacted or not.
struct C {
    h: History,
    logs: Vec<ReplicaLog>,
    compacted: bool,
}

/// `t`'s `delete.retention.ms` in these histories: times are µs, so a tombstone may expire 1,000 µs after
/// its send was invoked.
const DELETE_RETENTION_MS: i64 = 1;

/// Records as read; a value starting with `del` is a tombstone (sent with [`C::tombstone`]).
fn records(recs: &[(i64, &str)]) -> Vec<ReadRecord> {
    recs.iter()
        .map(|(o, v)| ReadRecord {
            offset: *o,
            value: v.to_string(),
            tombstone: v.starts_with("del"),
        })
        .collect()
}

fn log(node: &str, recs: &[(i64, &str)]) -> ReplicaLog {
    ReplicaLog {
        node: node.into(),
        topic: "t".into(),
        partition: 0,
        high_watermark: recs.last().map_or(0, |r| r.0 + 1),
        log_start_offset: 0,
        records: records(recs),
        batches: vec![],
    }
}

impl C {
    fn new(compacted: bool) -> C {
        C {
            h: History::default(),
            logs: vec![],
            compacted,
        }
    }

    /// An acked send of `value` with key `key` at `offset` (a tombstone when `value` starts with `del`).
    fn acked(&mut self, t: u64, key: &str, value: &str, offset: i64) -> &mut Self {
        let body = |offset| OpBody::Send {
            topic: "t".into(),
            partition: 0,
            key: key.into(),
            value: value.into(),
            offset,
            tombstone: value.starts_with("del"),
        };
        self.h.push(t, "p", OpType::Invoke, body(None), None);
        self.h.push(t + 1, "p", OpType::Ok, body(Some(offset)), None);
        self
    }

    /// A send whose outcome is unknown (it may have landed).
    fn info(&mut self, t: u64, key: &str, value: &str) -> &mut Self {
        let body = OpBody::Send {
            topic: "t".into(),
            partition: 0,
            key: key.into(),
            value: value.into(),
            offset: None,
            tombstone: false,
        };
        self.h.push(t, "p", OpType::Invoke, body.clone(), None);
        self.h.push(t + 1, "p", OpType::Info, body, None);
        self
    }

    fn poll(&mut self, t: u64, process: &str, from: i64, recs: &[(i64, &str)]) -> &mut Self {
        let body = OpBody::Poll {
            topic: "t".into(),
            partition: 0,
            fetch_offset: from,
            records: records(recs),
        };
        self.h.push(t, process, OpType::Ok, body, None);
        self
    }

    fn final_log(&mut self, recs: &[(i64, &str)]) -> &mut Self {
        self.logs.push(log("broker-1", recs));
        self
    }

    fn check(&self) -> CheckReport {
        let producers = BTreeMap::from([(
            "p".to_string(),
            ProducerFacts {
                acks: -1,
                idempotence: true,
                retries: 5,
                max_in_flight: 5,
            },
        )]);
        let compacted: BTreeSet<String> = if self.compacted {
            BTreeSet::from(["t".to_string()])
        } else {
            BTreeSet::new()
        };
        let final_state = FinalState {
            replica_logs: self.logs.clone(),
            liveness_failures: vec![],
        };
        check(&CheckInput {
            ops: &self.h.ops,
            states: &[],
            raft_states: &[],
            metadata_states: &[],
            final_state: &final_state,
            producers: &producers,
            min_insync_replicas: &BTreeMap::new(),
            compacted_topics: &compacted,
            delete_retention_ms: &BTreeMap::from([("t".to_string(), DELETE_RETENTION_MS)]),
        })
    }
}

fn violations(r: &CheckReport, class: &str) -> u64 {
    r.violations()[class]
}

/// k1 written at 0 and 2, k2 at 1 and 3; the cleaner kept each key's latest.
fn cleaned(compacted: bool) -> C {
    let mut c = C::new(compacted);
    c.acked(1, "k1", "a", 0)
        .acked(3, "k2", "b", 1)
        .acked(5, "k1", "c", 2)
        .acked(7, "k2", "d", 3)
        .poll(20, "drain", 0, &[(2, "c"), (3, "d")])
        .final_log(&[(2, "c"), (3, "d")]);
    c
}

#[test]
fn an_acked_record_below_a_later_record_of_its_key_may_be_compacted_away() {
    let r = cleaned(true).check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!((r.acked, r.compacted), (4, 2));
}

#[test]
fn the_same_gaps_on_a_topic_without_compaction_are_lost_writes() {
    let r = cleaned(false).check();
    assert_eq!(violations(&r, "lost-write"), 2, "{:?}", r.anomalies);
    assert_eq!(r.compacted, 0);
}

#[test]
fn a_keys_latest_record_missing_is_a_lost_write_even_when_compacted() {
    // The cleaner kept k1's older record and dropped its latest: the latest has no later record above it.
    let r = C::new(true)
        .acked(1, "k1", "a", 0)
        .acked(3, "k1", "b", 1)
        .acked(5, "k2", "c", 2)
        .poll(20, "drain", 0, &[(0, "a"), (2, "c")])
        .final_log(&[(0, "a"), (2, "c")])
        .check();
    assert_eq!(violations(&r, "lost-write"), 1, "{:?}", r.anomalies);
    assert_eq!(r.anomalies[0].value.as_deref(), Some("b"));
}

#[test]
fn a_record_of_another_key_above_does_not_excuse_a_missing_one() {
    let r = C::new(true)
        .acked(1, "k1", "a", 0)
        .acked(3, "k2", "b", 1)
        .poll(20, "drain", 0, &[(1, "b")])
        .final_log(&[(1, "b")])
        .check();
    assert_eq!(violations(&r, "lost-write"), 1, "{:?}", r.anomalies);
}

#[test]
fn a_later_landed_info_send_of_the_key_counts_as_superseding() {
    // `b`'s send ended info, but a reader saw it at offset 1: it landed, above `a` of the same key.
    let r = C::new(true)
        .acked(1, "k1", "a", 0)
        .info(3, "k1", "b")
        .poll(10, "c1", 1, &[(1, "b")])
        .poll(20, "drain", 0, &[(1, "b")])
        .final_log(&[(1, "b")])
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!(r.compacted, 1);
}

#[test]
fn a_read_record_compacted_away_later_is_not_read_then_lost() {
    let r = C::new(true)
        .acked(1, "k1", "a", 0)
        .acked(3, "k1", "b", 1)
        .poll(10, "c1", 0, &[(0, "a"), (1, "b")])
        .poll(20, "drain", 0, &[(1, "b")])
        .final_log(&[(1, "b")])
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
}

#[test]
fn a_read_record_gone_without_a_later_record_of_its_key_is_read_then_lost() {
    let r = C::new(true)
        .info(1, "k1", "a")
        .acked(3, "k2", "b", 1)
        .poll(10, "c1", 0, &[(0, "a"), (1, "b")])
        .poll(20, "drain", 0, &[(1, "b")])
        .final_log(&[(1, "b")])
        .check();
    assert_eq!(violations(&r, "read-then-lost"), 1, "{:?}", r.anomalies);
}

#[test]
fn a_consumer_jumping_over_compacted_offsets_is_no_poll_skip() {
    // c1 read everything before the cleaner ran; c2 read after it: offset 1 (k2, superseded at 3) is gone.
    let r = C::new(true)
        .acked(1, "k1", "a", 0)
        .acked(3, "k2", "b", 1)
        .acked(5, "k1", "c", 2)
        .acked(7, "k2", "d", 3)
        .poll(10, "c1", 0, &[(0, "a"), (1, "b"), (2, "c"), (3, "d")])
        .poll(15, "c2", 0, &[(0, "a")])
        .poll(16, "c2", 1, &[(2, "c"), (3, "d")])
        .poll(20, "drain", 0, &[(0, "a"), (2, "c"), (3, "d")])
        .final_log(&[(0, "a"), (2, "c"), (3, "d")])
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
}

#[test]
fn a_consumer_jumping_over_a_keys_latest_record_is_a_poll_skip() {
    // Offset 2 holds k1's latest: no cleaner removes it, so c2 jumping from 0 to 3 skipped it.
    let r = C::new(true)
        .acked(1, "k1", "a", 0)
        .acked(3, "k2", "b", 1)
        .acked(5, "k1", "c", 2)
        .acked(7, "k2", "d", 3)
        .poll(10, "c1", 0, &[(0, "a"), (1, "b"), (2, "c"), (3, "d")])
        .poll(15, "c2", 0, &[(0, "a")])
        .poll(16, "c2", 1, &[(3, "d")])
        .poll(20, "drain", 0, &[(2, "c"), (3, "d")])
        .final_log(&[(2, "c"), (3, "d")])
        .check();
    assert_eq!(violations(&r, "poll-skip"), 1, "{:?}", r.anomalies);
}

#[test]
fn a_fresh_read_that_misses_a_keys_latest_record_seen_elsewhere_is_stale_latest() {
    // A consumer read k1's latest `b` at 1 and a replica still holds it, but the drain from the log start
    // returned only the older `a` and read on past offset 1.
    let mut c = C::new(true);
    c.acked(1, "k1", "a", 0)
        .info(3, "k1", "b")
        .acked(5, "k2", "c", 2)
        .poll(10, "c1", 0, &[(0, "a"), (1, "b"), (2, "c")])
        .poll(20, "drain", 0, &[(0, "a"), (2, "c")])
        .final_log(&[(0, "a"), (2, "c")]);
    c.logs.push(log("broker-2", &[(1, "b"), (2, "c")]));
    let r = c.check();
    assert_eq!(violations(&r, "stale-latest"), 1, "{:?}", r.anomalies);
    assert_eq!(
        r.anomalies
            .iter()
            .find(|a| a.class == "stale-latest")
            .and_then(|a| a.offset),
        Some(1)
    );
}

#[test]
fn a_fresh_read_may_show_older_values_besides_each_keys_latest() {
    // Uncleaned segments still hold k1's `a`: legal, as long as the latest `b` is there too.
    let r = C::new(true)
        .acked(1, "k1", "a", 0)
        .acked(3, "k1", "b", 1)
        .poll(20, "drain", 0, &[(0, "a"), (1, "b")])
        .final_log(&[(0, "a"), (1, "b")])
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!(r.compacted, 0);
}

fn key_of() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([("a", "k1"), ("b", "k2"), ("c", "k1"), ("d", "k2")])
}

#[test]
fn replicas_compacted_at_different_times_agree_offset_by_offset() {
    let leader = log("broker-1", &[(2, "c"), (3, "d")]);
    let follower = log("broker-2", &[(0, "a"), (1, "b"), (2, "c"), (3, "d")]);
    assert_eq!(
        compare_records(&leader, &follower, 0, 4, &key_of(), &|_, _| false),
        None
    );
    assert_eq!(
        compare_records(&follower, &leader, 0, 4, &key_of(), &|_, _| false),
        None
    );
}

#[test]
fn replicas_holding_different_values_at_one_offset_diverge() {
    let leader = log("broker-1", &[(0, "a"), (1, "b")]);
    let follower = log("broker-2", &[(0, "c"), (1, "b")]);
    let d = compare_records(&leader, &follower, 0, 2, &key_of(), &|_, _| false).expect("divergence");
    assert!(d.contains("offset 0"), "{d}");
}

#[test]
fn a_replica_lacking_a_record_without_a_later_one_of_its_key_diverges() {
    // The follower dropped k1's latest `c` at 2 while keeping nothing of k1 above it.
    let leader = log("broker-1", &[(0, "a"), (1, "b"), (2, "c")]);
    let follower = log("broker-2", &[(0, "a"), (1, "b")]);
    let d = compare_records(&leader, &follower, 0, 3, &key_of(), &|_, _| false).expect("divergence");
    assert!(d.contains("broker-2 lacks offset 2"), "{d}");
}

/// replica-divergence over a leader (broker-1) and a follower (broker-2) of t-0, both in the ISR, on a
/// compacted topic or not.
fn divergence(leader: ReplicaLog, follower: ReplicaLog, hw: i64, compacted: bool) -> Vec<crate::checker::Anomaly> {
    use crate::history::{Leadership, MetadataState, ReplicaState};
    let mut h = History::default();
    for (value, key) in key_of() {
        let body = OpBody::Send {
            topic: "t".into(),
            partition: 0,
            key: key.into(),
            value: value.into(),
            offset: None,
            tombstone: false,
        };
        h.push(1, "p", OpType::Invoke, body, None);
    }
    let metadata = vec![MetadataState {
        time_us: 1,
        node: "controller-1".into(),
        incarnation: 1,
        offset: 10,
        fenced: vec![],
        brokers: vec![1, 2],
        partitions: BTreeMap::from([(
            "t-0".to_string(),
            Leadership {
                leader: 1,
                leader_epoch: 2,
                isr: vec![1, 2],
            },
        )]),
    }];
    let states = vec![ReplicaState {
        time_us: 1,
        node: "broker-1".into(),
        incarnation: 1,
        topic: "t".into(),
        partition: 0,
        leader: 1,
        leader_epoch: 2,
        isr: vec![1, 2],
        log_start_offset: 0,
        log_end_offset: hw,
        high_watermark: hw,
    }];
    let final_state = FinalState {
        replica_logs: vec![leader, follower],
        liveness_failures: vec![],
    };
    let topics: BTreeSet<String> = if compacted {
        BTreeSet::from(["t".to_string()])
    } else {
        BTreeSet::new()
    };
    let input = CheckInput {
        ops: &h.ops,
        states: &states,
        raft_states: &[],
        metadata_states: &metadata,
        final_state: &final_state,
        producers: &BTreeMap::new(),
        min_insync_replicas: &BTreeMap::new(),
        compacted_topics: &topics,
        delete_retention_ms: &BTreeMap::from([("t".to_string(), DELETE_RETENTION_MS)]),
    };
    crate::checker::replicas::replica_divergence(&input, &BTreeSet::new())
}

/// A log whose batches are one per record, the batch CRC telling the cleaned copy (`cleaned`) apart.
fn digested(node: &str, recs: &[(i64, &str)], cleaned: bool) -> ReplicaLog {
    let mut l = log(node, recs);
    l.batches = recs
        .iter()
        .map(|(o, _)| crate::checker::BatchDigest {
            base_offset: *o,
            last_offset: *o,
            partition_leader_epoch: 1,
            batch_length: 70,
            crc: *o as u32 + if cleaned { 1000 } else { 0 },
        })
        .collect();
    l
}

#[test]
fn replica_divergence_compares_a_compacted_topics_replicas_record_by_record() {
    // The leader's cleaner rewrote its batches; the follower's has not run yet: batches differ, records agree.
    let leader = digested("broker-1", &[(2, "c"), (3, "d")], true);
    let follower = digested("broker-2", &[(0, "a"), (1, "b"), (2, "c"), (3, "d")], false);
    let a = divergence(leader.clone(), follower.clone(), 4, true);
    assert!(a.is_empty(), "{a:?}");
    // Without compaction the same logs diverge batch by batch.
    let a = divergence(leader, follower, 4, false);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0].class, "replica-divergence");
}

#[test]
fn replica_divergence_on_a_compacted_topic_catches_a_replica_missing_a_keys_latest() {
    let leader = digested("broker-1", &[(0, "a"), (1, "b"), (2, "c"), (3, "d")], false);
    let follower = digested("broker-2", &[(0, "a"), (1, "b"), (3, "d")], true);
    let a = divergence(leader, follower, 4, true);
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(a[0].detail.contains("broker-2 lacks offset 2"), "{}", a[0].detail);
    assert!(a[0].explained_by.is_none());
}

/// k1: `a` at 0, then its tombstone `del1` at 1 (invoked at 10 µs, so it may expire from 1,010 µs); k2: `b`
/// at 2. A drain at `drain_us` reads `drained`; the final log holds the same.
fn deleted(drain_us: u64, drained: &[(i64, &str)]) -> C {
    let mut c = C::new(true);
    c.acked(1, "k1", "a", 0)
        .acked(10, "k1", "del1", 1)
        .acked(20, "k2", "b", 2)
        .poll(drain_us, "drain", 0, drained)
        .final_log(drained);
    c
}

#[test]
fn an_expired_tombstone_may_be_gone_with_every_older_value_of_its_key() {
    let r = deleted(5_000, &[(2, "b")]).check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!(r.compacted, 2, "a below the tombstone, the tombstone expired");
}

#[test]
fn a_tombstone_gone_before_delete_retention_ms_passed_is_a_lost_write() {
    let r = deleted(500, &[(2, "b")]).check();
    assert_eq!(violations(&r, "lost-write"), 1, "{:?}", r.anomalies);
    let a = r.anomalies.iter().find(|a| a.class == "lost-write").expect("found");
    assert_eq!((a.offset, a.value.as_deref()), (Some(1), Some("del1")));
    // The value below it is no loss: the tombstone is a later record of its key.
    assert_eq!(r.compacted, 1);
}

#[test]
fn a_tombstone_over_an_older_uncleaned_value_passes_and_reads_as_no_phantom() {
    let r = deleted(500, &[(0, "a"), (1, "del1"), (2, "b")]).check();
    assert!(r.passed(), "{:?}", r.anomalies);
    let r = deleted(5_000, &[(1, "del1"), (2, "b")]).check();
    assert!(r.passed(), "an expired tombstone may also stay: {:?}", r.anomalies);
}

#[test]
fn an_older_value_returned_without_its_expired_tombstone_is_resurrected() {
    let r = deleted(5_000, &[(0, "a"), (2, "b")]).check();
    assert_eq!(violations(&r, "resurrected"), 1, "{:?}", r.anomalies);
    let a = r.anomalies.iter().find(|a| a.class == "resurrected").expect("found");
    assert_eq!((a.offset, a.value.as_deref()), (Some(1), Some("del1")));
    assert!(a.detail.contains("returned a at offset 0"), "{}", a.detail);
    // Without compaction, the tombstone is a plain record that was lost.
    let mut c = deleted(5_000, &[(0, "a"), (2, "b")]);
    c.compacted = false;
    let r = c.check();
    assert_eq!((violations(&r, "resurrected"), violations(&r, "lost-write")), (0, 1));
}

#[test]
fn a_tombstone_read_then_gone_is_lost_only_before_it_could_expire() {
    for (end_us, lost) in [(5_000, false), (600, true)] {
        let mut c = C::new(true);
        c.acked(1, "k1", "a", 0)
            .acked(10, "k1", "del1", 1)
            .acked(20, "k2", "b", 2)
            .poll(100, "c1", 0, &[(0, "a"), (1, "del1"), (2, "b")])
            .poll(end_us, "drain", 0, &[(2, "b")])
            .final_log(&[(2, "b")]);
        let r = c.check();
        let found = (violations(&r, "read-then-lost"), violations(&r, "stale-latest"));
        assert_eq!(
            found,
            if lost { (1, 1) } else { (0, 0) },
            "end {end_us}: {:?}",
            r.anomalies
        );
    }
}

#[test]
fn a_consumer_may_jump_over_an_expired_tombstone_but_not_a_live_one() {
    for (second_poll_us, skip) in [(5_000, false), (600, true)] {
        let mut c = C::new(true);
        c.acked(1, "k1", "a", 0)
            .acked(10, "k1", "del1", 1)
            .acked(20, "k2", "b", 2)
            .poll(50, "c1", 0, &[(0, "a"), (1, "del1")])
            .poll(100, "c2", 0, &[(0, "a")])
            .poll(second_poll_us, "c2", 1, &[(2, "b")])
            .poll(second_poll_us + 10, "drain", 0, &[(1, "del1"), (2, "b")])
            .final_log(&[(1, "del1"), (2, "b")]);
        let r = c.check();
        let expected = u64::from(skip);
        assert_eq!(
            violations(&r, "poll-skip"),
            expected,
            "{second_poll_us}: {:?}",
            r.anomalies
        );
    }
}

#[test]
fn broker_clock_skew_lets_a_tombstone_expire_early_by_twice_the_skew() {
    let mut c = deleted(500, &[(2, "b")]);
    let detail = BTreeMap::from([("skew_ms".to_string(), serde_json::json!(-1))]);
    let fault = OpBody::Fault {
        kind: "clock_skew".into(),
        target: "node:broker-1".into(),
        phase: crate::history::FaultPhase::Start,
        detail,
    };
    c.h.push(2, "nemesis", OpType::Info, fault, None);
    // Expiry moves from 1,010 µs to 1,010 - 2,000 µs: a drain at 500 µs may miss the tombstone.
    let r = c.check();
    assert!(r.passed(), "{:?}", r.anomalies);
}

#[test]
fn replicas_may_differ_by_an_expired_tombstone_and_the_values_below_it() {
    let key_of = BTreeMap::from([("a", "k1"), ("del1", "k1"), ("b", "k2")]);
    let uncleaned = log("broker-1", &[(0, "a"), (1, "del1"), (2, "b")]);
    let cleaned = log("broker-2", &[(2, "b")]);
    // `a` at 0 lies below the expired tombstone at 1, which deletes it.
    let deleted = |o: i64, v: &str| v == "del1" || (v == "a" && o < 1);
    assert_eq!(compare_records(&uncleaned, &cleaned, 0, 3, &key_of, &deleted), None);
    assert_eq!(compare_records(&cleaned, &uncleaned, 0, 3, &key_of, &deleted), None);
    let d = compare_records(&uncleaned, &cleaned, 0, 3, &key_of, &|_, _| false).expect("not yet expired");
    assert!(d.contains("broker-2 lacks offset 0"), "{d}");
    // A replica that kept an older value but lost the tombstone above it resurrected the key.
    let resurrected = log("broker-2", &[(0, "a"), (2, "b")]);
    let kept = log("broker-1", &[(1, "del1"), (2, "b")]);
    let d = compare_records(&kept, &resurrected, 0, 3, &key_of, &|_, _| false).expect("differs");
    assert!(d.contains("lacks offset 1"), "{d}");
}

#[test]
fn a_tombstone_whose_send_outcome_is_unknown_may_have_deleted_its_key_unseen() {
    // k1's `a` is gone and nobody saw anything above it: only a tombstone that may have landed explains it.
    let history = |tombstone_info: bool| {
        let mut c = C::new(true);
        c.acked(1, "k1", "a", 0).acked(20, "k2", "b", 2);
        if tombstone_info {
            let body = OpBody::Send {
                topic: "t".into(),
                partition: 0,
                key: "k1".into(),
                value: "del1".into(),
                offset: None,
                tombstone: true,
            };
            c.h.push(10, "p", OpType::Invoke, body.clone(), None);
            c.h.push(11, "p", OpType::Info, body, Some("timeout".into()));
        }
        c.poll(5_000, "drain", 0, &[(2, "b")]).final_log(&[(2, "b")]);
        c.check()
    };
    let r = history(true);
    assert!(r.passed(), "{:?}", r.anomalies);
    let r = history(false);
    assert_eq!(violations(&r, "lost-write"), 1, "{:?}", r.anomalies);
}

#[test]
fn a_landed_tombstone_deletes_its_keys_older_records_once_it_may_have_expired() {
    let mut c = deleted(5_000, &[(2, "b")]);
    c.final_log(&[(1, "del1"), (2, "b")]);
    let final_state = FinalState {
        replica_logs: c.logs.clone(),
        liveness_failures: vec![],
    };
    let compacted = BTreeSet::from(["t".to_string()]);
    let retention = BTreeMap::from([("t".to_string(), DELETE_RETENTION_MS)]);
    let input = CheckInput {
        ops: &c.h.ops,
        states: &[],
        raft_states: &[],
        metadata_states: &[],
        final_state: &final_state,
        producers: &BTreeMap::new(),
        min_insync_replicas: &BTreeMap::new(),
        compacted_topics: &compacted,
        delete_retention_ms: &retention,
    };
    let t = crate::checker::tombstones::Tombstones::build(&input);
    let tp = ("t".to_string(), 0);
    assert!(
        t.deletes_below(&tp, "k1", 0, 1_010).is_some(),
        "the acked tombstone at 1 expired"
    );
    assert!(t.deletes_below(&tp, "k1", 0, 1_009).is_none(), "not yet");
    assert!(
        t.deletes_below(&tp, "k1", 1, 5_000).is_none(),
        "nothing above the tombstone itself"
    );
    assert!(t.deletes_below(&tp, "k2", 0, 5_000).is_none(), "k2 has no tombstone");
}
