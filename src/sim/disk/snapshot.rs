//! Copies of a simulated disk for `gregor replay --dump-disks`: the whole disk at the end of a run, or as it
//! was at a chosen simulated time. A copy shares its pages with the original (copy on write), so it costs
//! no data copy, and taking it draws nothing from any random stream: a dump never changes the run.
//!
//! A copy armed for time T ([`SimDisk::snapshot_at`]) is taken at the first access to the disk at or after
//! T (every access goes through `SimDisk::lock`), before that access: nothing changed the disk between T
//! and then, so the copy holds exactly what the disk held at T. A disk nobody touched after T is copied when
//! the run ends ([`SimDisk::disarm_snapshot`]).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use super::{Entry, SimDisk, SimDiskState, ROOT};
use crate::log::disk::join;
use crate::rt::Instant;

/// A copy to take at simulated time `at`.
pub(super) struct Armed {
    at: Instant,
    taken: Option<SimDisk>,
}

/// One file as the running system sees it, and how much of that the disk holds durably.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    pub path: String,
    /// The length a process reads (the page cache included).
    pub len: u64,
    /// The length at the file's last sync.
    pub durable_len: u64,
    /// Writes and length changes since the last sync (a power loss keeps only a prefix of them).
    pub pending_ops: usize,
    /// Whether the directory entry itself is durable (its directory was synced since it was created or
    /// renamed here); a power loss removes a file whose entry is not.
    pub durably_linked: bool,
}

impl SimDisk {
    /// A copy of the whole disk as it is now (current contents, pending changes, durable state, its random
    /// stream and config): a separate disk from then on.
    pub fn snapshot(&self) -> SimDisk {
        let state = self.lock();
        SimDisk {
            state: Arc::new(Mutex::new(state.copy())),
        }
    }

    /// Arms a copy of the disk as it will be at simulated time `at` (replacing any armed before).
    pub fn snapshot_at(&self, at: Instant) {
        self.lock().snapshot = Some(Armed { at, taken: None });
    }

    /// Ends an armed copy: the copy taken, if its time came (call it inside the simulation at the run's end,
    /// so a copy due now is taken first). `None` if the time has not come or nothing was armed.
    pub fn disarm_snapshot(&self) -> Option<SimDisk> {
        let mut state = self.lock();
        state.snapshot.take().and_then(|a| a.taken)
    }

    /// Every file with its current and durable length, sorted by path.
    pub fn file_states(&self) -> Vec<FileState> {
        let state = self.lock();
        let linked: BTreeSet<(String, u64)> = state.durable_file_paths().into_iter().collect();
        state
            .file_paths()
            .into_iter()
            .map(|(path, id)| {
                let file = state.file(id);
                FileState {
                    durably_linked: linked.contains(&(path.clone(), id)),
                    len: file.len(),
                    durable_len: file.durable_len(),
                    pending_ops: file.pending_ops(),
                    path,
                }
            })
            .collect()
    }
}

impl SimDiskState {
    /// Takes the armed copy if its time has come and it was not taken yet.
    pub(super) fn snapshot_if_due(&mut self) {
        let due = self
            .snapshot
            .as_ref()
            .is_some_and(|a| a.taken.is_none() && Instant::now() >= a.at);
        if !due {
            return;
        }
        let copy = SimDisk {
            state: Arc::new(Mutex::new(self.copy())),
        };
        if let Some(armed) = self.snapshot.as_mut() {
            armed.taken = Some(copy);
        }
    }

    fn copy(&self) -> SimDiskState {
        SimDiskState {
            node: self.node.clone(),
            config: self.config.clone(),
            rng: self.rng.clone(),
            dirs: self.dirs.clone(),
            files: self.files.clone(),
            next_id: self.next_id,
            used_bytes: self.used_bytes,
            elapsed: self.elapsed,
            snapshot: None,
        }
    }

    /// Every file path in the durable namespace (what a power loss would leave), with its inode, sorted.
    fn durable_file_paths(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::from([ROOT]);
        let mut stack = vec![(String::new(), ROOT)];
        while let Some((dir_path, dir)) = stack.pop() {
            let Some(node) = self.dirs.get(&dir) else { continue };
            for (name, entry) in &node.durable {
                match *entry {
                    Entry::File(id) => out.push((join(&dir_path, name), id)),
                    Entry::Dir(child) if seen.insert(child) => stack.push((join(&dir_path, name), child)),
                    Entry::Dir(_) => {}
                }
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::disk::Disk;
    use crate::sim::disk::SimDiskConfig;

    #[test]
    fn a_snapshot_keeps_what_the_disk_held_and_the_state_of_each_file() {
        let mut disk = SimDisk::new("broker-1", 7, SimDiskConfig::default());
        disk.create_dir("t-0").unwrap();
        disk.create("t-0/a.log").unwrap();
        disk.append("t-0/a.log", b"hello").unwrap();
        disk.sync("t-0/a.log").unwrap();
        disk.sync_dir("t-0").unwrap();
        disk.sync_dir("").unwrap();
        disk.append("t-0/a.log", b" world").unwrap();
        let copy = disk.snapshot();
        disk.append("t-0/a.log", b"!").unwrap();
        assert_eq!(copy.read_file("t-0/a.log").unwrap(), b"hello world");
        assert_eq!(disk.read_file("t-0/a.log").unwrap(), b"hello world!");
        let states = copy.file_states();
        assert_eq!(
            states,
            vec![FileState {
                path: "t-0/a.log".into(),
                len: 11,
                durable_len: 5,
                pending_ops: 1,
                durably_linked: true,
            }]
        );
    }
}
