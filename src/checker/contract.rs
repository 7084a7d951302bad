//! The contract monitor (ARCHITECTURE §6): reads the fault timeline and the controllers' metadata trace and
//! takes a partition out of contract when power loss or corruption at rest hit at least
//! `min.insync.replicas` of its replicas within one window — a replica's window runs from its power loss
//! until it is back in the ISR after having left it (it has caught up with a leader since), and a bit flip's
//! window never closes (the corrupt bytes stay on disk). Process crashes, any number of them, never take a
//! partition out of contract: the page cache survives. Kafka promises an acks=all record survives while one
//! replica that had it does; with fewer than `min.insync.replicas` hits an acknowledged record still sits on
//! an intact replica, so a power loss there explains no loss.

use std::collections::{BTreeMap, BTreeSet};

use super::view::Tp;
use super::CheckInput;
use crate::history::{FaultPhase, MetadataState, OpBody};

/// One partition leaving the contract: which, when, and what hit it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    pub topic: String,
    pub partition: i32,
    pub time_us: u64,
    pub text: String,
}

/// A replica hit by a fault that may take what it held: from `start_us` until `end_us` (None: to the end).
struct Hit {
    node: String,
    what: String,
    start_us: u64,
    end_us: Option<u64>,
}

/// Every partition's breach, at most one per partition (the first moment enough replicas were hit).
pub fn breaches(input: &CheckInput<'_>) -> Vec<Breach> {
    let controller_trace: Vec<&MetadataState> = input
        .metadata_states
        .iter()
        .filter(|m| m.node.starts_with("controller-"))
        .collect();
    let mut hits: BTreeMap<Tp, Vec<Hit>> = BTreeMap::new();
    for op in input.ops {
        let OpBody::Fault {
            kind,
            phase: FaultPhase::Start,
            detail,
            ..
        } = &op.body
        else {
            continue;
        };
        if detail.contains_key("skipped") {
            continue;
        }
        let node = detail.get("node").and_then(|n| n.as_str()).unwrap_or("?");
        if node.starts_with("controller-") {
            // A controller holds no partition replica; the metadata log is judged by the Raft invariants.
            continue;
        }
        let at = format!("{:.3}s", op.time_us as f64 / 1e6);
        if kind == "power_loss" {
            // The frontier names every partition the node held a replica of.
            let frontier = detail.get("frontier").and_then(|f| f.as_object());
            for tp in frontier.into_iter().flat_map(|f| f.keys()).filter_map(|k| parse_tp(k)) {
                let end_us = back_in_isr(&controller_trace, &tp, node, op.time_us);
                hits.entry(tp).or_default().push(Hit {
                    node: node.to_string(),
                    what: format!("power loss of {node} at {at}"),
                    start_us: op.time_us,
                    end_us,
                });
            }
        } else if kind == "disk_bitflip" {
            let path = detail.get("path").and_then(|n| n.as_str()).unwrap_or("?");
            if let Some(tp) = path.split('/').next().and_then(parse_tp) {
                hits.entry(tp).or_default().push(Hit {
                    node: node.to_string(),
                    what: format!("bit flip at rest on {node} ({path}) at {at}"),
                    start_us: op.time_us,
                    end_us: None,
                });
            }
        }
    }
    let mut out: Vec<Breach> = hits
        .into_iter()
        .filter_map(|(tp, hits)| breach_of(input, tp, &hits))
        .collect();
    for u in unclean_elections(input.metadata_states) {
        if out
            .iter()
            .any(|b| b.topic == u.tp.0 && b.partition == u.tp.1 && b.time_us <= u.time_us)
        {
            continue;
        }
        out.retain(|b| !(b.topic == u.tp.0 && b.partition == u.tp.1));
        out.push(Breach {
            text: u.describe(),
            topic: u.tp.0.clone(),
            partition: u.tp.1,
            time_us: u.time_us,
        });
    }
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    out
}

/// A leader elected from outside the ISR (`unclean.leader.election.enable`): Kafka's controller makes the
/// new leader the whole ISR, and whatever only the old ISR held is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncleanElection {
    pub tp: Tp,
    pub time_us: u64,
    pub leader: i32,
    pub isr_before: Vec<i32>,
}

impl UncleanElection {
    pub fn describe(&self) -> String {
        format!(
            "unclean election of {}-{} at {:.3}s: broker {} led from outside the ISR {:?} (unclean.leader.election.enable)",
            self.tp.0,
            self.tp.1,
            self.time_us as f64 / 1e6,
            self.leader,
            self.isr_before
        )
    }
}

/// Every unclean election in the controllers' committed metadata, in log order: a new leader epoch whose
/// leader was not in the ISR just before and is the only member of the ISR after (Kafka's
/// `PartitionChangeBuilder` for an unclean election).
pub fn unclean_elections(states: &[MetadataState]) -> Vec<UncleanElection> {
    let mut by_offset: BTreeMap<i64, &MetadataState> = BTreeMap::new();
    for m in states.iter().filter(|m| m.node.starts_with("controller-")) {
        by_offset.entry(m.offset).or_insert(m);
    }
    let mut out = vec![];
    let mut prev: Option<&MetadataState> = None;
    for m in by_offset.values() {
        for (name, now) in &m.partitions {
            let Some(before) = prev.and_then(|p| p.partitions.get(name)) else {
                continue;
            };
            let unclean = now.leader >= 0
                && now.leader_epoch > before.leader_epoch
                && !before.isr.contains(&now.leader)
                && now.isr == [now.leader];
            if let (true, Some(tp)) = (unclean, parse_tp(name)) {
                out.push(UncleanElection {
                    tp,
                    time_us: m.time_us,
                    leader: now.leader,
                    isr_before: before.isr.clone(),
                });
            }
        }
        prev = Some(m);
    }
    out
}

/// The partitions out of contract.
pub fn out_of_contract(input: &CheckInput<'_>) -> BTreeSet<Tp> {
    breaches(input).into_iter().map(|b| (b.topic, b.partition)).collect()
}

/// The first moment at least `min.insync.replicas` distinct replicas of `tp` were inside a window.
fn breach_of(input: &CheckInput<'_>, tp: Tp, hits: &[Hit]) -> Option<Breach> {
    let min_isr = input.min_insync_replicas.get(&tp.0).copied().unwrap_or(1).max(1) as usize;
    let mut starts: Vec<&Hit> = hits.iter().collect();
    starts.sort_by_key(|h| h.start_us);
    for h in &starts {
        let open: Vec<&&Hit> = starts
            .iter()
            .filter(|o| o.start_us <= h.start_us && o.end_us.is_none_or(|e| e > h.start_us))
            .collect();
        let nodes: BTreeSet<&str> = open.iter().map(|o| o.node.as_str()).collect();
        if nodes.len() >= min_isr {
            let what: Vec<&str> = open.iter().map(|o| o.what.as_str()).collect();
            return Some(Breach {
                text: format!(
                    "{} hit {} replica(s) of {}-{} within one window (min.insync.replicas={min_isr})",
                    what.join(" and "),
                    nodes.len(),
                    tp.0,
                    tp.1
                ),
                topic: tp.0,
                partition: tp.1,
                time_us: h.start_us,
            });
        }
    }
    None
}

/// When `node` (named `broker-ID`) was back in the ISR of `tp` after leaving it, per the controllers'
/// metadata trace, after `after_us`. None: it never was (the window stays open).
fn back_in_isr(trace: &[&MetadataState], tp: &Tp, node: &str, after_us: u64) -> Option<u64> {
    let id: i32 = node.strip_prefix("broker-")?.parse().ok()?;
    let key = format!("{}-{}", tp.0, tp.1);
    let in_isr = |m: &MetadataState| m.partitions.get(&key).is_some_and(|l| l.isr.contains(&id));
    let mut left = false;
    for m in trace.iter().filter(|m| m.time_us > after_us) {
        if !in_isr(m) {
            left = true;
        } else if left {
            return Some(m.time_us);
        }
    }
    None
}

/// `orders-0` → ("orders", 0).
pub(super) fn parse_tp(name: &str) -> Option<Tp> {
    let (topic, partition) = name.rsplit_once('-')?;
    Some((topic.to_string(), partition.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::FinalState;
    use crate::history::{History, Leadership, OpType};

    fn power_loss(h: &mut History, time_us: u64, node: &str) {
        let detail = BTreeMap::from([
            ("node".to_string(), serde_json::json!(node)),
            ("frontier".to_string(), serde_json::json!({"orders-0": 5})),
        ]);
        let body = OpBody::Fault {
            kind: "power_loss".into(),
            target: format!("node:{node}"),
            phase: FaultPhase::Start,
            detail,
        };
        h.push(time_us, "nemesis", OpType::Info, body, None);
    }

    fn isr(h: &mut History, time_us: u64, isr: &[i32]) {
        leadership(h, time_us, isr[0], 1, isr);
    }

    fn judge(h: &History, min_isr: u32) -> Vec<Breach> {
        let final_state = FinalState::default();
        let producers = BTreeMap::new();
        let min = BTreeMap::from([("orders".to_string(), min_isr)]);
        breaches(&CheckInput {
            ops: &h.ops,
            states: &h.states,
            raft_states: &h.raft_states,
            metadata_states: &h.metadata_states,
            final_state: &final_state,
            producers: &producers,
            min_insync_replicas: &min,
            compacted_topics: &std::collections::BTreeSet::new(),
            delete_retention_ms: &std::collections::BTreeMap::new(),
        })
    }

    #[test]
    fn one_power_loss_stays_in_contract_when_min_isr_is_two() {
        let mut h = History::default();
        isr(&mut h, 0, &[1, 2, 3]);
        power_loss(&mut h, 10, "broker-1");
        isr(&mut h, 20, &[2, 3]);
        isr(&mut h, 30, &[2, 3, 1]);
        assert!(judge(&h, 2).is_empty());
    }

    #[test]
    fn a_single_power_loss_breaches_min_isr_one() {
        let mut h = History::default();
        power_loss(&mut h, 10, "broker-1");
        let b = judge(&h, 1);
        assert_eq!(b.len(), 1, "{b:?}");
        assert!(b[0].text.contains("power loss of broker-1"), "{}", b[0].text);
    }

    #[test]
    fn two_power_losses_inside_one_window_breach_min_isr_two() {
        let mut h = History::default();
        isr(&mut h, 0, &[1, 2, 3]);
        power_loss(&mut h, 10, "broker-1");
        isr(&mut h, 20, &[2, 3]);
        // broker-2 loses power before broker-1 is back in the ISR.
        power_loss(&mut h, 25, "broker-2");
        let b = judge(&h, 2);
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(b[0].time_us, 25);
        assert!(b[0].text.contains("2 replica(s)"), "{}", b[0].text);
    }

    #[test]
    fn two_power_losses_in_separate_windows_stay_in_contract() {
        let mut h = History::default();
        isr(&mut h, 0, &[1, 2, 3]);
        power_loss(&mut h, 10, "broker-1");
        isr(&mut h, 20, &[2, 3]);
        isr(&mut h, 30, &[2, 3, 1]);
        power_loss(&mut h, 40, "broker-2");
        assert!(judge(&h, 2).is_empty());
    }

    #[test]
    fn a_replica_that_never_left_the_isr_keeps_its_window_open() {
        let mut h = History::default();
        isr(&mut h, 0, &[1, 2, 3]);
        power_loss(&mut h, 10, "broker-1");
        isr(&mut h, 20, &[1, 2, 3]);
        power_loss(&mut h, 40, "broker-2");
        assert_eq!(judge(&h, 2).len(), 1);
    }

    fn leadership(h: &mut History, time_us: u64, leader: i32, leader_epoch: i32, isr: &[i32]) {
        h.metadata_states.push(MetadataState {
            time_us,
            node: "controller-1".into(),
            incarnation: 1,
            offset: time_us as i64,
            fenced: vec![],
            brokers: vec![1, 2, 3],
            partitions: BTreeMap::from([(
                "orders-0".to_string(),
                Leadership {
                    leader,
                    leader_epoch,
                    isr: isr.to_vec(),
                },
            )]),
        });
    }

    #[test]
    fn a_leader_elected_from_outside_the_isr_is_an_unclean_election_and_takes_the_partition_out() {
        let mut h = History::default();
        leadership(&mut h, 1, 1, 1, &[1, 2, 3]);
        leadership(&mut h, 2, 1, 1, &[1]);
        leadership(&mut h, 3, -1, 2, &[1]);
        leadership(&mut h, 4, 2, 3, &[2]);
        let u = unclean_elections(&h.metadata_states);
        assert_eq!(u.len(), 1, "{u:?}");
        assert_eq!((u[0].leader, u[0].time_us, u[0].isr_before.clone()), (2, 4, vec![1]));
        let b = judge(&h, 1);
        assert_eq!(b.len(), 1, "{b:?}");
        assert!(b[0].text.contains("unclean election of orders-0"), "{}", b[0].text);
    }

    #[test]
    fn a_clean_election_from_the_isr_is_not_unclean() {
        let mut h = History::default();
        leadership(&mut h, 1, 1, 1, &[1, 2]);
        leadership(&mut h, 2, 2, 2, &[2]);
        leadership(&mut h, 3, 2, 2, &[2, 3]);
        leadership(&mut h, 4, 3, 3, &[3]);
        assert!(unclean_elections(&h.metadata_states).is_empty());
        assert!(judge(&h, 1).is_empty());
    }
}
