//! Per-log configuration, by Kafka's topic config keys (defaults as Kafka's broker defaults).

/// A partition log's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would pass this size (default 1 GiB).
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's records span this long (default 7 days).
    pub segment_ms: i64,
    /// `index.interval.bytes` (`log.index.interval.bytes`): bytes between offset index entries (4096).
    pub index_interval_bytes: u64,
    /// `segment.index.bytes`: size each index file is preallocated to (10 MiB).
    pub segment_index_bytes: u64,
    /// `flush.messages`: fsync after this many unflushed records (default: never).
    pub flush_messages: u64,
    /// `flush.ms`: fsync when the last flush is this old (default: never).
    pub flush_ms: i64,
    /// `max.message.bytes`: the largest batch accepted (1048588).
    pub max_message_bytes: u64,
    /// `retention.ms` (`log.retention.ms`/`hours`, 7 days): a closed segment whose largest record timestamp is
    /// older than this goes; -1 keeps everything.
    pub retention_ms: i64,
    /// `retention.bytes` (`log.retention.bytes`, -1: unlimited): oldest segments go while the log is larger.
    pub retention_bytes: i64,
    /// `cleanup.policy` (`log.cleanup.policy`, `delete`): `delete`, `compact` or `compact,delete`.
    pub cleanup_policy: CleanupPolicy,
    /// `file.delete.delay.ms` (`log.segment.delete.delay.ms`, 60000): a deleted segment's files stay, renamed
    /// `.deleted`, this long before they are removed.
    pub file_delete_delay_ms: i64,
    /// `message.timestamp.type` (`log.message.timestamp.type`, CreateTime): LogAppendTime makes the leader
    /// stamp each batch with its own clock.
    pub message_timestamp_type: crate::protocol::batch::TimestampType,
    /// `message.timestamp.before.max.ms` (`log.message.timestamp.before.max.ms`, KIP-937; Long.MAX_VALUE):
    /// with CreateTime, a record whose timestamp is more than this before the leader's clock is refused
    /// with INVALID_TIMESTAMP. Left at its default it takes `message.timestamp.difference.max.ms`, as
    /// Kafka 3.6's `LogConfig.getMessageTimestampBeforeMaxMs` does. (Kafka 4.0 dropped the difference
    /// config and, by KIP-1030, made the after bound 1 hour by default; we keep the 3.x defaults so that
    /// clock-skew scenarios are unchanged unless they set these.)
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms` (`log.message.timestamp.after.max.ms`, KIP-937; Long.MAX_VALUE): the
    /// same bound for timestamps after the leader's clock.
    pub message_timestamp_after_max_ms: i64,
    /// `message.timestamp.difference.max.ms` (`log.message.timestamp.difference.max.ms`, deprecated by
    /// KIP-937; Long.MAX_VALUE): both bounds, where those are not set.
    pub message_timestamp_difference_max_ms: i64,
    /// `min.cleanable.dirty.ratio` (`log.cleaner.min.cleanable.ratio`, 0.5): compaction runs once the dirty
    /// bytes are at least this share of the cleanable bytes.
    pub min_cleanable_dirty_ratio: DirtyRatio,
    /// `min.compaction.lag.ms` (`log.cleaner.min.compaction.lag.ms`, 0): a segment whose largest record
    /// timestamp is younger than this is not compacted yet.
    pub min_compaction_lag_ms: i64,
    /// `delete.retention.ms` (`log.cleaner.delete.retention.ms`, 1 day): how long a tombstone stays after the
    /// cleaner first saw it (KIP-534's delete horizon).
    pub delete_retention_ms: i64,
}

/// A ratio in [0, 1] (validated when parsed, so never NaN: equality is total).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct DirtyRatio(f64);

impl Eq for DirtyRatio {}

impl DirtyRatio {
    /// Parses Kafka's double in [0, 1].
    pub fn parse(key: &str, value: &str) -> Result<Self, String> {
        match value.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Ok(DirtyRatio(r)),
            _ => Err(format!("{key}: `{value}` is not a number in [0, 1]")),
        }
    }

    pub fn new(ratio: f64) -> Self {
        assert!((0.0..=1.0).contains(&ratio), "dirty ratio {ratio} outside [0, 1]");
        DirtyRatio(ratio)
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// `cleanup.policy`: which of retention (`delete`) and compaction (`compact`) apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

/// Parses `message.timestamp.type` (`CreateTime` or `LogAppendTime`).
pub fn parse_timestamp_type(value: &str) -> Result<crate::protocol::batch::TimestampType, String> {
    use crate::protocol::batch::TimestampType;
    match value.trim() {
        "CreateTime" => Ok(TimestampType::CreateTime),
        "LogAppendTime" => Ok(TimestampType::LogAppendTime),
        other => Err(format!(
            "message.timestamp.type: `{other}` is neither CreateTime nor LogAppendTime"
        )),
    }
}

impl LogConfig {
    /// The effective `message.timestamp.before.max.ms` (falls back on the difference config, KIP-937).
    pub fn timestamp_before_max_ms(&self) -> i64 {
        match self.message_timestamp_before_max_ms {
            i64::MAX => self.message_timestamp_difference_max_ms,
            ms => ms,
        }
    }

    /// The effective `message.timestamp.after.max.ms` (falls back on the difference config, KIP-937).
    pub fn timestamp_after_max_ms(&self) -> i64 {
        match self.message_timestamp_after_max_ms {
            i64::MAX => self.message_timestamp_difference_max_ms,
            ms => ms,
        }
    }

    /// Kafka's `LogValidator.validateTimestamp`: with CreateTime, a record timestamp (other than -1, "none")
    /// more than `timestamp_before_max_ms` before `now_ms` or `timestamp_after_max_ms` after it is refused.
    /// LogAppendTime ignores both bounds (the leader stamps its own clock).
    pub fn check_create_time(&self, timestamp: i64, now_ms: i64) -> Result<(), String> {
        if self.message_timestamp_type != crate::protocol::batch::TimestampType::CreateTime || timestamp == -1 {
            return Ok(());
        }
        let (before, after) = (self.timestamp_before_max_ms(), self.timestamp_after_max_ms());
        if now_ms.saturating_sub(timestamp) > before {
            return Err(format!(
                "timestamp {timestamp} is more than message.timestamp.before.max.ms={before} before the broker's {now_ms}"
            ));
        }
        if timestamp.saturating_sub(now_ms) > after {
            return Err(format!(
                "timestamp {timestamp} is more than message.timestamp.after.max.ms={after} after the broker's {now_ms}"
            ));
        }
        Ok(())
    }

    /// Whether any timestamp bound is set (so the leader must look at each record's timestamp).
    pub fn bounds_timestamps(&self) -> bool {
        self.message_timestamp_type == crate::protocol::batch::TimestampType::CreateTime
            && (self.timestamp_before_max_ms() != i64::MAX || self.timestamp_after_max_ms() != i64::MAX)
    }
}

impl CleanupPolicy {
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };
    /// `cleanup.policy=compact` (`__consumer_offsets`' policy in Kafka).
    pub const COMPACT: CleanupPolicy = CleanupPolicy {
        delete: false,
        compact: true,
    };

    /// Parses Kafka's list value (`delete`, `compact`, `compact,delete`, `delete,compact`).
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut policy = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for item in value.split(',').map(str::trim) {
            match item {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                other => return Err(format!("cleanup.policy: unknown policy `{other}`")),
            }
        }
        Ok(policy)
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            flush_messages: i64::MAX as u64,
            flush_ms: i64::MAX,
            max_message_bytes: 1_048_588,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::DELETE,
            file_delete_delay_ms: 60_000,
            message_timestamp_type: crate::protocol::batch::TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: i64::MAX,
            message_timestamp_difference_max_ms: i64::MAX,
            min_cleanable_dirty_ratio: DirtyRatio(0.5),
            min_compaction_lag_ms: 0,
            delete_retention_ms: 86_400_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas() {
        let c = LogConfig::default();
        assert_eq!(c.segment_bytes, 1 << 30);
        assert_eq!(c.segment_ms, 604_800_000);
        assert_eq!(c.index_interval_bytes, 4096);
        assert_eq!(c.segment_index_bytes, 10_485_760);
        assert_eq!(c.flush_messages, i64::MAX as u64);
        assert_eq!(c.flush_ms, i64::MAX);
        assert_eq!(c.max_message_bytes, 1_048_588);
        assert_eq!((c.retention_ms, c.retention_bytes), (604_800_000, -1));
        assert_eq!(
            (c.cleanup_policy, c.file_delete_delay_ms),
            (CleanupPolicy::DELETE, 60_000)
        );
        assert_eq!(c.min_cleanable_dirty_ratio.get(), 0.5);
        assert_eq!((c.min_compaction_lag_ms, c.delete_retention_ms), (0, 86_400_000));
    }

    #[test]
    fn create_time_bounds_refuse_timestamps_too_far_before_or_after_the_broker_clock() {
        let mut c = LogConfig::default();
        assert!(!c.bounds_timestamps());
        assert_eq!(c.check_create_time(0, i64::MAX), Ok(()), "unbounded by default");
        c.message_timestamp_before_max_ms = 1_000;
        c.message_timestamp_after_max_ms = 500;
        assert!(c.bounds_timestamps());
        let now = 10_000;
        assert_eq!(c.check_create_time(9_000, now), Ok(()), "exactly at the before bound");
        assert_eq!(c.check_create_time(10_500, now), Ok(()), "exactly at the after bound");
        let early = c.check_create_time(8_999, now).unwrap_err();
        assert!(early.contains("message.timestamp.before.max.ms=1000"), "{early}");
        let late = c.check_create_time(10_501, now).unwrap_err();
        assert!(late.contains("message.timestamp.after.max.ms=500"), "{late}");
        assert_eq!(c.check_create_time(-1, now), Ok(()), "no timestamp");
        c.message_timestamp_type = crate::protocol::batch::TimestampType::LogAppendTime;
        assert!(!c.bounds_timestamps());
        assert_eq!(c.check_create_time(0, now), Ok(()), "LogAppendTime ignores the bounds");
    }

    #[test]
    fn the_difference_config_stands_in_for_unset_before_and_after_bounds() {
        let mut c = LogConfig {
            message_timestamp_difference_max_ms: 100,
            ..LogConfig::default()
        };
        assert_eq!((c.timestamp_before_max_ms(), c.timestamp_after_max_ms()), (100, 100));
        c.message_timestamp_after_max_ms = 5;
        assert_eq!((c.timestamp_before_max_ms(), c.timestamp_after_max_ms()), (100, 5));
        assert!(c.check_create_time(894, 1_000).is_err());
        assert!(c.check_create_time(1_006, 1_000).is_err());
        assert!(c.check_create_time(1_005, 1_000).is_ok());
    }

    #[test]
    fn cleanup_policy_parses_kafkas_lists() {
        let both = CleanupPolicy {
            delete: true,
            compact: true,
        };
        assert_eq!(CleanupPolicy::parse("compact,delete"), Ok(both));
        assert_eq!(CleanupPolicy::parse("delete, compact"), Ok(both));
        assert_eq!(CleanupPolicy::parse("delete"), Ok(CleanupPolicy::DELETE));
        assert!(CleanupPolicy::parse("compcat").is_err());
    }
}
