//! The log's idempotent-producer state (Kafka's `UnifiedLog.analyzeAndValidateProducerState` and the
//! `ProducerStateManager` snapshot handling of `UnifiedLog`/`LogLoader`, KIP-98, KIP-360).
//!
//! - A leader append of client batches is checked first: a retry of one of the producer's last 5 batches
//!   is answered with its original offsets and not appended; a gap or a fenced epoch is refused.
//! - Every appended batch (leader or follower) updates the state; a roll snapshots it at the new segment's
//!   base offset, and so does a clean shutdown. Only the newest [`SNAPSHOTS_TO_RETAIN`] snapshots are kept.
//! - Loading and truncation drop the snapshots above the log end offset (they describe batches that are
//!   gone), load the newest readable one (deleting corrupt ones) and replay the log from there.

use crate::log::disk::{join, Disk};
use crate::log::log::Log;
use crate::log::producer_state::{
    list_snapshots, read_snapshot, remove_snapshots_after, snapshot_file_name, AppendCheck, ProducerBatch,
    ProducerStateManager, SnapshotError,
};
use crate::log::segment::{scan, ScanEnd};
use crate::log::LogError;
use crate::protocol::batch::BatchHeader;

/// Snapshots kept per partition: the newest, plus one to fall back on if the newest is corrupt. Kafka keeps
/// one per segment until retention removes the segment; two bound the replay as well once segments roll.
pub const SNAPSHOTS_TO_RETAIN: usize = 2;

fn snapshot_error(e: SnapshotError) -> LogError {
    match e {
        SnapshotError::Disk(d) => LogError::Disk(d),
        SnapshotError::Corrupt { file, reason } => LogError::MalformedFile { file, line: 0, reason },
    }
}

impl Log {
    /// The partition's idempotent-producer state.
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producer_state
    }

    /// Checks a leader append's client batches against the producer state, in order (Kafka's
    /// `analyzeAndValidateProducerState` for `AppendOrigin.CLIENT`). `Ok(Some((first, last)))`: the append is
    /// a retry of a batch already in the log at those offsets, to be answered with them and not appended.
    pub(super) fn analyze_producer_state<'a>(
        &self,
        headers: impl IntoIterator<Item = &'a BatchHeader>,
    ) -> Result<Option<(i64, i64)>, LogError> {
        let batches: Vec<ProducerBatch> = headers.into_iter().filter_map(ProducerBatch::from_header).collect();
        // Produce v3+ carries one batch per partition; several batches are checked against a staged copy.
        let mut staged = (batches.len() > 1).then(|| self.producer_state.clone());
        let mut next_offset = self.log_end_offset;
        for b in &batches {
            let state = staged.as_ref().unwrap_or(&self.producer_state);
            match state.check(b) {
                AppendCheck::Append => {}
                AppendCheck::Duplicate {
                    first_offset,
                    last_offset,
                } if batches.len() == 1 => return Ok(Some((first_offset, last_offset))),
                AppendCheck::Duplicate { .. } => {
                    return Err(LogError::InvalidRecords {
                        reason: format!(
                            "producer {}: a duplicate batch (seq {}) among {} batches",
                            b.producer_id,
                            b.first_seq,
                            batches.len()
                        ),
                    })
                }
                AppendCheck::OutOfOrderSequence {
                    producer_id,
                    first_seq,
                    last_seq,
                } => {
                    return Err(LogError::OutOfOrderSequence {
                        producer_id,
                        first_seq,
                        last_seq,
                    })
                }
                AppendCheck::InvalidProducerEpoch {
                    producer_id,
                    epoch,
                    current_epoch,
                } => {
                    return Err(LogError::InvalidProducerEpoch {
                        producer_id,
                        epoch,
                        current_epoch,
                    })
                }
            }
            if let Some(s) = staged.as_mut() {
                s.update(b, next_offset);
                next_offset += i64::from(b.record_count.max(1));
            }
        }
        Ok(None)
    }

    /// Writes a snapshot of the producer state at `offset` (the new segment's base offset on a roll, the log
    /// end offset on a clean shutdown), first removing older snapshots beyond the newest
    /// [`SNAPSHOTS_TO_RETAIN`]` - 1`; the atomic write's directory sync makes those removals durable too.
    pub(super) fn take_producer_snapshot(&mut self, disk: &mut dyn Disk, offset: i64) -> Result<(), LogError> {
        self.producer_state.update_map_end_offset(offset);
        let older: Vec<i64> = list_snapshots(disk, &self.dir)?
            .into_iter()
            .filter(|o| *o < offset)
            .collect();
        let doomed = older.len().saturating_sub(SNAPSHOTS_TO_RETAIN - 1);
        for o in &older[..doomed] {
            disk.remove(&join(&self.dir, &snapshot_file_name(*o)))?;
        }
        self.producer_state
            .write_snapshot(disk, &self.dir)
            .map_err(snapshot_error)?;
        Ok(())
    }

    /// Rebuilds the producer state for the current log (Kafka's `rebuildProducerState` after loading or
    /// truncating): removes snapshots above the log end offset, loads the newest readable one (deleting any
    /// corrupt one it meets), replays the log's batches from there. Returns what each skipped snapshot was.
    pub(super) fn reload_producer_state(&mut self, disk: &mut dyn Disk) -> Result<Vec<String>, LogError> {
        let leo = self.log_end_offset;
        if !remove_snapshots_after(disk, &self.dir, leo)?.is_empty() {
            // Durably: a snapshot resurrected by a power loss would describe batches the log no longer has.
            disk.sync_dir(&self.dir)?;
        }
        let mut skipped = Vec::new();
        let mut start = None;
        for offset in list_snapshots(disk, &self.dir)?.into_iter().rev() {
            match read_snapshot(disk, &self.dir, offset) {
                Ok(state) => {
                    start = Some(state);
                    break;
                }
                Err(SnapshotError::Disk(d)) if d.is_storage_failure() => return Err(LogError::Disk(d)),
                Err(e) => {
                    tracing::warn!("{}: skipping producer state snapshot: {e}", self.tp);
                    skipped.push(e.to_string());
                    disk.remove(&join(&self.dir, &snapshot_file_name(offset)))?;
                }
            }
        }
        let mut state = start.unwrap_or_default();
        self.replay_into(disk, &mut state)?;
        state.update_map_end_offset(leo);
        self.producer_state = state;
        Ok(skipped)
    }

    /// Applies the log's batches from `state`'s map end offset on.
    fn replay_into(&self, disk: &mut dyn Disk, state: &mut ProducerStateManager) -> Result<(), LogError> {
        let from = state.map_end_offset();
        for seg in self.segments.values().filter(|s| s.next_offset > from) {
            let (_, position) = seg.index.lookup(from);
            let mut visit = |_: u64, h: &BatchHeader, _: &[u8]| {
                if h.base_offset >= from {
                    state.replay(h);
                }
                Ok(true)
            };
            if let ScanEnd::Bad { position, reason } = scan(disk, &seg.log_path, position, seg.size, &mut visit)? {
                // Below the recovery point the disk is trusted (as Kafka does); a bad batch there stops the
                // replay rather than the broker.
                tracing::warn!(
                    "{}: producer state replay stopped at byte {position} of {}: {reason}",
                    self.tp,
                    seg.log_path
                );
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "log_producers_tests.rs"]
mod tests;
