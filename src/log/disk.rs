//! The synchronous disk the log core does IO through (ARCHITECTURE §5).
//!
//! Paths are `/`-separated and relative to the node's log dir root; a directory is a path prefix created
//! with [`Disk::create_dir`]. The root directory is `""`. Durability follows POSIX as a careful storage
//! engine must assume it:
//! - file data and size changes (write, append, truncate) become durable only at [`Disk::sync`] of that file;
//! - namespace changes (create, create_dir, rename, remove) become durable only at [`Disk::sync_dir`] of the
//!   directory holding the entry (for a rename, both the source's and the destination's directory).
//!
//! Every call adds the simulated time it cost to a meter that [`Disk::take_elapsed`] drains; the node shell
//! awaits that time (the cores never sleep).

use std::time::Duration;

/// A disk failure, naming the path it hit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error("{path}: already exists")]
    AlreadyExists { path: String },
    /// `ENOSPC`: the disk's capacity is reached.
    #[error("{path}: no space left on device (ENOSPC)")]
    NoSpace { path: String },
    /// `EIO`: the device failed the operation.
    #[error("{path}: input/output error (EIO)")]
    Io { path: String },
    /// A directory is not empty, a path is a directory where a file was expected, and the like.
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

impl DiskError {
    /// Whether Kafka treats this error as a failed log dir (KIP-112: the dir goes offline; with a single log
    /// dir the broker shuts down) rather than a logic error of the caller.
    pub fn is_storage_failure(&self) -> bool {
        matches!(self, DiskError::NoSpace { .. } | DiskError::Io { .. })
    }
}

pub type DiskResult<T> = Result<T, DiskError>;

/// A node's disk. Implemented by `RealDisk` (std files, in `node`) and `SimDisk` (in `sim`).
pub trait Disk {
    /// Creates an empty directory (its parent must exist).
    fn create_dir(&mut self, dir: &str) -> DiskResult<()>;
    /// Creates an empty file; `AlreadyExists` if there is one.
    fn create(&mut self, path: &str) -> DiskResult<()>;
    /// Whether a file or directory exists at `path` now (as the running process sees it).
    fn exists(&self, path: &str) -> bool;
    /// The file's current length (pending writes included).
    fn len(&mut self, path: &str) -> DiskResult<u64>;
    /// Reads up to `len` bytes at `offset`; shorter at the end of the file, empty past it.
    /// Unwritten ranges of a sparse file read as zeros.
    fn read_at(&mut self, path: &str, offset: u64, len: usize) -> DiskResult<Vec<u8>>;
    /// Writes `data` at `offset`, extending the file (a gap reads as zeros).
    fn write_at(&mut self, path: &str, offset: u64, data: &[u8]) -> DiskResult<()>;
    /// Appends `data` at the end; returns the position it was written at.
    fn append(&mut self, path: &str, data: &[u8]) -> DiskResult<u64>;
    /// Sets the file's length (shrinks, or extends sparsely with zeros).
    fn truncate(&mut self, path: &str, len: u64) -> DiskResult<()>;
    /// fsync: the file's data and length become durable.
    fn sync(&mut self, path: &str) -> DiskResult<()>;
    /// Renames a file, replacing any file at `to`.
    fn rename(&mut self, from: &str, to: &str) -> DiskResult<()>;
    /// Removes a file, or an empty directory.
    fn remove(&mut self, path: &str) -> DiskResult<()>;
    /// The names (not paths) of the entries directly inside `dir`, sorted.
    fn list(&mut self, dir: &str) -> DiskResult<Vec<String>>;
    /// fsync of a directory: the namespace changes of its entries become durable.
    fn sync_dir(&mut self, dir: &str) -> DiskResult<()>;
    /// The simulated time the calls since the last `take_elapsed` cost (zero on a real disk).
    fn take_elapsed(&mut self) -> Duration;
}

/// Joins a directory and a name (the root directory is `""`).
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The directory holding `path` (`""` for a top-level entry).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Writes a whole file crash-safely, as Kafka writes its checkpoint files: a temp file, sync, rename over the
/// target, sync the directory.
pub fn write_atomically(disk: &mut dyn Disk, path: &str, data: &[u8]) -> DiskResult<()> {
    let tmp = format!("{path}.tmp");
    if disk.exists(&tmp) {
        disk.remove(&tmp)?;
    }
    disk.create(&tmp)?;
    disk.write_at(&tmp, 0, data)?;
    disk.sync(&tmp)?;
    disk.rename(&tmp, path)?;
    disk.sync_dir(parent(path))
}
