//! `gregor report`: a report rendered from a small hand-made results.json (through `report merge`, which
//! renders from results files alone) has the tables, bounds, counts and plot files it should; bad arguments
//! exit 2 naming the argument.

use std::path::PathBuf;
use std::process::{Command, Output};

fn gregor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("gregor runs")
}

fn fixture() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata/report-fixture").to_string()
}

fn out_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("gregor-report-{}-{name}", std::process::id()))
}

#[test]
fn a_report_rendered_from_results_states_promises_bounds_counts_and_repros() {
    let out = out_dir("render");
    let o = gregor(&["report", "merge", &fixture(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    // acks=all, min.insync.replicas=2: 10 in-contract runs, none lost: 1 - 0.05^(1/10) = 25.9%.
    assert!(md.contains("0 lost in 10 runs (under 26% at 95% confidence)"), "{md}");
    // The out-of-contract run is counted apart, not in the bound.
    assert!(
        md.contains("1 out-of-contract runs counted apart (4 lost records)"),
        "{md}"
    );
    // acks=1: 3 of 10 lost, Clopper-Pearson 95%: 6.7% to 65%.
    assert!(
        md.contains("3 of 10 runs lost acknowledged records (6.67% to 65% at 95% confidence)"),
        "{md}"
    );
    assert!(md.contains("6 of 10,000 acknowledged records lost"), "{md}");
    // The failing acks=all cell is BROKEN and links its repro command.
    assert!(md.contains("BROKEN ([repro](#fail-crash-acksall-isr1))"), "{md}");
    assert!(
        md.contains(
            "seed 7: `cargo run --release -- run scenarios/crash.toml --seed 7 --set producers.config.acks=all`"
        ),
        "{md}"
    );
    assert!(md.contains("5 of 5 runs left sent records unread"), "{md}");
    assert!(md.contains("unclean.leader.election.enable"), "{md}");
    // Latency by acks: acks=1's mean p50 is 3.0, acks=all's 5.0; acks=0 has none.
    assert!(md.contains("| 1 | 10 | 3.0 | 10.0 | 40.0 |"), "{md}");
    assert!(md.contains("| all | 21 | 5.0 | 20.0 | 80.0 |"), "{md}");
    // The unclean-election cell: one run in contract, two out of contract after an unclean election.
    assert!(
        md.contains("| crash | acks=all, min.insync.replicas=1, RF=3, unclean.leader.election.enable=true |"),
        "{md}"
    );
    assert!(
        md.contains(
            "0 lost in 1 runs (under 95% at 95% confidence); 7 of 3,000 acknowledged records lost; 2 out-of-contract \
             runs counted apart (7 lost records); an unclean election in 2 runs"
        ),
        "{md}"
    );
    assert!(
        md.contains("unclean election on"),
        "the promise names the setting: {md}"
    );
    // The failing run missed a must_hit mark: its cell shows it, and the missed-marks section lists it.
    assert!(
        md.contains("9 / 1 (1 runs missed leader-crashed-with-acks-all-in-flight (1))"),
        "{md}"
    );
    assert!(
        md.contains(
            "- crash acks=all, min.insync.replicas=1, RF=3: 1 of 10 runs missed leader-crashed-with-acks-all-in-flight (1)"
        ),
        "{md}"
    );
    for plot in [
        "loss.svg",
        "latency.svg",
        "loss-over-time.svg",
        "timeline.svg",
        "groups-crash-group.svg",
    ] {
        let svg = std::fs::read_to_string(out.join("plots").join(plot)).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{plot}");
        assert!(md.contains(&format!("(plots/{plot})")), "{plot} is linked");
    }
    let loss = std::fs::read_to_string(out.join("plots/loss.svg")).unwrap();
    assert!(
        loss.contains("3/10") && loss.contains("0/10") && loss.contains("1/10"),
        "bar labels: lost/runs"
    );
    assert!(
        loss.contains("unclean election on"),
        "the unclean series has its legend"
    );
    let groups = std::fs::read_to_string(out.join("plots/groups-crash-group.svg")).unwrap();
    assert!(
        groups.contains("audit lag") && groups.contains("audit gen 2") && groups.contains("crash client:audit-1"),
        "lag line, rebalances and the fault window"
    );
    let timeline = std::fs::read_to_string(out.join("plots/timeline.svg")).unwrap();
    assert!(timeline.contains("orders-0") && timeline.contains("broker-2 LEO"));
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 5, "the plots are inline");
    assert!(html.contains("1 runs missed leader-crashed-with-acks-all-in-flight (1)"));
    assert!(!html.contains("<img"), "self-contained");
    // The merged results keep every run.
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let runs = results["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 39);
    let missing: Vec<&serde_json::Value> = runs
        .iter()
        .filter(|r| !r["must_hit_missing"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(missing.len(), 1, "every run carries must_hit_missing");
    assert_eq!(results["group_timelines"].as_array().unwrap().len(), 1);
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn merging_a_shard_twice_keeps_each_run_once() {
    let out = out_dir("twice");
    let o = gregor(&[
        "report",
        "merge",
        &fixture(),
        &fixture(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["runs"].as_array().unwrap().len(), 39);
    assert_eq!(results["shards"].as_array().unwrap().len(), 2);
    assert_eq!(results["group_timelines"].as_array().unwrap().len(), 1);
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn bad_report_arguments_exit_2_naming_the_argument() {
    for (args, named) in [
        (vec!["report", "--seeds", "0"], "--seeds"),
        (vec!["report", "--shard", "3/2"], "--shard"),
        (vec!["report", "--name", "a/b"], "--name"),
        (vec!["report", "--jobs", "0"], "--jobs"),
        (vec!["report", "--only", "no-such-scenario"], "--only"),
        (vec!["report", "--seeds", "many"], "--seeds"),
        (
            vec!["report", "merge", "/nonexistent-gregor-dir"],
            "/nonexistent-gregor-dir",
        ),
        (
            vec!["run", "scenarios/smoke.toml", "--seed", "1", "--set", "producer.acks=1"],
            "producer.acks=1",
        ),
        (
            vec![
                "run",
                "scenarios/smoke.toml",
                "--seed",
                "1",
                "--set",
                "producers.config.acks=7",
            ],
            "producers.config.acks=7",
        ),
        (
            vec![
                "run",
                "scenarios/smoke.toml",
                "--seed",
                "1",
                "--set",
                "topics.config.no.such.key=1",
            ],
            "no.such.key",
        ),
    ] {
        let o = gregor(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(named), "{args:?}: {err}");
    }
}
