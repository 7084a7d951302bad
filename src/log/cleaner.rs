//! Kafka's `LogCleaner` (`cleanup.policy=compact`): keeps, per key, only the record at the key's highest
//! offset, rewriting closed segments; offsets are preserved, so a cleaned log has gaps.
//!
//! - **Cleanable range** (Kafka's `LogCleanerManager.cleanableOffsets`): from the log start to the first
//!   uncleanable offset, the base of the first segment that is the active one, reaches above the high
//!   watermark, or (at or past the dirty section) is younger than `min.compaction.lag.ms` by its largest
//!   record timestamp. The dirty section starts at the cleaner checkpoint (`cleaner-offset-checkpoint`,
//!   reset to the log start when out of range). A log is cleaned once dirty bytes / (clean + dirty bytes)
//!   reach `min.cleanable.dirty.ratio`.
//! - **Offset map** (Kafka's `SkimpyOffsetMap`, here unbounded): key → highest offset over the dirty section.
//! - **Filter** (Kafka's `shouldRetainRecord`): a record stays if it has a key, its offset is at or above the
//!   map's entry for that key (keys absent from the map stay), and it has a value or is a tombstone whose
//!   batch's delete horizon has not passed. Delete horizons are KIP-534's (Kafka 3.1+): the first cleaning
//!   that keeps a tombstone stamps its batch with `now + delete.retention.ms` (attribute bit 6,
//!   baseTimestamp), and a later cleaning after that instant drops the tombstone. This is deterministic
//!   (simulated `now`), unlike the segment last-modified time older Kafka used. A batch keeps its base
//!   offset and lastOffsetDelta (Kafka's `overrideLastOffset`); a batch left with no records is dropped,
//!   except an idempotent producer's last batch (Kafka's `RETAIN_EMPTY`, KIP-98's retained sequence) and
//!   — our addition — the last batch of each cleaned group, kept as an empty header so the cleaned segment
//!   ends where the segments it replaces ended (the swap recovery below relies on it). Control batches stay.
//! - **Grouping** (Kafka's `groupSegmentsBySize`): consecutive segments whose sizes sum to at most
//!   `segment.bytes` and whose offsets fit one segment's relative offsets become one cleaned segment (index
//!   sizes are not a limit here: our indexes are sparse in memory). Empty segments are left alone.
//! - **Swap** (Kafka's `replaceSegments`, made power-loss safe): the cleaned segment is written as
//!   `<base>.log.cleaned` (+ `.index.cleaned`, `.timeindex.cleaned`), synced, renamed `.swap`, and the
//!   directory synced — the commit point; the old segments are renamed `.deleted` (removed after
//!   `file.delete.delay.ms`), the `.swap` files renamed to their final names, and the directory synced.
//!   Recovery (`recovery::complete_swaps`) deletes `.cleaned` leftovers and completes a `.swap`: it removes
//!   every old segment whose base lies in [swap base, swap's next offset) and renames the swap in. So a crash
//!   or a power loss at any point leaves the old segments or the new one, never a mix.
//!
//! Transactions do not exist here, so there are no aborted records or markers to handle.

use std::collections::{BTreeMap, BTreeSet};

use crate::log::disk::Disk;
use crate::log::log::Log;
use crate::log::retention::largest_timestamp;
use crate::log::segment::{scan, LogSegment, ScanEnd};
use crate::log::LogError;
use crate::protocol::batch::{decode_records, filtered_batch, BatchHeader, Record};

/// Per log dir: `topic partition offset` lines, everything below the offset is clean.
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// The cleaner's output before the swap (Kafka's `LogFileUtils.CLEANED_FILE_SUFFIX`).
pub const CLEANED_FILE_SUFFIX: &str = ".cleaned";
/// The cleaner's output once committed (Kafka's `SWAP_FILE_SUFFIX`).
pub const SWAP_FILE_SUFFIX: &str = ".swap";

/// Kafka's `LogToClean`: the cleanable part of a log and how dirty it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanableRange {
    /// Where the dirty section starts (the cleaner checkpoint, clamped to the log).
    pub first_dirty_offset: i64,
    /// The base of the first segment the cleaner may not touch.
    pub first_uncleanable_offset: i64,
    pub clean_bytes: u64,
    pub dirty_bytes: u64,
}

impl CleanableRange {
    /// dirty / (clean + dirty); 0 for an empty range.
    pub fn dirty_ratio(&self) -> f64 {
        let total = self.clean_bytes + self.dirty_bytes;
        if total == 0 {
            0.0
        } else {
            self.dirty_bytes as f64 / total as f64
        }
    }
}

/// What one cleaning of a log did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanOutcome {
    pub first_dirty_offset: i64,
    /// The new cleaner checkpoint: everything below it is clean.
    pub end_offset: i64,
    /// (base offset of each cleaned segment, base offsets of the segments it replaced).
    pub swapped: Vec<(i64, Vec<i64>)>,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    /// Tombstones whose delete horizon had passed (KIP-534), removed.
    pub tombstones_removed: u64,
    /// Batches holding a tombstone that this cleaning stamped with a delete horizon (KIP-534).
    pub delete_horizons_set: u64,
}

/// Key → highest offset in the dirty section (Kafka's `OffsetMap`).
type OffsetMap = BTreeMap<Vec<u8>, i64>;

fn corrupt(seg: &LogSegment, position: u64, reason: String) -> LogError {
    LogError::InvalidRecords {
        reason: format!("log cleaner: {} at byte {position}: {reason}", seg.log_path),
    }
}

/// Every batch of a segment, header and bytes.
fn read_batches(disk: &mut dyn Disk, seg: &LogSegment) -> Result<Vec<(BatchHeader, Vec<u8>)>, LogError> {
    let mut out = Vec::new();
    let end = scan(disk, &seg.log_path, 0, seg.size, &mut |_, h, bytes| {
        out.push((h.clone(), bytes.to_vec()));
        Ok(true)
    })?;
    match end {
        ScanEnd::Bad { position, reason } => Err(corrupt(seg, position, reason)),
        ScanEnd::End | ScanEnd::Stopped => Ok(out),
    }
}

fn records_of(seg: &LogSegment, h: &BatchHeader, bytes: &[u8]) -> Result<Vec<Record>, LogError> {
    decode_records(bytes).map_err(|e| corrupt(seg, h.base_offset as u64, e.to_string()))
}

impl Log {
    /// The cleanable range for a cleaner checkpoint, or `None` when the policy has no `compact` or nothing
    /// is dirty and cleanable.
    pub fn cleanable_range(&self, checkpoint: i64, high_watermark: i64, now_ms: i64) -> Option<CleanableRange> {
        if !self.config.cleanup_policy.compact {
            return None;
        }
        let first_dirty = match checkpoint < self.log_start_offset || checkpoint > self.log_end_offset {
            true => self.log_start_offset,
            false => checkpoint,
        };
        let segs: Vec<&LogSegment> = self.segments.values().collect();
        let (closed, active) = segs.split_at(segs.len() - 1);
        let mut first_uncleanable = active[0].base_offset;
        let lag_ms = self.config.min_compaction_lag_ms;
        for (i, seg) in closed.iter().enumerate() {
            let upper = segs[i + 1].base_offset;
            let too_young = upper > first_dirty && lag_ms > 0 && largest_timestamp(seg) > now_ms.saturating_sub(lag_ms);
            if upper > high_watermark || too_young {
                first_uncleanable = seg.base_offset;
                break;
            }
        }
        if first_dirty >= first_uncleanable {
            return None;
        }
        let (mut clean_bytes, mut dirty_bytes) = (0, 0);
        for (i, seg) in closed.iter().enumerate() {
            if seg.base_offset >= first_uncleanable {
                break;
            }
            match segs[i + 1].base_offset <= first_dirty {
                true => clean_bytes += seg.size,
                false => dirty_bytes += seg.size,
            }
        }
        Some(CleanableRange {
            first_dirty_offset: first_dirty,
            first_uncleanable_offset: first_uncleanable,
            clean_bytes,
            dirty_bytes,
        })
    }

    /// One cleaning (Kafka's `Cleaner.clean`) if the log is dirty enough; returns what it did. The caller
    /// keeps the cleaner checkpoint (`CleanOutcome::end_offset`).
    pub fn clean(
        &mut self,
        disk: &mut dyn Disk,
        checkpoint: i64,
        high_watermark: i64,
        now_ms: i64,
    ) -> Result<Option<CleanOutcome>, LogError> {
        let Some(range) = self.cleanable_range(checkpoint, high_watermark, now_ms) else {
            return Ok(None);
        };
        if range.dirty_bytes == 0 || range.dirty_ratio() < self.config.min_cleanable_dirty_ratio.get() {
            return Ok(None);
        }
        let map = self.build_offset_map(disk, range.first_dirty_offset, range.first_uncleanable_offset)?;
        let mut outcome = CleanOutcome {
            first_dirty_offset: range.first_dirty_offset,
            end_offset: range.first_uncleanable_offset,
            ..CleanOutcome::default()
        };
        for group in self.group_segments_by_size(range.first_uncleanable_offset) {
            self.clean_group(disk, &group, &map, now_ms, &mut outcome)?;
        }
        Ok(Some(outcome))
    }

    /// Key → highest offset over the records in [`from`, `to`) (Kafka's `buildOffsetMap`).
    fn build_offset_map(&self, disk: &mut dyn Disk, from: i64, to: i64) -> Result<OffsetMap, LogError> {
        let mut map = OffsetMap::new();
        let segs: Vec<&LogSegment> = self.segments.values().collect();
        for (i, seg) in segs.iter().enumerate() {
            let upper = segs.get(i + 1).map_or(i64::MAX, |n| n.base_offset);
            if seg.base_offset >= to {
                break;
            }
            if upper <= from {
                continue;
            }
            for (h, bytes) in read_batches(disk, seg)? {
                if h.is_control() || h.last_offset() < from {
                    continue;
                }
                for r in records_of(seg, &h, &bytes)? {
                    if let (Some(key), true) = (r.key, (from..to).contains(&r.offset)) {
                        map.insert(key, r.offset);
                    }
                }
            }
        }
        Ok(map)
    }

    /// Consecutive non-empty closed segments below `end`, grouped while their sizes sum to at most
    /// `segment.bytes` and their offsets fit one segment (Kafka's `groupSegmentsBySize`).
    fn group_segments_by_size(&self, end: i64) -> Vec<Vec<i64>> {
        let segs: Vec<&LogSegment> = self.segments.values().collect();
        let mut groups: Vec<Vec<i64>> = Vec::new();
        let mut current: Vec<i64> = Vec::new();
        let mut size = 0u64;
        for (i, seg) in segs.iter().enumerate() {
            let Some(next) = segs.get(i + 1) else { break };
            if seg.base_offset >= end {
                break;
            }
            let fits = current.first().is_some_and(|first| {
                size + seg.size <= self.config.segment_bytes && next.base_offset - 1 - first <= i32::MAX as i64
            });
            if (!fits || seg.size == 0) && !current.is_empty() {
                groups.push(std::mem::take(&mut current));
                size = 0;
            }
            if seg.size > 0 {
                current.push(seg.base_offset);
                size += seg.size;
            }
        }
        if !current.is_empty() {
            groups.push(current);
        }
        groups
    }

    /// Cleans one group of segments into one `.cleaned` segment and swaps it in (Kafka's `cleanSegments`).
    fn clean_group(
        &mut self,
        disk: &mut dyn Disk,
        group: &[i64],
        map: &OffsetMap,
        now_ms: i64,
        outcome: &mut CleanOutcome,
    ) -> Result<(), LogError> {
        let config = self.config.clone();
        let mut cleaned =
            LogSegment::create_with_suffix(disk, &self.dir, group[0], &config, now_ms, CLEANED_FILE_SUFFIX)?;
        // KIP-98: the batch holding each producer's last sequence stays, even emptied.
        let producers_last: BTreeSet<i64> = self
            .producer_state
            .producers()
            .filter_map(|(_, e)| e.batches.back().map(|b| b.last_offset))
            .collect();
        for (g, base) in group.iter().enumerate() {
            let seg = &self.segments[base];
            outcome.bytes_before += seg.size;
            let batches = read_batches(disk, seg)?;
            let mut out: Vec<u8> = Vec::new();
            let mut headers: Vec<(usize, BatchHeader)> = Vec::new();
            for (i, (h, bytes)) in batches.iter().enumerate() {
                let group_last = g + 1 == group.len() && i + 1 == batches.len();
                let retain_empty = group_last || (h.producer_id >= 0 && producers_last.contains(&h.last_offset()));
                let records = match h.is_control() {
                    true => None,
                    false => Some(records_of(seg, h, bytes)?),
                };
                let kept = filter_batch(h, bytes, records, map, now_ms, &config, retain_empty, outcome);
                if let Some(kept) = kept {
                    let header = BatchHeader::parse(&kept).expect("the cleaner builds whole batches");
                    headers.push((out.len(), header));
                    out.extend_from_slice(&kept);
                }
            }
            cleaned.append(disk, &out, &headers, config.index_interval_bytes)?;
        }
        cleaned.on_become_inactive(disk)?;
        cleaned.flush(disk)?;
        outcome.bytes_after += cleaned.size;
        self.swap_segments(disk, cleaned, group, now_ms)?;
        outcome.swapped.push((group[0], group.to_vec()));
        Ok(())
    }

    /// Replaces `old` by `cleaned` (written and synced as `.cleaned`): rename to `.swap`, sync the directory
    /// (the commit point), old segments renamed `.deleted`, `.swap` renamed to the final names, sync again.
    fn swap_segments(
        &mut self,
        disk: &mut dyn Disk,
        mut cleaned: LogSegment,
        old: &[i64],
        now_ms: i64,
    ) -> Result<(), LogError> {
        cleaned.change_file_suffixes(disk, CLEANED_FILE_SUFFIX, SWAP_FILE_SUFFIX)?;
        disk.sync_dir(&self.dir)?;
        let due_ms = now_ms.saturating_add(self.config.file_delete_delay_ms);
        for base in old {
            let seg = self.segments.remove(base).expect("grouped segments exist");
            self.rename_to_deleted(disk, &seg, due_ms)?;
        }
        cleaned.change_file_suffixes(disk, SWAP_FILE_SUFFIX, "")?;
        disk.sync_dir(&self.dir)?;
        self.segments.insert(cleaned.base_offset, cleaned);
        Ok(())
    }
}

/// Kafka's `MemoryRecords.filterTo` with the cleaner's `shouldRetainRecord`: the batch's bytes unchanged
/// when everything stays and no delete horizon is due to be set, a rebuilt batch when some records go,
/// `None` when none stay (unless `retain_empty`).
#[allow(clippy::too_many_arguments)]
fn filter_batch(
    h: &BatchHeader,
    bytes: &[u8],
    records: Option<Vec<Record>>,
    map: &OffsetMap,
    now_ms: i64,
    config: &crate::log::LogConfig,
    retain_empty: bool,
    outcome: &mut CleanOutcome,
) -> Option<Vec<u8>> {
    let Some(records) = records else {
        return Some(bytes.to_vec()); // a control batch
    };
    let horizon = h.delete_horizon_ms();
    let total = records.len();
    let mut kept = Vec::with_capacity(total);
    for r in records {
        let latest = r
            .key
            .as_ref()
            .is_some_and(|k| r.offset >= map.get(k).copied().unwrap_or(-1));
        let value_kept = r.value.is_some() || horizon.is_none_or(|hz| now_ms < hz);
        if latest && value_kept {
            kept.push(r);
        } else {
            outcome.records_removed += 1;
            if latest && r.value.is_none() {
                outcome.tombstones_removed += 1;
            }
        }
    }
    let has_tombstone = kept.iter().any(|r| r.value.is_none());
    let set_horizon = has_tombstone && horizon.is_none();
    if kept.len() == total && !set_horizon {
        return Some(bytes.to_vec());
    }
    if kept.is_empty() && !retain_empty {
        return None;
    }
    let new_horizon = match set_horizon {
        true => {
            outcome.delete_horizons_set += 1;
            Some(now_ms.saturating_add(config.delete_retention_ms))
        }
        false => horizon,
    };
    Some(filtered_batch(h, &kept, new_horizon))
}

#[cfg(test)]
#[path = "cleaner_tests.rs"]
mod tests;
