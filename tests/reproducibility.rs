//! Reproducibility is tested, not hoped for (s2's meta test): the same seed run twice in two processes
//! gives a byte-identical history; different seeds give different fault times.

use std::path::PathBuf;
use std::process::Command;

fn run(seed: u64, tag: &str) -> (String, String, serde_json::Value) {
    run_scenario("smoke", seed, tag, true)
}

fn run_scenario(name: &str, seed: u64, tag: &str, must_pass: bool) -> (String, String, serde_json::Value) {
    run_logged(name, seed, tag, must_pass, "warn")
}

/// Runs `scenarios/<name>.toml` on `seed` in its own process, logging at `log` (`RUST_LOG`); `must_pass`
/// demands exit 0.
fn run_logged(name: &str, seed: u64, tag: &str, must_pass: bool, log: &str) -> (String, String, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!("gregor-repro-{}-{name}-{tag}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let history = dir.join("history.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args([
            "run",
            &format!("scenarios/{name}.toml"),
            "--seed",
            &seed.to_string(),
            "--json",
            "--history",
        ])
        .arg(&history)
        .env("RUST_LOG", log)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("gregor runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.code() == Some(0) || (!must_pass && out.status.code() == Some(1)),
        "{name} seed {seed} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).expect("last line is JSON");
    let ops = std::fs::read_to_string(&history).unwrap();
    let states = std::fs::read_to_string(PathBuf::from(format!("{}.states.jsonl", history.display()))).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (ops, states, summary)
}

#[test]
fn the_same_seed_in_two_processes_gives_a_byte_identical_history() {
    let (ops_a, states_a, sum_a) = run(42, "a");
    let (ops_b, states_b, sum_b) = run(42, "b");
    assert!(
        ops_a.lines().count() > 20_000,
        "the history holds the whole run: {} lines",
        ops_a.lines().count()
    );
    assert!(!states_a.is_empty(), "the state trace is recorded");
    assert!(ops_a == ops_b, "histories differ between two runs of seed 42");
    assert!(states_a == states_b, "state traces differ between two runs of seed 42");
    assert_eq!(sum_a["history_hash"], sum_b["history_hash"]);
    assert_eq!(sum_a["history_hash"].as_str().unwrap().len(), 64);
}

/// `sweep` runs its children with logging off (`RUST_LOG=off`, tracing then costs nothing): what a sweep
/// finds must replay under `run` with its log.
#[test]
fn the_log_level_changes_nothing_in_the_history() {
    let (ops_a, states_a, sum_a) = run_logged("leader-crash-acks-1", 3, "log-info", true, "info");
    let (ops_b, states_b, sum_b) = run_logged("leader-crash-acks-1", 3, "log-off", true, "off");
    assert!(
        ops_a.lines().count() > 20_000,
        "{} history lines",
        ops_a.lines().count()
    );
    assert!(
        ops_a == ops_b,
        "histories differ between RUST_LOG=info and RUST_LOG=off"
    );
    assert!(
        states_a == states_b,
        "state traces differ between RUST_LOG=info and RUST_LOG=off"
    );
    assert_eq!(sum_a["history_hash"], sum_b["history_hash"]);
}

#[test]
fn different_seeds_draw_different_fault_times_and_histories() {
    let (ops_a, _, sum_a) = run(1, "c");
    let (ops_b, _, sum_b) = run(2, "d");
    assert_ne!(sum_a["drawn"]["faults[0].at_s"], sum_b["drawn"]["faults[0].at_s"]);
    assert_ne!(sum_a["drawn"]["faults[1].at_s"], sum_b["drawn"]["faults[1].at_s"]);
    assert_ne!(ops_a, ops_b);
    assert_ne!(sum_a["history_hash"], sum_b["history_hash"]);
}

#[test]
fn replicated_group_and_swarm_scenarios_are_byte_identical_across_two_processes() {
    for (name, seed) in [
        ("swarm", 3),
        ("leader-power-loss-acks-all", 2),
        ("group-member-crash", 1),
        ("isr-shrink-leader-crash-unclean", 1),
    ] {
        let (ops_a, states_a, sum_a) = run_scenario(name, seed, "a", false);
        let (ops_b, states_b, sum_b) = run_scenario(name, seed, "b", false);
        assert!(
            ops_a.lines().count() > 1_000,
            "{name}: {} history lines",
            ops_a.lines().count()
        );
        assert!(
            ops_a == ops_b,
            "{name} seed {seed}: histories differ between two processes"
        );
        assert!(
            states_a == states_b,
            "{name} seed {seed}: state traces differ between two processes"
        );
        assert_eq!(sum_a["history_hash"], sum_b["history_hash"], "{name}");
        assert_eq!(sum_a["verdict"], sum_b["verdict"], "{name}");
    }
}
