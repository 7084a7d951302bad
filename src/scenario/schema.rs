//! The scenario file's schema, as serde reads it. Every key is documented in `scenarios/README.md`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A config map by Kafka's names (`"min.insync.replicas" = 2`), each value with its place in the file.
pub type ConfigMap = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub cluster: Cluster,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub topics: Vec<Topic>,
    #[serde(default)]
    pub producers: Vec<Producer>,
    #[serde(default)]
    pub consumer_groups: Vec<ConsumerGroup>,
    pub phases: Phases,
    #[serde(default)]
    pub faults: Vec<FaultEntry>,
    #[serde(default)]
    pub swarm: Option<Swarm>,
    #[serde(default)]
    pub expect: Expect,
    /// Switches that bring back known Kafka defects (`KAFKA-9491 = true`). All off by default.
    #[serde(default)]
    pub bugs: BTreeMap<Spanned<String>, Spanned<bool>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// KRaft voters: 1, 3 or 5; 0 = a static metadata image (before the quorum exists).
    pub controllers: Spanned<u32>,
    pub brokers: Spanned<u32>,
    /// Every broker's config, by Kafka's names.
    #[serde(default)]
    pub broker_config: ConfigMap,
    /// The controllers' config, by Kafka's names (`broker.session.timeout.ms`,
    /// `unclean.leader.election.enable`, `controller.quorum.*.ms`, ...).
    #[serde(default)]
    pub controller_config: ConfigMap,
}

/// madsim's network: one latency range for every link (packet loss and the like are faults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    #[serde(default = "default_latency_ms")]
    pub latency_ms: Spanned<[f64; 2]>,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            latency_ms: Spanned::new(0..0, default_latency_ms_value()),
        }
    }
}

fn default_latency_ms_value() -> [f64; 2] {
    [1.0, 5.0]
}

fn default_latency_ms() -> Spanned<[f64; 2]> {
    Spanned::new(0..0, default_latency_ms_value())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    pub name: Spanned<String>,
    pub partitions: Spanned<u32>,
    #[serde(default = "one")]
    pub replication_factor: Spanned<u32>,
    /// Topic config by Kafka's names (`segment.bytes`, `min.insync.replicas`, ...).
    #[serde(default)]
    pub config: ConfigMap,
    /// With a controller quorum: create the topic at this time of the safety phase (CreateTopics sent to the
    /// controllers, retried until it succeeds) instead of before the run.
    #[serde(default)]
    pub create_at_s: Option<Spanned<f64>>,
}

fn one() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Producer {
    /// The client node's name; `client-N` by position when left out.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    pub topic: Spanned<String>,
    pub records_per_s: Spanned<f64>,
    /// Keys are `k0` .. `k{key_space-1}`; values are unique per run.
    #[serde(default = "default_key_space")]
    pub key_space: Spanned<u32>,
    /// The fraction of sends that are tombstones (a null value) for a key the producer wrote a value for
    /// before: deletes on a compacted topic (`cleanup.policy=compact`). Default 0: none.
    #[serde(default = "zero_rate")]
    pub tombstone_rate: Spanned<f64>,
    /// Stop after this many records (default: produce for the whole safety phase).
    #[serde(default)]
    pub records: Option<Spanned<u64>>,
    /// Producer config by Kafka's names (`acks`, `linger.ms`, `batch.size`, `request.timeout.ms`, ...).
    #[serde(default)]
    pub config: ConfigMap,
}

/// A consumer group: `members` consumers, each its own client node named `GROUP-N` (N from 1), subscribed to
/// `topics` under group management.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerGroup {
    pub group_id: Spanned<String>,
    #[serde(default = "one")]
    pub members: Spanned<u32>,
    pub topics: Vec<Spanned<String>>,
    /// Consumer config by Kafka's names (`enable.auto.commit`, `session.timeout.ms`, `max.poll.records`, ...).
    #[serde(default)]
    pub config: ConfigMap,
    /// With `enable.auto.commit = false`: each member commits what it polled this often (ms).
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: Spanned<u64>,
    /// After each poll the member sleeps this long (ms): the application's processing time, so a member can
    /// be made slower than the producers (Kafka has no such config; 0: poll again at once).
    #[serde(default = "zero_ms")]
    pub poll_pause_ms: Spanned<u64>,
}

fn zero_ms() -> Spanned<u64> {
    Spanned::new(0..0, 0)
}

fn default_commit_interval_ms() -> Spanned<u64> {
    Spanned::new(0..0, 500)
}

fn zero_rate() -> Spanned<f64> {
    Spanned::new(0..0, 0.0)
}

fn default_key_space() -> Spanned<u32> {
    Spanned::new(0..0, 100)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phases {
    /// Workload and faults, in simulated seconds.
    pub safety_s: Spanned<f64>,
    /// Every fault undone, crashed nodes restarted.
    #[serde(default = "default_heal_s")]
    pub heal_s: Spanned<f64>,
    /// By then every partition has a leader and a produce succeeds.
    #[serde(default = "default_liveness_s")]
    pub liveness_deadline_s: Spanned<f64>,
    /// Read every partition back at the end.
    #[serde(default = "yes")]
    pub drain: bool,
}

fn default_heal_s() -> Spanned<f64> {
    Spanned::new(0..0, 2.0)
}
fn default_liveness_s() -> Spanned<f64> {
    Spanned::new(0..0, 30.0)
}
fn yes() -> bool {
    true
}

/// A simulated time or a range the seed draws it from: `at_s = 3.5` or `at_s = [1, 9]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TimeValue {
    At(f64),
    Range([f64; 2]),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultEntry {
    pub at_s: Spanned<TimeValue>,
    pub kind: Spanned<String>,
    pub target: Spanned<String>,
    /// For crash, power_loss and shutdown: restart the node after this long (else at heal).
    #[serde(default)]
    pub restart_after_s: Option<Spanned<TimeValue>>,
    /// For faults that last (pause, partition, clog, ...): how long.
    #[serde(default)]
    pub duration_s: Option<Spanned<TimeValue>>,
    /// packet_loss: the share of packets lost; disk_eio: the share of disk calls failing.
    #[serde(default)]
    pub rate: Option<Spanned<f64>>,
    /// latency: the new one-way latency range, in milliseconds.
    #[serde(default)]
    pub latency_ms: Option<Spanned<[f64; 2]>>,
    /// disk_slow: how many times slower every disk call is.
    #[serde(default)]
    pub factor: Option<Spanned<u32>>,
    /// clock_skew: how far the node's wall clock runs ahead (positive) or behind (negative), in milliseconds.
    #[serde(default)]
    pub skew_ms: Option<Spanned<i64>>,
    /// `partition` only: `isolate` (default: the target is cut off from every node), `one-way` (the target
    /// receives nothing but can still send), `halves` (the nodes split into a minority holding the target and
    /// a majority), `ring` (Jepsen's majorities ring: each node sees only its ring neighbours).
    #[serde(default)]
    pub mode: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Anomaly classes allowed on top of what the configuration and the contract monitor allow.
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// Coverage marks this fixed fault plan must force in every run.
    #[serde(default)]
    pub must_hit: Vec<Spanned<String>>,
    /// Coverage marks a sweep must hit in at least this share of its seeds.
    #[serde(default)]
    pub sweep_must_hit: BTreeMap<Spanned<String>, Spanned<f64>>,
}

/// Swarm testing (TigerBeetle's): instead of (or besides) a fixed plan, each seed draws its own fault mix
/// from these ranges — some seeds quiet, others heavy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Swarm {
    /// Faults per simulated minute of the safety phase: the seed draws a rate in this range.
    pub faults_per_minute: Spanned<[f64; 2]>,
    /// The kinds a seed draws from (each fault picks one uniformly).
    pub kinds: Vec<Spanned<String>>,
    /// Lasting faults last this long (simulated seconds).
    #[serde(default = "swarm_duration")]
    pub duration_s: Spanned<[f64; 2]>,
    /// Stopped nodes restart after this long (simulated seconds).
    #[serde(default = "swarm_restart")]
    pub restart_after_s: Spanned<[f64; 2]>,
    /// packet_loss faults lose this share of packets.
    #[serde(default = "swarm_loss")]
    pub packet_loss: Spanned<[f64; 2]>,
    /// drop_response, conn_reset and disk_eio faults hit this share of responses / disk calls.
    #[serde(default = "swarm_rate")]
    pub rate: Spanned<[f64; 2]>,
    /// latency faults set every link's latency to a range inside this one (milliseconds).
    #[serde(default = "swarm_latency")]
    pub latency_ms: Spanned<[f64; 2]>,
    /// disk_slow faults make the disk this many times slower.
    #[serde(default = "swarm_factor")]
    pub factor: Spanned<[u32; 2]>,
    /// clock_skew faults move the node's clock by this much (milliseconds, either way).
    #[serde(default = "swarm_skew")]
    pub skew_ms: Spanned<[i64; 2]>,
}

fn swarm_duration() -> Spanned<[f64; 2]> {
    Spanned::new(0..0, [0.5, 3.0])
}
fn swarm_restart() -> Spanned<[f64; 2]> {
    Spanned::new(0..0, [0.2, 2.0])
}
fn swarm_loss() -> Spanned<[f64; 2]> {
    Spanned::new(0..0, [0.05, 0.3])
}
fn swarm_rate() -> Spanned<[f64; 2]> {
    Spanned::new(0..0, [0.01, 0.3])
}
fn swarm_latency() -> Spanned<[f64; 2]> {
    Spanned::new(0..0, [5.0, 100.0])
}
fn swarm_factor() -> Spanned<[u32; 2]> {
    Spanned::new(0..0, [10, 500])
}
fn swarm_skew() -> Spanned<[i64; 2]> {
    Spanned::new(0..0, [1_000, 3_600_000])
}
