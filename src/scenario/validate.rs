//! Validation of a parsed scenario: impossible shapes, unknown config keys, fault targets that cannot exist.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::schema::*;

pub(super) struct Invalid {
    pub span: Option<Range<usize>>,
    pub message: String,
}

fn invalid<T>(span: Range<usize>, message: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid {
        span: Some(span),
        message: message.into(),
    })
}

/// A time, fixed or drawn by the seed from a range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeSpec {
    At(f64),
    Range(f64, f64),
}

impl TimeSpec {
    /// The time for this run: a range draws uniformly with `unit` in [0, 1).
    pub fn resolve(&self, unit: f64) -> f64 {
        match *self {
            TimeSpec::At(t) => t,
            TimeSpec::Range(lo, hi) => lo + (hi - lo) * unit,
        }
    }

    pub fn max(&self) -> f64 {
        match *self {
            TimeSpec::At(t) => t,
            TimeSpec::Range(_, hi) => hi,
        }
    }
}

/// The fault kinds of ARCHITECTURE §7 the system carries out today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// Process crash (kill); restart after `restart_after_s`.
    Crash,
    /// Power loss: kill, the SimDisk loses what was not synced (torn writes); restart after `restart_after_s`.
    PowerLoss,
    /// Controlled shutdown (SIGTERM-like): the broker flushes, checkpoints and exits cleanly.
    Shutdown,
    /// The node's process is frozen for `duration_s` (a long GC pause, a stopped VM).
    Pause,
    /// The node is cut off from every other node for `duration_s` (madsim clogs its links: nothing is
    /// delivered until they heal, as simulated TCP then retransmits).
    Partition,
    /// The node's links stall for `duration_s` (madsim's clog).
    Clog,
    /// Packets are lost at `rate` on every link for `duration_s` (madsim's loss rate is global; TCP retransmits).
    PacketLoss,
    /// Every link's latency becomes `latency_ms` for `duration_s` (madsim's latency is global).
    Latency,
    /// The node's disk fails calls with EIO at `rate` for `duration_s` (a failed log dir shuts the broker down).
    DiskEio,
    /// The node's disk is full (ENOSPC) for `duration_s`.
    DiskFull,
    /// The node's disk is `factor` times slower for `duration_s`.
    DiskSlow,
    /// For `duration_s`, each response the node sends is lost with probability `rate`; the client times out.
    DropResponse,
    /// For `duration_s`, the node resets the connection instead of answering with probability `rate`.
    ConnReset,
    /// FoundationDB's swizzle-clog: over `duration_s`, every node (brokers and clients) is clogged one by one
    /// in a seeded order, then unclogged one by one in another.
    Swizzle,
    /// The node's wall clock runs `skew_ms` ahead (or behind) for `duration_s`.
    ClockSkew,
    /// One bit flips at rest inside a record batch of one of the node's log segments, in the bytes the batch's
    /// CRC-32C covers. Consumers check CRCs (`check.crcs`): the batch must be reported corrupt, never read.
    DiskBitflip,
}

/// Kinds ARCHITECTURE §7 names that are not carried out yet.
const PLANNED_KINDS: &[&str] = &[];

const KINDS: &[(&str, FaultKind)] = &[
    ("crash", FaultKind::Crash),
    ("power_loss", FaultKind::PowerLoss),
    ("shutdown", FaultKind::Shutdown),
    ("pause", FaultKind::Pause),
    ("partition", FaultKind::Partition),
    ("clog", FaultKind::Clog),
    ("packet_loss", FaultKind::PacketLoss),
    ("latency", FaultKind::Latency),
    ("disk_eio", FaultKind::DiskEio),
    ("disk_full", FaultKind::DiskFull),
    ("disk_slow", FaultKind::DiskSlow),
    ("drop_response", FaultKind::DropResponse),
    ("conn_reset", FaultKind::ConnReset),
    ("disk_bitflip", FaultKind::DiskBitflip),
    ("clock_skew", FaultKind::ClockSkew),
    ("swizzle", FaultKind::Swizzle),
];

impl FaultKind {
    pub fn name(&self) -> &'static str {
        KINDS.iter().find(|(_, k)| k == self).map_or("?", |(n, _)| n)
    }

    /// Whether the fault takes the node down until a restart (crash, power loss, controlled shutdown).
    pub fn stops_the_node(&self) -> bool {
        matches!(self, FaultKind::Crash | FaultKind::PowerLoss | FaultKind::Shutdown)
    }

    /// Whether the fault happens at one instant (nothing to undo, no duration).
    pub fn is_instant(&self) -> bool {
        matches!(self, FaultKind::DiskBitflip)
    }

    fn parse(s: &Spanned<String>) -> Result<FaultKind, Invalid> {
        let name = s.get_ref().as_str();
        if let Some((_, k)) = KINDS.iter().find(|(n, _)| *n == name) {
            return Ok(*k);
        }
        let known: Vec<&str> = KINDS.iter().map(|(n, _)| *n).collect();
        if PLANNED_KINDS.contains(&name) {
            return invalid(
                s.span(),
                format!(
                    "fault kind `{name}` is not carried out yet; today: {}",
                    known.join(", ")
                ),
            );
        }
        invalid(
            s.span(),
            format!(
                "unknown fault kind `{name}`; kinds: {}, and later {}",
                known.join(", "),
                PLANNED_KINDS.join(", ")
            ),
        )
    }
}

/// A fault's target: a role resolved when the fault fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `node:NAME`
    Node(String),
    /// `broker:random`
    RandomBroker,
    /// `leader:T-P`
    Leader(crate::types::TopicPartition),
    /// `follower:T-P`: one replica of T-P other than its leader when the fault fires, an in-sync one if
    /// there is one (drawn by the seed).
    Follower(crate::types::TopicPartition),
    /// `isr-but-one:T-P`: every member of T-P's ISR but its leader when the fault fires (Jepsen's and
    /// Kafka's system tests' way to shrink the ISR to the leader).
    IsrButOne(crate::types::TopicPartition),
    /// `active-controller`: the quorum leader when the fault fires.
    ActiveController,
    /// `coordinator:GROUP`: the leader of the group's `__consumer_offsets` partition when the fault fires.
    Coordinator(String),
    /// `client:NAME`: a workload client's node (a producer, or a consumer group member `GROUP-N`).
    Client(String),
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Node(n) => format!("node:{n}"),
            Target::RandomBroker => "broker:random".to_string(),
            Target::Leader(tp) => format!("leader:{tp}"),
            Target::Follower(tp) => format!("follower:{tp}"),
            Target::IsrButOne(tp) => format!("isr-but-one:{tp}"),
            Target::ActiveController => "active-controller".to_string(),
            Target::Coordinator(g) => format!("coordinator:{g}"),
            Target::Client(n) => format!("client:{n}"),
        }
    }
}

/// One validated fault of a fixed plan.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    pub at_s: TimeSpec,
    pub kind: FaultKind,
    pub target: Target,
    /// For faults that stop the node: when it restarts (never, if unset, until heal).
    pub restart_after_s: Option<TimeSpec>,
    /// For lasting faults: how long they last (undone at heal at the latest).
    pub duration_s: Option<TimeSpec>,
    pub params: FaultParams,
}

/// The parameters of a fault kind (zero where they do not apply).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultParams {
    pub rate: f64,
    pub latency_ms: (f64, f64),
    pub factor: u32,
    pub skew_ms: i64,
    pub mode: PartitionMode,
}

/// How a `partition` fault cuts the network (Jepsen's partition nemeses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartitionMode {
    /// The target is cut off from every other node, both ways.
    #[default]
    Isolate,
    /// The target receives nothing; what it sends still arrives.
    OneWay,
    /// The cluster's nodes split in two: a minority holding the target, and the majority.
    Halves,
    /// The target is cut off from every other broker and controller, while the workload's clients still
    /// reach it: a leader in this state is a zombie that may go on acknowledging acks=1 writes.
    FromCluster,
    /// Every node sees only its neighbours on a seeded ring (each a different majority, where the count allows).
    Ring,
}

impl PartitionMode {
    pub fn name(self) -> &'static str {
        match self {
            PartitionMode::Isolate => "isolate",
            PartitionMode::OneWay => "one-way",
            PartitionMode::Halves => "halves",
            PartitionMode::FromCluster => "from-cluster",
            PartitionMode::Ring => "ring",
        }
    }
}

type Validated = (Vec<FaultSpec>, BTreeMap<String, BTreeMap<String, String>>);

pub(super) fn validate(f: &ScenarioFile) -> Result<Validated, Invalid> {
    validate_cluster(&f.cluster)?;
    let topic_configs = validate_topics(f)?;
    validate_producers(f)?;
    validate_consumer_groups(f)?;
    if let Some(s) = &f.swarm {
        validate_swarm(s)?;
    }
    if let Some((k, _)) = f
        .bugs
        .iter()
        .find(|(k, _)| !crate::broker::Bugs::NAMES.contains(&k.get_ref().as_str()))
    {
        return invalid(
            k.span(),
            format!(
                "unknown bug switch `{}`; switches: {}",
                k.get_ref(),
                crate::broker::Bugs::NAMES.join(", ")
            ),
        );
    }
    validate_phases(&f.phases, &f.cluster)?;
    validate_network(&f.network)?;
    let faults = f
        .faults
        .iter()
        .map(|e| validate_fault(e, f))
        .collect::<Result<Vec<_>, _>>()?;
    validate_expect(&f.expect)?;
    Ok((faults, topic_configs))
}

fn validate_cluster(c: &Cluster) -> Result<(), Invalid> {
    let controllers = *c.controllers.get_ref();
    match controllers {
        0 | 1 | 3 | 5 => {}
        n => {
            return invalid(
                c.controllers.span(),
                format!("cluster.controllers = {n}: the quorum needs an odd number of voters (1, 3 or 5), or 0 for a static metadata image"),
            )
        }
    }
    let brokers = *c.brokers.get_ref();
    if brokers == 0 || brokers > 9 {
        return invalid(c.brokers.span(), format!("cluster.brokers = {brokers}: must be 1 to 9"));
    }
    if brokers > 1 && controllers == 0 {
        return invalid(
            c.brokers.span(),
            "cluster.brokers: more than one broker needs a controller quorum (cluster.controllers = 1, 3 or 5) to elect leaders",
        );
    }
    check_broker_config(&c.broker_config)?;
    if controllers == 0 {
        if let Some((k, _)) = c.controller_config.iter().next() {
            return invalid(k.span(), "cluster.controller_config: this cluster has no controllers");
        }
    }
    check_controller_config(c)?;
    Ok(())
}

/// The controllers' settings of a validated scenario: Kafka's defaults plus `cluster.controller_config`
/// (node ids and voters are the runner's).
pub fn controller_settings(c: &Cluster) -> (crate::controller::ControllerConfig, crate::raft::RaftConfig) {
    check_controller_config(c).unwrap_or_else(|_| {
        (
            crate::controller::ControllerConfig::new(0, "gregor"),
            crate::raft::RaftConfig::new(0, vec![0]),
        )
    })
}

/// The controllers' settings: `(ControllerConfig, RaftConfig)` built from Kafka's defaults and
/// `cluster.controller_config` (node ids and voters are the runner's). Errors name the key.
fn check_controller_config(
    c: &Cluster,
) -> Result<(crate::controller::ControllerConfig, crate::raft::RaftConfig), Invalid> {
    let mut controller = crate::controller::ControllerConfig::new(0, "gregor");
    let mut raft = crate::raft::RaftConfig::new(0, vec![0]);
    for (k, v) in &c.controller_config {
        let value = value_text(v.get_ref());
        let key = k.get_ref();
        let result = if key.starts_with("controller.quorum.") {
            raft.set(key, &value)
        } else {
            controller.set(key, &value)
        };
        if let Err(e) = result {
            let span = if e.starts_with("unknown") { k.span() } else { v.span() };
            return invalid(span, format!("cluster.controller_config: {e}"));
        }
    }
    Ok((controller, raft))
}

fn validate_topics(f: &ScenarioFile) -> Result<BTreeMap<String, BTreeMap<String, String>>, Invalid> {
    let mut out = BTreeMap::new();
    for t in &f.topics {
        if let Some(at) = &t.create_at_s {
            let at_s = *at.get_ref();
            if *f.cluster.controllers.get_ref() == 0 {
                return invalid(
                    at.span(),
                    "topics.create_at_s needs a controller quorum (cluster.controllers = 1, 3 or 5)",
                );
            }
            if !(at_s >= 0.0 && at_s < *f.phases.safety_s.get_ref()) {
                return invalid(
                    at.span(),
                    format!("topics.create_at_s = {at_s}: must fall inside the safety phase"),
                );
            }
        }
        let name = t.name.get_ref();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) || name.len() > 249
        {
            return invalid(
                t.name.span(),
                format!("topics.name `{name}`: Kafka topic names use [a-zA-Z0-9._-], 1 to 249 chars"),
            );
        }
        if out.contains_key(name) {
            return invalid(t.name.span(), format!("topics.name `{name}` is declared twice"));
        }
        let p = *t.partitions.get_ref();
        if p == 0 || p > 10_000 {
            return invalid(
                t.partitions.span(),
                format!("topics.partitions = {p}: must be 1 to 10000"),
            );
        }
        let rf = *t.replication_factor.get_ref();
        let brokers = *f.cluster.brokers.get_ref();
        if rf == 0 || rf > brokers {
            return invalid(
                t.replication_factor.span(),
                format!("topics.replication_factor = {rf} for `{name}`: must be 1 to the broker count ({brokers})"),
            );
        }
        out.insert(name.clone(), check_topic_config(&t.config)?);
    }
    Ok(out)
}

fn validate_producers(f: &ScenarioFile) -> Result<(), Invalid> {
    for p in &f.producers {
        if !f.topics.iter().any(|t| t.name.get_ref() == p.topic.get_ref()) {
            return invalid(
                p.topic.span(),
                format!("producers.topic `{}` is not declared in [[topics]]", p.topic.get_ref()),
            );
        }
        let rate = *p.records_per_s.get_ref();
        if !(rate > 0.0 && rate <= 1_000_000.0) {
            return invalid(
                p.records_per_s.span(),
                format!("producers.records_per_s = {rate}: must be in (0, 1000000]"),
            );
        }
        if *p.key_space.get_ref() == 0 {
            return invalid(p.key_space.span(), "producers.key_space must be at least 1");
        }
        let tombstone_rate = *p.tombstone_rate.get_ref();
        if !(0.0..1.0).contains(&tombstone_rate) {
            return invalid(
                p.tombstone_rate.span(),
                format!("producers.tombstone_rate = {tombstone_rate}: must be in [0, 1)"),
            );
        }
        let cfg = check_config(&p.config, PRODUCER_KEYS, "producers.config")?;
        let acks = cfg.get("acks").map(String::as_str).unwrap_or("all");
        if !matches!(acks, "0" | "1" | "all" | "-1") {
            return invalid(
                config_span(&p.config, "acks"),
                format!("producers.config.acks = {acks}: must be 0, 1 or all"),
            );
        }
        // The producer core's own checks: KIP-679 (enable.idempotence=true needs acks=all, retries > 0,
        // at most 5 in flight) and delivery.timeout.ms >= linger.ms + request.timeout.ms.
        if let Err(e) = crate::producer::ProducerConfig::from_map(&cfg) {
            let key = match &e {
                crate::producer::ProducerConfigError::Invalid { key, .. } => key.as_str(),
                crate::producer::ProducerConfigError::UnknownKey { key } => key.as_str(),
            };
            let span = config_span(&p.config, key);
            let span = if span.is_empty() {
                config_span(&p.config, "enable.idempotence")
            } else {
                span
            };
            return invalid(span, format!("producers.config: {e}"));
        }
    }
    Ok(())
}

fn validate_consumer_groups(f: &ScenarioFile) -> Result<(), Invalid> {
    let mut ids = std::collections::BTreeSet::new();
    for g in &f.consumer_groups {
        let id = g.group_id.get_ref();
        let well_formed = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !well_formed {
            return invalid(
                g.group_id.span(),
                format!("consumer_groups.group_id `{id}`: letters, digits, `-` and `_` only"),
            );
        }
        if !ids.insert(id.clone()) {
            return invalid(
                g.group_id.span(),
                format!("consumer_groups.group_id `{id}` appears twice"),
            );
        }
        let members = *g.members.get_ref();
        if !(1..=20).contains(&members) {
            return invalid(
                g.members.span(),
                format!("consumer_groups.members = {members}: from 1 to 20"),
            );
        }
        if g.topics.is_empty() {
            return invalid(g.group_id.span(), "consumer_groups.topics: at least one topic");
        }
        for t in &g.topics {
            if !f.topics.iter().any(|d| d.name.get_ref() == t.get_ref()) {
                return invalid(
                    t.span(),
                    format!("consumer_groups.topics `{}` is not declared in [[topics]]", t.get_ref()),
                );
            }
        }
        if *g.commit_interval_ms.get_ref() == 0 {
            return invalid(
                g.commit_interval_ms.span(),
                "consumer_groups.commit_interval_ms must be at least 1",
            );
        }
        let cfg = check_config(&g.config, CONSUMER_KEYS, "consumer_groups.config")?;
        if let Some(v) = cfg.get("auto.offset.reset") {
            if !matches!(v.as_str(), "earliest" | "latest" | "none") {
                return invalid(
                    config_span(&g.config, "auto.offset.reset"),
                    format!("consumer_groups.config.\"auto.offset.reset\" = {v}: earliest, latest or none"),
                );
            }
        }
        if let Err(e) = crate::consumer::ConsumerConfig::from_map(&cfg) {
            return invalid(g.group_id.span(), format!("consumer_groups.config: {e}"));
        }
    }
    Ok(())
}

/// The client node names of a group's members: `GROUP-1` .. `GROUP-N`.
pub fn consumer_names(g: &crate::scenario::schema::ConsumerGroup) -> Vec<String> {
    (1..=*g.members.get_ref())
        .map(|i| format!("{}-{i}", g.group_id.get_ref()))
        .collect()
}

/// A consumer group's config as validated strings (Kafka's names).
pub fn consumer_config(g: &crate::scenario::schema::ConsumerGroup) -> BTreeMap<String, String> {
    check_config(&g.config, CONSUMER_KEYS, "consumer_groups.config").unwrap_or_default()
}

fn config_span(map: &ConfigMap, key: &str) -> Range<usize> {
    map.iter()
        .find(|(k, _)| k.get_ref() == key)
        .map_or(0..0, |(_, v)| v.span())
}

fn validate_phases(p: &Phases, c: &Cluster) -> Result<(), Invalid> {
    for (name, v) in [
        ("safety_s", &p.safety_s),
        ("heal_s", &p.heal_s),
        ("liveness_deadline_s", &p.liveness_deadline_s),
    ] {
        let x = *v.get_ref();
        if !(x >= 0.0 && x <= 86_400.0) {
            return invalid(
                v.span(),
                format!("phases.{name} = {x}: must be 0 to 86400 simulated seconds"),
            );
        }
    }
    if *p.safety_s.get_ref() <= 0.0 {
        return invalid(p.safety_s.span(), "phases.safety_s must be positive");
    }
    // A restarted broker recovers its logs and serves again within a few simulated seconds; a shorter
    // deadline can only report a false liveness failure.
    if *p.liveness_deadline_s.get_ref() < 5.0 {
        return invalid(
            p.liveness_deadline_s.span(),
            "phases.liveness_deadline_s is shorter than a broker restart and log recovery need (at least 5 s)",
        );
    }
    // With a quorum, a partition whose leader died gets a new one only after the broker's session times out
    // and an election; a restarted broker is fenced until that same timeout (FIELD-NOTES).
    if *c.controllers.get_ref() > 0 {
        if let Ok((controller, raft)) = check_controller_config(c) {
            let need_s = (controller.broker_session_timeout_ms + 2 * raft.election_timeout_ms + raft.fetch_timeout_ms)
                as f64
                / 1000.0
                + 5.0;
            if *p.liveness_deadline_s.get_ref() < need_s {
                return invalid(
                    p.liveness_deadline_s.span(),
                    format!(
                        "phases.liveness_deadline_s = {}: a leader change needs broker.session.timeout.ms + an election + a restart, at least {need_s} s here",
                        p.liveness_deadline_s.get_ref()
                    ),
                );
            }
        }
    }
    Ok(())
}

fn validate_network(n: &Network) -> Result<(), Invalid> {
    let [lo, hi] = *n.latency_ms.get_ref();
    if !(lo >= 0.0 && lo <= hi && hi <= 10_000.0) {
        return invalid(
            n.latency_ms.span(),
            format!("network.latency_ms = [{lo}, {hi}]: need 0 <= low <= high <= 10000"),
        );
    }
    Ok(())
}

fn time_spec(v: &Spanned<TimeValue>, key: &str, max: f64) -> Result<TimeSpec, Invalid> {
    let spec = match *v.get_ref() {
        TimeValue::At(t) => TimeSpec::At(t),
        TimeValue::Range([lo, hi]) => TimeSpec::Range(lo, hi),
    };
    let (lo, hi) = match spec {
        TimeSpec::At(t) => (t, t),
        TimeSpec::Range(lo, hi) => (lo, hi),
    };
    if !(lo >= 0.0 && lo <= hi && hi <= max) {
        return invalid(
            v.span(),
            format!("faults.{key}: times must satisfy 0 <= low <= high <= {max}"),
        );
    }
    Ok(spec)
}

fn validate_fault(e: &FaultEntry, f: &ScenarioFile) -> Result<FaultSpec, Invalid> {
    let kind = FaultKind::parse(&e.kind)?;
    let safety = *f.phases.safety_s.get_ref();
    let at_s = time_spec(&e.at_s, "at_s", safety)?;
    let target = parse_target(&e.target, f)?;
    let name = kind.name();
    let restart_after_s = match (&e.restart_after_s, kind.stops_the_node()) {
        (Some(r), true) => Some(time_spec(r, "restart_after_s", 3600.0)?),
        (Some(r), false) => return invalid(r.span(), format!("faults.restart_after_s does not apply to `{name}`")),
        (None, _) => None,
    };
    let lasting = !kind.stops_the_node() && !kind.is_instant();
    let duration_s = match (&e.duration_s, !lasting) {
        (Some(d), false) => Some(time_spec(d, "duration_s", 3600.0)?),
        (Some(d), true) => return invalid(d.span(), format!("faults.duration_s does not apply to `{name}`")),
        (None, false) => return invalid(e.kind.span(), format!("faults: `{name}` lasts: it needs duration_s")),
        (None, true) => None,
    };
    let params = fault_params(e, kind)?;
    Ok(FaultSpec {
        at_s,
        kind,
        target,
        restart_after_s,
        duration_s,
        params,
    })
}

/// The parameters a kind needs, and no others.
fn fault_params(e: &FaultEntry, kind: FaultKind) -> Result<FaultParams, Invalid> {
    let name = kind.name();
    let mut p = FaultParams::default();
    match (&e.rate, kind) {
        (Some(r), FaultKind::PacketLoss | FaultKind::DiskEio | FaultKind::DropResponse | FaultKind::ConnReset) => {
            let rate = *r.get_ref();
            if !(rate > 0.0 && rate <= 1.0) {
                return invalid(r.span(), format!("faults.rate = {rate}: a share in (0, 1]"));
            }
            p.rate = rate;
        }
        (Some(r), _) => return invalid(r.span(), format!("faults.rate does not apply to `{name}`")),
        (None, FaultKind::PacketLoss | FaultKind::DiskEio | FaultKind::DropResponse | FaultKind::ConnReset) => {
            return invalid(e.kind.span(), format!("faults: `{name}` needs rate"))
        }
        (None, _) => {}
    }
    match (&e.latency_ms, kind) {
        (Some(l), FaultKind::Latency) => {
            let [lo, hi] = *l.get_ref();
            if !(lo >= 0.0 && lo <= hi && hi <= 60_000.0) {
                return invalid(
                    l.span(),
                    format!("faults.latency_ms = [{lo}, {hi}]: need 0 <= low <= high <= 60000"),
                );
            }
            p.latency_ms = (lo, hi);
        }
        (Some(l), _) => return invalid(l.span(), format!("faults.latency_ms does not apply to `{name}`")),
        (None, FaultKind::Latency) => return invalid(e.kind.span(), "faults: `latency` needs latency_ms"),
        (None, _) => {}
    }
    match (&e.factor, kind) {
        (Some(x), FaultKind::DiskSlow) => {
            if !(2..=10_000).contains(x.get_ref()) {
                return invalid(x.span(), "faults.factor: 2 to 10000 times slower");
            }
            p.factor = *x.get_ref();
        }
        (Some(x), _) => return invalid(x.span(), format!("faults.factor does not apply to `{name}`")),
        (None, FaultKind::DiskSlow) => return invalid(e.kind.span(), "faults: `disk_slow` needs factor"),
        (None, _) => {}
    }
    match (&e.skew_ms, kind) {
        (Some(x), FaultKind::ClockSkew) => {
            let skew = *x.get_ref();
            if skew == 0 || skew.abs() > 7 * 24 * 3_600_000 {
                return invalid(x.span(), "faults.skew_ms: nonzero, at most 7 days either way");
            }
            p.skew_ms = skew;
        }
        (Some(x), _) => return invalid(x.span(), format!("faults.skew_ms does not apply to `{name}`")),
        (None, FaultKind::ClockSkew) => return invalid(e.kind.span(), "faults: `clock_skew` needs skew_ms"),
        (None, _) => {}
    }
    match (&e.mode, kind) {
        (Some(m), FaultKind::Partition) => {
            p.mode = match m.get_ref().as_str() {
                "isolate" => PartitionMode::Isolate,
                "one-way" => PartitionMode::OneWay,
                "halves" => PartitionMode::Halves,
                "from-cluster" => PartitionMode::FromCluster,
                "ring" => PartitionMode::Ring,
                other => {
                    return invalid(
                        m.span(),
                        format!("faults.mode = {other:?}: one of isolate, one-way, halves, from-cluster, ring"),
                    )
                }
            }
        }
        (Some(m), _) => return invalid(m.span(), format!("faults.mode does not apply to `{name}`")),
        (None, _) => {}
    }
    Ok(p)
}

fn parse_target(t: &Spanned<String>, f: &ScenarioFile) -> Result<Target, Invalid> {
    let s = t.get_ref();
    let brokers = *f.cluster.brokers.get_ref();
    if s == "broker:random" {
        return Ok(Target::RandomBroker);
    }
    let controllers = *f.cluster.controllers.get_ref();
    if let Some(name) = s.strip_prefix("node:") {
        let numbered = |prefix: &str, count: u32| {
            name.strip_prefix(prefix)
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= 1 && n <= count)
        };
        if !numbered("broker-", brokers) && !numbered("controller-", controllers) {
            let controllers = match controllers {
                0 => "no controllers".to_string(),
                n => format!("controller-1..controller-{n}"),
            };
            return invalid(
                t.span(),
                format!("faults.target `{s}`: no such node (brokers are broker-1..broker-{brokers}; {controllers})"),
            );
        }
        return Ok(Target::Node(name.to_string()));
    }
    if s == "active-controller" {
        if controllers == 0 {
            return invalid(
                t.span(),
                "faults.target `active-controller`: this cluster has no controller quorum (cluster.controllers = 0)",
            );
        }
        return Ok(Target::ActiveController);
    }
    type Role = fn(crate::types::TopicPartition) -> Target;
    let roles: [(&str, Role); 3] = [
        ("leader:", Target::Leader),
        ("follower:", Target::Follower),
        ("isr-but-one:", Target::IsrButOne),
    ];
    for (role, make) in roles {
        let Some(tp) = s.strip_prefix(role) else {
            continue;
        };
        let parsed = crate::types::TopicPartition::parse(tp);
        let topic = parsed
            .as_ref()
            .and_then(|tp| f.topics.iter().find(|t| t.name.get_ref() == &tp.topic));
        let exists = parsed
            .as_ref()
            .zip(topic)
            .is_some_and(|(tp, t)| tp.partition >= 0 && (tp.partition as u32) < *t.partitions.get_ref());
        let (Some(tp), true) = (parsed, exists) else {
            return invalid(t.span(), format!("faults.target `{s}`: no such topic partition"));
        };
        let replicas = topic.map_or(1, |t| *t.replication_factor.get_ref());
        if role != "leader:" && replicas < 2 {
            return invalid(
                t.span(),
                format!(
                    "faults.target `{s}`: topic `{}` has replication factor 1, so its partitions have no followers",
                    tp.topic
                ),
            );
        }
        return Ok(make(tp));
    }
    if let Some(group) = s.strip_prefix("coordinator:") {
        if !f.consumer_groups.iter().any(|g| g.group_id.get_ref() == group) {
            return invalid(
                t.span(),
                format!("faults.target `{s}`: no [[consumer_groups]] entry has group_id `{group}`"),
            );
        }
        return Ok(Target::Coordinator(group.to_string()));
    }
    if let Some(name) = s.strip_prefix("client:") {
        let producers = f.producers.iter().enumerate().map(|(i, p)| {
            p.name
                .as_ref()
                .map_or_else(|| format!("client-{}", i + 1), |n| n.get_ref().clone())
        });
        let mut names: Vec<String> = producers.collect();
        names.extend(f.consumer_groups.iter().flat_map(consumer_names));
        if !names.iter().any(|n| n == name) {
            return invalid(
                t.span(),
                format!("faults.target `{s}`: no such client; clients: {}", names.join(", ")),
            );
        }
        return Ok(Target::Client(name.to_string()));
    }
    invalid(
        t.span(),
        format!("faults.target `{s}`: unknown target; targets: leader:T-P, follower:T-P, isr-but-one:T-P, active-controller, broker:random, coordinator:GROUP, client:NAME, node:NAME"),
    )
}

fn validate_expect(e: &Expect) -> Result<(), Invalid> {
    for a in &e.allow {
        if !crate::checker::CLASSES.contains(&a.get_ref().as_str()) {
            return invalid(
                a.span(),
                format!(
                    "expect.allow: unknown anomaly class `{}`; classes: {}",
                    a.get_ref(),
                    crate::checker::CLASSES.join(", ")
                ),
            );
        }
    }
    let marks = e.must_hit.iter().chain(e.sweep_must_hit.keys());
    for m in marks {
        if !crate::runner::MARKS.contains(&m.get_ref().as_str()) {
            return invalid(
                m.span(),
                format!(
                    "expect: unknown coverage mark `{}`; marks: {}",
                    m.get_ref(),
                    crate::runner::MARKS.join(", ")
                ),
            );
        }
    }
    for (k, v) in &e.sweep_must_hit {
        let share = *v.get_ref();
        if !(share > 0.0 && share <= 1.0) {
            return invalid(
                v.span(),
                format!("expect.sweep_must_hit.{}: a share in (0, 1]", k.get_ref()),
            );
        }
    }
    Ok(())
}

/// Checks broker config keys with the broker's own parser (one source of truth); returns them as strings.
fn check_broker_config(map: &ConfigMap) -> Result<BTreeMap<String, String>, Invalid> {
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let key = k.get_ref();
        if key == "node.id" {
            return invalid(
                k.span(),
                "cluster.broker_config: `node.id` is set per broker by the runner (broker-N has node.id N)",
            );
        }
        let probe = BTreeMap::from([
            ("node.id".to_string(), toml::Value::Integer(1)),
            (key.clone(), v.get_ref().clone()),
        ]);
        if let Err(e) = crate::broker::BrokerConfig::from_map(&probe) {
            let span = if matches!(e, crate::broker::ConfigError::UnknownKey { .. }) {
                k.span()
            } else {
                v.span()
            };
            return invalid(span, format!("cluster.broker_config: {e}"));
        }
        out.insert(key.clone(), value_text(v.get_ref()));
    }
    Ok(out)
}

/// Checks topic config keys with the broker's own parser; returns them as strings.
fn check_topic_config(map: &ConfigMap) -> Result<BTreeMap<String, String>, Invalid> {
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let text = value_text(v.get_ref());
        let mut probe = crate::log::LogConfig::default();
        if let Err(e) = crate::broker::apply_topic_config(&mut probe, k.get_ref(), &text) {
            let span = if e.starts_with("unknown") { k.span() } else { v.span() };
            return invalid(span, format!("topics.config: {e}"));
        }
        out.insert(k.get_ref().clone(), text);
    }
    Ok(out)
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A producer config key the scenario accepts, with the type of its value.
#[derive(Clone, Copy)]
enum KeyType {
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    Acks,
    /// Any string.
    Text,
}

type KeyTable = &'static [(&'static str, KeyType)];

/// Producer config keys honoured today (Kafka's names).
const PRODUCER_KEYS: KeyTable = &[
    ("acks", KeyType::Acks),
    ("linger.ms", KeyType::Int { min: 0, max: 3_600_000 }),
    ("batch.size", KeyType::Int { min: 0, max: 1 << 30 }),
    (
        "request.timeout.ms",
        KeyType::Int {
            min: 1,
            max: i32::MAX as i64,
        },
    ),
    ("enable.idempotence", KeyType::Bool),
    (
        "retries",
        KeyType::Int {
            min: 0,
            max: i32::MAX as i64,
        },
    ),
    (
        "max.in.flight.requests.per.connection",
        KeyType::Int { min: 1, max: 1000 },
    ),
    (
        "delivery.timeout.ms",
        KeyType::Int {
            min: 0,
            max: i32::MAX as i64,
        },
    ),
    ("retry.backoff.ms", KeyType::Int { min: 0, max: 3_600_000 }),
    ("max.block.ms", KeyType::Int { min: 0, max: 3_600_000 }),
];

/// Consumer config keys honoured today (Kafka's names).
const CONSUMER_KEYS: KeyTable = &[
    ("enable.auto.commit", KeyType::Bool),
    ("auto.commit.interval.ms", KeyType::Int { min: 1, max: 3_600_000 }),
    ("auto.offset.reset", KeyType::Text),
    ("partition.assignment.strategy", KeyType::Text),
    ("max.poll.records", KeyType::Int { min: 1, max: 1_000_000 }),
    (
        "max.poll.interval.ms",
        KeyType::Int {
            min: 1,
            max: i32::MAX as i64,
        },
    ),
    ("session.timeout.ms", KeyType::Int { min: 1, max: 3_600_000 }),
    ("heartbeat.interval.ms", KeyType::Int { min: 1, max: 3_600_000 }),
    ("retry.backoff.ms", KeyType::Int { min: 0, max: 3_600_000 }),
    (
        "request.timeout.ms",
        KeyType::Int {
            min: 1,
            max: i32::MAX as i64,
        },
    ),
    (
        "fetch.min.bytes",
        KeyType::Int {
            min: 0,
            max: i32::MAX as i64,
        },
    ),
    ("fetch.max.wait.ms", KeyType::Int { min: 0, max: 3_600_000 }),
    (
        "max.partition.fetch.bytes",
        KeyType::Int {
            min: 1,
            max: i32::MAX as i64,
        },
    ),
    ("check.crcs", KeyType::Bool),
];

/// Checks every key and value type; returns the map as strings.
fn check_config(map: &ConfigMap, table: KeyTable, section: &str) -> Result<BTreeMap<String, String>, Invalid> {
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let key = k.get_ref();
        let Some((_, ty)) = table.iter().find(|(name, _)| name == key) else {
            let known: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            return invalid(
                k.span(),
                format!(
                    "{section}: unknown or unsupported key `{key}`; supported: {}",
                    known.join(", ")
                ),
            );
        };
        let text = match (ty, v.get_ref()) {
            (KeyType::Int { min, max }, toml::Value::Integer(i)) if i >= min && i <= max => i.to_string(),
            (KeyType::Int { min, max }, _) => {
                return invalid(
                    v.span(),
                    format!("{section}.\"{key}\": expected an integer from {min} to {max}"),
                );
            }
            (KeyType::Bool, toml::Value::Boolean(b)) => b.to_string(),
            (KeyType::Bool, _) => return invalid(v.span(), format!("{section}.\"{key}\": expected true or false")),
            (KeyType::Acks, toml::Value::Integer(i)) if matches!(i, -1..=1) => i.to_string(),
            (KeyType::Acks, toml::Value::String(s)) => s.clone(),
            (KeyType::Acks, _) => return invalid(v.span(), format!("{section}.\"{key}\": expected 0, 1 or \"all\"")),
            (KeyType::Text, toml::Value::String(s)) => s.clone(),
            (KeyType::Text, _) => return invalid(v.span(), format!("{section}.\"{key}\": expected a string")),
        };
        out.insert(key.clone(), text);
    }
    Ok(out)
}

/// A producer's config as validated strings (Kafka's names).
pub fn producer_config(p: &Producer) -> BTreeMap<String, String> {
    check_config(&p.config, PRODUCER_KEYS, "producers.config").unwrap_or_default()
}

/// The cluster's broker config as validated strings (Kafka's names).
pub fn broker_config(c: &Cluster) -> BTreeMap<String, String> {
    check_broker_config(&c.broker_config).unwrap_or_default()
}

fn validate_swarm(s: &Swarm) -> Result<(), Invalid> {
    let range = |v: &Spanned<[f64; 2]>, key: &str, max: f64| -> Result<(), Invalid> {
        let [lo, hi] = *v.get_ref();
        if !(lo >= 0.0 && lo <= hi && hi <= max) {
            return invalid(
                v.span(),
                format!("swarm.{key} = [{lo}, {hi}]: need 0 <= low <= high <= {max}"),
            );
        }
        Ok(())
    };
    range(&s.faults_per_minute, "faults_per_minute", 600.0)?;
    range(&s.duration_s, "duration_s", 3600.0)?;
    range(&s.restart_after_s, "restart_after_s", 3600.0)?;
    range(&s.packet_loss, "packet_loss", 1.0)?;
    range(&s.rate, "rate", 1.0)?;
    range(&s.latency_ms, "latency_ms", 60_000.0)?;
    if s.duration_s.get_ref()[0] <= 0.0 {
        return invalid(
            s.duration_s.span(),
            "swarm.duration_s: lasting faults need a positive duration",
        );
    }
    for (key, v) in [("packet_loss", &s.packet_loss), ("rate", &s.rate)] {
        if v.get_ref()[0] <= 0.0 {
            return invalid(v.span(), format!("swarm.{key}: a share in (0, 1]"));
        }
    }
    let [flo, fhi] = *s.factor.get_ref();
    if !(2 <= flo && flo <= fhi && fhi <= 10_000) {
        return invalid(s.factor.span(), "swarm.factor: 2 <= low <= high <= 10000");
    }
    let [slo, shi] = *s.skew_ms.get_ref();
    if !(1 <= slo && slo <= shi && shi <= 7 * 24 * 3_600_000) {
        return invalid(
            s.skew_ms.span(),
            "swarm.skew_ms: 1 <= low <= high <= 7 days (the sign is drawn)",
        );
    }
    if s.kinds.is_empty() {
        return invalid(s.faults_per_minute.span(), "swarm.kinds: name at least one fault kind");
    }
    for k in &s.kinds {
        FaultKind::parse(k)?;
    }
    Ok(())
}

/// A swarm's kinds, parsed (validation already refused unknown ones).
pub fn swarm_kinds(s: &Swarm) -> Vec<FaultKind> {
    s.kinds.iter().filter_map(|k| FaultKind::parse(k).ok()).collect()
}
