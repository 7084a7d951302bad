//! Model test of the KRaft core: a small in-memory cluster (3 or 5 voters) under random message orders,
//! drops, duplicate deliveries, ticks, crashes that lose unflushed writes, slow disks, partitions and
//! proposals. After every step the online invariants of Kafka's `RaftEventSimulationTest` hold: one
//! leader per epoch, a node's epoch never decreases, the high watermark reported by the newest leader
//! never decreases, every committed entry is durable on a majority (and no offset is committed twice with
//! different entries — checked by the cluster). At the end, after healing, some leader exists and every
//! voter agrees with it below its high watermark.

use std::collections::{BTreeMap, BTreeSet};

use gregor::raft::cluster::Cluster;
use gregor::raft::Role;
use proptest::prelude::*;
use proptest::sample::Index;

#[derive(Clone, Debug)]
enum Action {
    Deliver(Index),
    Duplicate(Index),
    Drop(Index),
    Tick(Index, i64),
    Crash(Index),
    Propose(Index, bool),
    DeliverAll,
    Hold(Index, bool),
    Isolate(Index),
    Heal,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        12 => any::<Index>().prop_map(Action::Deliver),
        1 => any::<Index>().prop_map(Action::Duplicate),
        1 => any::<Index>().prop_map(Action::Drop),
        5 => (any::<Index>(), 0i64..1500).prop_map(|(n, ms)| Action::Tick(n, ms)),
        1 => any::<Index>().prop_map(Action::Crash),
        4 => (any::<Index>(), any::<bool>()).prop_map(|(n, to_leader)| Action::Propose(n, to_leader)),
        3 => Just(Action::DeliverAll),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(n, h)| Action::Hold(n, h)),
        1 => any::<Index>().prop_map(Action::Isolate),
        1 => Just(Action::Heal),
    ]
}

#[derive(Default)]
struct Tracker {
    leader_of_epoch: BTreeMap<i32, i32>,
    epoch_of: BTreeMap<i32, i32>,
    hw_epoch: i32,
    hw_max: u64,
}

impl Tracker {
    fn check(&mut self, c: &Cluster) {
        for id in c.ids() {
            let n = c.node(id);
            let last = self.epoch_of.insert(id, n.epoch()).unwrap_or(0);
            assert!(n.epoch() >= last, "node {id} epoch went back: {last} -> {}", n.epoch());
            if matches!(n.role(), Role::Leader | Role::Resigned) {
                let prev = *self.leader_of_epoch.entry(n.epoch()).or_insert(id);
                assert_eq!(prev, id, "two leaders in epoch {}: {prev} and {id}", n.epoch());
            }
            if let (Role::Leader, Some(hw)) = (n.role(), n.high_watermark()) {
                if n.epoch() >= self.hw_epoch {
                    assert!(
                        hw >= self.hw_max,
                        "leader {id} of epoch {} reports hw={hw} below {}",
                        n.epoch(),
                        self.hw_max
                    );
                    self.hw_epoch = n.epoch();
                    self.hw_max = hw;
                }
            }
        }
        let majority = c.ids().len() / 2 + 1;
        for (offset, entry) in &c.committed {
            let holders = c
                .nodes
                .values()
                .filter(|s| s.disk.durable.get(*offset as usize) == Some(entry))
                .count();
            assert!(holders >= majority, "committed {entry} durable on {holders} nodes only");
        }
    }
}

fn pick(c: &Cluster, i: &Index) -> i32 {
    let ids = c.ids();
    ids[i.index(ids.len())]
}

fn apply(c: &mut Cluster, a: &Action, proposals: &mut u64) {
    match a {
        Action::Deliver(i) | Action::Duplicate(i) | Action::Drop(i) if !c.network.is_empty() => {
            let idx = i.index(c.network.len());
            match a {
                Action::Drop(_) => {
                    c.network.remove(idx);
                }
                Action::Duplicate(_) => {
                    c.deliver(idx, true);
                }
                _ => {
                    c.deliver(idx, false);
                }
            }
        }
        Action::Tick(n, ms) => c.tick(pick(c, n), *ms),
        Action::Crash(n) => c.crash(pick(c, n)),
        Action::Propose(n, to_leader) => {
            *proposals += 1;
            let id = if *to_leader {
                c.leader().unwrap_or_else(|| pick(c, n))
            } else {
                pick(c, n)
            };
            let _ = c.propose(id, format!("p{proposals}").into_bytes());
        }
        Action::DeliverAll => {
            for _ in 0..c.network.len() {
                c.deliver(0, false);
            }
        }
        Action::Hold(n, h) => c.set_hold(pick(c, n), *h),
        Action::Isolate(n) => {
            let id = pick(c, n);
            let rest: BTreeSet<i32> = c.ids().into_iter().filter(|&x| x != id).collect();
            c.partition = Some(vec![BTreeSet::from([id]), rest]);
        }
        Action::Heal => c.partition = None,
        _ => {}
    }
}

/// Heals everything and runs rounds of (tick every node 100 ms, deliver until quiet) until some leader's
/// high watermark covers its log and every voter holds that log; returns the rounds it took.
fn heal_and_stabilize(c: &mut Cluster, t: &mut Tracker) -> Option<usize> {
    c.partition = None;
    for id in c.ids() {
        c.set_hold(id, false);
    }
    for round in 0..400 {
        for id in c.ids() {
            c.tick(id, 100);
        }
        for _ in 0..10_000 {
            if c.network.is_empty() {
                break;
            }
            c.deliver(0, false);
            t.check(c);
        }
        if converged(c) {
            return Some(round);
        }
        if std::env::var("RAFT_TRACE").is_ok() && round < 30 {
            for id in c.ids() {
                let n = c.node(id);
                eprintln!(
                    "  r{round} {id} {:?} e={} v={:?} hw={:?} leo={} next={:?} now={}",
                    n.role(),
                    n.epoch(),
                    n.voted_for(),
                    n.high_watermark(),
                    n.log().log_end_offset(),
                    n.next_deadline(),
                    c.nodes[&id].now_ms
                );
            }
        }
    }
    None
}

fn converged(c: &Cluster) -> bool {
    let Some(l) = c.leader() else { return false };
    let leader = c.node(l);
    let Some(hw) = leader.high_watermark() else {
        return false;
    };
    let below = leader.log().slice(0, hw);
    c.ids().iter().all(|&id| c.node(id).log().slice(0, hw) == below)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn kraft_keeps_its_invariants_under_faults(
        voters in prop_oneof![Just(3usize), Just(5usize)],
        seed in any::<u64>(),
        actions in prop::collection::vec(action(), 1..300),
    ) {
        let mut c = Cluster::new(voters, seed);
        let mut t = Tracker::default();
        let mut proposals = 0;
        let trace = std::env::var("RAFT_TRACE").is_ok();
        for a in &actions {
            if trace {
                eprintln!("{a:?} net={:?}", c.network.iter().map(|m| format!("{}->{} {}", m.from, m.to, m.msg)).collect::<Vec<_>>());
            }
            apply(&mut c, a, &mut proposals);
            if trace {
                for id in c.ids() {
                    let n = c.node(id);
                    eprintln!("    {id} {:?} e={} v={:?} hw={:?} log={:?}", n.role(), n.epoch(), n.voted_for(), n.high_watermark(), n.log().entries().iter().map(|e| e.to_string()).collect::<Vec<_>>());
                }
            }
            t.check(&c);
        }
        let rounds = heal_and_stabilize(&mut c, &mut t);
        prop_assert!(rounds.is_some(), "no convergence: leader {:?}", c.leader());
        if std::env::var("RAFT_STATS").is_ok() {
            eprintln!("STATS epochs={} committed={} rounds={rounds:?} actions={}", t.leader_of_epoch.len(), c.committed.len(), actions.len());
        }
        // Everything committed during the run is still there, at its offset, on the final leader.
        let leader = c.node(c.leader().expect("converged"));
        for (offset, entry) in &c.committed {
            prop_assert_eq!(leader.log().get(*offset), Some(entry));
        }
    }
}
