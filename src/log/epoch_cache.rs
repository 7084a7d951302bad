//! Kafka's `LeaderEpochFileCache`: the start offset of every leader epoch in this log (KIP-101, KIP-279),
//! persisted as `leader-epoch-checkpoint` (`0`, count, `epoch start_offset` lines).

use crate::log::checkpoint::{read_entries, write_entries};
use crate::log::disk::Disk;
use crate::log::LogError;

pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

#[derive(Debug, Clone)]
pub struct LeaderEpochCache {
    path: String,
    entries: Vec<EpochEntry>,
    /// Entries assigned in memory and not yet written.
    dirty: bool,
}

impl LeaderEpochCache {
    /// Reads the checkpoint at `path` (absent: empty). A malformed file is an error naming its line.
    pub fn load(disk: &mut dyn Disk, path: &str) -> Result<Self, LogError> {
        let mut entries: Vec<EpochEntry> = Vec::new();
        for (n, line) in read_entries(disk, path)?.unwrap_or_default() {
            let bad = |reason: String| LogError::MalformedFile {
                file: path.to_string(),
                line: n,
                reason,
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [epoch, start] = fields[..] else {
                return Err(bad(format!("expected `epoch start_offset`, got {line:?}")));
            };
            let epoch: i32 = epoch.parse().map_err(|_| bad(format!("bad epoch {epoch:?}")))?;
            let start_offset: i64 = start.parse().map_err(|_| bad(format!("bad start offset {start:?}")))?;
            if entries
                .last()
                .is_some_and(|l| l.epoch >= epoch || l.start_offset > start_offset)
                || epoch < 0
            {
                return Err(bad(format!("entry ({epoch}, {start_offset}) out of order")));
            }
            entries.push(EpochEntry { epoch, start_offset });
        }
        Ok(Self {
            path: path.to_string(),
            entries,
            dirty: false,
        })
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_entry(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.latest_entry().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset` and persists the file, as Kafka's `assign`: a no-op
    /// unless the epoch is new or starts earlier; entries with an epoch ≥ it or a start ≥ its start go first.
    pub fn assign(&mut self, disk: &mut dyn Disk, epoch: i32, start_offset: i64) -> Result<bool, LogError> {
        let changed = self.assign_in_memory(epoch, start_offset);
        if changed {
            self.persist(disk)?;
        }
        Ok(changed)
    }

    /// [`LeaderEpochCache::assign`] without writing the file (recovery writes once at the end).
    pub fn assign_in_memory(&mut self, epoch: i32, start_offset: i64) -> bool {
        assert!(
            epoch >= 0 && start_offset >= 0,
            "invalid epoch entry ({epoch}, {start_offset})"
        );
        let needed = self
            .latest_entry()
            .is_none_or(|l| epoch != l.epoch || start_offset < l.start_offset);
        if !needed {
            return false;
        }
        while self
            .entries
            .last()
            .is_some_and(|l| l.epoch >= epoch || l.start_offset >= start_offset)
        {
            self.entries.pop();
        }
        self.entries.push(EpochEntry { epoch, start_offset });
        self.dirty = true;
        true
    }

    /// Removes the entries starting at or after `end_offset` (a truncated log).
    pub fn truncate_from_end(&mut self, disk: &mut dyn Disk, end_offset: i64) -> Result<(), LogError> {
        let keep = self.entries.partition_point(|e| e.start_offset < end_offset);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.persist(disk)?;
        }
        Ok(())
    }

    /// Removes entries wholly before `start_offset`; the last of them is kept, moved to `start_offset`.
    pub fn truncate_from_start(&mut self, disk: &mut dyn Disk, start_offset: i64) -> Result<(), LogError> {
        let removed = self.entries.partition_point(|e| e.start_offset <= start_offset);
        if removed == 0 || (removed == 1 && self.entries[0].start_offset == start_offset) {
            return Ok(());
        }
        let epoch = self.entries[removed - 1].epoch;
        self.entries.drain(..removed);
        self.entries.insert(0, EpochEntry { epoch, start_offset });
        self.persist(disk)
    }

    /// Forgets every epoch.
    pub fn clear(&mut self, disk: &mut dyn Disk) -> Result<(), LogError> {
        self.entries.clear();
        self.persist(disk)
    }

    /// Kafka's `endOffsetFor`: the largest epoch ≤ `requested` and the offset where the epoch after it
    /// starts (or `log_end_offset` for the latest epoch); `None` (UNDEFINED) if `requested` is newer than
    /// every known epoch or nothing is known.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        if requested < 0 {
            return None;
        }
        if self.latest_epoch() == Some(requested) {
            return Some((requested, log_end_offset));
        }
        let higher = self.entries.iter().find(|e| e.epoch > requested)?;
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            Some(floor) => Some((floor.epoch, higher.start_offset)),
            None => Some((requested, higher.start_offset)),
        }
    }

    /// Writes the checkpoint file crash-safely.
    pub fn persist(&mut self, disk: &mut dyn Disk) -> Result<(), LogError> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{} {}", e.epoch, e.start_offset))
            .collect();
        write_entries(disk, &self.path, &lines)?;
        self.dirty = false;
        Ok(())
    }

    /// After loading a log: drops entries outside [log start, log end) and writes the file if anything
    /// changed in memory.
    pub fn persist_if_needed(
        &mut self,
        disk: &mut dyn Disk,
        log_start_offset: i64,
        log_end_offset: i64,
    ) -> Result<(), LogError> {
        self.truncate_from_end(disk, log_end_offset)?;
        self.truncate_from_start(disk, log_start_offset)?;
        if self.dirty {
            self.persist(disk)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::mem_disk::MemDisk;

    fn cache(disk: &mut MemDisk, entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::load(disk, "lec").expect("load");
        for (e, o) in entries {
            c.assign(disk, *e, *o).expect("assign");
        }
        c
    }

    #[test]
    fn assign_adds_new_epochs_and_is_persisted() {
        let mut disk = MemDisk::new();
        let c = cache(&mut disk, &[(0, 0), (0, 5), (2, 10)]);
        let expected = [
            EpochEntry {
                epoch: 0,
                start_offset: 0,
            },
            EpochEntry {
                epoch: 2,
                start_offset: 10,
            },
        ];
        assert_eq!(c.entries(), &expected[..]);
        assert_eq!(disk.bytes("lec"), b"0\n2\n0 0\n2 10\n".to_vec());
        assert_eq!(
            LeaderEpochCache::load(&mut disk, "lec").expect("reload").entries(),
            &expected[..]
        );
    }

    #[test]
    fn assign_of_an_older_start_removes_conflicting_entries() {
        let mut disk = MemDisk::new();
        let mut c = cache(&mut disk, &[(0, 0), (2, 10), (3, 20)]);
        c.assign(&mut disk, 3, 15).expect("assign");
        assert_eq!(
            c.entries()
                .iter()
                .map(|e| (e.epoch, e.start_offset))
                .collect::<Vec<_>>(),
            vec![(0, 0), (2, 10), (3, 15)]
        );
    }

    #[test]
    fn end_offset_for_epoch_follows_kip_101() {
        let mut disk = MemDisk::new();
        let c = cache(&mut disk, &[(1, 0), (3, 10), (5, 20)]);
        assert_eq!(c.end_offset_for(5, 30), Some((5, 30)));
        assert_eq!(c.end_offset_for(3, 30), Some((3, 20)));
        assert_eq!(c.end_offset_for(4, 30), Some((3, 20)));
        assert_eq!(c.end_offset_for(0, 30), Some((0, 0)));
        assert_eq!(c.end_offset_for(6, 30), None);
        assert_eq!(c.end_offset_for(-1, 30), None);
    }

    #[test]
    fn truncation_from_end_and_start() {
        let mut disk = MemDisk::new();
        let mut c = cache(&mut disk, &[(1, 0), (3, 10), (5, 20)]);
        c.truncate_from_end(&mut disk, 20).expect("truncate");
        assert_eq!(c.latest_epoch(), Some(3));
        c.truncate_from_start(&mut disk, 12).expect("truncate");
        assert_eq!(
            c.entries(),
            &[EpochEntry {
                epoch: 3,
                start_offset: 12
            }]
        );
        assert_eq!(
            LeaderEpochCache::load(&mut disk, "lec").expect("reload").entries(),
            c.entries()
        );
    }

    #[test]
    fn malformed_epoch_checkpoint_is_an_error_naming_the_line() {
        let mut disk = MemDisk::new();
        disk.create("lec").expect("create");
        disk.write_at("lec", 0, b"0\n2\n3 10\n2 20\n").expect("write");
        assert!(matches!(
            LeaderEpochCache::load(&mut disk, "lec"),
            Err(LogError::MalformedFile { line: 4, .. })
        ));
    }
}
