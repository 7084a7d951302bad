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

/// A consumer config key with a bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}={value}: {reason}")]
pub struct ConsumerConfigError {
    pub key: String,
    pub value: String,
    pub reason: &'static str,
}

impl ConsumerConfig {
    /// Reads the core's keys from Kafka-style properties (`group.id`, `client.id`, `auto.offset.reset`,
    /// `enable.auto.commit`, `auto.commit.interval.ms`, `max.poll.records`, `max.poll.interval.ms`,
    /// `session.timeout.ms`, `heartbeat.interval.ms`, `retry.backoff.ms`, `partition.assignment.strategy`);
    /// other keys are left to the facade (fetch sizes, `request.timeout.ms`, `check.crcs`).
    pub fn from_map(props: &std::collections::BTreeMap<String, String>) -> Result<Self, ConsumerConfigError> {
        let mut c = Self::default();
        for (key, value) in props {
            let bad = |reason| ConsumerConfigError {
                key: key.clone(),
                value: value.clone(),
                reason,
            };
            let int = || {
                value
                    .parse::<i64>()
                    .ok()
                    .filter(|v| *v >= 0)
                    .ok_or_else(|| bad("not a count"))
            };
            match key.as_str() {
                "group.id" => c.group_id = Some(value.clone()),
                "client.id" => c.client_id = value.clone(),
                "auto.offset.reset" => {
                    c.auto_offset_reset = match value.as_str() {
                        "earliest" => AutoOffsetReset::Earliest,
                        "latest" => AutoOffsetReset::Latest,
                        "none" => AutoOffsetReset::None,
                        _ => return Err(bad("expected earliest, latest or none")),
                    }
                }
                "enable.auto.commit" => {
                    c.enable_auto_commit = value.parse().map_err(|_| bad("expected true or false"))?
                }
                "auto.commit.interval.ms" => c.auto_commit_interval_ms = int()?,
                "max.poll.records" => c.max_poll_records = int()?.max(1) as usize,
                "max.poll.interval.ms" => c.max_poll_interval_ms = int()?,
                "session.timeout.ms" => c.session_timeout_ms = int()?.min(i32::MAX as i64) as i32,
                "heartbeat.interval.ms" => c.heartbeat_interval_ms = int()?,
                "retry.backoff.ms" => c.retry_backoff_ms = int()?,
                "partition.assignment.strategy" => {
                    c.assignors = value
                        .split(',')
                        .map(|n| Assignor::from_name(n.trim()).ok_or_else(|| bad("unknown assignor")))
                        .collect::<Result<_, _>>()?;
                }
                _ => {}
            }
        }
        Ok(c)
    }
}
