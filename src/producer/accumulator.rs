//! Kafka's `RecordAccumulator`: per partition a deque of batches; a batch is sendable once full (or not the
//! only one), once `linger.ms` passed since it was created (`retry.backoff.ms` since its last attempt for a
//! retry), or during a flush. [`RecordAccumulator::drain`] takes, for every leader with room for another
//! request, the first batch of each of its partitions (Kafka's `drainBatchesForOneNode`), as long as the
//! partition has fewer than `max.in.flight.requests.per.connection` batches on the wire.

use std::collections::{BTreeMap, VecDeque};

use crate::types::{BrokerId, TopicPartition};

/// The producer's handle of one `send`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SendId(pub u64);

/// A record waiting in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRecord {
    pub send_id: SendId,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp_ms: i64,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl PendingRecord {
    /// Estimated bytes in a batch (Kafka's `AbstractRecords.estimateSizeInBytesUpperBound`, roughly).
    pub fn size_bytes(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| 2 + k.len() + v.as_ref().map_or(0, Vec::len))
            .sum();
        21 + self.key.as_ref().map_or(0, Vec::len) + self.value.as_ref().map_or(0, Vec::len) + headers
    }
}

/// Kafka's `ProducerBatch`: the records of one partition sent together, with their attempt history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientBatch {
    pub id: u64,
    pub tp: TopicPartition,
    pub records: Vec<PendingRecord>,
    pub size_bytes: usize,
    pub created_ms: i64,
    pub attempts: u32,
    pub last_attempt_ms: i64,
    /// Re-enqueued after a failed attempt (waits `retry.backoff.ms`, not `linger.ms`).
    pub retry: bool,
    /// Producer id, epoch and base sequence, assigned at the first drain with idempotence.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: Option<i32>,
    /// Some attempt ended in a way that may have appended it (ARCHITECTURE §6: then never `fail`).
    pub maybe_landed: bool,
    /// Completed by delivery timeout while on the wire; its late response only updates sequence state.
    pub expired: bool,
}

impl ClientBatch {
    pub fn record_count(&self) -> i32 {
        self.records.len() as i32
    }

    /// The last sequence (Kafka's `lastSequence`), if sequenced.
    pub fn last_sequence(&self) -> Option<i32> {
        self.base_sequence
            .map(|s| crate::log::producer_state::increment_sequence(s, self.record_count() - 1))
    }

    pub fn delivery_deadline_ms(&self, delivery_timeout_ms: u64) -> i64 {
        self.created_ms.saturating_add(delivery_timeout_ms as i64)
    }
}

/// What drain may take: leaders, and what is already on the wire.
#[derive(Debug, Clone)]
pub struct DrainContext<'a> {
    pub leaders: &'a BTreeMap<TopicPartition, BrokerId>,
    pub in_flight_requests_per_broker: BTreeMap<BrokerId, usize>,
    pub in_flight_batches_per_partition: BTreeMap<&'a TopicPartition, usize>,
    pub max_in_flight: usize,
    pub flush: bool,
}

/// Kafka's `RecordAccumulator`.
#[derive(Debug, Clone)]
pub struct RecordAccumulator {
    batch_size: usize,
    linger_ms: u64,
    retry_backoff_ms: u64,
    deques: BTreeMap<TopicPartition, VecDeque<ClientBatch>>,
    next_batch_id: u64,
}

impl RecordAccumulator {
    pub fn new(batch_size: usize, linger_ms: u64, retry_backoff_ms: u64) -> Self {
        Self {
            batch_size,
            linger_ms,
            retry_backoff_ms,
            deques: BTreeMap::new(),
            next_batch_id: 0,
        }
    }

    /// Appends to the partition's last batch if it has room (a batch always takes its first record, so a
    /// record larger than `batch.size` gets a batch of its own), else opens a batch.
    pub fn append(&mut self, tp: &TopicPartition, record: PendingRecord, now_ms: i64) {
        let size = record.size_bytes();
        let deque = self.deques.entry(tp.clone()).or_default();
        if let Some(last) = deque.back_mut() {
            if !last.retry && last.base_sequence.is_none() && last.size_bytes + size <= self.batch_size {
                last.size_bytes += size;
                last.records.push(record);
                return;
            }
        }
        self.next_batch_id += 1;
        deque.push_back(ClientBatch {
            id: self.next_batch_id,
            tp: tp.clone(),
            records: vec![record],
            size_bytes: size,
            created_ms: now_ms,
            attempts: 0,
            last_attempt_ms: now_ms,
            retry: false,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: None,
            maybe_landed: false,
            expired: false,
        });
    }

    /// Puts a failed batch back for a retry: in base-sequence order among the sequenced batches at the
    /// front (Kafka's `insertInSequenceOrder`), or at the front without a sequence (`addFirst`).
    pub fn reenqueue(&mut self, mut batch: ClientBatch, now_ms: i64) {
        batch.retry = true;
        batch.last_attempt_ms = now_ms;
        let deque = self.deques.entry(batch.tp.clone()).or_default();
        let at = match batch.base_sequence {
            Some(seq) => deque
                .iter()
                .position(|b| b.base_sequence.is_none_or(|s| s > seq))
                .unwrap_or(deque.len()),
            None => 0,
        };
        deque.insert(at, batch);
    }

    /// When the partition's first batch becomes sendable by time (`None`: no batch).
    fn sendable_at_ms(&self, deque: &VecDeque<ClientBatch>) -> Option<i64> {
        let first = deque.front()?;
        if first.retry {
            return Some(first.last_attempt_ms + self.retry_backoff_ms as i64);
        }
        if deque.len() > 1 || first.size_bytes >= self.batch_size {
            return Some(first.created_ms);
        }
        Some(first.created_ms + self.linger_ms as i64)
    }

    fn backing_off(&self, first: &ClientBatch, now_ms: i64) -> bool {
        first.retry && now_ms < first.last_attempt_ms + self.retry_backoff_ms as i64
    }

    /// Whether some partition with a leader has a sendable batch: when none has, a drain takes nothing.
    pub fn any_ready(&self, now_ms: i64, leaders: &BTreeMap<TopicPartition, BrokerId>, flush: bool) -> bool {
        self.sendable(now_ms, leaders, flush).next().is_some()
    }

    /// The leaders of the partitions with a sendable batch, one per such partition.
    fn sendable<'s>(
        &'s self,
        now_ms: i64,
        leaders: &'s BTreeMap<TopicPartition, BrokerId>,
        flush: bool,
    ) -> impl Iterator<Item = BrokerId> + 's {
        self.deques.iter().filter_map(move |(tp, deque)| {
            let (leader, at) = (leaders.get(tp)?, self.sendable_at_ms(deque)?);
            let sendable = now_ms >= at || (flush && deque.front().is_some_and(|b| !self.backing_off(b, now_ms)));
            sendable.then_some(*leader)
        })
    }

    /// The leaders with a sendable batch (Kafka's `ready`).
    fn ready_brokers(&self, now_ms: i64, ctx: &DrainContext<'_>) -> Vec<BrokerId> {
        let mut ready: Vec<BrokerId> = vec![];
        for leader in self.sendable(now_ms, ctx.leaders, ctx.flush) {
            if !ready.contains(&leader) {
                ready.push(leader);
            }
        }
        ready.sort_unstable();
        ready
    }

    /// The next time a batch becomes sendable by linger or backoff, among partitions with a leader.
    pub fn next_ready_ms(&self, leaders: &BTreeMap<TopicPartition, BrokerId>) -> Option<i64> {
        self.deques
            .iter()
            .filter(|(tp, _)| leaders.contains_key(*tp))
            .filter_map(|(_, d)| self.sendable_at_ms(d))
            .min()
    }

    /// Takes one request's batches per ready leader with room; `allow` is the idempotence gate
    /// (`shouldStopDrainBatchesForPartition`), asked for each partition's first batch.
    pub fn drain(
        &mut self,
        now_ms: i64,
        ctx: &DrainContext<'_>,
        mut allow: impl FnMut(&ClientBatch) -> bool,
    ) -> BTreeMap<BrokerId, Vec<ClientBatch>> {
        let mut out = BTreeMap::new();
        for broker in self.ready_brokers(now_ms, ctx) {
            if ctx.in_flight_requests_per_broker.get(&broker).copied().unwrap_or(0) >= ctx.max_in_flight {
                continue;
            }
            let mut batches = vec![];
            for (tp, deque) in self.deques.iter_mut() {
                if ctx.leaders.get(tp) != Some(&broker) {
                    continue;
                }
                if ctx.in_flight_batches_per_partition.get(tp).copied().unwrap_or(0) >= ctx.max_in_flight {
                    continue;
                }
                let Some(first) = deque.front() else { continue };
                let backing_off = first.retry && now_ms < first.last_attempt_ms + self.retry_backoff_ms as i64;
                if backing_off || !allow(first) {
                    continue;
                }
                batches.extend(deque.pop_front());
            }
            if !batches.is_empty() {
                out.insert(broker, batches);
            }
        }
        self.deques.retain(|_, d| !d.is_empty());
        out
    }

    /// Removes the batches whose delivery timeout passed (Kafka's `expiredBatches`).
    pub fn expire(&mut self, now_ms: i64, delivery_timeout_ms: u64) -> Vec<ClientBatch> {
        let mut expired = vec![];
        for deque in self.deques.values_mut() {
            if !deque
                .iter()
                .any(|b| now_ms >= b.delivery_deadline_ms(delivery_timeout_ms))
            {
                continue;
            }
            let (gone, kept): (Vec<_>, Vec<_>) = deque
                .drain(..)
                .partition(|b| now_ms >= b.delivery_deadline_ms(delivery_timeout_ms));
            expired.extend(gone);
            deque.extend(kept);
        }
        self.deques.retain(|_, d| !d.is_empty());
        expired
    }

    /// The earliest delivery deadline of a queued batch.
    pub fn next_expiry_ms(&self, delivery_timeout_ms: u64) -> Option<i64> {
        self.deques
            .values()
            .flatten()
            .map(|b| b.delivery_deadline_ms(delivery_timeout_ms))
            .min()
    }

    /// The partition's queued batches, front first (to rewrite sequences after an epoch bump).
    pub fn batches_mut(&mut self, tp: &TopicPartition) -> impl Iterator<Item = &mut ClientBatch> {
        self.deques.get_mut(tp).into_iter().flatten()
    }

    pub fn batches(&self, tp: &TopicPartition) -> impl Iterator<Item = &ClientBatch> {
        self.deques.get(tp).into_iter().flatten()
    }

    pub fn partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.deques.keys()
    }

    pub fn is_empty(&self) -> bool {
        self.deques.values().all(VecDeque::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u64, len: usize) -> PendingRecord {
        PendingRecord {
            send_id: SendId(id),
            key: None,
            value: Some(vec![0; len]),
            timestamp_ms: 0,
            headers: vec![],
        }
    }

    fn leaders(leader: BrokerId, tps: &[&TopicPartition]) -> BTreeMap<TopicPartition, BrokerId> {
        tps.iter().map(|tp| ((*tp).clone(), leader)).collect()
    }

    fn ctx(leaders: &BTreeMap<TopicPartition, BrokerId>) -> DrainContext<'_> {
        DrainContext {
            leaders,
            in_flight_requests_per_broker: BTreeMap::new(),
            in_flight_batches_per_partition: BTreeMap::new(),
            flush: false,
            max_in_flight: 5,
        }
    }

    #[test]
    fn a_batch_waits_for_linger_ms_unless_full() {
        let tp = TopicPartition::new("t", 0);
        let mut acc = RecordAccumulator::new(100, 5, 100);
        acc.append(&tp, rec(1, 10), 0);
        let l = leaders(1, &[&tp]);
        let c = ctx(&l);
        assert!(acc.drain(4, &c, |_| true).is_empty(), "lingering");
        assert_eq!(acc.next_ready_ms(c.leaders), Some(5));
        let out = acc.drain(5, &c, |_| true);
        assert_eq!(out[&1].len(), 1);
        // Two batches: the first is full, so it goes at once.
        acc.append(&tp, rec(2, 70), 10);
        acc.append(&tp, rec(3, 70), 10);
        let out = acc.drain(10, &c, |_| true);
        assert_eq!(out[&1][0].records.len(), 1, "one batch per partition per request");
        assert!(!acc.is_empty());
    }

    #[test]
    fn drain_respects_max_in_flight_per_broker_and_per_partition() {
        let tp = TopicPartition::new("t", 0);
        let mut acc = RecordAccumulator::new(100, 0, 100);
        acc.append(&tp, rec(1, 10), 0);
        let l = leaders(1, &[&tp]);
        let mut c = ctx(&l);
        c.in_flight_requests_per_broker.insert(1, 5);
        assert!(acc.drain(0, &c, |_| true).is_empty());
        c.in_flight_requests_per_broker.clear();
        c.in_flight_batches_per_partition.insert(&tp, 5);
        assert!(acc.drain(0, &c, |_| true).is_empty());
        c.in_flight_batches_per_partition.clear();
        assert_eq!(acc.drain(0, &c, |_| true).len(), 1);
    }

    #[test]
    fn a_reenqueued_batch_waits_retry_backoff_and_goes_back_in_sequence_order() {
        let tp = TopicPartition::new("t", 0);
        let mut acc = RecordAccumulator::new(100, 0, 100);
        for i in 0..3 {
            acc.append(&tp, rec(i, 60), 0);
        }
        let l = leaders(1, &[&tp]);
        let c = ctx(&l);
        let mut sent = vec![];
        for seq in 0..3 {
            let mut b = acc.drain(0, &c, |_| true).remove(&1).expect("one")[0].clone();
            b.base_sequence = Some(seq);
            sent.push(b);
        }
        acc.reenqueue(sent[2].clone(), 50);
        acc.reenqueue(sent[0].clone(), 50);
        let seqs: Vec<_> = acc.batches(&tp).map(|b| b.base_sequence).collect();
        assert_eq!(seqs, vec![Some(0), Some(2)]);
        assert!(acc.drain(149, &c, |_| true).is_empty(), "backing off");
        assert_eq!(acc.next_ready_ms(c.leaders), Some(150));
        assert_eq!(acc.drain(150, &c, |_| true)[&1][0].base_sequence, Some(0));
    }

    #[test]
    fn batches_past_delivery_timeout_expire_from_the_queue() {
        let tp = TopicPartition::new("t", 0);
        let mut acc = RecordAccumulator::new(100, 0, 100);
        acc.append(&tp, rec(1, 60), 0);
        acc.append(&tp, rec(2, 60), 10);
        assert_eq!(acc.next_expiry_ms(1000), Some(1000));
        let gone = acc.expire(1000, 1000);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].records[0].send_id, SendId(1));
        assert_eq!(acc.batches(&tp).count(), 1);
    }
}
