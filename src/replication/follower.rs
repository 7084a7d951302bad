//! The follower's side: truncation by (leader epoch, end offset) and its high watermark.
//!
//! KIP-101 replaced truncation to the high watermark (which loses acknowledged data and lets replicas
//! diverge) by asking the leader where the follower's last epoch ends; KIP-279 made it converge over several
//! leader changes by repeating the question with the follower's own earlier epoch. Here the question rides
//! on every Fetch (v12 `last_fetched_epoch`; the leader answers `diverging_epoch` instead of records), as
//! Kafka's replica fetcher does since 2.7 (`AbstractFetcherThread.isTruncationOnFetchSupported`).

/// An epoch and where it ends (Kafka's `EpochEndOffset`; -1/-1 is UNDEFINED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEndOffset {
    pub leader_epoch: i32,
    pub end_offset: i64,
}

impl EpochEndOffset {
    pub const UNDEFINED: EpochEndOffset = EpochEndOffset {
        leader_epoch: -1,
        end_offset: -1,
    };
}

/// Leader side (Kafka's `Partition.fetchRecords`): the divergence to report for a fetch at `fetch_offset`
/// whose last fetched batch had epoch `last_fetched_epoch` (-1: none, no check), given the leader's
/// answer for that epoch (`Log::end_offset_for_epoch`: the largest epoch ≤ it and where that one ends).
pub fn diverging_epoch(
    last_fetched_epoch: i32,
    fetch_offset: i64,
    leader_end_for_epoch: Option<(i32, i64)>,
) -> Option<EpochEndOffset> {
    if last_fetched_epoch < 0 {
        return None;
    }
    match leader_end_for_epoch {
        None => Some(EpochEndOffset::UNDEFINED),
        Some((epoch, end_offset)) if epoch < last_fetched_epoch || end_offset < fetch_offset => Some(EpochEndOffset {
            leader_epoch: epoch,
            end_offset,
        }),
        Some(_) => None,
    }
}

/// Follower side (Kafka's `AbstractFetcherThread.getOffsetTruncationState`): where to truncate after the
/// leader reported `diverging`, given the follower's own answer for that epoch and its log end offset.
/// `None`: the leader could not say (UNDEFINED); the follower keeps its log and asks again — it never
/// falls back to its high watermark. A result at the follower's own end offset truncates nothing; when the
/// follower's epoch differs from the leader's, the next fetch (with the follower's now latest epoch)
/// repeats the question (KIP-279).
pub fn truncation_offset(
    diverging: EpochEndOffset,
    follower_end_for_epoch: Option<(i32, i64)>,
    follower_log_end_offset: i64,
) -> Option<i64> {
    if diverging.end_offset < 0 {
        return None;
    }
    if diverging.leader_epoch < 0 {
        return Some(diverging.end_offset.min(follower_log_end_offset));
    }
    Some(match follower_end_for_epoch {
        // The follower does not know the leader's epoch (nothing that old): the leader's end offset.
        None => diverging.end_offset.min(follower_log_end_offset),
        Some((epoch, end)) if epoch != diverging.leader_epoch => end.min(follower_log_end_offset),
        Some(_) => diverging.end_offset.min(follower_log_end_offset),
    })
}

/// A replica's high watermark bounded into its log: never below its log start offset, never above its log
/// end (Kafka's `UnifiedLog.updateHighWatermark`, which every path that sets it goes through: the follower
/// taking the leader's in `processPartitionData`, a checkpointed one loaded at startup, a full truncation to
/// the leader's log start — KAFKA-9491).
pub fn follower_high_watermark(high_watermark: i64, log_start_offset: i64, log_end_offset: i64) -> i64 {
    if high_watermark < log_start_offset {
        log_start_offset
    } else {
        high_watermark.min(log_end_offset)
    }
}
