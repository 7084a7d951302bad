//! The consumer's configuration, by Kafka's keys and defaults (Kafka 4.0 `ConsumerConfig`).

use crate::group::Assignor;

/// `auto.offset.reset`: where to start when there is no committed offset or it is out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoOffsetReset {
    Earliest,
    Latest,
    /// Surface the error to the application (`NoOffsetForPartitionException`).
    None,
}

impl AutoOffsetReset {
    /// The ListOffsets timestamp this reset asks for (-2 earliest, -1 latest).
    pub fn list_offsets_timestamp(self) -> Option<i64> {
        match self {
            AutoOffsetReset::Earliest => Some(-2),
            AutoOffsetReset::Latest => Some(-1),
            AutoOffsetReset::None => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// `client.id`.
    pub client_id: String,
    /// `group.id`; `None`: no group (only `assign`, no commits).
    pub group_id: Option<String>,
    /// `auto.offset.reset` (default latest).
    pub auto_offset_reset: AutoOffsetReset,
    /// `enable.auto.commit` (default true with a group).
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`.
    pub auto_commit_interval_ms: i64,
    /// `max.poll.records`.
    pub max_poll_records: usize,
    /// `max.poll.interval.ms` (also the JoinGroup rebalance timeout).
    pub max_poll_interval_ms: i64,
    /// `session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i64,
    /// `retry.backoff.ms`.
    pub retry_backoff_ms: i64,
    /// `partition.assignment.strategy`, in order of preference (default range, then cooperative-sticky).
    pub assignors: Vec<Assignor>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            client_id: "consumer".into(),
            group_id: None,
            auto_offset_reset: AutoOffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval_ms: 5_000,
            max_poll_records: 500,
            max_poll_interval_ms: 300_000,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            retry_backoff_ms: 100,
            assignors: vec![Assignor::Range, Assignor::CooperativeSticky],
        }
    }
}
