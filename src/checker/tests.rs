//! Every checker is fed a history with its anomaly and must catch it; legal Kafka behaviour must pass.

use std::collections::BTreeMap;

use super::*;
use crate::history::{FaultPhase, History, OpBody, OpType, ReadRecord, ReplicaState};
use crate::types::TopicPartition;

struct H {
    h: History,
    producers: BTreeMap<String, ProducerFacts>,
    logs: Vec<ReplicaLog>,
    min_isr: BTreeMap<String, u32>,
}

impl H {
    fn new() -> H {
        let mut producers = BTreeMap::new();
        producers.insert(
            "p".to_string(),
            ProducerFacts {
                acks: 1,
                idempotence: false,
                retries: 0,
                max_in_flight: 5,
            },
        );
        H {
            h: History::default(),
            producers,
            logs: vec![],
            min_isr: BTreeMap::new(),
        }
    }

    fn send(&mut self, t: u64, value: &str, ty: OpType, offset: Option<i64>) -> &mut Self {
        self.h.push(t, "p", OpType::Invoke, send_body(value, None), None);
        self.h.push(t + 1, "p", ty, send_body(value, offset), None);
        self
    }

    fn invoke(&mut self, t: u64, value: &str) -> &mut Self {
        self.h.push(t, "p", OpType::Invoke, send_body(value, None), None);
        self
    }

    fn ack(&mut self, t: u64, value: &str, offset: i64) -> &mut Self {
        self.h.push(t, "p", OpType::Ok, send_body(value, Some(offset)), None);
        self
    }

    fn poll(&mut self, t: u64, process: &str, from: i64, recs: &[(i64, &str)]) -> &mut Self {
        let records = recs
            .iter()
            .map(|(o, v)| ReadRecord {
                offset: *o,
                value: v.to_string(),
                tombstone: false,
            })
            .collect();
        let body = OpBody::Poll {
            topic: "t".into(),
            partition: 0,
            fetch_offset: from,
            records,
        };
        self.h.push(t, process, OpType::Ok, body, None);
        self
    }

    fn power_loss(&mut self, t: u64, frontier: i64) -> &mut Self {
        let mut detail = BTreeMap::new();
        detail.insert("node".to_string(), serde_json::json!("broker-1"));
        detail.insert("frontier".to_string(), serde_json::json!({ "t-0": frontier }));
        let body = OpBody::Fault {
            kind: "power_loss".into(),
            target: "node:broker-1".into(),
            phase: FaultPhase::Start,
            detail,
        };
        self.h.push(t, "nemesis", OpType::Info, body, None);
        self
    }

    fn restart(&mut self, t: u64) -> &mut Self {
        let detail = BTreeMap::from([("node".to_string(), serde_json::json!("broker-1"))]);
        let body = OpBody::Fault {
            kind: "restart".into(),
            target: "node:broker-1".into(),
            phase: FaultPhase::End,
            detail,
        };
        self.h.push(t, "nemesis", OpType::Info, body, None);
        self
    }

    fn op(&mut self, t: u64, process: &str, ty: OpType, body: OpBody) -> &mut Self {
        self.h.push(t, process, ty, body, None);
        self
    }

    fn commit_as(&mut self, t: u64, process: &str, offset: i64, ty: OpType) -> &mut Self {
        let body = OpBody::Commit {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            offset,
            generation: 1,
        };
        self.op(t, process, OpType::Invoke, body.clone())
            .op(t + 1, process, ty, body)
    }

    fn commit(&mut self, t: u64, process: &str, offset: i64) -> &mut Self {
        self.commit_as(t, process, offset, OpType::Ok)
    }

    fn sync(&mut self, t: u64, process: &str, generation: i32, owns: bool) -> &mut Self {
        let assignment = if owns {
            vec![TopicPartition {
                topic: "t".into(),
                partition: 0,
            }]
        } else {
            vec![]
        };
        let join = OpBody::Join {
            group: "g".into(),
            member_id: Some(format!("{process}-m")),
            generation: Some(generation),
        };
        let body = OpBody::Sync {
            group: "g".into(),
            generation,
            member_id: format!("{process}-m"),
            assignment,
        };
        self.op(t, process, OpType::Ok, join).op(t, process, OpType::Ok, body)
    }

    fn seek(&mut self, t: u64, process: &str, offset: i64) -> &mut Self {
        let body = OpBody::Seek {
            topic: "t".into(),
            partition: 0,
            offset,
        };
        self.op(t, process, OpType::Ok, body)
    }

    fn log_from(&mut self, log_start_offset: i64, recs: &[(i64, &str)]) -> &mut Self {
        self.log(recs);
        if let Some(l) = self.logs.last_mut() {
            l.log_start_offset = log_start_offset;
        }
        self
    }

    fn log(&mut self, recs: &[(i64, &str)]) -> &mut Self {
        let records: Vec<ReadRecord> = recs
            .iter()
            .map(|(o, v)| ReadRecord {
                offset: *o,
                value: v.to_string(),
                tombstone: false,
            })
            .collect();
        let hw = records.last().map_or(0, |r| r.offset + 1);
        self.logs.push(ReplicaLog {
            node: "broker-1".into(),
            topic: "t".into(),
            partition: 0,
            high_watermark: hw,
            log_start_offset: 0,
            records,
            batches: vec![],
        });
        self
    }

    fn check(&self) -> CheckReport {
        let final_state = FinalState {
            replica_logs: self.logs.clone(),
            liveness_failures: vec![],
        };
        check(&CheckInput {
            ops: &self.h.ops,
            states: &self.h.states,
            raft_states: &self.h.raft_states,
            metadata_states: &self.h.metadata_states,
            final_state: &final_state,
            producers: &self.producers,
            min_insync_replicas: &self.min_isr,
            compacted_topics: &std::collections::BTreeSet::new(),
            delete_retention_ms: &std::collections::BTreeMap::new(),
        })
    }
}

fn send_body(value: &str, offset: Option<i64>) -> OpBody {
    OpBody::Send {
        topic: "t".into(),
        partition: 0,
        key: "k".into(),
        value: value.into(),
        offset,
        tombstone: false,
    }
}

fn violations(r: &CheckReport, class: &str) -> u64 {
    r.violations()[class]
}

#[test]
fn a_clean_history_passes_with_every_class_at_zero() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(5, "b", OpType::Ok, Some(1))
        .log(&[(0, "a"), (1, "b")])
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!(r.acked, 2);
    assert_eq!(r.violations().len(), CLASSES.len());
}

#[test]
fn an_acked_write_missing_below_the_highest_read_is_a_lost_write() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(5, "b", OpType::Ok, Some(1))
        .log(&[(1, "b")])
        .check();
    assert_eq!(violations(&r, "lost-write"), 1, "{:?}", r.anomalies);
    assert!(!r.passed());
}

#[test]
fn an_acked_write_never_read_above_every_read_is_unseen() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(5, "b", OpType::Ok, Some(1))
        .log(&[(0, "a")])
        .check();
    assert_eq!(violations(&r, "unseen"), 1, "{:?}", r.anomalies);
}

#[test]
fn acked_writes_below_the_final_log_start_were_removed_by_retention_not_lost() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Ok, Some(1))
        .send(5, "c", OpType::Ok, Some(2))
        .log_from(2, &[(2, "c")])
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    assert_eq!((r.acked, r.removed), (3, 2));
}

#[test]
fn an_acked_write_at_or_above_the_log_start_that_is_gone_is_still_lost() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Ok, Some(1))
        .send(3, "c", OpType::Ok, Some(2))
        .send(5, "d", OpType::Ok, Some(3))
        .log_from(1, &[(3, "d")])
        .check();
    // Offset 0 went with retention; offsets 1 and 2 lie above the log start and were never read.
    assert_eq!(r.removed, 1);
    assert_eq!(violations(&r, "lost-write"), 2, "{:?}", r.anomalies);
}

#[test]
fn a_log_start_a_leader_reported_in_the_state_trace_explains_removals_too() {
    let mut h = H::new();
    h.send(1, "a", OpType::Ok, Some(0)).send(2, "b", OpType::Ok, Some(1));
    h.h.states.push(crate::history::ReplicaState {
        time_us: 3,
        node: "broker-1".into(),
        incarnation: 0,
        topic: "t".into(),
        partition: 0,
        leader: 1,
        leader_epoch: 0,
        isr: vec![1],
        log_start_offset: 1,
        log_end_offset: 2,
        high_watermark: 2,
    });
    let r = h.log(&[(1, "b")]).check();
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    assert_eq!(r.removed, 1);
}

#[test]
fn a_loss_beyond_the_durable_frontier_of_a_later_power_loss_is_explained() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(5, "b", OpType::Ok, Some(1))
        .power_loss(10, 1)
        .send(20, "c", OpType::Ok, Some(1))
        .log(&[(0, "a"), (1, "c")])
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!(r.explained()["lost-write"], 1);
    assert!(r.allowed_reasons()["lost-write"].contains("durable frontier"));
}

#[test]
fn a_power_loss_of_fewer_replicas_than_min_insync_replicas_explains_no_loss() {
    // Replicated with min.insync.replicas=2: one replica's power loss leaves an intact in-sync copy of every
    // acknowledged record, so a lost record is a bug even beyond that replica's durable frontier.
    let mut h = H::new();
    h.min_isr.insert("t".into(), 2);
    let r = h
        .send(1, "a", OpType::Ok, Some(0))
        .send(5, "b", OpType::Ok, Some(1))
        .power_loss(10, 1)
        .send(20, "c", OpType::Ok, Some(1))
        .log(&[(0, "a"), (1, "c")])
        .check();
    assert_eq!(violations(&r, "lost-write"), 1, "{:?}", r.anomalies);
}

#[test]
fn a_loss_inside_the_durable_frontier_is_not_explained() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(5, "b", OpType::Ok, Some(1))
        .power_loss(10, 2)
        .log(&[(0, "a")])
        .check();
    assert_eq!(violations(&r, "unseen"), 1, "{:?}", r.anomalies);
}

#[test]
fn a_loss_acked_after_the_restart_that_followed_a_power_loss_is_not_explained_by_it() {
    let r = H::new()
        .power_loss(1, 0)
        .restart(3)
        .send(5, "a", OpType::Ok, Some(0))
        .log(&[])
        .check();
    assert_eq!(violations(&r, "unseen"), 1, "{:?}", r.anomalies);
}

#[test]
fn an_ack_on_the_wire_at_the_power_loss_arriving_before_the_restart_is_explained() {
    // Appended and answered before the power loss; the answer arrived while the node was still down.
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .power_loss(2, 0)
        .restart(9)
        .log(&[])
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    let mut h = H::new();
    h.power_loss(1, 0);
    h.send(0, "a", OpType::Ok, Some(0));
    h.restart(9).log(&[]);
    assert!(h.check().passed(), "{:?}", h.check().anomalies);
}

#[test]
fn a_value_at_two_offsets_is_a_duplicate_unless_a_retrying_non_idempotent_producer_wrote_it() {
    let mut h = H::new();
    h.send(1, "a", OpType::Ok, Some(0)).log(&[(0, "a"), (1, "a")]);
    assert_eq!(violations(&h.check(), "duplicate"), 1);
    h.producers.get_mut("p").unwrap().retries = 5;
    let r = h.check();
    assert_eq!(violations(&r, "duplicate"), 0);
    assert_eq!(r.explained()["duplicate"], 1);
    h.producers.get_mut("p").unwrap().idempotence = true;
    assert_eq!(violations(&h.check(), "duplicate"), 1);
}

#[test]
fn two_values_at_one_offset_are_inconsistent_offsets() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Info, None)
        .poll(5, "c1", 0, &[(0, "a")])
        .log(&[(0, "b")])
        .check();
    assert_eq!(violations(&r, "inconsistent-offsets"), 1, "{:?}", r.anomalies);
}

#[test]
fn reading_a_failed_send_is_an_aborted_read_and_an_unsent_value_a_phantom() {
    let r = H::new()
        .send(1, "a", OpType::Fail, None)
        .log(&[(0, "a"), (1, "zzz")])
        .check();
    assert_eq!(violations(&r, "aborted-read"), 1);
    assert_eq!(violations(&r, "phantom-read"), 1);
}

#[test]
fn offsets_going_backwards_inside_a_poll_or_a_log_are_caught() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Ok, Some(1))
        .poll(5, "c1", 0, &[(1, "b"), (0, "a")])
        .log(&[(1, "b"), (0, "a")])
        .check();
    assert_eq!(violations(&r, "int-nonmonotonic-poll"), 1);
    assert_eq!(violations(&r, "nonmonotonic-log"), 1);
}

#[test]
fn polls_that_skip_or_go_back_are_caught() {
    let skip = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Ok, Some(1))
        .send(3, "c", OpType::Ok, Some(2))
        .poll(5, "c1", 0, &[(0, "a")])
        .poll(6, "c1", 1, &[(2, "c")])
        .log(&[(0, "a"), (1, "b"), (2, "c")])
        .check();
    assert_eq!(violations(&skip, "poll-skip"), 1, "{:?}", skip.anomalies);
    let seek = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Ok, Some(1))
        .poll(5, "c1", 0, &[(0, "a"), (1, "b")])
        .poll(6, "c1", 0, &[(0, "a")])
        .log(&[(0, "a"), (1, "b")])
        .check();
    // The second poll fetched from somewhere else (a seek): its sequence restarts and it is not judged.
    assert_eq!(violations(&seek, "nonmonotonic-poll"), 0, "{:?}", seek.anomalies);
    let back = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Ok, Some(1))
        .poll(5, "c1", 0, &[(0, "a"), (1, "b")])
        .poll(6, "c1", 2, &[(1, "b")])
        .log(&[(0, "a"), (1, "b")])
        .check();
    assert_eq!(violations(&back, "nonmonotonic-poll"), 1, "{:?}", back.anomalies);
}

#[test]
fn a_later_send_with_a_lower_offset_is_nonmonotonic_and_breaks_realtime_order() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(5))
        .send(10, "b", OpType::Ok, Some(3))
        .log(&[(3, "b"), (5, "a")])
        .check();
    assert_eq!(violations(&r, "nonmonotonic-send"), 1, "{:?}", r.anomalies);
    assert_eq!(violations(&r, "realtime-offset"), 1, "{:?}", r.anomalies);
}

/// `a` is sent before `b` (both in flight at once), `b` lands and is acknowledged first, `a` is retried and
/// lands after it: offsets follow completion order but not send order.
fn a_retried_batch_landing_after_a_later_one() -> H {
    let mut h = H::new();
    h.invoke(1, "a").invoke(2, "b").ack(3, "b", 0).ack(9, "a", 1);
    h.log(&[(0, "b"), (1, "a")]);
    h
}

#[test]
fn a_send_landing_after_one_sent_later_is_nonmonotonic_even_when_acks_come_in_offset_order() {
    let mut h = a_retried_batch_landing_after_a_later_one();
    let r = h.check();
    assert_eq!(violations(&r, "nonmonotonic-send"), 1, "{:?}", r.anomalies);
    assert_eq!(violations(&r, "realtime-offset"), 0, "{:?}", r.anomalies);
    h.producers.get_mut("p").unwrap().idempotence = true;
    h.producers.get_mut("p").unwrap().retries = 5;
    assert_eq!(
        violations(&h.check(), "nonmonotonic-send"),
        1,
        "idempotence keeps the send order"
    );
}

#[test]
fn a_reordering_is_explained_only_by_retries_without_idempotence_and_several_requests_in_flight() {
    let mut h = a_retried_batch_landing_after_a_later_one();
    h.producers.get_mut("p").unwrap().retries = 5;
    let r = h.check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!(r.explained()["nonmonotonic-send"], 1);
    let why = &r.anomalies[0].explained_by;
    assert!(why.as_deref().is_some_and(|w| w.contains("max.in.flight")), "{why:?}");
    h.producers.get_mut("p").unwrap().max_in_flight = 1;
    assert_eq!(
        violations(&h.check(), "nonmonotonic-send"),
        1,
        "one in flight keeps the order"
    );
}

#[test]
fn offset_reuse_after_a_power_loss_that_took_the_earlier_record_is_explained() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .power_loss(5, 0)
        .send(10, "b", OpType::Ok, Some(0))
        .log(&[(0, "b")])
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!(r.explained()["realtime-offset"], 1);
}

#[test]
fn a_read_record_missing_from_every_final_log_is_read_then_lost() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Info, None)
        .poll(5, "c1", 0, &[(0, "a"), (1, "b")])
        .log(&[(0, "a")])
        .check();
    assert_eq!(violations(&r, "read-then-lost"), 1, "{:?}", r.anomalies);
}

#[test]
fn liveness_failures_are_reported() {
    let h = H::new();
    let final_state = FinalState {
        replica_logs: vec![],
        liveness_failures: vec!["partition t-0 has no leader".into()],
    };
    let r = check(&CheckInput {
        ops: &h.h.ops,
        states: &[],
        raft_states: &[],
        metadata_states: &[],
        final_state: &final_state,
        producers: &h.producers,
        min_insync_replicas: &std::collections::BTreeMap::new(),
        compacted_topics: &std::collections::BTreeSet::new(),
        delete_retention_ms: &std::collections::BTreeMap::new(),
    });
    assert_eq!(violations(&r, "liveness"), 1);
}

#[test]
fn a_duplicate_after_an_info_send_without_idempotence_is_explained() {
    let mut h = H::new();
    h.producers.get_mut("p").unwrap().retries = 3;
    let r = h
        .send(1, "a", OpType::Info, None)
        .poll(5, "c1", 0, &[(0, "a"), (1, "a")])
        .log(&[(0, "a"), (1, "a")])
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!(r.explained()["duplicate"], 1);
}

/// Five records at offsets 0..=4 in the final log.
fn five_records() -> H {
    let mut h = H::new();
    for (i, v) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        h.send(1 + i as u64, v, OpType::Ok, Some(i as i64));
    }
    h
}

const FIVE: &[(i64, &str)] = &[(0, "a"), (1, "b"), (2, "c"), (3, "d"), (4, "e")];

#[test]
fn a_committed_offset_that_moves_back_is_an_offset_regress() {
    let r = five_records()
        .sync(10, "c1", 1, true)
        .commit(20, "c1", 4)
        .commit(30, "c1", 2)
        .log(FIVE)
        .check();
    assert_eq!(violations(&r, "offset-regress"), 1, "{:?}", r.anomalies);
    assert!(r
        .anomalies
        .iter()
        .any(|a| a.class == "offset-regress" && a.offset == Some(2)));
}

#[test]
fn a_committed_offset_that_moves_back_after_a_recorded_seek_is_explained() {
    let r = five_records()
        .sync(10, "c1", 1, true)
        .commit(20, "c1", 4)
        .seek(25, "c1", 1)
        .commit(30, "c1", 2)
        .log(FIVE)
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!(r.explained()["offset-regress"], 1);
    assert!(r.allowed_reasons()["offset-regress"].contains("seek to 1"));
    // A seek by a process outside the group explains nothing.
    let r = five_records()
        .sync(10, "c1", 1, true)
        .commit(20, "c1", 4)
        .seek(25, "outsider", 1)
        .commit(30, "c1", 2)
        .log(FIVE)
        .check();
    assert_eq!(violations(&r, "offset-regress"), 1, "{:?}", r.anomalies);
}

#[test]
fn a_committed_offset_that_moves_back_after_a_power_loss_of_the_offsets_topic_is_explained() {
    let mut h = five_records();
    h.sync(10, "c1", 1, true).commit(20, "c1", 4);
    let detail = BTreeMap::from([
        ("node".to_string(), serde_json::json!("broker-1")),
        ("frontier".to_string(), serde_json::json!({ "__consumer_offsets-3": 7 })),
    ]);
    let fault = OpBody::Fault {
        kind: "power_loss".into(),
        target: "node:broker-1".into(),
        phase: FaultPhase::Start,
        detail,
    };
    let r = h
        .op(25, "nemesis", OpType::Info, fault)
        .commit(30, "c1", 2)
        .log(FIVE)
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert!(r.allowed_reasons()["offset-regress"].contains("__consumer_offsets"));
    // A power loss that hit only data partitions does not explain a lost commit.
    let r = five_records()
        .sync(10, "c1", 1, true)
        .commit(20, "c1", 4)
        .power_loss(25, 0)
        .commit(30, "c1", 2)
        .log(FIVE)
        .check();
    assert_eq!(violations(&r, "offset-regress"), 1, "{:?}", r.anomalies);
}

#[test]
fn a_new_owner_starting_past_records_nobody_in_the_group_polled_is_an_offset_skip() {
    let r = five_records()
        .sync(10, "c1", 1, true)
        .poll(11, "c1", 0, &[(0, "a"), (1, "b")])
        .commit(12, "c1", 2)
        .sync(20, "c1", 2, false)
        .sync(20, "c2", 2, true)
        .poll(21, "c2", 4, &[(4, "e")])
        .log(FIVE)
        .check();
    assert_eq!(violations(&r, "offset-skip"), 1, "{:?}", r.anomalies);
    let a = r.anomalies.iter().find(|a| a.class == "offset-skip").unwrap();
    assert_eq!(a.offset, Some(2), "{a:?}");
}

#[test]
fn a_new_owner_starting_past_records_the_old_owner_polled_but_did_not_commit_passes() {
    let r = five_records()
        .sync(10, "c1", 1, true)
        .poll(11, "c1", 0, &[(0, "a"), (1, "b"), (2, "c"), (3, "d")])
        .commit(12, "c1", 2)
        .sync(20, "c2", 2, true)
        .poll(21, "c2", 4, &[(4, "e")])
        .log(FIVE)
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!(r.explained()["offset-skip"], 0);
}

#[test]
fn the_same_member_in_a_new_generation_is_a_new_owner() {
    let r = five_records()
        .sync(10, "c1", 1, true)
        .poll(11, "c1", 0, &[(0, "a")])
        .commit(12, "c1", 1)
        .sync(20, "c1", 2, true)
        .poll(21, "c1", 3, &[(3, "d"), (4, "e")])
        .log(FIVE)
        .check();
    assert_eq!(violations(&r, "offset-skip"), 1, "{:?}", r.anomalies);
}

#[test]
fn a_new_owner_starting_past_records_removed_by_retention_passes() {
    let r = five_records()
        .sync(10, "c1", 1, true)
        .poll(11, "c1", 0, &[(0, "a"), (1, "b")])
        .commit(12, "c1", 2)
        .poll(15, "audit", 0, FIVE)
        .sync(20, "c2", 2, true)
        .poll(21, "c2", 4, &[(4, "e")])
        .log_from(4, &[(4, "e")])
        .check();
    // Offsets 2 and 3 exist (a reader outside the group saw them) and sit below the final log start offset 4.
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!(r.explained()["offset-skip"], 1);
    assert!(r.allowed_reasons()["offset-skip"].contains("log start offset 4"));
}

#[test]
fn a_new_owner_that_seeks_past_its_group_commit_is_explained_only_below_the_seek() {
    let base = || {
        let mut h = five_records();
        h.sync(10, "c1", 1, true)
            .poll(11, "c1", 0, &[(0, "a")])
            .commit(12, "c1", 1)
            .sync(20, "c2", 2, true);
        h
    };
    let r = base()
        .seek(21, "c2", 4)
        .poll(22, "c2", 4, &[(4, "e")])
        .log(FIVE)
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert!(r.allowed_reasons()["offset-skip"].contains("seek to 4"));
    // Sought to 2, read from 4: offset 3 was skipped past the seek (poll-skip judges it too).
    let r = base()
        .seek(21, "c2", 2)
        .poll(22, "c2", 2, &[(4, "e")])
        .log(FIVE)
        .check();
    assert_eq!(violations(&r, "offset-skip"), 1, "{:?}", r.anomalies);
    assert_eq!(violations(&r, "poll-skip"), 1, "{:?}", r.anomalies);
}

#[test]
fn a_new_owner_starting_at_a_commit_whose_outcome_is_unknown_passes() {
    let r = five_records()
        .sync(10, "c1", 1, true)
        .poll(11, "c1", 0, &[(0, "a")])
        .commit(12, "c1", 1)
        .commit_as(14, "c1", 3, OpType::Info)
        .sync(20, "c2", 2, true)
        .poll(21, "c2", 3, &[(3, "d"), (4, "e")])
        .log(FIVE)
        .check();
    // c1 polled only offset 0 per the history, yet its commit of 3 may have landed: explained, not passed silently.
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!(r.explained()["offset-skip"], 1);
}

#[test]
fn poll_sequences_restart_at_a_rebalance_an_assign_and_a_reset() {
    let restart = |body: OpBody| {
        five_records()
            .poll(10, "c1", 0, &[(0, "a"), (1, "b")])
            .op(11, "c1", OpType::Ok, body)
            .poll(12, "c1", 2, &[(4, "e")])
            .log(FIVE)
            .check()
    };
    let tp = TopicPartition {
        topic: "t".into(),
        partition: 0,
    };
    let bodies = [
        OpBody::Revoke {
            group: "g".into(),
            partitions: vec![tp.clone()],
        },
        OpBody::Assign {
            partitions: vec![tp.clone()],
        },
        OpBody::Reset {
            topic: "t".into(),
            partition: 0,
            policy: "latest".into(),
            offset: None,
        },
    ];
    for body in bodies {
        let r = restart(body.clone());
        assert_eq!(violations(&r, "poll-skip"), 0, "{body:?}: {:?}", r.anomalies);
    }
    // Without the restart, the same polls skip offsets 2 and 3.
    let r = restart(OpBody::Subscribe {
        topics: vec!["t".into()],
    });
    assert_eq!(violations(&r, "poll-skip"), 1, "{:?}", r.anomalies);
}

#[test]
fn a_poll_after_a_seek_is_judged_from_the_sought_position() {
    let back = five_records()
        .poll(10, "c1", 0, &[(0, "a"), (1, "b"), (2, "c")])
        .seek(11, "c1", 1)
        .poll(12, "c1", 1, &[(1, "b"), (2, "c")])
        .log(FIVE)
        .check();
    assert!(back.passed(), "a seek back re-reads legally: {:?}", back.anomalies);
    let wrong = five_records()
        .poll(10, "c1", 0, &[(0, "a")])
        .seek(11, "c1", 3)
        .poll(12, "c1", 3, &[(2, "c")])
        .log(FIVE)
        .check();
    assert_eq!(violations(&wrong, "nonmonotonic-poll"), 1, "{:?}", wrong.anomalies);
}

#[test]
fn the_state_trace_invariants_run_with_the_checkers() {
    let mut h = H::new();
    let state = |time_us, high_watermark| ReplicaState {
        time_us,
        node: "broker-1".into(),
        incarnation: 0,
        topic: "t".into(),
        partition: 0,
        leader: 1,
        leader_epoch: 0,
        isr: vec![1],
        log_start_offset: 0,
        log_end_offset: 5,
        high_watermark,
    };
    h.h.states = vec![state(1, 4), state(2, 2)];
    let r = h.check();
    assert_eq!(violations(&r, "hw-regress"), 1, "{:?}", r.anomalies);
}

#[test]
fn a_value_read_at_another_offset_than_its_ack_named_is_inconsistent() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Ok, Some(1))
        .log(&[(0, "b"), (1, "a")])
        .check();
    assert_eq!(violations(&r, "inconsistent-offsets"), 2, "{:?}", r.anomalies);
}

#[test]
fn a_record_that_came_through_one_power_loss_cannot_be_excused_by_a_later_one() {
    // Acked at offset 1, intact after the first power loss (frontier 2), gone after the second (frontier 0):
    // what survives a power loss is durable, so only a bug can have lost it.
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Ok, Some(1))
        .power_loss(5, 2)
        .restart(6)
        .power_loss(8, 0)
        .restart(9)
        .log(&[])
        .check();
    assert_eq!(violations(&r, "unseen"), 2, "{:?}", r.anomalies);
}

fn replica(t: u64, node: &str, leader: i32, leo: i64) -> ReplicaState {
    ReplicaState {
        time_us: t,
        node: node.into(),
        incarnation: 0,
        topic: "t".into(),
        partition: 0,
        leader,
        leader_epoch: leader,
        isr: vec![1, 2],
        log_start_offset: 0,
        log_end_offset: leo,
        high_watermark: leo,
    }
}

/// acks=1: send `a` is invoked while broker 1 leads; leadership moves to broker 2 (its shorter log) before
/// `a`'s ack arrives; `b` then lands at a lower offset on broker 2. If the move came after `a`'s invoke this
/// is legal (the old leader acked `a` before it learnt it was replaced); if broker 2 already led when `a`
/// was invoked, nothing explains `b`'s lower offset.
fn leader_moves_at(move_us: u64) -> CheckReport {
    let mut h = H::new();
    let body = |value: &str, offset| OpBody::Send {
        topic: "t".into(),
        partition: 0,
        key: "k".into(),
        value: value.into(),
        offset,
        tombstone: false,
    };
    h.h.states.push(replica(1, "broker-1", 1, 5));
    h.h.states.push(replica(move_us, "broker-2", 2, 0));
    h.h.push(10, "p", OpType::Invoke, body("a", None), None);
    h.h.push(30, "p", OpType::Ok, body("a", Some(5)), None);
    h.h.push(40, "p", OpType::Invoke, body("b", None), None);
    h.h.push(41, "p", OpType::Ok, body("b", Some(0)), None);
    h.log(&[(0, "b")]).check()
}

#[test]
fn under_acks_1_a_leader_change_between_a_sends_invoke_and_ack_explains_a_later_lower_offset() {
    let r = leader_moves_at(20);
    assert_eq!(violations(&r, "nonmonotonic-send"), 0, "{:?}", r.anomalies);
    assert_eq!(violations(&r, "realtime-offset"), 0, "{:?}", r.anomalies);
    assert!(r.explained()["nonmonotonic-send"] >= 1, "{:?}", r.anomalies);
    let r = leader_moves_at(5);
    assert!(violations(&r, "nonmonotonic-send") >= 1, "{:?}", r.anomalies);
}

#[test]
fn two_members_given_one_partition_in_one_generation_are_partition_owners() {
    let mut h = H::new();
    h.sync(1, "c1", 1, true).sync(2, "c2", 1, true);
    let r = h.check();
    assert_eq!(violations(&r, "partition-owners"), 1, "{:?}", r.anomalies);
    let mut h = H::new();
    h.sync(1, "c1", 1, true).sync(2, "c2", 2, true);
    let r = h.check();
    assert_eq!(
        violations(&r, "partition-owners"),
        0,
        "a later generation may move the partition: {:?}",
        r.anomalies
    );
}
