//! Client configuration by Kafka's config keys (`client.id`, `request.timeout.ms`, `acks`, `batch.size`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::producer::BATCH_SIZE_DEFAULT;

/// Kafka's `request.timeout.ms` default.
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 30_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `client.id`
    pub client_id: String,
    /// `request.timeout.ms`: how long a request waits for its response before the connection is closed.
    pub request_timeout_ms: u64,
    /// `acks`: 0, 1 or -1 (`all`).
    pub acks: i16,
    /// `batch.size`, in bytes.
    pub batch_size: usize,
    /// The largest response frame accepted, in bytes (`socket.request.max.bytes` on the broker side).
    pub max_response_bytes: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            client_id: "gregor".to_string(),
            request_timeout_ms: REQUEST_TIMEOUT_MS_DEFAULT,
            acks: -1,
            batch_size: BATCH_SIZE_DEFAULT,
            max_response_bytes: super::connection::MAX_RESPONSE_BYTES_DEFAULT,
        }
    }
}

impl ClientConfig {
    /// Reads the keys this client knows from Kafka-style properties; other keys are left to the layers
    /// that own them (the producer and consumer cores).
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        for (key, value) in props {
            let invalid = |reason| ConfigError::Invalid {
                key: key.clone(),
                value: value.clone(),
                reason,
            };
            match key.as_str() {
                "client.id" => config.client_id = value.clone(),
                "request.timeout.ms" => {
                    config.request_timeout_ms = value.parse().map_err(|_| invalid("not a number of ms"))?;
                }
                "acks" => config.acks = parse_acks(value).ok_or_else(|| invalid("expected all, -1, 0 or 1"))?,
                "batch.size" => config.batch_size = value.parse().map_err(|_| invalid("not a number of bytes"))?,
                _ => {}
            }
        }
        Ok(config)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

fn parse_acks(value: &str) -> Option<i16> {
    match value {
        "all" | "-1" => Some(-1),
        "0" => Some(0),
        "1" => Some(1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_kafka_keys_and_keeps_kafka_defaults() {
        let default = ClientConfig::from_properties(&BTreeMap::new()).expect("empty is valid");
        assert_eq!(default.request_timeout_ms, 30_000);
        assert_eq!(default.acks, -1);
        assert_eq!(default.batch_size, 16_384);
        let props: BTreeMap<String, String> = [("acks", "1"), ("request.timeout.ms", "500"), ("linger.ms", "5")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = ClientConfig::from_properties(&props).expect("valid");
        assert_eq!(config.acks, 1);
        assert_eq!(config.request_timeout(), Duration::from_millis(500));
        let bad: BTreeMap<String, String> = [("acks".to_string(), "2".to_string())].into_iter().collect();
        assert!(matches!(
            ClientConfig::from_properties(&bad),
            Err(ConfigError::Invalid { .. })
        ));
    }
}
