//! One seed's consumer groups over simulated time, from its history and state trace (pure: the caller reads
//! the files): each group's lag — the leader's high watermark minus the group's committed offset, summed over
//! the group's partitions — and its rebalances (the first completed SyncGroup of each generation).

use std::collections::{BTreeMap, BTreeSet};

use super::results::{GroupSeries, GroupTimeline};
use super::timeline::fault_windows;
use crate::history::{Op, OpBody, OpType, ReplicaState};

/// Lag is sampled at this many evenly spaced instants (plus the end).
const SAMPLES: usize = 300;

type Tp = (String, i32);

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

/// Each group's partitions: those it committed offsets for or was assigned in a SyncGroup.
fn partitions(ops: &[Op]) -> BTreeMap<String, BTreeSet<Tp>> {
    let mut out: BTreeMap<String, BTreeSet<Tp>> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.op_type == OpType::Ok) {
        match &op.body {
            OpBody::Commit {
                group,
                topic,
                partition,
                ..
            } => {
                out.entry(group.clone())
                    .or_default()
                    .insert((topic.clone(), *partition));
            }
            OpBody::Sync { group, assignment, .. } => {
                let e = out.entry(group.clone()).or_default();
                e.extend(assignment.iter().map(|tp| (tp.topic.clone(), tp.partition)));
            }
            _ => {}
        }
    }
    out
}

/// (simulated s, generation) at the first completed SyncGroup of each generation of `group`.
fn rebalances(ops: &[Op], group: &str) -> Vec<[f64; 2]> {
    let mut seen = BTreeSet::new();
    ops.iter()
        .filter(|o| o.op_type == OpType::Ok)
        .filter_map(|o| match &o.body {
            OpBody::Sync {
                group: g, generation, ..
            } if g == group && seen.insert(*generation) => Some([secs(o.time_us), *generation as f64]),
            _ => None,
        })
        .collect()
}

/// High watermark changes as the partitions' leaders report them: (time us, partition, high watermark).
fn high_watermarks(states: &[ReplicaState]) -> Vec<(u64, Tp, i64)> {
    let mut out: Vec<(u64, Tp, i64)> = states
        .iter()
        .filter(|s| s.node.strip_prefix("broker-").and_then(|n| n.parse().ok()) == Some(s.leader))
        .map(|s| (s.time_us, (s.topic.clone(), s.partition), s.high_watermark))
        .collect();
    out.sort_by_key(|h| h.0);
    out
}

/// Completed commits: (time us, group, partition, committed offset).
fn commits(ops: &[Op]) -> Vec<(u64, String, Tp, i64)> {
    let mut out: Vec<(u64, String, Tp, i64)> = ops
        .iter()
        .filter(|o| o.op_type == OpType::Ok)
        .filter_map(|o| match &o.body {
            OpBody::Commit {
                group,
                topic,
                partition,
                offset,
                ..
            } => Some((o.time_us, group.clone(), (topic.clone(), *partition), *offset)),
            _ => None,
        })
        .collect();
    out.sort_by_key(|c| c.0);
    out
}

/// The group timeline of one run. `head` carries the scenario, cell, seed, repro and why.
pub fn build(head: GroupTimeline, ops: &[Op], states: &[ReplicaState]) -> GroupTimeline {
    let end_us = ops.last().map_or(0, |o| o.time_us);
    let parts = partitions(ops);
    let hws = high_watermarks(states);
    let commits = commits(ops);
    let mut hw: BTreeMap<&Tp, i64> = BTreeMap::new();
    let mut committed: BTreeMap<(&str, &Tp), i64> = BTreeMap::new();
    let (mut hi, mut ci) = (0, 0);
    let mut groups: BTreeMap<String, GroupSeries> = parts
        .keys()
        .map(|g| {
            let s = GroupSeries {
                lag: vec![],
                rebalances: rebalances(ops, g),
            };
            (g.clone(), s)
        })
        .collect();
    for i in 0..=SAMPLES {
        let t_us = end_us * i as u64 / SAMPLES as u64;
        while hi < hws.len() && hws[hi].0 <= t_us {
            hw.insert(&hws[hi].1, hws[hi].2);
            hi += 1;
        }
        while ci < commits.len() && commits[ci].0 <= t_us {
            let c = &commits[ci];
            committed.insert((c.1.as_str(), &c.2), c.3);
            ci += 1;
        }
        for (g, tps) in &parts {
            let lag: i64 = tps
                .iter()
                .map(|tp| {
                    let end = hw.get(tp).copied().unwrap_or(0);
                    (end - committed.get(&(g.as_str(), tp)).copied().unwrap_or(0)).max(0)
                })
                .sum();
            if let Some(s) = groups.get_mut(g) {
                s.lag.push([secs(t_us), lag as f64]);
            }
        }
    }
    GroupTimeline {
        faults: fault_windows(ops, secs(end_us)),
        groups,
        end_s: secs(end_us),
        ..head
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TopicPartition;

    fn op(time_us: u64, body: OpBody) -> Op {
        Op {
            index: 0,
            time_us,
            process: "consumer-1".into(),
            op_type: OpType::Ok,
            body,
            error: None,
        }
    }

    fn state(time_us: u64, node: &str, leader: i32, hw: i64) -> ReplicaState {
        ReplicaState {
            time_us,
            node: node.into(),
            incarnation: 0,
            topic: "orders".into(),
            partition: 0,
            leader,
            leader_epoch: 1,
            isr: vec![1, 2],
            log_start_offset: 0,
            log_end_offset: hw,
            high_watermark: hw,
        }
    }

    #[test]
    fn lag_is_the_leaders_high_watermark_minus_the_groups_commit_and_rebalances_are_new_generations() {
        let tp = TopicPartition {
            topic: "orders".into(),
            partition: 0,
        };
        let sync = |t, generation| {
            op(
                t,
                OpBody::Sync {
                    group: "audit".into(),
                    generation,
                    member_id: "m".into(),
                    assignment: vec![tp.clone()],
                },
            )
        };
        let commit = |t, offset| {
            op(
                t,
                OpBody::Commit {
                    group: "audit".into(),
                    topic: "orders".into(),
                    partition: 0,
                    offset,
                    generation: 1,
                },
            )
        };
        let ops = vec![
            sync(0, 1),
            sync(100_000, 1),
            commit(5_000_000, 40),
            sync(6_000_000, 2),
            commit(10_000_000, 100),
        ];
        // broker-2's row is a follower's: it does not count.
        let states = vec![
            state(1_000_000, "broker-1", 1, 50),
            state(2_000_000, "broker-2", 1, 10),
            state(8_000_000, "broker-1", 1, 100),
        ];
        let t = build(GroupTimeline::default(), &ops, &states);
        let g = &t.groups["audit"];
        assert_eq!(g.rebalances, vec![[0.0, 1.0], [6.0, 2.0]]);
        let at = |s: f64| g.lag.iter().find(|p| p[0] >= s).map(|p| p[1]);
        assert_eq!(at(3.0), Some(50.0), "{:?}", g.lag);
        assert_eq!(at(6.0), Some(10.0), "{:?}", g.lag);
        assert_eq!(at(9.0), Some(60.0), "{:?}", g.lag);
        assert_eq!(g.lag.last().map(|p| p[1]), Some(0.0));
        assert_eq!(t.end_s, 10.0);
    }
}
