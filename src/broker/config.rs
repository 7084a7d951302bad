//! The broker's configuration, by Kafka's keys (`KafkaConfig`, `ServerLogConfigs`).

use std::collections::BTreeMap;

use crate::types::BrokerId;

/// One broker's settings. Defaults are Kafka's.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    /// `node.id` (required)
    pub node_id: BrokerId,
    /// `socket.request.max.bytes`: the largest request frame accepted (100 MiB).
    pub socket_request_max_bytes: usize,
    /// `log.flush.offset.checkpoint.interval.ms` (60000): how often recovery points are checkpointed.
    pub log_flush_offset_checkpoint_interval_ms: i64,
    /// `log.flush.scheduler.interval.ms` (Long.MAX_VALUE: Kafka relies on replication, not fsync).
    pub log_flush_scheduler_interval_ms: i64,
    /// `log.segment.bytes` (1 GiB)
    pub log_segment_bytes: u64,
    /// `log.roll.ms` (`log.roll.hours` 168): topic-level `segment.ms`.
    pub log_roll_ms: i64,
    /// `log.index.interval.bytes` (4096): topic-level `index.interval.bytes`.
    pub log_index_interval_bytes: u64,
    /// `log.index.size.max.bytes` (10 MiB, preallocated): topic-level `segment.index.bytes`.
    pub log_index_size_max_bytes: u64,
    /// `log.flush.interval.messages` (Long.MAX_VALUE): topic-level `flush.messages`.
    pub log_flush_interval_messages: u64,
    /// `log.flush.interval.ms` (unset: never): topic-level `flush.ms`.
    pub log_flush_interval_ms: i64,
    /// `message.max.bytes` (1048588): the largest record batch; topic-level `max.message.bytes`.
    pub message_max_bytes: u64,
    /// `num.partitions` (1): CreateTopics with `num_partitions = -1` uses it.
    pub num_partitions: i32,
    /// `default.replication.factor` (1): CreateTopics with `replication_factor = -1` uses it.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`: always false here (Metadata never creates topics).
    pub auto_create_topics_enable: bool,
    /// `replica.lag.time.max.ms` (30000): a follower not caught up for this long leaves the ISR.
    pub replica_lag_time_max_ms: i64,
    /// `replica.fetch.wait.max.ms` (500): a follower's fetch long-polls at most this long.
    pub replica_fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes` (1).
    pub replica_fetch_min_bytes: i32,
    /// `replica.fetch.max.bytes` (1 MiB), per partition.
    pub replica_fetch_max_bytes: i32,
    /// `min.insync.replicas` (1): topic-level `min.insync.replicas` overrides it.
    pub min_insync_replicas: i32,
    /// `offsets.topic.num.partitions` (50): partitions of `__consumer_offsets`, created on first use.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor` (3): creating `__consumer_offsets` fails while fewer brokers are up.
    pub offsets_topic_replication_factor: i16,
    /// `offsets.commit.timeout.ms` (5000): a coordinator write waits this long for the ISR (acks=all,
    /// Kafka's fixed `offsets.commit.required.acks` -1), then fails with REQUEST_TIMED_OUT.
    pub offsets_commit_timeout_ms: i64,
    /// `group.initial.rebalance.delay.ms` (3000): an empty group's first rebalance waits for more members.
    pub group_initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms` (6000).
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (1800000).
    pub group_max_session_timeout_ms: i32,
    /// `log.retention.ms` (or `log.retention.minutes`/`hours`, 168 h; -1: forever): topic-level `retention.ms`.
    pub log_retention_ms: i64,
    /// `log.retention.bytes` (-1: unlimited): topic-level `retention.bytes`.
    pub log_retention_bytes: i64,
    /// `log.retention.check.interval.ms` (300000): how often retention runs.
    pub log_retention_check_interval_ms: i64,
    /// `log.cleanup.policy` (`delete`): topic-level `cleanup.policy`.
    pub log_cleanup_policy: crate::log::CleanupPolicy,
    /// `log.segment.delete.delay.ms` (60000): topic-level `file.delete.delay.ms`.
    pub log_segment_delete_delay_ms: i64,
    /// `log.message.timestamp.type` (CreateTime): topic-level `message.timestamp.type`.
    pub log_message_timestamp_type: crate::protocol::batch::TimestampType,
    /// `log.message.timestamp.before.max.ms` (KIP-937, Long.MAX_VALUE): topic-level
    /// `message.timestamp.before.max.ms`; CreateTime records older than the leader's clock by more are
    /// refused with INVALID_TIMESTAMP.
    pub log_message_timestamp_before_max_ms: i64,
    /// `log.message.timestamp.after.max.ms` (KIP-937, Long.MAX_VALUE): the bound for future timestamps.
    pub log_message_timestamp_after_max_ms: i64,
    /// `log.message.timestamp.difference.max.ms` (deprecated by KIP-937, Long.MAX_VALUE): both bounds where
    /// they are not set.
    pub log_message_timestamp_difference_max_ms: i64,
    /// `log.cleaner.min.cleanable.ratio` (0.5): topic-level `min.cleanable.dirty.ratio`.
    pub log_cleaner_min_cleanable_ratio: crate::log::config::DirtyRatio,
    /// `log.cleaner.min.compaction.lag.ms` (0): topic-level `min.compaction.lag.ms`.
    pub log_cleaner_min_compaction_lag_ms: i64,
    /// `log.cleaner.delete.retention.ms` (86400000): topic-level `delete.retention.ms`.
    pub log_cleaner_delete_retention_ms: i64,
    /// `log.cleaner.backoff.ms` (15000): how often the log cleaner looks for logs to compact.
    pub log_cleaner_backoff_ms: i64,
    /// Known Kafka defects brought back on purpose (a scenario's `[bugs]`), to show the checkers catch them.
    pub bugs: Bugs,
}

/// Switches that bring back known Kafka defects, each named after its Jira issue. All off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// KAFKA-9491: a follower that truncates its whole log to start at the leader's log start offset keeps
    /// its old high watermark, below the new log start, until its next fetch.
    pub kafka_9491: bool,
}

impl Bugs {
    /// Every switch by its `[bugs]` key.
    pub const NAMES: &'static [&'static str] = &["KAFKA-9491"];

    /// Turns on the switch named `name`; false if there is none.
    pub fn set(&mut self, name: &str) -> bool {
        match name {
            "KAFKA-9491" => self.kafka_9491 = true,
            _ => return false,
        }
        true
    }
}

impl BrokerConfig {
    pub fn new(node_id: BrokerId) -> Self {
        Self {
            node_id,
            socket_request_max_bytes: crate::protocol::frame::SOCKET_REQUEST_MAX_BYTES,
            log_flush_offset_checkpoint_interval_ms: 60_000,
            log_flush_scheduler_interval_ms: i64::MAX,
            log_segment_bytes: 1 << 30,
            log_roll_ms: 604_800_000,
            log_index_interval_bytes: 4096,
            log_index_size_max_bytes: 10 << 20,
            log_flush_interval_messages: i64::MAX as u64,
            log_flush_interval_ms: i64::MAX,
            message_max_bytes: 1_048_588,
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: false,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_min_bytes: 1,
            replica_fetch_max_bytes: 1 << 20,
            min_insync_replicas: 1,
            offsets_topic_num_partitions: crate::group::OFFSETS_TOPIC_NUM_PARTITIONS_DEFAULT,
            offsets_topic_replication_factor: crate::group::OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT,
            offsets_commit_timeout_ms: 5_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            log_retention_ms: 168 * 3_600_000,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 300_000,
            log_cleanup_policy: crate::log::CleanupPolicy::DELETE,
            log_segment_delete_delay_ms: 60_000,
            log_message_timestamp_type: crate::protocol::batch::TimestampType::CreateTime,
            log_message_timestamp_before_max_ms: i64::MAX,
            log_message_timestamp_after_max_ms: i64::MAX,
            log_message_timestamp_difference_max_ms: i64::MAX,
            log_cleaner_min_cleanable_ratio: crate::log::config::DirtyRatio::new(0.5),
            log_cleaner_min_compaction_lag_ms: 0,
            log_cleaner_delete_retention_ms: 86_400_000,
            log_cleaner_backoff_ms: 15_000,
            bugs: Bugs::default(),
        }
    }

    /// The group coordinator's settings (`group::GroupConfig`) from this broker's keys.
    pub fn group_config(&self) -> crate::group::GroupConfig {
        crate::group::GroupConfig {
            offsets_topic_num_partitions: self.offsets_topic_num_partitions,
            group_min_session_timeout_ms: self.group_min_session_timeout_ms,
            group_max_session_timeout_ms: self.group_max_session_timeout_ms,
            group_initial_rebalance_delay_ms: self.group_initial_rebalance_delay_ms,
            ..crate::group::GroupConfig::default()
        }
    }

    /// Builds a config from Kafka's keys; values may be TOML integers/booleans or strings holding them.
    /// Unknown keys, values of the wrong type and a missing `node.id` are errors naming the key.
    pub fn from_map(map: &BTreeMap<String, toml::Value>) -> Result<Self, ConfigError> {
        let node_id = match map.get("node.id") {
            Some(v) => int(v, "node.id")? as BrokerId,
            None => return Err(ConfigError::Missing { key: "node.id".into() }),
        };
        let mut cfg = Self::new(node_id);
        for (key, value) in map {
            cfg.set(key, value)?;
        }
        if cfg.group_min_session_timeout_ms > cfg.group_max_session_timeout_ms {
            return Err(ConfigError::Invalid {
                key: "group.min.session.timeout.ms".into(),
                reason: format!(
                    "{} is above group.max.session.timeout.ms {}",
                    cfg.group_min_session_timeout_ms, cfg.group_max_session_timeout_ms
                ),
            });
        }
        Ok(cfg)
    }

    fn set(&mut self, key: &str, v: &toml::Value) -> Result<(), ConfigError> {
        match key {
            "node.id" => self.node_id = in_range(int(v, key)?, 0, i32::MAX as i64, key)? as i32,
            "socket.request.max.bytes" => {
                self.socket_request_max_bytes = in_range(int(v, key)?, 1, i32::MAX as i64, key)? as usize
            }
            "log.flush.offset.checkpoint.interval.ms" => {
                self.log_flush_offset_checkpoint_interval_ms = in_range(int(v, key)?, 1, i64::MAX, key)?
            }
            "log.flush.scheduler.interval.ms" => {
                self.log_flush_scheduler_interval_ms = in_range(int(v, key)?, 1, i64::MAX, key)?
            }
            "log.segment.bytes" => self.log_segment_bytes = in_range(int(v, key)?, 14, i32::MAX as i64, key)? as u64,
            "log.roll.ms" => self.log_roll_ms = in_range(int(v, key)?, 1, i64::MAX, key)?,
            "log.index.interval.bytes" => {
                self.log_index_interval_bytes = in_range(int(v, key)?, 0, i32::MAX as i64, key)? as u64
            }
            "log.index.size.max.bytes" => {
                self.log_index_size_max_bytes = in_range(int(v, key)?, 4096, i32::MAX as i64, key)? as u64
            }
            "log.flush.interval.messages" => {
                self.log_flush_interval_messages = in_range(int(v, key)?, 1, i64::MAX, key)? as u64
            }
            "log.flush.interval.ms" => self.log_flush_interval_ms = in_range(int(v, key)?, 0, i64::MAX, key)?,
            "message.max.bytes" => self.message_max_bytes = in_range(int(v, key)?, 0, i32::MAX as i64, key)? as u64,
            "num.partitions" => self.num_partitions = in_range(int(v, key)?, 1, i32::MAX as i64, key)? as i32,
            "default.replication.factor" => {
                self.default_replication_factor = in_range(int(v, key)?, 1, i16::MAX as i64, key)? as i16
            }
            "replica.lag.time.max.ms" => self.replica_lag_time_max_ms = in_range(int(v, key)?, 1, i64::MAX, key)?,
            "replica.fetch.wait.max.ms" => {
                self.replica_fetch_wait_max_ms = in_range(int(v, key)?, 0, i32::MAX as i64, key)? as i32
            }
            "replica.fetch.min.bytes" => {
                self.replica_fetch_min_bytes = in_range(int(v, key)?, 1, i32::MAX as i64, key)? as i32
            }
            "replica.fetch.max.bytes" => {
                self.replica_fetch_max_bytes = in_range(int(v, key)?, 1, i32::MAX as i64, key)? as i32
            }
            "min.insync.replicas" => self.min_insync_replicas = in_range(int(v, key)?, 1, i32::MAX as i64, key)? as i32,
            "offsets.topic.num.partitions" => {
                self.offsets_topic_num_partitions = in_range(int(v, key)?, 1, i32::MAX as i64, key)? as i32
            }
            "offsets.topic.replication.factor" => {
                self.offsets_topic_replication_factor = in_range(int(v, key)?, 1, i16::MAX as i64, key)? as i16
            }
            "offsets.commit.timeout.ms" => {
                self.offsets_commit_timeout_ms = in_range(int(v, key)?, 1, i32::MAX as i64, key)?
            }
            "offsets.commit.required.acks" => {
                // Kafka deprecated any value but -1: only -1 is accepted.
                if int(v, key)? != -1 {
                    return Err(ConfigError::Invalid {
                        key: key.into(),
                        reason: "only -1 (acks=all) is supported".into(),
                    });
                }
            }
            "group.initial.rebalance.delay.ms" => {
                self.group_initial_rebalance_delay_ms = in_range(int(v, key)?, 0, i32::MAX as i64, key)?
            }
            "group.min.session.timeout.ms" => {
                self.group_min_session_timeout_ms = in_range(int(v, key)?, 0, i32::MAX as i64, key)? as i32
            }
            "group.max.session.timeout.ms" => {
                self.group_max_session_timeout_ms = in_range(int(v, key)?, 0, i32::MAX as i64, key)? as i32
            }
            "log.retention.ms" => self.log_retention_ms = in_range(int(v, key)?, -1, i64::MAX, key)?,
            "log.retention.minutes" => self.log_retention_ms = retention(int(v, key)?, 60_000, key)?,
            "log.retention.hours" => self.log_retention_ms = retention(int(v, key)?, 3_600_000, key)?,
            "log.retention.bytes" => self.log_retention_bytes = in_range(int(v, key)?, -1, i64::MAX, key)?,
            "log.retention.check.interval.ms" => {
                self.log_retention_check_interval_ms = in_range(int(v, key)?, 1, i64::MAX, key)?
            }
            "log.cleanup.policy" => {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                self.log_cleanup_policy =
                    crate::log::CleanupPolicy::parse(&text).map_err(|reason| ConfigError::Invalid {
                        key: key.into(),
                        reason,
                    })?
            }
            "log.message.timestamp.type" => {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                self.log_message_timestamp_type =
                    crate::log::config::parse_timestamp_type(&text).map_err(|reason| ConfigError::Invalid {
                        key: key.into(),
                        reason,
                    })?
            }
            "log.message.timestamp.before.max.ms" => {
                self.log_message_timestamp_before_max_ms = in_range(int(v, key)?, 0, i64::MAX, key)?
            }
            "log.message.timestamp.after.max.ms" => {
                self.log_message_timestamp_after_max_ms = in_range(int(v, key)?, 0, i64::MAX, key)?
            }
            "log.message.timestamp.difference.max.ms" => {
                self.log_message_timestamp_difference_max_ms = in_range(int(v, key)?, 0, i64::MAX, key)?
            }
            "log.cleaner.min.cleanable.ratio" => {
                let text = v.as_float().map_or_else(
                    || v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    |f| f.to_string(),
                );
                self.log_cleaner_min_cleanable_ratio =
                    crate::log::config::DirtyRatio::parse(key, &text).map_err(|reason| ConfigError::Invalid {
                        key: key.into(),
                        reason,
                    })?
            }
            "log.cleaner.min.compaction.lag.ms" => {
                self.log_cleaner_min_compaction_lag_ms = in_range(int(v, key)?, 0, i64::MAX, key)?
            }
            "log.cleaner.delete.retention.ms" => {
                self.log_cleaner_delete_retention_ms = in_range(int(v, key)?, 0, i64::MAX, key)?
            }
            "log.cleaner.backoff.ms" => self.log_cleaner_backoff_ms = in_range(int(v, key)?, 1, i64::MAX, key)?,
            "log.segment.delete.delay.ms" => {
                self.log_segment_delete_delay_ms = in_range(int(v, key)?, 0, i64::MAX, key)?
            }
            "auto.create.topics.enable" => {
                if boolean(v, key)? {
                    return Err(ConfigError::Invalid {
                        key: key.into(),
                        reason: "auto-creation is not supported".into(),
                    });
                }
            }
            _ => return Err(ConfigError::UnknownKey { key: key.into() }),
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown broker config key `{key}`")]
    UnknownKey { key: String },
    #[error("broker config `{key}`: expected {expected}, found `{found}`")]
    WrongType {
        key: String,
        expected: &'static str,
        found: String,
    },
    #[error("broker config `{key}` is required")]
    Missing { key: String },
    #[error("broker config `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

fn int(v: &toml::Value, key: &str) -> Result<i64, ConfigError> {
    let wrong = || ConfigError::WrongType {
        key: key.into(),
        expected: "an integer",
        found: v.to_string(),
    };
    match v {
        toml::Value::Integer(i) => Ok(*i),
        toml::Value::String(s) => s.trim().parse().map_err(|_| wrong()),
        _ => Err(wrong()),
    }
}

fn boolean(v: &toml::Value, key: &str) -> Result<bool, ConfigError> {
    let wrong = || ConfigError::WrongType {
        key: key.into(),
        expected: "a boolean",
        found: v.to_string(),
    };
    match v {
        toml::Value::Boolean(b) => Ok(*b),
        toml::Value::String(s) => s.trim().parse().map_err(|_| wrong()),
        _ => Err(wrong()),
    }
}

/// `log.retention.minutes`/`hours` in milliseconds; -1 stays -1 (forever).
fn retention(n: i64, unit_ms: i64, key: &str) -> Result<i64, ConfigError> {
    let n = in_range(n, -1, i64::MAX / unit_ms, key)?;
    Ok(if n < 0 { -1 } else { n * unit_ms })
}

fn in_range(n: i64, min: i64, max: i64, key: &str) -> Result<i64, ConfigError> {
    if n < min || n > max {
        return Err(ConfigError::Invalid {
            key: key.into(),
            reason: format!("{n} is outside [{min}, {max}]"),
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, toml::Value)]) -> BTreeMap<String, toml::Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn from_map_takes_kafka_keys_as_integers_or_strings_with_kafka_defaults() {
        let cfg = BrokerConfig::from_map(&map(&[
            ("node.id", toml::Value::Integer(3)),
            ("log.segment.bytes", toml::Value::String("1048576".into())),
        ]))
        .unwrap();
        assert_eq!(cfg.node_id, 3);
        assert_eq!(cfg.log_segment_bytes, 1_048_576);
        assert_eq!(cfg.log_flush_offset_checkpoint_interval_ms, 60_000);
        assert_eq!(cfg.socket_request_max_bytes, 104_857_600);
        assert_eq!(cfg.log_retention_ms, 604_800_000);
        assert_eq!(cfg.log_retention_check_interval_ms, 300_000);
    }

    #[test]
    fn retention_keys_take_kafkas_units_and_policies() {
        let cfg = BrokerConfig::from_map(&map(&[
            ("node.id", 1.into()),
            ("log.retention.hours", 2.into()),
            ("log.retention.bytes", 1000.into()),
            ("log.cleanup.policy", "compact,delete".into()),
            ("log.segment.delete.delay.ms", 5.into()),
        ]))
        .unwrap();
        assert_eq!((cfg.log_retention_ms, cfg.log_retention_bytes), (7_200_000, 1000));
        assert!(cfg.log_cleanup_policy.delete && cfg.log_cleanup_policy.compact);
        assert_eq!(cfg.log_segment_delete_delay_ms, 5);
        let forever = BrokerConfig::from_map(&map(&[("node.id", 1.into()), ("log.retention.ms", (-1).into())]));
        assert_eq!(forever.unwrap().log_retention_ms, -1);
        let bad = BrokerConfig::from_map(&map(&[("node.id", 1.into()), ("log.cleanup.policy", "x".into())]));
        assert!(matches!(bad, Err(ConfigError::Invalid { .. })), "{bad:?}");
    }

    #[test]
    fn from_map_names_the_key_of_an_unknown_key_a_wrong_type_or_a_missing_node_id() {
        let unknown = BrokerConfig::from_map(&map(&[("node.id", 1.into()), ("log.segmnt.bytes", 5.into())]));
        assert_eq!(
            unknown,
            Err(ConfigError::UnknownKey {
                key: "log.segmnt.bytes".into()
            })
        );
        let wrong = BrokerConfig::from_map(&map(&[("node.id", 1.into()), ("num.partitions", true.into())]));
        assert!(
            matches!(wrong, Err(ConfigError::WrongType { ref key, .. }) if key == "num.partitions"),
            "{wrong:?}"
        );
        let missing = BrokerConfig::from_map(&map(&[("num.partitions", 2.into())]));
        assert_eq!(missing, Err(ConfigError::Missing { key: "node.id".into() }));
        let err = BrokerConfig::from_map(&map(&[("node.id", "x".into())])).unwrap_err();
        assert!(err.to_string().contains("node.id"), "{err}");
    }

    #[test]
    fn group_coordinator_keys_have_kafka_defaults_and_are_validated() {
        let cfg = BrokerConfig::from_map(&map(&[("node.id", 1.into())])).unwrap();
        assert_eq!(cfg.offsets_topic_num_partitions, 50);
        assert_eq!(cfg.offsets_topic_replication_factor, 3);
        assert_eq!(cfg.offsets_commit_timeout_ms, 5_000);
        let g = cfg.group_config();
        assert_eq!(g.group_initial_rebalance_delay_ms, 3_000);
        assert_eq!(
            (g.group_min_session_timeout_ms, g.group_max_session_timeout_ms),
            (6_000, 1_800_000)
        );
        let set = BrokerConfig::from_map(&map(&[
            ("node.id", 1.into()),
            ("offsets.topic.num.partitions", 4.into()),
            ("offsets.topic.replication.factor", "1".into()),
            ("group.initial.rebalance.delay.ms", 0.into()),
        ]))
        .unwrap();
        assert_eq!(set.group_config().offsets_topic_num_partitions, 4);
        assert_eq!(set.offsets_topic_replication_factor, 1);
        assert_eq!(set.group_config().group_initial_rebalance_delay_ms, 0);
        for (key, value) in [
            ("offsets.topic.num.partitions", 0),
            ("offsets.topic.replication.factor", 0),
            ("offsets.commit.required.acks", 1),
            ("group.min.session.timeout.ms", 2_000_000),
        ] {
            let err = BrokerConfig::from_map(&map(&[("node.id", 1.into()), (key, value.into())])).unwrap_err();
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }
}
