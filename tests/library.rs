//! Every scenario of the library (`scenarios/*.toml`) runs on a fixed seed and meets its own expectations:
//! it passes (anomalies only where its configuration and fault timeline allow them), hits each of its
//! must_hit marks, and acknowledges real traffic. A new file in `scenarios/` is picked up with no edit here.

use std::path::Path;

use gregor::runner::{self, RunOptions};
use gregor::scenario::Scenario;

/// Scenarios that acknowledge no sends by design (none today); every other one must acknowledge some.
const NO_TRAFFIC: &[&str] = &[];

#[test]
fn every_library_scenario_passes_on_seed_1_with_its_marks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 14, "the library holds {} scenarios", paths.len());
    let mut failures = vec![];
    for path in &paths {
        let s = Scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
        let out = runner::run(&s, 1, RunOptions::default()).expect("the run completes");
        let sum = &out.summary;
        let quiet = NO_TRAFFIC.contains(&s.name());
        if sum.verdict != "pass" || !sum.must_hit_missing.is_empty() || (!quiet && sum.acked == 0) {
            failures.push(sum.render());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed seed 1:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}
