//! L3: the real disk, std files under a root directory (the broker's `log.dirs` entry). The only code of
//! the crate that touches the filesystem (ARCHITECTURE §2, §5).

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::log::disk::{Disk, DiskError, DiskResult};

/// A [`Disk`] over real files below `root`.
#[derive(Debug, Clone)]
pub struct RealDisk {
    root: PathBuf,
}

/// Maps an io error on `path` to a [`DiskError`]: a full disk is `ENOSPC`; a caller's mistake (not empty,
/// not a directory, ...) is `Invalid`; anything else is the device failing (`EIO`).
fn disk_error(path: &str, error: &io::Error) -> DiskError {
    let path = path.to_string();
    match error.kind() {
        ErrorKind::NotFound => DiskError::NotFound { path },
        ErrorKind::AlreadyExists => DiskError::AlreadyExists { path },
        ErrorKind::StorageFull => DiskError::NoSpace { path },
        ErrorKind::DirectoryNotEmpty | ErrorKind::IsADirectory | ErrorKind::NotADirectory | ErrorKind::InvalidInput => {
            DiskError::Invalid {
                path,
                reason: error.to_string(),
            }
        }
        _ => {
            tracing::warn!(%path, %error, "disk IO error");
            DiskError::Io { path }
        }
    }
}

impl RealDisk {
    /// A disk rooted at `root` (created, with its parents, if missing).
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(RealDisk { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The real path of `path`; refuses names that could leave the root (empty, `.`, `..`).
    fn full(&self, path: &str) -> DiskResult<PathBuf> {
        if path.is_empty() {
            return Ok(self.root.clone());
        }
        if path
            .split('/')
            .any(|name| name.is_empty() || name == "." || name == "..")
        {
            return Err(DiskError::Invalid {
                path: path.to_string(),
                reason: "bad path (empty, `.` or `..` component)".to_string(),
            });
        }
        Ok(self.root.join(path))
    }

    /// Runs `op` on the real path of `path`, mapping its io error.
    fn on<T>(&self, path: &str, op: impl FnOnce(&Path) -> io::Result<T>) -> DiskResult<T> {
        let full = self.full(path)?;
        op(&full).map_err(|error| disk_error(path, &error))
    }

    fn open_for_write(full: &Path) -> io::Result<File> {
        OpenOptions::new().write(true).open(full)
    }
}

impl Disk for RealDisk {
    fn create_dir(&mut self, dir: &str) -> DiskResult<()> {
        self.on(dir, |full| fs::create_dir(full))
    }

    fn create(&mut self, path: &str) -> DiskResult<()> {
        self.on(path, |full| {
            OpenOptions::new().write(true).create_new(true).open(full).map(drop)
        })
    }

    fn exists(&self, path: &str) -> bool {
        self.full(path).is_ok_and(|full| full.symlink_metadata().is_ok())
    }

    fn len(&mut self, path: &str) -> DiskResult<u64> {
        let meta = self.on(path, |full| fs::metadata(full))?;
        if meta.is_dir() {
            return Err(DiskError::Invalid {
                path: path.to_string(),
                reason: "is a directory".into(),
            });
        }
        Ok(meta.len())
    }

    fn read_at(&mut self, path: &str, offset: u64, len: usize) -> DiskResult<Vec<u8>> {
        self.on(path, |full| {
            let mut file = File::open(full)?;
            file.seek(SeekFrom::Start(offset))?;
            let mut data = Vec::new();
            file.take(len as u64).read_to_end(&mut data)?;
            Ok(data)
        })
    }

    fn write_at(&mut self, path: &str, offset: u64, data: &[u8]) -> DiskResult<()> {
        self.on(path, |full| {
            let mut file = Self::open_for_write(full)?;
            file.seek(SeekFrom::Start(offset))?;
            file.write_all(data)
        })
    }

    fn append(&mut self, path: &str, data: &[u8]) -> DiskResult<u64> {
        self.on(path, |full| {
            let mut file = OpenOptions::new().append(true).open(full)?;
            let position = file.metadata()?.len();
            file.write_all(data)?;
            Ok(position)
        })
    }

    fn truncate(&mut self, path: &str, len: u64) -> DiskResult<()> {
        self.on(path, |full| Self::open_for_write(full)?.set_len(len))
    }

    fn sync(&mut self, path: &str) -> DiskResult<()> {
        self.on(path, |full| Self::open_for_write(full)?.sync_all())
    }

    fn rename(&mut self, from: &str, to: &str) -> DiskResult<()> {
        let target = self.full(to)?;
        self.on(from, |full| fs::rename(full, &target))
    }

    fn remove(&mut self, path: &str) -> DiskResult<()> {
        if path.is_empty() {
            return Err(DiskError::Invalid {
                path: String::new(),
                reason: "cannot remove the root".into(),
            });
        }
        self.on(path, |full| {
            if full.symlink_metadata()?.is_dir() {
                fs::remove_dir(full)
            } else {
                fs::remove_file(full)
            }
        })
    }

    fn list(&mut self, dir: &str) -> DiskResult<Vec<String>> {
        self.on(dir, |full| {
            let mut names = fs::read_dir(full)?
                .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<io::Result<Vec<_>>>()?;
            names.sort();
            Ok(names)
        })
    }

    fn sync_dir(&mut self, dir: &str) -> DiskResult<()> {
        self.on(dir, |full| File::open(full)?.sync_all())
    }

    fn take_elapsed(&mut self) -> Duration {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::disk::write_atomically;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempRoot(PathBuf);

    impl TempRoot {
        fn new() -> Self {
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("gregor-real-disk-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            TempRoot(dir)
        }
    }

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn files_are_written_read_and_resized_in_place() {
        let root = TempRoot::new();
        let mut disk = RealDisk::new(root.0.join("logs")).unwrap();
        disk.create_dir("t-0").unwrap();
        disk.create("t-0/a.log").unwrap();
        assert_eq!(disk.append("t-0/a.log", b"hello").unwrap(), 0);
        assert_eq!(disk.append("t-0/a.log", b" world").unwrap(), 5);
        disk.write_at("t-0/a.log", 20, b"!").unwrap();
        assert_eq!(disk.len("t-0/a.log").unwrap(), 21);
        assert_eq!(disk.read_at("t-0/a.log", 6, 100).unwrap(), b"world\0\0\0\0\0\0\0\0\0!");
        assert_eq!(disk.read_at("t-0/a.log", 100, 10).unwrap(), Vec::<u8>::new());
        disk.truncate("t-0/a.log", 5).unwrap();
        disk.sync("t-0/a.log").unwrap();
        disk.sync_dir("t-0").unwrap();
        assert_eq!(disk.read_at("t-0/a.log", 0, 100).unwrap(), b"hello");
        assert_eq!(disk.take_elapsed(), Duration::ZERO);
    }

    #[test]
    fn namespace_operations_match_the_trait() {
        let root = TempRoot::new();
        let mut disk = RealDisk::new(&root.0).unwrap();
        disk.create_dir("d").unwrap();
        write_atomically(&mut disk, "d/checkpoint", b"v1").unwrap();
        write_atomically(&mut disk, "d/checkpoint", b"v2").unwrap();
        disk.create("d/b").unwrap();
        assert_eq!(disk.list("d").unwrap(), vec!["b", "checkpoint"]);
        assert_eq!(disk.read_at("d/checkpoint", 0, 10).unwrap(), b"v2");
        disk.rename("d/b", "d/c").unwrap();
        assert!(disk.exists("d/c") && !disk.exists("d/b"));
        assert!(matches!(disk.remove("d"), Err(DiskError::Invalid { .. })), "not empty");
        disk.remove("d/c").unwrap();
        disk.remove("d/checkpoint").unwrap();
        disk.remove("d").unwrap();
        assert_eq!(disk.list("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn errors_name_the_path() {
        let root = TempRoot::new();
        let mut disk = RealDisk::new(&root.0).unwrap();
        disk.create("a").unwrap();
        assert_eq!(disk.create("a"), Err(DiskError::AlreadyExists { path: "a".into() }));
        assert_eq!(disk.len("missing"), Err(DiskError::NotFound { path: "missing".into() }));
        assert_eq!(
            disk.sync("missing"),
            Err(DiskError::NotFound { path: "missing".into() })
        );
        assert!(matches!(disk.create("../escape"), Err(DiskError::Invalid { .. })));
        assert!(matches!(disk.len(""), Err(DiskError::Invalid { .. })));
        assert!(!disk.exists("../escape") && disk.exists("a") && disk.exists(""));
        assert_eq!(
            disk_error("x", &io::Error::from(ErrorKind::StorageFull)),
            DiskError::NoSpace { path: "x".into() }
        );
        assert_eq!(
            disk_error("x", &io::Error::other("device")),
            DiskError::Io { path: "x".into() }
        );
    }
}
