//! KIP-320 in a run: `scenarios/consumer-truncation.toml` (every broker loses power while a group of two
//! reads) on seed 1. The new leaders' logs end below what the consumers read; each consumer that held such a
//! position detects it with OffsetsForLeaderEpoch, records a `truncation` reset, and its next poll of that
//! partition starts exactly there.
//!
//! The run passes: the correlated power loss takes the partitions out of contract, and every power loss of
//! that one instant explains what lay beyond its own replica's durable frontier (any of them may lead
//! afterwards with its shorter log).

use std::path::Path;

use gregor::history::{OpBody, OpType};
use gregor::runner::{self, RunOptions};
use gregor::scenario::Scenario;

#[test]
fn consumers_detect_truncation_below_their_position_after_every_broker_lost_power() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/consumer-truncation.toml");
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = runner::run(&s, 1, RunOptions::default()).expect("the run completes");
    assert_eq!(out.summary.verdict, "pass", "{}", out.summary.render());
    let hits = out
        .summary
        .marks
        .get("consumer-detected-truncation")
        .copied()
        .unwrap_or(0);
    assert!(hits >= 1, "marks: {:?}", out.summary.marks);
    let ops = &out.history.ops;
    let resets: Vec<_> = ops
        .iter()
        .filter(|op| op.op_type == OpType::Ok)
        .filter_map(|op| match &op.body {
            OpBody::Reset {
                topic,
                partition,
                policy,
                offset: Some(offset),
            } if policy == "truncation" => Some((op, topic.clone(), *partition, *offset)),
            _ => None,
        })
        .collect();
    assert!(!resets.is_empty(), "a truncation is recorded as a reset");
    for (reset, topic, partition, offset) in resets {
        let next_poll = ops[reset.index as usize..].iter().find_map(|op| match &op.body {
            OpBody::Poll {
                topic: t,
                partition: p,
                fetch_offset,
                ..
            } if op.process == reset.process && *t == topic && *p == partition => Some(*fetch_offset),
            OpBody::Reset {
                topic: t, partition: p, ..
            }
            | OpBody::Seek {
                topic: t, partition: p, ..
            } if op.index != reset.index && op.process == reset.process && *t == topic && *p == partition => Some(-1),
            OpBody::Sync { .. } | OpBody::Revoke { .. } if op.process == reset.process => Some(-1),
            _ => None,
        });
        if let Some(start) = next_poll.filter(|o| *o >= 0) {
            assert_eq!(
                start, offset,
                "{}: {topic}-{partition} resumes at the truncation point",
                reset.process
            );
        }
    }
}
