//! Kafka's `LogSegment`: one `.log` file of whole batches with its `.index` and `.timeindex`.
//!
//! The segment keeps its valid size and next offset in memory; reads go through the in-memory sparse
//! index, then scan batch headers from the indexed position.

use crate::log::config::LogConfig;
use crate::log::disk::{join, Disk, DiskError, DiskResult};
use crate::log::index::{IndexFile, OffsetIndex};
use crate::log::time_index::TimeIndex;
use crate::log::LogError;
use crate::protocol::batch::{batches, validate_batch, BatchHeader, LOG_OVERHEAD, RECORD_BATCH_OVERHEAD};

const SCAN_CHUNK_BYTES: usize = 64 * 1024;

/// Kafka's file name for a segment's files: the base offset in 20 digits.
pub fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// Sees each batch of a scan: position, header, bytes; `Ok(true)` goes on, `Ok(false)` stops, `Err` is bad.
pub type BatchVisitor<'a> = dyn FnMut(u64, &BatchHeader, &[u8]) -> Result<bool, String> + 'a;

/// How a scan over a segment's batches ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every batch up to the end was seen.
    End,
    /// The visitor stopped.
    Stopped,
    /// The batch at `position` is torn or corrupt.
    Bad { position: u64, reason: String },
}

/// Walks the whole batches of `path` in `[pos, end)`, reading in chunks. The visitor sees each batch's
/// position, header and bytes and returns `Ok(true)` to go on, `Ok(false)` to stop, `Err(reason)` if bad.
pub fn scan(
    disk: &mut dyn Disk,
    path: &str,
    mut pos: u64,
    end: u64,
    visit: &mut BatchVisitor<'_>,
) -> DiskResult<ScanEnd> {
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_pos = pos;
    loop {
        if pos >= end {
            return Ok(ScanEnd::End);
        }
        let bad = |position: u64, reason: String| Ok(ScanEnd::Bad { position, reason });
        if !fill(disk, path, &mut buf, &mut buf_pos, pos, end, LOG_OVERHEAD)? {
            return bad(
                pos,
                format!("partial batch header: {} bytes before the end at {end}", end - pos),
            );
        }
        let off = (pos - buf_pos) as usize;
        let length = i32::from_be_bytes(buf[off + 8..off + 12].try_into().expect("4 bytes"));
        if (length as i64) < (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i64 {
            return bad(pos, format!("batchLength {length} too small"));
        }
        let total = LOG_OVERHEAD + length as usize;
        if pos + total as u64 > end || !fill(disk, path, &mut buf, &mut buf_pos, pos, end, total)? {
            return bad(pos, format!("batch of {total} bytes passes the end at {end}"));
        }
        let off = (pos - buf_pos) as usize;
        let bytes = &buf[off..off + total];
        let header = match BatchHeader::parse(bytes) {
            Ok(h) => h,
            Err(e) => return bad(pos, e.to_string()),
        };
        match visit(pos, &header, bytes) {
            Ok(true) => pos += total as u64,
            Ok(false) => return Ok(ScanEnd::Stopped),
            Err(reason) => return bad(pos, reason),
        }
    }
}

/// Makes `buf` (file bytes from `buf_pos`) cover `[pos, pos + n)`; false if the file ends first.
fn fill(
    disk: &mut dyn Disk,
    path: &str,
    buf: &mut Vec<u8>,
    buf_pos: &mut u64,
    pos: u64,
    end: u64,
    n: usize,
) -> DiskResult<bool> {
    if *buf_pos <= pos && pos + n as u64 <= *buf_pos + buf.len() as u64 {
        return Ok(true);
    }
    if end - pos < n as u64 {
        return Ok(false);
    }
    let len = (n.max(SCAN_CHUNK_BYTES) as u64).min(end - pos) as usize;
    *buf = disk.read_at(path, pos, len)?;
    *buf_pos = pos;
    Ok(buf.len() >= n)
}

/// What recovering a segment found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentRecovery {
    pub truncated_bytes: u64,
    pub first_bad: Option<String>,
    /// (partition leader epoch, base offset) of every recovered batch with an epoch.
    pub epochs: Vec<(i32, i64)>,
}

#[derive(Debug, Clone)]
pub struct LogSegment {
    pub base_offset: i64,
    pub log_path: String,
    pub index: OffsetIndex,
    pub time_index: TimeIndex,
    /// Valid bytes of the `.log` file.
    pub size: u64,
    /// The offset after the last batch (the base offset while empty).
    pub next_offset: i64,
    pub max_timestamp_so_far: i64,
    pub offset_of_max_timestamp: i64,
    bytes_since_last_index_entry: u64,
    /// The first batch's max timestamp: `segment.ms` counts from it (Kafka's `rollingBasedTimestamp`).
    rolling_based_timestamp: Option<i64>,
    created_ms: i64,
    /// Changed since the last [`LogSegment::flush`].
    dirty: bool,
}

impl LogSegment {
    /// Creates empty files for a new (active) segment, replacing any left there.
    pub fn create(
        disk: &mut dyn Disk,
        dir: &str,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> DiskResult<Self> {
        Self::create_with_suffix(disk, dir, base_offset, config, now_ms, "")
    }

    /// [`LogSegment::create`] with `suffix` after each file name (`.cleaned` for the log cleaner's output).
    pub fn create_with_suffix(
        disk: &mut dyn Disk,
        dir: &str,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
        suffix: &str,
    ) -> DiskResult<Self> {
        let log_path = join(dir, &file_name(base_offset, &format!(".log{suffix}")));
        if disk.exists(&log_path) {
            disk.truncate(&log_path, 0)?;
        } else {
            disk.create(&log_path)?;
        }
        let index = IndexFile::create(
            disk,
            &join(dir, &file_name(base_offset, &format!(".index{suffix}"))),
            config.segment_index_bytes,
        )?;
        let time = IndexFile::create(
            disk,
            &join(dir, &file_name(base_offset, &format!(".timeindex{suffix}"))),
            config.segment_index_bytes,
        )?;
        Ok(Self::with_indexes(base_offset, log_path, index, time, now_ms))
    }

    /// Renames the three files from suffix `old` to `new` (Kafka's `changeFileSuffixes`); the directory sync
    /// is the caller's.
    pub fn change_file_suffixes(&mut self, disk: &mut dyn Disk, old: &str, new: &str) -> DiskResult<()> {
        for path in [
            &mut self.log_path,
            &mut self.index.file.path,
            &mut self.time_index.file.path,
        ] {
            let stem = path
                .strip_suffix(old)
                .unwrap_or_else(|| panic!("{path} does not end with {old:?}"));
            let renamed = format!("{stem}{new}");
            disk.rename(path, &renamed)?;
            *path = renamed;
        }
        Ok(())
    }

    fn with_indexes(
        base_offset: i64,
        log_path: String,
        index: IndexFile<crate::log::index::OffsetPosition>,
        time: IndexFile<crate::log::time_index::TimestampOffset>,
        now_ms: i64,
    ) -> Self {
        Self {
            base_offset,
            log_path,
            index: OffsetIndex {
                base_offset,
                file: index,
            },
            time_index: TimeIndex {
                base_offset,
                file: time,
            },
            size: 0,
            next_offset: base_offset,
            max_timestamp_so_far: -1,
            offset_of_max_timestamp: base_offset,
            bytes_since_last_index_entry: 0,
            rolling_based_timestamp: None,
            created_ms: now_ms,
            dirty: true,
        }
    }

    /// Opens an existing segment trusting its indexes: `None` if an index is missing or insane or the
    /// batches after the last index entry do not parse to the end (the caller recovers it then).
    pub fn open(
        disk: &mut dyn Disk,
        dir: &str,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> DiskResult<Option<Self>> {
        let log_path = join(dir, &file_name(base_offset, ".log"));
        let size = disk.len(&log_path)?;
        let max = config.segment_index_bytes;
        let Some(index) = IndexFile::load(disk, &join(dir, &file_name(base_offset, ".index")), max)? else {
            return Ok(None);
        };
        let Some(time) = IndexFile::load(disk, &join(dir, &file_name(base_offset, ".timeindex")), max)? else {
            return Ok(None);
        };
        let mut seg = Self::with_indexes(base_offset, log_path, index, time, now_ms);
        seg.size = size;
        if !seg.index.is_sane(size) || !seg.time_index.is_sane() {
            return Ok(None);
        }
        let (_, start) = seg.index.lookup(i64::MAX);
        let mut next = None;
        let end = scan(disk, &seg.log_path, start, size, &mut |_, h, _| {
            next = Some(h.next_offset());
            Ok(true)
        })?;
        if end != ScanEnd::End {
            return Ok(None);
        }
        seg.next_offset = next.unwrap_or(base_offset);
        if let Some((ts, offset)) = seg.time_index.last_entry() {
            (seg.max_timestamp_so_far, seg.offset_of_max_timestamp) = (ts, offset);
        }
        seg.rolling_based_timestamp = seg.read_first_max_timestamp(disk)?;
        seg.dirty = false;
        Ok(Some(seg))
    }

    /// Opens a segment with empty indexes, to be rebuilt by [`LogSegment::recover`].
    pub fn open_for_recovery(
        disk: &mut dyn Disk,
        dir: &str,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> DiskResult<Self> {
        let log_path = join(dir, &file_name(base_offset, ".log"));
        let max = config.segment_index_bytes;
        let index = IndexFile::create(disk, &join(dir, &file_name(base_offset, ".index")), max)?;
        let time = IndexFile::create(disk, &join(dir, &file_name(base_offset, ".timeindex")), max)?;
        let mut seg = Self::with_indexes(base_offset, log_path, index, time, now_ms);
        seg.size = disk.len(&seg.log_path)?;
        Ok(seg)
    }

    fn read_first_max_timestamp(&self, disk: &mut dyn Disk) -> DiskResult<Option<i64>> {
        if self.size == 0 {
            return Ok(None);
        }
        let head = disk.read_at(&self.log_path, 0, RECORD_BATCH_OVERHEAD)?;
        Ok(BatchHeader::parse(&head).ok().map(|h| h.max_timestamp))
    }

    /// Validates every batch from the start (length, magic, CRC-32C, offsets in order and relative to the
    /// base), rebuilds both indexes, and truncates the file at the first bad batch (Kafka's `recover`).
    pub fn recover(&mut self, disk: &mut dyn Disk, config: &LogConfig, min_offset: i64) -> DiskResult<SegmentRecovery> {
        let file_size = disk.len(&self.log_path)?;
        let mut fresh = Self::with_indexes(
            self.base_offset,
            self.log_path.clone(),
            self.index.file.clone(),
            self.time_index.file.clone(),
            self.created_ms,
        );
        fresh.index.file.entries.clear();
        fresh.time_index.file.entries.clear();
        let mut out = SegmentRecovery::default();
        let mut batches_seen: Vec<(u64, BatchHeader)> = Vec::new();
        let base = self.base_offset;
        let mut expected_min = min_offset.max(base);
        let end = scan(disk, &self.log_path, 0, file_size, &mut |pos, h, bytes| {
            validate_batch(bytes).map_err(|e| e.to_string())?;
            if h.base_offset < expected_min {
                return Err(format!("base offset {} below {expected_min}", h.base_offset));
            }
            if h.last_offset() - base > i32::MAX as i64 {
                return Err(format!("last offset {} not relative to base {base}", h.last_offset()));
            }
            expected_min = h.next_offset();
            batches_seen.push((pos, h.clone()));
            Ok(true)
        })?;
        // Rebuild the in-memory indexes first, then write them once.
        let mut offset_entries = Vec::new();
        let mut time_entries = Vec::new();
        for (pos, h) in &batches_seen {
            if let Some((e, t)) = fresh.note_batch(h, *pos, config.index_interval_bytes) {
                offset_entries.push(e);
                time_entries.extend(t);
            }
            if h.partition_leader_epoch >= 0 {
                out.epochs.push((h.partition_leader_epoch, h.base_offset));
            }
        }
        if let ScanEnd::Bad { position, reason } = end {
            out.truncated_bytes = file_size - position;
            out.first_bad = Some(format!("{} at byte {position}: {reason}", self.log_path));
            disk.truncate(&self.log_path, position)?;
            fresh.size = position;
        } else {
            fresh.size = file_size;
        }
        fresh.rolling_based_timestamp = batches_seen.first().map(|(_, h)| h.max_timestamp);
        fresh
            .index
            .file
            .rewrite(disk, offset_entries, config.segment_index_bytes, true)?;
        fresh
            .time_index
            .file
            .rewrite(disk, time_entries, config.segment_index_bytes, true)?;
        *self = fresh;
        Ok(out)
    }

    /// Updates size, next offset and max timestamp for a batch at `position`; returns the index entries it
    /// earns (Kafka's sparse indexing: one entry once more than `index.interval.bytes` were appended).
    fn note_batch(
        &mut self,
        h: &BatchHeader,
        position: u64,
        interval: u64,
    ) -> Option<(
        crate::log::index::OffsetPosition,
        Option<crate::log::time_index::TimestampOffset>,
    )> {
        if h.max_timestamp > self.max_timestamp_so_far {
            self.max_timestamp_so_far = h.max_timestamp;
            self.offset_of_max_timestamp = h.last_offset();
        }
        if self.rolling_based_timestamp.is_none() {
            self.rolling_based_timestamp = Some(h.max_timestamp);
        }
        let mut entry = None;
        if self.bytes_since_last_index_entry > interval {
            let e = crate::log::index::OffsetPosition {
                relative_offset: (h.last_offset() - self.base_offset) as i32,
                position: position as u32,
            };
            let newer = self
                .time_index
                .file
                .last()
                .is_none_or(|l| self.max_timestamp_so_far > l.timestamp);
            let t = (newer && self.max_timestamp_so_far >= 0).then(|| crate::log::time_index::TimestampOffset {
                timestamp: self.max_timestamp_so_far,
                relative_offset: (self.offset_of_max_timestamp - self.base_offset) as i32,
            });
            if let Some(t) = t {
                self.time_index.file.entries.push(t);
            }
            self.index.file.entries.push(e);
            entry = Some((e, t));
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += h.total_size() as u64;
        self.size = self.size.max(position + h.total_size() as u64);
        self.next_offset = h.next_offset();
        entry
    }

    /// Appends whole, validated batches (with their positions inside `records`) at the segment's end.
    pub fn append(
        &mut self,
        disk: &mut dyn Disk,
        records: &[u8],
        headers: &[(usize, BatchHeader)],
        interval: u64,
    ) -> DiskResult<()> {
        let start = self.size;
        self.dirty = true;
        disk.write_at(&self.log_path, start, records)?;
        for (pos, h) in headers {
            // A full index (one append of many batches) just gets sparser; the log rolls before the next append.
            let full = (self.index.file.is_full(), self.time_index.file.is_full());
            if let Some((e, t)) = self.note_batch(h, start + *pos as u64, interval) {
                self.index.file.entries.pop();
                if !full.0 {
                    self.index.file.append(disk, e)?;
                }
                if let Some(t) = t {
                    self.time_index.file.entries.pop();
                    if !full.1 {
                        self.time_index.file.append(disk, t)?;
                    }
                }
            }
        }
        self.size = start + records.len() as u64;
        Ok(())
    }

    /// Whether this (active) segment must roll before an append of `records_size` bytes whose largest
    /// timestamp is `max_timestamp` and last offset `last_offset` (Kafka's `shouldRoll`, no jitter).
    pub fn should_roll(
        &self,
        config: &LogConfig,
        records_size: u64,
        max_timestamp: i64,
        last_offset: i64,
        now_ms: i64,
    ) -> bool {
        let waited_ms = match self.rolling_based_timestamp {
            Some(t) if t >= 0 => max_timestamp.saturating_sub(t),
            _ => now_ms.saturating_sub(self.created_ms),
        };
        let full_by_size = self.size > config.segment_bytes.saturating_sub(records_size);
        let full_by_time = self.size > 0 && waited_ms > config.segment_ms;
        let offset_overflow = last_offset.saturating_sub(self.base_offset) > i32::MAX as i64;
        full_by_size || full_by_time || self.index.file.is_full() || self.time_index.file.is_full() || offset_overflow
    }

    /// The position and header of the first batch whose last offset is ≥ `offset` (Kafka's `translateOffset`).
    pub fn translate_offset(&self, disk: &mut dyn Disk, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let (_, start) = self.index.lookup(offset);
        let mut found = None;
        let end = scan(disk, &self.log_path, start, self.size, &mut |pos, h, _| {
            if h.last_offset() >= offset {
                found = Some((pos, h.clone()));
                return Ok(false);
            }
            Ok(true)
        })?;
        if let ScanEnd::Bad { position, reason } = end {
            return Err(LogError::InvalidRecords {
                reason: format!("{} at byte {position}: {reason}", self.log_path),
            });
        }
        Ok(found)
    }

    /// Whole batches from the one holding `start_offset`: up to `max_bytes` (at least one batch if
    /// `min_one_batch`), only batches that end below `max_offset`. `None` if no batch reaches `start_offset`.
    pub fn read(
        &self,
        disk: &mut dyn Disk,
        start_offset: i64,
        max_bytes: usize,
        max_offset: Option<i64>,
        min_one_batch: bool,
    ) -> Result<Option<Vec<u8>>, LogError> {
        let Some((pos, first)) = self.translate_offset(disk, start_offset)? else {
            return Ok(None);
        };
        let limit = max_offset.unwrap_or(i64::MAX);
        if first.last_offset() >= limit {
            return Ok(Some(Vec::new()));
        }
        let want = if min_one_batch {
            max_bytes.max(first.total_size())
        } else {
            max_bytes
        };
        let len = (want as u64).min(self.size - pos) as usize;
        let mut buf = disk.read_at(&self.log_path, pos, len)?;
        let mut cut = 0;
        for item in batches(&buf) {
            match item {
                Ok((h, bytes)) if h.last_offset() < limit => cut += bytes.len(),
                _ => break,
            }
        }
        buf.truncate(cut);
        Ok(Some(buf))
    }

    /// Drops the batch holding `offset` and everything after it; returns the bytes removed.
    pub fn truncate_to(&mut self, disk: &mut dyn Disk, offset: i64, config: &LogConfig) -> Result<u64, LogError> {
        let Some((pos, h)) = self.translate_offset(disk, offset)? else {
            return Ok(0);
        };
        let removed = self.size - pos;
        self.dirty = true;
        disk.truncate(&self.log_path, pos)?;
        self.size = pos;
        self.next_offset = h.base_offset.max(self.base_offset);
        let max = config.segment_index_bytes;
        self.index.truncate_to_position(disk, pos, max)?;
        self.time_index.truncate_to(disk, self.next_offset, max)?;
        (self.max_timestamp_so_far, self.offset_of_max_timestamp) =
            self.time_index.last_entry().unwrap_or((-1, self.base_offset));
        self.bytes_since_last_index_entry = 0;
        if self.size == 0 {
            self.rolling_based_timestamp = None;
        }
        Ok(removed)
    }

    /// The segment stops being active: a final time index entry, indexes trimmed (Kafka's
    /// `onBecomeInactiveSegment`).
    pub fn on_become_inactive(&mut self, disk: &mut dyn Disk) -> DiskResult<()> {
        self.dirty = true;
        if self.size > 0 {
            self.time_index
                .maybe_append(disk, self.max_timestamp_so_far, self.offset_of_max_timestamp, true)?;
        }
        self.index.file.trim(disk)?;
        self.time_index.file.trim(disk)
    }

    /// The segment becomes active again (after a truncation removed later segments).
    pub fn on_become_active(&mut self, disk: &mut dyn Disk, config: &LogConfig) -> DiskResult<()> {
        self.dirty = true;
        self.index.file.preallocate(disk, config.segment_index_bytes)?;
        self.time_index.file.preallocate(disk, config.segment_index_bytes)
    }

    /// fsync of the three files.
    pub fn flush(&mut self, disk: &mut dyn Disk) -> DiskResult<()> {
        disk.sync(&self.log_path)?;
        disk.sync(&self.index.file.path)?;
        disk.sync(&self.time_index.file.path)?;
        self.dirty = false;
        Ok(())
    }

    /// When this segment was created or opened (retention's fallback when no record carries a timestamp).
    pub fn created_ms(&self) -> i64 {
        self.created_ms
    }

    /// Whether anything changed since the last flush.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Removes the three files (the directory sync is the caller's).
    pub fn delete(&self, disk: &mut dyn Disk) -> DiskResult<()> {
        for p in [&self.log_path, &self.index.file.path, &self.time_index.file.path] {
            match disk.remove(p) {
                Ok(()) | Err(DiskError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
