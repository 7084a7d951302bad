//! The command line's contract (ARCHITECTURE §7): bad input exits 2 with a message naming what and where.

use std::process::{Command, Output};

fn gregor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("gregor runs")
}

fn temp_scenario(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("gregor-cli-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_malformed_scenario_exits_2_naming_file_line_column_and_key() {
    let smoke = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/smoke.toml")).unwrap();
    let bad = smoke.replace("key_space = 100", "key_space = 100\nkey_spaec = 7");
    let path = temp_scenario("typo", &bad);
    let out = gregor(&["run", path.to_str().unwrap(), "--seed", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = bad.lines().position(|l| l.starts_with("key_spaec")).unwrap() + 1;
    assert!(err.contains(&format!("{}:{line}:1:", path.display())), "{err}");
    assert!(err.contains("key_spaec"), "{err}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_missing_scenario_file_and_bad_arguments_exit_2() {
    let out = gregor(&["run", "scenarios/nope.toml", "--seed", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("scenarios/nope.toml"));
    let out = gregor(&["run", "scenarios/smoke.toml", "--seed", "minus-one"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--seed"));
    let out = gregor(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_passing_run_exits_0_and_ends_stdout_with_the_json_summary() {
    let out = gregor(&["run", "scenarios/smoke.toml", "--seed", "3", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for key in [
        "scenario",
        "seed",
        "commit",
        "scenario_hash",
        "verdict",
        "history_hash",
        "anomalies",
        "allowed",
        "in_contract",
        "contract_breaches",
        "marks",
        "acked",
        "sim_seconds",
        "wall_seconds",
        "safety_sim_seconds",
        "safety_wall_seconds",
        "messages",
    ] {
        assert!(summary.get(key).is_some(), "summary lacks {key}: {summary}");
    }
    assert_eq!(summary["verdict"], "pass");
    assert_eq!(summary["seed"], 3);
    // Every anomaly class is listed, zeros included.
    assert!(summary["anomalies"].as_object().unwrap().len() >= 14);
}

#[test]
fn sweep_runs_each_seed_in_its_own_process_and_ends_with_json_runs() {
    let out = gregor(&[
        "sweep",
        "scenarios/smoke.toml",
        "--seeds",
        "1..3",
        "--jobs",
        "2",
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("3 runs, 3 pass, 0 fail"), "{stdout}");
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let seeds: Vec<u64> = last["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds, [1, 2, 3]);
    let shard = gregor(&[
        "sweep",
        "scenarios/smoke.toml",
        "--seeds",
        "1..3",
        "--shard",
        "2/2",
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&shard.stdout);
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["runs"].as_array().unwrap().len(), 1, "{stdout}");
    assert_eq!(last["runs"][0]["seed"], 2);
}

#[test]
fn sweep_refuses_bad_ranges_shards_and_scenarios_with_exit_2() {
    for args in [
        &["sweep", "scenarios/smoke.toml", "--seeds", "5..1"][..],
        &["sweep", "scenarios/smoke.toml", "--seeds", "1..2", "--shard", "3/2"],
        &["sweep", "scenarios/nope.toml", "--seeds", "1..2"],
    ] {
        let out = gregor(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?} says why");
    }
}
