//! L5: the runner. One run = one seed = one madsim runtime: build the cluster, run the workload and the fault
//! plan (safety phase), heal, demand liveness by the deadline, drain every partition, then hand the history,
//! the state trace and the final state to the checkers and the contract monitor.

mod contract;
mod online;
#[cfg(madsim)]
mod simulate;
mod summary;

use std::collections::BTreeMap;

use crate::checker::{self, CheckInput, CheckReport, FinalState, ProducerFacts};
use crate::history::History;
use crate::scenario::Scenario;

pub use summary::{LatencyMs, RunSummary};

/// Coverage marks (stateright's Sometimes) a run can hit.
pub const MARKS: &[&str] = &[
    "broker-crashed-with-sends-in-flight",
    "broker-lost-power-with-sends-in-flight",
    "power-loss-lost-acked-records",
    "power-loss-left-a-torn-tail",
    "broker-shut-down-with-sends-in-flight",
    "broker-paused-with-sends-in-flight",
    "broker-isolated-with-sends-in-flight",
    "broker-disk-slow-with-sends-in-flight",
    "network-degraded",
    "storage-failure-stopped-the-broker",
    "produce-response-dropped",
    "connection-reset-instead-of-produce-response",
    "bit-flipped-in-a-log-segment",
    "consumer-caught-a-corrupt-batch",
    "broker-clock-skewed",
    "swizzle-clogged-every-node",
    "active-controller-crashed",
    "active-controller-lost-power",
    "active-controller-isolated",
    "active-controller-paused",
    "broker-fenced",
    "fenced-broker-unfenced-again",
    "partition-leader-changed",
    "topic-created-during-the-run",
    "network-split-in-halves",
    "network-split-in-a-majorities-ring",
    "duplicate-batch-answered-with-original-offset",
    "isr-shrunk",
    "isr-expanded",
    "follower-truncated-divergent-tail",
    "follower-started-over-at-leader-log-start",
    "unclean-leader-elected",
    "leader-crashed-with-acks-all-in-flight",
    "leader-lost-power-with-acks-all-in-flight",
    "stale-commit-rejected",
    "coordinator-crashed",
    "coordinator-crashed-with-commit-in-flight",
    "client-crashed",
    "client-paused",
    "coordinator-loaded-offsets",
    "retention-deleted-segments",
    "delete-records-moved-log-start",
    "cleaner-swapped-segments",
    "tombstone-delete-horizon-set",
    "tombstone-expired",
    "recovery-completed-swap",
    "consumer-detected-truncation",
    "consumer-reset-after-offset-out-of-range",
];

/// Why a run could not be carried out (not a failed check: that is a verdict).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "this gregor was built without `--cfg madsim` (an outside RUSTFLAGS replaces .cargo/config.toml's flags), so it cannot simulate; unset RUSTFLAGS and rebuild"
    )]
    NotSimulated,
    #[error("{0}")]
    Setup(String),
}

/// What the simulation hands back.
pub struct SimOutput {
    pub history: History,
    pub final_state: FinalState,
    pub marks: BTreeMap<String, u64>,
    /// Every value the seed drew (fault times, ...), by name, printed before the run and kept in the summary.
    pub drawn: BTreeMap<String, f64>,
    pub sim_seconds: f64,
    pub safety_sim_seconds: f64,
    pub safety_wall_seconds: f64,
    pub messages: u64,
    pub safety_messages: u64,
    /// Invariants the online check saw broken, at the event that broke them.
    pub online_violations: Vec<crate::sim::recorder::OnlineViolation>,
    /// When `--halt-on-violation` stopped the run at the first of them (simulated µs).
    pub halted_at_us: Option<u64>,
    /// Copies of every node's disk, when `RunOptions::dump_disks` asked for them.
    pub disks: Vec<NodeDisk>,
}

/// A finished run.
pub struct RunOutcome {
    pub summary: RunSummary,
    pub history: History,
    pub report: CheckReport,
    /// Copies of every node's disk, when `RunOptions::dump_disks` asked for them (brokers, then controllers).
    pub disks: Vec<NodeDisk>,
}

/// What a run prints as it goes, and what it keeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Print the drawn values before the run starts.
    pub announce: bool,
    /// Stop the simulation at the first broken online invariant; only the state-trace invariants are
    /// checked then (the workload never drained, so reads prove nothing).
    pub halt_on_violation: bool,
    /// Keep a copy of every node's disk (`gregor replay --dump-disks`). Taking it changes nothing in the run.
    pub dump_disks: Option<DiskDump>,
}

/// When a run copies every node's disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskDump {
    /// When the run ends (after the drain).
    AtEnd,
    /// As the disks were at this simulated time, in µs since the run started (the history's `time_us`
    /// clock). A time past the run's end gives no copies.
    AtUs(u64),
}

/// One node's disk as a run left it (or as it was at the dump time).
pub struct NodeDisk {
    /// The node's name (`broker-1`, `controller-1`).
    pub node: String,
    pub disk: crate::sim::disk::SimDisk,
}

/// The fault plan a seed draws, every time resolved, swarm faults included (as `broker:random` faults), in
/// the order the run carries them out; each with the index of its `[[faults]]` entry (`None` for a swarm
/// fault). The scenario rewritten with these as its `[[faults]]` (and no `[swarm]`) runs the same plan.
pub fn drawn_faults(s: &Scenario, seed: u64) -> Result<Vec<(Option<usize>, crate::scenario::FaultSpec)>, RunError> {
    #[cfg(madsim)]
    return Ok(simulate::drawn_faults(s, seed));
    #[cfg(not(madsim))]
    {
        let _ = (s, seed);
        Err(RunError::NotSimulated)
    }
}

/// The facts each producer's configuration promises, by process name.
pub fn producer_facts(s: &Scenario) -> BTreeMap<String, ProducerFacts> {
    s.file
        .producers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let cfg = crate::scenario::producer_config(p);
            let acks = match cfg.get("acks").map(String::as_str) {
                Some("0") => 0,
                Some("1") => 1,
                _ => -1,
            };
            // What the producer core will do with this config (KIP-679 defaults included); the validator
            // has refused configs it rejects, so the fallback is never used.
            let core = crate::producer::ProducerConfig::from_map(&cfg).unwrap_or_default();
            (
                producer_name(s, i),
                ProducerFacts {
                    acks,
                    idempotence: core.enable_idempotence,
                    retries: core.retries,
                    max_in_flight: core.max_in_flight_requests_per_connection,
                },
            )
        })
        .collect()
}

/// Producer `i`'s process (and node) name.
pub fn producer_name(s: &Scenario, i: usize) -> String {
    s.file.producers[i]
        .name
        .as_ref()
        .map_or_else(|| format!("client-{}", i + 1), |n| n.get_ref().clone())
}

/// Runs one seed of a scenario.
///
/// The checker runs on the simulation's thread once its runtime is gone, so that what it allocates can
/// reuse the simulation's freed memory from the same per-thread heap (measured: a small effect, peak RSS
/// 167 MB → 165 MB on leader-crash-acks-1; the history itself lives on into the checker).
pub fn run(s: &Scenario, seed: u64, opts: RunOptions) -> Result<RunOutcome, RunError> {
    let wall_start = crate::rt::wall_clock();
    simulate(s, seed, opts, |out| check_run(s, seed, out, wall_start))?
}

fn check_run(s: &Scenario, seed: u64, out: SimOutput, wall_start: std::time::Duration) -> Result<RunOutcome, RunError> {
    let wall_seconds = (crate::rt::wall_clock() - wall_start).as_secs_f64();
    let producers = producer_facts(s);
    let min_insync_replicas = contract::min_insync_replicas(s);
    let compacted_topics = contract::compacted_topics(s);
    let delete_retention_ms = contract::delete_retention_ms(s);
    let input = CheckInput {
        ops: &out.history.ops,
        states: &out.history.states,
        raft_states: &out.history.raft_states,
        metadata_states: &out.history.metadata_states,
        final_state: &out.final_state,
        producers: &producers,
        min_insync_replicas: &min_insync_replicas,
        compacted_topics: &compacted_topics,
        delete_retention_ms: &delete_retention_ms,
    };
    let report = if out.halted_at_us.is_some() {
        checker::check_state_invariants(&input)
    } else {
        checker::check(&input)
    };
    let breaches: Vec<String> = checker::contract::breaches(&input)
        .into_iter()
        .map(|b| b.text)
        .collect();
    let mut out = out;
    let lost_to_power = report
        .anomalies
        .iter()
        .filter(|a| matches!(a.class, "lost-write" | "unseen"))
        .filter(|a| a.explained_by.as_deref().is_some_and(|w| w.starts_with("power loss")))
        .count() as u64;
    if lost_to_power > 0 {
        out.marks.insert("power-loss-lost-acked-records".into(), lost_to_power);
    }
    let corrupt_reads = out
        .history
        .ops
        .iter()
        .filter(|o| matches!(o.body, crate::history::OpBody::CorruptRead { .. }))
        .count();
    if corrupt_reads > 0 {
        out.marks
            .insert("consumer-caught-a-corrupt-batch".into(), corrupt_reads as u64);
    }
    let summary = summary::summarize(s, seed, &out, &report, breaches, wall_seconds);
    Ok(RunOutcome {
        summary,
        history: out.history,
        report,
        disks: out.disks,
    })
}

#[cfg(madsim)]
fn simulate<T: Send>(
    s: &Scenario,
    seed: u64,
    opts: RunOptions,
    then: impl FnOnce(SimOutput) -> Result<T, RunError> + Send,
) -> Result<Result<T, RunError>, RunError> {
    simulate::simulate(s, seed, opts, then)
}

#[cfg(not(madsim))]
fn simulate<T: Send>(
    _s: &Scenario,
    _seed: u64,
    _opts: RunOptions,
    _then: impl FnOnce(SimOutput) -> Result<T, RunError> + Send,
) -> Result<Result<T, RunError>, RunError> {
    Err(RunError::NotSimulated)
}
