//! Sparse index files, kept in memory and mirrored to disk: Kafka's `OffsetIndex` (`.index`, 8-byte entries:
//! relative offset i32, position i32) and the shared file handling `TimeIndex` builds on.
//!
//! An index file is preallocated to `segment.index.bytes` while its segment is active (sparse: a truncate)
//! and trimmed to its entries when the segment rolls, as Kafka does. Entries never hold position 0 (the
//! first batch of a segment is never indexed), so an all-zero entry marks the end of a preallocated file.

use crate::log::disk::{Disk, DiskResult};

/// An index entry's fixed-size big-endian encoding.
pub trait IndexEntry: Copy + std::fmt::Debug {
    const SIZE: usize;
    fn encode(&self) -> Vec<u8>;
    fn decode(bytes: &[u8]) -> Self;
}

/// An index file's entries in memory, and its on-disk state.
#[derive(Debug, Clone)]
pub struct IndexFile<E: IndexEntry> {
    pub path: String,
    pub entries: Vec<E>,
    max_entries: usize,
    preallocated: bool,
}

const LOAD_CHUNK_BYTES: usize = 64 * 1024;

impl<E: IndexEntry> IndexFile<E> {
    /// Creates (or empties) the file and preallocates it to `max_bytes`.
    pub fn create(disk: &mut dyn Disk, path: &str, max_bytes: u64) -> DiskResult<Self> {
        if disk.exists(path) {
            disk.truncate(path, 0)?;
        } else {
            disk.create(path)?;
        }
        let mut index = Self {
            path: path.to_string(),
            entries: Vec::new(),
            max_entries: 0,
            preallocated: false,
        };
        index.preallocate(disk, max_bytes)?;
        Ok(index)
    }

    /// Reads the entries up to the first all-zero one; `None` if the file is missing or its size is not a
    /// whole number of entries (the caller rebuilds the index then).
    pub fn load(disk: &mut dyn Disk, path: &str, max_bytes: u64) -> DiskResult<Option<Self>> {
        if !disk.exists(path) {
            return Ok(None);
        }
        let len = disk.len(path)?;
        if len % E::SIZE as u64 != 0 {
            return Ok(None);
        }
        let mut entries = Vec::new();
        let mut pos = 0u64;
        'read: while pos < len {
            let chunk = disk.read_at(path, pos, LOAD_CHUNK_BYTES.min((len - pos) as usize))?;
            if chunk.len() < E::SIZE {
                return Ok(None);
            }
            for raw in chunk.chunks_exact(E::SIZE) {
                if raw.iter().all(|b| *b == 0) {
                    break 'read;
                }
                entries.push(E::decode(raw));
            }
            pos += (chunk.len() - chunk.len() % E::SIZE) as u64;
        }
        let max_entries = (max_bytes as usize / E::SIZE).max(entries.len());
        let preallocated = len > (entries.len() * E::SIZE) as u64;
        Ok(Some(Self {
            path: path.to_string(),
            entries,
            max_entries,
            preallocated,
        }))
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    pub fn last(&self) -> Option<E> {
        self.entries.last().copied()
    }

    /// Appends one entry to memory and to the file.
    pub fn append(&mut self, disk: &mut dyn Disk, entry: E) -> DiskResult<()> {
        assert!(
            !self.is_full(),
            "{}: append to a full index ({} entries)",
            self.path,
            self.entries.len()
        );
        let at = (self.entries.len() * E::SIZE) as u64;
        disk.write_at(&self.path, at, &entry.encode())?;
        self.entries.push(entry);
        Ok(())
    }

    /// Keeps the first `n` entries (in memory and on disk), preallocating again if `active`.
    pub fn truncate_entries(&mut self, disk: &mut dyn Disk, n: usize, max_bytes: u64) -> DiskResult<()> {
        self.entries.truncate(n);
        disk.truncate(&self.path, (n * E::SIZE) as u64)?;
        self.preallocated = false;
        self.preallocate(disk, max_bytes)
    }

    /// Replaces every entry (an index rebuilt by recovery).
    pub fn rewrite(&mut self, disk: &mut dyn Disk, entries: Vec<E>, max_bytes: u64, active: bool) -> DiskResult<()> {
        disk.truncate(&self.path, 0)?;
        let bytes: Vec<u8> = entries.iter().flat_map(IndexEntry::encode).collect();
        disk.write_at(&self.path, 0, &bytes)?;
        self.entries = entries;
        self.preallocated = false;
        if active {
            self.preallocate(disk, max_bytes)?;
        } else {
            self.max_entries = self.entries.len();
        }
        Ok(())
    }

    /// Extends the file sparsely to `max_bytes` (`segment.index.bytes`), rounded down to whole entries.
    pub fn preallocate(&mut self, disk: &mut dyn Disk, max_bytes: u64) -> DiskResult<()> {
        let max_entries = (max_bytes as usize / E::SIZE).max(self.entries.len());
        self.max_entries = max_entries;
        if !self.preallocated {
            disk.truncate(&self.path, (max_entries * E::SIZE) as u64)?;
            self.preallocated = true;
        }
        Ok(())
    }

    /// Trims the file to its entries (Kafka's `trimToValidSize` when a segment becomes inactive).
    pub fn trim(&mut self, disk: &mut dyn Disk) -> DiskResult<()> {
        if self.preallocated {
            disk.truncate(&self.path, (self.entries.len() * E::SIZE) as u64)?;
            self.preallocated = false;
        }
        self.max_entries = self.entries.len();
        Ok(())
    }
}

/// An offset index entry: the offset of a batch's last record, relative to the segment base, and the
/// byte position of that batch in the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetPosition {
    pub relative_offset: i32,
    pub position: u32,
}

impl IndexEntry for OffsetPosition {
    const SIZE: usize = 8;

    fn encode(&self) -> Vec<u8> {
        let mut out = self.relative_offset.to_be_bytes().to_vec();
        out.extend_from_slice(&self.position.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Self {
        Self {
            relative_offset: i32::from_be_bytes(bytes[0..4].try_into().expect("4 bytes")),
            position: u32::from_be_bytes(bytes[4..8].try_into().expect("4 bytes")),
        }
    }
}

/// Kafka's `OffsetIndex` of one segment.
#[derive(Debug, Clone)]
pub struct OffsetIndex {
    pub base_offset: i64,
    pub file: IndexFile<OffsetPosition>,
}

impl OffsetIndex {
    /// Whether the loaded entries are sane for a log of `log_size` bytes (Kafka's `sanityCheck`):
    /// offsets and positions strictly increase, positions fall inside the log.
    pub fn is_sane(&self, log_size: u64) -> bool {
        let mut prev: Option<OffsetPosition> = None;
        for e in &self.file.entries {
            let ok = e.relative_offset >= 0
                && e.position > 0
                && (e.position as u64) < log_size
                && prev.is_none_or(|p| p.relative_offset < e.relative_offset && p.position < e.position);
            if !ok {
                return false;
            }
            prev = Some(*e);
        }
        true
    }

    /// The largest entry at or below `offset`, as (absolute offset, position); (base, 0) if none.
    pub fn lookup(&self, offset: i64) -> (i64, u64) {
        let entries = &self.file.entries;
        let idx = entries.partition_point(|e| self.base_offset + e.relative_offset as i64 <= offset);
        match idx.checked_sub(1).map(|i| entries[i]) {
            Some(e) => (self.base_offset + e.relative_offset as i64, e.position as u64),
            None => (self.base_offset, 0),
        }
    }

    /// Indexes the batch ending at `last_offset` that starts at `position`.
    pub fn append(&mut self, disk: &mut dyn Disk, last_offset: i64, position: u64) -> DiskResult<()> {
        let relative_offset = i32::try_from(last_offset - self.base_offset)
            .unwrap_or_else(|_| panic!("offset {last_offset} not relative to base {}", self.base_offset));
        let position = u32::try_from(position).unwrap_or_else(|_| panic!("position {position} past 4 GiB"));
        if let Some(last) = self.file.last() {
            assert!(
                last.relative_offset < relative_offset && last.position < position,
                "index entry ({relative_offset}, {position}) after {last:?}"
            );
        }
        self.file.append(
            disk,
            OffsetPosition {
                relative_offset,
                position,
            },
        )
    }

    /// Drops the entries of batches at or after `position` (a truncated log).
    pub fn truncate_to_position(&mut self, disk: &mut dyn Disk, position: u64, max_bytes: u64) -> DiskResult<()> {
        let keep = self.file.entries.partition_point(|e| (e.position as u64) < position);
        self.file.truncate_entries(disk, keep, max_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::mem_disk::MemDisk;

    fn index(disk: &mut MemDisk) -> OffsetIndex {
        let file = IndexFile::create(disk, "i", 80).expect("create");
        OffsetIndex { base_offset: 100, file }
    }

    #[test]
    fn offset_index_is_preallocated_and_looks_up_the_floor_entry() {
        let mut disk = MemDisk::new();
        let mut idx = index(&mut disk);
        assert_eq!(disk.len("i"), Ok(80));
        assert_eq!(idx.lookup(150), (100, 0));
        idx.append(&mut disk, 110, 4_000).expect("append");
        idx.append(&mut disk, 120, 8_000).expect("append");
        assert_eq!(idx.lookup(109), (100, 0));
        assert_eq!(idx.lookup(110), (110, 4_000));
        assert_eq!(idx.lookup(119), (110, 4_000));
        assert_eq!(idx.lookup(500), (120, 8_000));
    }

    #[test]
    fn offset_index_loads_up_to_the_first_zero_entry_and_trims() {
        let mut disk = MemDisk::new();
        let mut idx = index(&mut disk);
        idx.append(&mut disk, 110, 4_000).expect("append");
        let loaded = IndexFile::<OffsetPosition>::load(&mut disk, "i", 80)
            .expect("load")
            .expect("some");
        assert_eq!(loaded.entries, idx.file.entries);
        idx.file.trim(&mut disk).expect("trim");
        assert_eq!(disk.len("i"), Ok(8));
        assert!(idx.file.is_full());
    }

    #[test]
    fn offset_index_truncation_drops_entries_at_or_after_the_position() {
        let mut disk = MemDisk::new();
        let mut idx = index(&mut disk);
        idx.append(&mut disk, 110, 4_000).expect("append");
        idx.append(&mut disk, 120, 8_000).expect("append");
        idx.truncate_to_position(&mut disk, 8_000, 80).expect("truncate");
        assert_eq!(idx.file.entries.len(), 1);
        let loaded = IndexFile::<OffsetPosition>::load(&mut disk, "i", 80)
            .expect("load")
            .expect("some");
        assert_eq!(loaded.entries.len(), 1);
        assert_eq!(disk.len("i"), Ok(80));
    }

    #[test]
    fn insane_offset_index_is_detected() {
        let mut disk = MemDisk::new();
        let mut idx = index(&mut disk);
        idx.append(&mut disk, 110, 4_000).expect("append");
        assert!(idx.is_sane(5_000));
        assert!(!idx.is_sane(4_000), "a position past the log is insane");
        disk.write_at(
            "i",
            8,
            &OffsetPosition {
                relative_offset: 5,
                position: 9,
            }
            .encode(),
        )
        .expect("write");
        let loaded = IndexFile::<OffsetPosition>::load(&mut disk, "i", 80)
            .expect("load")
            .expect("some");
        assert!(!OffsetIndex {
            base_offset: 100,
            file: loaded
        }
        .is_sane(100_000));
        disk.truncate("i", 13).expect("truncate");
        assert!(IndexFile::<OffsetPosition>::load(&mut disk, "i", 80)
            .expect("load")
            .is_none());
    }
}
