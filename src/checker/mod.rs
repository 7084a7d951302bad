//! L5: checkers. Pure functions of the history, the state trace and the final state, named after the
//! anomaly they find (Jepsen's queue checker names; ARCHITECTURE §6). They build their own view from the
//! history and never trust a node's internals.
//!
//! Every anomaly found is either a violation or *explained*: the configuration or a fault that actually
//! happened makes it legal Kafka behaviour, and the explanation names which (a power loss whose durable
//! frontier did not reach the record; a leader change under acks=1). A run fails on any unexplained
//! anomaly. The oracle must be right both ways: explanations are derived per occurrence, never by a blanket
//! "this class is fine here".

mod compaction;
pub mod contract;
pub use crate::history::BatchDigest;
mod groups;
pub mod replicas;
mod tombstones;
pub mod invariants;
mod view;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::history::{MetadataState, Op, RaftState, ReadRecord, ReplicaState};

pub use view::PowerLoss;

/// Every anomaly class the checkers report (`--json` lists each, zeros included).
pub const CLASSES: &[&str] = &[
    "lost-write",
    "unseen",
    "duplicate",
    "inconsistent-offsets",
    "aborted-read",
    "phantom-read",
    "int-nonmonotonic-poll",
    "nonmonotonic-poll",
    "poll-skip",
    "nonmonotonic-send",
    "realtime-offset",
    "read-then-lost",
    "nonmonotonic-log",
    "liveness",
    "offset-regress",
    "offset-skip",
    "partition-owners",
    "log-bounds",
    "hw-regress",
    "epoch-regress",
    "raft-leaders",
    "raft-epoch-regress",
    "raft-hw-regress",
    "metadata-regress",
    "metadata-divergence",
    "fenced-leader",
    "replica-divergence",
    "stale-latest",
    "resurrected",
];

/// One replica's log at the end of the run, read from its disk below the high watermark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaLog {
    pub node: String,
    pub topic: String,
    pub partition: i32,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub records: Vec<ReadRecord>,
    /// Every valid batch of the log, in order, as [`replicas`] compares them.
    pub batches: Vec<BatchDigest>,
}

/// What the run ended with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FinalState {
    pub replica_logs: Vec<ReplicaLog>,
    /// Why the cluster did not become live by the deadline ("partition t-0 has no leader"), if it did not.
    pub liveness_failures: Vec<String>,
}

/// Per producer process, what its configuration promises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProducerFacts {
    pub acks: i16,
    pub idempotence: bool,
    /// How many times a failed send is retried (`retries`); 0 means a send is tried once.
    pub retries: u32,
    /// `max.in.flight.requests.per.connection`: above 1, without idempotence, retries may reorder sends.
    pub max_in_flight: usize,
}

/// Everything the checkers read.
pub struct CheckInput<'a> {
    pub ops: &'a [Op],
    pub states: &'a [ReplicaState],
    /// The controllers' Raft trace (empty without a quorum).
    pub raft_states: &'a [RaftState],
    /// What each node's applied metadata said (empty without a quorum).
    pub metadata_states: &'a [MetadataState],
    pub final_state: &'a FinalState,
    pub producers: &'a BTreeMap<String, ProducerFacts>,
    /// `min.insync.replicas` by topic (1 when left out), for the contract monitor ([`contract`]).
    pub min_insync_replicas: &'a BTreeMap<String, u32>,
    /// The topics whose `cleanup.policy` holds `compact` ([`compaction`]).
    pub compacted_topics: &'a BTreeSet<String>,
    /// `delete.retention.ms` of the compacted topics (Kafka's default, one day, when left out): how long a
    /// tombstone stays once the cleaner kept it ([`tombstones`]).
    pub delete_retention_ms: &'a BTreeMap<String, i64>,
}

/// One anomaly occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    pub class: &'static str,
    pub topic: String,
    pub partition: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub detail: String,
    /// Why this is legal Kafka behaviour here, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained_by: Option<String>,
}

/// All checkers' findings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub anomalies: Vec<Anomaly>,
    /// Acknowledged sends (ok).
    pub acked: u64,
    /// Sends whose outcome is unknown (info), acks=0 included.
    pub indeterminate: u64,
    /// Of the indeterminate sends, how many were never read (for acks=0: "sent, never read").
    pub indeterminate_unread: u64,
    pub failed: u64,
    /// Acknowledged records never read that lie below a log start offset the partition reached: removed by
    /// retention or DeleteRecords, as Kafka promises to do, so neither lost nor unseen.
    pub removed: u64,
    /// Acknowledged records never read on a compacted topic with a later landed record of their key above
    /// them: the log cleaner may remove them (Kafka keeps only each key's latest), so neither lost nor unseen.
    /// Tombstones (and the records they delete) that may have expired after `delete.retention.ms` count here
    /// too.
    pub compacted: u64,
}

impl CheckReport {
    /// Unexplained anomalies per class, every class listed.
    pub fn violations(&self) -> BTreeMap<&'static str, u64> {
        self.count(|a| a.explained_by.is_none())
    }

    /// Explained anomalies per class, every class listed.
    pub fn explained(&self) -> BTreeMap<&'static str, u64> {
        self.count(|a| a.explained_by.is_some())
    }

    /// One reason per class that had explained anomalies (the first found).
    pub fn allowed_reasons(&self) -> BTreeMap<&'static str, String> {
        let mut out = BTreeMap::new();
        for a in &self.anomalies {
            if let Some(why) = &a.explained_by {
                out.entry(a.class).or_insert_with(|| why.clone());
            }
        }
        out
    }

    pub fn passed(&self) -> bool {
        self.anomalies.iter().all(|a| a.explained_by.is_some())
    }

    fn count(&self, keep: impl Fn(&Anomaly) -> bool) -> BTreeMap<&'static str, u64> {
        let mut out: BTreeMap<&'static str, u64> = CLASSES.iter().map(|c| (*c, 0)).collect();
        for a in self.anomalies.iter().filter(|a| keep(a)) {
            *out.entry(a.class).or_default() += 1;
        }
        out
    }
}

/// Runs every checker.
/// Only the state-trace invariants (what the online check runs): for a run halted at its first violation,
/// whose workload never finished or drained.
pub fn check_state_invariants(input: &CheckInput<'_>) -> CheckReport {
    let mut anomalies = invariants::replica_invariants(input.states);
    anomalies.extend(invariants::raft_invariants(input.raft_states));
    anomalies.extend(invariants::metadata_invariants(input.metadata_states));
    CheckReport {
        anomalies,
        ..CheckReport::default()
    }
}

pub fn check(input: &CheckInput<'_>) -> CheckReport {
    let out_of_contract = contract::out_of_contract(input);
    let v = view::View::build(input, &out_of_contract);
    let mut report = CheckReport {
        acked: v.acked.len() as u64,
        indeterminate: v.indeterminate.len() as u64,
        indeterminate_unread: v.indeterminate.iter().filter(|s| !v.seen.contains_key(s.value)).count() as u64,
        failed: v.failed.len() as u64,
        ..CheckReport::default()
    };
    let out = &mut report.anomalies;
    (report.removed, report.compacted) = v.lost_and_unseen(out);
    v.duplicates(out);
    v.inconsistent_offsets(out);
    v.aborted_and_phantom_reads(out);
    v.poll_order(out);
    v.send_order(out);
    v.read_then_lost(out);
    v.log_order(out);
    v.stale_latest(out);
    v.resurrected(out);
    let g = groups::Groups::build(input.ops);
    g.offset_regress(&v, out);
    g.offset_skip(&v, out);
    g.partition_owners(out);
    out.extend(invariants::replica_invariants(input.states));
    out.extend(invariants::raft_invariants(input.raft_states));
    out.extend(invariants::metadata_invariants(input.metadata_states));
    out.extend(replicas::replica_divergence(input, &out_of_contract));
    for why in &input.final_state.liveness_failures {
        out.push(Anomaly {
            class: "liveness",
            topic: String::new(),
            partition: -1,
            offset: None,
            value: None,
            detail: why.clone(),
            explained_by: None,
        });
    }
    report
}
