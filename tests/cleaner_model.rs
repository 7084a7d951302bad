//! The log cleaner against a model (the latest value per key) over the simulated disk, with the process
//! dying at a random disk operation of a cleaning (an injected failure: nothing after it happens), then a
//! process crash or a power loss, then recovery (`LogManager::startup`).
//!
//! Checked after every cleaning and every recovery:
//! - every record served is the one the model wrote at that offset (offsets preserved, nothing invented);
//! - per key, the record at its highest offset is served (a tombstone may be gone once cleaned);
//! - after an interrupted cleaning, each segment group of that cleaning reads exactly as before the
//!   cleaning or exactly as after it (the same cleaning run to completion on a copy of the disk), never a mix.

use std::collections::BTreeMap;

use gregor::log::disk::{parent, Disk};
use gregor::log::{CleanupPolicy, DirtyRatio, LogConfig, LogManager};
use gregor::protocol::batch::BatchBuilder;
use gregor::sim::disk::{SimDisk, SimDiskConfig};
use gregor::types::TopicPartition;
use proptest::prelude::*;

#[path = "common/dying_disk.rs"]
mod dying_disk;
use dying_disk::DyingDisk;

fn tp() -> TopicPartition {
    TopicPartition::new("c", 0)
}

fn config() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::COMPACT,
        min_cleanable_dirty_ratio: DirtyRatio::new(0.0),
        segment_bytes: 300,
        index_interval_bytes: 100,
        segment_index_bytes: 4_096,
        delete_retention_ms: 2_000,
        file_delete_delay_ms: 500,
        ..LogConfig::default()
    }
}

/// A copy of the disk's current files, all durable (to run a cleaning to completion beside the real one).
fn copy_disk(src: &SimDisk) -> SimDisk {
    let mut dst = SimDisk::new("copy", 0, SimDiskConfig::default());
    for (path, _) in src.files() {
        let dir = parent(&path);
        if !dir.is_empty() && !dst.exists(dir) {
            dst.create_dir(dir).expect("dir");
        }
        dst.create(&path).expect("create");
        dst.write_at(&path, 0, &src.read_file(&path).expect("file"))
            .expect("write");
        dst.sync(&path).expect("sync");
    }
    dst.sync_dir("").expect("sync root");
    dst.sync_dir("c-0").expect("sync dir");
    dst
}

/// (offset, key, value) as served.
type Served = Vec<(i64, u8, Option<u16>)>;

fn read_all(disk: &mut SimDisk, mgr: &mut LogManager) -> Served {
    let served = dying_disk::served_records(disk, mgr, &tp());
    let value = |v: &[u8]| u16::from_be_bytes([v[0], v[1]]);
    served
        .into_iter()
        .map(|r| (r.offset, r.key.expect("keyed")[0], r.value.as_deref().map(value)))
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    /// A batch of (key, value or tombstone).
    Append(Vec<(u8, Option<u16>)>),
    Roll,
    /// A cleaning; `Some((n, power_loss))`: the process dies after n disk calls, then a crash or power loss.
    Clean(Option<(u32, bool)>),
    Restart(bool),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let record = (0u8..6, proptest::option::weighted(0.85, any::<u16>()));
    prop_oneof![
        8 => proptest::collection::vec(record, 1..4).prop_map(Op::Append),
        2 => Just(Op::Roll),
        4 => proptest::option::weighted(0.7, (0u32..40, any::<bool>())).prop_map(Op::Clean),
        1 => any::<bool>().prop_map(Op::Restart),
    ]
}

struct World {
    disk: SimDisk,
    mgr: LogManager,
    /// offset → (key, value) of everything appended.
    model: BTreeMap<i64, (u8, Option<u16>)>,
    now_ms: i64,
    swaps_completed: usize,
}

impl World {
    fn new(seed: u64) -> Self {
        let mut disk = SimDisk::new("broker-1", seed, SimDiskConfig::default());
        let (mut mgr, _) = LogManager::startup(&mut disk, config(), 0).expect("startup");
        mgr.create_log(&mut disk, &tp(), "id-1", config(), 0).expect("create");
        World {
            disk,
            mgr,
            model: BTreeMap::new(),
            now_ms: 0,
            swaps_completed: 0,
        }
    }

    fn leo(&mut self) -> i64 {
        self.mgr.get(&tp()).expect("log").log_end_offset()
    }

    fn hws(&mut self) -> BTreeMap<TopicPartition, i64> {
        BTreeMap::from([(tp(), self.leo())])
    }

    /// Appends and flushes (so a power loss only ever undoes the cleaner's own work).
    fn append(&mut self, recs: &[(u8, Option<u16>)]) {
        let mut b = BatchBuilder::new(self.now_ms);
        for (k, v) in recs {
            b.push(
                self.now_ms,
                Some(&[*k]),
                v.map(u16::to_be_bytes).as_ref().map(|v| &v[..]),
                &[],
            );
        }
        let log = self.mgr.get_mut(&tp()).expect("log");
        let info = log
            .append_as_leader(&mut self.disk, &mut b.build(), 0, self.now_ms)
            .expect("append");
        let leo = log.log_end_offset();
        log.flush(&mut self.disk, leo).expect("flush");
        for (i, r) in recs.iter().enumerate() {
            self.model.insert(info.first_offset + i as i64, *r);
        }
    }

    fn roll(&mut self) {
        let now = self.now_ms;
        self.mgr
            .get_mut(&tp())
            .expect("log")
            .roll(&mut self.disk, now)
            .expect("roll");
    }

    fn restart(&mut self, power_loss: bool) {
        if power_loss {
            self.disk.power_loss();
        } else {
            self.disk.crash();
        }
        let (mgr, reports) = LogManager::startup(&mut self.disk, config(), self.now_ms).expect("recovery");
        self.swaps_completed += reports[0].swaps_completed;
        self.mgr = mgr;
    }

    /// Every served record is the model's at its offset; every key's latest record is served (a tombstone
    /// may be gone).
    fn check_against_model(&self, served: &Served) {
        let mut latest: BTreeMap<u8, (i64, Option<u16>)> = BTreeMap::new();
        for (o, (k, v)) in &self.model {
            latest.insert(*k, (*o, *v));
        }
        for (o, k, v) in served {
            assert_eq!(self.model.get(o), Some(&(*k, *v)), "offset {o} serves ({k}, {v:?})");
        }
        for (k, (o, v)) in latest {
            let present = served.iter().any(|(so, _, _)| *so == o);
            assert!(
                present || v.is_none(),
                "key {k}: latest value {v:?} at {o} is gone; served {served:?}"
            );
        }
    }

    fn clean(&mut self, death: Option<(u32, bool)>) {
        let hws = self.hws();
        let now = self.now_ms;
        let Some((ops, power_loss)) = death else {
            self.mgr.clean_logs(&mut self.disk, &hws, now).expect("clean");
            let served = read_all(&mut self.disk, &mut self.mgr);
            self.check_against_model(&served);
            return;
        };
        let log = self.mgr.get(&tp()).expect("log");
        let pre_bases = log.segment_base_offsets();
        let pre = read_all(&mut self.disk, &mut self.mgr);
        // The same cleaning run to completion on a copy: what "after" means per group.
        let mut copy = copy_disk(&self.disk);
        let (mut copy_mgr, _) = LogManager::startup(&mut copy, config(), now).expect("copy startup");
        // The copy's cleaner checkpoint must match: it was read from the same checkpoint file.
        let out = copy_mgr.clean_logs(&mut copy, &hws, now).expect("clean the copy");
        let post = read_all(&mut copy, &mut copy_mgr);
        let mut dying = DyingDisk::new(&mut self.disk, ops);
        let _ = self.mgr.clean_logs(&mut dying, &hws, now);
        self.restart(power_loss);
        let got = read_all(&mut self.disk, &mut self.mgr);
        self.check_against_model(&got);
        let Some(outcome) = out.get(&tp()) else {
            assert_eq!(got, pre, "no cleaning was due, yet the log changed");
            return;
        };
        for (_, old) in &outcome.swapped {
            let start = old[0];
            let last = *old.last().expect("a group");
            let end = pre_bases.iter().copied().find(|b| *b > last).expect("a later segment");
            let part =
                |s: &Served| -> Served { s.iter().copied().filter(|(o, _, _)| (start..end).contains(o)).collect() };
            let g = part(&got);
            assert!(
                g == part(&pre) || g == part(&post),
                "group [{start}, {end}) is a mix: got {g:?}, before {:?}, after {:?}",
                part(&pre),
                part(&post)
            );
        }
    }

    fn apply(&mut self, op: &Op) {
        self.now_ms += 400;
        match op {
            Op::Append(recs) => self.append(recs),
            Op::Roll => self.roll(),
            Op::Clean(death) => self.clean(*death),
            Op::Restart(power_loss) => {
                self.restart(*power_loss);
                let served = read_all(&mut self.disk, &mut self.mgr);
                self.check_against_model(&served);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_cleaner_keeps_the_latest_value_per_key_and_swaps_whole_groups_across_crashes_and_power_losses(
        seed in any::<u64>(),
        ops in proptest::collection::vec(op_strategy(), 1..60),
    ) {
        let mut world = World::new(seed);
        for op in &ops {
            world.apply(op);
        }
        world.roll();
        world.clean(None);
        let served = read_all(&mut world.disk, &mut world.mgr);
        world.check_against_model(&served);
    }
}

#[test]
fn a_power_loss_after_the_swap_commit_completes_the_swap_at_recovery() {
    // Find the disk call count at which the commit point (the directory sync after the `.swap` renames) is
    // durable but the final renames are not: a power loss then must complete the swap in recovery.
    let mut completed_somewhere = false;
    for ops in 0..60 {
        let mut world = World::new(7);
        for i in 0..12u16 {
            world.append(&[((i % 3) as u8, Some(i))]);
            if i % 4 == 3 {
                world.roll();
            }
        }
        world.clean(Some((ops, true)));
        completed_somewhere |= world.swaps_completed > 0;
    }
    assert!(completed_somewhere, "no crash point left a committed swap behind");
}
