//! From runs to cells: counts, Kafka's promise for the cell's configuration, and what was measured against
//! it with an exact binomial bound. Out-of-contract runs are counted apart (ARCHITECTURE §6).

use std::collections::BTreeMap;

use super::results::RunRecord;
use super::stats::{clopper_pearson, count, percent, upper_bound};

/// A cell's key: scenario, acks (in 0, 1, all order), min.insync.replicas, unclean.leader.election.enable.
pub type CellKey = (String, String, u32, bool);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellStats {
    pub scenario: String,
    pub acks: String,
    pub min_insync_replicas: u32,
    pub replication_factor: u32,
    pub unclean_leader_election: bool,
    pub runs: u64,
    pub errors: u64,
    pub pass: u64,
    pub fail: u64,
    pub in_contract: u64,
    pub in_contract_lost: u64,
    pub out_of_contract: u64,
    pub out_of_contract_lost: u64,
    pub acked: u64,
    pub lost_acked: u64,
    pub unread: u64,
    /// Runs in which the checker saw an unclean election.
    pub unclean_runs: u64,
    /// Runs that missed one of the cell's `must_hit` marks.
    pub runs_missing_marks: u64,
    /// Per `must_hit` mark, the runs that missed it.
    pub missing_marks: BTreeMap<String, u64>,
    /// Failing seeds and their repro commands.
    pub failing: Vec<(u64, String)>,
}

impl CellStats {
    /// Whether Kafka promises this cell loses no acknowledged record (in contract).
    pub fn promises_no_loss(&self) -> bool {
        self.acks == "all"
    }

    pub fn config(&self) -> String {
        format!(
            "acks={}, min.insync.replicas={}, RF={}{}",
            self.acks,
            self.min_insync_replicas,
            self.replication_factor,
            if self.unclean_leader_election {
                ", unclean.leader.election.enable=true"
            } else {
                ""
            }
        )
    }

    /// Kafka's promise for this configuration, in one sentence.
    pub fn promise(&self) -> String {
        if self.unclean_leader_election {
            return match self.acks.as_str() {
                "all" => format!(
                    "no acknowledged record is lost while one in-sync replica stays alive (every ack on {} replica(s)); once none is, an out-of-sync replica may be elected (unclean election on) and what only the ISR held is gone: out of contract from that moment",
                    self.min_insync_replicas
                ),
                "1" => "the leader acknowledges before followers copy: a leader change may lose acknowledged records; an unclean election may lose more (unclean election on)".to_string(),
                _ => "nothing is acknowledged: records may be lost silently (fire and forget; unclean election on)".to_string(),
            };
        }
        match (self.acks.as_str(), self.min_insync_replicas) {
            ("all", m) if m >= 2 => format!(
                "no acknowledged record is lost while one in-sync replica stays alive; every ack is on {m} replicas (unclean election off)"
            ),
            ("all", _) => "no acknowledged record is lost while one in-sync replica stays alive; the ISR may shrink to the leader alone, so an ack may rest on one replica (unclean election off)".to_string(),
            ("1", _) => "the leader acknowledges before followers copy: a leader change may lose acknowledged records".to_string(),
            _ => "nothing is acknowledged: records may be lost silently (fire and forget)".to_string(),
        }
    }

    /// What was measured, with an exact 95% bound: "0 lost in 1,200 runs (under 0.25% at 95% confidence)".
    pub fn measured(&self) -> String {
        let what = if self.acks == "0" {
            "runs left sent records unread"
        } else {
            "runs lost acknowledged records"
        };
        let n = self.in_contract;
        let k = self.in_contract_lost;
        let main = if n == 0 {
            "no run stayed in contract".to_string()
        } else if k == 0 {
            format!(
                "0 lost in {} runs (under {} at 95% confidence)",
                count(n),
                percent(upper_bound(0, n, 0.95))
            )
        } else {
            let (lo, hi) = clopper_pearson(k, n, 0.95);
            format!(
                "{} of {} {what} ({} to {} at 95% confidence)",
                count(k),
                count(n),
                percent(lo),
                percent(hi)
            )
        };
        let records = if self.acks == "0" {
            format!("; {} records sent and never read", count(self.unread))
        } else {
            format!(
                "; {} of {} acknowledged records lost",
                count(self.lost_acked),
                count(self.acked)
            )
        };
        let apart = if self.out_of_contract > 0 {
            format!(
                "; {} out-of-contract runs counted apart ({} lost records)",
                self.out_of_contract, self.out_of_contract_lost
            )
        } else {
            String::new()
        };
        let unclean = if self.unclean_runs > 0 {
            format!("; an unclean election in {} runs", self.unclean_runs)
        } else {
            String::new()
        };
        let errors = if self.errors > 0 {
            format!("; {} runs ended without a summary", self.errors)
        } else {
            String::new()
        };
        format!("{main}{records}{apart}{unclean}{errors}")
    }

    /// "kept", "BROKEN" (a promised cell lost acknowledged records in contract), or "as documented".
    pub fn judgement(&self) -> &'static str {
        if !self.promises_no_loss() {
            "loss allowed"
        } else if self.in_contract_lost > 0 {
            "BROKEN"
        } else if self.in_contract == 0 {
            "no evidence"
        } else {
            "kept"
        }
    }

    /// The `must_hit` marks runs missed: "2 runs missed isr-shrunk (2)", or "" when none did.
    pub fn marks_missed(&self) -> String {
        if self.runs_missing_marks == 0 {
            return String::new();
        }
        let marks: Vec<String> = self.missing_marks.iter().map(|(m, n)| format!("{m} ({n})")).collect();
        format!("{} runs missed {}", self.runs_missing_marks, marks.join(", "))
    }

    /// Share of in-contract runs that lost records.
    pub fn loss_share(&self) -> f64 {
        self.in_contract_lost as f64 / self.in_contract.max(1) as f64
    }
}

/// Every cell, in scenario then configuration order.
pub fn cells(runs: &[RunRecord]) -> Vec<CellStats> {
    let mut by: BTreeMap<CellKey, CellStats> = BTreeMap::new();
    for r in runs {
        let c = by.entry(key_of(r)).or_insert_with(|| CellStats {
            scenario: r.scenario.clone(),
            acks: r.acks.clone(),
            min_insync_replicas: r.min_insync_replicas,
            replication_factor: r.replication_factor,
            unclean_leader_election: r.unclean_leader_election,
            ..CellStats::default()
        });
        add(c, r);
    }
    by.into_values().collect()
}

/// The cell a run belongs to.
pub fn key_of(r: &RunRecord) -> CellKey {
    (
        r.scenario.clone(),
        acks_order(&r.acks),
        r.min_insync_replicas,
        r.unclean_leader_election,
    )
}

/// Sorts acks 0, 1, all.
fn acks_order(acks: &str) -> String {
    match acks {
        "0" => "a0".into(),
        "1" => "a1".into(),
        other => format!("b{other}"),
    }
}

fn add(c: &mut CellStats, r: &RunRecord) {
    c.runs += 1;
    c.unclean_runs += u64::from(r.unclean_elections > 0);
    c.runs_missing_marks += u64::from(!r.must_hit_missing.is_empty());
    for m in &r.must_hit_missing {
        *c.missing_marks.entry(m.clone()).or_default() += 1;
    }
    if r.verdict == "error" {
        c.errors += 1;
        c.failing.push((r.seed, r.repro.clone()));
        return;
    }
    if r.verdict == "pass" {
        c.pass += 1;
    } else {
        c.fail += 1;
        c.failing.push((r.seed, r.repro.clone()));
    }
    if r.in_contract {
        c.in_contract += 1;
        c.in_contract_lost += u64::from(r.lost());
    } else {
        c.out_of_contract += 1;
        c.out_of_contract_lost += if r.acks == "0" {
            r.indeterminate_unread
        } else {
            r.lost_acked
        };
    }
    c.acked += r.acked;
    c.lost_acked += r.lost_acked;
    c.unread += r.indeterminate_unread;
}

/// Produce latency per acks setting over runs that acknowledged something: the mean of the runs' p50 and
/// p99, and the largest max.
pub fn latency_by_acks(runs: &[RunRecord]) -> Vec<(String, u64, [f64; 3])> {
    let mut by: BTreeMap<String, (String, u64, [f64; 3])> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.produce_latency_ms.count > 0) {
        let e = by
            .entry(acks_order(&r.acks))
            .or_insert_with(|| (r.acks.clone(), 0, [0.0; 3]));
        let l = &r.produce_latency_ms;
        e.1 += 1;
        e.2[0] += l.p50;
        e.2[1] += l.p99;
        e.2[2] = e.2[2].max(l.max);
    }
    by.into_values()
        .map(|(acks, n, s)| (acks, n, [s[0] / n as f64, s[1] / n as f64, s[2]]))
        .collect()
}
