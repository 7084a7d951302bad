//! `results.json`: every run of a report, and the timeline of one representative seed. Reports and merges
//! render from this file alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::runner::LatencyMs;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Results {
    pub name: String,
    /// The commit(s) the runs were made with.
    pub commits: Vec<String>,
    /// How the report was made (`gregor report --seeds 12`, or the merge).
    pub command: String,
    pub seeds_per_cell: u64,
    /// The shards (I, N) this file holds.
    pub shards: Vec<[u64; 2]>,
    /// Wall seconds of each shard's matrix, in `shards` order.
    pub shard_wall_seconds: Vec<f64>,
    /// Cells and scenarios left out, and why.
    pub left_out: Vec<String>,
    pub runs: Vec<RunRecord>,
    pub timelines: Vec<Timeline>,
    /// Consumer lag and rebalances of one seed per scenario with consumer groups.
    #[serde(default)]
    pub group_timelines: Vec<GroupTimeline>,
}

/// One run of one cell.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub scenario: String,
    pub scenario_file: String,
    /// The cell's configuration: `acks` and `min.insync.replicas` as the run had them.
    pub acks: String,
    pub min_insync_replicas: u32,
    pub replication_factor: u32,
    /// `unclean.leader.election.enable` as the run had it.
    #[serde(default)]
    pub unclean_leader_election: bool,
    /// The `--set` overrides of the cell.
    pub sets: Vec<String>,
    pub seed: u64,
    pub commit: String,
    /// "pass", "fail", or "error" (no summary).
    pub verdict: String,
    pub in_contract: bool,
    /// Unclean elections the checker inferred from the controllers' metadata (mark `unclean-leader-elected`).
    #[serde(default)]
    pub unclean_elections: u64,
    /// The cell's `must_hit` marks this run did not hit (the run then fails: it did not test its state).
    #[serde(default)]
    pub must_hit_missing: Vec<String>,
    /// Unexplained anomalies per class (non-zero only).
    pub anomalies: BTreeMap<String, u64>,
    /// Explained (allowed) anomalies per class (non-zero only).
    pub explained: BTreeMap<String, u64>,
    pub acked: u64,
    /// Acknowledged records gone by the end (lost-write + unseen).
    pub lost_acked: u64,
    pub indeterminate: u64,
    /// Unknown-outcome sends never read (acks=0: sent, never read).
    pub indeterminate_unread: u64,
    pub produce_latency_ms: LatencyMs,
    pub sim_seconds: f64,
    pub wall_seconds: f64,
    pub repro: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunRecord {
    /// Whether the run lost records: acknowledged ones, or for acks=0 (nothing acknowledged) sent ones.
    pub fn lost(&self) -> bool {
        if self.acks == "0" {
            self.indeterminate_unread > 0
        } else {
            self.lost_acked > 0
        }
    }

    /// Fills the measured fields from a run's `--json` summary (`error` when there is none).
    pub fn fill(&mut self, summary: &Result<Value, String>) {
        let v = match summary {
            Ok(v) => v,
            Err(e) => {
                self.verdict = "error".into();
                self.error = Some(e.clone());
                return;
            }
        };
        let u = |k: &str| v[k].as_u64().unwrap_or(0);
        let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
        let nonzero = |k: &str| -> BTreeMap<String, u64> {
            v[k].as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(c, n)| n.as_u64().filter(|n| *n > 0).map(|n| (c.clone(), n)))
                        .collect()
                })
                .unwrap_or_default()
        };
        self.commit = v["commit"].as_str().unwrap_or("unknown").to_string();
        self.verdict = v["verdict"].as_str().unwrap_or("error").to_string();
        self.in_contract = v["in_contract"].as_bool().unwrap_or(true);
        self.unclean_elections = v["marks"]["unclean-leader-elected"].as_u64().unwrap_or(0);
        self.must_hit_missing = v["must_hit_missing"]
            .as_array()
            .map(|a| a.iter().filter_map(|m| m.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        self.anomalies = nonzero("anomalies");
        self.explained = nonzero("explained");
        self.acked = u("acked");
        self.lost_acked = u("lost_acked");
        self.indeterminate = u("indeterminate");
        self.indeterminate_unread = u("indeterminate_unread");
        self.produce_latency_ms = serde_json::from_value(v["produce_latency_ms"].clone()).unwrap_or_default();
        self.sim_seconds = f("sim_seconds");
        self.wall_seconds = f("wall_seconds");
        if let Some(r) = v["repro"].as_str() {
            self.repro = r.to_string();
        }
    }
}

/// What one seed did over simulated time, drawn from its history and state trace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub scenario: String,
    pub acks: String,
    pub min_insync_replicas: u32,
    pub seed: u64,
    pub repro: String,
    /// Why this seed was chosen.
    pub why: String,
    pub faults: Vec<FaultWindow>,
    pub acked: u64,
    /// (simulated s of the ack, cumulative lost-write, cumulative unseen) at each acknowledged record that
    /// ended lost, plus the start and the end of the run.
    pub loss: Vec<[f64; 3]>,
    /// Per partition (`orders-0`): (simulated s, leader broker id; -1 none) at each change, as leaders report.
    pub leaders: BTreeMap<String, Vec<[f64; 2]>>,
    /// The partition whose replicas `replicas` follows.
    pub partition: String,
    /// Per replica (`broker-2`) of `partition`: its (s, log end offset, high watermark) at each change.
    pub replicas: BTreeMap<String, Vec<[f64; 3]>>,
    pub end_s: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultWindow {
    pub kind: String,
    pub target: String,
    pub start_s: f64,
    pub end_s: f64,
}

/// One seed of a scenario with consumer groups: each group's lag and rebalances over simulated time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupTimeline {
    pub scenario: String,
    pub acks: String,
    pub min_insync_replicas: u32,
    pub seed: u64,
    pub repro: String,
    /// Why this seed was chosen.
    pub why: String,
    pub faults: Vec<FaultWindow>,
    /// Per group id.
    pub groups: BTreeMap<String, GroupSeries>,
    pub end_s: f64,
}

/// A consumer group over time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupSeries {
    /// (simulated s, lag): the sum over the group's partitions of the leader's high watermark minus the
    /// group's committed offset (Kafka's consumer lag as `kafka-consumer-groups --describe` shows it).
    pub lag: Vec<[f64; 2]>,
    /// (simulated s, generation) at the first completed SyncGroup of each generation: a rebalance.
    pub rebalances: Vec<[f64; 2]>,
}
