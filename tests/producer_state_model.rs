//! The broker's producer state against a model: several idempotent producers send batches with retries
//! (resends of a sequence), reorderings inside the in-flight window of 5, epoch bumps, and broker restarts
//! (state rebuilt from a snapshot plus the log suffix, or from the log alone). Properties: no batch is
//! appended twice, no gap is accepted, a duplicate is answered with its original offsets.
//!
//! The second model drives a real partition log (`LogManager` on the simulated disk, small segments so they
//! roll and snapshot) through the same producers plus process crashes, power losses, clean restarts,
//! truncations and bit flips in snapshot files. After every restart or truncation the log holds each
//! producer epoch's sequences once, in order, from 0 (no duplicate, no gap), and the recovered producer
//! state equals a replay of the whole log.

use std::collections::BTreeMap;

use gregor::log::producer_state::{snapshot_file_name, AppendCheck, ProducerStateManager};
use gregor::protocol::batch::{set_base_offset, BatchBuilder, BatchHeader};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    /// Producer `p` sends (or resends) one of its first 5 unacknowledged-or-recent batches.
    Deliver { p: usize, pick: usize },
    /// Producer `p` bumps its epoch and restarts its sequences at 0 (KIP-360), dropping what it had queued.
    Bump { p: usize },
    /// The broker restarts: rebuild from the log alone, or from a snapshot taken at `snap` plus the suffix.
    Restart { from_snapshot: bool },
    /// Take a snapshot now.
    Snapshot,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (0usize..3, 0usize..8).prop_map(|(p, pick)| Step::Deliver { p, pick }),
        1 => (0usize..3).prop_map(|p| Step::Bump { p }),
        1 => any::<bool>().prop_map(|from_snapshot| Step::Restart { from_snapshot }),
        1 => Just(Step::Snapshot),
    ]
}

/// A model producer: batches of 1–3 records numbered by sequence within its epoch.
#[derive(Debug, Clone, Default)]
struct ModelProducer {
    epoch: i16,
    next_seq: i32,
    /// Batches of this epoch: (first seq, count), in sequence order.
    batches: Vec<(i32, i32)>,
    /// Batches the broker holds, by (epoch, first seq): their offsets.
    landed: BTreeMap<(i16, i32), (i64, i64)>,
}

struct Harness {
    producers: Vec<ModelProducer>,
    state: ProducerStateManager,
    log: Vec<BatchHeader>,
    log_end_offset: i64,
    snapshot: Option<(String, Vec<u8>)>,
}

impl Harness {
    fn batch_header(&self, pid: i64, epoch: i16, seq: i32, count: i32) -> BatchHeader {
        let mut b = BatchBuilder::new(0).producer(pid, epoch, seq);
        for _ in 0..count {
            b.push(0, None, Some(b"v"), &[]);
        }
        let mut bytes = b.build();
        set_base_offset(&mut bytes, self.log_end_offset);
        BatchHeader::parse(&bytes).expect("valid header")
    }

    fn deliver(&mut self, p: usize, pick: usize) {
        let mp = &mut self.producers[p];
        // The window: the first unlanded batch and the next 4; a pick past it makes a new batch.
        let first_unlanded = mp
            .batches
            .iter()
            .position(|(s, _)| !mp.landed.contains_key(&(mp.epoch, *s)));
        let window_start = first_unlanded.unwrap_or(mp.batches.len()).saturating_sub(2);
        let (seq, count) = match mp.batches.get(window_start + pick) {
            Some(b) if window_start + pick < first_unlanded.unwrap_or(usize::MAX).saturating_add(5) => *b,
            _ if mp.batches.len() < first_unlanded.unwrap_or(mp.batches.len()) + 5 => {
                let count = 1 + (pick as i32 % 3);
                let b = (mp.next_seq, count);
                mp.next_seq += count;
                mp.batches.push(b);
                b
            }
            _ => return, // window full
        };
        let epoch = mp.epoch;
        let header = self.batch_header(p as i64, epoch, seq, count);
        let pb = gregor::log::producer_state::ProducerBatch::from_header(&header).expect("idempotent");
        let check = self.state.check_and_update(&pb, self.log_end_offset);
        let mp = &mut self.producers[p];
        let landed_before = mp.landed.get(&(epoch, seq)).copied();
        let expected_next = mp
            .batches
            .iter()
            .find(|(s, _)| !mp.landed.contains_key(&(epoch, *s)))
            .map(|(s, _)| *s);
        match check {
            AppendCheck::Append => {
                assert_eq!(landed_before, None, "p{p} e{epoch} seq {seq} appended twice");
                assert_eq!(
                    expected_next,
                    Some(seq),
                    "p{p} e{epoch}: seq {seq} accepted across a gap"
                );
                let first = self.log_end_offset;
                mp.landed.insert((epoch, seq), (first, first + count as i64 - 1));
                self.log.push(header);
                self.log_end_offset += count as i64;
            }
            AppendCheck::Duplicate {
                first_offset,
                last_offset,
            } => {
                assert_eq!(
                    landed_before,
                    Some((first_offset, last_offset)),
                    "p{p} e{epoch} seq {seq}: duplicate answered with other offsets"
                );
            }
            AppendCheck::OutOfOrderSequence { .. } => {
                // A resend older than the 5 retained batches, or a batch past a gap.
                let is_next = expected_next == Some(seq) && landed_before.is_none();
                assert!(
                    !is_next,
                    "p{p} e{epoch} seq {seq}: the next batch was refused ({check:?})"
                );
            }
            AppendCheck::InvalidProducerEpoch { .. } => panic!("p{p}: its own epoch {epoch} fenced"),
        }
    }

    fn restart(&mut self, from_snapshot: bool) {
        let start = match (&self.snapshot, from_snapshot) {
            (Some((name, bytes)), true) => ProducerStateManager::decode_snapshot(name, bytes).expect("readable"),
            _ => ProducerStateManager::new(),
        };
        let rebuilt = ProducerStateManager::rebuild(start, &self.log);
        assert_eq!(
            rebuilt, self.state,
            "rebuilt state differs (from_snapshot={from_snapshot})"
        );
        self.state = rebuilt;
    }
}

fn run(steps: &[Step]) -> usize {
    let mut h = Harness {
        producers: vec![ModelProducer::default(); 3],
        state: ProducerStateManager::new(),
        log: vec![],
        log_end_offset: 0,
        snapshot: None,
    };
    for s in steps {
        match s {
            Step::Deliver { p, pick } => h.deliver(*p, *pick),
            Step::Bump { p } => {
                let mp = &mut h.producers[*p];
                mp.epoch += 1;
                mp.next_seq = 0;
                mp.batches.clear();
            }
            Step::Restart { from_snapshot } => h.restart(*from_snapshot),
            Step::Snapshot => {
                let name = snapshot_file_name(h.state.map_end_offset());
                h.snapshot = Some((name, h.state.encode_snapshot()));
            }
        }
    }
    h.log.len()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn producer_state_appends_each_batch_once_without_gaps_across_retries_bumps_and_restarts(
        steps in prop::collection::vec(step(), 1..200)
    ) {
        run(&steps);
    }
}

#[test]
fn the_model_appends_batches_in_a_plain_run() {
    let steps: Vec<Step> = (0..30).map(|i| Step::Deliver { p: i % 3, pick: 7 }).collect();
    assert!(run(&steps) >= 15, "new batches land");
}

// ---- the producer state inside a real log, across crashes, power losses and restarts ----

mod real_log {
    use std::collections::BTreeMap;

    use gregor::log::producer_state::ProducerStateManager;
    use gregor::log::{LogConfig, LogError, LogManager};
    use gregor::protocol::batch::{batches, BatchBuilder, BatchHeader};
    use gregor::sim::disk::{SimDisk, SimDiskConfig};
    use gregor::types::TopicPartition;
    use proptest::prelude::*;

    use super::ModelProducer;

    #[derive(Debug, Clone)]
    pub enum Op {
        Deliver {
            p: usize,
            pick: usize,
        },
        Bump {
            p: usize,
        },
        Roll,
        Flush,
        Crash,
        PowerLoss,
        CleanRestart,
        /// Truncate to a fraction (out of 256) of the log end offset.
        Truncate(u8),
        /// Flip a random bit at rest in a random snapshot file, then crash.
        CorruptSnapshot,
    }

    pub fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            20 => (0usize..3, 0usize..8).prop_map(|(p, pick)| Op::Deliver { p, pick }),
            1 => (0usize..3).prop_map(|p| Op::Bump { p }),
            1 => Just(Op::Roll),
            2 => Just(Op::Flush),
            1 => Just(Op::Crash),
            1 => Just(Op::PowerLoss),
            1 => Just(Op::CleanRestart),
            1 => any::<u8>().prop_map(Op::Truncate),
            1 => Just(Op::CorruptSnapshot),
        ]
    }

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 600,
            index_interval_bytes: 200,
            segment_index_bytes: 4_096,
            ..LogConfig::default()
        }
    }

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    /// What a run did, to show the interesting cases happen.
    #[derive(Debug, Default)]
    pub struct Stats {
        pub appended: usize,
        pub duplicates: usize,
        pub duplicates_after_restart: usize,
        pub restarts: usize,
        pub skipped_snapshots: usize,
    }

    pub struct World {
        disk: SimDisk,
        mgr: LogManager,
        producers: Vec<ModelProducer>,
        now_ms: i64,
        restarted_since_append: bool,
        pub stats: Stats,
    }

    impl World {
        pub fn new(seed: u64) -> World {
            let mut disk = SimDisk::new("broker-1", seed, SimDiskConfig::default());
            let (mut mgr, _) = LogManager::startup(&mut disk, config(), 0).expect("startup");
            mgr.create_log(&mut disk, &tp(), "id-1", config(), 0).expect("create");
            World {
                disk,
                mgr,
                producers: vec![ModelProducer::default(); 3],
                now_ms: 0,
                restarted_since_append: false,
                stats: Stats::default(),
            }
        }

        fn log(&mut self) -> &mut gregor::log::Log {
            self.mgr.get_mut(&tp()).expect("log")
        }

        /// Every batch header in the log, in offset order.
        fn headers(&mut self) -> Vec<BatchHeader> {
            let mut disk = self.disk.clone();
            let log = self.log();
            let (mut next, leo) = (log.log_start_offset(), log.log_end_offset());
            let mut out = Vec::new();
            while next < leo {
                let data = log.read(&mut disk, next, 1 << 16, None, true).expect("read");
                assert!(!data.records.is_empty(), "nothing at {next} below {leo}");
                for item in batches(&data.records) {
                    let (h, _) = item.expect("whole batch");
                    next = h.next_offset();
                    out.push(h);
                }
            }
            out
        }

        pub fn apply(&mut self, op: &Op) {
            match op {
                Op::Deliver { p, pick } => self.deliver(*p, *pick),
                Op::Bump { p } => {
                    let mp = &mut self.producers[*p];
                    mp.epoch += 1;
                    mp.next_seq = 0;
                    mp.batches.clear();
                }
                Op::Roll => {
                    let (mut disk, now) = (self.disk.clone(), self.now_ms);
                    self.log().roll(&mut disk, now).expect("roll");
                }
                Op::Flush => {
                    let mut disk = self.disk.clone();
                    let leo = self.log().log_end_offset();
                    self.log().flush(&mut disk, leo).expect("flush");
                    self.mgr.checkpoint(&mut disk).expect("checkpoint");
                }
                Op::Crash => {
                    self.disk.crash();
                    self.restart();
                }
                Op::PowerLoss => {
                    self.disk.power_loss();
                    self.restart();
                }
                Op::CleanRestart => {
                    let mut disk = self.disk.clone();
                    let before = self.log().producer_state().clone();
                    self.mgr.shutdown(&mut disk).expect("shutdown");
                    self.restart();
                    assert_eq!(
                        self.log().producer_state(),
                        &before,
                        "a clean restart changes the state"
                    );
                }
                Op::Truncate(share) => {
                    let mut disk = self.disk.clone();
                    let to = self.log().log_end_offset() * i64::from(*share) / 256;
                    self.mgr.truncate_to(&mut disk, &tp(), to).expect("truncate");
                    self.resync();
                }
                Op::CorruptSnapshot => {
                    self.disk.flip_bit_at_rest(&|path| path.ends_with(".snapshot"));
                    self.disk.crash();
                    self.restart();
                }
            }
        }

        fn restart(&mut self) {
            self.now_ms += 1;
            let (mgr, reports) = LogManager::startup(&mut self.disk, config(), self.now_ms).expect("restart");
            self.stats.restarts += 1;
            self.stats.skipped_snapshots += reports.iter().map(|r| r.skipped_snapshots.len()).sum::<usize>();
            self.mgr = mgr;
            self.restarted_since_append = true;
            self.resync();
        }

        /// Checks the log (each producer epoch's sequences once, in order, from 0) and the recovered state
        /// (equal to a replay of the whole log), then takes what the log holds as what has landed.
        fn resync(&mut self) {
            let headers = self.headers();
            let mut last: BTreeMap<i64, (i16, i32)> = BTreeMap::new();
            for h in headers.iter().filter(|h| h.producer_id >= 0) {
                let next_seq = match last.get(&h.producer_id) {
                    Some((epoch, seq)) if *epoch == h.producer_epoch => seq + 1,
                    Some((epoch, _)) => {
                        assert!(*epoch < h.producer_epoch, "epoch went back at {}", h.base_offset);
                        0
                    }
                    None => 0,
                };
                assert_eq!(
                    h.base_sequence, next_seq,
                    "producer {} epoch {}: duplicate or gap at offset {}",
                    h.producer_id, h.producer_epoch, h.base_offset
                );
                last.insert(h.producer_id, (h.producer_epoch, h.base_sequence + h.last_offset_delta));
            }
            let leo = self.log().log_end_offset();
            let mut replayed = ProducerStateManager::rebuild(ProducerStateManager::new(), &headers);
            replayed.update_map_end_offset(leo);
            assert_eq!(
                self.log().producer_state(),
                &replayed,
                "recovered state differs from a replay"
            );
            for (p, mp) in self.producers.iter_mut().enumerate() {
                mp.landed = headers
                    .iter()
                    .filter(|h| h.producer_id == p as i64)
                    .map(|h| ((h.producer_epoch, h.base_sequence), (h.base_offset, h.last_offset())))
                    .collect();
            }
        }

        fn deliver(&mut self, p: usize, pick: usize) {
            let mp = &mut self.producers[p];
            let epoch = mp.epoch;
            let first_unlanded = mp
                .batches
                .iter()
                .position(|(s, _)| !mp.landed.contains_key(&(epoch, *s)));
            let window_start = first_unlanded.unwrap_or(mp.batches.len()).saturating_sub(2);
            let window_end = first_unlanded.unwrap_or(mp.batches.len()) + 5;
            let (seq, count) = match mp.batches.get(window_start + pick) {
                Some(b) if window_start + pick < window_end => *b,
                _ if mp.batches.len() < window_end => {
                    let b = (mp.next_seq, 1 + (pick as i32 % 3));
                    mp.next_seq += b.1;
                    mp.batches.push(b);
                    b
                }
                _ => return, // five in flight
            };
            let landed_before = mp.landed.get(&(epoch, seq)).copied();
            let expected_next = mp
                .batches
                .iter()
                .find(|(s, _)| !mp.landed.contains_key(&(epoch, *s)))
                .map(|(s, _)| *s);
            let mut b = BatchBuilder::new(self.now_ms).producer(p as i64, epoch, seq);
            for _ in 0..count {
                b.push(self.now_ms, None, Some(&[b'v'; 30]), &[]);
            }
            let mut bytes = b.build();
            self.now_ms += 1;
            let (mut disk, now) = (self.disk.clone(), self.now_ms);
            let outcome = self.log().append_as_leader(&mut disk, &mut bytes, 0, now);
            let mp = &mut self.producers[p];
            match outcome {
                Ok(info) if info.duplicate => {
                    assert_eq!(
                        landed_before,
                        Some((info.first_offset, info.last_offset)),
                        "p{p} e{epoch} seq {seq}: duplicate answered with other offsets"
                    );
                    self.stats.duplicates += 1;
                    if self.restarted_since_append {
                        self.stats.duplicates_after_restart += 1;
                    }
                }
                Ok(info) => {
                    assert_eq!(landed_before, None, "p{p} e{epoch} seq {seq} appended twice");
                    assert_eq!(
                        expected_next,
                        Some(seq),
                        "p{p} e{epoch}: seq {seq} accepted across a gap"
                    );
                    mp.landed.insert((epoch, seq), (info.first_offset, info.last_offset));
                    self.stats.appended += 1;
                    self.restarted_since_append = false;
                }
                Err(LogError::OutOfOrderSequence { .. }) => {
                    let is_next = expected_next == Some(seq) && landed_before.is_none();
                    assert!(!is_next, "p{p} e{epoch} seq {seq}: the next batch was refused");
                }
                Err(e) => panic!("p{p} e{epoch} seq {seq}: {e}"),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_real_log_appends_each_batch_once_without_gaps_across_crashes_power_losses_and_truncations(
        seed in any::<u64>(),
        ops in prop::collection::vec(real_log::op(), 1..150)
    ) {
        let mut w = real_log::World::new(seed);
        for op in &ops {
            w.apply(op);
        }
        w.apply(&real_log::Op::Crash);
    }
}

#[test]
fn the_real_log_model_sees_duplicates_after_restarts_and_skips_corrupt_snapshots() {
    let mut w = real_log::World::new(7);
    let mut ops = Vec::new();
    for round in 0..40 {
        for i in 0..12 {
            ops.push(real_log::Op::Deliver {
                p: i % 3,
                pick: (i + round) % 8,
            });
        }
        ops.push(match round % 4 {
            0 => real_log::Op::Crash,
            1 => real_log::Op::CleanRestart,
            2 => real_log::Op::PowerLoss,
            _ => real_log::Op::CorruptSnapshot,
        });
    }
    for op in &ops {
        w.apply(op);
    }
    let s = &w.stats;
    assert!(s.appended > 100, "{s:?}");
    assert!(s.duplicates > 10, "{s:?}");
    assert!(s.duplicates_after_restart > 0, "{s:?}");
    assert!(s.skipped_snapshots > 0, "{s:?}");
}
