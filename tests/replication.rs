//! Replication end to end (`scenarios/replication-min-isr.toml`): three brokers, replication factor 3,
//! min.insync.replicas=2, acks=all. Followers catch up and join the ISR; a crashed broker leaves the ISRs
//! after replica.lag.time.max.ms (through AlterPartition) and comes back into them; nothing acknowledged
//! is lost and no offset holds two values across replicas.

use std::path::Path;

use gregor::runner::{self, RunOptions};
use gregor::scenario::Scenario;

#[test]
fn acks_all_with_min_isr_2_keeps_acking_with_one_broker_down_and_the_isr_shrinks_and_expands() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/replication-min-isr.toml");
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let out = runner::run(&s, 1, RunOptions::default()).expect("the run completes");
    let sum = &out.summary;
    assert_eq!(sum.verdict, "pass", "{}", sum.render());
    assert!(sum.must_hit_missing.is_empty(), "missed {:?}", sum.must_hit_missing);
    assert!(sum.acked > 10_000, "acked {}", sum.acked);
    let h = &out.history;
    let leaders = |min: usize, max: usize| {
        h.states.iter().any(|r| {
            r.leader.to_string() == r.node.trim_start_matches("broker-") && r.isr.len() >= min && r.isr.len() <= max
        })
    };
    assert!(leaders(3, 3), "a leader reported a full ISR");
    assert!(leaders(1, 2), "a leader reported a shrunk ISR");
    let followers_caught_up = h
        .states
        .iter()
        .any(|r| r.leader.to_string() != r.node.trim_start_matches("broker-") && r.high_watermark > 1_000);
    assert!(
        followers_caught_up,
        "followers replicated and learnt the high watermark"
    );
}
