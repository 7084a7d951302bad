//! What can go wrong on the client side, naming the broker, API and partition involved.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::ResponseError;

use crate::types::TopicPartition;

/// Kafka's error codes as a typed enum (`ResponseError::NotLeaderOrFollower`, code 6, ...).
pub type KafkaErrorCode = ResponseError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The broker answered with a Kafka error code for `at` (a topic, a topic-partition or the request).
    #[error("{code} (Kafka error code {}) for {at}", code.code())]
    Kafka { code: KafkaErrorCode, at: String },
    /// No response within `request.timeout.ms`; the connection was closed, so a late response can never be
    /// matched to a later request (as Kafka's NetworkClient does). The request may have been applied.
    #[error("{api:?} to {addr} got no response within {timeout_ms} ms (request.timeout.ms); connection closed")]
    Timeout { addr: String, api: ApiKey, timeout_ms: u64 },
    /// The connection broke after the request may have been written. The request may have been applied.
    #[error("connection to {addr} lost during {api:?}: {reason}")]
    Disconnected { addr: String, api: ApiKey, reason: String },
    /// The TCP connection (or its ApiVersions handshake) could not be set up; nothing was sent.
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// A response that does not decode (bad shape, bad header, kafka-protocol refused it).
    #[error("undecodable {api:?} v{version} response from {addr}: {reason}")]
    Decode {
        addr: String,
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("{api:?} response from {addr} carries correlation id {got}, expected {expected}")]
    CorrelationMismatch {
        addr: String,
        api: ApiKey,
        expected: i32,
        got: i32,
    },
    /// The client and the broker share no version of `api`.
    #[error("no common version of {api:?} with {addr}: client supports {client_min}..={client_max}, broker advertises {broker:?}")]
    UnsupportedVersion {
        addr: String,
        api: ApiKey,
        client_min: i16,
        client_max: i16,
        broker: Option<(i16, i16)>,
    },
    #[error("encoding {api:?} v{version}: {reason}")]
    Encode { api: ApiKey, version: i16, reason: String },
    /// A fetched batch failed its CRC or structure check (`check.crcs`); it is never returned as data.
    #[error("corrupt record batch in {tp} at offset {offset}: {reason}")]
    CorruptBatch {
        tp: TopicPartition,
        offset: i64,
        reason: String,
    },
    /// The metadata names no leader (or no address for it) for the partition.
    #[error("no leader known for {tp}")]
    NoLeader { tp: TopicPartition },
    /// The response lacks an entry the request asked about.
    #[error("{api:?} response from {addr} has no entry for {what}")]
    MissingInResponse { addr: String, api: ApiKey, what: String },
}

impl ClientError {
    /// The Kafka error code, if the broker answered with one.
    pub fn kafka_code(&self) -> Option<KafkaErrorCode> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether a write that ended with this error may still have been applied (history type `info`, not
    /// `fail`; ARCHITECTURE §6).
    pub fn is_indefinite(&self) -> bool {
        match self {
            ClientError::Timeout { .. }
            | ClientError::Disconnected { .. }
            | ClientError::Decode { .. }
            | ClientError::CorrelationMismatch { .. }
            | ClientError::MissingInResponse { .. } => true,
            // Only the errors a broker gives before any append are definite (ARCHITECTURE §6's table);
            // anything else (a storage error, an unknown server error, ...) may have followed the write.
            ClientError::Kafka { code, .. } => !matches!(
                code,
                ResponseError::NotEnoughReplicas
                    | ResponseError::UnknownTopicOrPartition
                    | ResponseError::CorruptMessage
                    | ResponseError::MessageTooLarge
                    | ResponseError::RecordListTooLarge
                    | ResponseError::InvalidRecord
                    | ResponseError::InvalidRequiredAcks
                    | ResponseError::InvalidProducerEpoch
                    | ResponseError::OutOfOrderSequenceNumber
                    | ResponseError::InvalidTopicException
                    | ResponseError::TopicAuthorizationFailed
                    | ResponseError::UnsupportedVersion
                    | ResponseError::FencedLeaderEpoch
                    | ResponseError::UnknownLeaderEpoch
                    | ResponseError::TopicAlreadyExists
                    | ResponseError::InvalidReplicationFactor
                    | ResponseError::InvalidPartitions
                    | ResponseError::InvalidConfig
                    | ResponseError::OffsetOutOfRange
            ),
            ClientError::Connect { .. }
            | ClientError::UnsupportedVersion { .. }
            | ClientError::Encode { .. }
            | ClientError::CorruptBatch { .. }
            | ClientError::NoLeader { .. } => false,
        }
    }
}

/// `Err(ClientError::Kafka)` for a non-zero error code.
pub fn check_code(code: i16, at: impl FnOnce() -> String) -> Result<(), ClientError> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(code) => Err(ClientError::Kafka { code, at: at() }),
    }
}
