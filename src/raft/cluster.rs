//! An in-memory cluster of [`RaftNode`]s for tests: a network of queued messages (delivered in any order,
//! dropped, duplicated or cut by a partition), one clock and seeded RNG per node, and a disk per node that
//! loses what was not flushed when the node crashes. It plays the shell's part exactly as the module doc
//! of [`super`] orders it. Pure and deterministic; the transcript tests and the model proptest drive it.

use std::collections::{BTreeMap, BTreeSet};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Entry, Message, PersistedState, RaftConfig, RaftNode, Ready};

/// One node's disk: the quorum-state file (always synced when written) and the log, durable or pending.
#[derive(Clone, Debug, Default)]
pub struct NodeDisk {
    pub epoch: i32,
    pub voted_for: Option<i32>,
    pub durable: Vec<Entry>,
    pending: Vec<LogOp>,
}

#[derive(Clone, Debug)]
enum LogOp {
    Truncate(u64),
    Append(Vec<Entry>),
}

impl NodeDisk {
    fn sync_log(&mut self) {
        for op in std::mem::take(&mut self.pending) {
            match op {
                LogOp::Truncate(t) => self.durable.truncate(t as usize),
                LogOp::Append(es) => self.durable.extend(es),
            }
        }
    }
}

pub struct SimNode {
    pub node: RaftNode,
    pub now_ms: i64,
    pub rng: ChaCha8Rng,
    pub disk: NodeDisk,
    /// While set, Readys are written but not flushed, advanced or sent (a slow disk).
    pub hold: bool,
    held: Vec<Ready>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    pub from: i32,
    pub to: i32,
    pub msg: Message,
}

pub struct Cluster {
    pub nodes: BTreeMap<i32, SimNode>,
    pub network: Vec<InFlight>,
    /// Groups that can talk among themselves; `None` = fully connected.
    pub partition: Option<Vec<BTreeSet<i32>>>,
    /// Every entry any node was told is committed, by offset.
    pub committed: BTreeMap<u64, Entry>,
    template: RaftConfig,
}

impl Cluster {
    pub fn new(voters: usize, seed: u64) -> Self {
        Self::with_config(RaftConfig::new(1, (1..=voters as i32).collect()), seed)
    }

    /// Voters and timeouts from `template` (its `node_id` is replaced per node).
    pub fn with_config(template: RaftConfig, seed: u64) -> Self {
        let mut nodes = BTreeMap::new();
        for &id in &template.voters {
            let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(id as u64));
            let config = RaftConfig {
                node_id: id,
                ..template.clone()
            };
            let node = RaftNode::new(config, PersistedState::default(), 0, &mut rng);
            let sim = SimNode {
                node,
                now_ms: 0,
                rng,
                disk: NodeDisk::default(),
                hold: false,
                held: vec![],
            };
            nodes.insert(id, sim);
        }
        let mut c = Cluster {
            nodes,
            network: vec![],
            partition: None,
            committed: BTreeMap::new(),
            template,
        };
        let ids: Vec<i32> = c.nodes.keys().copied().collect();
        for id in ids {
            c.process(id);
        }
        c
    }

    pub fn ids(&self) -> Vec<i32> {
        self.nodes.keys().copied().collect()
    }

    pub fn node(&self, id: i32) -> &RaftNode {
        &self.nodes[&id].node
    }

    pub fn can_talk(&self, a: i32, b: i32) -> bool {
        match &self.partition {
            None => true,
            Some(groups) => groups.iter().any(|g| g.contains(&a) && g.contains(&b)),
        }
    }

    /// Carries out every Ready the node has, as a shell would.
    pub fn process(&mut self, id: i32) {
        loop {
            let Some(sim) = self.nodes.get_mut(&id) else { return };
            let ready = sim.node.ready();
            if ready.is_empty() {
                return;
            }
            if let Some((epoch, voted_for)) = ready.persist_quorum_state {
                sim.disk.epoch = epoch;
                sim.disk.voted_for = voted_for;
            }
            if let Some(t) = ready.truncate_to {
                sim.disk.pending.push(LogOp::Truncate(t));
            }
            if !ready.append.is_empty() {
                sim.disk.pending.push(LogOp::Append(ready.append.clone()));
            }
            if sim.hold {
                sim.held.push(ready);
                return;
            }
            self.finish(id, vec![ready]);
        }
    }

    /// Flush, advance, send, apply — for Readys already written.
    fn finish(&mut self, id: i32, readies: Vec<Ready>) {
        for ready in readies {
            let sim = self.nodes.get_mut(&id).expect("node exists");
            sim.disk.sync_log();
            let messages = ready.messages.clone();
            let committed = ready.committed.clone();
            sim.node.advance(ready);
            for (to, msg) in messages {
                self.network.push(InFlight { from: id, to, msg });
            }
            for e in committed {
                let prev = self.committed.insert(e.offset, e.clone());
                assert!(
                    prev.as_ref().is_none_or(|p| *p == e),
                    "two entries committed at {}: {prev:?} and {e:?}",
                    e.offset
                );
            }
        }
    }

    pub fn set_hold(&mut self, id: i32, hold: bool) {
        let Some(sim) = self.nodes.get_mut(&id) else { return };
        sim.hold = hold;
        if !hold {
            let held = std::mem::take(&mut sim.held);
            self.finish(id, held);
            self.process(id);
        }
    }

    /// Delivers the message at `index` (removing it unless `duplicate`); a partition drops it.
    /// Returns whether it reached its target.
    pub fn deliver(&mut self, index: usize, duplicate: bool) -> bool {
        let m = if duplicate {
            self.network[index].clone()
        } else {
            self.network.remove(index)
        };
        if !self.can_talk(m.from, m.to) {
            return false;
        }
        let Some(sim) = self.nodes.get_mut(&m.to) else {
            return false;
        };
        sim.node.step(m.from, m.msg, sim.now_ms, &mut sim.rng);
        self.process(m.to);
        true
    }

    pub fn tick(&mut self, id: i32, elapsed_ms: i64) {
        let Some(sim) = self.nodes.get_mut(&id) else { return };
        sim.now_ms += elapsed_ms;
        sim.node.tick(sim.now_ms, &mut sim.rng);
        self.process(id);
    }

    pub fn campaign(&mut self, id: i32) {
        let Some(sim) = self.nodes.get_mut(&id) else { return };
        sim.node.campaign(sim.now_ms, &mut sim.rng);
        self.process(id);
    }

    pub fn resign(&mut self, id: i32) {
        let Some(sim) = self.nodes.get_mut(&id) else { return };
        sim.node.resign(sim.now_ms, &mut sim.rng);
        self.process(id);
    }

    pub fn propose(&mut self, id: i32, data: Vec<u8>) -> Result<u64, super::NotLeader> {
        let sim = self.nodes.get_mut(&id).expect("node exists");
        let r = sim.node.propose(data, sim.now_ms);
        self.process(id);
        r
    }

    /// Kills and restarts the node: unflushed log writes and held Readys are lost, and so are the
    /// messages on its way (its connections broke).
    pub fn crash(&mut self, id: i32) {
        let Some(sim) = self.nodes.get_mut(&id) else { return };
        sim.disk.pending.clear();
        sim.held.clear();
        sim.hold = false;
        let persisted = PersistedState {
            epoch: sim.disk.epoch,
            voted_for: sim.disk.voted_for,
            entries: sim.disk.durable.clone(),
            flushed_end: sim.disk.durable.len() as u64,
        };
        let config = RaftConfig {
            node_id: id,
            ..self.template.clone()
        };
        sim.node = RaftNode::new(config, persisted, sim.now_ms, &mut sim.rng);
        self.network.retain(|m| m.to != id);
        self.process(id);
    }

    /// The running leader of the highest epoch, if any.
    pub fn leader(&self) -> Option<i32> {
        self.nodes
            .values()
            .filter(|s| s.node.role() == super::Role::Leader)
            .max_by_key(|s| s.node.epoch())
            .map(|s| s.node.node_id())
    }
}
