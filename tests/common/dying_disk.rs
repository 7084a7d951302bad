//! A disk whose process dies at a chosen operation (`#[path = "common/dying_disk.rs"] mod dying_disk;`):
//! crash-point tests run an operation once per disk call index, then crash or cut power and recover.

use std::time::Duration;

use gregor::log::disk::{Disk, DiskError, DiskResult};
use gregor::sim::disk::SimDisk;

/// A disk whose process dies after `ops_left` more mutating calls: every later one fails with `EIO` and
/// has no effect (reads still work: they change nothing). `ops_done` counts the calls that went through.
pub struct DyingDisk<'a> {
    pub inner: &'a mut SimDisk,
    pub ops_left: u32,
    pub ops_done: u32,
}

impl<'a> DyingDisk<'a> {
    pub fn new(inner: &'a mut SimDisk, ops_left: u32) -> Self {
        Self {
            inner,
            ops_left,
            ops_done: 0,
        }
    }

    fn tick(&mut self, path: &str) -> DiskResult<()> {
        if self.ops_left == 0 {
            return Err(DiskError::Io { path: path.to_string() });
        }
        self.ops_left -= 1;
        self.ops_done += 1;
        Ok(())
    }
}

impl Disk for DyingDisk<'_> {
    fn create_dir(&mut self, dir: &str) -> DiskResult<()> {
        self.tick(dir)?;
        self.inner.create_dir(dir)
    }
    fn create(&mut self, path: &str) -> DiskResult<()> {
        self.tick(path)?;
        self.inner.create(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.inner.exists(path)
    }
    fn len(&mut self, path: &str) -> DiskResult<u64> {
        self.inner.len(path)
    }
    fn read_at(&mut self, path: &str, offset: u64, len: usize) -> DiskResult<Vec<u8>> {
        self.inner.read_at(path, offset, len)
    }
    fn write_at(&mut self, path: &str, offset: u64, data: &[u8]) -> DiskResult<()> {
        self.tick(path)?;
        self.inner.write_at(path, offset, data)
    }
    fn append(&mut self, path: &str, data: &[u8]) -> DiskResult<u64> {
        self.tick(path)?;
        self.inner.append(path, data)
    }
    fn truncate(&mut self, path: &str, len: u64) -> DiskResult<()> {
        self.tick(path)?;
        self.inner.truncate(path, len)
    }
    fn sync(&mut self, path: &str) -> DiskResult<()> {
        self.tick(path)?;
        self.inner.sync(path)
    }
    fn rename(&mut self, from: &str, to: &str) -> DiskResult<()> {
        self.tick(from)?;
        self.inner.rename(from, to)
    }
    fn remove(&mut self, path: &str) -> DiskResult<()> {
        self.tick(path)?;
        self.inner.remove(path)
    }
    fn list(&mut self, dir: &str) -> DiskResult<Vec<String>> {
        self.inner.list(dir)
    }
    fn sync_dir(&mut self, dir: &str) -> DiskResult<()> {
        self.tick(dir)?;
        self.inner.sync_dir(dir)
    }
    fn take_elapsed(&mut self) -> Duration {
        self.inner.take_elapsed()
    }
}

/// Every record `tp`'s log serves from its start to its end, read batch by batch as a fetch would, after a
/// crash point's recovery.
pub fn served_records(
    disk: &mut dyn gregor::log::disk::Disk,
    mgr: &mut gregor::log::LogManager,
    tp: &gregor::types::TopicPartition,
) -> Vec<gregor::protocol::batch::Record> {
    use gregor::protocol::batch::{batches, decode_records};
    let log = mgr.get_mut(tp).expect("log");
    let (mut at, leo) = (log.log_start_offset(), log.log_end_offset());
    let mut out = Vec::new();
    while at < leo {
        let data = log.read(disk, at, 4_096, None, true).expect("read");
        let mut next = at;
        for item in batches(&data.records) {
            let (h, bytes) = item.expect("whole batch");
            out.extend(
                decode_records(bytes)
                    .expect("valid batch")
                    .into_iter()
                    .filter(|r| r.offset >= at),
            );
            next = next.max(h.next_offset());
        }
        assert!(next > at, "no progress reading at {at} (leo {leo})");
        at = next;
    }
    out
}
