//! A tiny in-memory [`Disk`] for the log's unit tests: sparse files, no durability model.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::log::disk::{parent, Disk, DiskError, DiskResult};

#[derive(Debug, Default, Clone)]
struct File {
    data: Vec<u8>,
    len: u64,
}

#[derive(Debug, Default, Clone)]
pub struct MemDisk {
    files: BTreeMap<String, File>,
    dirs: BTreeSet<String>,
    pub syncs: Vec<String>,
}

impl MemDisk {
    pub fn new() -> Self {
        Self::default()
    }

    fn file(&mut self, path: &str) -> DiskResult<&mut File> {
        self.files
            .get_mut(path)
            .ok_or_else(|| DiskError::NotFound { path: path.to_string() })
    }

    fn check_parent(&self, path: &str) -> DiskResult<()> {
        let dir = parent(path);
        if dir.is_empty() || self.dirs.contains(dir) {
            Ok(())
        } else {
            Err(DiskError::NotFound { path: dir.to_string() })
        }
    }

    /// The bytes a file holds (test inspection).
    pub fn bytes(&self, path: &str) -> Vec<u8> {
        let f = &self.files[path];
        let mut out = f.data.clone();
        out.resize(f.len as usize, 0);
        out
    }
}

impl Disk for MemDisk {
    fn create_dir(&mut self, dir: &str) -> DiskResult<()> {
        self.check_parent(dir)?;
        if !self.dirs.insert(dir.to_string()) {
            return Err(DiskError::AlreadyExists { path: dir.to_string() });
        }
        Ok(())
    }

    fn create(&mut self, path: &str) -> DiskResult<()> {
        self.check_parent(path)?;
        if self.files.contains_key(path) {
            return Err(DiskError::AlreadyExists { path: path.to_string() });
        }
        self.files.insert(path.to_string(), File::default());
        Ok(())
    }

    fn exists(&self, path: &str) -> bool {
        self.files.contains_key(path) || self.dirs.contains(path)
    }

    fn len(&mut self, path: &str) -> DiskResult<u64> {
        Ok(self.file(path)?.len)
    }

    fn read_at(&mut self, path: &str, offset: u64, len: usize) -> DiskResult<Vec<u8>> {
        let f = self.file(path)?;
        let end = (offset.saturating_add(len as u64)).min(f.len);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut out = vec![0u8; (end - offset) as usize];
        let data_end = (f.data.len() as u64).min(end);
        if offset < data_end {
            out[..(data_end - offset) as usize].copy_from_slice(&f.data[offset as usize..data_end as usize]);
        }
        Ok(out)
    }

    fn write_at(&mut self, path: &str, offset: u64, data: &[u8]) -> DiskResult<()> {
        let f = self.file(path)?;
        let end = offset as usize + data.len();
        if f.data.len() < end {
            f.data.resize(end, 0);
        }
        f.data[offset as usize..end].copy_from_slice(data);
        f.len = f.len.max(end as u64);
        Ok(())
    }

    fn append(&mut self, path: &str, data: &[u8]) -> DiskResult<u64> {
        let at = self.file(path)?.len;
        self.write_at(path, at, data)?;
        Ok(at)
    }

    fn truncate(&mut self, path: &str, len: u64) -> DiskResult<()> {
        let f = self.file(path)?;
        f.len = len;
        f.data.truncate(len as usize);
        Ok(())
    }

    fn sync(&mut self, path: &str) -> DiskResult<()> {
        self.file(path)?;
        self.syncs.push(path.to_string());
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> DiskResult<()> {
        let f = self
            .files
            .remove(from)
            .ok_or_else(|| DiskError::NotFound { path: from.to_string() })?;
        self.files.insert(to.to_string(), f);
        Ok(())
    }

    fn remove(&mut self, path: &str) -> DiskResult<()> {
        if self.files.remove(path).is_some() || self.dirs.remove(path) {
            Ok(())
        } else {
            Err(DiskError::NotFound { path: path.to_string() })
        }
    }

    fn list(&mut self, dir: &str) -> DiskResult<Vec<String>> {
        let mut out = BTreeSet::new();
        for p in self.files.keys().chain(self.dirs.iter()) {
            if parent(p) == dir && p != dir {
                out.insert(p.rsplit('/').next().unwrap_or(p).to_string());
            }
        }
        Ok(out.into_iter().collect())
    }

    fn sync_dir(&mut self, dir: &str) -> DiskResult<()> {
        self.syncs.push(format!("{dir}/"));
        Ok(())
    }

    fn take_elapsed(&mut self) -> Duration {
        Duration::ZERO
    }
}
