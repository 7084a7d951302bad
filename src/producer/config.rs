//! The producer's configuration by Kafka's keys, with Kafka 3.0+ defaults (`ProducerConfig.java`).
//!
//! Idempotence (KIP-679): `enable.idempotence` defaults to true with `acks=all`. Set explicitly to true
//! together with `acks` other than all, `retries=0` or more than 5 in flight, it is a config error naming the
//! key; left unset, those settings quietly turn idempotence off (Kafka 3.2+, KAFKA-13598).
//! `delivery.timeout.ms` must be at least `linger.ms + request.timeout.ms`: an explicit smaller value is an
//! error, the default is raised to that sum.

use std::collections::BTreeMap;

/// The producer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// `acks`: 0, 1 or -1 (all).
    pub acks: i16,
    pub linger_ms: u64,
    pub batch_size: usize,
    pub max_in_flight_requests_per_connection: usize,
    pub retries: u32,
    pub retry_backoff_ms: u64,
    pub delivery_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// `max.block.ms`: how long a send waits for the topic's metadata.
    pub max_block_ms: u64,
    pub enable_idempotence: bool,
    /// `metadata.max.age.ms` (300000): metadata older than this is refreshed even without an error, which
    /// is how a producer learns of partitions CreatePartitions added.
    pub metadata_max_age_ms: u64,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            acks: -1,
            linger_ms: 5,
            batch_size: crate::producer::partitioner::BATCH_SIZE_DEFAULT,
            max_in_flight_requests_per_connection: 5,
            retries: i32::MAX as u32,
            retry_backoff_ms: 100,
            delivery_timeout_ms: 120_000,
            request_timeout_ms: 30_000,
            max_block_ms: 60_000,
            enable_idempotence: true,
            metadata_max_age_ms: 300_000,
        }
    }
}

/// A bad producer setting, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerConfigError {
    #[error("{key}={value}: {reason}")]
    Invalid { key: String, value: String, reason: String },
    #[error("unknown producer config key {key}")]
    UnknownKey { key: String },
}

/// The keys [`ProducerConfig::from_map`] reads.
pub const PRODUCER_KEYS: &[&str] = &[
    "acks",
    "linger.ms",
    "batch.size",
    "max.in.flight.requests.per.connection",
    "retries",
    "retry.backoff.ms",
    "delivery.timeout.ms",
    "request.timeout.ms",
    "max.block.ms",
    "enable.idempotence",
    "metadata.max.age.ms",
];

/// Idempotence needs at most this many requests in flight (the broker keeps 5 batches per producer).
pub const MAX_IN_FLIGHT_FOR_IDEMPOTENCE: usize = 5;

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ProducerConfigError {
    ProducerConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn number(map: &BTreeMap<String, String>, key: &str, min: u64, default: u64) -> Result<u64, ProducerConfigError> {
    let Some(v) = map.get(key) else { return Ok(default) };
    let n: u64 = v
        .trim()
        .parse()
        .map_err(|_| invalid(key, v, "not a non-negative integer"))?;
    if n < min {
        return Err(invalid(key, v, format!("must be at least {min}")));
    }
    Ok(n)
}

fn acks(map: &BTreeMap<String, String>) -> Result<i16, ProducerConfigError> {
    match map.get("acks").map(|v| v.trim()) {
        None | Some("all") | Some("-1") => Ok(-1),
        Some("0") => Ok(0),
        Some("1") => Ok(1),
        Some(v) => Err(invalid("acks", v, "must be one of all, -1, 0, 1")),
    }
}

impl ProducerConfig {
    /// Reads Kafka's keys; unset keys take Kafka's defaults; an unknown key is an error.
    pub fn from_map(map: &BTreeMap<String, String>) -> Result<Self, ProducerConfigError> {
        if let Some(key) = map.keys().find(|k| !PRODUCER_KEYS.contains(&k.as_str())) {
            return Err(ProducerConfigError::UnknownKey { key: key.clone() });
        }
        let d = Self::default();
        let mut c = Self {
            acks: acks(map)?,
            linger_ms: number(map, "linger.ms", 0, d.linger_ms)?,
            batch_size: number(map, "batch.size", 0, d.batch_size as u64)? as usize,
            max_in_flight_requests_per_connection: number(
                map,
                "max.in.flight.requests.per.connection",
                1,
                d.max_in_flight_requests_per_connection as u64,
            )? as usize,
            retries: number(map, "retries", 0, d.retries as u64)?.min(i32::MAX as u64) as u32,
            retry_backoff_ms: number(map, "retry.backoff.ms", 0, d.retry_backoff_ms)?,
            delivery_timeout_ms: number(map, "delivery.timeout.ms", 0, d.delivery_timeout_ms)?,
            request_timeout_ms: number(map, "request.timeout.ms", 0, d.request_timeout_ms)?,
            max_block_ms: number(map, "max.block.ms", 0, d.max_block_ms)?,
            enable_idempotence: true,
            metadata_max_age_ms: number(map, "metadata.max.age.ms", 0, d.metadata_max_age_ms)?,
        };
        c.enable_idempotence = c.idempotence(map.get("enable.idempotence"))?;
        c.check_delivery_timeout(map.contains_key("delivery.timeout.ms"))?;
        Ok(c)
    }

    /// KIP-679: the explicit setting must be consistent; the default yields to conflicting settings.
    fn idempotence(&self, explicit: Option<&String>) -> Result<bool, ProducerConfigError> {
        let conflict = if self.acks != -1 {
            Some(("acks", self.acks.to_string(), "idempotence requires acks=all"))
        } else if self.retries == 0 {
            Some(("retries", "0".to_string(), "idempotence requires retries > 0"))
        } else if self.max_in_flight_requests_per_connection > MAX_IN_FLIGHT_FOR_IDEMPOTENCE {
            Some((
                "max.in.flight.requests.per.connection",
                self.max_in_flight_requests_per_connection.to_string(),
                "idempotence requires at most 5",
            ))
        } else {
            None
        };
        let Some(v) = explicit else {
            return Ok(conflict.is_none());
        };
        let on = match v.trim() {
            "true" => true,
            "false" => false,
            _ => return Err(invalid("enable.idempotence", v, "must be true or false")),
        };
        match conflict {
            Some((key, value, reason)) if on => {
                Err(invalid(key, &value, format!("{reason} (enable.idempotence=true)")))
            }
            _ => Ok(on),
        }
    }

    fn check_delivery_timeout(&mut self, explicit: bool) -> Result<(), ProducerConfigError> {
        let floor = self.linger_ms + self.request_timeout_ms;
        if self.delivery_timeout_ms >= floor {
            return Ok(());
        }
        if explicit {
            return Err(invalid(
                "delivery.timeout.ms",
                &self.delivery_timeout_ms.to_string(),
                format!("must be at least linger.ms + request.timeout.ms = {floor}"),
            ));
        }
        self.delivery_timeout_ms = floor;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<ProducerConfig, ProducerConfigError> {
        ProducerConfig::from_map(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn defaults_are_kafka_3_and_4_defaults() {
        let c = cfg(&[]).expect("defaults");
        assert_eq!(c, ProducerConfig::default());
        assert_eq!((c.acks, c.linger_ms, c.batch_size), (-1, 5, 16_384));
        assert_eq!((c.retries, c.retry_backoff_ms), (i32::MAX as u32, 100));
        assert_eq!((c.delivery_timeout_ms, c.request_timeout_ms), (120_000, 30_000));
        assert_eq!(c.max_in_flight_requests_per_connection, 5);
        assert!(c.enable_idempotence);
    }

    #[test]
    fn explicit_idempotence_with_acks_1_is_a_config_error_naming_acks() {
        let e = cfg(&[("enable.idempotence", "true"), ("acks", "1")]).expect_err("KIP-679");
        assert!(e.to_string().starts_with("acks=1"), "{e}");
        let e = cfg(&[
            ("enable.idempotence", "true"),
            ("max.in.flight.requests.per.connection", "6"),
        ])
        .expect_err("");
        assert!(
            e.to_string().starts_with("max.in.flight.requests.per.connection=6"),
            "{e}"
        );
        let e = cfg(&[("enable.idempotence", "true"), ("retries", "0")]).expect_err("");
        assert!(e.to_string().starts_with("retries=0"), "{e}");
    }

    #[test]
    fn default_idempotence_yields_to_acks_1_or_retries_0() {
        assert!(!cfg(&[("acks", "1")]).expect("ok").enable_idempotence);
        assert!(!cfg(&[("retries", "0")]).expect("ok").enable_idempotence);
        assert!(
            !cfg(&[("acks", "all"), ("enable.idempotence", "false")])
                .expect("ok")
                .enable_idempotence
        );
    }

    #[test]
    fn bad_values_and_unknown_keys_name_the_key() {
        assert!(cfg(&[("acks", "2")]).expect_err("").to_string().starts_with("acks=2"));
        assert!(cfg(&[("linger.ms", "-1")])
            .expect_err("")
            .to_string()
            .starts_with("linger.ms=-1"));
        let e = cfg(&[("lingerms", "1")]).expect_err("");
        assert_eq!(e, ProducerConfigError::UnknownKey { key: "lingerms".into() });
    }

    #[test]
    fn delivery_timeout_below_linger_plus_request_timeout_is_an_error_only_when_explicit() {
        let e = cfg(&[("delivery.timeout.ms", "1000"), ("request.timeout.ms", "2000")]).expect_err("");
        assert!(e.to_string().starts_with("delivery.timeout.ms=1000"), "{e}");
        let c = cfg(&[("request.timeout.ms", "200000")]).expect("raised");
        assert_eq!(c.delivery_timeout_ms, 200_005);
    }
}
