//! Kafka's `TimeIndex` (`.timeindex`, 12-byte entries: timestamp i64, relative offset i32): the largest
//! timestamp seen so far at index-interval points, for ListOffsets by timestamp and time retention.

use crate::log::disk::{Disk, DiskResult};
use crate::log::index::{IndexEntry, IndexFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub relative_offset: i32,
}

impl IndexEntry for TimestampOffset {
    const SIZE: usize = 12;

    fn encode(&self) -> Vec<u8> {
        let mut out = self.timestamp.to_be_bytes().to_vec();
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Self {
        Self {
            timestamp: i64::from_be_bytes(bytes[0..8].try_into().expect("8 bytes")),
            relative_offset: i32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TimeIndex {
    pub base_offset: i64,
    pub file: IndexFile<TimestampOffset>,
}

impl TimeIndex {
    /// Timestamps strictly increase, offsets never decrease and stay relative.
    pub fn is_sane(&self) -> bool {
        self.file
            .entries
            .windows(2)
            .all(|w| w[0].timestamp < w[1].timestamp && w[0].relative_offset <= w[1].relative_offset)
            && self.file.entries.iter().all(|e| e.relative_offset >= 0)
    }

    /// Appends (timestamp, offset) if the timestamp is newer than the last entry (Kafka's `maybeAppend`);
    /// `skip_full_check` lets the final entry of a rolling segment in.
    pub fn maybe_append(
        &mut self,
        disk: &mut dyn Disk,
        timestamp: i64,
        offset: i64,
        skip_full_check: bool,
    ) -> DiskResult<()> {
        if self.file.last().is_some_and(|l| timestamp <= l.timestamp) || timestamp < 0 {
            return Ok(());
        }
        if self.file.is_full() {
            if !skip_full_check {
                return Ok(());
            }
            let max_bytes = ((self.file.entries.len() + 1) * TimestampOffset::SIZE) as u64;
            self.file.preallocate(disk, max_bytes)?;
        }
        let relative_offset = i32::try_from(offset - self.base_offset)
            .unwrap_or_else(|_| panic!("offset {offset} not relative to base {}", self.base_offset));
        self.file.append(
            disk,
            TimestampOffset {
                timestamp,
                relative_offset,
            },
        )
    }

    /// Drops entries for offsets at or after `offset`.
    pub fn truncate_to(&mut self, disk: &mut dyn Disk, offset: i64, max_bytes: u64) -> DiskResult<()> {
        let keep = self
            .file
            .entries
            .partition_point(|e| self.base_offset + (e.relative_offset as i64) < offset);
        self.file.truncate_entries(disk, keep, max_bytes)
    }

    /// The last entry as (timestamp, absolute offset).
    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.file
            .last()
            .map(|e| (e.timestamp, self.base_offset + e.relative_offset as i64))
    }

    /// The first entry with timestamp ≥ `timestamp`, as (timestamp, absolute offset).
    pub fn lookup(&self, timestamp: i64) -> Option<(i64, i64)> {
        let entries = &self.file.entries;
        let idx = entries.partition_point(|e| e.timestamp < timestamp);
        entries
            .get(idx)
            .map(|e| (e.timestamp, self.base_offset + e.relative_offset as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::mem_disk::MemDisk;

    #[test]
    fn time_index_keeps_only_newer_timestamps_and_truncates_by_offset() {
        let mut disk = MemDisk::new();
        let file = IndexFile::create(&mut disk, "t", 120).expect("create");
        let mut idx = TimeIndex { base_offset: 10, file };
        idx.maybe_append(&mut disk, 1_000, 12, false).expect("append");
        idx.maybe_append(&mut disk, 900, 13, false).expect("older: skipped");
        idx.maybe_append(&mut disk, 2_000, 20, false).expect("append");
        assert_eq!(idx.file.entries.len(), 2);
        assert!(idx.is_sane());
        assert_eq!(idx.lookup(1_500), Some((2_000, 20)));
        assert_eq!(idx.last_entry(), Some((2_000, 20)));
        idx.truncate_to(&mut disk, 20, 120).expect("truncate");
        assert_eq!(idx.last_entry(), Some((1_000, 12)));
        let loaded = IndexFile::<TimestampOffset>::load(&mut disk, "t", 120)
            .expect("load")
            .expect("some");
        assert_eq!(loaded.entries, idx.file.entries);
    }
}
