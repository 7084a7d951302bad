//! L4: the simulated disk (ARCHITECTURE §5), one per node, owned by the world and shared with every
//! incarnation of the node (clones of a [`SimDisk`] are one disk), so its contents survive restarts.
//!
//! The model is ALICE's view of POSIX: a file is an inode with durable data plus the pending (unsynced) ops
//! since its last `sync`; a directory maps names to inodes, with a current and a durable set of entries, the
//! durable one replaced by the current one at `sync_dir`. The running system always sees the current state.
//! - A process crash ([`SimDisk::crash`]) changes nothing: the OS and its page cache outlive the process.
//! - A power loss ([`SimDisk::power_loss`]) reverts the namespace to its durable entries and keeps, per
//!   reachable file, its durable data plus a random in-order prefix of its pending ops, the op after the
//!   prefix possibly torn at a 512-byte sector boundary. Unreachable inodes are dropped.
//! - Faults, drawn from the disk's own ChaCha8 stream: `EIO` per call before any effect, `ENOSPC` at the
//!   capacity (no partial effect), a flipped bit on read, bits flipped at rest on request. Every call costs
//!   simulated latency into the meter [`Disk::take_elapsed`] drains.
//!
//! Beyond the trait's doc: a directory may be renamed too (not into its own subtree, not over an existing
//! entry), as a real rename allows (see `RealDisk`).

mod inode;
mod snapshot;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::log::disk::{join, Disk, DiskError, DiskResult};
use inode::FileNode;
pub use snapshot::FileState;

/// How a simulated disk behaves; scenarios' disk faults change it at run time ([`SimDisk::set_config`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SimDiskConfig {
    /// `ENOSPC` once the sum of file lengths would exceed it.
    pub capacity_bytes: Option<u64>,
    /// Probability that a call fails with `EIO` before any effect.
    pub eio_rate: f64,
    /// Probability that a read returns one flipped bit (the stored data stays intact).
    pub bitflip_on_read_rate: f64,
    /// Per-call latency range (inclusive), drawn from the disk's seed.
    pub op_latency_us: (u64, u64),
    /// Extra latency per KiB written or read.
    pub write_us_per_kib: u64,
    /// fsync / directory fsync latency range (inclusive).
    pub sync_latency_us: (u64, u64),
    /// The `disk_slow` fault multiplies every latency by this (1 = normal, 0 is taken as 1).
    pub slow_factor: u32,
}

impl Default for SimDiskConfig {
    /// A fast SSD: 10–30 µs per call, ~1 GB/s, 1–3 ms per fsync, no faults.
    fn default() -> Self {
        SimDiskConfig {
            capacity_bytes: None,
            eio_rate: 0.0,
            bitflip_on_read_rate: 0.0,
            op_latency_us: (10, 30),
            write_us_per_kib: 1,
            sync_latency_us: (1_000, 3_000),
            slow_factor: 1,
        }
    }
}

/// What a power loss left of each file, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PowerLossReport {
    pub files: Vec<FileFrontier>,
}

/// One file after a power loss. Every byte below `durable_len` was synced and survived; a record wholly
/// inside the durable frontier must survive the restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFrontier {
    pub path: String,
    /// The length at the file's last sync (before the power loss).
    pub durable_len: u64,
    /// The length after the power loss.
    pub surviving_len: u64,
    /// Pending ops that did not survive whole (a torn write counts as lost).
    pub pending_ops_lost: usize,
}

/// A node's simulated disk: a handle; clones share one disk.
#[derive(Clone)]
pub struct SimDisk {
    state: Arc<Mutex<SimDiskState>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    File(u64),
    Dir(u64),
}

#[derive(Debug, Clone, Default)]
struct DirNode {
    current: BTreeMap<String, Entry>,
    durable: BTreeMap<String, Entry>,
}

struct SimDiskState {
    node: String,
    config: SimDiskConfig,
    rng: ChaCha8Rng,
    dirs: BTreeMap<u64, DirNode>,
    files: BTreeMap<u64, FileNode>,
    next_id: u64,
    /// Sum of the current lengths of all inodes kept (the capacity's measure).
    used_bytes: u64,
    elapsed: Duration,
    /// A copy to take at a simulated time (`gregor replay --dump-at`), see `snapshot.rs`.
    snapshot: Option<snapshot::Armed>,
}

const ROOT: u64 = 0;

/// FNV-1a, a stable hash (std's DefaultHasher may change between Rust releases).
fn fnv1a64(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A draw with probability `p` (no draw at all when `p` is zero or not a number).
fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    p > 0.0 && rng.random::<f64>() < p
}

fn not_found(path: &str) -> DiskError {
    DiskError::NotFound { path: path.to_string() }
}

fn invalid(path: &str, reason: &str) -> DiskError {
    DiskError::Invalid {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

/// The names along `path` (`""` is the root: no names). Empty, `.` and `..` names are refused.
fn components(path: &str) -> DiskResult<Vec<&str>> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = path.split('/').collect();
    if names
        .iter()
        .any(|name| name.is_empty() || *name == "." || *name == "..")
    {
        return Err(invalid(path, "bad path (empty, `.` or `..` component)"));
    }
    Ok(names)
}

impl SimDisk {
    /// An empty disk whose faults and latencies draw from ChaCha8 seeded by `seed` mixed with `node`.
    pub fn new(node: &str, seed: u64, config: SimDiskConfig) -> Self {
        let mut dirs = BTreeMap::new();
        dirs.insert(ROOT, DirNode::default());
        let state = SimDiskState {
            node: node.to_string(),
            config,
            rng: ChaCha8Rng::seed_from_u64(seed ^ fnv1a64(node)),
            dirs,
            files: BTreeMap::new(),
            next_id: ROOT + 1,
            used_bytes: 0,
            elapsed: Duration::ZERO,
            snapshot: None,
        };
        SimDisk {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimDiskState> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Every access goes through here: a snapshot armed for time T is taken at the first access at or
        // after T, so it holds exactly what the disk held at T.
        state.snapshot_if_due();
        state
    }

    pub fn set_config(&self, config: SimDiskConfig) {
        self.lock().config = config;
    }

    pub fn config(&self) -> SimDiskConfig {
        self.lock().config.clone()
    }

    /// Process crash: the OS survives, nothing is lost (pending data and namespace changes stay). Only the
    /// dead process's unclaimed latency is dropped.
    pub fn crash(&self) {
        self.lock().elapsed = Duration::ZERO;
    }

    /// Power loss: the namespace reverts to its durable entries; each reachable file keeps its durable data
    /// plus a random in-order prefix of its pending ops (the next one possibly torn at a sector boundary).
    pub fn power_loss(&self) -> PowerLossReport {
        self.lock().power_loss()
    }

    /// Flips one random bit at rest in a random non-empty file whose path satisfies `filter` (in both the
    /// durable and the current copy). Returns (path, byte offset, bit), or `None` if no file matched.
    pub fn flip_bit_at_rest(&self, filter: &dyn Fn(&str) -> bool) -> Option<(String, u64, u8)> {
        let mut state = self.lock();
        let candidates: Vec<(String, u64)> = state
            .file_paths()
            .into_iter()
            .filter(|(path, id)| filter(path) && state.file(*id).len() > 0)
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let (path, id) = candidates[state.rng.random_range(0..candidates.len())].clone();
        let len = state.file(id).len();
        let offset = state.rng.random_range(0..len);
        let bit = state.rng.random_range(0..8u8);
        state.file_mut(id).flip_bit(offset, bit);
        Some((path, offset, bit))
    }

    /// Flips bit `bit` of byte `offset` of `path` at rest (durable and current copies); false if the file is
    /// missing or shorter.
    pub fn flip_bit_at(&self, path: &str, offset: u64, bit: u8) -> bool {
        let mut state = self.lock();
        let Some(id) = state
            .file_paths()
            .into_iter()
            .find(|(p, _)| p == path)
            .map(|(_, id)| id)
        else {
            return false;
        };
        if offset >= state.file(id).len() {
            return false;
        }
        state.file_mut(id).flip_bit(offset, bit % 8);
        true
    }

    /// Current contents, with no cost and no faults (for the simulator, checkers and disk dumps).
    pub fn read_file(&self, path: &str) -> Option<Vec<u8>> {
        let state = self.lock();
        let id = state.file_id(path).ok()?;
        let file = state.file(id);
        Some(file.read(0, usize::try_from(file.len()).ok()?))
    }

    /// Every file path with its current length, sorted.
    pub fn files(&self) -> Vec<(String, u64)> {
        let state = self.lock();
        state
            .file_paths()
            .into_iter()
            .map(|(path, id)| (path, state.file(id).len()))
            .collect()
    }

    /// 4 KiB pages held in memory over all files (a measure of the sparse store's cost).
    pub fn resident_pages(&self) -> usize {
        self.lock().files.values().map(FileNode::resident_pages).sum()
    }
}

impl std::fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("SimDisk")
            .field("node", &state.node)
            .field("files", &state.files.len())
            .field("used_bytes", &state.used_bytes)
            .finish()
    }
}

/// Namespace and cost helpers.
impl SimDiskState {
    fn dir(&self, id: u64) -> &DirNode {
        self.dirs
            .get(&id)
            .unwrap_or_else(|| panic!("{}: dangling directory inode {id}", self.node))
    }

    fn dir_mut(&mut self, id: u64) -> &mut DirNode {
        let node = &self.node;
        self.dirs
            .get_mut(&id)
            .unwrap_or_else(|| panic!("{node}: dangling directory inode {id}"))
    }

    fn file(&self, id: u64) -> &FileNode {
        self.files
            .get(&id)
            .unwrap_or_else(|| panic!("{}: dangling file inode {id}", self.node))
    }

    fn file_mut(&mut self, id: u64) -> &mut FileNode {
        let node = &self.node;
        self.files
            .get_mut(&id)
            .unwrap_or_else(|| panic!("{node}: dangling file inode {id}"))
    }

    /// What `path` names in the current namespace.
    fn lookup(&self, path: &str) -> DiskResult<Entry> {
        let mut entry = Entry::Dir(ROOT);
        for name in components(path)? {
            let Entry::Dir(dir) = entry else {
                return Err(invalid(path, "a path component is not a directory"));
            };
            entry = *self.dir(dir).current.get(name).ok_or_else(|| not_found(path))?;
        }
        Ok(entry)
    }

    fn file_id(&self, path: &str) -> DiskResult<u64> {
        match self.lookup(path)? {
            Entry::File(id) => Ok(id),
            Entry::Dir(_) => Err(invalid(path, "is a directory")),
        }
    }

    fn dir_id(&self, path: &str) -> DiskResult<u64> {
        match self.lookup(path)? {
            Entry::Dir(id) => Ok(id),
            Entry::File(_) => Err(invalid(path, "not a directory")),
        }
    }

    /// The directory inode holding `path`'s entry, and the entry's name.
    fn parent_of<'p>(&self, path: &'p str) -> DiskResult<(u64, &'p str)> {
        let names = components(path)?;
        let Some(name) = names.last() else {
            return Err(invalid(path, "the root directory has no parent"));
        };
        let dir_path = &path[..path.len() - name.len()].trim_end_matches('/');
        Ok((self.dir_id(dir_path)?, name))
    }

    /// Every file reachable in the current namespace, with its inode, sorted by path.
    fn file_paths(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::from([ROOT]);
        let mut stack = vec![(String::new(), ROOT)];
        while let Some((dir_path, dir)) = stack.pop() {
            for (name, entry) in &self.dir(dir).current {
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

    /// Drops the inodes neither the current nor the durable namespace reaches.
    fn gc(&mut self) {
        let mut live_dirs = BTreeSet::from([ROOT]);
        let mut live_files = BTreeSet::new();
        let mut stack = vec![ROOT];
        while let Some(dir) = stack.pop() {
            let node = self.dir(dir);
            for entry in node.current.values().chain(node.durable.values()) {
                match *entry {
                    Entry::File(id) => {
                        live_files.insert(id);
                    }
                    Entry::Dir(child) if live_dirs.insert(child) => stack.push(child),
                    Entry::Dir(_) => {}
                }
            }
        }
        self.dirs.retain(|id, _| live_dirs.contains(id));
        let mut freed = 0u64;
        self.files.retain(|id, file| {
            let live = live_files.contains(id);
            if !live {
                freed = freed.saturating_add(file.len());
            }
            live
        });
        self.used_bytes = self.used_bytes.saturating_sub(freed);
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }

    /// Charges one call's latency: a draw in `range_us`, plus the per-KiB cost of `bytes`, times slowness.
    fn charge(&mut self, range_us: (u64, u64), bytes: u64) {
        let (low, high) = (range_us.0.min(range_us.1), range_us.0.max(range_us.1));
        let base_us = self.rng.random_range(low..=high);
        let transfer_us = bytes.saturating_mul(self.config.write_us_per_kib) / 1024;
        let slow = u64::from(self.config.slow_factor.max(1));
        let cost_us = base_us.saturating_add(transfer_us).saturating_mul(slow);
        self.elapsed = self.elapsed.saturating_add(Duration::from_micros(cost_us));
    }

    /// Starts a call on `path`: charges its latency, then fails it with `EIO` at the configured rate.
    fn begin(&mut self, path: &str, range_us: (u64, u64), bytes: u64) -> DiskResult<()> {
        self.charge(range_us, bytes);
        if chance(&mut self.rng, self.config.eio_rate) {
            return Err(DiskError::Io { path: path.to_string() });
        }
        Ok(())
    }

    fn begin_op(&mut self, path: &str, bytes: u64) -> DiskResult<()> {
        self.begin(path, self.config.op_latency_us, bytes)
    }

    fn begin_sync(&mut self, path: &str) -> DiskResult<()> {
        self.begin(path, self.config.sync_latency_us, 0)
    }

    /// Resizes file `id` to `new_len` if the capacity allows it; `ENOSPC` (and no effect) otherwise.
    fn reserve(&mut self, path: &str, id: u64, new_len: u64) -> DiskResult<()> {
        let old_len = self.file(id).len();
        let used = self.used_bytes.saturating_sub(old_len).saturating_add(new_len);
        if new_len > old_len && self.config.capacity_bytes.is_some_and(|cap| used > cap) {
            return Err(DiskError::NoSpace { path: path.to_string() });
        }
        self.used_bytes = used;
        Ok(())
    }
}

/// The operations, after `begin`.
impl SimDiskState {
    fn create_entry(&mut self, path: &str, make_dir: bool) -> DiskResult<()> {
        let (dir, name) = self.parent_of(path)?;
        if self.dir(dir).current.contains_key(name) {
            return Err(DiskError::AlreadyExists { path: path.to_string() });
        }
        let id = self.new_id();
        let entry = if make_dir {
            self.dirs.insert(id, DirNode::default());
            Entry::Dir(id)
        } else {
            self.files.insert(id, FileNode::default());
            Entry::File(id)
        };
        self.dir_mut(dir).current.insert(name.to_string(), entry);
        Ok(())
    }

    fn write_at(&mut self, path: &str, offset: u64, data: &[u8]) -> DiskResult<()> {
        let id = self.file_id(path)?;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| invalid(path, "write past 2^64"))?;
        if data.is_empty() {
            return Ok(());
        }
        let new_len = self.file(id).len().max(end);
        self.reserve(path, id, new_len)?;
        self.file_mut(id).write_at(offset, data);
        Ok(())
    }

    fn truncate(&mut self, path: &str, len: u64) -> DiskResult<()> {
        let id = self.file_id(path)?;
        self.reserve(path, id, len)?;
        self.file_mut(id).set_len(len);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> DiskResult<()> {
        let source = self.lookup(from)?;
        let (from_dir, from_name) = self.parent_of(from)?;
        let (to_dir, to_name) = self.parent_of(to)?;
        if from == to {
            return Ok(());
        }
        if matches!(source, Entry::Dir(_)) && to.starts_with(&format!("{from}/")) {
            return Err(invalid(to, "cannot move a directory into itself"));
        }
        match (source, self.dir(to_dir).current.get(to_name)) {
            (_, None) | (Entry::File(_), Some(Entry::File(_))) => {}
            (_, Some(Entry::Dir(_))) => return Err(invalid(to, "is a directory")),
            (Entry::Dir(_), Some(Entry::File(_))) => return Err(invalid(to, "not a directory")),
        }
        self.dir_mut(from_dir).current.remove(from_name);
        self.dir_mut(to_dir).current.insert(to_name.to_string(), source);
        self.gc();
        Ok(())
    }

    fn remove(&mut self, path: &str) -> DiskResult<()> {
        let entry = self.lookup(path)?;
        let (dir, name) = self.parent_of(path)?;
        if let Entry::Dir(id) = entry {
            if !self.dir(id).current.is_empty() {
                return Err(invalid(path, "directory not empty"));
            }
        }
        self.dir_mut(dir).current.remove(name);
        self.gc();
        Ok(())
    }

    fn sync_dir(&mut self, path: &str) -> DiskResult<()> {
        let id = self.dir_id(path)?;
        let node = self.dir_mut(id);
        node.durable = node.current.clone();
        self.gc();
        Ok(())
    }

    fn power_loss(&mut self) -> PowerLossReport {
        for dir in self.dirs.values_mut() {
            dir.current = dir.durable.clone();
        }
        self.gc();
        let durable_lens: BTreeMap<u64, u64> = self.files.iter().map(|(&id, file)| (id, file.durable_len())).collect();
        let mut lost = BTreeMap::new();
        for (&id, file) in &mut self.files {
            lost.insert(id, file.power_loss(&mut self.rng));
        }
        self.used_bytes = self.files.values().map(FileNode::len).fold(0, u64::saturating_add);
        self.elapsed = Duration::ZERO;
        let files = self
            .file_paths()
            .into_iter()
            .map(|(path, id)| FileFrontier {
                path,
                durable_len: durable_lens[&id],
                surviving_len: self.file(id).len(),
                pending_ops_lost: lost[&id],
            })
            .collect();
        PowerLossReport { files }
    }
}

impl Disk for SimDisk {
    fn create_dir(&mut self, dir: &str) -> DiskResult<()> {
        let mut state = self.lock();
        state.begin_op(dir, 0)?;
        state.create_entry(dir, true)
    }

    fn create(&mut self, path: &str) -> DiskResult<()> {
        let mut state = self.lock();
        state.begin_op(path, 0)?;
        state.create_entry(path, false)
    }

    fn exists(&self, path: &str) -> bool {
        self.lock().lookup(path).is_ok()
    }

    fn len(&mut self, path: &str) -> DiskResult<u64> {
        let mut state = self.lock();
        state.begin_op(path, 0)?;
        let id = state.file_id(path)?;
        Ok(state.file(id).len())
    }

    fn read_at(&mut self, path: &str, offset: u64, len: usize) -> DiskResult<Vec<u8>> {
        let mut state = self.lock();
        state.begin_op(path, 0)?;
        let id = state.file_id(path)?;
        let mut data = state.file(id).read(offset, len);
        let per_kib_us = state.config.write_us_per_kib;
        let slow = u64::from(state.config.slow_factor.max(1));
        let transfer_us = (data.len() as u64).saturating_mul(per_kib_us) / 1024 * slow;
        state.elapsed = state.elapsed.saturating_add(Duration::from_micros(transfer_us));
        let rate = state.config.bitflip_on_read_rate;
        if !data.is_empty() && chance(&mut state.rng, rate) {
            let at = state.rng.random_range(0..data.len());
            data[at] ^= 1 << state.rng.random_range(0..8u8);
        }
        Ok(data)
    }

    fn write_at(&mut self, path: &str, offset: u64, data: &[u8]) -> DiskResult<()> {
        let mut state = self.lock();
        state.begin_op(path, data.len() as u64)?;
        state.write_at(path, offset, data)
    }

    fn append(&mut self, path: &str, data: &[u8]) -> DiskResult<u64> {
        let mut state = self.lock();
        state.begin_op(path, data.len() as u64)?;
        let id = state.file_id(path)?;
        let offset = state.file(id).len();
        state.write_at(path, offset, data)?;
        Ok(offset)
    }

    fn truncate(&mut self, path: &str, len: u64) -> DiskResult<()> {
        let mut state = self.lock();
        state.begin_op(path, 0)?;
        state.truncate(path, len)
    }

    fn sync(&mut self, path: &str) -> DiskResult<()> {
        let mut state = self.lock();
        state.begin_sync(path)?;
        let id = state.file_id(path)?;
        state.file_mut(id).sync();
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> DiskResult<()> {
        let mut state = self.lock();
        state.begin_op(from, 0)?;
        state.rename(from, to)
    }

    fn remove(&mut self, path: &str) -> DiskResult<()> {
        let mut state = self.lock();
        state.begin_op(path, 0)?;
        state.remove(path)
    }

    fn list(&mut self, dir: &str) -> DiskResult<Vec<String>> {
        let mut state = self.lock();
        state.begin_op(dir, 0)?;
        let id = state.dir_id(dir)?;
        Ok(state.dir(id).current.keys().cloned().collect())
    }

    fn sync_dir(&mut self, dir: &str) -> DiskResult<()> {
        let mut state = self.lock();
        state.begin_sync(dir)?;
        state.sync_dir(dir)
    }

    fn take_elapsed(&mut self) -> Duration {
        std::mem::take(&mut self.lock().elapsed)
    }
}
