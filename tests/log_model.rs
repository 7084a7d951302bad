//! The partition log against an in-memory model (a Vec of batches), over the simulated disk: random leader
//! appends (small `segment.bytes`, so segments roll), reads, truncations, flushes, checkpoints, rolls,
//! process crashes, power losses, clean restarts and corrupted bytes past the recovery point.
//!
//! After every restart (a reopen via `LogManager::startup`):
//! - process crash / clean restart: the log equals the model (the page cache outlives the process);
//! - power loss: every batch below the recovery point the log had reached (all of it fsynced) is there,
//!   unchanged; the rest is a run of whole, CRC-valid batches, each one the log once held at that offset;
//! - a corrupted batch past the checkpointed recovery point is never served: the log ends before it.

use std::collections::{BTreeMap, BTreeSet};

use gregor::log::{LogConfig, LogManager};
use gregor::protocol::batch::{batches, validate_batch, BatchBuilder};
use gregor::sim::disk::{SimDisk, SimDiskConfig};
use gregor::types::TopicPartition;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Batches of (records, value bytes); bump the leader epoch first.
    Append(Vec<(u8, u16)>, bool),
    Read(u16, u16, bool),
    Truncate(u16),
    Flush(u16),
    Checkpoint,
    Roll,
    Crash,
    PowerLoss,
    CleanRestart,
    /// Flips a bit in a batch at or after the checkpointed recovery point, then crashes.
    Corrupt(u16, u16, u8),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (proptest::collection::vec((1u8..5, 0u16..300), 1..4), proptest::bool::weighted(0.1))
            .prop_map(|(b, e)| Op::Append(b, e)),
        4 => (any::<u16>(), 1u16..3000, any::<bool>()).prop_map(|(o, m, h)| Op::Read(o, m, h)),
        2 => any::<u16>().prop_map(Op::Truncate),
        2 => any::<u16>().prop_map(Op::Flush),
        2 => Just(Op::Checkpoint),
        1 => Just(Op::Roll),
        1 => Just(Op::Crash),
        2 => Just(Op::PowerLoss),
        1 => Just(Op::CleanRestart),
        1 => (any::<u16>(), any::<u16>(), 0u8..8).prop_map(|(b, p, bit)| Op::Corrupt(b, p, bit)),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2_000,
        index_interval_bytes: 300,
        segment_index_bytes: 4_096,
        ..LogConfig::default()
    }
}

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn header(batch: &[u8]) -> gregor::protocol::batch::BatchHeader {
    validate_batch(batch).expect("model batches are valid")
}

struct World {
    disk: SimDisk,
    mgr: LogManager,
    /// The log as it should be: whole batches in order.
    model: Vec<Vec<u8>>,
    /// Every batch the log ever held, by base offset (what a power loss may resurrect).
    history: BTreeMap<i64, BTreeSet<Vec<u8>>>,
    epoch: i32,
    checkpointed_rp: i64,
    now_ms: i64,
    restarts: u32,
}

impl World {
    fn new(seed: u64) -> Self {
        let mut disk = SimDisk::new("broker-1", seed, SimDiskConfig::default());
        let (mut mgr, _) = LogManager::startup(&mut disk, config(), 0).expect("startup");
        mgr.create_log(&mut disk, &tp(), "id-1", config(), 0).expect("create");
        World {
            disk,
            mgr,
            model: Vec::new(),
            history: BTreeMap::new(),
            epoch: 0,
            checkpointed_rp: 0,
            now_ms: 0,
            restarts: 0,
        }
    }

    fn leo(&self) -> i64 {
        self.model.last().map_or(0, |b| header(b).next_offset())
    }

    fn log(&mut self) -> &mut gregor::log::Log {
        self.mgr.get_mut(&tp()).expect("log exists")
    }

    /// Reads the whole log back, batch by batch.
    fn read_all(&mut self) -> Vec<Vec<u8>> {
        let mut disk = self.disk.clone();
        let log = self.mgr.get_mut(&tp()).expect("log");
        let (mut next, leo) = (log.log_start_offset(), log.log_end_offset());
        let mut out = Vec::new();
        while next < leo {
            let data = log.read(&mut disk, next, 4_096, None, true).expect("read");
            assert!(!data.records.is_empty(), "read at {next} (leo {leo}) returned nothing");
            for item in batches(&data.records) {
                let (h, bytes) = item.expect("whole batch");
                validate_batch(bytes).expect("served batches are valid");
                assert!(h.base_offset <= next || out.is_empty(), "gap before {}", h.base_offset);
                next = h.next_offset();
                out.push(bytes.to_vec());
            }
        }
        out
    }

    fn restart(&mut self) {
        self.now_ms += 1;
        self.restarts += 1;
        let (mgr, reports) = LogManager::startup(&mut self.disk, config(), self.now_ms).expect("startup after a fault");
        assert_eq!(reports.len(), 1);
        self.mgr = mgr;
    }

    fn append(&mut self, spec: &[(u8, u16)], bump: bool) {
        if bump {
            self.epoch += 1;
        }
        let mut records = Vec::new();
        let mut sizes = Vec::new();
        for (n, value_bytes) in spec {
            let mut b = BatchBuilder::new(self.now_ms);
            for i in 0..*n {
                let value = vec![b'a' + i; *value_bytes as usize];
                b.push(self.now_ms, Some(&[i]), Some(&value), &[]);
            }
            let bytes = b.build();
            sizes.push(bytes.len());
            records.extend(bytes);
        }
        self.now_ms += 10;
        let (epoch, now_ms, leo) = (self.epoch, self.now_ms, self.leo());
        let mut disk = self.disk.clone();
        let info = self
            .log()
            .append_as_leader(&mut disk, &mut records, epoch, now_ms)
            .expect("append");
        assert_eq!(info.first_offset, leo);
        let mut pos = 0;
        for size in sizes {
            let batch = records[pos..pos + size].to_vec();
            pos += size;
            self.history
                .entry(header(&batch).base_offset)
                .or_default()
                .insert(batch.clone());
            self.model.push(batch);
        }
        assert_eq!(self.log().log_end_offset(), self.leo());
        assert_eq!(self.log().latest_epoch(), Some(epoch));
    }

    fn read(&mut self, at: u16, max_bytes: u16, with_hw: bool) {
        let leo = self.leo();
        if leo == 0 {
            return;
        }
        let start = at as i64 % (leo + 1);
        let hw = with_hw.then_some((at as i64 / 7) % (leo + 1));
        let mut disk = self.disk.clone();
        let data = self
            .log()
            .read(&mut disk, start, max_bytes as usize, hw, true)
            .expect("read");
        let first = self.model.iter().position(|b| header(b).last_offset() >= start);
        let mut expected = first.map_or(&[][..], |i| &self.model[i..]).iter();
        for item in batches(&data.records) {
            let (h, bytes) = item.expect("whole batch");
            assert_eq!(
                Some(&bytes.to_vec()),
                expected.next(),
                "batch at {} differs",
                h.base_offset
            );
            assert!(
                hw.is_none_or(|hw| h.last_offset() < hw),
                "batch ending {} at or past hw {hw:?}",
                h.last_offset()
            );
        }
        let served_any = !data.records.is_empty();
        let reachable = first.is_some_and(|i| hw.is_none_or(|hw| header(&self.model[i]).last_offset() < hw));
        assert_eq!(
            served_any,
            reachable,
            "read at {start} hw {hw:?} served {} bytes",
            data.records.len()
        );
    }

    fn truncate(&mut self, at: u16) {
        let leo = self.leo();
        let offset = at as i64 % (leo + 1);
        let mut disk = self.disk.clone();
        self.mgr.truncate_to(&mut disk, &tp(), offset).expect("truncate");
        self.checkpointed_rp = self.log().recovery_point();
        self.model.retain(|b| header(b).last_offset() < offset);
        assert_eq!(self.log().log_end_offset(), self.leo());
    }

    fn crash_and_check(&mut self) {
        self.disk.crash();
        self.restart();
        assert_eq!(self.read_all(), self.model, "a process crash must lose nothing");
    }

    fn power_loss_and_check(&mut self) {
        let durable = self.log().recovery_point();
        self.disk.power_loss();
        self.restart();
        let got = self.read_all();
        let kept = self
            .model
            .iter()
            .take_while(|b| header(b).next_offset() <= durable)
            .count();
        assert!(
            got.len() >= kept,
            "lost fsynced batches: had {kept} below {durable}, got {}",
            got.len()
        );
        assert_eq!(&got[..kept], &self.model[..kept], "fsynced batches changed");
        let mut next = got.first().map(|b| header(b).base_offset);
        for b in &got {
            let h = header(b);
            assert_eq!(Some(h.base_offset), next, "offsets not contiguous");
            next = Some(h.next_offset());
            let known = self.history.get(&h.base_offset).is_some_and(|s| s.contains(b));
            assert!(known, "batch at {} was never written", h.base_offset);
        }
        self.model = got;
        let leo = self.leo();
        let log = self.log();
        assert_eq!(log.log_end_offset(), leo);
        assert!(log.leader_epoch_cache().entries().iter().all(|e| e.start_offset < leo));
        let latest = log.latest_epoch().unwrap_or(0);
        self.epoch = self.epoch.max(latest);
    }

    fn clean_restart(&mut self) {
        let mut disk = self.disk.clone();
        self.mgr.shutdown(&mut disk).expect("shutdown");
        self.checkpointed_rp = self.leo();
        self.restart();
        assert_eq!(self.log().recovery_point(), self.leo());
        assert_eq!(self.read_all(), self.model, "a clean restart must lose nothing");
    }

    /// Flips a bit in the bytes from the magic on (offset and epoch sit outside the CRC) of a batch at or
    /// after the checkpointed recovery point, then crashes: the log must end right before that batch.
    fn corrupt(&mut self, which: u16, at: u16, bit: u8) {
        let candidates: Vec<usize> = (0..self.model.len())
            .filter(|i| header(&self.model[*i]).base_offset >= self.checkpointed_rp)
            .collect();
        if candidates.is_empty() {
            return;
        }
        let i = candidates[which as usize % candidates.len()];
        let base = header(&self.model[i]).base_offset;
        let log = self.mgr.get(&tp()).expect("log");
        let seg_base = log
            .segment_base_offsets()
            .into_iter()
            .filter(|b| *b <= base)
            .max()
            .expect("segment");
        let position: usize = self
            .model
            .iter()
            .filter(|b| {
                let h = header(b);
                h.base_offset >= seg_base && h.base_offset < base
            })
            .map(Vec::len)
            .sum();
        let path = format!("{}/{seg_base:020}.log", log.dir());
        let byte_at = (position + 16 + at as usize % (self.model[i].len() - 16)) as u64;
        let mut disk = self.disk.clone();
        let byte = gregor::log::Disk::read_at(&mut disk, &path, byte_at, 1).expect("read")[0];
        gregor::log::Disk::write_at(&mut disk, &path, byte_at, &[byte ^ (1 << bit)]).expect("write");
        self.disk.crash();
        self.restart();
        self.model.truncate(i);
        assert_eq!(
            self.read_all(),
            self.model,
            "the log must end before the corrupted batch at {base}"
        );
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Append(spec, bump) => self.append(spec, *bump),
            Op::Read(at, max, hw) => self.read(*at, *max, *hw),
            Op::Truncate(at) => self.truncate(*at),
            Op::Flush(at) => {
                let up_to = *at as i64 % (self.leo() + 1);
                let mut disk = self.disk.clone();
                let before = self.log().recovery_point();
                self.log().flush(&mut disk, up_to).expect("flush");
                assert_eq!(self.log().recovery_point(), before.max(up_to));
            }
            Op::Checkpoint => {
                let mut disk = self.disk.clone();
                self.mgr.checkpoint(&mut disk).expect("checkpoint");
                self.checkpointed_rp = self.log().recovery_point();
            }
            Op::Roll => {
                let (mut disk, now_ms) = (self.disk.clone(), self.now_ms);
                self.log().roll(&mut disk, now_ms).expect("roll");
                assert_eq!(self.log().recovery_point(), self.leo());
            }
            Op::Crash => self.crash_and_check(),
            Op::PowerLoss => self.power_loss_and_check(),
            Op::CleanRestart => self.clean_restart(),
            Op::Corrupt(which, at, bit) => self.corrupt(*which, *at, *bit),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn log_matches_the_model_across_crashes_and_power_losses(
        seed in any::<u64>(),
        ops in proptest::collection::vec(op_strategy(), 1..60),
    ) {
        let mut world = World::new(seed);
        for op in &ops {
            world.apply(op);
        }
        // Whatever happened, the final log reads back as the model.
        let model = world.model.clone();
        prop_assert_eq!(world.read_all(), model);
    }
}

#[test]
fn a_power_loss_keeps_flushed_batches_and_drops_unflushed_ones_whole() {
    let mut world = World::new(7);
    for _ in 0..30 {
        world.append(&[(3, 100), (1, 10)], false);
    }
    let mut disk = world.disk.clone();
    let leo = world.leo();
    world.log().flush(&mut disk, leo).expect("flush");
    for _ in 0..5 {
        world.append(&[(2, 200)], false);
    }
    let segments_before = world.log().segment_count();
    assert!(segments_before > 3, "small segment.bytes must roll: {segments_before}");
    world.power_loss_and_check();
    assert!(world.leo() >= leo);
    assert!(world.restarts == 1);
}
