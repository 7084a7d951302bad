//! Reproducibility is tested, not hoped for (s2's meta test): the same seed run twice in two processes
//! gives a byte-identical history; different seeds give different fault times.

use std::path::PathBuf;
use std::process::Command;

/// (history, state trace, summary) of one run.
type Run = (String, String, serde_json::Value);

fn run(seed: u64, tag: &str) -> Run {
    run_scenario("smoke", seed, tag, true)
}

fn run_scenario(name: &str, seed: u64, tag: &str, must_pass: bool) -> Run {
    run_logged(name, seed, tag, must_pass, "warn")
}

/// Runs `scenarios/<name>.toml` on `seed` in its own process, logging at `log` (`RUST_LOG`); `must_pass`
/// demands exit 0.
fn run_logged(name: &str, seed: u64, tag: &str, must_pass: bool, log: &str) -> Run {
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

/// Two runs that must be the same run: byte-identical histories (of at least `min_lines` lines) and state
/// traces, one history hash. `between` names the two runs in a failure.
fn assert_same_run(a: &Run, b: &Run, min_lines: usize, between: &str) {
    let lines = a.0.lines().count();
    assert!(
        lines > min_lines,
        "{between}: the history holds the whole run: {lines} lines"
    );
    assert!(a.0 == b.0, "histories differ between {between}");
    assert!(a.1 == b.1, "state traces differ between {between}");
    assert_eq!(a.2["history_hash"], b.2["history_hash"], "{between}");
}

#[test]
fn the_same_seed_in_two_processes_gives_a_byte_identical_history() {
    let a = run(42, "a");
    let b = run(42, "b");
    assert!(!a.1.is_empty(), "the state trace is recorded");
    assert_same_run(&a, &b, 20_000, "two runs of seed 42");
    assert_eq!(a.2["history_hash"].as_str().unwrap().len(), 64);
}

/// `sweep` runs its children with logging off (`RUST_LOG=off`, tracing then costs nothing): what a sweep
/// finds must replay under `run` with its log.
#[test]
fn the_log_level_changes_nothing_in_the_history() {
    let a = run_logged("leader-crash-acks-1", 3, "log-info", true, "info");
    let b = run_logged("leader-crash-acks-1", 3, "log-off", true, "off");
    assert_same_run(&a, &b, 20_000, "RUST_LOG=info and RUST_LOG=off");
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
        let a = run_scenario(name, seed, "a", false);
        let b = run_scenario(name, seed, "b", false);
        assert_same_run(&a, &b, 1_000, &format!("{name} seed {seed}, two processes"));
        assert_eq!(a.2["verdict"], b.2["verdict"], "{name}");
    }
}
