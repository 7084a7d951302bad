//! The smoke scenario over fixed seeds: one broker, a process crash and a power loss under acks=1 writes.
//! Every seed must pass with its must_hit marks, and its verdict must rest on real checks: the same history
//! without the power loss's durable frontier is judged a loss.

use std::collections::BTreeMap;
use std::path::Path;

use gregor::checker::{self, CheckInput, FinalState};
use gregor::history::{OpBody, ReadRecord};
use gregor::runner::{self, RunOptions};
use gregor::scenario::Scenario;

fn smoke() -> Scenario {
    Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/smoke.toml")).expect("smoke.toml loads")
}

#[test]
fn smoke_passes_on_fixed_seeds_with_its_faults_hitting_writes_in_flight() {
    let s = smoke();
    let mut lost_to_power = 0;
    for seed in 1..=6 {
        let out = runner::run(&s, seed, RunOptions::default()).expect("the run completes");
        let sum = &out.summary;
        assert_eq!(sum.verdict, "pass", "seed {seed}:\n{}", sum.render());
        assert!(
            sum.must_hit_missing.is_empty(),
            "seed {seed}: {:?}",
            sum.must_hit_missing
        );
        assert!(
            sum.acked > 7_000,
            "seed {seed}: most of the 10,000 sends are acknowledged: {}",
            sum.acked
        );
        assert!(
            !sum.in_contract,
            "a power loss of the only replica takes the run out of contract"
        );
        lost_to_power += sum.marks.get("power-loss-lost-acked-records").copied().unwrap_or(0);
        // The drain read every partition back, and the disk's view agrees with the consumer's.
        let drained: usize = out
            .history
            .ops
            .iter()
            .filter(|o| o.process == "drain")
            .map(|o| match &o.body {
                OpBody::Poll { records, .. } => records.len(),
                _ => 0,
            })
            .sum();
        assert!(drained > 1_000, "seed {seed}: the drain read {drained} records");
    }
    assert!(
        lost_to_power > 0,
        "some seed's power loss took acknowledged, unsynced records"
    );
}

#[test]
fn without_the_durable_frontier_the_same_history_is_judged_a_lost_write() {
    let s = smoke();
    let out = runner::run(&s, 1, RunOptions::default()).unwrap();
    assert_eq!(out.summary.verdict, "pass");
    let explained: u64 = out.report.explained().values().sum();
    assert!(explained > 0, "seed 1 loses unsynced records to its power loss");
    // Forget what the disk held at the power loss: every loss it explained is now a violation.
    let mut ops = out.history.ops.clone();
    for op in &mut ops {
        if let OpBody::Fault { detail, .. } = &mut op.body {
            if let Some(f) = detail.get_mut("frontier") {
                let all_past: BTreeMap<String, i64> = serde_json::from_value::<BTreeMap<String, i64>>(f.clone())
                    .unwrap()
                    .into_keys()
                    .map(|k| (k, i64::MAX))
                    .collect();
                *f = serde_json::json!(all_past);
            }
        }
    }
    let final_state = FinalState {
        replica_logs: vec![],
        liveness_failures: vec![],
    };
    let producers = runner::producer_facts(&s);
    let report = checker::check(&CheckInput {
        ops: &ops,
        states: &out.history.states,
        raft_states: &out.history.raft_states,
        metadata_states: &out.history.metadata_states,
        final_state: &final_state,
        producers: &producers,
        min_insync_replicas: &std::collections::BTreeMap::new(),
        compacted_topics: &std::collections::BTreeSet::new(),
        delete_retention_ms: &std::collections::BTreeMap::new(),
    });
    let v = report.violations();
    assert!(v["lost-write"] + v["unseen"] > 0, "{v:?}");
    // And a record nobody sent, slipped into a read, is caught as a phantom.
    let mut ops = out.history.ops.clone();
    let poll = ops.iter_mut().find_map(|o| match &mut o.body {
        OpBody::Poll { records, .. } if !records.is_empty() => Some(records),
        _ => None,
    });
    poll.unwrap().push(ReadRecord {
        offset: 1 << 40,
        value: "never-sent".into(),
        tombstone: false,
    });
    let report = checker::check(&CheckInput {
        ops: &ops,
        states: &out.history.states,
        raft_states: &out.history.raft_states,
        metadata_states: &out.history.metadata_states,
        final_state: &final_state,
        producers: &producers,
        min_insync_replicas: &std::collections::BTreeMap::new(),
        compacted_topics: &std::collections::BTreeSet::new(),
        delete_retention_ms: &std::collections::BTreeMap::new(),
    });
    assert_eq!(report.violations()["phantom-read"], 1);
}
