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
    /// The command that reproduces this run.
    pub repro: String,
}

pub(super) fn summarize(
    s: &Scenario,
    seed: u64,
    out: &SimOutput,
    report: &CheckReport,
    contract_breaches: Vec<String>,
    wall_seconds: f64,
) -> RunSummary {
    let must_hit_missing: Vec<String> = s
        .file
        .expect
        .must_hit
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
        repro: format!("cargo run --release -- run {} --seed {seed}", s.path),
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
                "  acked {} / indeterminate {} / failed {} sends; {:.1} simulated s in {:.2} wall s; {} messages",
                self.acked, self.indeterminate, self.failed, self.sim_seconds, self.wall_seconds, self.messages
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
