//! ApiVersions, Metadata, CreateTopics and ListOffsets (Kafka's `KafkaApis` handlers of the same names).

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId as WireBrokerId, CreateTopicsRequest, CreateTopicsResponse, ListOffsetsRequest,
    ListOffsetsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rand::Rng;
use uuid::Uuid;

use super::{log_config, partition_error, respond, Broker, Failure, LogConfig, PartitionImage, Reply, TopicImage};
use crate::log::Disk;
use crate::protocol::api::api_versions_response;
use crate::protocol::errors::code;
use crate::types::TopicPartition;

/// `ListOffsets` timestamps (`ListOffsetsRequest.EARLIEST_TIMESTAMP` / `LATEST_TIMESTAMP`).
const EARLIEST_TIMESTAMP: i64 = -2;
const LATEST_TIMESTAMP: i64 = -1;
/// Kafka's `UNKNOWN_TOPIC_ID` (KIP-516).
const UNKNOWN_TOPIC_ID: i16 = 100;
/// Kafka's `LEADER_NOT_AVAILABLE`.
const LEADER_NOT_AVAILABLE: i16 = 5;

pub(super) fn api_versions(version: i16, corr: i32) -> Result<Reply, Failure> {
    respond(ApiKey::ApiVersions, version, corr, &api_versions_response(code::NONE))
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

fn wire_ids(ids: &[i32]) -> Vec<WireBrokerId> {
    ids.iter().map(|id| WireBrokerId(*id)).collect()
}

/// Kafka's `Topic.validate`: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

impl Broker {
    pub(super) fn metadata(&self, req: &MetadataRequest, version: i16, corr: i32) -> Result<Reply, Failure> {
        let brokers = self
            .image
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| {
                MetadataResponseBroker::default()
                    .with_node_id(WireBrokerId(b.id))
                    .with_host(str_bytes(&b.host))
                    .with_port(i32::from(b.port))
                    .with_rack(b.rack.as_deref().map(str_bytes))
            })
            .collect();
        let topics = match &req.topics {
            None => self
                .image
                .topics
                .iter()
                .map(|(name, t)| self.metadata_topic(name, t))
                .collect(),
            Some(wanted) => wanted
                .iter()
                .map(|t| self.metadata_wanted(t.name.as_ref().map(|n| &*n.0), t.topic_id))
                .collect(),
        };
        let resp = MetadataResponse::default()
            .with_brokers(brokers)
            .with_cluster_id(Some(str_bytes(&self.image.cluster_id)))
            .with_controller_id(WireBrokerId(self.image.controller_id))
            .with_topics(topics);
        respond(ApiKey::Metadata, version, corr, &resp)
    }

    fn metadata_wanted(&self, name: Option<&str>, id: Uuid) -> MetadataResponseTopic {
        let found = match name {
            Some(n) => self.image.topic(n).map(|t| (n.to_string(), t)),
            None => self.image.topic_by_id(id).map(|(n, t)| (n.clone(), t)),
        };
        match (found, name) {
            (Some((n, t)), _) => self.metadata_topic(&n, t),
            (None, Some(n)) => MetadataResponseTopic::default()
                .with_name(Some(topic_name(n)))
                .with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION),
            (None, None) => MetadataResponseTopic::default()
                .with_topic_id(id)
                .with_error_code(UNKNOWN_TOPIC_ID),
        }
    }

    fn metadata_topic(&self, name: &str, topic: &TopicImage) -> MetadataResponseTopic {
        let partitions = topic
            .partitions
            .iter()
            .map(|(p, part)| {
                let error = if part.leader < 0 {
                    LEADER_NOT_AVAILABLE
                } else {
                    code::NONE
                };
                MetadataResponsePartition::default()
                    .with_error_code(error)
                    .with_partition_index(*p)
                    .with_leader_id(WireBrokerId(part.leader))
                    .with_leader_epoch(part.leader_epoch)
                    .with_replica_nodes(wire_ids(&part.replicas))
                    .with_isr_nodes(wire_ids(&part.isr))
            })
            .collect();
        MetadataResponseTopic::default()
            .with_name(Some(topic_name(name)))
            .with_topic_id(topic.topic_id)
            .with_partitions(partitions)
    }

    pub(super) fn create_topics(
        &mut self,
        disk: &mut dyn Disk,
        req: &CreateTopicsRequest,
        version: i16,
        corr: i32,
        now_ms: i64,
    ) -> Result<Reply, Failure> {
        let mut results = Vec::new();
        for t in &req.topics {
            let name = t.name.0.to_string();
            let mut result = CreatableTopicResult::default().with_name(t.name.clone());
            match self.create_topic(disk, t, req.validate_only, now_ms)? {
                Ok((id, partitions, rf)) => {
                    result = result
                        .with_topic_id(id)
                        .with_num_partitions(partitions)
                        .with_replication_factor(rf);
                    result = result.with_configs(Some(Vec::new()));
                }
                Err((error, message)) => {
                    result = result
                        .with_error_code(error)
                        .with_error_message(Some(str_bytes(&format!("{name}: {message}"))))
                        .with_num_partitions(-1)
                        .with_replication_factor(-1);
                }
            }
            results.push(result);
        }
        respond(
            ApiKey::CreateTopics,
            version,
            corr,
            &CreateTopicsResponse::default().with_topics(results),
        )
    }

    /// Creates one topic: `Ok(Ok((id, partitions, rf)))`, a per-topic error, or a storage failure.
    #[allow(clippy::type_complexity)]
    pub(super) fn create_topic(
        &mut self,
        disk: &mut dyn Disk,
        t: &kafka_protocol::messages::create_topics_request::CreatableTopic,
        validate_only: bool,
        now_ms: i64,
    ) -> Result<Result<(Uuid, i32, i16), (i16, String)>, Failure> {
        let name = t.name.0.to_string();
        let plan = match self.plan_topic(&name, t) {
            Ok(plan) => plan,
            Err(e) => return Ok(Err(e)),
        };
        let (partitions, rf, config) = plan;
        if validate_only {
            return Ok(Ok((Uuid::nil(), partitions, rf)));
        }
        let topic_id = uuid::Builder::from_random_bytes(self.rng.random()).into_uuid();
        let live = self.image.live_brokers();
        let start = self.rng.random_range(0..live.len());
        let mut image = TopicImage {
            topic_id,
            partitions: BTreeMap::new(),
            configs: t
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_deref().unwrap_or("").to_string()))
                .collect(),
        };
        for p in 0..partitions {
            let replica = live[(start + p as usize) % live.len()];
            image.partitions.insert(p, PartitionImage::sole_replica(replica));
            if replica == self.config.node_id {
                let tp = TopicPartition::new(name.clone(), p);
                if let Err(e) = self
                    .logs
                    .create_log(disk, &tp, &topic_id.to_string(), config.clone(), now_ms)
                {
                    let error = partition_error(&e)?;
                    return Ok(Err((error, format!("creating the log of {tp}: {e}"))));
                }
            }
        }
        self.image.topics.insert(name, image);
        if let Err(e) = self.sync_roles(disk, now_ms) {
            return Err(Failure::Storage(format!("taking the roles of the new topic: {e}")));
        }
        self.sync_coordinator(disk, now_ms)?;
        Ok(Ok((topic_id, partitions, rf)))
    }

    /// Checks a CreateTopics entry (Kafka's `ControllerApis`/`ReplicationControlManager` checks) and returns
    /// (partitions, replication factor, log config).
    fn plan_topic(
        &self,
        name: &str,
        t: &kafka_protocol::messages::create_topics_request::CreatableTopic,
    ) -> Result<(i32, i16, LogConfig), (i16, String)> {
        if !valid_topic_name(name) {
            return Err((code::INVALID_TOPIC_EXCEPTION, "illegal topic name".into()));
        }
        if self.image.topic(name).is_some() {
            return Err((code::TOPIC_ALREADY_EXISTS, "topic already exists".into()));
        }
        if !t.assignments.is_empty() {
            return Err((
                code::INVALID_REPLICA_ASSIGNMENT,
                "manual replica assignment is not supported yet".into(),
            ));
        }
        let partitions = if t.num_partitions == -1 {
            self.config.num_partitions
        } else {
            t.num_partitions
        };
        if partitions < 1 {
            return Err((
                code::INVALID_PARTITIONS,
                format!("num_partitions {partitions} must be at least 1"),
            ));
        }
        let rf = if t.replication_factor == -1 {
            self.config.default_replication_factor
        } else {
            t.replication_factor
        };
        let live = self.image.live_brokers().len();
        if rf < 1 || rf as usize > live {
            return Err((
                code::INVALID_REPLICATION_FACTOR,
                format!("replication factor {rf} with {live} live brokers"),
            ));
        }
        if rf > 1 {
            return Err((
                code::INVALID_REPLICATION_FACTOR,
                format!("replication factor {rf}: replication does not exist yet"),
            ));
        }
        let mut config = log_config(&self.config);
        for c in &t.configs {
            let value = c.value.as_deref().unwrap_or("");
            apply_topic_config(&mut config, &c.name, value).map_err(|m| (code::INVALID_CONFIG, m))?;
        }
        Ok((partitions, rf, config))
    }

    pub(super) fn list_offsets(
        &mut self,
        disk: &mut dyn Disk,
        req: &ListOffsetsRequest,
        version: i16,
        corr: i32,
    ) -> Result<Reply, Failure> {
        let mut topics = Vec::new();
        for t in &req.topics {
            let mut partitions = Vec::new();
            for p in &t.partitions {
                let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                let mut r = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                r = match self.list_offset(disk, &tp, p.current_leader_epoch, p.timestamp)? {
                    Ok((offset, timestamp, epoch)) => {
                        r.with_offset(offset).with_leader_epoch(epoch).with_timestamp(timestamp)
                    }
                    Err(error) => r
                        .with_error_code(error)
                        .with_offset(-1)
                        .with_timestamp(-1)
                        .with_leader_epoch(-1),
                };
                partitions.push(r);
            }
            topics.push(
                ListOffsetsTopicResponse::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions),
            );
        }
        respond(
            ApiKey::ListOffsets,
            version,
            corr,
            &ListOffsetsResponse::default().with_topics(topics),
        )
    }

    /// (offset, timestamp, leader epoch): earliest = the log start offset, latest = the high watermark; a
    /// timestamp ≥ 0 or -3 (KIP-734's max timestamp) looks the time index up (Kafka's
    /// `fetchOffsetForTimestamp`): the first record with a timestamp at or after it, only if below the high
    /// watermark, else offset and timestamp -1 with no error. Other negative timestamps are INVALID_REQUEST.
    /// The outer `Err` is a storage failure.
    #[allow(clippy::type_complexity)]
    fn list_offset(
        &mut self,
        disk: &mut dyn Disk,
        tp: &TopicPartition,
        current_leader_epoch: i32,
        timestamp: i64,
    ) -> Result<Result<(i64, i64, i32), i16>, Failure> {
        let epoch = match self.led_partition(tp, current_leader_epoch) {
            Ok(part) => part.leader_epoch,
            Err(e) => return Ok(Err(e)),
        };
        let hw = self.high_watermark(tp);
        let Some(log) = self.logs.get_mut(tp) else {
            return Ok(Err(code::UNKNOWN_TOPIC_OR_PARTITION));
        };
        match timestamp {
            EARLIEST_TIMESTAMP => Ok(Ok((log.log_start_offset(), -1, epoch))),
            LATEST_TIMESTAMP => Ok(Ok((hw, -1, epoch))),
            t if t >= 0 || t == crate::log::timestamps::MAX_TIMESTAMP => match log.fetch_offset_by_timestamp(disk, t) {
                Ok(Some(found)) if found.offset < hw => {
                    Ok(Ok((found.offset, found.timestamp, found.leader_epoch.unwrap_or(-1))))
                }
                Ok(_) => Ok(Ok((-1, -1, -1))),
                Err(e) => Ok(Err(partition_error(&e)?)),
            },
            _ => Ok(Err(code::INVALID_REQUEST)),
        }
    }
}

/// Applies one topic-level config (Kafka's `TopicConfig` keys) to a log config. `min.insync.replicas` is
/// a replication setting: validated here, kept in the image, used by the produce path once replication exists.
pub fn apply_topic_config(config: &mut LogConfig, key: &str, value: &str) -> Result<(), String> {
    let signed = |n: u64| n.min(i64::MAX as u64) as i64;
    let number = || {
        value
            .parse::<u64>()
            .map_err(|_| format!("{key}: `{value}` is not a non-negative integer"))
    };
    let at_least_minus_one = || match value.parse::<i64>() {
        Ok(n) if n >= -1 => Ok(n),
        _ => Err(format!("{key}: `{value}` is not an integer of at least -1")),
    };
    match key {
        "segment.bytes" => config.segment_bytes = number()?,
        "segment.ms" => config.segment_ms = signed(number()?),
        "segment.index.bytes" => config.segment_index_bytes = number()?,
        "index.interval.bytes" => config.index_interval_bytes = number()?,
        "flush.messages" => config.flush_messages = number()?,
        "flush.ms" => config.flush_ms = signed(number()?),
        "max.message.bytes" => config.max_message_bytes = number()?,
        "retention.ms" => config.retention_ms = at_least_minus_one()?,
        "retention.bytes" => config.retention_bytes = at_least_minus_one()?,
        "file.delete.delay.ms" => config.file_delete_delay_ms = signed(number()?),
        "cleanup.policy" => config.cleanup_policy = crate::log::CleanupPolicy::parse(value)?,
        "min.cleanable.dirty.ratio" => {
            config.min_cleanable_dirty_ratio = crate::log::config::DirtyRatio::parse(key, value)?
        }
        "min.compaction.lag.ms" => config.min_compaction_lag_ms = signed(number()?),
        "delete.retention.ms" => config.delete_retention_ms = signed(number()?),
        "message.timestamp.type" => config.message_timestamp_type = crate::log::config::parse_timestamp_type(value)?,
        // KIP-937 (and the deprecated difference bound): Kafka's validator wants at least 0.
        "message.timestamp.before.max.ms" => config.message_timestamp_before_max_ms = signed(number()?),
        "message.timestamp.after.max.ms" => config.message_timestamp_after_max_ms = signed(number()?),
        "message.timestamp.difference.max.ms" => config.message_timestamp_difference_max_ms = signed(number()?),
        "min.insync.replicas" => {
            number().and_then(|n| {
                if n >= 1 {
                    Ok(n)
                } else {
                    Err(format!("{key} must be at least 1"))
                }
            })?;
        }
        _ => return Err(format!("unknown or unsupported topic config `{key}`")),
    }
    Ok(())
}
