//! The producer's state machine (Kafka's `KafkaProducer.send` + `Sender` + the idempotent part of
//! `TransactionManager`), pure: `now_ms` and the RNG come in, effects go out as data.
//!
//! The shell calls [`Producer::send`], then [`Producer::poll`] and carries out the [`Effect`]s: it sends
//! InitProducerId / Metadata / Produce requests, closes a connection on [`Effect::Disconnect`], reports
//! each [`Effect::Complete`] to the application, and calls `poll` again by [`Effect::WakeAt`] or when an
//! answer arrives ([`Producer::on_response`], [`Producer::on_disconnect`], [`Producer::on_metadata`],
//! [`Producer::on_init_producer_id`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::Rng;

use crate::producer::accumulator::{ClientBatch, DrainContext, PendingRecord, RecordAccumulator, SendId};
use crate::producer::config::ProducerConfig;
use crate::producer::outcome::{attempt_may_have_landed, final_outcome, Failure, Outcome};
use crate::producer::partitioner::{partition_for_key, StickyPartitioner};
use crate::producer::sequence::{ProducerIdAndEpoch, Sequences};
use crate::protocol::batch::BatchBuilder;
use crate::protocol::errors::ResponseError;
use crate::types::{BrokerId, TopicPartition};

/// What the application sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp_ms: Option<i64>,
    /// Record headers, in order (repeated keys kept).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// One partition's batch of a Produce request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceBatch {
    pub tp: TopicPartition,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
    /// The record batch v2 bytes (baseOffset 0).
    pub bytes: Vec<u8>,
}

/// A Produce request for the shell to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceRequest {
    pub request_id: u64,
    pub broker: BrokerId,
    pub acks: i16,
    /// ProduceRequest `timeout_ms` (the leader's wait for acks=all).
    pub timeout_ms: i32,
    pub batches: Vec<ProduceBatch>,
}

/// One partition's answer in a Produce response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionResponse {
    pub tp: TopicPartition,
    pub error_code: i16,
    pub base_offset: i64,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Ask any broker for a producer id (InitProducerId without a transactional id).
    InitProducerId,
    /// Ask for the partitions and leaders of these topics.
    Metadata {
        topics: Vec<String>,
    },
    Produce(ProduceRequest),
    /// A request to this broker timed out: close the connection (its late answers must never match a newer
    /// request); the in-flight requests on it have been failed already.
    Disconnect {
        broker: BrokerId,
    },
    /// A send's outcome (ARCHITECTURE §6).
    Complete {
        send_id: SendId,
        outcome: Outcome,
    },
    /// Call `poll` again at this time at the latest.
    WakeAt {
        at_ms: i64,
    },
}

#[derive(Debug, Clone)]
struct InFlightRequest {
    broker: BrokerId,
    sent_ms: i64,
    batches: Vec<ClientBatch>,
}

#[derive(Debug, Clone)]
struct Waiting {
    send_id: SendId,
    record: ProducerRecord,
    created_ms: i64,
}

/// The producer core.
#[derive(Debug, Clone)]
pub struct Producer {
    config: ProducerConfig,
    accumulator: RecordAccumulator,
    sticky: BTreeMap<String, StickyPartitioner>,
    /// Per topic, per partition its leader (`None`: no leader now). Absent: not known yet.
    topics: BTreeMap<String, Vec<Option<BrokerId>>>,
    /// `topics` as partition → leader, rebuilt on each metadata answer (read on every poll).
    leaders: BTreeMap<TopicPartition, BrokerId>,
    waiting: VecDeque<Waiting>,
    metadata_wanted: bool,
    metadata_in_flight: bool,
    metadata_attempt_ms: Option<i64>,
    /// When metadata last answered (for `metadata.max.age.ms`).
    metadata_refreshed_ms: Option<i64>,
    sequences: Option<Sequences>,
    init_in_flight: bool,
    in_flight: BTreeMap<u64, InFlightRequest>,
    outbox: Vec<Effect>,
    next_send_id: u64,
    next_request_id: u64,
    flushing: bool,
}

impl Producer {
    pub fn new(config: ProducerConfig) -> Self {
        let accumulator = RecordAccumulator::new(config.batch_size, config.linger_ms, config.retry_backoff_ms);
        let sequences = config.enable_idempotence.then(Sequences::default);
        Self {
            config,
            accumulator,
            sticky: BTreeMap::new(),
            topics: BTreeMap::new(),
            leaders: BTreeMap::new(),
            waiting: VecDeque::new(),
            metadata_wanted: false,
            metadata_in_flight: false,
            metadata_attempt_ms: None,
            metadata_refreshed_ms: None,
            sequences,
            init_in_flight: false,
            in_flight: BTreeMap::new(),
            outbox: vec![],
            next_send_id: 0,
            next_request_id: 0,
            flushing: false,
        }
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// The producer id and epoch in use (idempotence).
    pub fn producer_id_and_epoch(&self) -> Option<ProducerIdAndEpoch> {
        self.sequences.as_ref().and_then(Sequences::id_and_epoch)
    }

    /// Sends not completed yet (queued, waiting for metadata, or on the wire).
    pub fn has_incomplete(&self) -> bool {
        !self.accumulator.is_empty()
            || !self.waiting.is_empty()
            || self.in_flight.values().flat_map(|r| &r.batches).any(|b| !b.expired)
    }

    /// Kafka's `flush()`: every queued batch is sendable at once until nothing is incomplete.
    pub fn flush(&mut self) {
        self.flushing = true;
    }

    /// Kafka's `send`: queues the record and returns its handle; its outcome comes as [`Effect::Complete`].
    pub fn send(&mut self, record: ProducerRecord, now_ms: i64, rng: &mut impl Rng) -> SendId {
        self.next_send_id += 1;
        let send_id = SendId(self.next_send_id);
        let w = Waiting {
            send_id,
            record,
            created_ms: now_ms,
        };
        if let Some(w) = self.try_enqueue(w, now_ms, rng) {
            self.metadata_wanted = true;
            self.waiting.push_back(w);
        }
        send_id
    }

    /// Partitions and appends the record if its topic's metadata is known; gives it back otherwise.
    fn try_enqueue(&mut self, w: Waiting, now_ms: i64, rng: &mut impl Rng) -> Option<Waiting> {
        let Some(count) = self.topics.get(&w.record.topic).map(|ps| ps.len() as i32) else {
            return Some(w);
        };
        if count == 0 {
            return Some(w);
        }
        let r = &w.record;
        let partition = match (r.partition, &r.key) {
            (Some(p), _) if (0..count).contains(&p) => p,
            (Some(p), _) => {
                let failure = Failure::InvalidPartition { partition: p, count };
                self.complete(w.send_id, Outcome::Fail(failure));
                return None;
            }
            (None, Some(key)) => partition_for_key(key, count),
            (None, None) => {
                let batch_size = self.config.batch_size;
                let sticky = self
                    .sticky
                    .entry(r.topic.clone())
                    .or_insert_with(|| StickyPartitioner::new(batch_size));
                let p = sticky.partition(count, rng);
                sticky.on_batch_sent(r.value.as_ref().map_or(0, Vec::len) + r.key.as_ref().map_or(0, Vec::len));
                p
            }
        };
        let tp = TopicPartition::new(r.topic.clone(), partition);
        let rec = PendingRecord {
            send_id: w.send_id,
            key: w.record.key,
            value: w.record.value,
            timestamp_ms: w.record.timestamp_ms.unwrap_or(now_ms),
            headers: w.record.headers,
        };
        // The batch's delivery clock starts when the record was sent (Kafka's createdMs of its batch).
        self.accumulator.append(&tp, rec, w.created_ms);
        None
    }

    fn complete(&mut self, send_id: SendId, outcome: Outcome) {
        self.outbox.push(Effect::Complete { send_id, outcome });
    }

    fn complete_batch(&mut self, batch: &ClientBatch, outcome: impl Fn(usize) -> Outcome) {
        for (i, r) in batch.records.iter().enumerate() {
            self.outbox.push(Effect::Complete {
                send_id: r.send_id,
                outcome: outcome(i),
            });
        }
    }

    /// Metadata for `topic`: its partitions' leaders, or `None` for an unknown topic (sends to it wait up
    /// to `max.block.ms`, as Kafka's `waitOnMetadata`).
    pub fn on_metadata(
        &mut self,
        now_ms: i64,
        topic: &str,
        leaders: Option<Vec<Option<BrokerId>>>,
        rng: &mut impl Rng,
    ) {
        self.metadata_in_flight = false;
        self.metadata_wanted = false;
        self.metadata_refreshed_ms = Some(now_ms);
        match leaders {
            Some(ls) => {
                if ls.iter().any(Option::is_none) {
                    self.metadata_wanted = true;
                }
                self.topics.insert(topic.to_string(), ls);
            }
            None => {
                self.topics.remove(topic);
            }
        }
        self.leaders = leaders_of(&self.topics);
        let waiting = std::mem::take(&mut self.waiting);
        for w in waiting {
            if let Some(w) = self.try_enqueue(w, now_ms, rng) {
                self.metadata_wanted = true;
                self.waiting.push_back(w);
            }
        }
    }

    /// A Metadata request failed (no answer): retried after `retry.backoff.ms`.
    pub fn on_metadata_failed(&mut self, _now_ms: i64) {
        self.metadata_in_flight = false;
        self.metadata_wanted = true;
    }

    /// InitProducerId's answer.
    pub fn on_init_producer_id(&mut self, _now_ms: i64, producer_id: i64, epoch: i16) {
        self.init_in_flight = false;
        if let Some(seq) = self.sequences.as_mut() {
            seq.set_id_and_epoch(ProducerIdAndEpoch { producer_id, epoch });
        }
    }

    /// InitProducerId failed: asked again at the next poll.
    pub fn on_init_producer_id_failed(&mut self, _now_ms: i64) {
        self.init_in_flight = false;
    }

    /// The connection to `broker` closed: every request on it failed, and may have landed.
    pub fn on_disconnect(&mut self, now_ms: i64, broker: BrokerId) {
        self.fail_broker(now_ms, broker, Failure::Disconnected);
    }

    fn fail_broker(&mut self, now_ms: i64, broker: BrokerId, failure: Failure) {
        let ids: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, r)| r.broker == broker)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(req) = self.in_flight.remove(&id) {
                for b in req.batches {
                    self.handle_failed_attempt(now_ms, b, failure.clone());
                }
            }
        }
        self.metadata_wanted = true;
    }

    /// A Produce response. Batches the response leaves out failed (and may have landed).
    pub fn on_response(&mut self, now_ms: i64, request_id: u64, responses: &[PartitionResponse]) {
        let Some(req) = self.in_flight.remove(&request_id) else {
            return;
        };
        for b in req.batches {
            match responses.iter().find(|r| r.tp == b.tp) {
                Some(r) if r.error_code == 0 => self.handle_acked(b, r.base_offset),
                Some(r) => self.handle_failed_attempt(now_ms, b, Failure::Broker { code: r.error_code }),
                None => self.handle_failed_attempt(now_ms, b, Failure::Disconnected),
            }
        }
    }

    fn handle_acked(&mut self, b: ClientBatch, base_offset: i64) {
        if let Some(seq) = self.sequences.as_mut() {
            seq.on_acked(&b);
        }
        if b.expired {
            return;
        }
        let tp = b.tp.clone();
        self.complete_batch(&b, |i| Outcome::Ok {
            partition: tp.clone(),
            offset: base_offset + i as i64,
        });
    }

    /// Retry or complete, per Kafka's `Sender.completeBatch` / `canRetry`; see [`final_outcome`].
    fn handle_failed_attempt(&mut self, now_ms: i64, mut b: ClientBatch, failure: Failure) {
        b.maybe_landed |= attempt_may_have_landed(&failure, self.config.acks);
        if failure.invalidates_metadata() {
            self.metadata_wanted = true;
        }
        if b.expired {
            return; // completed at its delivery timeout; its sequence was marked unresolved then.
        }
        let out_of_order = failure.is_sequence_error() && self.sequences.is_some();
        if out_of_order {
            if let Some(seq) = self.sequences.as_mut() {
                seq.on_out_of_order(&b);
            }
        }
        let retriable = out_of_order || failure.is_retriable();
        let in_time = now_ms < b.delivery_deadline_ms(self.config.delivery_timeout_ms);
        if retriable && in_time && b.attempts <= self.config.retries {
            self.accumulator.reenqueue(b, now_ms);
            return;
        }
        if let Some(seq) = self.sequences.as_mut() {
            seq.on_failed(&b);
        }
        let outcome = final_outcome(&b, failure);
        self.complete_batch(&b, |_| outcome.clone());
    }

    /// Runs timers, then drains what is sendable: returns the effects for the shell, in order.
    pub fn poll(&mut self, now_ms: i64, rng: &mut impl Rng) -> Vec<Effect> {
        let _ = rng;
        self.time_out_requests(now_ms);
        self.expire(now_ms);
        self.idempotence_step();
        self.request_metadata(now_ms);
        self.drain(now_ms);
        if self.flushing && !self.has_incomplete() {
            self.flushing = false;
        }
        let mut out = std::mem::take(&mut self.outbox);
        if let Some(at_ms) = self.next_wakeup_ms(now_ms) {
            out.push(Effect::WakeAt { at_ms });
        }
        out
    }

    /// NetworkClient's request timeout: the connection closes and every request on it fails.
    fn time_out_requests(&mut self, now_ms: i64) {
        let timeout = self.config.request_timeout_ms as i64;
        let brokers: BTreeSet<BrokerId> = self
            .in_flight
            .values()
            .filter(|r| now_ms >= r.sent_ms + timeout)
            .map(|r| r.broker)
            .collect();
        for broker in brokers {
            self.fail_broker(now_ms, broker, Failure::RequestTimeout);
            self.outbox.push(Effect::Disconnect { broker });
        }
    }

    /// `delivery.timeout.ms` (KIP-91) for queued and in-flight batches; `max.block.ms` for metadata waits.
    fn expire(&mut self, now_ms: i64) {
        let delivery = self.config.delivery_timeout_ms;
        for b in self.accumulator.expire(now_ms, delivery) {
            if let Some(seq) = self.sequences.as_mut() {
                seq.on_failed(&b);
            }
            let outcome = final_outcome(&b, Failure::DeliveryTimeout);
            self.complete_batch(&b, |_| outcome.clone());
        }
        let mut expired = vec![];
        for req in self.in_flight.values_mut() {
            for b in req.batches.iter_mut().filter(|b| !b.expired) {
                if now_ms >= b.delivery_deadline_ms(delivery) {
                    b.expired = true;
                    b.maybe_landed = true;
                    expired.push(b.clone());
                }
            }
        }
        for b in expired {
            if let Some(seq) = self.sequences.as_mut() {
                seq.on_failed(&b);
            }
            self.complete_batch(&b, |_| final_outcome(&b, Failure::DeliveryTimeout));
        }
        let max_block = self.config.max_block_ms as i64;
        if !self.waiting.iter().any(|w| now_ms >= w.created_ms + max_block) {
            return;
        }
        let (late, kept): (Vec<_>, Vec<_>) = self.waiting.drain(..).partition(|w| now_ms >= w.created_ms + max_block);
        self.waiting = kept.into();
        for w in late {
            let failure = Failure::MetadataTimeout { topic: w.record.topic };
            self.complete(w.send_id, Outcome::Fail(failure));
        }
    }

    fn idempotence_step(&mut self) {
        let Some(seq) = self.sequences.as_mut() else { return };
        if seq.id_and_epoch().is_none() {
            if !self.init_in_flight {
                self.init_in_flight = true;
                self.outbox.push(Effect::InitProducerId);
            }
            return;
        }
        seq.maybe_resolve();
        let in_flight = &self.in_flight;
        let on_wire = |tp: &TopicPartition| in_flight.values().any(|r| r.batches.iter().any(|b| &b.tp == tp));
        seq.maybe_bump(on_wire, &mut self.accumulator);
    }

    fn request_metadata(&mut self, now_ms: i64) {
        if self.metadata_stale(now_ms) {
            self.metadata_wanted = true;
        }
        let backoff_over = self
            .metadata_attempt_ms
            .is_none_or(|t| now_ms >= t + self.config.retry_backoff_ms as i64);
        if !self.metadata_wanted || self.metadata_in_flight || !backoff_over {
            return;
        }
        let mut topics: BTreeSet<String> = self.topics.keys().cloned().collect();
        topics.extend(self.waiting.iter().map(|w| w.record.topic.clone()));
        topics.extend(self.accumulator.partitions().map(|tp| tp.topic.clone()));
        self.metadata_in_flight = true;
        self.metadata_attempt_ms = Some(now_ms);
        self.outbox.push(Effect::Metadata {
            topics: topics.into_iter().collect(),
        });
    }

    /// Kafka's `metadata.max.age.ms`: known topics' metadata is refreshed when this old.
    fn metadata_stale(&self, now_ms: i64) -> bool {
        !self.topics.is_empty() && self.metadata_refresh_due_ms().is_some_and(|due| now_ms >= due)
    }

    fn metadata_refresh_due_ms(&self) -> Option<i64> {
        let age = i64::try_from(self.config.metadata_max_age_ms).unwrap_or(i64::MAX);
        self.metadata_refreshed_ms.map(|t| t.saturating_add(age))
    }

    fn drain(&mut self, now_ms: i64) {
        if self.sequences.as_ref().is_some_and(|s| s.id_and_epoch().is_none()) {
            return;
        }
        let queued_without_leader = self.accumulator.partitions().any(|tp| !self.leaders.contains_key(tp));
        if queued_without_leader {
            self.metadata_wanted = true;
        }
        if !self.accumulator.any_ready(now_ms, &self.leaders, self.flushing) {
            return; // most polls: nothing to drain, so nothing on the wire needs counting
        }
        // The drain's view borrows the leaders and what is on the wire.
        let mut ctx = DrainContext {
            leaders: &self.leaders,
            in_flight_requests_per_broker: BTreeMap::new(),
            in_flight_batches_per_partition: BTreeMap::new(),
            max_in_flight: self.config.max_in_flight_requests_per_connection,
            flush: self.flushing,
        };
        for r in self.in_flight.values() {
            *ctx.in_flight_requests_per_broker.entry(r.broker).or_default() += 1;
            for b in &r.batches {
                *ctx.in_flight_batches_per_partition.entry(&b.tp).or_default() += 1;
            }
        }
        let seqs = &mut self.sequences;
        let drained = self
            .accumulator
            .drain(now_ms, &ctx, |b| seqs.as_mut().is_none_or(|s| s.may_drain(b)));
        for (broker, batches) in drained {
            self.send_request(now_ms, broker, batches);
        }
    }

    fn send_request(&mut self, now_ms: i64, broker: BrokerId, mut batches: Vec<ClientBatch>) {
        self.next_request_id += 1;
        let request_id = self.next_request_id;
        let mut wire = vec![];
        for b in &mut batches {
            if let Some(seq) = self.sequences.as_mut() {
                seq.on_drain(b);
            }
            b.attempts += 1;
            b.last_attempt_ms = now_ms;
            wire.push(build_batch(b));
        }
        let acks = self.config.acks;
        self.outbox.push(Effect::Produce(ProduceRequest {
            request_id,
            broker,
            acks,
            timeout_ms: self.config.request_timeout_ms.min(i32::MAX as u64) as i32,
            batches: wire,
        }));
        if acks == 0 {
            for b in &batches {
                self.complete_batch(b, |_| Outcome::Info(crate::producer::outcome::InfoReason::Acks0));
            }
            return;
        }
        self.in_flight.insert(
            request_id,
            InFlightRequest {
                broker,
                sent_ms: now_ms,
                batches,
            },
        );
    }

    /// The next time `poll` has work by the clock.
    pub fn next_wakeup_ms(&self, now_ms: i64) -> Option<i64> {
        let c = &self.config;
        let awaiting_id = self.sequences.as_ref().is_some_and(|s| s.id_and_epoch().is_none());
        let ready = (!awaiting_id)
            .then(|| self.accumulator.next_ready_ms(&self.leaders))
            .flatten();
        let expiry = self.accumulator.next_expiry_ms(c.delivery_timeout_ms);
        let in_flight = self.in_flight.values().flat_map(|r| {
            let live = r.batches.iter().filter(|b| !b.expired);
            std::iter::once(r.sent_ms + c.request_timeout_ms as i64)
                .chain(live.map(|b| b.delivery_deadline_ms(c.delivery_timeout_ms)))
        });
        let waiting = self.waiting.iter().map(|w| w.created_ms + c.max_block_ms as i64);
        let metadata_retry = (self.metadata_wanted && !self.metadata_in_flight)
            .then(|| self.metadata_attempt_ms.map(|t| t + c.retry_backoff_ms as i64))
            .flatten();
        let metadata_refresh = (!self.topics.is_empty() && !self.metadata_in_flight)
            .then(|| self.metadata_refresh_due_ms())
            .flatten();
        ready
            .into_iter()
            .chain(expiry)
            .chain(in_flight)
            .chain(waiting)
            .chain(metadata_retry)
            .chain(metadata_refresh)
            .min()
            .map(|t| t.max(now_ms))
    }
}

/// Each topic's partitions with a leader, as partition → leader.
fn leaders_of(topics: &BTreeMap<String, Vec<Option<BrokerId>>>) -> BTreeMap<TopicPartition, BrokerId> {
    let mut out = BTreeMap::new();
    for (topic, ls) in topics {
        for (p, leader) in ls.iter().enumerate() {
            if let Some(l) = leader {
                out.insert(TopicPartition::new(topic.clone(), p as i32), *l);
            }
        }
    }
    out
}

/// The v2 batch bytes of a client batch, stamped with its producer id, epoch and base sequence.
fn build_batch(b: &ClientBatch) -> ProduceBatch {
    let base_ts = b.records.first().map_or(0, |r| r.timestamp_ms);
    let base_sequence = b.base_sequence.unwrap_or(-1);
    let mut builder = BatchBuilder::new(base_ts).producer(b.producer_id, b.producer_epoch, base_sequence);
    for r in &b.records {
        let headers: Vec<(&str, Option<&[u8]>)> = r.headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
        builder.push(r.timestamp_ms, r.key.as_deref(), r.value.as_deref(), &headers);
    }
    ProduceBatch {
        tp: b.tp.clone(),
        producer_id: b.producer_id,
        producer_epoch: b.producer_epoch,
        base_sequence,
        record_count: b.record_count(),
        bytes: builder.build(),
    }
}

/// Whether Kafka retries this error code (`RetriableException` subclasses).
pub fn is_retriable_code(code: i16) -> bool {
    ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable())
}

#[cfg(test)]
mod metadata_age_tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn metadata_asked(effects: &[Effect]) -> Option<Vec<String>> {
        effects.iter().find_map(|e| match e {
            Effect::Metadata { topics } => Some(topics.clone()),
            _ => None,
        })
    }

    #[test]
    fn known_topics_metadata_is_refreshed_once_metadata_max_age_ms_passes() {
        let config = ProducerConfig {
            metadata_max_age_ms: 1_000,
            enable_idempotence: false,
            ..ProducerConfig::default()
        };
        let mut p = Producer::new(config);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        p.on_metadata(0, "t", Some(vec![Some(1), Some(2)]), &mut rng);
        let early = p.poll(999, &mut rng);
        assert_eq!(metadata_asked(&early), None);
        assert!(
            early.iter().any(|e| matches!(e, Effect::WakeAt { at_ms: 1_000 })),
            "{early:?}"
        );
        assert_eq!(metadata_asked(&p.poll(1_000, &mut rng)), Some(vec!["t".to_string()]));
        p.on_metadata(1_010, "t", Some(vec![Some(1), Some(2), Some(3)]), &mut rng);
        assert_eq!(metadata_asked(&p.poll(1_500, &mut rng)), None);
    }
}
