//! The broker's producer state against a model: several idempotent producers send batches with retries
//! (resends of a sequence), reorderings inside the in-flight window of 5, epoch bumps, and broker restarts
//! (state rebuilt from a snapshot plus the log suffix, or from the log alone). Properties: no batch is
//! appended twice, no gap is accepted, a duplicate is answered with its original offsets.

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
