//! What a send's end means for the history: ARCHITECTURE §6's table lives here, beside [`final_outcome`]
//! which decides it.

use crate::producer::accumulator::ClientBatch;
use crate::protocol::errors::ResponseError;
use crate::types::TopicPartition;

/// Kafka error codes the producer decides on.
pub mod code {
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const UNKNOWN_PRODUCER_ID: i16 = 59;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
}

/// Why an attempt, or a whole send, did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A Produce response's partition error code.
    Broker { code: i16 },
    /// The connection closed with the request on it (or the response left the partition out).
    Disconnected,
    /// No response within `request.timeout.ms`; the producer closed the connection.
    RequestTimeout,
    /// `delivery.timeout.ms` passed since the record was sent.
    DeliveryTimeout,
    /// The topic's metadata did not arrive within `max.block.ms`.
    MetadataTimeout { topic: String },
    /// An explicit partition outside the topic's partitions.
    InvalidPartition { partition: i32, count: i32 },
}

impl Failure {
    /// Kafka's `RetriableException` (error codes) plus network errors.
    pub fn is_retriable(&self) -> bool {
        match self {
            Failure::Broker { code } => ResponseError::try_from_code(*code).is_some_and(|e| e.is_retriable()),
            Failure::Disconnected | Failure::RequestTimeout => true,
            _ => false,
        }
    }

    /// Kafka's `InvalidMetadataException` errors and network errors ask for a metadata refresh.
    pub fn invalidates_metadata(&self) -> bool {
        match self {
            Failure::Broker { code } => matches!(
                *code,
                code::UNKNOWN_TOPIC_OR_PARTITION
                    | code::LEADER_NOT_AVAILABLE
                    | code::NOT_LEADER_OR_FOLLOWER
                    | code::KAFKA_STORAGE_ERROR
                    | code::FENCED_LEADER_EPOCH
                    | code::UNKNOWN_LEADER_EPOCH
            ),
            Failure::Disconnected | Failure::RequestTimeout => true,
            _ => false,
        }
    }

    /// `OUT_OF_ORDER_SEQUENCE_NUMBER` / `UNKNOWN_PRODUCER_ID`: retried by the idempotent producer.
    pub fn is_sequence_error(&self) -> bool {
        matches!(
            self,
            Failure::Broker {
                code: code::OUT_OF_ORDER_SEQUENCE_NUMBER | code::UNKNOWN_PRODUCER_ID
            }
        )
    }
}

/// Why a send's outcome is indefinite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoReason {
    /// acks=0: no response ever says.
    Acks0,
    /// The send ended with this failure after some attempt that may have appended it.
    MayHaveLanded(Failure),
}

/// A send's completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok { partition: TopicPartition, offset: i64 },
    Fail(Failure),
    Info(InfoReason),
}

/// Whether an attempt that ended with `failure` may have appended the batch: the leader appends before it
/// waits for replication, so a timeout, a disconnect, `NOT_ENOUGH_REPLICAS_AFTER_APPEND`, and with acks=all
/// `NOT_LEADER_OR_FOLLOWER` (the purgatory's answer when leadership moved after the append) may hide an
/// append. Everything else is a rejection before any append.
pub fn attempt_may_have_landed(failure: &Failure, acks: i16) -> bool {
    match failure {
        Failure::Broker { code } => match *code {
            code::REQUEST_TIMED_OUT
            | code::NOT_ENOUGH_REPLICAS_AFTER_APPEND
            | code::KAFKA_STORAGE_ERROR
            | code::UNKNOWN_SERVER_ERROR => true,
            code::NOT_LEADER_OR_FOLLOWER => acks == -1,
            _ => false,
        },
        Failure::Disconnected | Failure::RequestTimeout => true,
        Failure::DeliveryTimeout | Failure::MetadataTimeout { .. } | Failure::InvalidPartition { .. } => false,
    }
}

/// The outcome of a batch that will not be retried, from its attempts' history and its last failure.
///
/// | producer outcome | history type |
/// |---|---|
/// | response without error, with an offset (also a duplicate answered with the original offset) | ok (`Outcome::Ok`, decided in `Producer::on_response`) |
/// | rejected before any append, on every attempt (`NOT_ENOUGH_REPLICAS`, `INVALID_*`, `RECORD_TOO_LARGE`, `OUT_OF_ORDER_SEQUENCE_NUMBER`, unknown topic, an invalid partition), also `delivery.timeout.ms` or `max.block.ms` expiry of a record never sent, or only sent to be rejected | fail |
/// | `NOT_ENOUGH_REPLICAS_AFTER_APPEND`, `REQUEST_TIMED_OUT`, `NOT_LEADER_OR_FOLLOWER` with acks=all, disconnect, request timeout on *any* attempt, then any end (including `delivery.timeout.ms` expiry, in flight or queued) | info (may or may not have happened) |
/// | acks=0 | info (`InfoReason::Acks0`, at send time); the checker counts "sent, never read" for acks=0 |
pub fn final_outcome(batch: &ClientBatch, failure: Failure) -> Outcome {
    if batch.maybe_landed {
        Outcome::Info(InfoReason::MayHaveLanded(failure))
    } else {
        Outcome::Fail(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_before_append_are_not_landed_and_timeouts_may_be() {
        let b = |code| Failure::Broker { code };
        assert!(!attempt_may_have_landed(&b(code::NOT_ENOUGH_REPLICAS), -1));
        assert!(attempt_may_have_landed(&b(code::NOT_ENOUGH_REPLICAS_AFTER_APPEND), -1));
        assert!(attempt_may_have_landed(&b(code::REQUEST_TIMED_OUT), 1));
        assert!(attempt_may_have_landed(&b(code::NOT_LEADER_OR_FOLLOWER), -1));
        assert!(!attempt_may_have_landed(&b(code::NOT_LEADER_OR_FOLLOWER), 1));
        assert!(!attempt_may_have_landed(&b(code::MESSAGE_TOO_LARGE), -1));
        assert!(attempt_may_have_landed(&Failure::Disconnected, 1));
        assert!(!attempt_may_have_landed(&Failure::DeliveryTimeout, -1));
    }

    #[test]
    fn kafka_retriable_errors_are_retried_and_others_are_not() {
        let b = |code| Failure::Broker { code };
        for c in [
            code::NOT_LEADER_OR_FOLLOWER,
            code::NOT_ENOUGH_REPLICAS,
            code::REQUEST_TIMED_OUT,
            3,
            5,
        ] {
            assert!(b(c).is_retriable(), "code {c}");
        }
        for c in [
            code::MESSAGE_TOO_LARGE,
            code::INVALID_PRODUCER_EPOCH,
            code::UNKNOWN_SERVER_ERROR,
        ] {
            assert!(!b(c).is_retriable(), "code {c}");
        }
        assert!(b(code::NOT_LEADER_OR_FOLLOWER).invalidates_metadata());
        assert!(b(code::UNKNOWN_TOPIC_OR_PARTITION).invalidates_metadata());
        assert!(!b(code::NOT_ENOUGH_REPLICAS).invalidates_metadata());
    }
}
