//! Retention (Kafka's `UnifiedLog.deleteOldSegments`, `cleanup.policy=delete`) and the log start offset
//! (DeleteRecords, KIP-107; followers following the leader's log start offset).
//!
//! Only segments wholly below the high watermark go: a segment is deletable while its upper bound (the next
//! segment's base offset, or the log end offset for the active segment) is at or below the high watermark,
//! oldest first, stopping at the first that is not. Three predicates, in Kafka's order:
//! - `retention.ms`: the segment's largest record timestamp (its creation time when it has none) is older
//!   than `now - retention.ms`;
//! - `retention.bytes`: the log is larger than `retention.bytes` by at least this segment's size;
//! - always: the next segment starts at or below the log start offset (DeleteRecords moved it past).
//! When every segment is to go, the log rolls first so the active segment may go too. A deleted segment's
//! files are renamed `.deleted` at once and removed `file.delete.delay.ms` later; a restart removes any
//! `.deleted` leftovers (recovery's `list_segments`). The log start offset advances to the first remaining
//! segment's base; the manager checkpoints it (`log-start-offset-checkpoint`).

use crate::log::disk::{Disk, DiskError};
use crate::log::log::Log;
use crate::log::segment::LogSegment;
use crate::log::LogError;

/// The suffix of a segment file scheduled for removal (Kafka's `LogFileUtils.DELETED_FILE_SUFFIX`).
pub const DELETED_FILE_SUFFIX: &str = ".deleted";

/// Files renamed `.deleted`, to be removed at `due_ms`.
#[derive(Debug, Clone, Default)]
pub(super) struct PendingDeletes {
    files: Vec<(i64, String)>,
}

/// Why segments went (Kafka logs the same three reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletionReason {
    RetentionMs,
    RetentionBytes,
    LogStartOffset,
}

/// What one retention pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// (base offset, reason) of every segment removed, oldest first.
    pub deleted: Vec<(i64, DeletionReason)>,
    pub log_start_offset: i64,
}

impl Log {
    /// One retention pass (Kafka's `deleteOldSegments`): with `delete` in `cleanup.policy`, segments past
    /// `retention.ms` then past `retention.bytes`; under any policy, segments wholly below the log start
    /// offset. `high_watermark` bounds what may go.
    pub fn delete_old_segments(
        &mut self,
        disk: &mut dyn Disk,
        high_watermark: i64,
        now_ms: i64,
    ) -> Result<RetentionOutcome, LogError> {
        let mut outcome = RetentionOutcome::default();
        if self.config.cleanup_policy.delete {
            let retention_ms = self.config.retention_ms;
            if retention_ms >= 0 {
                let bases = self.deletable(high_watermark, |seg, _| {
                    now_ms.saturating_sub(largest_timestamp(seg)) > retention_ms
                });
                self.retire_segments(disk, &bases, now_ms, DeletionReason::RetentionMs, &mut outcome)?;
            }
            let retention_bytes = self.config.retention_bytes;
            let size: u64 = self.segments.values().map(|s| s.size).sum();
            if retention_bytes >= 0 && size > retention_bytes as u64 {
                let mut diff = size - retention_bytes as u64;
                let bases = self.deletable(high_watermark, |seg, _| {
                    if diff >= seg.size {
                        diff -= seg.size;
                        true
                    } else {
                        false
                    }
                });
                self.retire_segments(disk, &bases, now_ms, DeletionReason::RetentionBytes, &mut outcome)?;
            }
        }
        let start = self.log_start_offset;
        let bases = self.deletable(high_watermark, |_, next| next.is_some_and(|n| n.base_offset <= start));
        self.retire_segments(disk, &bases, now_ms, DeletionReason::LogStartOffset, &mut outcome)?;
        outcome.log_start_offset = self.log_start_offset;
        Ok(outcome)
    }

    /// Kafka's `deletableSegments`: the oldest segments, in order, that satisfy `predicate(segment, next)`
    /// and lie wholly below the high watermark; never the active segment while it is empty.
    fn deletable(
        &self,
        high_watermark: i64,
        mut predicate: impl FnMut(&LogSegment, Option<&LogSegment>) -> bool,
    ) -> Vec<i64> {
        let segs: Vec<&LogSegment> = self.segments.values().collect();
        let mut out = Vec::new();
        for (i, seg) in segs.iter().enumerate() {
            let next = segs.get(i + 1).copied();
            let last_and_empty = next.is_none() && seg.size == 0;
            let upper = next.map_or(self.log_end_offset, |n| n.base_offset);
            if last_and_empty || upper > high_watermark || !predicate(seg, next) {
                break;
            }
            out.push(seg.base_offset);
        }
        out
    }

    /// Removes the segments from the log (rolling first if all would go), renames their files `.deleted`
    /// for removal after `file.delete.delay.ms`, and advances the log start offset.
    fn retire_segments(
        &mut self,
        disk: &mut dyn Disk,
        bases: &[i64],
        now_ms: i64,
        reason: DeletionReason,
        outcome: &mut RetentionOutcome,
    ) -> Result<(), LogError> {
        if bases.is_empty() {
            return Ok(());
        }
        if bases.len() == self.segments.len() {
            self.roll(disk, now_ms)?;
        }
        let due_ms = now_ms.saturating_add(self.config.file_delete_delay_ms);
        for base in bases {
            let Some(seg) = self.segments.remove(base) else {
                continue;
            };
            self.rename_to_deleted(disk, &seg, due_ms)?;
            self.dir_dirty = true;
            outcome.deleted.push((*base, reason));
        }
        let first = *self
            .segments
            .keys()
            .next()
            .expect("a log always keeps its active segment");
        self.advance_log_start_offset(disk, first)?;
        Ok(())
    }

    /// Renames a removed segment's files `.deleted`, to be removed at `due_ms` (Kafka's asynchronous
    /// `deleteSegmentFiles`); the directory sync is the caller's.
    pub(super) fn rename_to_deleted(
        &mut self,
        disk: &mut dyn Disk,
        seg: &LogSegment,
        due_ms: i64,
    ) -> Result<(), LogError> {
        for path in [&seg.log_path, &seg.index.file.path, &seg.time_index.file.path] {
            let deleted = format!("{path}{DELETED_FILE_SUFFIX}");
            match disk.rename(path, &deleted) {
                Ok(()) => self.pending_deletes.files.push((due_ms, deleted)),
                Err(DiskError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Removes the `.deleted` files whose delay has passed (Kafka's scheduled `deleteSegmentFiles`).
    pub fn delete_pending_files(&mut self, disk: &mut dyn Disk, now_ms: i64) -> Result<usize, LogError> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_deletes.files)
            .into_iter()
            .partition(|(due_ms, _)| *due_ms <= now_ms);
        self.pending_deletes.files = later;
        for (_, path) in &due {
            match disk.remove(path) {
                Ok(()) | Err(DiskError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !due.is_empty() {
            self.dir_dirty = true;
        }
        Ok(due.len())
    }

    /// Files renamed `.deleted` and not yet removed.
    pub fn pending_deletes(&self) -> Vec<String> {
        self.pending_deletes.files.iter().map(|(_, p)| p.clone()).collect()
    }

    /// Raises the log start offset to `new_start` (DeleteRecords through the leader, KIP-107, or a follower
    /// taking its leader's log start): Kafka's `maybeIncrementLogStartOffset`. `new_start` above the high
    /// watermark is `OffsetOutOfRange`. The segments wholly below go at the next retention pass. Returns
    /// whether the log start offset moved.
    pub fn maybe_increment_log_start_offset(
        &mut self,
        disk: &mut dyn Disk,
        new_start: i64,
        high_watermark: i64,
    ) -> Result<bool, LogError> {
        if new_start > high_watermark {
            return Err(LogError::OffsetOutOfRange {
                offset: new_start,
                log_start_offset: self.log_start_offset,
                log_end_offset: high_watermark,
            });
        }
        if new_start <= self.log_start_offset {
            return Ok(false);
        }
        self.advance_log_start_offset(disk, new_start)?;
        Ok(true)
    }

    fn advance_log_start_offset(&mut self, disk: &mut dyn Disk, new_start: i64) -> Result<(), LogError> {
        if new_start <= self.log_start_offset {
            return Ok(());
        }
        self.log_start_offset = new_start;
        self.epoch_cache.truncate_from_start(disk, new_start)?;
        Ok(())
    }
}

/// The segment's largest record timestamp; its creation time when no record carries one (Kafka falls back
/// to the file's last-modified time).
pub(super) fn largest_timestamp(seg: &LogSegment) -> i64 {
    if seg.max_timestamp_so_far >= 0 {
        seg.max_timestamp_so_far
    } else {
        seg.created_ms()
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
