//! A run's summary: the `--json` contract of ARCHITECTURE §7 and the human-readable verdict.

use std::collections::BTreeMap;

use serde::Serialize;

use super::SimOutput;
use crate::checker::{Anomaly, CheckReport};
use crate::scenario::Scenario;

/// The commit this binary was built from (set by CI or `git`), or "unknown".
pub fn commit() -> String {
    option_env!("GREGOR_COMMIT").unwrap_or("unknown").to_string()
}

#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub scenario: String,
    pub seed: u64,
    pub commit: String,
    pub scenario_hash: String,
    /// "pass" or "fail".
    pub verdict: String,
    pub history_hash: String,
    /// Unexplained anomalies per class (every class, zeros included).
    pub anomalies: BTreeMap<&'static str, u64>,
    /// Explained anomalies per class: legal Kafka behaviour under this configuration and these faults.
    pub explained: BTreeMap<&'static str, u64>,
    /// Per class with explained anomalies, why they are allowed.
    pub allowed: BTreeMap<&'static str, String>,
    pub in_contract: bool,
    pub contract_breaches: Vec<String>,
    pub marks: BTreeMap<String, u64>,
    /// Marks the scenario's `must_hit` demands that this run did not hit.
    pub must_hit_missing: Vec<String>,
    pub acked: u64,
    /// Acknowledged records removed from the log's start by retention or DeleteRecords (not lost).
    pub removed: u64,
    /// Acknowledged records a compacted topic's cleaner may have removed (a later record of the key above).
    pub compacted: u64,
    pub indeterminate: u64,
    pub failed: u64,
    /// Every value the seed drew.
    pub drawn: BTreeMap<String, f64>,
    pub sim_seconds: f64,
    pub wall_seconds: f64,
    pub safety_sim_seconds: f64,
    pub safety_wall_seconds: f64,
    pub messages: u64,
    pub safety_messages: u64,
    /// The first unexplained anomalies, for the reader (at most 20).
    pub violations: Vec<Anomaly>,
    /// The first invariants the online check saw broken (at most 20), each at the event that broke it:
    /// the simulated time, the trace (`replica`, `raft`, `metadata`) and the event's index there.
    pub online_violations: Vec<crate::sim::recorder::OnlineViolation>,
    /// Set when `--halt-on-violation` stopped the run at the first of them (simulated seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted_at_s: Option<f64>,
    /// The command that reproduces this run.
    pub repro: String,
    /// The `--set` overrides this run applied on top of the scenario file.
    pub overrides: Vec<String>,
    /// Acknowledged records gone by the end: lost-write plus unseen, explained or not.
    pub lost_acked: u64,
    /// Sends with an unknown outcome (acks=0 included) never read: acks=0's "sent, never read".
    pub indeterminate_unread: u64,
    /// From each acknowledged send's invoke to its ok, in simulated milliseconds.
    pub produce_latency_ms: LatencyMs,
}

/// Latency percentiles (nearest rank) over `count` samples; zeros when there are none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LatencyMs {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl LatencyMs {
    pub fn of(mut samples_ms: Vec<f64>) -> LatencyMs {
        if samples_ms.is_empty() {
            return LatencyMs::default();
        }
        samples_ms.sort_by(f64::total_cmp);
        let rank = |q: f64| samples_ms[((q * samples_ms.len() as f64).ceil() as usize).clamp(1, samples_ms.len()) - 1];
        LatencyMs {
            count: samples_ms.len() as u64,
            p50: rank(0.50),
            p99: rank(0.99),
            max: samples_ms[samples_ms.len() - 1],
        }
    }
}

/// Each acknowledged send's latency: invoke to ok of the same value (values are unique per run).
fn produce_latencies_ms(ops: &[crate::history::Op]) -> Vec<f64> {
    use crate::history::{OpBody, OpType};
    // Looked up only, never iterated: a hash map leaks no order.
    let mut invoked: rustc_hash::FxHashMap<(&str, &str), u64> = Default::default();
    let mut out = vec![];
    for op in ops {
        let OpBody::Send { value, .. } = &op.body else { continue };
        match op.op_type {
            OpType::Invoke => {
                invoked.insert((op.process.as_str(), value.as_str()), op.time_us);
            }
            OpType::Ok => {
                if let Some(t) = invoked.remove(&(op.process.as_str(), value.as_str())) {
                    out.push(op.time_us.saturating_sub(t) as f64 / 1e3);
                }
            }
            _ => {}
        }
    }
    out
}

pub(super) fn summarize(
    s: &Scenario,
    seed: u64,
    out: &SimOutput,
    report: &CheckReport,
    contract_breaches: Vec<String>,
    wall_seconds: f64,
) -> RunSummary {
    // A run halted at its first broken invariant never reached what its marks wait for.
    let must_hit = if out.halted_at_us.is_some() {
        &[][..]
    } else {
        &s.file.expect.must_hit[..]
    };
    let must_hit_missing: Vec<String> = must_hit
        .iter()
        .map(|m| m.get_ref().clone())
        .filter(|m| out.marks.get(m).copied().unwrap_or(0) == 0)
        .collect();
    let allow: Vec<&str> = s.file.expect.allow.iter().map(|a| a.get_ref().as_str()).collect();
    let violations: Vec<Anomaly> = report
        .anomalies
        .iter()
        .filter(|a| a.explained_by.is_none() && !allow.contains(&a.class))
        .cloned()
        .collect();
    let mut allowed = report.allowed_reasons();
    for a in &allow {
        if let Some(c) = crate::checker::CLASSES.iter().find(|c| *c == a) {
            allowed
                .entry(c)
                .or_insert_with(|| "allowed by the scenario's expect.allow".to_string());
        }
    }
    let pass = violations.is_empty() && must_hit_missing.is_empty();
    let mut anomalies: BTreeMap<&'static str, u64> = crate::checker::CLASSES.iter().map(|c| (*c, 0)).collect();
    for v in &violations {
        *anomalies.entry(v.class).or_default() += 1;
    }
    let mut explained = report.explained();
    for a in report
        .anomalies
        .iter()
        .filter(|a| a.explained_by.is_none() && allow.contains(&a.class))
    {
        *explained.entry(a.class).or_default() += 1;
    }
    RunSummary {
        scenario: s.name().to_string(),
        seed,
        commit: commit(),
        scenario_hash: s.hash.clone(),
        verdict: if pass { "pass" } else { "fail" }.to_string(),
        history_hash: out.history.hash(),
        anomalies,
        explained,
        allowed,
        in_contract: contract_breaches.is_empty(),
        contract_breaches,
        marks: out.marks.clone(),
        must_hit_missing,
        acked: report.acked,
        removed: report.removed,
        compacted: report.compacted,
        indeterminate: report.indeterminate,
        failed: report.failed,
        drawn: out.drawn.clone(),
        sim_seconds: out.sim_seconds,
        wall_seconds,
        safety_sim_seconds: out.safety_sim_seconds,
        safety_wall_seconds: out.safety_wall_seconds,
        messages: out.messages,
        safety_messages: out.safety_messages,
        violations: violations.into_iter().take(20).collect(),
        online_violations: out.online_violations.iter().take(20).cloned().collect(),
        halted_at_s: out.halted_at_us.map(|us| us as f64 / 1e6),
        repro: repro(s, seed),
        overrides: s.overrides.clone(),
        lost_acked: report
            .anomalies
            .iter()
            .filter(|a| matches!(a.class, "lost-write" | "unseen"))
            .count() as u64,
        indeterminate_unread: report.indeterminate_unread,
        produce_latency_ms: LatencyMs::of(produce_latencies_ms(&out.history.ops)),
    }
}

/// The command that reproduces a run, overrides included.
pub fn repro(s: &Scenario, seed: u64) -> String {
    let mut line = format!("cargo run --release -- run {} --seed {seed}", s.path);
    for o in &s.overrides {
        line.push_str(&format!(" --set {o}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::LatencyMs;

    #[test]
    fn latency_percentiles_are_nearest_rank() {
        let l = LatencyMs::of((1..=100).map(f64::from).collect());
        assert_eq!((l.count, l.p50, l.p99, l.max), (100, 50.0, 99.0, 100.0));
        assert_eq!(LatencyMs::of(vec![]), LatencyMs::default());
        assert_eq!(LatencyMs::of(vec![7.0]).p99, 7.0);
    }
}

impl RunSummary {
    /// The human-readable report: the verdict first, then what happened.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(
            &mut out,
            format!(
                "{} {} seed {}: {}",
                self.verdict.to_uppercase(),
                self.scenario,
                self.seed,
                self.repro
            ),
        );
        line(
            &mut out,
            format!(
                "  acked {} / indeterminate {} / failed {} sends; {:.1} simulated s in {:.2} wall s; {} messages{}{}",
                self.acked,
                self.indeterminate,
                self.failed,
                self.sim_seconds,
                self.wall_seconds,
                self.messages,
                if self.removed > 0 {
                    format!("; {} acked records removed by retention or DeleteRecords", self.removed)
                } else {
                    String::new()
                },
                if self.compacted > 0 {
                    format!(
                        "; {} acked records compacted away below a later record of their key",
                        self.compacted
                    )
                } else {
                    String::new()
                }
            ),
        );
        let contract = if self.in_contract {
            "in contract".to_string()
        } else {
            format!("OUT of contract: {}", self.contract_breaches.join("; "))
        };
        line(&mut out, format!("  {contract}"));
        for (class, n) in self.explained.iter().filter(|(_, n)| **n > 0) {
            line(
                &mut out,
                format!(
                    "  allowed {class} x{n}: {}",
                    self.allowed.get(class).cloned().unwrap_or_default()
                ),
            );
        }
        for (class, n) in self.anomalies.iter().filter(|(_, n)| **n > 0) {
            line(&mut out, format!("  VIOLATION {class} x{n}"));
        }
        for v in &self.violations {
            line(
                &mut out,
                format!("    {} {}-{}: {}", v.class, v.topic, v.partition, v.detail),
            );
        }
        if let Some(first) = self.online_violations.first() {
            let halted = self
                .halted_at_s
                .map_or(String::new(), |t| format!("; the run halted there at {t:.3}s"));
            line(
                &mut out,
                format!(
                    "  first online violation at {:.3}s ({} event {}){halted}: {}",
                    first.time_us as f64 / 1e6,
                    first.trace,
                    first.index,
                    first.text
                ),
            );
        }
        for m in &self.must_hit_missing {
            line(
                &mut out,
                format!("  MISSED must_hit mark {m}: the run did not reach the state it exists to test"),
            );
        }
        let marks: Vec<String> = self.marks.iter().map(|(m, n)| format!("{m}={n}")).collect();
        line(&mut out, format!("  marks: {}", marks.join(", ")));
        line(&mut out, format!("  history {}", self.history_hash));
        out
    }
}
