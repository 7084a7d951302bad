//! L2: the broker: composes the cores for one broker. Pure and synchronous (no runtime, no clock, no
//! awaiting): the node shell feeds it parsed requests with `now_ms` and carries out the [`Reply`], awaiting
//! the simulated disk time (`disk.take_elapsed()`) after each call.

pub mod config;
mod delete_records;
mod epoch_end_offsets;
pub use self::delete_records::DELETE_RECORDS_MARK;
mod fetch;
mod group_apis;
mod groups;
mod handlers;
pub use self::groups::{
    COORDINATOR_LOADED_OFFSETS_MARK, DELETED_TOPIC_OFFSETS_REMOVED_MARK, STALE_COMMIT_REJECTED_MARK,
};
pub use self::handlers::apply_topic_config;
pub use crate::metadata;
mod produce;
mod producer_ids;
mod replica;
mod topic_changes;
pub use self::replica::{
    AlterPartitionAnswer, AlterPartitionItem, FetchPlan, FetchTarget, FOLLOWER_TRUNCATED_MARK,
    REPLICATION_OFFSET_CHECKPOINT,
};
pub use self::topic_changes::{create_partitions_refused, delete_topics_refused, TOPIC_LOG_DELETED_MARK};

use std::collections::BTreeMap;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use self::config::{BrokerConfig, Bugs, ConfigError};
pub use self::metadata::{BrokerInfo, MetadataImage, PartitionImage, TopicImage, NO_LEADER};
use crate::log::Disk;
use crate::protocol::api::{encode_response, ParsedRequest, Request};
use crate::protocol::errors::{code, EncodeError};
use crate::types::{BrokerId, TopicPartition};

pub use crate::log::{LogConfig, LogError, LogManager, RecoveryReport};

/// Identifies one client connection inside a node (the shell numbers them).
pub type ConnId = u64;

/// What the shell does with a request's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Send this response frame body (header + body, without the size prefix).
    Respond(Vec<u8>),
    /// Produce with acks=0: nothing is sent back.
    NoResponse,
    /// A Fetch waits for data (long poll): its response comes from [`Broker::poll_parked`] by `deadline_ms`;
    /// the connection stays muted until then.
    ParkFetch { deadline_ms: i64 },
    /// An acks=all Produce waits for the ISR (Kafka's `DelayedProduce`): its response comes from
    /// [`Broker::poll_parked`] by `deadline_ms` (its `timeout_ms`), exactly as a parked fetch's.
    ParkProduce { deadline_ms: i64 },
    /// A group request the coordinator answers later (JoinGroup until the join phase ends, SyncGroup until
    /// the leader's assignment is stored, OffsetCommit until its records are replicated): its response comes
    /// from [`Broker::poll_parked`], which the shell calls by [`Broker::next_parked_deadline`] and whenever
    /// it handled a request.
    ParkGroup,
    /// Close the connection (Kafka does so for a failed acks=0 produce); the reason is for the log.
    Close(String),
    /// The log dir failed (KIP-112): with a single log dir the broker shuts down.
    Fatal(String),
}

/// Why the broker could not start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BrokerError {
    #[error("log startup: {0}")]
    Log(#[from] LogError),
    #[error("topic {topic}: {reason}")]
    TopicConfig { topic: String, reason: String },
    #[error("creating the log of {tp}: {source}")]
    CreateLog { tp: TopicPartition, source: LogError },
    #[error("loading the group coordinator from __consumer_offsets: {0}")]
    Coordinator(String),
}

/// What stops a request midway: a storage failure (the broker goes down) or a response we could not encode.
#[derive(Debug)]
enum Failure {
    Storage(String),
    Encode(EncodeError),
}

impl From<EncodeError> for Failure {
    fn from(e: EncodeError) -> Self {
        Failure::Encode(e)
    }
}

/// One broker: its log manager and the metadata image it serves from.
pub struct Broker {
    config: BrokerConfig,
    image: MetadataImage,
    logs: LogManager,
    /// Draws topic ids and replica placement (seeded by the runner: deterministic).
    rng: ChaCha8Rng,
    parked: BTreeMap<ConnId, fetch::ParkedFetch>,
    /// Set once the log dir failed; every later call answers `Reply::Fatal`.
    offline: Option<String>,
    /// Producer id blocks for InitProducerId.
    producer_ids: producer_ids::ProducerIdManager,
    /// Coverage marks hit since the last [`Broker::take_marks`].
    marks: Vec<&'static str>,
    /// This broker's role per hosted partition (leader state or follower).
    replicas: BTreeMap<TopicPartition, replica::Role>,
    /// High watermarks read from `replication-offset-checkpoint` at startup.
    checkpointed_hw: BTreeMap<TopicPartition, i64>,
    /// acks=all produces waiting for the high watermark.
    acks: crate::replication::AcksPurgatory<ConnId, produce::ParkedProduce>,
    /// The group coordinator of the `__consumer_offsets` partitions this broker leads.
    groups: groups::Groups,
    /// What [`Broker::changed_replica_states`] last handed out per partition, and for which node and
    /// incarnation.
    reported: BTreeMap<TopicPartition, Reported>,
    reported_as: Option<(String, u32)>,
    /// Logs were deleted since `replication-offset-checkpoint` was last written.
    deleted_since_checkpoint: bool,
}

/// Whether `api_key` is one of the coordinator's APIs (the shell wakes its background task after them).
pub fn is_group_api(api_key: i16) -> bool {
    [
        ApiKey::FindCoordinator,
        ApiKey::JoinGroup,
        ApiKey::SyncGroup,
        ApiKey::Heartbeat,
        ApiKey::LeaveGroup,
        ApiKey::OffsetCommit,
    ]
    .iter()
    .any(|k| *k as i16 == api_key)
}

/// The mark of a retention pass that deleted segments or moved a log start offset.
pub const RETENTION_DELETED_MARK: &str = "retention-deleted-segments";

/// The mark of a log cleaner pass that swapped cleaned segments in.
pub const CLEANER_SWAPPED_MARK: &str = "cleaner-swapped-segments";

/// The mark of a cleaning that kept a tombstone and stamped its batch's delete horizon (KIP-534).
pub const TOMBSTONE_HORIZON_MARK: &str = "tombstone-delete-horizon-set";

/// The mark of a cleaning that removed a tombstone whose delete horizon had passed (`delete.retention.ms`).
pub const TOMBSTONE_EXPIRED_MARK: &str = "tombstone-expired";

/// The mark of a restart whose log recovery completed a cleaner swap left behind (`.swap` files).
pub const RECOVERY_COMPLETED_SWAP_MARK: &str = "recovery-completed-swap";

/// The mark of a duplicate batch answered with its original offset (and not appended again).
pub const DUPLICATE_BATCH_MARK: &str = "duplicate-batch-answered-with-original-offset";

impl Broker {
    /// Starts the broker: log recovery, then a log for every partition the image places on this broker.
    pub fn new(
        config: BrokerConfig,
        image: MetadataImage,
        disk: &mut dyn Disk,
        now_ms: i64,
        seed: u64,
    ) -> Result<(Self, Vec<RecoveryReport>), BrokerError> {
        let (logs, reports) = LogManager::startup(disk, log_config(&config), now_ms)?;
        let config_groups = config.group_config();
        let mut broker = Self {
            config,
            image,
            logs,
            rng: ChaCha8Rng::seed_from_u64(seed),
            parked: BTreeMap::new(),
            offline: None,
            producer_ids: producer_ids::ProducerIdManager::default(),
            marks: Vec::new(),
            replicas: BTreeMap::new(),
            checkpointed_hw: BTreeMap::new(),
            acks: Default::default(),
            groups: groups::Groups::new(config_groups),
            reported: BTreeMap::new(),
            reported_as: None,
            deleted_since_checkpoint: false,
        };
        broker.load_high_watermarks(disk)?;
        let mine: Vec<_> = broker
            .image
            .partitions_of(broker.config.node_id)
            .into_iter()
            .map(|(tp, id, _)| (tp, id))
            .collect();
        for (tp, topic_id) in mine {
            if broker.logs.get(&tp).is_none() {
                let cfg = broker
                    .topic_log_config(&tp.topic)
                    .map_err(|reason| BrokerError::TopicConfig {
                        topic: tp.topic.clone(),
                        reason,
                    })?;
                let created = broker.logs.create_log(disk, &tp, &topic_id.to_string(), cfg, now_ms);
                created.map_err(|source| BrokerError::CreateLog { tp: tp.clone(), source })?;
            }
        }
        broker.refresh_log_configs();
        if reports.iter().any(|r| r.swaps_completed > 0) {
            broker.marks.push(RECOVERY_COMPLETED_SWAP_MARK);
        }
        broker.sync_roles(disk, now_ms)?;
        if let Err(Failure::Storage(reason)) = broker.sync_coordinator(disk, now_ms) {
            return Err(BrokerError::Coordinator(reason));
        }
        Ok((broker, reports))
    }

    /// Serves from a newer metadata image (the broker follows the metadata log): creates the logs of
    /// partitions newly placed on this broker. `Err` is a storage failure (the broker is then offline) or a
    /// topic config the broker cannot apply.
    pub fn apply_image(&mut self, disk: &mut dyn Disk, image: MetadataImage, now_ms: i64) -> Result<(), String> {
        let deleted = topic_changes::deleted_partitions(&self.image, &image);
        self.image = image;
        if let Err(e) = self.delete_stray_logs(disk) {
            let reason = format!("deleting the logs of deleted topics: {e}");
            self.offline.get_or_insert_with(|| reason.clone());
            return Err(reason);
        }
        self.refresh_log_configs();
        let mine: Vec<_> = self
            .image
            .partitions_of(self.config.node_id)
            .into_iter()
            .filter(|(tp, _, _)| self.logs.get(tp).is_none())
            .map(|(tp, id, _)| (tp, id))
            .collect();
        for (tp, topic_id) in mine {
            let cfg = self
                .topic_log_config(&tp.topic)
                .map_err(|reason| format!("topic {}: {reason}", tp.topic))?;
            if let Err(e) = self.logs.create_log(disk, &tp, &topic_id.to_string(), cfg, now_ms) {
                let failure = partition_error(&e).err();
                let reason = format!("creating the log of {tp}: {e}");
                if failure.is_some() {
                    self.offline.get_or_insert_with(|| reason.clone());
                }
                return Err(reason);
            }
        }
        if let Err(e) = self
            .sync_roles(disk, now_ms)
            .and_then(|()| self.checkpoint_deleted_high_watermarks(disk))
        {
            let reason = format!("taking the roles of the new image: {e}");
            self.offline.get_or_insert_with(|| reason.clone());
            return Err(reason);
        }
        let coordinator = self
            .sync_coordinator(disk, now_ms)
            .and_then(|()| self.on_partitions_deleted(disk, &deleted, now_ms));
        if let Err(Failure::Storage(reason)) = coordinator {
            self.offline.get_or_insert_with(|| reason.clone());
            return Err(reason);
        }
        Ok(())
    }

    /// Gives every loaded log its topic's config from the image (a log loaded at startup has the broker's
    /// defaults until then: Kafka's `LogManager` loads each log with its topic's config). A topic config the
    /// broker cannot apply leaves that log's config as it was (it was validated at creation).
    fn refresh_log_configs(&mut self) {
        let tps: Vec<TopicPartition> = self.logs.partitions().cloned().collect();
        for tp in tps {
            if let (Ok(cfg), Some(log)) = (self.topic_log_config(&tp.topic), self.logs.get_mut(&tp)) {
                if *log.config() != cfg {
                    log.set_config(cfg);
                }
            }
        }
    }

    /// Kafka's log cleaner threads (woken every `log.cleaner.backoff.ms`): each hosted log with `compact`
    /// in its `cleanup.policy` is compacted below this replica's high watermark. Leaders and followers clean
    /// independently, as in Kafka.
    pub fn cleaner_pass(&mut self, disk: &mut dyn Disk, now_ms: i64) -> Result<(), String> {
        let hws: BTreeMap<TopicPartition, i64> = self
            .replicas
            .keys()
            .map(|tp| (tp.clone(), self.high_watermark(tp)))
            .collect();
        let r = self.logs.clean_logs(disk, &hws, now_ms);
        if let Ok(out) = &r {
            if out.values().any(|o| !o.swapped.is_empty()) {
                self.marks.push(CLEANER_SWAPPED_MARK);
            }
            if out.values().any(|o| o.delete_horizons_set > 0) {
                self.marks.push(TOMBSTONE_HORIZON_MARK);
            }
            if out.values().any(|o| o.tombstones_removed > 0) {
                self.marks.push(TOMBSTONE_EXPIRED_MARK);
            }
        }
        self.storage_result(r.map(|_| ()), "log cleaning")
    }

    /// The log config of `topic`: the broker's defaults overridden by the topic's configs in the image.
    fn topic_log_config(&self, topic: &str) -> Result<LogConfig, String> {
        let mut config = log_config(&self.config);
        if let Some(t) = self.image.topic(topic) {
            for (key, value) in &t.configs {
                handlers::apply_topic_config(&mut config, key, value)?;
            }
        }
        Ok(config)
    }

    pub fn node_id(&self) -> BrokerId {
        self.config.node_id
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    pub fn logs(&self) -> &LogManager {
        &self.logs
    }

    /// Stops serving: every later request is answered `Reply::Fatal` (a controlled shutdown calls this in the
    /// same critical section as its final flush, so nothing is appended after the clean-shutdown marker).
    pub fn stop_serving(&mut self, reason: &str) {
        self.offline.get_or_insert_with(|| reason.to_string());
    }

    /// The coverage marks hit since the last call (the shell forwards them to the state observer).
    pub fn take_marks(&mut self) -> Vec<&'static str> {
        std::mem::take(&mut self.marks)
    }

    /// Why the broker went offline, if its log dir failed.
    pub fn fatal(&self) -> Option<&str> {
        self.offline.as_deref()
    }

    /// Handles one request of connection `conn_id`.
    pub fn handle(&mut self, disk: &mut dyn Disk, conn_id: ConnId, req: ParsedRequest, now_ms: i64) -> Reply {
        if let Some(reason) = &self.offline {
            return Reply::Fatal(reason.clone());
        }
        let v = req.api_version();
        let corr = req.correlation_id();
        let key = req.api_key();
        let client_id = req.header.client_id.as_deref().unwrap_or("").to_string();
        let w = |key| groups::Waiter {
            conn_id,
            key,
            version: v,
            correlation_id: corr,
        };
        let outcome = match req.body {
            Request::ApiVersions(_) => handlers::api_versions(v, corr),
            Request::ApiVersionsUnsupported => crate::protocol::api::unsupported_api_versions_response(corr)
                .map(Reply::Respond)
                .map_err(Failure::from),
            Request::Metadata(r) => self.metadata(&r, v, corr),
            Request::CreateTopics(r) => self.create_topics(disk, &r, v, corr, now_ms),
            Request::Produce(r) => self.produce(disk, conn_id, &r, v, corr, now_ms),
            Request::Fetch(r) => self.fetch(disk, conn_id, r, v, corr, now_ms),
            Request::ListOffsets(r) => self.list_offsets(disk, &r, v, corr),
            Request::InitProducerId(r) => self.init_producer_id(&r, v, corr),
            Request::FindCoordinator(r) => self.find_coordinator(&r, v, corr),
            Request::JoinGroup(r) => self.join_group(disk, w(ApiKey::JoinGroup), client_id, r, now_ms),
            Request::SyncGroup(r) => self.sync_group(disk, w(ApiKey::SyncGroup), r, now_ms),
            Request::Heartbeat(r) => self.heartbeat(disk, w(ApiKey::Heartbeat), r, now_ms),
            Request::LeaveGroup(r) => self.leave_group(disk, w(ApiKey::LeaveGroup), r, now_ms),
            Request::OffsetCommit(r) => self.offset_commit(disk, w(ApiKey::OffsetCommit), r, now_ms),
            Request::OffsetFetch(r) => self.offset_fetch(&r, v, corr),
            Request::DescribeGroups(r) => self.describe_groups(&r, v, corr),
            Request::ListGroups(r) => self.list_groups(&r, v, corr),
            Request::DeleteRecords(r) => self.delete_records(disk, &r, v, corr),
            Request::OffsetForLeaderEpoch(r) => self.offset_for_leader_epoch(&r, v, corr),
            Request::DeleteTopics(r) => self.delete_topics(&r, v, corr),
            Request::CreatePartitions(r) => self.create_partitions(&r, v, corr),
            // The controller APIs arrive only on a controller listener (`parse_request_on`).
            Request::Vote(_)
            | Request::BeginQuorumEpoch(_)
            | Request::EndQuorumEpoch(_)
            | Request::BrokerRegistration(_)
            | Request::BrokerHeartbeat(_)
            | Request::AlterPartition(_)
            | Request::AllocateProducerIds(_) => Ok(Reply::Close(format!(
                "{} is not served by a broker",
                crate::protocol::errors::api_name(key)
            ))),
        };
        self.settle(outcome)
    }

    fn settle(&mut self, outcome: Result<Reply, Failure>) -> Reply {
        match outcome {
            Ok(reply) => reply,
            Err(Failure::Encode(e)) => Reply::Close(e.to_string()),
            Err(Failure::Storage(reason)) => {
                self.offline = Some(reason.clone());
                Reply::Fatal(reason)
            }
        }
    }

    /// Writes dirty logs to disk as `log.flush.*` asks (the shell calls it every
    /// `log.flush.scheduler.interval.ms`). `Err` is a storage failure: the broker is offline.
    pub fn flush_dirty(&mut self, disk: &mut dyn Disk, now_ms: i64) -> Result<(), String> {
        let r = self.logs.flush_dirty(disk, now_ms);
        self.storage_result(r, "flush")
    }

    /// Kafka's retention task (every `log.retention.check.interval.ms`): each hosted log deletes what its
    /// `cleanup.policy` allows below this replica's high watermark, due `.deleted` files are removed, and
    /// the log start offsets are checkpointed if any moved. Leaders and followers run it independently.
    pub fn retention_pass(&mut self, disk: &mut dyn Disk, now_ms: i64) -> Result<(), String> {
        let hws: BTreeMap<TopicPartition, i64> = self
            .replicas
            .keys()
            .map(|tp| (tp.clone(), self.high_watermark(tp)))
            .collect();
        let r = self.logs.delete_old_segments(disk, &hws, now_ms);
        if matches!(&r, Ok(out) if !out.is_empty()) {
            self.marks.push(RETENTION_DELETED_MARK);
        }
        self.storage_result(r.map(|_| ()), "retention")
    }

    /// Writes the recovery-point checkpoint (every `log.flush.offset.checkpoint.interval.ms`).
    pub fn checkpoint(&mut self, disk: &mut dyn Disk) -> Result<(), String> {
        let r = self
            .logs
            .checkpoint(disk)
            .and_then(|()| self.checkpoint_high_watermarks(disk));
        self.storage_result(r, "checkpoint")
    }

    /// A clean shutdown: flushes and checkpoints every log.
    pub fn shutdown(&mut self, disk: &mut dyn Disk) -> Result<(), String> {
        let r = self
            .checkpoint_high_watermarks(disk)
            .and_then(|()| self.logs.shutdown(disk));
        self.storage_result(r, "shutdown")
    }

    fn storage_result(&mut self, r: Result<(), LogError>, what: &str) -> Result<(), String> {
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                let reason = format!("log dir failed during {what}: {e}");
                self.offline = Some(reason.clone());
                Err(reason)
            }
        }
    }

    /// The partition if this broker leads it at `current_leader_epoch` (-1: the client does not know it,
    /// KIP-320), else the error code Kafka returns.
    fn led_partition(&self, tp: &TopicPartition, current_leader_epoch: i32) -> Result<&PartitionImage, i16> {
        let part = self.image.partition(tp).ok_or(code::UNKNOWN_TOPIC_OR_PARTITION)?;
        if part.leader != self.config.node_id {
            return Err(code::NOT_LEADER_OR_FOLLOWER);
        }
        if current_leader_epoch >= 0 && current_leader_epoch < part.leader_epoch {
            return Err(code::FENCED_LEADER_EPOCH);
        }
        if current_leader_epoch > part.leader_epoch {
            return Err(code::UNKNOWN_LEADER_EPOCH);
        }
        if self.logs.get(tp).is_none() {
            return Err(code::UNKNOWN_TOPIC_OR_PARTITION);
        }
        Ok(part)
    }

    /// The replicas whose state changed since the last call, in partition order. The state trace records
    /// changes only; this spares building unchanged states on every request.
    ///
    /// It runs after every request a broker serves: the logs, the roles and the last reports are all keyed
    /// by partition in one order, so it walks them side by side instead of searching each per log.
    pub fn changed_replica_states(&mut self, node: &str, incarnation: u32) -> Vec<crate::history::ReplicaState> {
        if self
            .reported_as
            .as_ref()
            .is_none_or(|(n, i)| n != node || *i != incarnation)
        {
            self.reported.clear();
            self.reported_as = Some((node.to_string(), incarnation));
        }
        let mut out = vec![];
        let mut first_reports = vec![];
        let mut roles = self.replicas.iter().peekable();
        let mut reported = self.reported.iter_mut().peekable();
        let mut topic: Option<(&str, Option<&crate::metadata::TopicImage>)> = None;
        for (tp, log) in self.logs.iter() {
            let image = match topic {
                Some((name, image)) if name == tp.topic => image,
                _ => {
                    let image = self.image.topics.get(&tp.topic);
                    topic = Some((&tp.topic, image));
                    image
                }
            };
            let Some(part) = image.and_then(|t| t.partitions.get(&tp.partition)) else {
                continue;
            };
            if !part.replicas.contains(&self.config.node_id) {
                continue;
            }
            let role = advance_to(&mut roles, tp);
            let last = advance_to(&mut reported, tp);
            let isr: &[BrokerId] = match role {
                Some(replica::Role::Leader(l)) => l.isr(),
                _ => &part.isr,
            };
            let now = ReplicaPosition {
                leader: part.leader,
                leader_epoch: part.leader_epoch,
                log_start_offset: log.log_start_offset(),
                log_end_offset: log.log_end_offset(),
                high_watermark: role.map_or(0, replica::Role::high_watermark),
            };
            match last {
                Some(r) if r.position == now && r.isr == isr => continue,
                Some(r) => {
                    // Reuses the ISR's allocation.
                    r.isr.clear();
                    r.isr.extend_from_slice(isr);
                    r.position = now;
                }
                None => first_reports.push((
                    tp.clone(),
                    Reported {
                        position: now,
                        isr: isr.to_vec(),
                    },
                )),
            }
            out.push(crate::history::ReplicaState {
                time_us: 0,
                node: node.to_string(),
                incarnation,
                topic: tp.topic.clone(),
                partition: tp.partition,
                leader: now.leader,
                leader_epoch: now.leader_epoch,
                isr: isr.to_vec(),
                log_start_offset: now.log_start_offset,
                log_end_offset: now.log_end_offset,
                high_watermark: now.high_watermark,
            });
        }
        self.reported.extend(first_reports);
        out
    }
}

/// What [`Broker::changed_replica_states`] last handed out for one partition (the node, incarnation and
/// partition are the map's).
#[derive(Debug)]
struct Reported {
    position: ReplicaPosition,
    isr: Vec<BrokerId>,
}

/// A replica's leader and log offsets, as the state trace reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReplicaPosition {
    leader: BrokerId,
    leader_epoch: i32,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
}

/// Moves a map's iterator, sorted by partition, up to `tp`, and takes its value if it has that key.
fn advance_to<'m, V>(
    entries: &mut std::iter::Peekable<impl Iterator<Item = (&'m TopicPartition, V)>>,
    tp: &TopicPartition,
) -> Option<V> {
    while entries.next_if(|(key, _)| *key < tp).is_some() {}
    entries.next_if(|(key, _)| *key == tp).map(|(_, value)| value)
}

/// The default log config from the broker's `log.*` settings (Kafka's `LogConfig` defaults).
pub fn log_config(cfg: &BrokerConfig) -> LogConfig {
    LogConfig {
        segment_bytes: cfg.log_segment_bytes,
        segment_ms: cfg.log_roll_ms,
        index_interval_bytes: cfg.log_index_interval_bytes,
        segment_index_bytes: cfg.log_index_size_max_bytes,
        flush_messages: cfg.log_flush_interval_messages,
        flush_ms: cfg.log_flush_interval_ms,
        max_message_bytes: cfg.message_max_bytes,
        retention_ms: cfg.log_retention_ms,
        retention_bytes: cfg.log_retention_bytes,
        cleanup_policy: cfg.log_cleanup_policy,
        file_delete_delay_ms: cfg.log_segment_delete_delay_ms,
        message_timestamp_type: cfg.log_message_timestamp_type,
        message_timestamp_before_max_ms: cfg.log_message_timestamp_before_max_ms,
        message_timestamp_after_max_ms: cfg.log_message_timestamp_after_max_ms,
        message_timestamp_difference_max_ms: cfg.log_message_timestamp_difference_max_ms,
        min_cleanable_dirty_ratio: cfg.log_cleaner_min_cleanable_ratio,
        min_compaction_lag_ms: cfg.log_cleaner_min_compaction_lag_ms,
        delete_retention_ms: cfg.log_cleaner_delete_retention_ms,
    }
}

/// Turns a log error into a partition error code, or a storage failure that stops the request.
fn partition_error(e: &LogError) -> Result<i16, Failure> {
    match e {
        LogError::Disk(d) if d.is_storage_failure() => Err(Failure::Storage(format!("log dir failed: {d}"))),
        LogError::Disk(_) => Ok(code::KAFKA_STORAGE_ERROR),
        LogError::RecordTooLarge { .. } => Ok(code::MESSAGE_TOO_LARGE),
        LogError::CorruptRecord { .. } => Ok(code::CORRUPT_MESSAGE),
        LogError::OffsetOutOfRange { .. } => Ok(code::OFFSET_OUT_OF_RANGE),
        LogError::InvalidRecords { .. } => Ok(code::INVALID_RECORD),
        LogError::InvalidTimestamp { .. } => Ok(code::INVALID_TIMESTAMP),
        LogError::UnknownPartition { .. } => Ok(code::UNKNOWN_TOPIC_OR_PARTITION),
        LogError::OutOfOrderSequence { .. } => Ok(code::OUT_OF_ORDER_SEQUENCE_NUMBER),
        LogError::InvalidProducerEpoch { .. } => Ok(code::INVALID_PRODUCER_EPOCH),
        LogError::UnexpectedAppendOffset { .. }
        | LogError::MalformedFile { .. }
        | LogError::InconsistentTopicId { .. } => Ok(code::KAFKA_STORAGE_ERROR),
    }
}

fn respond<R: Encodable>(key: ApiKey, version: i16, corr: i32, body: &R) -> Result<Reply, Failure> {
    Ok(Reply::Respond(encode_response(key, version, corr, body)?))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod topic_changes_tests;
#[cfg(test)]
mod producer_tests;
#[cfg(test)]
mod group_tests;
#[cfg(test)]
mod lifecycle_tests;
