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
    }
}
