//! L1: partition replication, pure and synchronous (Kafka's `Partition`, `Replica` and `DelayedProduce`;
//! the follower's truncation of `AbstractFetcherThread`). Time is an argument, effects are data.
//!
//! - [`LeaderState`]: a leader's view of one partition: each follower's log end offset and last caught-up
//!   time, ISR shrink after `replica.lag.time.max.ms` and expansion under Kafka's full conditions
//!   (KAFKA-7128, KIP-841, KIP-903), proposals to the controller (AlterPartition, KIP-497), the maximal
//!   ISR and the high watermark over it, never moving backwards within one tenure.
//! - [`AcksPurgatory`]: acks=all produces waiting for the high watermark.
//! - [`follower`]: the follower's truncation by (leader epoch, end offset), KIP-101/KIP-279, through Fetch
//!   v12's `last_fetched_epoch`/`diverging_epoch` (KIP-595's fields, which Kafka's replica fetcher uses
//!   since 2.7: `AbstractFetcherThread.isTruncationOnFetchSupported`), never to the high watermark; and the
//!   follower's high watermark, `min(leader HW, own LEO)`.

pub mod follower;
mod leader;
mod purgatory;

pub use self::follower::{diverging_epoch, follower_high_watermark, truncation_offset, EpochEndOffset};
pub use self::leader::{
    AlterPartitionOutcome, FollowerReplica, IsrChange, IsrMember, LeaderState, ProposedIsr, ReplicaEligibility,
};
pub use self::purgatory::{AcksPurgatory, DelayedProduce, WaitStatus};

/// Kafka's `replica.lag.time.max.ms` default.
pub const REPLICA_LAG_TIME_MAX_MS: i64 = 30_000;
/// Kafka's `UnifiedLog.UnknownOffset`: a follower's log end offset before its first fetch.
pub const UNKNOWN_OFFSET: i64 = -1;

#[cfg(test)]
mod tests;
