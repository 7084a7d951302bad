//! One single-broker scenario per fault kind that applies to one broker (`scenarios/one-broker-<kind>.toml`):
//! each passes on fixed seeds with its must_hit marks, so every fault really hit the broker with writes in
//! flight and the verdict rests on real checks.

use std::path::Path;

use gregor::runner::{self, RunOptions};
use gregor::scenario::Scenario;

fn check(kind: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/one-broker-{kind}.toml"));
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    for seed in [1, 2] {
        let out = runner::run(&s, seed, RunOptions::default()).expect("the run completes");
        let sum = &out.summary;
        assert_eq!(sum.verdict, "pass", "{kind} seed {seed}:\n{}", sum.render());
        assert!(
            sum.must_hit_missing.is_empty(),
            "{kind} seed {seed}: missed {:?}",
            sum.must_hit_missing
        );
        assert!(sum.acked > 5_000, "{kind} seed {seed}: acked {}", sum.acked);
        let faults = out
            .history
            .ops
            .iter()
            .filter(|o| matches!(&o.body, gregor::history::OpBody::Fault { kind: k, .. } if k == kind))
            .count();
        assert!(faults >= 1, "{kind} seed {seed}: the fault is in the history");
    }
}

#[test]
fn crash() {
    check("crash");
}

#[test]
fn power_loss() {
    check("power_loss");
}

#[test]
fn controlled_shutdown() {
    check("shutdown");
}

#[test]
fn pause() {
    check("pause");
}

#[test]
fn partition() {
    check("partition");
}

#[test]
fn clog() {
    check("clog");
}

#[test]
fn packet_loss() {
    check("packet_loss");
}

#[test]
fn latency() {
    check("latency");
}

#[test]
fn disk_full_stops_the_broker_and_loses_nothing_acknowledged() {
    check("disk_full");
}

#[test]
fn disk_eio_stops_the_broker_and_loses_nothing_acknowledged() {
    check("disk_eio");
}

#[test]
fn disk_slow() {
    check("disk_slow");
}

#[test]
fn dropped_responses_are_retried_and_nothing_acknowledged_is_lost() {
    check("drop_response");
}

#[test]
fn reset_connections_are_retried_and_nothing_acknowledged_is_lost() {
    check("conn_reset");
}

#[test]
fn a_bit_flipped_at_rest_is_reported_corrupt_by_the_consumer_never_read_as_data() {
    check("disk_bitflip");
}

#[test]
fn clock_skew() {
    check("clock_skew");
}

#[test]
fn swizzle_clog() {
    check("swizzle");
}
