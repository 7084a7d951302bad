//! SimDisk against a simple model: random writes, appends, truncates, creates, renames, removes, syncs,
//! directory syncs, process crashes and power losses over a few files in two directories.
//!
//! Checked after every step: the running system sees exactly the model's current state (so a process crash
//! loses nothing). After a power loss: the namespace is exactly the model's durable namespace (synced
//! namespace changes are never lost, unsynced ones are undone) and each file holds its synced contents plus
//! an in-order prefix of its pending ops, the next write possibly torn at a 512-byte boundary.

use std::collections::BTreeMap;

use gregor::log::disk::{parent, Disk, DiskError};
use gregor::sim::disk::{SimDisk, SimDiskConfig};
use proptest::prelude::*;

const DIRS: [&str; 2] = ["d1", "d2"];
const NAMES: [&str; 3] = ["a", "b", "c"];
const SECTOR: usize = 512;

fn path(index: usize) -> String {
    format!(
        "{}/{}",
        DIRS[index / NAMES.len() % DIRS.len()],
        NAMES[index % NAMES.len()]
    )
}

#[derive(Debug, Clone)]
enum Op {
    Create(usize),
    Write(usize, u64, usize, u8),
    Append(usize, usize, u8),
    Truncate(usize, u64),
    Sync(usize),
    SyncDir(usize),
    Rename(usize, usize),
    Remove(usize),
    Crash,
    PowerLoss,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let file = 0..DIRS.len() * NAMES.len();
    prop_oneof![
        3 => file.clone().prop_map(Op::Create),
        4 => (file.clone(), 0..5000u64, 1..1500usize, any::<u8>()).prop_map(|(f, o, l, b)| Op::Write(f, o, l, b)),
        4 => (file.clone(), 1..1500usize, any::<u8>()).prop_map(|(f, l, b)| Op::Append(f, l, b)),
        2 => (file.clone(), 0..6000u64).prop_map(|(f, l)| Op::Truncate(f, l)),
        3 => file.clone().prop_map(Op::Sync),
        3 => (0..DIRS.len()).prop_map(Op::SyncDir),
        2 => (file.clone(), file.clone()).prop_map(|(f, t)| Op::Rename(f, t)),
        1 => file.prop_map(Op::Remove),
        1 => Just(Op::Crash),
        2 => Just(Op::PowerLoss),
    ]
}

#[derive(Debug, Clone)]
enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

fn apply(data: &mut Vec<u8>, op: &Pending) {
    match op {
        Pending::Write(offset, bytes) => {
            let (offset, end) = (*offset as usize, *offset as usize + bytes.len());
            if data.len() < end {
                data.resize(end, 0);
            }
            data[offset..end].copy_from_slice(bytes);
        }
        Pending::SetLen(len) => data.resize(*len as usize, 0),
    }
}

#[derive(Debug, Default)]
struct File {
    durable: Vec<u8>,
    current: Vec<u8>,
    pending: Vec<Pending>,
}

impl File {
    /// Every state a power loss may leave: durable + each in-order prefix of the pending ops, and each
    /// write torn at a sector boundary strictly inside it.
    fn candidates(&self) -> Vec<Vec<u8>> {
        let mut state = self.durable.clone();
        let mut out = vec![state.clone()];
        for op in &self.pending {
            if let Pending::Write(offset, bytes) = op {
                let offset = *offset as usize;
                let first = (offset / SECTOR + 1) * SECTOR;
                for cut in (first..offset + bytes.len()).step_by(SECTOR) {
                    let mut torn = state.clone();
                    apply(
                        &mut torn,
                        &Pending::Write(offset as u64, bytes[..cut - offset].to_vec()),
                    );
                    out.push(torn);
                }
            }
            apply(&mut state, op);
            out.push(state.clone());
        }
        out
    }
}

/// The model: file contents by inode, the current namespace (path → inode) and each directory's durable
/// entries.
#[derive(Debug, Default)]
struct Model {
    files: BTreeMap<u32, File>,
    next_id: u32,
    current: BTreeMap<String, u32>,
    durable: BTreeMap<String, BTreeMap<String, u32>>,
}

impl Model {
    fn id(&self, path: &str) -> Result<u32, DiskError> {
        self.current
            .get(path)
            .copied()
            .ok_or(DiskError::NotFound { path: path.to_string() })
    }

    fn file(&mut self, path: &str) -> Result<&mut File, DiskError> {
        let id = self.id(path)?;
        Ok(self.files.get_mut(&id).expect("model inode"))
    }

    fn push(&mut self, path: &str, op: Pending) -> Result<(), DiskError> {
        let file = self.file(path)?;
        apply(&mut file.current, &op);
        file.pending.push(op);
        Ok(())
    }

    fn durable_paths(&self) -> BTreeMap<String, u32> {
        let entries = self
            .durable
            .iter()
            .flat_map(|(dir, names)| names.iter().map(move |(name, id)| (format!("{dir}/{name}"), *id)));
        entries.collect()
    }
}

/// The length `op` would give its file (for deciding whether `ENOSPC` was possible).
fn grows(model: &Model, op: &Op) -> bool {
    let len = |f: usize| {
        model
            .current
            .get(&path(f))
            .map_or(0, |id| model.files[id].current.len() as u64)
    };
    match *op {
        Op::Write(f, offset, n, _) => offset + n as u64 > len(f),
        Op::Append(..) => true,
        Op::Truncate(f, new_len) => new_len > len(f),
        _ => false,
    }
}

/// Runs `op` on the disk; if the disk did it, on the model too; checks both agree on the outcome.
fn step(disk: &mut SimDisk, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let expected = expected_outcome(model, op);
    let actual = run_on_disk(disk, op);
    match (&actual, &expected) {
        (Err(DiskError::Io { .. }), _) => return Ok(()), // EIO: no effect
        (Err(DiskError::NoSpace { .. }), Ok(())) if grows(model, op) => return Ok(()),
        _ => prop_assert_eq!(&actual, &expected, "op {:?}", op),
    }
    if actual.is_ok() {
        apply_to_model(model, op);
    }
    Ok(())
}

fn run_on_disk(disk: &mut SimDisk, op: &Op) -> Result<(), DiskError> {
    match *op {
        Op::Create(f) => disk.create(&path(f)),
        Op::Write(f, offset, n, b) => disk.write_at(&path(f), offset, &vec![b; n]),
        Op::Append(f, n, b) => disk.append(&path(f), &vec![b; n]).map(drop),
        Op::Truncate(f, len) => disk.truncate(&path(f), len),
        Op::Sync(f) => disk.sync(&path(f)),
        Op::SyncDir(d) => disk.sync_dir(DIRS[d]),
        Op::Rename(f, t) => disk.rename(&path(f), &path(t)),
        Op::Remove(f) => disk.remove(&path(f)),
        Op::Crash | Op::PowerLoss => Ok(()),
    }
}

fn expected_outcome(model: &Model, op: &Op) -> Result<(), DiskError> {
    match *op {
        Op::Create(f) if model.current.contains_key(&path(f)) => Err(DiskError::AlreadyExists { path: path(f) }),
        Op::Create(_) | Op::SyncDir(_) | Op::Crash | Op::PowerLoss => Ok(()),
        Op::Write(f, ..) | Op::Append(f, ..) | Op::Truncate(f, _) | Op::Sync(f) => model.id(&path(f)).map(drop),
        Op::Rename(f, _) | Op::Remove(f) => model.id(&path(f)).map(drop),
    }
}

fn apply_to_model(model: &mut Model, op: &Op) {
    let done = match *op {
        Op::Create(f) => {
            model.next_id += 1;
            model.files.insert(model.next_id, File::default());
            model.current.insert(path(f), model.next_id);
            Ok(())
        }
        Op::Write(f, offset, n, b) => model.push(&path(f), Pending::Write(offset, vec![b; n])),
        Op::Append(f, n, b) => {
            let end = model.file(&path(f)).map_or(0, |file| file.current.len() as u64);
            model.push(&path(f), Pending::Write(end, vec![b; n]))
        }
        Op::Truncate(f, len) => model.push(&path(f), Pending::SetLen(len)),
        Op::Sync(f) => model.file(&path(f)).map(|file| {
            file.durable = file.current.clone();
            file.pending.clear();
        }),
        Op::SyncDir(d) => {
            let entries = model.current.iter().filter(|(p, _)| parent(p) == DIRS[d]);
            let names = entries
                .map(|(p, id)| (p[DIRS[d].len() + 1..].to_string(), *id))
                .collect();
            model.durable.insert(DIRS[d].to_string(), names);
            Ok(())
        }
        Op::Rename(f, t) => {
            let id = model.current.remove(&path(f)).expect("renamed file exists");
            model.current.insert(path(t), id);
            Ok(())
        }
        Op::Remove(f) => model
            .current
            .remove(&path(f))
            .map(drop)
            .ok_or(DiskError::Io { path: path(f) }),
        Op::Crash | Op::PowerLoss => Ok(()),
    };
    assert_eq!(done, Ok(()), "model op {op:?} must succeed after the disk did it");
}

/// The running system sees exactly the model's current state.
fn check_current(disk: &SimDisk, model: &Model) -> Result<(), TestCaseError> {
    let expected: Vec<(String, u64)> = model
        .current
        .iter()
        .map(|(p, id)| (p.clone(), model.files[id].current.len() as u64))
        .collect();
    prop_assert_eq!(disk.files(), expected);
    for (p, id) in &model.current {
        prop_assert!(
            disk.read_file(p).as_ref() == Some(&model.files[id].current),
            "content of {}",
            p
        );
    }
    Ok(())
}

fn power_loss(disk: &mut SimDisk, model: &mut Model) -> Result<(), TestCaseError> {
    let report = disk.power_loss();
    let durable = model.durable_paths();
    let paths: Vec<&String> = report.files.iter().map(|f| &f.path).collect();
    prop_assert_eq!(paths, durable.keys().collect::<Vec<_>>(), "namespace after power loss");
    let mut survived: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for frontier in &report.files {
        let id = durable[&frontier.path];
        let file = &model.files[&id];
        let data = disk.read_file(&frontier.path).unwrap_or_default();
        prop_assert_eq!(frontier.durable_len, file.durable.len() as u64, "{}", frontier.path);
        prop_assert_eq!(frontier.surviving_len, data.len() as u64, "{}", frontier.path);
        prop_assert!(
            file.candidates().contains(&data),
            "{} holds no durable+prefix state",
            frontier.path
        );
        if let Some(other) = survived.insert(id, data.clone()) {
            prop_assert_eq!(other, data, "two links to one inode differ");
        }
    }
    for (id, data) in survived {
        let file = model.files.get_mut(&id).expect("model inode");
        *file = File {
            durable: data.clone(),
            current: data,
            pending: Vec::new(),
        };
    }
    model.current = durable;
    Ok(())
}

fn run(ops: &[Op], seed: u64, config: SimDiskConfig) -> Result<(), TestCaseError> {
    let mut disk = SimDisk::new("broker-1", seed, SimDiskConfig::default());
    let mut model = Model::default();
    for dir in DIRS {
        disk.create_dir(dir).expect("setup");
        model.durable.insert(dir.to_string(), BTreeMap::new());
    }
    disk.sync_dir("").expect("setup");
    disk.set_config(config);
    for op in ops {
        match op {
            Op::PowerLoss => power_loss(&mut disk, &mut model)?,
            Op::Crash => {
                disk.crash();
                prop_assert_eq!(disk.take_elapsed(), std::time::Duration::ZERO);
            }
            _ => step(&mut disk, &mut model, op)?,
        }
        check_current(&disk, &model)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sim_disk_matches_the_model(
        ops in prop::collection::vec(op_strategy(), 1..80),
        seed in any::<u64>(),
        faulty in any::<bool>(),
    ) {
        let config = if faulty {
            SimDiskConfig { eio_rate: 0.2, capacity_bytes: Some(12_000), ..SimDiskConfig::default() }
        } else {
            SimDiskConfig::default()
        };
        run(&ops, seed, config)?;
    }
}

#[test]
fn power_loss_sometimes_tears_a_write() {
    let mut torn = 0;
    for seed in 0..50 {
        let mut disk = SimDisk::new("broker-1", seed, SimDiskConfig::default());
        disk.create("a").unwrap();
        disk.sync_dir("").unwrap();
        disk.write_at("a", 100, &[1; 4000]).unwrap();
        let len = disk.power_loss().files[0].surviving_len;
        assert!(len == 0 || len == 4100 || len.is_multiple_of(512), "len={len}");
        torn += usize::from(len != 0 && len != 4100);
    }
    assert!(torn > 0, "no torn write in 50 seeds");
}
