//! The partition log: Kafka's `UnifiedLog` over `LocalLog`, here one struct over [`LogSegment`]s with a
//! [`LeaderEpochCache`]. Pure: IO only through `&mut dyn Disk`, time passed in.

use std::collections::BTreeMap;

use crate::log::config::LogConfig;
use crate::log::disk::{join, Disk};
use crate::log::epoch_cache::{LeaderEpochCache, LEADER_EPOCH_CHECKPOINT};
use crate::log::producer_state::{list_snapshots, ProducerStateManager};
use crate::log::segment::LogSegment;
use crate::log::LogError;
use crate::protocol::batch::{
    batches, set_base_offset, set_partition_leader_epoch, validate_batch, BatchHeader, TimestampType,
};
use crate::types::TopicPartition;

/// What an append wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub num_records: u32,
    pub valid_bytes: usize,
    /// The batch was a producer's retry of one already in the log: nothing was written, and the offsets
    /// are the original batch's (Kafka answers a duplicate so, with error NONE).
    pub duplicate: bool,
}

/// What a read returns: whole batches, and the log's bounds at that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchData {
    pub records: Vec<u8>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// One partition's log in one log dir.
#[derive(Debug)]
pub struct Log {
    pub(super) tp: TopicPartition,
    pub(super) dir: String,
    pub(super) topic_id: Option<String>,
    pub(super) config: LogConfig,
    pub(super) segments: BTreeMap<i64, LogSegment>,
    pub(super) log_start_offset: i64,
    pub(super) log_end_offset: i64,
    pub(super) recovery_point: i64,
    pub(super) epoch_cache: LeaderEpochCache,
    pub(super) unflushed_messages: u64,
    pub(super) last_flush_ms: i64,
    /// A segment file was created or removed since the directory was last synced.
    pub(super) dir_dirty: bool,
    /// The idempotent producers' last batches (Kafka's `ProducerStateManager`).
    pub(super) producer_state: ProducerStateManager,
    /// Segment files renamed `.deleted`, removed after `file.delete.delay.ms` (retention).
    pub(super) pending_deletes: crate::log::retention::PendingDeletes,
}

/// The batches of an append, validated: (position in the buffer, header).
type Batches = Vec<(usize, BatchHeader)>;

impl Log {
    /// A new, empty log in an existing directory (the manager creates the directory).
    pub(super) fn create(
        disk: &mut dyn Disk,
        tp: &TopicPartition,
        topic_id: Option<String>,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<Self, LogError> {
        let dir = tp.dir_name();
        let epoch_cache = LeaderEpochCache::load(disk, &join(&dir, LEADER_EPOCH_CHECKPOINT))?;
        let segment = LogSegment::create(disk, &dir, 0, &config, now_ms)?;
        disk.sync_dir(&dir)?;
        let mut segments = BTreeMap::new();
        segments.insert(0, segment);
        Ok(Self {
            tp: tp.clone(),
            dir,
            topic_id,
            config,
            segments,
            log_start_offset: 0,
            log_end_offset: 0,
            recovery_point: 0,
            epoch_cache,
            unflushed_messages: 0,
            last_flush_ms: now_ms,
            dir_dirty: false,
            producer_state: ProducerStateManager::new(),
            pending_deletes: Default::default(),
        })
    }

    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    pub fn topic_id(&self) -> Option<&str> {
        self.topic_id.as_deref()
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the configuration (a topic config change); applies from the next append.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    /// Every offset below this is on durable storage (Kafka's `recoveryPoint`).
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    pub fn leader_epoch_cache(&self) -> &LeaderEpochCache {
        &self.epoch_cache
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.epoch_cache.latest_epoch()
    }

    /// For OffsetsForLeaderEpoch (KIP-101/279): the largest epoch ≤ `epoch` and its end offset.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epoch_cache.end_offset_for(epoch, self.log_end_offset)
    }

    /// Records that `leader_epoch` starts at `start_offset`, as Kafka's `Partition.makeLeader` does with the
    /// log end offset when this replica becomes leader.
    pub fn maybe_assign_epoch_start_offset(
        &mut self,
        disk: &mut dyn Disk,
        leader_epoch: i32,
        start_offset: i64,
    ) -> Result<(), LogError> {
        self.epoch_cache.assign(disk, leader_epoch, start_offset)?;
        Ok(())
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    /// The log's directory (`<topic>-<partition>`).
    pub fn dir(&self) -> &str {
        &self.dir
    }

    fn active(&mut self) -> &mut LogSegment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    /// Splits `records` into whole batches and validates each (CRC-32C, size ≤ `max.message.bytes`).
    fn validate(&self, records: &[u8]) -> Result<Batches, LogError> {
        let mut out = Vec::new();
        let mut iter = batches(records);
        let mut pos = 0;
        for item in &mut iter {
            let (header, bytes) = item.map_err(|source| LogError::CorruptRecord { position: pos, source })?;
            if bytes.len() as u64 > self.config.max_message_bytes {
                return Err(LogError::RecordTooLarge {
                    size: bytes.len(),
                    max: self.config.max_message_bytes,
                });
            }
            validate_batch(bytes).map_err(|source| LogError::CorruptRecord { position: pos, source })?;
            out.push((pos, header));
            pos += bytes.len();
        }
        if iter.has_remainder() {
            return Err(LogError::InvalidRecords {
                reason: format!(
                    "{} trailing bytes after the last whole batch at byte {pos}",
                    records.len() - pos
                ),
            });
        }
        Ok(out)
    }

    /// Appends a producer's batches: validates them, checks idempotent batches against the producer state
    /// (a retry of a batch in the log returns its original offsets with `duplicate` set and writes nothing;
    /// a gap is `OutOfOrderSequence`, an old epoch `InvalidProducerEpoch`), assigns offsets from the log end
    /// offset and stamps `leader_epoch` (both outside the CRC, in place), records a new epoch's start, rolls
    /// first if due, then flushes per `flush.messages` / `flush.ms`.
    pub fn append_as_leader(
        &mut self,
        disk: &mut dyn Disk,
        records: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let mut headers = self.validate(records)?;
        for (_, h) in &headers {
            if h.records_count <= 0 || h.records_count as i64 != h.last_offset_delta as i64 + 1 {
                return Err(LogError::InvalidRecords {
                    reason: format!(
                        "recordsCount {} does not match lastOffsetDelta {}",
                        h.records_count, h.last_offset_delta
                    ),
                });
            }
        }
        if self.config.cleanup_policy.compact {
            self.check_keys_for_compaction(records, &headers)?;
        }
        if self.config.bounds_timestamps() {
            self.check_timestamps(records, &headers, now_ms)?;
        }
        if let Some((first_offset, last_offset)) = self.analyze_producer_state(headers.iter().map(|(_, h)| h))? {
            return Ok(AppendInfo {
                first_offset,
                last_offset,
                max_timestamp: -1,
                num_records: 0,
                valid_bytes: 0,
                duplicate: true,
            });
        }
        let mut next = self.log_end_offset;
        let log_append_time = self.config.message_timestamp_type == TimestampType::LogAppendTime;
        for (pos, h) in &mut headers {
            let total = h.total_size();
            if log_append_time {
                crate::log::timestamps::stamp_log_append_time(&mut records[*pos..*pos + total], now_ms);
                h.max_timestamp = now_ms;
                h.attributes |= 0x08;
            }
            set_base_offset(&mut records[*pos..*pos + total], next);
            set_partition_leader_epoch(&mut records[*pos..*pos + total], leader_epoch);
            h.base_offset = next;
            h.partition_leader_epoch = leader_epoch;
            next = h.next_offset();
        }
        if !headers.is_empty() && leader_epoch >= 0 && self.epoch_cache.latest_epoch().is_none_or(|e| leader_epoch > e)
        {
            self.epoch_cache.assign(disk, leader_epoch, self.log_end_offset)?;
        }
        self.append_validated(disk, records, &headers, now_ms)
    }

    /// Kafka's `LogValidator.validateKey`: a compacted topic refuses a record without a key
    /// (`INVALID_RECORD`, "Compacted topic cannot accept message without key").
    fn check_keys_for_compaction(&self, records: &[u8], headers: &Batches) -> Result<(), LogError> {
        for (pos, h) in headers {
            if h.is_control() {
                continue;
            }
            let batch = &records[*pos..*pos + h.total_size()];
            let decoded = crate::protocol::batch::decode_records(batch)
                .map_err(|source| LogError::CorruptRecord { position: *pos, source })?;
            if let Some(r) = decoded.iter().find(|r| r.key.is_none()) {
                return Err(LogError::InvalidRecords {
                    reason: format!(
                        "compacted topic {} cannot accept a record without a key (offset delta {})",
                        self.tp,
                        r.offset - h.base_offset
                    ),
                });
            }
        }
        Ok(())
    }

    /// KIP-937: every CreateTime record's timestamp within `message.timestamp.before/after.max.ms` of the
    /// leader's clock (Kafka's `LogValidator.validateTimestamp`, record by record).
    fn check_timestamps(&self, records: &[u8], headers: &Batches, now_ms: i64) -> Result<(), LogError> {
        for (pos, h) in headers {
            let batch = &records[*pos..*pos + h.total_size()];
            let decoded = crate::protocol::batch::decode_records(batch)
                .map_err(|source| LogError::CorruptRecord { position: *pos, source })?;
            for r in &decoded {
                self.config
                    .check_create_time(r.timestamp, now_ms)
                    .map_err(|reason| LogError::InvalidTimestamp {
                        offset_delta: r.offset - h.base_offset,
                        reason: format!("{}: {reason}", self.tp),
                    })?;
            }
        }
        Ok(())
    }

    /// Appends a leader's batches as they are (offsets and epochs kept); the first must start at or after
    /// the log end offset and offsets must increase (Kafka's `appendAsFollower`).
    pub fn append_as_follower(
        &mut self,
        disk: &mut dyn Disk,
        records: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let headers = self.validate(records)?;
        let mut expected = self.log_end_offset;
        for (_, h) in &headers {
            if h.base_offset < expected {
                return Err(LogError::UnexpectedAppendOffset {
                    offset: h.base_offset,
                    log_end_offset: expected,
                });
            }
            expected = h.next_offset();
        }
        for (_, h) in &headers {
            let epoch = h.partition_leader_epoch;
            if epoch >= 0 && self.epoch_cache.latest_epoch().is_none_or(|e| epoch > e) {
                self.epoch_cache.assign(disk, epoch, h.base_offset)?;
            }
        }
        self.append_validated(disk, records, &headers, now_ms)
    }

    fn append_validated(
        &mut self,
        disk: &mut dyn Disk,
        records: &[u8],
        headers: &Batches,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let (Some((_, first)), Some((_, last))) = (headers.first(), headers.last()) else {
            let leo = self.log_end_offset;
            return Ok(AppendInfo {
                first_offset: leo,
                last_offset: leo - 1,
                max_timestamp: -1,
                num_records: 0,
                valid_bytes: 0,
                duplicate: false,
            });
        };
        let (first_offset, last_offset) = (first.base_offset, last.last_offset());
        if last_offset.saturating_sub(first_offset) > i32::MAX as i64 {
            return Err(LogError::InvalidRecords {
                reason: format!("offsets {first_offset}..={last_offset} do not fit one segment's relative offsets"),
            });
        }
        let max_timestamp = headers.iter().map(|(_, h)| h.max_timestamp).max().unwrap_or(-1);
        let num_records: u32 = headers.iter().map(|(_, h)| h.records_count.max(0) as u32).sum();
        let config = self.config.clone();
        if self
            .active()
            .should_roll(&config, records.len() as u64, max_timestamp, last_offset, now_ms)
        {
            self.roll_at(disk, first_offset, now_ms)?;
        }
        self.active()
            .append(disk, records, headers, config.index_interval_bytes)?;
        self.log_end_offset = last_offset + 1;
        for (_, h) in headers {
            self.producer_state.replay(h);
        }
        self.unflushed_messages += num_records as u64;
        if self.unflushed_messages >= config.flush_messages {
            self.flush(disk, self.log_end_offset)?;
            self.last_flush_ms = now_ms;
        } else {
            self.flush_if_due(disk, now_ms)?;
        }
        Ok(AppendInfo {
            first_offset,
            last_offset,
            max_timestamp,
            num_records,
            valid_bytes: records.len(),
            duplicate: false,
        })
    }

    /// Flushes everything if `flush.ms` has passed since the last flush.
    pub fn flush_if_due(&mut self, disk: &mut dyn Disk, now_ms: i64) -> Result<(), LogError> {
        if now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms {
            self.flush(disk, self.log_end_offset)?;
            self.last_flush_ms = now_ms;
        }
        Ok(())
    }

    /// Reads whole batches from the one holding `start_offset`, within one segment as Kafka does.
    /// `max_offset` is an exclusive bound (the high watermark): a batch reaching it is left out.
    pub fn read(
        &mut self,
        disk: &mut dyn Disk,
        start_offset: i64,
        max_bytes: usize,
        max_offset: Option<i64>,
        min_one_batch: bool,
    ) -> Result<FetchData, LogError> {
        let mut data = FetchData {
            records: Vec::new(),
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
        };
        if start_offset < self.log_start_offset || start_offset > self.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset: start_offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        // Kafka's `LocalLog.read`: nothing to read at or past the log end or the max offset (a consumer's
        // high watermark), so no segment is touched.
        if start_offset == self.log_end_offset || max_offset.is_some_and(|m| start_offset >= m) {
            return Ok(data);
        }
        let floor = self
            .segments
            .range(..=start_offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        for seg in self.segments.range(floor..).map(|(_, s)| s) {
            if let Some(records) = seg.read(disk, start_offset, max_bytes, max_offset, min_one_batch)? {
                data.records = records;
                break;
            }
        }
        Ok(data)
    }

    /// Removes every batch at or after `offset` — whole batches, so the log end offset becomes the start of
    /// the batch holding `offset` — deleting later segments and trimming the indexes, the epoch cache and the
    /// producer state (snapshots above the new end are removed, the state rebuilt from the newest one left
    /// plus the log, as Kafka's `truncateTo` → `rebuildProducerState`). Below the log start offset the log is
    /// emptied and restarts at `offset`.
    pub fn truncate_to(&mut self, disk: &mut dyn Disk, offset: i64) -> Result<(), LogError> {
        if offset >= self.log_end_offset {
            return Ok(());
        }
        if offset < self.log_start_offset {
            return self.truncate_fully_and_start_at(disk, offset);
        }
        let doomed: Vec<i64> = self.segments.range(offset + 1..).map(|(b, _)| *b).collect();
        let had_later = !doomed.is_empty();
        self.delete_segments(disk, &doomed)?;
        let config = self.config.clone();
        let active = self.active();
        active.truncate_to(disk, offset, &config)?;
        if had_later {
            active.on_become_active(disk, &config)?;
        }
        self.log_end_offset = self.active().next_offset;
        // Unlike Kafka, a truncation that removes fsynced bytes or whole segments is made durable at once: a
        // power loss that undid it would resurrect stale bytes below the recovery point, or leave a later
        // segment behind a gap.
        let removed_flushed = self.log_end_offset < self.recovery_point;
        if removed_flushed || had_later {
            self.active().flush(disk)?;
            disk.sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        self.recovery_point = self.recovery_point.min(self.log_end_offset);
        let leo = self.log_end_offset;
        self.epoch_cache.truncate_from_end(disk, leo)?;
        self.reload_producer_state(disk)?;
        Ok(())
    }

    fn delete_segments(&mut self, disk: &mut dyn Disk, bases: &[i64]) -> Result<(), LogError> {
        for base in bases {
            if let Some(seg) = self.segments.remove(base) {
                seg.delete(disk)?;
                self.dir_dirty = true;
            }
        }
        Ok(())
    }

    /// Deletes every segment and starts empty at `offset` (Kafka's `truncateFullyAndStartAt`).
    pub fn truncate_fully_and_start_at(&mut self, disk: &mut dyn Disk, offset: i64) -> Result<(), LogError> {
        let all: Vec<i64> = self.segments.keys().copied().collect();
        self.delete_segments(disk, &all)?;
        let now_ms = self.last_flush_ms;
        let seg = LogSegment::create(disk, &self.dir, offset, &self.config, now_ms)?;
        self.segments.insert(offset, seg);
        self.dir_dirty = true;
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.recovery_point = self.recovery_point.min(offset);
        self.epoch_cache.clear(disk)?;
        // Every snapshot describes batches that are gone (Kafka's `truncateFullyAndStartAt`); the directory
        // sync that makes the segment deletions durable covers these removals too.
        for o in list_snapshots(disk, &self.dir)? {
            disk.remove(&join(&self.dir, &crate::log::producer_state::snapshot_file_name(o)))?;
        }
        self.producer_state = ProducerStateManager::starting_at(offset);
        Ok(())
    }

    /// Syncs the segments holding offsets in [recovery point, `up_to_offset`) and the directory if it changed,
    /// then advances the recovery point (Kafka's `flush(offset)`).
    pub fn flush(&mut self, disk: &mut dyn Disk, up_to_offset: i64) -> Result<(), LogError> {
        let up_to = up_to_offset.min(self.log_end_offset);
        // Every changed segment below `up_to`, including ones wholly below the recovery point: a rolled or
        // recovered segment's final size must be durable before a later segment is.
        for seg in self.segments.values_mut() {
            if seg.base_offset >= up_to.max(self.recovery_point + 1) {
                break;
            }
            if seg.is_dirty() {
                seg.flush(disk)?;
            }
        }
        if self.dir_dirty {
            disk.sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        if up_to > self.recovery_point {
            self.recovery_point = up_to;
        }
        if up_to >= self.log_end_offset {
            self.unflushed_messages = 0;
        }
        Ok(())
    }

    /// Rolls a new active segment at the log end offset; the old one is trimmed and flushed at once (Kafka
    /// schedules that flush; here it is synchronous). A no-op on an empty active segment.
    pub fn roll(&mut self, disk: &mut dyn Disk, now_ms: i64) -> Result<(), LogError> {
        let leo = self.log_end_offset;
        self.roll_at(disk, leo, now_ms)
    }

    fn roll_at(&mut self, disk: &mut dyn Disk, new_base: i64, now_ms: i64) -> Result<(), LogError> {
        let config = self.config.clone();
        let dir = self.dir.clone();
        let active = self.active();
        if active.size == 0 {
            if active.base_offset == new_base {
                return self.flush(disk, new_base);
            }
            let base = active.base_offset;
            self.delete_segments(disk, &[base])?;
        } else {
            active.on_become_inactive(disk)?;
        }
        let seg = LogSegment::create(disk, &dir, new_base, &config, now_ms)?;
        self.segments.insert(new_base, seg);
        self.dir_dirty = true;
        self.flush(disk, new_base)?;
        // After the flush, so a snapshot never describes batches that are not durable.
        self.take_producer_snapshot(disk, new_base)
    }

    /// Trims the active segment's indexes, syncs everything and snapshots the producer state at the log end
    /// offset (a clean shutdown: the next load replays nothing).
    pub(super) fn close(&mut self, disk: &mut dyn Disk) -> Result<(), LogError> {
        let leo = self.log_end_offset;
        self.flush(disk, leo)?;
        let active = self.active();
        active.index.file.trim(disk)?;
        active.time_index.file.trim(disk)?;
        active.flush(disk)?;
        self.take_producer_snapshot(disk, leo)
    }
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
