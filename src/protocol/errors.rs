//! Why a request could not be parsed, and Kafka's error codes (protocol outcomes are values on the wire).

pub use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;

/// Kafka's error codes as the broker returns them (`Errors.java`); `NONE` is 0.
pub mod code {
    use super::ResponseError as E;
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = E::OffsetOutOfRange.code();
    pub const CORRUPT_MESSAGE: i16 = E::CorruptMessage.code();
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = E::UnknownTopicOrPartition.code();
    pub const NOT_LEADER_OR_FOLLOWER: i16 = E::NotLeaderOrFollower.code();
    pub const MESSAGE_TOO_LARGE: i16 = E::MessageTooLarge.code();
    pub const RECORD_LIST_TOO_LARGE: i16 = E::RecordListTooLarge.code();
    pub const INVALID_TOPIC_EXCEPTION: i16 = E::InvalidTopicException.code();
    pub const INVALID_REQUIRED_ACKS: i16 = E::InvalidRequiredAcks.code();
    pub const KAFKA_STORAGE_ERROR: i16 = E::KafkaStorageError.code();
    pub const UNSUPPORTED_VERSION: i16 = E::UnsupportedVersion.code();
    pub const TOPIC_ALREADY_EXISTS: i16 = E::TopicAlreadyExists.code();
    pub const INVALID_PARTITIONS: i16 = E::InvalidPartitions.code();
    pub const INVALID_REPLICATION_FACTOR: i16 = E::InvalidReplicationFactor.code();
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = E::InvalidReplicaAssignment.code();
    pub const INVALID_CONFIG: i16 = E::InvalidConfig.code();
    pub const INVALID_REQUEST: i16 = E::InvalidRequest.code();
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = E::UnsupportedForMessageFormat.code();
    pub const FENCED_LEADER_EPOCH: i16 = E::FencedLeaderEpoch.code();
    pub const UNKNOWN_LEADER_EPOCH: i16 = E::UnknownLeaderEpoch.code();
    pub const UNKNOWN_SERVER_ERROR: i16 = E::UnknownServerError.code();
    pub const INVALID_RECORD: i16 = E::InvalidRecord.code();
    pub const INVALID_TIMESTAMP: i16 = E::InvalidTimestamp.code();
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = E::CoordinatorLoadInProgress.code();
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = E::OutOfOrderSequenceNumber.code();
    pub const INVALID_PRODUCER_EPOCH: i16 = E::InvalidProducerEpoch.code();
    pub const REQUEST_TIMED_OUT: i16 = E::RequestTimedOut.code();
    pub const INELIGIBLE_REPLICA: i16 = E::IneligibleReplica.code();
    pub const NOT_CONTROLLER: i16 = E::NotController.code();
    pub const NOT_ENOUGH_REPLICAS: i16 = E::NotEnoughReplicas.code();
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = E::NotEnoughReplicasAfterAppend.code();
}

/// The name Kafka gives an API key, or its number.
pub fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(k) => format!("{k:?}"),
        Err(()) => format!("api key {key}"),
    }
}

/// Why a request frame was refused. Kafka closes the connection on each of these (only ApiVersions answers
/// an unsupported version, KIP-511, and that is not an error here).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("unknown or unsupported api key {key}")]
    UnknownApiKey { key: i16 },
    #[error("unsupported version {version} of {}", api_name(*key))]
    UnsupportedVersion { key: i16, version: i16 },
    #[error("malformed {} v{version} request at byte {at_byte}: {what}", api_name(*api))]
    Malformed {
        api: i16,
        version: i16,
        at_byte: usize,
        what: String,
    },
}

/// A response we built could not be encoded (a bug in the broker, reported rather than panicking).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("encoding {} v{version} response: {reason}", api_name(*api))]
pub struct EncodeError {
    pub api: i16,
    pub version: i16,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_kafkas_numbers() {
        assert_eq!(code::OFFSET_OUT_OF_RANGE, 1);
        assert_eq!(code::CORRUPT_MESSAGE, 2);
        assert_eq!(code::UNKNOWN_TOPIC_OR_PARTITION, 3);
        assert_eq!(code::NOT_LEADER_OR_FOLLOWER, 6);
        assert_eq!(code::MESSAGE_TOO_LARGE, 10);
        assert_eq!(code::INVALID_TIMESTAMP, 32);
        assert_eq!(code::UNSUPPORTED_VERSION, 35);
        assert_eq!(code::TOPIC_ALREADY_EXISTS, 36);
        assert_eq!(code::INVALID_REPLICATION_FACTOR, 38);
        assert_eq!(code::KAFKA_STORAGE_ERROR, 56);
        assert_eq!(code::COORDINATOR_LOAD_IN_PROGRESS, 14);
        assert_eq!(code::OUT_OF_ORDER_SEQUENCE_NUMBER, 45);
        assert_eq!(code::INVALID_PRODUCER_EPOCH, 47);
    }

    #[test]
    fn errors_name_the_api() {
        let e = RequestError::Malformed {
            api: 3,
            version: 12,
            at_byte: 4,
            what: "x".into(),
        };
        assert_eq!(e.to_string(), "malformed Metadata v12 request at byte 4: x");
    }
}
