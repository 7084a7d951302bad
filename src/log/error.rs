//! The log's errors: what went wrong and where.

use crate::log::disk::DiskError;
use crate::protocol::batch::BatchError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// Kafka's `RECORD_TOO_LARGE`: a batch larger than `max.message.bytes`.
    #[error("batch of {size} bytes exceeds max.message.bytes={max}")]
    RecordTooLarge { size: usize, max: u64 },
    /// Kafka's `CORRUPT_MESSAGE`: a batch that fails validation, at byte `position` of the appended bytes.
    #[error("corrupt batch at byte {position}: {source}")]
    CorruptRecord { position: usize, source: BatchError },
    /// Kafka's `OFFSET_OUT_OF_RANGE`.
    #[error("offset {offset} outside [log_start_offset={log_start_offset}, log_end_offset={log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// Kafka's `INVALID_TIMESTAMP` (32): a CreateTime record outside `message.timestamp.before/after.max.ms`.
    #[error("invalid timestamp at offset delta {offset_delta}: {reason}")]
    InvalidTimestamp { offset_delta: i64, reason: String },
    /// Kafka's `INVALID_RECORD` and friends: well-formed bytes the log refuses.
    #[error("invalid records: {reason}")]
    InvalidRecords { reason: String },
    /// A follower append whose offsets go backwards (Kafka's `UnexpectedAppendOffsetException`).
    #[error("unexpected append offset {offset}: log end offset is {log_end_offset}")]
    UnexpectedAppendOffset { offset: i64, log_end_offset: i64 },
    /// A malformed checkpoint or metadata file.
    #[error("{file}:{line}: {reason}")]
    MalformedFile { file: String, line: usize, reason: String },
    /// `partition.metadata` names another topic id (Kafka's `InconsistentTopicIdException`).
    #[error("{tp}: topic id {found} on disk, {expected} requested")]
    InconsistentTopicId {
        tp: String,
        expected: String,
        found: String,
    },
    #[error("no log for {tp}")]
    UnknownPartition { tp: String },
    /// Kafka's `OUT_OF_ORDER_SEQUENCE_NUMBER`: an idempotent batch that does not continue its producer's
    /// sequence (a gap, or a new epoch not starting at 0).
    #[error("out of order sequence number for producer {producer_id}: {first_seq} (incoming), {last_seq:?} (last in the log)")]
    OutOfOrderSequence {
        producer_id: i64,
        first_seq: i32,
        last_seq: Option<i32>,
    },
    /// Kafka's `INVALID_PRODUCER_EPOCH`: a batch of a producer epoch older than the partition's (fenced).
    #[error("producer {producer_id}: epoch {epoch} is older than the current epoch {current_epoch}")]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },
}
