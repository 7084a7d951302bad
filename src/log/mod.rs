//! L1: the partition log, Kafka's layering: a log over segments over files, IO only through [`Disk`].
//!
//! - [`log::Log`] — Kafka's `UnifiedLog`/`LocalLog`: appends (leader and follower), reads, truncation,
//!   flushes, rolls; [`segment::LogSegment`] with its [`index::OffsetIndex`] and [`time_index::TimeIndex`];
//!   [`epoch_cache::LeaderEpochCache`] (KIP-101/279).
//! - [`recovery`] — Kafka's `LogLoader`; [`manager::LogManager`] — one log dir, checkpoints, clean shutdown.

pub mod checkpoint;
pub mod cleaner;
pub mod config;
pub mod disk;
pub mod epoch_cache;
pub mod error;
pub mod index;
#[allow(clippy::module_inception)]
pub mod log;
mod log_producers;
pub mod manager;
#[cfg(test)]
pub(crate) mod mem_disk;
pub mod producer_state;
pub mod recovery;
pub mod retention;
pub mod segment;
pub mod time_index;
pub mod timestamps;

pub use cleaner::{CleanOutcome, CleanableRange};
pub use config::{CleanupPolicy, DirtyRatio, LogConfig};
pub use disk::{Disk, DiskError, DiskResult};
pub use epoch_cache::LeaderEpochCache;
pub use error::LogError;
pub use log::{AppendInfo, FetchData, Log};
pub use log_producers::SNAPSHOTS_TO_RETAIN;
pub use manager::LogManager;
pub use recovery::RecoveryReport;
pub use retention::{DeletionReason, RetentionOutcome};
