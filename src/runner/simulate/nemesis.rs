//! The nemesis: carries out the fault plan against roles resolved when each fault fires, undoes lasting
//! faults at their end, restarts stopped nodes, and records every fault's start and end in the history
//! with what it did (the node it hit, a power loss's durable frontier, ...).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use madsim::net::NetSim;
use madsim::runtime::Handle;

use super::{PlannedFault, World};
use crate::history::{FaultPhase, OpBody, OpType};
use crate::rt;
use crate::scenario::{FaultKind, PartitionMode, Target};
use crate::sim::{self, logscan};

/// Something the nemesis must do later.
#[derive(Debug, Clone)]
pub(super) enum Pending {
    /// Restart a stopped broker.
    Restart(i32),
    /// Undo lasting fault `fault` (index in the plan) on broker `node`.
    End {
        fault: usize,
        node: i32,
    },
    /// Swizzle steps: clog or unclog one node.
    Clog(madsim::task::NodeId),
    Unclog(madsim::task::NodeId),
    /// Restart a crashed client node (its workload starts over: a new group member).
    RestartClient(String),
    /// Undo lasting fault `fault` on client `name`.
    EndClient {
        fault: usize,
        name: String,
    },
}

type Detail = BTreeMap<String, serde_json::Value>;

impl World {
    /// Carries out the fault plan and what it schedules, until the safety phase ends.
    pub(super) async fn nemesis(&mut self, start_us: u64, end_us: u64) {
        let mut next = 0;
        loop {
            let fault_at = self.plan.get(next).map(|f| start_us + f.at_us);
            let pending_at = self.pending.keys().next().copied();
            let Some(at) = [fault_at, pending_at].into_iter().flatten().min() else {
                break;
            };
            if at >= end_us {
                break;
            }
            let now = self.rec.now_us();
            if at > now {
                rt::sleep(Duration::from_micros(at - now)).await;
            }
            if pending_at == Some(at) {
                for p in self.pending.remove(&at).unwrap_or_default() {
                    match p {
                        Pending::Restart(id) => self.restart(id),
                        Pending::End { fault, node } => self.end_fault(fault, node),
                        Pending::Clog(id) => NetSim::current().clog_node(id),
                        Pending::Unclog(id) => NetSim::current().unclog_node(id),
                        Pending::RestartClient(name) => self.restart_client(&name),
                        Pending::EndClient { fault, name } => self.end_client_fault(fault, &name),
                    }
                }
            } else {
                next += 1;
                self.await_writes_in_flight(next - 1).await;
                self.inject(next - 1);
            }
        }
        let now = self.rec.now_us();
        if end_us > now {
            rt::sleep(Duration::from_micros(end_us - now)).await;
        }
    }

    /// Faults that exist to hit writes in flight fire at their time, or up to 50 ms later at the first moment
    /// a produce request is on the wire (FoundationDB-style: aim faults at interesting moments), so the marks
    /// they must hit are forced, not left to timing. With no writer at all they fire after the 50 ms.
    async fn await_writes_in_flight(&self, fault: usize) {
        let aims_at_writes = matches!(
            self.plan[fault].spec.kind,
            FaultKind::Crash
                | FaultKind::PowerLoss
                | FaultKind::Shutdown
                | FaultKind::Pause
                | FaultKind::Partition
                | FaultKind::Clog
                | FaultKind::DiskSlow
        );
        if !aims_at_writes {
            return;
        }
        if matches!(self.plan[fault].spec.target, Target::Coordinator(_)) && self.plan[fault].spec.kind.stops_the_node()
        {
            // A coordinator's crash waits (up to 500 ms) for an offset commit on the wire, the moment issue 7's
            // coordinator-failover names.
            for _ in 0..500 {
                if self.rec.commits_in_flight() > 0 {
                    return;
                }
                rt::sleep(Duration::from_millis(1)).await;
            }
            return;
        }
        if self.aims_at_acks_all_leader(fault) {
            // A crash of a partition's leader under acks=all waits (up to 200 ms) for batches on that leader
            // that the ISR does not have yet, the moment issue 6's mark names.
            for _ in 0..200 {
                if self.leader_awaiting_isr(fault) {
                    return;
                }
                rt::sleep(Duration::from_millis(1)).await;
            }
            return;
        }
        for _ in 0..50 {
            if self.rec.requests_in_flight() > 0 {
                return;
            }
            rt::sleep(Duration::from_millis(1)).await;
        }
    }

    /// A crash or power loss aimed at `leader:T-P` while a producer writes T with acks=all.
    fn aims_at_acks_all_leader(&self, fault: usize) -> bool {
        let spec = &self.plan[fault].spec;
        let Target::Leader(tp) = &spec.target else {
            return false;
        };
        matches!(spec.kind, FaultKind::Crash | FaultKind::PowerLoss)
            && self.s.file.producers.iter().any(|p| {
                let acks = crate::scenario::producer_config(p).get("acks").cloned();
                p.topic.get_ref() == &tp.topic && matches!(acks.as_deref(), None | Some("all") | Some("-1"))
            })
    }

    /// Whether the leader `fault` targets now holds batches above its high watermark.
    fn leader_awaiting_isr(&self, fault: usize) -> bool {
        let Target::Leader(tp) = &self.plan[fault].spec.target else {
            return false;
        };
        let Some(id) = self.resolve(&self.plan[fault].spec.target) else {
            return false;
        };
        let name = self.nodes.iter().find(|n| n.id == id).map(|n| n.name.as_str());
        name.is_some_and(|name| self.rec.leader_awaiting_isr(name, id, tp))
    }

    /// Heal: every lasting fault undone, every stopped node restarted (scheduled or not).
    pub(super) fn heal(&mut self) {
        self.pending.clear();
        for (fault, node) in std::mem::take(&mut self.active) {
            self.end_fault(fault, node);
        }
        for (fault, name) in std::mem::take(&mut self.active_clients) {
            self.end_client_fault(fault, &name);
        }
        let down: Vec<String> = self.clients_down.iter().cloned().collect();
        for name in down {
            self.restart_client(&name);
        }
        let down: Vec<i32> = self
            .nodes
            .iter()
            .filter(|b| !b.up || Handle::current().is_exit(b.node.id()))
            .map(|b| b.id)
            .collect();
        for id in down {
            self.nodes.iter_mut().filter(|b| b.id == id).for_each(|b| b.up = false);
            self.restart(id);
        }
    }

    /// Every node `target` names now: one, except `isr-but-one`, which names each follower in the ISR.
    fn resolve_all(&self, target: &Target) -> Vec<i32> {
        match target {
            Target::Follower(tp) | Target::IsrButOne(tp) => {
                let Some((leader, isr)) = self.leadership(tp) else {
                    return vec![];
                };
                let in_sync: Vec<i32> = isr.into_iter().filter(|r| *r != leader).collect();
                if matches!(target, Target::IsrButOne(_)) {
                    return in_sync;
                }
                let others: Vec<i32> = if in_sync.is_empty() {
                    let replicas = self.assignment.get(tp).cloned().unwrap_or_default();
                    replicas.into_iter().filter(|r| *r != leader).collect()
                } else {
                    in_sync
                };
                use rand::Rng;
                let mut rng = sim::stream(self.seed, &format!("follower:{tp}@{}", self.rec.now_us()));
                (!others.is_empty())
                    .then(|| others[rng.random_range(0..others.len())])
                    .into_iter()
                    .collect()
            }
            _ => self.resolve(target).into_iter().collect(),
        }
    }

    /// `tp`'s leader and ISR, from the newest committed metadata (or the static image without a quorum).
    fn leadership(&self, tp: &crate::types::TopicPartition) -> Option<(i32, Vec<i32>)> {
        if self.has_quorum() {
            let metadata = self.rec.latest_controller_metadata()?;
            let p = metadata.partitions.get(&tp.to_string())?;
            return Some((p.leader, p.isr.clone()));
        }
        let image = self
            .brokers()
            .next()?
            .image
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        image.partition(tp).map(|p| (p.leader, p.isr.clone()))
    }

    fn resolve(&self, target: &Target) -> Option<i32> {
        match target {
            Target::Follower(_) | Target::IsrButOne(_) => self.resolve_all(target).first().copied(),
            Target::Node(name) => self.nodes.iter().find(|b| &b.name == name).map(|b| b.id),
            Target::RandomBroker => {
                use rand::Rng;
                let mut rng = sim::stream(self.seed, &format!("broker:random@{}", self.rec.now_us()));
                let up: Vec<i32> = self.brokers().filter(|b| b.up).map(|b| b.id).collect();
                (!up.is_empty()).then(|| up[rng.random_range(0..up.len())])
            }
            Target::Leader(tp) if self.has_quorum() => {
                let metadata = self.rec.latest_controller_metadata()?;
                metadata
                    .partitions
                    .get(&tp.to_string())
                    .map(|p| p.leader)
                    .filter(|l| *l >= 0)
            }
            Target::Leader(tp) => {
                let image = self
                    .brokers()
                    .next()?
                    .image
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                image.partition(tp).map(|p| p.leader).filter(|l| *l >= 0)
            }
            Target::ActiveController => {
                let name = self.rec.raft_leader()?;
                self.nodes.iter().find(|n| n.name == name).map(|n| n.id)
            }
            Target::Coordinator(group) => {
                let tp = crate::types::TopicPartition::new(
                    crate::group::OFFSETS_TOPIC,
                    crate::group::partition_for(group, self.offsets_topic_num_partitions()),
                );
                self.resolve(&Target::Leader(tp))
            }
            Target::Client(_) => None,
        }
    }

    /// `offsets.topic.num.partitions` of the scenario's brokers (Kafka's default 50).
    fn offsets_topic_num_partitions(&self) -> i32 {
        crate::scenario::broker_config(&self.s.file.cluster)
            .get("offsets.topic.num.partitions")
            .and_then(|v| v.parse().ok())
            .filter(|n: &i32| *n > 0)
            .unwrap_or(crate::group::OFFSETS_TOPIC_NUM_PARTITIONS_DEFAULT)
    }

    /// A fault aimed at a workload client (`client:NAME`): crash (restarted after `restart_after_s` or at
    /// heal), pause (resumed after `duration_s`), partition/clog (undone after `duration_s`).
    fn inject_client(&mut self, fault: usize, name: &str) {
        let f = self.plan[fault].clone();
        let mut detail = Detail::from([("node".to_string(), serde_json::json!(name))]);
        let Some(&node_id) = self.client_nodes.get(name) else {
            detail.insert("skipped".into(), serde_json::json!("no such client node"));
            return self.record(&f, FaultPhase::Start, detail);
        };
        if self.clients_down.contains(name) {
            detail.insert("skipped".into(), serde_json::json!("the client is down"));
            return self.record(&f, FaultPhase::Start, detail);
        }
        let handle = Handle::current();
        let net = NetSim::current();
        match f.spec.kind {
            FaultKind::Crash | FaultKind::PowerLoss | FaultKind::Shutdown => {
                handle.kill(node_id);
                self.clients_down.insert(name.to_string());
                self.mark("client-crashed");
            }
            FaultKind::Pause => {
                handle.pause(node_id);
                self.mark("client-paused");
            }
            FaultKind::Partition | FaultKind::Clog => net.clog_node(node_id),
            _ => {
                detail.insert(
                    "skipped".into(),
                    serde_json::json!("this fault kind does not apply to a client"),
                );
                return self.record(&f, FaultPhase::Start, detail);
            }
        }
        self.record(&f, FaultPhase::Start, detail);
        let now = self.rec.now_us();
        if let Some(after) = f.restart_after_us {
            self.pending
                .entry(now + after.max(1))
                .or_default()
                .push(Pending::RestartClient(name.to_string()));
        }
        if let Some(d) = f.duration_us {
            self.active_clients.push((fault, name.to_string()));
            self.pending
                .entry(now + d.max(1))
                .or_default()
                .push(Pending::EndClient {
                    fault,
                    name: name.to_string(),
                });
        }
    }

    fn end_client_fault(&mut self, fault: usize, name: &str) {
        self.active_clients.retain(|(f, n)| !(*f == fault && n == name));
        let f = self.plan[fault].clone();
        let Some(&node_id) = self.client_nodes.get(name) else {
            return;
        };
        match f.spec.kind {
            FaultKind::Pause => Handle::current().resume(node_id),
            FaultKind::Partition | FaultKind::Clog => NetSim::current().unclog_node(node_id),
            _ => {}
        }
        let detail = Detail::from([("node".to_string(), serde_json::json!(name))]);
        self.record(&f, FaultPhase::End, detail);
    }

    /// Restarts a crashed client node: its init runs the workload again (kill before restart, madsim).
    fn restart_client(&mut self, name: &str) {
        if !self.clients_down.remove(name) {
            return;
        }
        let Some(&node_id) = self.client_nodes.get(name) else {
            return;
        };
        let handle = Handle::current();
        handle.kill(node_id);
        handle.restart(node_id);
        let body = OpBody::Fault {
            kind: "restart".into(),
            target: format!("client:{name}"),
            phase: FaultPhase::End,
            detail: Detail::from([("node".to_string(), serde_json::json!(name))]),
        };
        self.rec.op("nemesis", OpType::Info, body, None);
    }

    fn record(&self, f: &PlannedFault, phase: FaultPhase, detail: Detail) {
        let body = OpBody::Fault {
            kind: f.spec.kind.name().to_string(),
            target: f.spec.target.describe(),
            phase,
            detail,
        };
        self.rec.op("nemesis", OpType::Info, body, None);
    }

    fn mark(&mut self, mark: &str) {
        *self.marks.entry(mark.to_string()).or_default() += 1;
    }

    fn inject(&mut self, fault: usize) {
        let f = self.plan[fault].clone();
        if let Target::Client(name) = &f.spec.target {
            return self.inject_client(fault, name);
        }
        if matches!(f.spec.target, Target::Coordinator(_)) && f.spec.kind.stops_the_node() {
            self.mark("coordinator-crashed");
            if self.rec.commits_in_flight() > 0 {
                self.mark("coordinator-crashed-with-commit-in-flight");
            }
        }
        let ids = self.resolve_all(&f.spec.target);
        if ids.is_empty() {
            let detail = Detail::from([(
                "skipped".to_string(),
                serde_json::json!("no node matches the target now"),
            )]);
            return self.record(&f, FaultPhase::Start, detail);
        }
        for id in ids {
            self.inject_at(fault, id);
        }
    }

    /// Injects fault `fault` on node `id`.
    fn inject_at(&mut self, fault: usize, id: i32) {
        let f = self.plan[fault].clone();
        let idx = self.nodes.iter().position(|b| b.id == id).unwrap_or(0);
        let mut detail = Detail::from([("node".to_string(), serde_json::json!(self.nodes[idx].name))]);
        if !self.nodes[idx].up {
            detail.insert("skipped".into(), serde_json::json!("the node is down"));
            return self.record(&f, FaultPhase::Start, detail);
        }
        // A produce request on the wire or awaiting its answer (not merely records queued in a client).
        let is_broker = self.nodes[idx].kind == super::NodeKind::Broker;
        let in_flight = is_broker && self.rec.requests_in_flight() > 0;
        if !is_broker && self.rec.raft_leader().as_deref() == Some(self.nodes[idx].name.as_str()) {
            detail.insert("active_controller".into(), serde_json::json!(true));
            match f.spec.kind {
                FaultKind::Crash => self.mark("active-controller-crashed"),
                FaultKind::PowerLoss => self.mark("active-controller-lost-power"),
                FaultKind::Partition | FaultKind::Clog => self.mark("active-controller-isolated"),
                FaultKind::Pause => self.mark("active-controller-paused"),
                _ => {}
            }
        }
        if self.aims_at_acks_all_leader(fault) && self.leader_awaiting_isr(fault) {
            detail.insert("acks_all_awaiting_isr".into(), serde_json::json!(true));
            match f.spec.kind {
                FaultKind::Crash => self.mark("leader-crashed-with-acks-all-in-flight"),
                _ => self.mark("leader-lost-power-with-acks-all-in-flight"),
            }
        }
        let handle = Handle::current();
        let node_id = self.nodes[idx].node.id();
        let net = NetSim::current();
        let disk = self.nodes[idx].disk.clone();
        match f.spec.kind {
            FaultKind::Crash => {
                handle.kill(node_id);
                disk.crash();
                if in_flight {
                    self.mark("broker-crashed-with-sends-in-flight");
                }
            }
            FaultKind::PowerLoss if !is_broker => {
                handle.kill(node_id);
                let report = disk.power_loss();
                let lost: usize = report.files.iter().map(|f| f.pending_ops_lost).sum();
                detail.insert("pending_ops_lost".into(), serde_json::json!(lost));
            }
            FaultKind::PowerLoss => {
                handle.kill(node_id);
                self.power_loss(idx, in_flight, &mut detail);
            }
            FaultKind::Shutdown => {
                // Kafka's controlled shutdown on SIGTERM: the broker flushes, checkpoints and exits.
                handle.send_ctrl_c(node_id);
                if in_flight {
                    self.mark("broker-shut-down-with-sends-in-flight");
                }
            }
            FaultKind::Pause => {
                handle.pause(node_id);
                if in_flight {
                    self.mark("broker-paused-with-sends-in-flight");
                }
            }
            FaultKind::Partition => {
                let mode = f.spec.params.mode;
                detail.insert("mode".into(), serde_json::json!(mode.name()));
                self.partition(fault, idx, mode, &mut detail);
                if in_flight && matches!(mode, PartitionMode::Isolate | PartitionMode::FromCluster) {
                    self.mark("broker-isolated-with-sends-in-flight");
                }
            }
            FaultKind::Clog => {
                net.clog_node(node_id);
                if in_flight {
                    self.mark("broker-isolated-with-sends-in-flight");
                }
            }
            FaultKind::PacketLoss => {
                let rate = f.spec.params.rate;
                net.update_config(|c| c.packet_loss_rate = rate);
                detail.insert("rate".into(), serde_json::json!(rate));
                self.mark("network-degraded");
            }
            FaultKind::Latency => {
                let (lo, hi) = f.spec.params.latency_ms;
                net.update_config(|c| c.send_latency = latency(lo, hi));
                detail.insert("latency_ms".into(), serde_json::json!([lo, hi]));
                self.mark("network-degraded");
            }
            FaultKind::DiskEio => {
                let mut c = disk.config();
                c.eio_rate = f.spec.params.rate;
                disk.set_config(c);
                detail.insert("rate".into(), serde_json::json!(f.spec.params.rate));
            }
            FaultKind::DiskFull => {
                let used: u64 = disk.files().iter().map(|(_, len)| len).sum();
                let mut c = disk.config();
                c.capacity_bytes = Some(used);
                disk.set_config(c);
                detail.insert("capacity_bytes".into(), serde_json::json!(used));
            }
            FaultKind::DiskBitflip => self.bitflip(idx, &mut detail),
            FaultKind::Swizzle => {
                self.swizzle(f.duration_us.unwrap_or(1_000_000), &mut detail);
                self.mark("swizzle-clogged-every-node");
            }
            FaultKind::ClockSkew => {
                self.nodes[idx].clock.set_skew_ms(f.spec.params.skew_ms);
                detail.insert("skew_ms".into(), serde_json::json!(f.spec.params.skew_ms));
                self.mark("broker-clock-skewed");
            }
            FaultKind::DropResponse => {
                self.nodes[idx].responses.set_drop_rate(f.spec.params.rate);
                detail.insert("rate".into(), serde_json::json!(f.spec.params.rate));
            }
            FaultKind::ConnReset => {
                self.nodes[idx].responses.set_reset_rate(f.spec.params.rate);
                detail.insert("rate".into(), serde_json::json!(f.spec.params.rate));
            }
            FaultKind::DiskSlow => {
                let mut c = disk.config();
                c.slow_factor = f.spec.params.factor;
                disk.set_config(c);
                detail.insert("factor".into(), serde_json::json!(f.spec.params.factor));
                if in_flight {
                    self.mark("broker-disk-slow-with-sends-in-flight");
                }
            }
        }
        if f.spec.kind.stops_the_node() {
            self.nodes[idx].up = false;
        }
        self.record(&f, FaultPhase::Start, detail);
        let now = self.rec.now_us();
        if let Some(after) = f.restart_after_us {
            self.pending
                .entry(now + after.max(1))
                .or_default()
                .push(Pending::Restart(id));
        }
        if let Some(d) = f.duration_us {
            self.active.push((fault, id));
            self.pending
                .entry(now + d.max(1))
                .or_default()
                .push(Pending::End { fault, node: id });
        }
    }

    /// The power loss itself: the disk keeps what was synced plus a torn prefix of the rest; the history
    /// records, per partition, the first offset not wholly on disk (the durable frontier).
    fn power_loss(&mut self, idx: usize, in_flight: bool, detail: &mut Detail) {
        let id = self.nodes[idx].id;
        let before = logscan::all_records(&self.nodes[idx].disk);
        let report = self.nodes[idx].disk.power_loss();
        let disk = &self.nodes[idx].disk;
        let mut frontier = logscan::intact_frontiers(&before, &logscan::all_records(disk));
        for (tp, _) in self.assignment.iter().filter(|(_, r)| r.contains(&id)) {
            frontier.entry(tp.to_string()).or_insert(0);
        }
        let torn = logscan::has_torn_tail(disk);
        if torn {
            self.mark("power-loss-left-a-torn-tail");
        }
        if in_flight {
            self.mark("broker-lost-power-with-sends-in-flight");
        }
        let lost: usize = report.files.iter().map(|f| f.pending_ops_lost).sum();
        detail.insert("frontier".into(), serde_json::json!(frontier));
        detail.insert("pending_ops_lost".into(), serde_json::json!(lost));
    }

    /// A network partition among the cluster's nodes (brokers and controllers; clients stay connected), as
    /// Jepsen's nemeses cut it. Links cut one by one are remembered so that the fault's end restores them.
    fn partition(&mut self, fault: usize, idx: usize, mode: PartitionMode, detail: &mut Detail) {
        use rand::seq::SliceRandom;
        let net = NetSim::current();
        let target = self.nodes[idx].node.id();
        match mode {
            PartitionMode::Isolate => net.clog_node(target),
            PartitionMode::OneWay => net.clog_node_in(target),
            PartitionMode::Halves | PartitionMode::FromCluster | PartitionMode::Ring => {
                let mut rng = sim::stream(self.seed, &format!("partition@{}", self.rec.now_us()));
                let mut others: Vec<usize> = (0..self.nodes.len()).filter(|i| *i != idx).collect();
                others.shuffle(&mut rng);
                let order: Vec<usize> = std::iter::once(idx).chain(others).collect();
                let n = order.len();
                let connected: Box<dyn Fn(usize, usize) -> bool> = if mode != PartitionMode::Ring {
                    // The target and (n-1)/2 - 1 others form the minority (the target alone from-cluster).
                    let minority = minority_size(mode, n);
                    Box::new(move |a, b| (a < minority) == (b < minority))
                } else {
                    // Each node sees its ring neighbours within `reach`: itself and them make a majority.
                    let majority = n / 2 + 1;
                    let reach = majority / 2;
                    Box::new(move |a, b| {
                        let d = a.abs_diff(b);
                        d.min(n - d) <= reach
                    })
                };
                let mut cut = vec![];
                for a in 0..n {
                    for b in 0..n {
                        if a != b && !connected(a, b) {
                            let (x, y) = (self.nodes[order[a]].node.id(), self.nodes[order[b]].node.id());
                            net.clog_link(x, y);
                            cut.push((x, y));
                        }
                    }
                }
                let names: Vec<String> = order.iter().map(|i| self.nodes[*i].name.clone()).collect();
                if mode != PartitionMode::Ring {
                    let minority = minority_size(mode, n);
                    detail.insert("minority".into(), serde_json::json!(names[..minority]));
                    detail.insert("majority".into(), serde_json::json!(names[minority..]));
                    if mode == PartitionMode::Halves {
                        self.mark("network-split-in-halves");
                    }
                } else {
                    detail.insert("ring".into(), serde_json::json!(names));
                    self.mark("network-split-in-a-majorities-ring");
                }
                self.cut_links.insert(fault, cut);
            }
        }
    }

    fn swizzle_nodes(&self) -> Vec<madsim::task::NodeId> {
        self.nodes
            .iter()
            .map(|b| b.node.id())
            .chain(self.clients.iter().copied())
            .collect()
    }

    /// Clogs every node one by one over the first half of `duration_us` in a seeded order, and unclogs them one
    /// by one over the second half in another.
    fn swizzle(&mut self, duration_us: u64, detail: &mut Detail) {
        use rand::seq::SliceRandom;
        let mut rng = sim::stream(self.seed, &format!("swizzle@{}", self.rec.now_us()));
        let mut nodes = self.swizzle_nodes();
        let step = duration_us / (2 * nodes.len().max(1) as u64 + 1);
        let now = self.rec.now_us();
        nodes.shuffle(&mut rng);
        for (i, id) in nodes.iter().enumerate() {
            self.pending
                .entry(now + step * i as u64)
                .or_default()
                .push(Pending::Clog(*id));
        }
        let names: BTreeMap<String, String> = self
            .nodes
            .iter()
            .map(|b| (b.node.id().to_string(), b.name.clone()))
            .chain(
                self.clients
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (id.to_string(), super::producer_name(&self.s, i))),
            )
            .collect();
        let name = |id: &madsim::task::NodeId| names.get(&id.to_string()).cloned().unwrap_or_else(|| id.to_string());
        let clog_order: Vec<String> = nodes.iter().map(name).collect();
        nodes.shuffle(&mut rng);
        let base = now + step * (nodes.len() as u64 + 1);
        for (i, id) in nodes.iter().enumerate() {
            self.pending
                .entry(base + step * i as u64)
                .or_default()
                .push(Pending::Unclog(*id));
        }
        let unclog_order: Vec<String> = nodes.iter().map(name).collect();
        detail.insert("clog_order".into(), serde_json::json!(clog_order));
        detail.insert("unclog_order".into(), serde_json::json!(unclog_order));
    }

    /// Flips one bit inside what a record batch's CRC covers, in a log segment of one of the node's partitions.
    fn bitflip(&mut self, idx: usize, detail: &mut Detail) {
        use rand::Rng;
        let disk = self.nodes[idx].disk.clone();
        let mut rng = sim::stream(self.seed, &format!("bitflip@{}", self.rec.now_us()));
        let dirs: Vec<String> = logscan::partition_dirs(&disk)
            .into_iter()
            .filter(|d| logscan::frontier(&disk, d) > 0)
            .collect();
        let flipped = (!dirs.is_empty())
            .then(|| dirs[rng.random_range(0..dirs.len())].clone())
            .and_then(|dir| logscan::crc_covered_byte(&disk, &dir, &mut |n| rng.random_range(0..n)))
            .map(|(path, byte)| {
                let bit = rng.random_range(0..8u8);
                (disk.flip_bit_at(&path, byte, bit), path, byte, bit)
            });
        match flipped {
            Some((true, path, byte, bit)) => {
                detail.insert("path".into(), serde_json::json!(path));
                detail.insert("byte".into(), serde_json::json!(byte));
                detail.insert("bit".into(), serde_json::json!(bit));
                self.mark("bit-flipped-in-a-log-segment");
            }
            _ => {
                detail.insert("skipped".into(), serde_json::json!("no record batch on disk yet"));
            }
        }
    }

    /// Undoes lasting fault `fault` on broker `node`; a broker its disk fault stopped is restarted.
    fn end_fault(&mut self, fault: usize, node: i32) {
        self.active.retain(|a| *a != (fault, node));
        let f = self.plan[fault].clone();
        let Some(idx) = self.nodes.iter().position(|b| b.id == node) else {
            return;
        };
        let handle = Handle::current();
        let node_id = self.nodes[idx].node.id();
        let net = NetSim::current();
        let disk = self.nodes[idx].disk.clone();
        let mut detail = Detail::from([("node".to_string(), serde_json::json!(self.nodes[idx].name))]);
        // A split's own links are restored whatever else is in force (each split remembers the links it cut).
        if let Some(links) = self.cut_links.remove(&fault) {
            for (a, b) in links {
                net.unclog_link(a, b);
            }
            self.record(&f, FaultPhase::End, detail);
            return;
        }
        // Overlapping faults of one kind: the setting stays until the last of them ends (network settings
        // are global in madsim, so for those any node's counts).
        let global = matches!(f.spec.kind, FaultKind::PacketLoss | FaultKind::Latency);
        let still = self
            .active
            .iter()
            .any(|(other, n)| self.plan[*other].spec.kind == f.spec.kind && (global || *n == node));
        if still {
            detail.insert("still_in_force".into(), serde_json::json!("another fault of this kind"));
            self.record(&f, FaultPhase::End, detail);
            return;
        }
        match f.spec.kind {
            FaultKind::Pause => handle.resume(node_id),
            FaultKind::Swizzle => {
                // Every node was unclogged step by step; make sure (heal may end it early).
                for id in self.swizzle_nodes() {
                    net.unclog_node(id);
                }
                self.pending
                    .values_mut()
                    .for_each(|v| v.retain(|p| !matches!(p, Pending::Clog(_) | Pending::Unclog(_))));
            }
            FaultKind::Partition => match f.spec.params.mode {
                PartitionMode::Isolate => net.unclog_node(node_id),
                PartitionMode::OneWay => net.unclog_node_in(node_id),
                PartitionMode::Halves | PartitionMode::FromCluster | PartitionMode::Ring => {} // restored above
            },
            FaultKind::Clog => net.unclog_node(node_id),
            FaultKind::PacketLoss => net.update_config(|c| c.packet_loss_rate = 0.0),
            FaultKind::Latency => {
                let [lo, hi] = *self.s.file.network.latency_ms.get_ref();
                net.update_config(|c| c.send_latency = latency(lo, hi));
            }
            FaultKind::DiskEio | FaultKind::DiskFull | FaultKind::DiskSlow => {
                // Undo only this fault's own setting: overlapping disk faults end one by one.
                let mut c = disk.config();
                match f.spec.kind {
                    FaultKind::DiskEio => c.eio_rate = 0.0,
                    FaultKind::DiskFull => c.capacity_bytes = None,
                    _ => c.slow_factor = 1,
                }
                disk.set_config(c);
            }
            FaultKind::DropResponse => self.nodes[idx].responses.set_drop_rate(0.0),
            FaultKind::ClockSkew => self.nodes[idx].clock.set_skew_ms(0),
            FaultKind::ConnReset => self.nodes[idx].responses.set_reset_rate(0.0),
            FaultKind::Crash | FaultKind::PowerLoss | FaultKind::Shutdown | FaultKind::DiskBitflip => {}
        }
        // A broker whose log dir failed shut itself down (KIP-112): bring it back once the disk is healthy.
        if self.nodes[idx].up && handle.is_exit(node_id) {
            let exit = self.nodes[idx]
                .last_exit
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if matches!(exit, Some(crate::node::broker::BrokerExit::StorageFailure(_))) {
                self.mark("storage-failure-stopped-the-broker");
            }
            detail.insert("broker_stopped".into(), serde_json::json!(format!("{exit:?}")));
            self.nodes[idx].up = false;
            self.record(&f, FaultPhase::End, detail);
            self.restart(node);
            return;
        }
        self.record(&f, FaultPhase::End, detail);
    }

    /// Restarts a broker: with a static image, a restarted broker comes back with its partitions' leader
    /// epochs bumped, as the quorum would give it. Always kill before restart (madsim).
    pub(super) fn restart(&mut self, id: i32) {
        let has_quorum = self.has_quorum();
        let Some(b) = self.nodes.iter_mut().find(|b| b.id == id) else {
            return;
        };
        if b.up {
            return;
        }
        if !has_quorum {
            // The static image stands in for the quorum: a restarted broker's partitions get new epochs.
            b.image
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .bump_leader_epochs_of(id);
        }
        b.incarnation.fetch_add(1, Ordering::Relaxed);
        // What log recovery will cut at this start (a corrupt batch after the recovery point): the checkers
        // need it to tell a legal truncation from a lost write.
        let truncations = logscan::recovery_truncations(&b.disk);
        let handle = Handle::current();
        handle.kill(b.node.id());
        handle.restart(b.node.id());
        b.up = true;
        let mut detail = Detail::from([("node".to_string(), serde_json::json!(b.name))]);
        if !truncations.is_empty() {
            detail.insert("recovery_truncates".into(), serde_json::json!(truncations));
        }
        let body = OpBody::Fault {
            kind: "restart".into(),
            target: format!("node:{}", b.name),
            phase: FaultPhase::End,
            detail,
        };
        self.rec.op("nemesis", OpType::Info, body, None);
    }
}

/// madsim's latency range from milliseconds (never empty).
pub(super) fn latency(lo_ms: f64, hi_ms: f64) -> std::ops::Range<Duration> {
    let lo = Duration::from_secs_f64(lo_ms / 1e3);
    let hi = Duration::from_secs_f64(hi_ms / 1e3).max(lo + Duration::from_micros(1));
    lo..hi
}

/// How many of `n` cluster nodes (the target first) a `halves` or `from-cluster` partition cuts off.
fn minority_size(mode: PartitionMode, n: usize) -> usize {
    match mode {
        PartitionMode::FromCluster => 1,
        _ => ((n - 1) / 2).max(1),
    }
}
