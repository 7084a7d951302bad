//! The producer's retry scenarios on fixed seeds (issue 5): `scenarios/idempotent-retries.toml` passes with
//! nothing allowed and every retry of a landed batch answered with its original offset, and its checkers
//! would catch a duplicate or a reordering; `scenarios/retries-without-idempotence.toml` passes because
//! each duplicate and reordering is explained by the producer's configuration.

use std::path::Path;

use gregor::checker::{self, CheckInput, CheckReport, FinalState};
use gregor::history::{Op, OpBody, OpType, ReadRecord};
use gregor::runner::{self, RunOptions};
use gregor::scenario::Scenario;

const DUPLICATE_ANSWERED: &str = "duplicate-batch-answered-with-original-offset";

fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.toml"));
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn run(s: &Scenario, seed: u64) -> runner::RunOutcome {
    let out = runner::run(s, seed, RunOptions::default()).expect("the run completes");
    let sum = &out.summary;
    let name = &sum.scenario;
    assert_eq!(sum.verdict, "pass", "{name} seed {seed}:\n{}", sum.render());
    assert!(
        sum.must_hit_missing.is_empty(),
        "{name} seed {seed}: missed {:?}",
        sum.must_hit_missing
    );
    assert_eq!(
        sum.acked, 20_003,
        "{name} seed {seed}: every record and the 3 probes acked"
    );
    out
}

/// Checks `ops` (a run's history, altered) with the scenario's producer facts.
fn recheck(s: &Scenario, out: &runner::RunOutcome, ops: &[Op]) -> CheckReport {
    let final_state = FinalState {
        replica_logs: vec![],
        liveness_failures: vec![],
    };
    let producers = runner::producer_facts(s);
    checker::check(&CheckInput {
        ops,
        states: &out.history.states,
        raft_states: &out.history.raft_states,
        metadata_states: &out.history.metadata_states,
        final_state: &final_state,
        producers: &producers,
        min_insync_replicas: &std::collections::BTreeMap::new(),
        compacted_topics: &std::collections::BTreeSet::new(),
        delete_retention_ms: &std::collections::BTreeMap::new(),
    })
}

#[test]
fn idempotent_retries_answer_every_retried_batch_with_its_original_offset_and_write_nothing_twice() {
    let s = load("idempotent-retries");
    for seed in [1, 2, 3] {
        let out = run(&s, seed);
        let sum = &out.summary;
        let answered = sum.marks.get(DUPLICATE_ANSWERED).copied().unwrap_or(0);
        assert!(answered > 0, "seed {seed}: no retry answered with its original offset");
        assert!(
            out.report.anomalies.is_empty(),
            "seed {seed}: nothing may even be explained: {:?}",
            out.report.anomalies
        );
        assert!(sum.allowed.is_empty(), "seed {seed}: {:?}", sum.allowed);
    }
}

#[test]
fn with_idempotence_a_duplicate_or_a_reordering_in_the_same_history_is_a_violation() {
    let s = load("idempotent-retries");
    let out = run(&s, 1);
    // A value read a second time at a new offset, as a retried batch appended again would be.
    let mut ops = out.history.ops.clone();
    let records = ops
        .iter_mut()
        .find_map(|o| match &mut o.body {
            OpBody::Poll { records, .. } if !records.is_empty() => Some(records),
            _ => None,
        })
        .expect("the drain read records");
    let again = ReadRecord {
        offset: 1 << 40,
        value: records[0].value.clone(),
        tombstone: false,
    };
    records.push(again);
    let v = recheck(&s, &out, &ops).violations();
    assert_eq!(v["duplicate"], 1, "{v:?}");

    // Two sends of one producer to one partition, acknowledged at each other's offsets: the one sent first
    // landed after the one sent next.
    let mut ops = out.history.ops.clone();
    let acks: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.process == "client-1" && o.op_type == OpType::Ok)
        .filter(|(_, o)| {
            matches!(
                &o.body,
                OpBody::Send {
                    partition: 0,
                    offset: Some(_),
                    ..
                }
            )
        })
        .map(|(i, _)| i)
        .take(2)
        .collect();
    assert_eq!(acks.len(), 2, "two acked sends to partition 0");
    let offset_of = |o: &Op| match &o.body {
        OpBody::Send { offset, .. } => *offset,
        _ => None,
    };
    let (first, second) = (offset_of(&ops[acks[0]]), offset_of(&ops[acks[1]]));
    for (i, new) in [(acks[0], second), (acks[1], first)] {
        if let OpBody::Send { offset, .. } = &mut ops[i].body {
            *offset = new;
        }
    }
    let r = recheck(&s, &out, &ops);
    assert!(r.violations()["nonmonotonic-send"] >= 1, "{:?}", r.violations());
}

#[test]
fn retries_without_idempotence_write_duplicates_and_reorder_and_the_configuration_explains_each() {
    let s = load("retries-without-idempotence");
    for seed in [1, 2] {
        let out = run(&s, seed);
        let sum = &out.summary;
        assert_eq!(
            sum.marks.get(DUPLICATE_ANSWERED).copied().unwrap_or(0),
            0,
            "seed {seed}"
        );
        assert!(sum.explained["duplicate"] > 0, "seed {seed}: {:?}", sum.explained);
        assert!(
            sum.explained["nonmonotonic-send"] > 0,
            "seed {seed}: {:?}",
            sum.explained
        );
        assert!(
            sum.allowed["duplicate"].contains("idempotence off"),
            "seed {seed}: {:?}",
            sum.allowed
        );
        assert!(
            sum.allowed["nonmonotonic-send"].contains("max.in.flight.requests.per.connection=5"),
            "seed {seed}: {:?}",
            sum.allowed
        );
        let others: u64 = sum
            .explained
            .iter()
            .filter(|(c, _)| !matches!(**c, "duplicate" | "nonmonotonic-send"))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(others, 0, "seed {seed}: nothing else explained: {:?}", sum.explained);
    }
}
