//! Fetch positions and poll order (Kafka's `SubscriptionState` + the record-returning part of `Fetcher`).
//!
//! A partition's position is the next offset `poll` will return; it moves only when `poll` hands records
//! to the application, so what auto-commit commits is what the application got (KAFKA-2942). A partition
//! without a position waits for its committed offset or for a reset (`auto.offset.reset`,
//! `seek_to_beginning`/`end`) through ListOffsets. Fetched records wait in a per-partition buffer; `poll`
//! returns them in offset order per partition, taking partitions in turn, at most `max.poll.records`.

use std::collections::{BTreeMap, VecDeque};

use crate::types::{LeaderEpoch, Offset, TopicPartition};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub tp: TopicPartition,
    pub offset: Offset,
    /// The leader epoch of the batch holding the record (KIP-320).
    pub leader_epoch: LeaderEpoch,
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Record headers, in order (repeated keys kept).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Where the next fetch starts, with the leader epoch of the last record consumed (KIP-320; -1 unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchPosition {
    pub offset: Offset,
    pub leader_epoch: LeaderEpoch,
}

/// Why a partition has no position yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Awaiting {
    /// Its committed offset (OffsetFetch) — a group consumer's newly assigned partition.
    Committed,
    /// A ListOffsets at this timestamp (-2 earliest, -1 latest).
    Reset { timestamp: i64 },
    /// No committed offset and `auto.offset.reset=none`: the application must seek.
    NoOffset,
}

/// A partition's answer in a Fetch response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchResult {
    Records {
        records: Vec<ConsumerRecord>,
        high_watermark: Offset,
        /// The offset after the last whole batch returned (a compacted batch may end past its last record,
        /// or hold none): the position moves there once the records are polled (Kafka's `nextFetchOffset`).
        next_fetch_offset: Offset,
    },
    Error {
        error_code: i16,
    },
}

#[derive(Clone, Debug, Default)]
struct PartitionState {
    position: Option<FetchPosition>,
    wants: Option<Awaiting>,
    buffer: VecDeque<ConsumerRecord>,
    /// The offset a fetch in flight started at.
    fetch_in_flight: Option<Offset>,
    /// A ListOffsets or OffsetFetch in flight.
    lookup_in_flight: bool,
    high_watermark: Option<Offset>,
    paused: bool,
    /// The partition leader's epoch as metadata last showed it (KIP-320's `currentLeader`).
    current_leader_epoch: Option<LeaderEpoch>,
    /// The position must be validated with OffsetsForLeaderEpoch before the next fetch (KIP-320's
    /// AWAIT_VALIDATION); `lookup_in_flight` while the request is out.
    validation_pending: bool,
    /// The fetched batches' end: the position moves there when the buffer drains (compaction gaps).
    fetched_end: Option<Offset>,
}

impl PartitionState {
    /// Once every fetched record is polled, the position moves to the fetched batches' end (Kafka's
    /// `nextFetchOffset`): compacted batches may end past their last record or hold none at all, and a
    /// consumer that stayed at the gap would fetch the same batches forever.
    fn skip_past_drained_batches(&mut self) {
        if !self.buffer.is_empty() {
            return;
        }
        if let (Some(end), Some(pos)) = (self.fetched_end.take(), self.position.as_mut()) {
            if end > pos.offset {
                pos.offset = end;
            }
        }
    }
}

/// What a KIP-320 validation found: the leader's log ends for the position's epoch below the position, so
/// records this consumer may have returned are gone (the log was truncated after a leader change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// The position that was validated (the next offset the consumer would have returned).
    pub position: FetchPosition,
    /// Where the consumer resumes: the end offset the leader returned for that epoch; `None` when the
    /// leader knew no such epoch and `auto.offset.reset` decides (or the application must seek).
    pub reset_to: Option<FetchPosition>,
}

/// The mark of a consumer that detected a truncation below its position (KIP-320).
pub const CONSUMER_DETECTED_TRUNCATION_MARK: &str = "consumer-detected-truncation";

#[derive(Clone, Debug, Default)]
pub struct Positions {
    partitions: BTreeMap<TopicPartition, PartitionState>,
    /// The partition after which the next `poll` starts (round-robin over partitions).
    last_polled: Option<TopicPartition>,
}

impl Positions {
    /// Sets the assignment: kept partitions keep their state, new ones await `initial`.
    pub fn set_assignment(&mut self, partitions: &[TopicPartition], initial: Awaiting) {
        self.partitions.retain(|tp, _| partitions.contains(tp));
        for tp in partitions {
            self.partitions.entry(tp.clone()).or_insert_with(|| PartitionState {
                wants: Some(initial),
                ..Default::default()
            });
        }
    }

    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    pub fn is_assigned(&self, tp: &TopicPartition) -> bool {
        self.partitions.contains_key(tp)
    }

    pub fn position(&self, tp: &TopicPartition) -> Option<FetchPosition> {
        self.partitions.get(tp).and_then(|p| p.position)
    }

    pub fn wants(&self, tp: &TopicPartition) -> Option<Awaiting> {
        self.partitions.get(tp).and_then(|p| p.wants)
    }

    /// Kafka's `seek`: the next poll of `tp` starts at `offset`; buffered and in-flight data is dropped.
    pub fn seek(&mut self, tp: &TopicPartition, offset: Offset) -> bool {
        let Some(p) = self.partitions.get_mut(tp) else {
            return false;
        };
        *p = PartitionState {
            position: Some(FetchPosition {
                offset,
                leader_epoch: -1,
            }),
            paused: p.paused,
            high_watermark: p.high_watermark,
            ..Default::default()
        };
        true
    }

    /// `seekToBeginning` (-2) / `seekToEnd` (-1): the position is looked up lazily with ListOffsets.
    pub fn request_reset(&mut self, tp: &TopicPartition, timestamp: i64) -> bool {
        let Some(p) = self.partitions.get_mut(tp) else {
            return false;
        };
        *p = PartitionState {
            wants: Some(Awaiting::Reset { timestamp }),
            paused: p.paused,
            ..Default::default()
        };
        true
    }

    pub fn pause(&mut self, tp: &TopicPartition, paused: bool) {
        if let Some(p) = self.partitions.get_mut(tp) {
            p.paused = paused;
        }
    }

    /// Partitions waiting for a lookup that is not in flight; marks them in flight.
    pub fn take_lookups(&mut self) -> Vec<(TopicPartition, Awaiting)> {
        let mut out = vec![];
        for (tp, p) in &mut self.partitions {
            match p.wants {
                Some(a @ (Awaiting::Committed | Awaiting::Reset { .. })) if !p.lookup_in_flight => {
                    p.lookup_in_flight = true;
                    out.push((tp.clone(), a));
                }
                _ => {}
            }
        }
        out
    }

    /// The committed offset arrived (`None`: nothing committed): position, or a reset by `reset`.
    pub fn on_committed(&mut self, tp: &TopicPartition, committed: Option<FetchPosition>, reset: Option<i64>) {
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        if p.wants != Some(Awaiting::Committed) {
            return;
        }
        p.lookup_in_flight = false;
        match (committed, reset) {
            (Some(pos), _) => {
                p.position = Some(pos);
                p.wants = None;
            }
            (None, Some(timestamp)) => p.wants = Some(Awaiting::Reset { timestamp }),
            (None, None) => p.wants = Some(Awaiting::NoOffset),
        }
    }

    /// A lookup failed (retriable): it will be asked again.
    pub fn on_lookup_failed(&mut self, tp: &TopicPartition) {
        if let Some(p) = self.partitions.get_mut(tp) {
            p.lookup_in_flight = false;
        }
    }

    /// ListOffsets answered for a reset at `timestamp`.
    pub fn on_list_offsets(&mut self, tp: &TopicPartition, timestamp: i64, offset: Offset, leader_epoch: LeaderEpoch) {
        let Some(p) = self.partitions.get_mut(tp) else {
            return;
        };
        if p.wants != Some(Awaiting::Reset { timestamp }) {
            return;
        }
        p.lookup_in_flight = false;
        p.wants = None;
        p.position = Some(FetchPosition { offset, leader_epoch });
    }

    /// Partitions to fetch now: a position, not paused, nothing buffered, no fetch in flight; marks them.
    pub fn take_fetchable(&mut self) -> Vec<(TopicPartition, FetchPosition)> {
        let mut out = vec![];
        for (tp, p) in &mut self.partitions {
            if let Some(pos) = p.position {
                let fetchable = !p.paused && !p.validation_pending && p.buffer.is_empty();
                if fetchable && p.fetch_in_flight.is_none() {
                    p.fetch_in_flight = Some(pos.offset);
                    out.push((tp.clone(), pos));
                }
            }
        }
        out
    }

    /// A fetch from `fetch_offset` answered. Stale answers (the position moved meanwhile) are dropped.
    /// OFFSET_OUT_OF_RANGE resets by `reset` (or leaves the partition wants a seek); returns the error
    /// code the caller must act on (e.g. refresh metadata), if any.
    pub fn on_fetch(
        &mut self,
        tp: &TopicPartition,
        fetch_offset: Offset,
        result: FetchResult,
        reset: Option<i64>,
    ) -> Option<i16> {
        let p = self.partitions.get_mut(tp)?;
        if p.fetch_in_flight != Some(fetch_offset) {
            return None;
        }
        p.fetch_in_flight = None;
        if p.position.map(|pos| pos.offset) != Some(fetch_offset) || p.validation_pending {
            return None;
        }
        match result {
            FetchResult::Records {
                records,
                high_watermark,
                next_fetch_offset,
            } => {
                p.high_watermark = Some(high_watermark);
                let mut next = fetch_offset;
                for r in records {
                    // A batch may start below the fetch offset; offsets only grow within a partition.
                    if r.offset >= next && r.tp == *tp {
                        next = r.offset + 1;
                        p.buffer.push_back(r);
                    }
                }
                p.fetched_end = Some(next_fetch_offset);
                p.skip_past_drained_batches();
                None
            }
            FetchResult::Error { error_code } if error_code == crate::protocol::errors::code::OFFSET_OUT_OF_RANGE => {
                p.position = None;
                p.fetched_end = None;
                p.wants = Some(match reset {
                    Some(timestamp) => Awaiting::Reset { timestamp },
                    None => Awaiting::NoOffset,
                });
                Some(error_code)
            }
            FetchResult::Error { error_code } => Some(error_code),
        }
    }

    /// A fetch taken by [`Positions::take_fetchable`] was not sent (its position awaits validation now).
    pub fn cancel_fetch(&mut self, tp: &TopicPartition, fetch_offset: Offset) {
        if let Some(p) = self.partitions.get_mut(tp) {
            if p.fetch_in_flight == Some(fetch_offset) {
                p.fetch_in_flight = None;
            }
        }
    }

    /// Metadata shows `tp`'s leader at `current_leader_epoch` (Kafka's
    /// `maybeValidatePositionForCurrentLeader`): when that epoch is new and the position's epoch (of the last
    /// record consumed, or of a committed offset) is older, the position awaits validation — the new leader
    /// may not have the records behind it. Buffered records are dropped, as Kafka's fetcher drops data of a
    /// partition that is not fetchable. Returns whether the partition awaits validation.
    pub fn on_leader_epoch(&mut self, tp: &TopicPartition, current_leader_epoch: LeaderEpoch) -> bool {
        let Some(p) = self.partitions.get_mut(tp) else {
            return false;
        };
        if current_leader_epoch < 0 || p.current_leader_epoch == Some(current_leader_epoch) {
            return p.validation_pending;
        }
        p.current_leader_epoch = Some(current_leader_epoch);
        if let Some(pos) = p.position {
            if pos.leader_epoch >= 0 && pos.leader_epoch < current_leader_epoch {
                p.validation_pending = true;
                p.lookup_in_flight = false;
                p.buffer.clear();
                p.fetched_end = None;
            }
        }
        p.validation_pending
    }

    /// Positions to validate now (OffsetsForLeaderEpoch not in flight): (tp, position, current leader epoch);
    /// marks them in flight.
    pub fn take_validations(&mut self) -> Vec<(TopicPartition, FetchPosition, LeaderEpoch)> {
        let mut out = vec![];
        for (tp, p) in &mut self.partitions {
            if let (true, false, Some(pos)) = (p.validation_pending, p.lookup_in_flight, p.position) {
                p.lookup_in_flight = true;
                out.push((tp.clone(), pos, p.current_leader_epoch.unwrap_or(-1)));
            }
        }
        out
    }

    /// The leader answered OffsetsForLeaderEpoch for `validated` (Kafka's
    /// `SubscriptionState.maybeCompleteValidation`): `Ok((epoch, end_offset))` is the largest epoch ≤ the
    /// position's on the leader and where it ends, (-1, -1) when it knows none. An end offset below the
    /// position is a truncation: the position moves back to it (or, when undefined, resets by `reset`, the
    /// `auto.offset.reset` timestamp, or waits for a seek). `Err` (a partition error) retries the validation.
    pub fn on_epoch_end_offset(
        &mut self,
        tp: &TopicPartition,
        validated: FetchPosition,
        result: Result<(LeaderEpoch, Offset), i16>,
        reset: Option<i64>,
    ) -> Option<Truncation> {
        let p = self.partitions.get_mut(tp)?;
        if !p.validation_pending || p.position != Some(validated) {
            return None; // a seek or a reset replaced the position meanwhile
        }
        p.lookup_in_flight = false;
        let (epoch, end_offset) = result.ok()?;
        p.validation_pending = false;
        if epoch < 0 || end_offset < 0 {
            p.position = None;
            p.wants = Some(reset.map_or(Awaiting::NoOffset, |timestamp| Awaiting::Reset { timestamp }));
            return Some(Truncation {
                position: validated,
                reset_to: None,
            });
        }
        if end_offset >= validated.offset {
            return None;
        }
        let reset_to = FetchPosition {
            offset: end_offset,
            leader_epoch: epoch,
        };
        p.position = Some(reset_to);
        p.buffer.clear();
        p.fetched_end = None;
        Some(Truncation {
            position: validated,
            reset_to: Some(reset_to),
        })
    }

    /// Kafka's `poll` return: up to `max_records` buffered records, in offset order per partition, taking
    /// partitions in turn from the one after the last served. Positions advance past what is returned.
    pub fn poll(&mut self, max_records: usize) -> Vec<ConsumerRecord> {
        let mut order: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        if let Some(last) = &self.last_polled {
            let start = order.iter().position(|tp| tp > last).unwrap_or(0);
            order.rotate_left(start);
        }
        let mut out = vec![];
        for tp in order {
            if out.len() >= max_records {
                break;
            }
            let p = self.partitions.get_mut(&tp).expect("listed");
            if p.paused || p.buffer.is_empty() {
                continue;
            }
            while out.len() < max_records {
                let Some(r) = p.buffer.pop_front() else { break };
                let pos = p.position.expect("buffered records imply a position");
                assert!(
                    r.offset >= pos.offset,
                    "record {} of {tp} below position {}",
                    r.offset,
                    pos.offset
                );
                p.position = Some(FetchPosition {
                    offset: r.offset + 1,
                    leader_epoch: r.leader_epoch,
                });
                out.push(r);
            }
            p.skip_past_drained_batches();
            self.last_polled = Some(tp);
        }
        out
    }

    /// Every position, for a commit of everything consumed (`SubscriptionState.allConsumed`).
    pub fn all_consumed(&self) -> BTreeMap<TopicPartition, FetchPosition> {
        self.partitions
            .iter()
            .filter_map(|(tp, p)| Some((tp.clone(), p.position?)))
            .collect()
    }

    /// Partitions wants a seek because there is no offset and `auto.offset.reset=none`.
    pub fn without_offset(&self) -> Vec<TopicPartition> {
        self.partitions
            .iter()
            .filter(|(_, p)| p.wants == Some(Awaiting::NoOffset))
            .map(|(tp, _)| tp.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn rec(p: i32, offset: Offset) -> ConsumerRecord {
        ConsumerRecord {
            tp: tp(p),
            offset,
            leader_epoch: 3,
            timestamp_ms: 0,
            key: None,
            value: Some(offset.to_be_bytes().to_vec()),
            headers: vec![],
        }
    }

    fn records(p: i32, offsets: std::ops::Range<Offset>) -> FetchResult {
        FetchResult::Records {
            next_fetch_offset: offsets.end,
            records: offsets.map(|o| rec(p, o)).collect(),
            high_watermark: 100,
        }
    }

    #[test]
    fn a_fetch_of_compacted_batches_moves_the_position_past_their_end_once_polled() {
        let mut s = Positions::default();
        s.set_assignment(&[tp(0)], Awaiting::Committed);
        s.seek(&tp(0), 3);
        assert_eq!(s.take_fetchable().len(), 1);
        // Records 3 and 5 survive compaction; the batch ends at 9, the next segment starts at 12.
        let result = FetchResult::Records {
            records: vec![rec(0, 3), rec(0, 5)],
            high_watermark: 20,
            next_fetch_offset: 9,
        };
        s.on_fetch(&tp(0), 3, result, None);
        assert_eq!(s.poll(1).len(), 1);
        assert_eq!(
            s.position(&tp(0)).map(|p| p.offset),
            Some(4),
            "only past the returned record"
        );
        assert_eq!(s.poll(10).len(), 1);
        assert_eq!(s.position(&tp(0)).map(|p| p.offset), Some(9));
        // A fetch of batches with no records left moves the position at once.
        assert_eq!(s.take_fetchable().len(), 1);
        let empty = FetchResult::Records {
            records: vec![],
            high_watermark: 20,
            next_fetch_offset: 12,
        };
        s.on_fetch(&tp(0), 9, empty, None);
        assert_eq!(s.position(&tp(0)).map(|p| p.offset), Some(12));
    }

    #[test]
    fn poll_returns_offset_order_and_moves_the_position_only_past_returned_records() {
        let mut s = Positions::default();
        s.set_assignment(&[tp(0)], Awaiting::Committed);
        s.on_committed(
            &tp(0),
            Some(FetchPosition {
                offset: 5,
                leader_epoch: -1,
            }),
            Some(-2),
        );
        assert_eq!(
            s.take_fetchable(),
            vec![(
                tp(0),
                FetchPosition {
                    offset: 5,
                    leader_epoch: -1
                }
            )]
        );
        // The batch starts at 3: records below the position are skipped.
        assert_eq!(s.on_fetch(&tp(0), 5, records(0, 3..10), Some(-2)), None);
        let got: Vec<Offset> = s.poll(2).iter().map(|r| r.offset).collect();
        assert_eq!(got, vec![5, 6]);
        assert_eq!(
            s.position(&tp(0)),
            Some(FetchPosition {
                offset: 7,
                leader_epoch: 3
            }),
            "KAFKA-2942"
        );
        assert!(s.take_fetchable().is_empty(), "buffered records first");
        assert_eq!(s.poll(10).len(), 3);
        assert_eq!(s.all_consumed()[&tp(0)].offset, 10);
    }

    #[test]
    fn poll_takes_partitions_in_turn_within_max_poll_records() {
        let mut s = Positions::default();
        s.set_assignment(&[tp(0), tp(1)], Awaiting::Committed);
        for p in [0, 1] {
            s.seek(&tp(p), 0);
        }
        s.take_fetchable();
        s.on_fetch(&tp(0), 0, records(0, 0..4), None);
        s.on_fetch(&tp(1), 0, records(1, 0..4), None);
        let first: Vec<(i32, Offset)> = s.poll(3).iter().map(|r| (r.tp.partition, r.offset)).collect();
        assert_eq!(first, vec![(0, 0), (0, 1), (0, 2)]);
        let second: Vec<(i32, Offset)> = s.poll(3).iter().map(|r| (r.tp.partition, r.offset)).collect();
        assert_eq!(
            second,
            vec![(1, 0), (1, 1), (1, 2)],
            "the next poll starts with the next partition"
        );
    }

    #[test]
    fn seek_drops_buffered_data_and_a_stale_fetch_answer() {
        let mut s = Positions::default();
        s.set_assignment(&[tp(0)], Awaiting::Committed);
        s.seek(&tp(0), 0);
        s.take_fetchable();
        s.seek(&tp(0), 50);
        assert_eq!(s.on_fetch(&tp(0), 0, records(0, 0..3), None), None);
        assert!(s.poll(10).is_empty(), "the answer to the fetch from 0 is stale");
        assert_eq!(
            s.take_fetchable(),
            vec![(
                tp(0),
                FetchPosition {
                    offset: 50,
                    leader_epoch: -1
                }
            )]
        );
    }

    #[test]
    fn no_committed_offset_resets_by_auto_offset_reset_or_waits_for_a_seek_with_none() {
        let mut s = Positions::default();
        s.set_assignment(&[tp(0), tp(1)], Awaiting::Committed);
        assert_eq!(s.take_lookups().len(), 2);
        assert!(s.take_lookups().is_empty(), "in flight");
        s.on_committed(&tp(0), None, Some(-2));
        s.on_committed(&tp(1), None, None);
        assert_eq!(s.take_lookups(), vec![(tp(0), Awaiting::Reset { timestamp: -2 })]);
        s.on_list_offsets(&tp(0), -2, 7, 2);
        assert_eq!(
            s.position(&tp(0)),
            Some(FetchPosition {
                offset: 7,
                leader_epoch: 2
            })
        );
        assert_eq!(s.without_offset(), vec![tp(1)]);
    }

    /// A position at 10 whose last record came from epoch 3, fetched and polled from the leader at epoch 3.
    fn consumed_to_10_at_epoch_3() -> Positions {
        let mut s = Positions::default();
        s.set_assignment(&[tp(0)], Awaiting::Committed);
        s.seek(&tp(0), 0);
        assert!(
            !s.on_leader_epoch(&tp(0), 3),
            "no position epoch yet: nothing to validate"
        );
        s.take_fetchable();
        s.on_fetch(&tp(0), 0, records(0, 0..10), None);
        assert_eq!(s.poll(100).len(), 10);
        s
    }

    fn at(offset: Offset, leader_epoch: LeaderEpoch) -> FetchPosition {
        FetchPosition { offset, leader_epoch }
    }

    #[test]
    fn kip_320_a_new_leader_epoch_holds_fetches_until_the_position_is_validated() {
        let mut s = consumed_to_10_at_epoch_3();
        assert_eq!(s.position(&tp(0)), Some(at(10, 3)));
        assert!(!s.on_leader_epoch(&tp(0), 3), "same leader epoch: nothing to validate");
        s.take_fetchable();
        s.on_fetch(&tp(0), 10, records(0, 10..12), None);
        assert!(s.on_leader_epoch(&tp(0), 4), "epoch 4 is newer than the position's 3");
        assert!(
            s.poll(10).is_empty(),
            "records fetched before the leader change are dropped"
        );
        assert!(s.take_fetchable().is_empty(), "no fetch while awaiting validation");
        assert_eq!(s.take_validations(), vec![(tp(0), at(10, 3), 4)]);
        assert!(s.take_validations().is_empty(), "in flight");
        // The leader's epoch 3 ends at 12, past the position: valid, fetching resumes where it was.
        assert_eq!(s.on_epoch_end_offset(&tp(0), at(10, 3), Ok((3, 12)), Some(-2)), None);
        assert_eq!(s.take_fetchable(), vec![(tp(0), at(10, 3))]);
    }

    #[test]
    fn kip_320_a_leader_whose_epoch_ends_below_the_position_moves_it_back_to_that_end() {
        let mut s = consumed_to_10_at_epoch_3();
        s.on_leader_epoch(&tp(0), 5);
        s.take_validations();
        // The new leader never had offsets 7..10 of epoch 3 (acks=1 writes lost with the old leader).
        let t = s.on_epoch_end_offset(&tp(0), at(10, 3), Ok((3, 7)), Some(-1));
        assert_eq!(
            t,
            Some(Truncation {
                position: at(10, 3),
                reset_to: Some(at(7, 3)),
            })
        );
        assert_eq!(s.position(&tp(0)), Some(at(7, 3)), "not auto.offset.reset's latest");
        assert_eq!(s.take_fetchable(), vec![(tp(0), at(7, 3))]);
    }

    #[test]
    fn kip_320_an_undefined_epoch_end_resets_by_auto_offset_reset_or_waits_for_a_seek() {
        let mut s = consumed_to_10_at_epoch_3();
        s.on_leader_epoch(&tp(0), 5);
        s.take_validations();
        let t = s.on_epoch_end_offset(&tp(0), at(10, 3), Ok((-1, -1)), Some(-2));
        assert_eq!(t.map(|t| t.reset_to), Some(None));
        assert_eq!(s.wants(&tp(0)), Some(Awaiting::Reset { timestamp: -2 }));
        let mut none = consumed_to_10_at_epoch_3();
        none.on_leader_epoch(&tp(0), 5);
        none.take_validations();
        none.on_epoch_end_offset(&tp(0), at(10, 3), Ok((-1, -1)), None);
        assert_eq!(
            none.without_offset(),
            vec![tp(0)],
            "auto.offset.reset=none: the application seeks"
        );
    }

    #[test]
    fn kip_320_errors_retry_and_a_seek_makes_a_late_answer_stale() {
        let mut s = consumed_to_10_at_epoch_3();
        s.on_leader_epoch(&tp(0), 4);
        s.take_validations();
        let fenced = crate::protocol::errors::code::FENCED_LEADER_EPOCH;
        assert_eq!(s.on_epoch_end_offset(&tp(0), at(10, 3), Err(fenced), Some(-2)), None);
        assert_eq!(s.take_validations(), vec![(tp(0), at(10, 3), 4)], "asked again");
        s.seek(&tp(0), 2);
        assert_eq!(s.on_epoch_end_offset(&tp(0), at(10, 3), Ok((3, 5)), Some(-2)), None);
        assert_eq!(s.position(&tp(0)), Some(at(2, -1)), "the seek wins");
        assert_eq!(s.take_fetchable(), vec![(tp(0), at(2, -1))]);
    }

    #[test]
    fn kip_320_a_committed_offset_from_an_older_epoch_is_validated_before_the_first_fetch() {
        let mut s = Positions::default();
        s.set_assignment(&[tp(0)], Awaiting::Committed);
        s.take_lookups();
        s.on_committed(&tp(0), Some(at(40, 2)), Some(-2));
        assert!(s.on_leader_epoch(&tp(0), 6));
        assert!(s.take_fetchable().is_empty());
        assert_eq!(s.take_validations(), vec![(tp(0), at(40, 2), 6)]);
    }

    #[test]
    fn offset_out_of_range_resets_to_the_configured_end() {
        let mut s = Positions::default();
        s.set_assignment(&[tp(0)], Awaiting::Committed);
        s.seek(&tp(0), 500);
        s.take_fetchable();
        let code = crate::protocol::errors::code::OFFSET_OUT_OF_RANGE;
        assert_eq!(
            s.on_fetch(&tp(0), 500, FetchResult::Error { error_code: code }, Some(-1)),
            Some(code)
        );
        assert_eq!(s.wants(&tp(0)), Some(Awaiting::Reset { timestamp: -1 }));
        assert!(s.request_reset(&tp(0), -2));
        assert_eq!(s.take_lookups(), vec![(tp(0), Awaiting::Reset { timestamp: -2 })]);
    }
}
