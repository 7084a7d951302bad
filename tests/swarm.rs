//! Swarm testing over fixed seeds: each seed draws its own fault mix (some quiet, some heavy), then heals
//! and must be live again; every run must pass, and the seeds must really differ.

use std::collections::BTreeSet;
use std::path::Path;

use gregor::runner::{self, RunOptions};
use gregor::scenario::Scenario;

#[test]
fn swarm_seeds_draw_different_fault_mixes_and_all_pass() {
    let s = Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/swarm.toml")).unwrap();
    let mut counts = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for seed in 1..=12 {
        let out = runner::run(&s, seed, RunOptions::default()).expect("the run completes");
        let sum = &out.summary;
        assert_eq!(sum.verdict, "pass", "swarm seed {seed}:\n{}", sum.render());
        counts.insert(sum.drawn["swarm.faults"] as u64);
        kinds.extend(
            sum.drawn
                .keys()
                .filter_map(|k| k.split_once('#').map(|(_, kind)| kind.to_string())),
        );
        assert_eq!(sum.anomalies["liveness"], 0, "seed {seed}: live again after healing");
    }
    assert!(counts.len() >= 4, "seeds draw different fault counts: {counts:?}");
    assert!(kinds.len() >= 10, "the seeds together exercise most kinds: {kinds:?}");
}
