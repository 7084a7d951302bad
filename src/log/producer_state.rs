//! L1: the broker's idempotent-producer state of one partition (Kafka's `ProducerStateManager` and
//! `ProducerAppendInfo`, KIP-98, KIP-360).
//!
//! Per producer id: its epoch and the metadata of its last [`NUM_BATCHES_TO_RETAIN`] batches (first and last
//! sequence, first and last offset). A leader asks [`ProducerStateManager::check`] before appending a
//! client's batch:
//! - a batch equal (epoch, first and last sequence) to a retained one is a duplicate, answered with the
//!   original offsets and not appended (`UnifiedLog.analyzeAndValidateProducerState`, `findDuplicateBatch`);
//! - an older epoch is `INVALID_PRODUCER_EPOCH` (`checkProducerEpoch`);
//! - a newer epoch must start at sequence 0; the same epoch must continue at last sequence + 1, otherwise
//!   `OUT_OF_ORDER_SEQUENCE_NUMBER` (`checkSequence`).
//! - Deviation: a producer this partition has no state for must start at sequence 0. Kafka (since KIP-360)
//!   accepts any sequence there, because retention may have removed the producer's state; with several
//!   requests in flight that lets a later batch land before an earlier rejected one, and the epoch bump the
//!   client then does re-sends the landed batch (a duplicate our model test found). Nothing here removes a
//!   producer's state yet; when retention does, revisit this rule.
//!
//! Followers and recovery apply batches unchecked ([`ProducerStateManager::update`], `replay`), as Kafka
//! does for `AppendOrigin.REPLICATION` and log loading. Snapshots (`<20-digit offset>.snapshot` beside the
//! segments) hold the state for every batch below their offset; recovery loads the newest readable one and
//! replays the log from there ([`ProducerStateManager::rebuild`]); a corrupt snapshot is an error naming the
//! file, and the caller then replays from an older snapshot or the log start.
//!
//! Deviation: Kafka's snapshot keeps only each producer's last batch; ours keeps all retained batches, so
//! retries of the last 5 batches are still recognised as duplicates after a restart.

use std::collections::{BTreeMap, VecDeque};

use crate::log::disk::{join, write_atomically, Disk, DiskError};
use crate::protocol::batch::BatchHeader;

/// Batches remembered per producer (Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`), matching the
/// producer's `max.in.flight.requests.per.connection` limit of 5 with idempotence.
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
/// `RecordBatch.NO_PRODUCER_EPOCH`.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// File suffix of producer state snapshots (Kafka's `LogFileUtils.PRODUCER_SNAPSHOT_FILE_SUFFIX`).
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";

const SNAPSHOT_VERSION: i16 = 1;
/// version i16, crc u32, producer count i32.
const SNAPSHOT_HEADER_BYTES: usize = 10;
/// producer id i64, epoch i16, batch count i32.
const ENTRY_HEADER_BYTES: usize = 14;
/// first seq i32, last seq i32, first offset i64, last offset i64.
const BATCH_BYTES: usize = 24;

/// The producer fields of an incoming or logged batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub first_seq: i32,
    pub last_seq: i32,
    /// Records in the batch (last offset = first offset + record_count - 1).
    pub record_count: i32,
}

impl ProducerBatch {
    /// The producer fields of a batch header; `None` for a batch without a producer id (no idempotence).
    pub fn from_header(h: &BatchHeader) -> Option<Self> {
        if h.producer_id < 0 {
            return None;
        }
        Some(Self {
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            first_seq: h.base_sequence,
            last_seq: increment_sequence(h.base_sequence, h.last_offset_delta),
            record_count: h.last_offset_delta.saturating_add(1),
        })
    }
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap from `i32::MAX` to 0.
pub fn increment_sequence(seq: i32, increment: i32) -> i32 {
    if seq > i32::MAX - increment {
        increment - (i32::MAX - seq) - 1
    } else {
        seq + increment
    }
}

/// Kafka's `ProducerAppendInfo.inSequence`.
fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    next_seq as i64 == last_seq as i64 + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

/// One retained batch (Kafka's `BatchMetadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// One producer's state in this partition (Kafka's `ProducerStateEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub producer_epoch: i16,
    /// The last batches, oldest first, at most [`NUM_BATCHES_TO_RETAIN`].
    pub batches: VecDeque<BatchMetadata>,
}

impl ProducerStateEntry {
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    fn find_duplicate(&self, b: &ProducerBatch) -> Option<&BatchMetadata> {
        if b.producer_epoch != self.producer_epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|m| m.first_seq == b.first_seq && m.last_seq == b.last_seq)
    }
}

/// What the leader does with a client's batch. The error variants are Kafka's protocol outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendCheck {
    /// Append it.
    Append,
    /// A retry of a batch already in the log: answer with its original offsets, append nothing.
    Duplicate { first_offset: i64, last_offset: i64 },
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER`: not the next sequence of this epoch (or a new epoch not at 0).
    OutOfOrderSequence {
        producer_id: i64,
        first_seq: i32,
        last_seq: Option<i32>,
    },
    /// `INVALID_PRODUCER_EPOCH`: an epoch older than the partition's.
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },
}

impl AppendCheck {
    /// The error code of a Produce response (`NONE` for an append or a duplicate).
    pub fn error_code(&self) -> i16 {
        match self {
            AppendCheck::Append | AppendCheck::Duplicate { .. } => 0,
            AppendCheck::OutOfOrderSequence { .. } => 45,
            AppendCheck::InvalidProducerEpoch { .. } => 47,
        }
    }
}

/// A snapshot that cannot be read or written; `Corrupt` names the file so the caller can say which one it
/// skipped before replaying the log instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error("corrupt producer state snapshot {file}: {reason}")]
    Corrupt { file: String, reason: String },
}

/// The idempotent-producer state of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: BTreeMap<i64, ProducerStateEntry>,
    /// The offset after the last batch applied (Kafka's `mapEndOffset`): a snapshot taken now covers every
    /// batch below it.
    map_end_offset: i64,
}

impl ProducerStateManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty state that starts at `offset` (a log whose start moved past every earlier batch).
    pub fn starting_at(offset: i64) -> Self {
        Self {
            producers: BTreeMap::new(),
            map_end_offset: offset,
        }
    }

    pub fn map_end_offset(&self) -> i64 {
        self.map_end_offset
    }

    /// Sets the offset the state is complete up to (Kafka's `updateMapEndOffset`): a roll at a new
    /// segment's base offset, or the end of a rebuild.
    pub fn update_map_end_offset(&mut self, offset: i64) {
        self.map_end_offset = offset;
    }

    pub fn entry(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    pub fn producers(&self) -> impl Iterator<Item = (&i64, &ProducerStateEntry)> {
        self.producers.iter()
    }

    /// Validates a client's batch against the state, without changing it.
    pub fn check(&self, b: &ProducerBatch) -> AppendCheck {
        let Some(entry) = self.producers.get(&b.producer_id) else {
            return if b.first_seq == 0 {
                AppendCheck::Append
            } else {
                AppendCheck::OutOfOrderSequence {
                    producer_id: b.producer_id,
                    first_seq: b.first_seq,
                    last_seq: None,
                }
            };
        };
        if let Some(dup) = entry.find_duplicate(b) {
            return AppendCheck::Duplicate {
                first_offset: dup.first_offset,
                last_offset: dup.last_offset,
            };
        }
        if b.producer_epoch < entry.producer_epoch {
            return AppendCheck::InvalidProducerEpoch {
                producer_id: b.producer_id,
                epoch: b.producer_epoch,
                current_epoch: entry.producer_epoch,
            };
        }
        let out_of_order = AppendCheck::OutOfOrderSequence {
            producer_id: b.producer_id,
            first_seq: b.first_seq,
            last_seq: entry.last_seq(),
        };
        if b.producer_epoch > entry.producer_epoch {
            // A new epoch starts its sequences at 0 (KIP-360's bump resets them).
            return if b.first_seq == 0 {
                AppendCheck::Append
            } else {
                out_of_order
            };
        }
        match entry.last_seq() {
            // The epoch is known but no batch is (a rebuilt entry whose batches were all removed).
            None => AppendCheck::Append,
            Some(last) if in_sequence(last, b.first_seq) => AppendCheck::Append,
            Some(_) => out_of_order,
        }
    }

    /// [`check`](Self::check), then [`update`](Self::update) at `next_offset` (the log end offset the batch
    /// will be appended at) when the answer is [`AppendCheck::Append`]. The caller must then append it.
    pub fn check_and_update(&mut self, b: &ProducerBatch, next_offset: i64) -> AppendCheck {
        let check = self.check(b);
        if check == AppendCheck::Append {
            self.update(b, next_offset);
        }
        check
    }

    /// Records a batch appended at `first_offset`, unchecked (leader after [`check`](Self::check), follower,
    /// log recovery). A newer epoch replaces the producer's batches.
    pub fn update(&mut self, b: &ProducerBatch, first_offset: i64) {
        let last_offset = first_offset + (b.record_count.max(1) as i64) - 1;
        let entry = self.producers.entry(b.producer_id).or_insert(ProducerStateEntry {
            producer_epoch: b.producer_epoch,
            batches: VecDeque::new(),
        });
        if b.producer_epoch != entry.producer_epoch {
            entry.producer_epoch = b.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: b.first_seq,
            last_seq: b.last_seq,
            first_offset,
            last_offset,
        });
        while entry.batches.len() > NUM_BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
        self.map_end_offset = self.map_end_offset.max(last_offset + 1);
    }

    /// Applies one batch read back from the log (recovery, or a follower's fetched batch with offsets).
    pub fn replay(&mut self, h: &BatchHeader) {
        if let Some(b) = ProducerBatch::from_header(h) {
            self.update(&b, h.base_offset);
        }
        self.map_end_offset = self.map_end_offset.max(h.next_offset());
    }

    /// State from `start` (a loaded snapshot, or empty state at the log start) plus the log's batches;
    /// batches below `start`'s map end offset are skipped.
    pub fn rebuild<'a>(start: Self, batches: impl IntoIterator<Item = &'a BatchHeader>) -> Self {
        let mut state = start;
        let from = state.map_end_offset;
        for h in batches.into_iter().filter(|h| h.base_offset >= from) {
            state.replay(h);
        }
        state
    }

    /// The snapshot bytes: version i16, CRC-32C u32 of everything after it, producer count i32, then per
    /// producer (ascending id): id i64, epoch i16, batch count i32, batches (first seq i32, last seq i32,
    /// first offset i64, last offset i64). The offset is the file name's.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&(self.producers.len() as i32).to_be_bytes());
        for (id, e) in &self.producers {
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&e.producer_epoch.to_be_bytes());
            body.extend_from_slice(&(e.batches.len() as i32).to_be_bytes());
            for m in &e.batches {
                body.extend_from_slice(&m.first_seq.to_be_bytes());
                body.extend_from_slice(&m.last_seq.to_be_bytes());
                body.extend_from_slice(&m.first_offset.to_be_bytes());
                body.extend_from_slice(&m.last_offset.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(body.len() + 6);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a snapshot read from `file` (a path or name ending in `<offset>.snapshot`).
    pub fn decode_snapshot(file: &str, bytes: &[u8]) -> Result<Self, SnapshotError> {
        let corrupt = |reason: String| SnapshotError::Corrupt {
            file: file.to_string(),
            reason,
        };
        let name = file.rsplit('/').next().unwrap_or(file);
        let offset = snapshot_offset(name).ok_or_else(|| corrupt("not a <offset>.snapshot name".into()))?;
        if bytes.len() < SNAPSHOT_HEADER_BYTES {
            return Err(corrupt(format!("{} bytes, shorter than the header", bytes.len())));
        }
        let version = i16::from_be_bytes([bytes[0], bytes[1]]);
        if version != SNAPSHOT_VERSION {
            return Err(corrupt(format!("version {version}, expected {SNAPSHOT_VERSION}")));
        }
        let crc = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
        let computed = crc32c::crc32c(&bytes[6..]);
        if crc != computed {
            return Err(corrupt(format!("crc {crc:#010x} stored, {computed:#010x} computed")));
        }
        let mut state = Self::starting_at(offset);
        decode_entries(&bytes[6..], &mut state.producers).map_err(corrupt)?;
        Ok(state)
    }

    /// Writes a snapshot of this state as `<dir>/<map end offset>.snapshot` (temp file, sync, rename, dir
    /// sync), returning its path.
    pub fn write_snapshot(&self, disk: &mut dyn Disk, dir: &str) -> Result<String, SnapshotError> {
        let path = join(dir, &snapshot_file_name(self.map_end_offset));
        write_atomically(disk, &path, &self.encode_snapshot())?;
        Ok(path)
    }
}

fn decode_entries(body: &[u8], out: &mut BTreeMap<i64, ProducerStateEntry>) -> Result<(), String> {
    let mut r = Cursor { buf: body, at: 0 };
    let count = r.i32()?;
    if count < 0 || count as usize > body.len() / ENTRY_HEADER_BYTES {
        return Err(format!("producer count {count} does not fit {} bytes", body.len()));
    }
    for _ in 0..count {
        let id = r.i64()?;
        let epoch = r.i16()?;
        let n = r.i32()?;
        if n < 0 || n as usize > NUM_BATCHES_TO_RETAIN || (n as usize) * BATCH_BYTES > body.len() - r.at {
            return Err(format!("producer {id}: batch count {n} at byte {}", r.at - 4));
        }
        let mut batches = VecDeque::new();
        for _ in 0..n {
            batches.push_back(BatchMetadata {
                first_seq: r.i32()?,
                last_seq: r.i32()?,
                first_offset: r.i64()?,
                last_offset: r.i64()?,
            });
        }
        out.insert(
            id,
            ProducerStateEntry {
                producer_epoch: epoch,
                batches,
            },
        );
    }
    if r.at != body.len() {
        return Err(format!("{} trailing bytes", body.len() - r.at));
    }
    Ok(())
}

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let end = self.at + N;
        let bytes = self
            .buf
            .get(self.at..end)
            .ok_or_else(|| format!("truncated at byte {} (needs {N})", self.at + 6))?;
        self.at = end;
        Ok(bytes.try_into().expect("slice of N bytes"))
    }
    fn i16(&mut self) -> Result<i16, String> {
        self.take::<2>().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Result<i32, String> {
        self.take::<4>().map(i32::from_be_bytes)
    }
    fn i64(&mut self) -> Result<i64, String> {
        self.take::<8>().map(i64::from_be_bytes)
    }
}

/// `<20-digit offset>.snapshot`, as Kafka names producer snapshots.
pub fn snapshot_file_name(offset: i64) -> String {
    format!("{offset:020}{SNAPSHOT_SUFFIX}")
}

/// The offset of a snapshot file name, if it is one.
pub fn snapshot_offset(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The snapshot offsets in `dir`, ascending.
pub fn list_snapshots(disk: &mut dyn Disk, dir: &str) -> Result<Vec<i64>, DiskError> {
    let mut offsets: Vec<i64> = disk.list(dir)?.iter().filter_map(|n| snapshot_offset(n)).collect();
    offsets.sort_unstable();
    Ok(offsets)
}

/// Loads the snapshot at `offset` from `dir`.
pub fn read_snapshot(disk: &mut dyn Disk, dir: &str, offset: i64) -> Result<ProducerStateManager, SnapshotError> {
    let path = join(dir, &snapshot_file_name(offset));
    let len = disk.len(&path)?;
    let bytes = disk.read_at(&path, 0, len as usize)?;
    ProducerStateManager::decode_snapshot(&path, &bytes)
}

/// Removes the snapshots above `offset` (a truncation to `offset` makes them describe batches that are
/// gone; Kafka's `truncateAndReload`). Returns the removed offsets.
pub fn remove_snapshots_after(disk: &mut dyn Disk, dir: &str, offset: i64) -> Result<Vec<i64>, DiskError> {
    let gone: Vec<i64> = list_snapshots(disk, dir)?.into_iter().filter(|o| *o > offset).collect();
    for o in &gone {
        disk.remove(&join(dir, &snapshot_file_name(*o)))?;
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::mem_disk::MemDisk;

    fn batch(pid: i64, epoch: i16, first_seq: i32, n: i32) -> ProducerBatch {
        ProducerBatch {
            producer_id: pid,
            producer_epoch: epoch,
            first_seq,
            last_seq: increment_sequence(first_seq, n - 1),
            record_count: n,
        }
    }

    /// Appends in order from offset 0 and returns the state; batches of `n` records.
    fn appended(batches: &[ProducerBatch]) -> ProducerStateManager {
        let mut s = ProducerStateManager::new();
        for b in batches {
            let at = s.map_end_offset();
            assert_eq!(s.check_and_update(b, at), AppendCheck::Append, "{b:?}");
        }
        s
    }

    #[test]
    fn in_sequence_batches_are_appended_and_a_gap_is_out_of_order() {
        let mut s = appended(&[batch(7, 0, 0, 3), batch(7, 0, 3, 2)]);
        assert_eq!(s.map_end_offset(), 5);
        let gap = s.check_and_update(&batch(7, 0, 6, 1), 5);
        assert_eq!(
            gap,
            AppendCheck::OutOfOrderSequence {
                producer_id: 7,
                first_seq: 6,
                last_seq: Some(4)
            }
        );
        assert_eq!(gap.error_code(), 45);
        assert_eq!(s.map_end_offset(), 5, "a rejected batch changes nothing");
    }

    #[test]
    fn a_retry_of_any_of_the_last_five_batches_is_a_duplicate_with_its_original_offsets() {
        let bs: Vec<_> = (0..6).map(|i| batch(1, 0, i * 2, 2)).collect();
        let mut s = appended(&bs);
        for (i, b) in bs.iter().enumerate().skip(1) {
            let first = i as i64 * 2;
            assert_eq!(
                s.check_and_update(b, 12),
                AppendCheck::Duplicate {
                    first_offset: first,
                    last_offset: first + 1
                }
            );
        }
        // The sixth-newest batch is no longer retained: a retry of it is out of order, as in Kafka.
        assert!(matches!(s.check(&bs[0]), AppendCheck::OutOfOrderSequence { .. }));
        assert_eq!(s.map_end_offset(), 12);
    }

    #[test]
    fn a_partial_overlap_with_a_retained_batch_is_out_of_order_not_a_duplicate() {
        let s = appended(&[batch(1, 0, 0, 4)]);
        assert!(matches!(
            s.check(&batch(1, 0, 0, 2)),
            AppendCheck::OutOfOrderSequence { .. }
        ));
    }

    #[test]
    fn an_older_epoch_is_invalid_producer_epoch() {
        let s = appended(&[batch(1, 0, 0, 1), batch(1, 1, 0, 1)]);
        let c = s.check(&batch(1, 0, 1, 1));
        assert_eq!(
            c,
            AppendCheck::InvalidProducerEpoch {
                producer_id: 1,
                epoch: 0,
                current_epoch: 1
            }
        );
        assert_eq!(c.error_code(), 47);
    }

    #[test]
    fn a_new_epoch_must_start_at_sequence_zero_and_forgets_the_old_batches() {
        let mut s = appended(&[batch(1, 0, 0, 1), batch(1, 0, 1, 1)]);
        assert!(matches!(
            s.check(&batch(1, 1, 2, 1)),
            AppendCheck::OutOfOrderSequence { .. }
        ));
        assert_eq!(s.check_and_update(&batch(1, 1, 0, 1), 2), AppendCheck::Append);
        assert_eq!(s.entry(1).map(|e| e.batches.len()), Some(1));
        // The old epoch's seq 1 retried now is fenced, not a duplicate.
        assert!(matches!(
            s.check(&batch(1, 0, 1, 1)),
            AppendCheck::InvalidProducerEpoch { .. }
        ));
    }

    #[test]
    fn an_unknown_producer_must_start_at_sequence_zero() {
        let s = appended(&[batch(1, 0, 0, 1)]);
        assert!(matches!(
            s.check(&batch(2, 3, 17, 1)),
            AppendCheck::OutOfOrderSequence { .. }
        ));
        assert_eq!(s.check(&batch(2, 3, 0, 1)), AppendCheck::Append);
    }

    #[test]
    fn producers_are_independent() {
        let s = appended(&[batch(1, 0, 0, 1), batch(2, 0, 0, 1), batch(1, 0, 1, 1)]);
        assert_eq!(s.check(&batch(2, 0, 1, 1)), AppendCheck::Append);
        assert_eq!(
            s.check(&batch(2, 0, 0, 1)),
            AppendCheck::Duplicate {
                first_offset: 1,
                last_offset: 1
            }
        );
    }

    #[test]
    fn sequences_wrap_from_i32_max_to_zero() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        let mut s = ProducerStateManager::new();
        s.update(&batch(1, 0, i32::MAX - 1, 2), 0);
        assert_eq!(s.check(&batch(1, 0, 0, 1)), AppendCheck::Append);
    }

    #[test]
    fn from_header_reads_the_producer_fields_and_skips_non_idempotent_batches() {
        use crate::protocol::batch::BatchBuilder;
        let mut b = BatchBuilder::new(0).producer(9, 2, 40);
        for _ in 0..3 {
            b.push(0, None, Some(b"v"), &[]);
        }
        let h = BatchHeader::parse(&b.build()).expect("header");
        assert_eq!(ProducerBatch::from_header(&h), Some(batch(9, 2, 40, 3)));
        let mut plain = BatchBuilder::new(0);
        plain.push(0, None, Some(b"v"), &[]);
        let h = BatchHeader::parse(&plain.build()).expect("header");
        assert_eq!(ProducerBatch::from_header(&h), None);
    }

    #[test]
    fn snapshot_round_trips_and_names_its_offset_with_twenty_digits() {
        let s = appended(&[batch(1, 0, 0, 2), batch(5, 3, 0, 1), batch(1, 0, 2, 1)]);
        let bytes = s.encode_snapshot();
        let name = snapshot_file_name(s.map_end_offset());
        assert_eq!(name, "00000000000000000004.snapshot");
        assert_eq!(snapshot_offset(&name), Some(4));
        assert_eq!(snapshot_offset("4.snapshot"), None);
        assert_eq!(ProducerStateManager::decode_snapshot(&name, &bytes), Ok(s));
    }

    #[test]
    fn a_corrupt_snapshot_is_an_error_naming_the_file() {
        let s = appended(&[batch(1, 0, 0, 2)]);
        let mut bytes = s.encode_snapshot();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let file = format!("t-0/{}", snapshot_file_name(2));
        let err = ProducerStateManager::decode_snapshot(&file, &bytes).expect_err("bit flip");
        assert!(err.to_string().contains(&file), "{err}");
        assert!(err.to_string().contains("crc"), "{err}");
        let short = ProducerStateManager::decode_snapshot(&file, &bytes[..4]).expect_err("short");
        assert!(matches!(short, SnapshotError::Corrupt { .. }), "{short}");
    }

    #[test]
    fn rebuild_from_a_snapshot_plus_the_log_suffix_equals_the_live_state() {
        use crate::protocol::batch::BatchBuilder;
        let mut log = Vec::new();
        let mut live = ProducerStateManager::new();
        let mut offset = 0i64;
        let mut snapshot = None;
        for i in 0..8 {
            let (pid, seq) = (i % 2, i / 2);
            let mut b = BatchBuilder::new(0).producer(pid, 0, seq as i32);
            b.push(0, None, Some(b"v"), &[]);
            let mut bytes = b.build();
            crate::protocol::batch::set_base_offset(&mut bytes, offset);
            let h = BatchHeader::parse(&bytes).expect("header");
            let pb = ProducerBatch::from_header(&h).expect("idempotent");
            assert_eq!(live.check_and_update(&pb, offset), AppendCheck::Append);
            log.push(h);
            offset += 1;
            if i == 4 {
                snapshot = Some(live.encode_snapshot());
            }
        }
        let snap =
            ProducerStateManager::decode_snapshot(&snapshot_file_name(5), &snapshot.expect("taken")).expect("decodes");
        assert_eq!(ProducerStateManager::rebuild(snap, &log), live);
        assert_eq!(ProducerStateManager::rebuild(ProducerStateManager::new(), &log), live);
    }

    #[test]
    fn snapshots_are_written_listed_read_and_removed_above_a_truncation() {
        let mut disk = MemDisk::new();
        disk.create_dir("t-0").expect("dir");
        let mut s = appended(&[batch(1, 0, 0, 2)]);
        let p2 = s.write_snapshot(&mut disk, "t-0").expect("write");
        assert_eq!(p2, "t-0/00000000000000000002.snapshot");
        s.update(&batch(1, 0, 2, 3), 2);
        s.write_snapshot(&mut disk, "t-0").expect("write");
        assert_eq!(list_snapshots(&mut disk, "t-0"), Ok(vec![2, 5]));
        assert_eq!(read_snapshot(&mut disk, "t-0", 5), Ok(s));
        assert_eq!(remove_snapshots_after(&mut disk, "t-0", 3), Ok(vec![5]));
        assert_eq!(list_snapshots(&mut disk, "t-0"), Ok(vec![2]));
    }
}
