//! `replica-divergence`: at the end of the run, every member of a partition's ISR holds byte-identical
//! batches below the high watermark — the same base and last offsets, the same leader epoch stamped on each
//! batch, the same length and CRC. Kafka's followers append the leader's batches as they are
//! (`appendAsFollower`) and truncate a divergent tail by leader epoch before they fetch (KIP-101, KIP-279),
//! and the high watermark never passes an ISR member's log end, so anything else is a replication bug.
//!
//! Legal and not flagged: replicas outside the final ISR (still catching up or truncating), anything at or
//! above the high watermark, and partitions out of contract (a bit flip at rest changes one replica's bytes).

use std::collections::{BTreeMap, BTreeSet};

use super::contract::parse_tp;
use super::view::Tp;
use super::{Anomaly, BatchDigest, CheckInput, ReplicaLog};
use crate::history::{MetadataState, ReplicaState};

pub(super) fn replica_divergence(input: &CheckInput<'_>, out_of_contract: &BTreeSet<Tp>) -> Vec<Anomaly> {
    let Some(metadata) = final_controller_metadata(input.metadata_states) else {
        return vec![];
    };
    let logs: BTreeMap<(Tp, &str), &ReplicaLog> = input
        .final_state
        .replica_logs
        .iter()
        .map(|l| (((l.topic.clone(), l.partition), l.node.as_str()), l))
        .collect();
    // Built at the first compacted partition only: every send's key, and the tombstones (the final logs were
    // read at the end of the run: a tombstone that may have expired by then may be gone).
    let compaction = std::cell::LazyCell::new(|| {
        (
            super::compaction::keys_of_values(input.ops),
            super::tombstones::Tombstones::build(input),
        )
    });
    let end_us = input.ops.last().map_or(0, |o| o.time_us);

    let mut out = vec![];
    for (name, lead) in &metadata.partitions {
        let Some(tp) = parse_tp(name) else { continue };
        let leader = format!("broker-{}", lead.leader);
        let Some(hw) = latest_high_watermark(input.states, &leader, &tp) else {
            continue;
        };
        let Some(reference) = logs.get(&(tp.clone(), leader.as_str())) else {
            continue;
        };
        for member in lead.isr.iter().filter(|m| **m != lead.leader) {
            let node = format!("broker-{member}");
            let Some(log) = logs.get(&(tp.clone(), node.as_str())) else {
                continue;
            };
            // Each replica removes its own oldest segments (retention, DeleteRecords, a follower that started
            // over at the leader's log start): only batches both still hold from the later log start compare.
            let from = reference.log_start_offset.max(log.log_start_offset);
            // Replicas compact independently (their cleaners run at their own times): a compacted topic's
            // replicas compare record by record, not batch by batch.
            let difference = if input.compacted_topics.contains(&tp.0) {
                let (key_of, tombstones) = &*compaction;
                let deleted = |offset: i64, value: &str| {
                    tombstones.expired(value, end_us).is_some()
                        || key_of
                            .get(value)
                            .is_some_and(|key| tombstones.deletes_below(&tp, key, offset, end_us).is_some())
                };
                super::compaction::compare_records(reference, log, from, hw, key_of, &deleted)
            } else {
                let expected = between(&reference.batches, from, hw);
                first_difference(&leader, &expected, &node, &between(&log.batches, from, hw), hw)
            };
            if let Some(detail) = difference {
                let explained_by = out_of_contract
                    .contains(&tp)
                    .then(|| {
                        format!("{name} is out of contract (power loss or corruption hit min.insync.replicas replicas)")
                    })
                    .or_else(|| bit_flip_on(input, &tp, &[leader.as_str(), node.as_str()]));
                out.push(Anomaly {
                    class: "replica-divergence",
                    topic: tp.0.clone(),
                    partition: tp.1,
                    offset: None,
                    value: None,
                    detail,
                    explained_by,
                });
            }
        }
    }
    out
}

/// A bit flip at rest in a file of `tp` on one of `nodes`: the batch it hit fails its CRC when read (Kafka
/// does not scrub logs at rest), so that replica's copy legally differs from the others' until it is
/// truncated or the segment deleted.
fn bit_flip_on(input: &CheckInput<'_>, tp: &Tp, nodes: &[&str]) -> Option<String> {
    let dir = format!("{}-{}/", tp.0, tp.1);
    input.ops.iter().find_map(|op| {
        let crate::history::OpBody::Fault { kind, detail, .. } = &op.body else {
            return None;
        };
        let node = detail.get("node").and_then(|n| n.as_str())?;
        let path = detail.get("path").and_then(|p| p.as_str())?;
        (kind == "disk_bitflip" && nodes.contains(&node) && path.starts_with(&dir)).then(|| {
            format!(
                "a bit flipped at rest on {node} ({path}) at {:.3}s: that batch fails its CRC, so the replica's copy differs",
                op.time_us as f64 / 1e6
            )
        })
    })
}

/// The newest metadata a controller applied.
fn final_controller_metadata(states: &[MetadataState]) -> Option<&MetadataState> {
    states
        .iter()
        .filter(|m| m.node.starts_with("controller-"))
        .max_by_key(|m| (m.offset, m.time_us))
}

/// The high watermark `node` last reported for `tp`.
fn latest_high_watermark(states: &[ReplicaState], node: &str, tp: &Tp) -> Option<i64> {
    states
        .iter()
        .rev()
        .find(|s| s.node == node && s.topic == tp.0 && s.partition == tp.1)
        .map(|s| s.high_watermark)
}

/// The batches wholly in [`from`, `hw`): at or above a log start, below the high watermark.
fn between(batches: &[BatchDigest], from: i64, hw: i64) -> Vec<BatchDigest> {
    batches
        .iter()
        .filter(|b| b.base_offset >= from && b.last_offset < hw)
        .copied()
        .collect()
}

fn first_difference(a: &str, xs: &[BatchDigest], b: &str, ys: &[BatchDigest], hw: i64) -> Option<String> {
    for (x, y) in xs.iter().zip(ys) {
        if x != y {
            return Some(format!(
                "below the high watermark {hw}, {a} holds {} where {b} holds {}",
                show(x),
                show(y)
            ));
        }
    }
    match xs.len().cmp(&ys.len()) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Greater => Some(format!(
            "{b} is in the ISR but lacks {} from offset {} below the high watermark {hw}",
            show(&xs[ys.len()]),
            xs[ys.len()].base_offset
        )),
        std::cmp::Ordering::Less => Some(format!(
            "{a} (the leader) lacks {} from offset {} that ISR member {b} holds below the high watermark {hw}",
            show(&ys[xs.len()]),
            ys[xs.len()].base_offset
        )),
    }
}

fn show(b: &BatchDigest) -> String {
    format!(
        "batch [{}..={}] epoch {} length {} crc {:08x}",
        b.base_offset, b.last_offset, b.partition_leader_epoch, b.batch_length, b.crc
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::{FinalState, ProducerFacts};
    use crate::history::Leadership;

    fn batch(base: i64, last: i64, epoch: i32, crc: u32) -> BatchDigest {
        BatchDigest {
            base_offset: base,
            last_offset: last,
            partition_leader_epoch: epoch,
            batch_length: 100,
            crc,
        }
    }

    fn log(node: &str, batches: Vec<BatchDigest>) -> ReplicaLog {
        ReplicaLog {
            node: node.into(),
            topic: "t".into(),
            partition: 0,
            high_watermark: 0,
            log_start_offset: 0,
            records: vec![],
            batches,
        }
    }

    fn judge(logs: Vec<ReplicaLog>, isr: &[i32], hw: i64, out_of_contract: &BTreeSet<Tp>) -> Vec<Anomaly> {
        judge_with(logs, isr, hw, out_of_contract, &[])
    }

    fn judge_with(
        logs: Vec<ReplicaLog>,
        isr: &[i32],
        hw: i64,
        out_of_contract: &BTreeSet<Tp>,
        ops: &[crate::history::Op],
    ) -> Vec<Anomaly> {
        let metadata = vec![MetadataState {
            time_us: 1,
            node: "controller-1".into(),
            incarnation: 1,
            offset: 10,
            fenced: vec![],
            brokers: vec![1, 2, 3],
            partitions: BTreeMap::from([(
                "t-0".to_string(),
                Leadership {
                    leader: isr[0],
                    leader_epoch: 2,
                    isr: isr.to_vec(),
                },
            )]),
        }];
        let states = vec![ReplicaState {
            time_us: 1,
            node: format!("broker-{}", isr[0]),
            incarnation: 1,
            topic: "t".into(),
            partition: 0,
            leader: isr[0],
            leader_epoch: 2,
            isr: isr.to_vec(),
            log_start_offset: 0,
            log_end_offset: hw,
            high_watermark: hw,
        }];
        let final_state = FinalState {
            replica_logs: logs,
            liveness_failures: vec![],
        };
        let producers: BTreeMap<String, ProducerFacts> = BTreeMap::new();
        let min = BTreeMap::new();
        let input = CheckInput {
            ops,
            states: &states,
            raft_states: &[],
            metadata_states: &metadata,
            final_state: &final_state,
            producers: &producers,
            min_insync_replicas: &min,
            compacted_topics: &BTreeSet::new(),
            delete_retention_ms: &std::collections::BTreeMap::new(),
        };
        replica_divergence(&input, out_of_contract)
    }

    #[test]
    fn identical_isr_replicas_pass_and_a_tail_above_the_high_watermark_is_ignored() {
        let leader = log(
            "broker-1",
            vec![batch(0, 4, 1, 7), batch(5, 9, 2, 8), batch(10, 12, 2, 9)],
        );
        let follower = log("broker-2", vec![batch(0, 4, 1, 7), batch(5, 9, 2, 8)]);
        assert!(judge(vec![leader, follower], &[1, 2], 10, &BTreeSet::new()).is_empty());
    }

    #[test]
    fn a_batch_with_another_leader_epoch_below_the_high_watermark_is_divergence() {
        let leader = log("broker-1", vec![batch(0, 4, 1, 7), batch(5, 9, 2, 8)]);
        let follower = log("broker-2", vec![batch(0, 4, 1, 7), batch(5, 9, 1, 8)]);
        let a = judge(vec![leader, follower], &[1, 2], 10, &BTreeSet::new());
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].class, "replica-divergence");
        assert!(a[0].explained_by.is_none());
        assert!(
            a[0].detail.contains("epoch 2") && a[0].detail.contains("epoch 1"),
            "{}",
            a[0].detail
        );
    }

    #[test]
    fn an_isr_member_missing_a_batch_below_the_high_watermark_is_divergence() {
        let leader = log("broker-1", vec![batch(0, 4, 1, 7), batch(5, 9, 2, 8)]);
        let follower = log("broker-2", vec![batch(0, 4, 1, 7)]);
        let a = judge(vec![leader, follower], &[1, 2], 10, &BTreeSet::new());
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(a[0].detail.contains("lacks"), "{}", a[0].detail);
    }

    #[test]
    fn replicas_outside_the_isr_are_not_judged_and_out_of_contract_is_explained() {
        let leader = log("broker-1", vec![batch(0, 4, 1, 7)]);
        let stale = log("broker-3", vec![batch(0, 4, 0, 1)]);
        assert!(judge(vec![leader.clone(), stale.clone()], &[1, 2], 5, &BTreeSet::new()).is_empty());
        let out = BTreeSet::from([("t".to_string(), 0)]);
        let a = judge(vec![leader, log("broker-3", vec![batch(0, 4, 0, 1)])], &[1, 3], 5, &out);
        assert_eq!(a.len(), 1);
        assert!(a[0].explained_by.is_some());
    }

    #[test]
    fn only_batches_above_both_log_starts_compare_and_below_them_a_difference_still_counts() {
        let leader = log(
            "broker-1",
            vec![batch(0, 4, 1, 7), batch(5, 9, 1, 8), batch(10, 14, 1, 9)],
        );
        // The follower started over at the leader's log start 10 (or retention removed its first segments).
        let mut follower = log("broker-2", vec![batch(10, 14, 1, 9)]);
        follower.log_start_offset = 10;
        assert!(judge(vec![leader.clone(), follower.clone()], &[1, 2], 15, &BTreeSet::new()).is_empty());
        let mut bad = follower;
        bad.batches = vec![batch(10, 14, 2, 9)];
        let a = judge(vec![leader, bad], &[1, 2], 15, &BTreeSet::new());
        assert_eq!(a.len(), 1, "{a:?}");
    }

    fn bit_flip(node: &str, path: &str) -> Vec<crate::history::Op> {
        let mut h = crate::history::History::default();
        let detail = BTreeMap::from([
            ("node".to_string(), serde_json::json!(node)),
            ("path".to_string(), serde_json::json!(path)),
        ]);
        let body = crate::history::OpBody::Fault {
            kind: "disk_bitflip".into(),
            target: format!("node:{node}"),
            phase: crate::history::FaultPhase::Start,
            detail,
        };
        h.push(5, "nemesis", crate::history::OpType::Info, body, None);
        h.ops
    }

    #[test]
    fn a_replica_whose_segment_of_that_partition_took_a_bit_flip_differs_legally() {
        let leader = log("broker-1", vec![batch(0, 4, 1, 7), batch(5, 9, 1, 8)]);
        // The scan of broker-2's disk skips the batch whose CRC no longer matches.
        let flipped = log("broker-2", vec![batch(5, 9, 1, 8)]);
        let ops = bit_flip("broker-2", "t-0/00000000000000000000.log");
        let a = judge_with(
            vec![leader.clone(), flipped.clone()],
            &[1, 2],
            10,
            &BTreeSet::new(),
            &ops,
        );
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(
            a[0].explained_by.as_deref().is_some_and(|w| w.contains("bit flipped")),
            "{a:?}"
        );
        let elsewhere = bit_flip("broker-2", "t-1/00000000000000000000.log");
        let a = judge_with(vec![leader, flipped], &[1, 2], 10, &BTreeSet::new(), &elsewhere);
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(
            a[0].explained_by.is_none(),
            "a flip in another partition explains nothing: {a:?}"
        );
    }
}
