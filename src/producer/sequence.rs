//! The idempotent producer's sequence bookkeeping (the non-transactional part of Kafka's
//! `TransactionManager` and `TxnPartitionMap`, KIP-98 and KIP-360).
//!
//! - Sequences are assigned per partition when a batch is first drained and kept on every retry.
//! - A sequenced batch is retried only when it is the partition's first in-flight sequence; new batches
//!   wait while the partition has an unresolved sequence or a pending epoch bump.
//! - A batch that expired on the wire (`delivery.timeout.ms`) leaves its sequence *unresolved*: a later
//!   batch acknowledged proves it landed; if nothing is left in flight and it is still unresolved, the
//!   producer bumps its epoch (client side, KIP-360's `bumpIdempotentProducerEpoch`) and restarts the
//!   partition's sequences at 0.
//! - A batch that failed for good after no attempt could have landed leaves a gap: epoch bump.
//! - `OUT_OF_ORDER_SEQUENCE_NUMBER` is always retried; it asks for a bump when the batch is the next
//!   expected one (a real gap), as `TransactionManager.canRetry` does.
//! - Two guards beyond Kafka's client, both found by `tests/accumulator_model.rs`: a batch at or below the
//!   last acknowledged sequence landed (the broker appends in sequence order), so it is never unresolved
//!   nor a gap; and while a bump is pending no retry of the old epoch goes out, so a batch renumbered by
//!   the bump never has an old-epoch attempt processed after the answer that asked for the bump.

use std::collections::{BTreeMap, BTreeSet};

use crate::producer::accumulator::{ClientBatch, RecordAccumulator};
use crate::types::TopicPartition;

/// The producer id and epoch (Kafka's `ProducerIdAndEpoch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub epoch: i16,
}

/// One partition's sequence state (Kafka's `TxnPartitionEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSequences {
    /// The id and epoch this partition's sequences belong to (may lag the producer's after a bump).
    pub id_and_epoch: ProducerIdAndEpoch,
    pub next_sequence: i32,
    pub last_acked_sequence: Option<i32>,
    /// Base sequences of sequenced batches not yet completed (on the wire or queued for a retry).
    pub in_flight: BTreeSet<i32>,
    /// The highest last sequence of a batch that expired while it may have landed.
    pub unresolved: Option<i32>,
}

impl PartitionSequences {
    fn new(id_and_epoch: ProducerIdAndEpoch) -> Self {
        Self {
            id_and_epoch,
            next_sequence: 0,
            last_acked_sequence: None,
            in_flight: BTreeSet::new(),
            unresolved: None,
        }
    }

    /// Whether `seq` is at or below the last acknowledged sequence of this epoch.
    fn is_acked(&self, seq: i32) -> bool {
        self.last_acked_sequence.is_some_and(|a| seq <= a)
    }

    fn is_next_sequence(&self, seq: i32) -> bool {
        seq as i64 == self.last_acked_sequence.map_or(0, |s| s as i64 + 1)
    }
}

/// The idempotent producer's id, epoch and per-partition sequences.
#[derive(Debug, Clone, Default)]
pub struct Sequences {
    id_and_epoch: Option<ProducerIdAndEpoch>,
    partitions: BTreeMap<TopicPartition, PartitionSequences>,
    bump_requested: BTreeSet<TopicPartition>,
}

impl Sequences {
    pub fn id_and_epoch(&self) -> Option<ProducerIdAndEpoch> {
        self.id_and_epoch
    }

    /// An InitProducerId answer: a new id resets every partition's sequences.
    pub fn set_id_and_epoch(&mut self, id: ProducerIdAndEpoch) {
        self.id_and_epoch = Some(id);
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<&PartitionSequences> {
        self.partitions.get(tp)
    }

    pub fn bump_requested(&self) -> &BTreeSet<TopicPartition> {
        &self.bump_requested
    }

    /// Kafka's `shouldStopDrainBatchesForPartition`, inverted: may `batch` (the partition's first) go now?
    /// A partition on a stale epoch with nothing in flight adopts the producer's current one here.
    pub fn may_drain(&mut self, batch: &ClientBatch) -> bool {
        let Some(current) = self.id_and_epoch else { return false };
        let entry = self
            .partitions
            .entry(batch.tp.clone())
            .or_insert_with(|| PartitionSequences::new(current));
        match batch.base_sequence {
            None => {
                if entry.unresolved.is_some() || self.bump_requested.contains(&batch.tp) {
                    return false;
                }
                if entry.id_and_epoch != current {
                    if !entry.in_flight.is_empty() {
                        return false;
                    }
                    *entry = PartitionSequences::new(current);
                }
                true
            }
            // A retry waits for a requested bump too: the out-of-order answer that asked for it may be stale
            // (an earlier batch's retry, still on the wire, can land after it), so nothing more of the old
            // epoch goes out; the bump renumbers the batch once the partition has nothing on the wire.
            Some(seq) => {
                !self.bump_requested.contains(&batch.tp) && entry.in_flight.first().is_none_or(|first| *first == seq)
            }
        }
    }

    /// Stamps a batch at its first drain with the partition's id, epoch and next sequence; a retried batch
    /// keeps its own.
    pub fn on_drain(&mut self, batch: &mut ClientBatch) {
        let current = self.id_and_epoch.expect("drain is gated on a producer id");
        let entry = self
            .partitions
            .entry(batch.tp.clone())
            .or_insert_with(|| PartitionSequences::new(current));
        if batch.base_sequence.is_none() {
            batch.producer_id = entry.id_and_epoch.producer_id;
            batch.producer_epoch = entry.id_and_epoch.epoch;
            batch.base_sequence = Some(entry.next_sequence);
            entry.next_sequence =
                crate::log::producer_state::increment_sequence(entry.next_sequence, batch.record_count());
        }
        if let Some(seq) = batch.base_sequence {
            entry.in_flight.insert(seq);
        }
    }

    fn entry_of(&mut self, batch: &ClientBatch) -> Option<&mut PartitionSequences> {
        let entry = self.partitions.get_mut(&batch.tp)?;
        let same_epoch =
            entry.id_and_epoch.producer_id == batch.producer_id && entry.id_and_epoch.epoch == batch.producer_epoch;
        same_epoch.then_some(entry)
    }

    /// An acknowledged batch (also one that expired meanwhile): it resolves earlier unresolved sequences.
    pub fn on_acked(&mut self, batch: &ClientBatch) {
        let (Some(seq), Some(last)) = (batch.base_sequence, batch.last_sequence()) else {
            return;
        };
        let Some(entry) = self.entry_of(batch) else { return };
        entry.in_flight.remove(&seq);
        entry.last_acked_sequence = Some(entry.last_acked_sequence.map_or(last, |a| a.max(last)));
        if entry.unresolved.is_some_and(|u| u <= last) {
            entry.unresolved = None;
        }
    }

    /// A batch completed without an acknowledgement (expired, or failed for good).
    pub fn on_failed(&mut self, batch: &ClientBatch) {
        let (Some(seq), Some(last)) = (batch.base_sequence, batch.last_sequence()) else {
            return;
        };
        let tp = batch.tp.clone();
        let Some(entry) = self.entry_of(batch) else { return };
        entry.in_flight.remove(&seq);
        if entry.is_acked(last) {
            // A later sequence of this epoch was acknowledged: the broker appends in sequence order, so this
            // batch landed; nothing is unresolved and there is no gap.
            return;
        }
        if batch.maybe_landed {
            entry.unresolved = Some(entry.unresolved.map_or(last, |u| u.max(last)));
        } else {
            self.bump_requested.insert(tp);
        }
    }

    /// `OUT_OF_ORDER_SEQUENCE_NUMBER` or `UNKNOWN_PRODUCER_ID` for `batch` (which is then retried): a bump
    /// when it is the next sequence expected, or the one right after the unresolved sequence.
    pub fn on_out_of_order(&mut self, batch: &ClientBatch) {
        let Some(seq) = batch.base_sequence else { return };
        let tp = batch.tp.clone();
        let Some(entry) = self.entry_of(batch) else { return };
        if entry.is_acked(seq) {
            // A retry of a batch that landed (the broker has moved past it and forgot its metadata): not a gap.
            // Bumping here would renumber a landed batch and append it twice.
            return;
        }
        let gap = match entry.unresolved {
            None => entry.is_next_sequence(seq),
            Some(u) => seq as i64 == u as i64 + 1,
        };
        if gap {
            self.bump_requested.insert(tp);
        }
    }

    /// Kafka's `maybeResolveSequences`: an unresolved partition with nothing left in flight either got a
    /// later acknowledgement (resolved) or needs an epoch bump.
    pub fn maybe_resolve(&mut self) {
        for (tp, entry) in &mut self.partitions {
            let Some(u) = entry.unresolved else { continue };
            if !entry.in_flight.is_empty() {
                continue;
            }
            if entry.last_acked_sequence.is_some_and(|a| a >= u) {
                entry.unresolved = None;
            } else {
                self.bump_requested.insert(tp.clone());
            }
        }
    }

    /// Bumps the epoch for the partitions that asked, once none of them has a batch on the wire; their
    /// queued batches are then renumbered from 0 under the new epoch. Returns whether it bumped.
    pub fn maybe_bump(&mut self, on_wire: impl Fn(&TopicPartition) -> bool, queued: &mut RecordAccumulator) -> bool {
        let Some(current) = self.id_and_epoch else { return false };
        if self.bump_requested.is_empty() || self.bump_requested.iter().any(&on_wire) {
            return false;
        }
        // At i16::MAX Kafka asks for a new producer id instead; this core saturates (not reached in runs).
        let bumped = ProducerIdAndEpoch {
            producer_id: current.producer_id,
            epoch: current.epoch.saturating_add(1),
        };
        self.id_and_epoch = Some(bumped);
        for tp in std::mem::take(&mut self.bump_requested) {
            let mut entry = PartitionSequences::new(bumped);
            for b in queued.batches_mut(&tp) {
                if b.base_sequence.is_none() {
                    continue;
                }
                b.producer_id = bumped.producer_id;
                b.producer_epoch = bumped.epoch;
                b.base_sequence = Some(entry.next_sequence);
                entry.in_flight.insert(entry.next_sequence);
                entry.next_sequence += b.record_count();
            }
            self.partitions.insert(tp, entry);
        }
        true
    }
}
