//! The controller quorum's scenarios (`scenarios/controller-failover.toml`, `scenarios/broker-fencing.toml`)
//! on fixed seeds: each passes with its must_hit marks, the Raft and metadata traces are recorded and
//! checked, and what they show is what the scenario is about (several Raft epochs, a fenced broker led
//! nothing while fenced, brokers and controllers agreeing on the metadata).

use std::collections::BTreeSet;

use gregor::history::RaftRole;
use gregor::runner;

mod common;

fn run(name: &str, seed: u64) -> runner::RunOutcome {
    common::run_passing(name, seed, 5_000)
}

#[test]
fn controller_failover_elects_new_controllers_and_keeps_the_metadata_consistent() {
    for seed in [1, 2] {
        let out = run("controller-failover", seed);
        let h = &out.history;
        let leaders: BTreeSet<(i32, String)> = h
            .raft_states
            .iter()
            .filter(|s| s.role == RaftRole::Leader)
            .map(|s| (s.epoch, s.node.clone()))
            .collect();
        assert!(
            leaders.len() >= 3,
            "seed {seed}: three failovers need three leaders, saw {leaders:?}"
        );
        let nodes: BTreeSet<&str> = h.metadata_states.iter().map(|s| s.node.as_str()).collect();
        for n in [
            "controller-1",
            "controller-2",
            "controller-3",
            "broker-1",
            "broker-2",
            "broker-3",
        ] {
            assert!(nodes.contains(n), "seed {seed}: {n} applied no metadata ({nodes:?})");
        }
        let audit = h.metadata_states.iter().any(|s| s.partitions.contains_key("audit-2"));
        assert!(audit, "seed {seed}: the topic created during the failover exists");
    }
}

#[test]
fn an_isolated_broker_is_fenced_leads_nothing_while_fenced_and_comes_back() {
    for seed in [1, 2] {
        let out = run("broker-fencing", seed);
        let h = &out.history;
        let fenced_at = h
            .metadata_states
            .iter()
            .find(|s| s.fenced.contains(&2))
            .unwrap_or_else(|| panic!("seed {seed}: broker 2 was never fenced"));
        assert!(
            fenced_at.partitions.values().all(|p| p.leader != 2),
            "seed {seed}: fenced broker 2 still leads at offset {}",
            fenced_at.offset
        );
        let last = h
            .metadata_states
            .iter()
            .filter(|s| s.node.starts_with("controller-"))
            .max_by_key(|s| s.offset)
            .expect("controllers applied metadata");
        assert!(
            last.fenced.is_empty(),
            "seed {seed}: at the end {:?} are still fenced",
            last.fenced
        );
    }
}

#[test]
fn a_rolling_restart_moves_leadership_away_before_each_broker_is_fenced_and_stops() {
    for seed in [1, 2] {
        let out = run("rolling-restart", seed);
        let h = &out.history;
        let controller: Vec<_> = h
            .metadata_states
            .iter()
            .filter(|s| s.node.starts_with("controller-"))
            .collect();
        for broker in [1, 2, 3] {
            let fenced = controller
                .iter()
                .filter(|s| s.offset > 0)
                .find(|s| {
                    s.fenced.contains(&broker)
                        && h.metadata_states
                            .iter()
                            .any(|e| e.offset < s.offset && !e.fenced.contains(&broker) && e.brokers.contains(&broker))
                })
                .unwrap_or_else(|| panic!("seed {seed}: broker {broker} was never fenced by its shutdown"));
            assert!(
                fenced.partitions.values().all(|p| p.leader != broker),
                "seed {seed}: broker {broker} fenced at offset {} while still leading",
                fenced.offset
            );
            let last_led = controller
                .iter()
                .filter(|s| s.offset < fenced.offset && s.partitions.values().any(|p| p.leader == broker))
                .map(|s| s.offset)
                .max()
                .unwrap_or_else(|| panic!("seed {seed}: broker {broker} never led before its shutdown"));
            let moved_first = controller.iter().any(|s| {
                s.offset > last_led
                    && s.offset < fenced.offset
                    && !s.fenced.contains(&broker)
                    && s.partitions.values().all(|p| p.leader != broker)
            });
            assert!(
                moved_first,
                "seed {seed}: broker {broker}'s leadership did not move before it was fenced"
            );
        }
    }
}

#[test]
fn network_splits_elect_a_new_controller_on_the_majority_side() {
    let out = run("network-splits", 1);
    let h = &out.history;
    let split = h
        .ops
        .iter()
        .find(|o| matches!(&o.body, gregor::history::OpBody::Fault { kind, detail, .. } if kind == "partition" && detail.contains_key("minority")))
        .expect("the halves split is in the history");
    let cut_off = match &split.body {
        gregor::history::OpBody::Fault { detail, .. } => detail["node"].as_str().unwrap().to_string(),
        _ => unreachable!(),
    };
    let new_leader = h
        .raft_states
        .iter()
        .find(|s| s.time_us > split.time_us && s.role == RaftRole::Leader && s.node != cut_off);
    assert!(
        new_leader.is_some(),
        "no controller of the majority led after {cut_off} was cut off"
    );
}

#[test]
fn a_leader_crash_under_acks_all_with_min_isr_2_loses_nothing_acknowledged() {
    for seed in [1, 2] {
        let out = run("leader-crash-acks-all", seed);
        let explained: u64 = out.summary.explained.values().sum();
        assert_eq!(
            explained, 0,
            "seed {seed}: nothing may need explaining: {:?}",
            out.summary.allowed
        );
        assert!(out.summary.acked > 30_000, "seed {seed}: acked {}", out.summary.acked);
    }
}
