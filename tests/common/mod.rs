//! What the scenario tests share: run one seed of a library scenario and demand it passes with its
//! must_hit marks and real traffic.

use std::path::Path;

use gregor::runner::{self, RunOptions};
use gregor::scenario::Scenario;

/// Runs `scenarios/<name>.toml` on `seed`; panics with the run's report unless it passed, hit every
/// must_hit mark and acknowledged at least `min_acked` sends.
pub fn run_passing(name: &str, seed: u64, min_acked: u64) -> runner::RunOutcome {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.toml"));
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = runner::run(&s, seed, RunOptions::default()).expect("the run completes");
    let sum = &out.summary;
    assert_eq!(sum.verdict, "pass", "{name} seed {seed}:\n{}", sum.render());
    assert!(
        sum.must_hit_missing.is_empty(),
        "{name} seed {seed}: missed {:?}",
        sum.must_hit_missing
    );
    assert!(sum.acked >= min_acked, "{name} seed {seed}: acked {}", sum.acked);
    out
}
