//! Invariants over the state trace (ARCHITECTURE §6, "online invariants"): pure functions over the replicas'
//! and the controllers' reports, in trace order. Each is a fold over the trace, so it can run after every
//! event as well as once at the end; [`ReplicaMonitor`] and [`RaftMonitor`] are those folds.
//!
//! Legal Kafka behaviour that they must not flag: a partition's high watermark going backwards across a leader
//! change or a restart (a new leader may know a lower one, KIP-207; an unclean election too), a follower's high
//! watermark dropping as it truncates (KIP-101/KIP-279), a restarted voter starting without a Raft high
//! watermark (KRaft does not persist it).

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::Anomaly;
use crate::history::{MetadataState, RaftRole, RaftState, ReplicaState};

/// The partition name Raft anomalies carry (KRaft's metadata log).
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// The broker or controller id a node name ends with (`broker-3` → 3), as the simulator names its nodes.
pub fn node_id_of(node: &str) -> Option<i32> {
    node.rsplit('-').next()?.parse().ok()
}

fn anomaly(class: &'static str, topic: &str, partition: i32, offset: Option<i64>, detail: String) -> Anomaly {
    Anomaly {
        class,
        topic: topic.to_string(),
        partition,
        offset,
        value: None,
        detail,
        explained_by: None,
    }
}

fn secs(time_us: u64) -> f64 {
    time_us as f64 / 1e6
}

/// Values keyed by (node, topic, rest), looked up with borrowed names: a report allocates only the first
/// time its node and topic appear (the monitor runs on every report, online too). Looked up only, never
/// iterated.
#[derive(Debug)]
struct ByNodeTopic<K, V>(FxHashMap<String, FxHashMap<String, BTreeMap<K, V>>>);

impl<K, V> Default for ByNodeTopic<K, V> {
    fn default() -> Self {
        ByNodeTopic(FxHashMap::default())
    }
}

impl<K: Ord, V> ByNodeTopic<K, V> {
    fn get(&self, node: &str, topic: &str, key: &K) -> Option<&V> {
        self.0.get(node)?.get(topic)?.get(key)
    }

    fn of(&mut self, node: &str, topic: &str) -> &mut BTreeMap<K, V> {
        if !self.0.contains_key(node) {
            self.0.insert(node.to_string(), FxHashMap::default());
        }
        let topics = self.0.get_mut(node).expect("inserted above");
        if !topics.contains_key(topic) {
            topics.insert(topic.to_string(), BTreeMap::new());
        }
        topics.get_mut(topic).expect("inserted above")
    }
}

/// The replica-side invariants, one report at a time:
/// - `log-bounds`: log_start_offset ≤ high_watermark ≤ log_end_offset in every report (Kafka's
///   `UnifiedLog.updateHighWatermark` clamps the high watermark into that range);
/// - `hw-regress`: on the leader's own reports, the high watermark never decreases within one tenure
///   (leader, leader epoch, incarnation). Across tenures it may (KIP-207);
/// - `epoch-regress`: the leader epoch one node reports for one partition never decreases within one
///   incarnation of that node.
#[derive(Debug, Default)]
pub struct ReplicaMonitor {
    /// By leader tenure: (node, topic, (incarnation, partition, leader epoch)).
    hw_by_tenure: ByNodeTopic<(u32, i32, i32), (i64, u64)>,
    /// By replica: (node, topic, (incarnation, partition)).
    epoch_by_replica: ByNodeTopic<(u32, i32), (i32, u64)>,
}

impl ReplicaMonitor {
    /// Checks one report against what came before it.
    pub fn observe(&mut self, s: &ReplicaState) -> Vec<Anomaly> {
        let mut out = vec![];
        let (t, p) = (&s.topic, s.partition);
        // Built only for an anomaly: this runs on every report, online too.
        let who = || format!("{} (incarnation {}) at {:.3}s", s.node, s.incarnation, secs(s.time_us));
        if s.log_start_offset > s.high_watermark || s.high_watermark > s.log_end_offset {
            let d = format!(
                "{}: log_start_offset={} high_watermark={} log_end_offset={}",
                who(),
                s.log_start_offset,
                s.high_watermark,
                s.log_end_offset
            );
            out.push(anomaly("log-bounds", t, p, Some(s.high_watermark), d));
        }
        let replica = (s.incarnation, p);
        if let Some(&(prev, prev_us)) = self.epoch_by_replica.get(&s.node, t, &replica) {
            if s.leader_epoch < prev {
                let d = format!(
                    "{}: leader epoch {} after {prev} at {:.3}s",
                    who(),
                    s.leader_epoch,
                    secs(prev_us)
                );
                out.push(anomaly("epoch-regress", t, p, None, d));
            }
        }
        if node_id_of(&s.node) == Some(s.leader) {
            let tenure = (s.incarnation, p, s.leader_epoch);
            if let Some(&(prev, prev_us)) = self.hw_by_tenure.get(&s.node, t, &tenure) {
                if s.high_watermark < prev {
                    let d = format!(
                        "leader {}, leader epoch {}: high watermark {} after {prev} at {:.3}s",
                        who(),
                        s.leader_epoch,
                        s.high_watermark,
                        secs(prev_us)
                    );
                    out.push(anomaly("hw-regress", t, p, Some(s.high_watermark), d));
                }
            }
            let best = self
                .hw_by_tenure
                .of(&s.node, t)
                .entry(tenure)
                .or_insert((s.high_watermark, s.time_us));
            if s.high_watermark >= best.0 {
                *best = (s.high_watermark, s.time_us);
            }
        }
        self.epoch_by_replica
            .of(&s.node, t)
            .insert(replica, (s.leader_epoch, s.time_us));
        out
    }
}

/// Runs [`ReplicaMonitor`] over a whole replica state trace.
pub fn replica_invariants(states: &[ReplicaState]) -> Vec<Anomaly> {
    let mut m = ReplicaMonitor::default();
    states.iter().flat_map(|s| m.observe(s)).collect()
}

/// The Raft-side invariants Kafka's own Raft simulation checks after every event, one report at a time:
/// - `raft-leaders`: at most one leader per epoch (from leaders' own reports and the leader others name);
/// - `raft-epoch-regress`: the epoch one voter reports never decreases, restarts included (KRaft persists
///   it in `quorum-state`);
/// - `raft-hw-regress`: the committed high watermark, as leaders report it, never decreases across the
///   cluster. A follower's or a restarted voter's may be lower or absent; a new leader reports none until it
///   has committed an entry of its own epoch.
#[derive(Debug, Default)]
pub struct RaftMonitor {
    leader_by_epoch: BTreeMap<i32, (i32, String, u64)>,
    epoch_by_node: BTreeMap<String, (i32, u64)>,
    /// The highest committed high watermark a leader has reported: (offset, node, epoch, time).
    committed: Option<(i64, String, i32, u64)>,
}

impl RaftMonitor {
    /// Checks one report against what came before it.
    pub fn observe(&mut self, s: &RaftState) -> Vec<Anomaly> {
        let mut out = vec![];
        let who = format!("{} (incarnation {}) at {:.3}s", s.node, s.incarnation, secs(s.time_us));
        let leader = match s.role {
            RaftRole::Leader => s.leader.or_else(|| node_id_of(&s.node)),
            _ => s.leader,
        };
        if let Some(id) = leader {
            match self.leader_by_epoch.get(&s.epoch) {
                Some((other, by, at_us)) if *other != id => {
                    let d = format!(
                        "epoch {}: {who} names leader {id}, {by} named {other} at {:.3}s",
                        s.epoch,
                        secs(*at_us)
                    );
                    out.push(anomaly("raft-leaders", METADATA_TOPIC, 0, None, d));
                }
                Some(_) => {}
                None => {
                    self.leader_by_epoch.insert(s.epoch, (id, s.node.clone(), s.time_us));
                }
            }
        }
        if let Some(&(prev, prev_us)) = self.epoch_by_node.get(&s.node) {
            if s.epoch < prev {
                let d = format!("{who}: epoch {} after {prev} at {:.3}s", s.epoch, secs(prev_us));
                out.push(anomaly("raft-epoch-regress", METADATA_TOPIC, 0, None, d));
            }
        }
        let e = self.epoch_by_node.entry(s.node.clone()).or_insert((s.epoch, s.time_us));
        if s.epoch >= e.0 {
            *e = (s.epoch, s.time_us);
        }
        if let (RaftRole::Leader, Some(hw)) = (s.role, s.high_watermark) {
            self.leader_hw(s, hw, &who, &mut out);
        }
        out
    }

    fn leader_hw(&mut self, s: &RaftState, hw: i64, who: &str, out: &mut Vec<Anomaly>) {
        match &self.committed {
            Some((best, by, epoch, at_us)) if hw < *best => {
                let d = format!(
                    "leader {who}, epoch {}: high watermark {hw} below {best} reported by leader {by} of epoch {epoch} at {:.3}s",
                    s.epoch,
                    secs(*at_us)
                );
                out.push(anomaly("raft-hw-regress", METADATA_TOPIC, 0, Some(hw), d));
            }
            _ => self.committed = Some((hw, s.node.clone(), s.epoch, s.time_us)),
        }
    }
}

/// The metadata invariants of the quorum issue, over what each node reports after applying metadata:
/// - `metadata-regress`: within one incarnation of a node, the applied offset and each partition's leader
///   epoch never go back (a restarted broker starts again from the log's start, so only per incarnation);
/// - `fenced-leader`: no applied metadata ever names a fenced broker as a partition's leader (KIP-631:
///   fencing and the leader change are one atomic batch);
/// - `metadata-divergence`: two nodes that applied the log up to the same offset agree on brokers, fencing
///   and every partition's leader, leader epoch and ISR (the committed log is one log).
#[derive(Debug, Default)]
pub struct MetadataMonitor {
    last: BTreeMap<(String, u32), MetadataState>,
    by_offset: BTreeMap<i64, MetadataState>,
}

impl MetadataMonitor {
    pub fn observe(&mut self, s: &MetadataState) -> Vec<Anomaly> {
        let mut out = vec![];
        let who = format!("{} (incarnation {}) at {:.3}s", s.node, s.incarnation, secs(s.time_us));
        for (tp, p) in &s.partitions {
            if s.fenced.contains(&p.leader) {
                let d = format!(
                    "{who}: metadata at offset {} has fenced broker {} leading {tp}",
                    s.offset, p.leader
                );
                out.push(anomaly("fenced-leader", tp, -1, Some(s.offset), d));
            }
        }
        let key = (s.node.clone(), s.incarnation);
        if let Some(prev) = self.last.get(&key) {
            if s.offset < prev.offset {
                let d = format!("{who}: applied offset {} after {}", s.offset, prev.offset);
                out.push(anomaly("metadata-regress", METADATA_TOPIC, 0, Some(s.offset), d));
            }
            for (tp, p) in &s.partitions {
                if let Some(before) = prev.partitions.get(tp) {
                    if p.leader_epoch < before.leader_epoch {
                        let d = format!(
                            "{who}: {tp} leader epoch {} after {}",
                            p.leader_epoch, before.leader_epoch
                        );
                        out.push(anomaly("metadata-regress", tp, -1, Some(s.offset), d));
                    }
                }
            }
        }
        self.last.insert(key, s.clone());
        match self.by_offset.get(&s.offset) {
            Some(first) if !same_metadata(first, s) => {
                let d = format!(
                    "{who} and {} (incarnation {}) applied offset {} and disagree: {}",
                    first.node,
                    first.incarnation,
                    s.offset,
                    metadata_difference(first, s)
                );
                out.push(anomaly("metadata-divergence", METADATA_TOPIC, 0, Some(s.offset), d));
            }
            Some(_) => {}
            None => {
                self.by_offset.insert(s.offset, s.clone());
            }
        }
        out
    }
}

fn same_metadata(a: &MetadataState, b: &MetadataState) -> bool {
    a.brokers == b.brokers && a.fenced == b.fenced && a.partitions == b.partitions
}

fn metadata_difference(a: &MetadataState, b: &MetadataState) -> String {
    if a.brokers != b.brokers {
        return format!("brokers {:?} vs {:?}", a.brokers, b.brokers);
    }
    if a.fenced != b.fenced {
        return format!("fenced {:?} vs {:?}", a.fenced, b.fenced);
    }
    let tps: std::collections::BTreeSet<&String> = a.partitions.keys().chain(b.partitions.keys()).collect();
    for tp in tps {
        let (x, y) = (a.partitions.get(tp), b.partitions.get(tp));
        if x != y {
            return format!("{tp}: {x:?} vs {y:?}");
        }
    }
    String::new()
}

/// Runs [`MetadataMonitor`] over a whole metadata trace.
pub fn metadata_invariants(states: &[MetadataState]) -> Vec<Anomaly> {
    let mut m = MetadataMonitor::default();
    states.iter().flat_map(|s| m.observe(s)).collect()
}

/// Runs [`RaftMonitor`] over a whole Raft state trace.
pub fn raft_invariants(states: &[RaftState]) -> Vec<Anomaly> {
    let mut m = RaftMonitor::default();
    states.iter().flat_map(|s| m.observe(s)).collect()
}

/// Every state-trace invariant as one fold: what the runner checks online, after every event, and what
/// [`replica_invariants`], [`raft_invariants`] and [`metadata_invariants`] check over a whole trace.
#[derive(Debug, Default)]
pub struct StateMonitor {
    pub replica: ReplicaMonitor,
    pub raft: RaftMonitor,
    pub metadata: MetadataMonitor,
}

/// One line per anomaly, as the online check reports them: `class topic-partition: detail`.
pub fn lines(anomalies: Vec<Anomaly>) -> Vec<String> {
    anomalies
        .into_iter()
        .map(|a| format!("{} {}-{}: {}", a.class, a.topic, a.partition, a.detail))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Leadership;

    fn meta(node: &str, incarnation: u32, offset: i64, fenced: &[i32], leader: i32, epoch: i32) -> MetadataState {
        MetadataState {
            time_us: offset as u64,
            node: node.into(),
            incarnation,
            offset,
            fenced: fenced.to_vec(),
            brokers: vec![1, 2, 3],
            partitions: BTreeMap::from([(
                "t-0".to_string(),
                Leadership {
                    leader,
                    leader_epoch: epoch,
                    isr: vec![1, 2, 3],
                },
            )]),
        }
    }

    #[test]
    fn metadata_that_lets_a_fenced_broker_lead_is_caught() {
        let found = metadata_invariants(&[meta("controller-1", 0, 4, &[2], 2, 1)]);
        assert_eq!(classes(&found), ["fenced-leader"]);
        assert!(metadata_invariants(&[meta("controller-1", 0, 4, &[2], 1, 1)]).is_empty());
    }

    #[test]
    fn metadata_going_back_within_an_incarnation_is_caught_but_a_restart_may_start_over() {
        let trace = [meta("broker-1", 0, 9, &[], 1, 3), meta("broker-1", 0, 7, &[], 1, 2)];
        let found = metadata_invariants(&trace);
        assert_eq!(classes(&found), ["metadata-regress", "metadata-regress"]);
        let restarted = [meta("broker-1", 0, 9, &[], 1, 3), meta("broker-1", 1, 2, &[], 1, 0)];
        let found = metadata_invariants(&restarted);
        assert!(found.iter().all(|a| a.class != "metadata-regress"), "{found:?}");
    }

    #[test]
    fn two_nodes_disagreeing_at_one_offset_is_divergence() {
        let trace = [meta("controller-1", 0, 5, &[], 1, 2), meta("broker-2", 0, 5, &[], 3, 2)];
        let found = metadata_invariants(&trace);
        assert_eq!(classes(&found), ["metadata-divergence"]);
        assert!(found[0].detail.contains("t-0"), "{}", found[0].detail);
        let agree = [meta("controller-1", 0, 5, &[], 1, 2), meta("broker-2", 0, 5, &[], 1, 2)];
        assert!(metadata_invariants(&agree).is_empty());
    }

    fn replica(time_us: u64, node: &str, incarnation: u32, leader: i32, leader_epoch: i32, hw: i64) -> ReplicaState {
        ReplicaState {
            time_us,
            node: node.into(),
            incarnation,
            topic: "t".into(),
            partition: 0,
            leader,
            leader_epoch,
            isr: vec![1, 2],
            log_start_offset: 0,
            log_end_offset: 10,
            high_watermark: hw,
        }
    }

    fn classes(found: &[Anomaly]) -> Vec<&'static str> {
        found.iter().map(|a| a.class).collect()
    }

    #[test]
    fn node_ids_come_from_the_node_name() {
        assert_eq!(node_id_of("broker-3"), Some(3));
        assert_eq!(node_id_of("controller-12"), Some(12));
        assert_eq!(node_id_of("drain"), None);
    }

    #[test]
    fn a_leader_high_watermark_that_drops_within_one_tenure_is_hw_regress() {
        let found = replica_invariants(&[replica(1, "broker-1", 0, 1, 3, 7), replica(2, "broker-1", 0, 1, 3, 5)]);
        assert_eq!(classes(&found), ["hw-regress"], "{found:?}");
        assert_eq!(found[0].offset, Some(5));
        assert!(found[0].detail.contains("after 7"), "{}", found[0].detail);
    }

    #[test]
    fn a_high_watermark_drop_across_a_leader_change_or_a_restart_is_legal() {
        let found = replica_invariants(&[
            replica(1, "broker-1", 0, 1, 3, 7),
            // KIP-207: the new leader (broker-2, epoch 4) knows a lower high watermark.
            replica(2, "broker-2", 0, 2, 4, 5),
            // Broker-1 follows and truncates: a follower's high watermark drops.
            replica(3, "broker-1", 0, 2, 4, 4),
            // Broker-2 restarts and leads again in a new incarnation, its high watermark not yet known.
            replica(4, "broker-2", 1, 2, 4, 2),
            replica(5, "broker-2", 1, 2, 4, 6),
        ]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_high_watermark_outside_the_log_bounds_is_caught() {
        let mut above_leo = replica(1, "broker-1", 0, 1, 0, 11);
        above_leo.log_end_offset = 10;
        let mut below_start = replica(2, "broker-2", 0, 1, 0, 3);
        below_start.log_start_offset = 4;
        let found = replica_invariants(&[above_leo, below_start]);
        assert_eq!(classes(&found), ["log-bounds", "log-bounds"], "{found:?}");
    }

    #[test]
    fn a_leader_epoch_that_drops_within_one_incarnation_is_epoch_regress() {
        let found = replica_invariants(&[replica(1, "broker-2", 0, 1, 5, 0), replica(2, "broker-2", 0, 1, 4, 0)]);
        assert_eq!(classes(&found), ["epoch-regress"], "{found:?}");
        // A restarted node reloads its metadata: a new incarnation is judged afresh.
        let found = replica_invariants(&[replica(1, "broker-2", 0, 1, 5, 0), replica(2, "broker-2", 1, 1, 4, 0)]);
        assert!(found.is_empty(), "{found:?}");
    }

    fn raft(
        time_us: u64,
        node: &str,
        incarnation: u32,
        role: RaftRole,
        epoch: i32,
        leader: Option<i32>,
        hw: Option<i64>,
    ) -> RaftState {
        RaftState {
            time_us,
            node: node.into(),
            incarnation,
            role,
            epoch,
            leader,
            high_watermark: hw,
        }
    }

    #[test]
    fn a_legal_election_with_a_restarted_voter_passes() {
        use RaftRole::*;
        let found = raft_invariants(&[
            raft(1, "controller-1", 0, Leader, 1, Some(1), Some(10)),
            raft(2, "controller-2", 0, Follower, 1, Some(1), Some(10)),
            raft(3, "controller-2", 0, Candidate, 2, None, Some(10)),
            // A new leader has no high watermark until it commits in its own epoch.
            raft(4, "controller-2", 0, Leader, 2, Some(2), None),
            raft(5, "controller-2", 0, Leader, 2, Some(2), Some(12)),
            // The old leader restarted: it does not persist the high watermark, and follows.
            raft(6, "controller-1", 1, Unattached, 2, None, None),
            raft(7, "controller-1", 1, Follower, 2, Some(2), Some(3)),
        ]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn two_leaders_in_one_epoch_are_caught() {
        use RaftRole::*;
        let found = raft_invariants(&[
            raft(1, "controller-1", 0, Leader, 3, None, None),
            raft(2, "controller-2", 0, Leader, 3, None, None),
        ]);
        assert_eq!(classes(&found), ["raft-leaders"], "{found:?}");
        let found = raft_invariants(&[
            raft(1, "controller-1", 0, Leader, 3, Some(1), None),
            raft(2, "controller-3", 0, Follower, 3, Some(2), None),
        ]);
        assert_eq!(classes(&found), ["raft-leaders"], "{found:?}");
    }

    #[test]
    fn a_voter_epoch_that_drops_even_across_a_restart_is_caught() {
        use RaftRole::*;
        let found = raft_invariants(&[
            raft(1, "controller-1", 0, Follower, 4, Some(2), None),
            raft(2, "controller-1", 1, Unattached, 3, None, None),
        ]);
        assert_eq!(classes(&found), ["raft-epoch-regress"], "{found:?}");
    }

    #[test]
    fn a_committed_raft_high_watermark_that_drops_across_leaders_is_caught() {
        use RaftRole::*;
        let found = raft_invariants(&[
            raft(1, "controller-1", 0, Leader, 1, Some(1), Some(10)),
            raft(2, "controller-2", 0, Leader, 2, Some(2), Some(8)),
        ]);
        assert_eq!(classes(&found), ["raft-hw-regress"], "{found:?}");
        assert_eq!(found[0].topic, METADATA_TOPIC);
    }
}
