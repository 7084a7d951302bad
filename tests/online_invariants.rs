//! The online invariants (ARCHITECTURE §6) run after every state event, inside the simulation: a known Kafka
//! defect brought back with `[bugs]` is caught at the event that breaks an invariant, `halt_on_violation`
//! stops the run there, and the fixed code passes the same scenario and seed.

mod common;

use gregor::runner::{self, RunOptions};
use gregor::scenario::Scenario;

fn scenario(bugs: &str) -> Scenario {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/retention-follower-restart.toml");
    let text = std::fs::read_to_string(path).expect("the scenario file");
    Scenario::parse(path, &format!("{text}\n{bugs}")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn kafka_9491_is_caught_online_at_the_follower_report_that_breaks_log_bounds() {
    let s = scenario("[bugs]\nKAFKA-9491 = true\n");
    let out = runner::run(&s, 1, RunOptions::default()).expect("the run completes");
    let sum = &out.summary;
    assert_eq!(sum.verdict, "fail", "{}", sum.render());
    assert!(sum.anomalies["log-bounds"] >= 1, "{}", sum.render());
    let first = sum.online_violations.first().expect("an online violation");
    assert!(first.text.starts_with("log-bounds events-"), "{first:?}");
    // The online check saw exactly what the end-of-run fold over the same trace finds, at that event.
    assert_eq!(
        sum.online_violations.len() as u64,
        sum.anomalies["log-bounds"],
        "{}",
        sum.render()
    );
    let event = &out.history.states[first.index];
    assert_eq!(first.trace, "replica");
    assert!(event.log_start_offset > event.high_watermark, "{event:?}");
    assert_eq!(event.time_us, first.time_us);
    assert!(sum.marks["follower-started-over-at-leader-log-start"] >= 1);
}

#[test]
fn halt_on_violation_stops_the_simulation_at_the_first_broken_invariant() {
    let s = scenario("[bugs]\nKAFKA-9491 = true\n");
    let full = runner::run(&s, 1, RunOptions::default()).expect("the run completes");
    let opts = RunOptions {
        halt_on_violation: true,
        ..RunOptions::default()
    };
    let halted = runner::run(&s, 1, opts).expect("the run completes");
    let sum = &halted.summary;
    assert_eq!(sum.verdict, "fail", "{}", sum.render());
    let first = &full.summary.online_violations[0];
    assert_eq!(sum.online_violations.first(), Some(first), "{}", sum.render());
    let at_s = sum.halted_at_s.expect("halted");
    assert!(
        (at_s - first.time_us as f64 / 1e6).abs() < 1e-6,
        "halted at {at_s}, violation {first:?}"
    );
    assert!(sum.sim_seconds < full.summary.sim_seconds);
    // Nothing recorded after the halt, and the run stopped before the drain.
    assert!(halted.history.states.iter().all(|s| s.time_us <= first.time_us));
    assert!(sum.must_hit_missing.is_empty());
}

#[test]
fn with_the_fix_a_follower_behind_the_leaders_log_start_starts_over_and_nothing_is_lost() {
    for seed in [1, 2] {
        let out = common::run_passing("retention-follower-restart", seed, 30_000);
        let sum = &out.summary;
        assert!(sum.online_violations.is_empty(), "{:?}", sum.online_violations);
        // Retention removed the oldest acknowledged records: counted apart, never lost.
        assert!(sum.removed > 10_000, "{}", sum.render());
        assert_eq!(sum.lost_acked, 0, "{}", sum.render());
    }
}

#[test]
fn an_unknown_bug_switch_is_refused_with_the_list_of_switches() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/retention-follower-restart.toml");
    let text = std::fs::read_to_string(path).expect("the scenario file");
    let e = Scenario::parse(path, &format!("{text}\n[bugs]\nKAFKA-1 = true\n")).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("unknown bug switch `KAFKA-1`"), "{msg}");
    assert!(msg.contains("KAFKA-9491"), "{msg}");
}
