//! L3: [`KafkaProducer`], the async facade over the pure producer core ([`crate::producer::Producer`]).
//!
//! One driver task owns the core. It feeds it sends, answers and the time, and carries out its effects:
//! Metadata to the bootstrap servers first, then any known broker (moving on after a failure);
//! InitProducerId to the same; Produce to the batch's leader; `Disconnect` drops that broker's connection;
//! `Complete` resolves the caller's [`SendHandle`]; `WakeAt` is the driver's next timer.
//!
//! Each broker address has a *link*: a task owning one [`Connection`] that carries its requests one at a
//! time, in the order the core emitted them. Links to different brokers run concurrently. A Kafka broker
//! handles one request per connection at a time anyway (ARCHITECTURE §1), so the order in which a
//! connection's requests are applied is the same as with pipelining; `max.in.flight.requests.per.connection`
//! stays the core's business (it emits at most that many Produce requests per broker before answers come
//! back, and the link queues them behind each other). What is lost is only the overlap of their round trips.
//!
//! Every request has a timeout (`request.timeout.ms`): the core times Produce requests out itself (it emits
//! `Disconnect` and has failed every request on that broker), and the connection times out every request
//! and closes (a late answer never matches a newer request). Any failure of a link's connection drops the
//! link with the requests queued on it: its Produce requests fail in the core through `on_disconnect`
//! (they may have landed), its Metadata and InitProducerId requests are asked again.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, MetadataRequest, MetadataResponse, ProduceRequest as WireProduce,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::connection::{Connection, ConnectionConfig};
use super::error::ClientError;
use crate::producer::outcome::{Failure, InfoReason, Outcome};
use crate::producer::{Effect, PartitionResponse, ProduceRequest, Producer, ProducerConfig, ProducerRecord, SendId};
use crate::rt::{self, mpsc, oneshot, JoinHandle};
use crate::types::{BrokerId, TopicPartition};

/// Told when a Produce request is handed to its broker's connection (`true`) and when its answer or
/// failure came back (`false`): the simulator's "sends in flight" coverage marks read it.
pub type WireHook = Arc<dyn Fn(bool) + Send + Sync>;

/// A send's future outcome (Kafka's `Future<RecordMetadata>`). Await it for the [`Outcome`].
pub struct SendHandle(oneshot::Receiver<Outcome>);

impl Future for SendHandle {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        // The driver only drops a send's sender when the producer task is gone: the send may have landed.
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Outcome::Info(InfoReason::MayHaveLanded(Failure::Disconnected))))
    }
}

/// Where a send's outcome goes.
enum Waiter {
    Handle(oneshot::Sender<Outcome>),
    /// Into a channel shared by many sends, tagged, in the order the core completes them.
    Sink(u64, mpsc::UnboundedSender<(u64, Outcome)>),
}

impl Waiter {
    fn complete(self, outcome: Outcome) {
        // The caller may have stopped waiting.
        match self {
            Waiter::Handle(done) => {
                let _ = done.send(outcome);
            }
            Waiter::Sink(tag, sink) => {
                let _ = sink.send((tag, outcome));
            }
        }
    }
}

enum Command {
    Send { record: ProducerRecord, done: Waiter },
    Flush { done: oneshot::Sender<()> },
    Close { done: oneshot::Sender<()> },
}

/// Kafka's `KafkaProducer`: `send` queues a record and returns at once; batching, retries and idempotence
/// happen in the core, driven by one task.
pub struct KafkaProducer {
    commands: mpsc::UnboundedSender<Command>,
}

impl KafkaProducer {
    /// Starts the driver task on the current node. `seed` feeds the core's RNG (the sticky partitioner for
    /// records without a key).
    pub fn start(bootstrap: Vec<String>, config: ProducerConfig, client_id: impl Into<String>, seed: u64) -> Self {
        Self::start_with_hook(bootstrap, config, client_id, seed, None)
    }

    /// As [`KafkaProducer::start`], telling `hook` about Produce requests on the wire.
    pub fn start_with_hook(
        bootstrap: Vec<String>,
        config: ProducerConfig,
        client_id: impl Into<String>,
        seed: u64,
        hook: Option<WireHook>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let driver = Driver::new(bootstrap, config, client_id.into(), seed, hook);
        rt::spawn(driver.run(rx));
        Self { commands: tx }
    }

    /// Queues `record`; the handle resolves with its outcome. Sends are pipelined: call `send` for many
    /// records before awaiting any handle.
    pub fn send(&self, record: ProducerRecord) -> SendHandle {
        let (done, rx) = oneshot::channel();
        // If the driver is gone the sender is dropped with the command, and the handle says so.
        let done = Waiter::Handle(done);
        let _ = self.commands.send(Command::Send { record, done });
        SendHandle(rx)
    }

    /// Queues `record`; its outcome goes to `sink` tagged with `tag`. Outcomes reach the sink in the order
    /// the producer completed them (for a history that must record completions in order); if the driver
    /// is gone, nothing arrives and the sink's receiver sees the channel close once every sender is gone.
    pub fn send_to(&self, record: ProducerRecord, tag: u64, sink: &mpsc::UnboundedSender<(u64, Outcome)>) {
        let done = Waiter::Sink(tag, sink.clone());
        let _ = self.commands.send(Command::Send { record, done });
    }

    /// Kafka's `flush()`: makes every queued batch sendable now and waits until every send completed.
    pub async fn flush(&self) {
        let (done, rx) = oneshot::channel();
        if self.commands.send(Command::Flush { done }).is_ok() {
            let _ = rx.await;
        }
    }

    /// Kafka's `close()`: flushes, waits for every send to complete, then stops the driver and its
    /// connections.
    pub async fn close(self) {
        let (done, rx) = oneshot::channel();
        if self.commands.send(Command::Close { done }).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Wall-clock milliseconds (simulated in madsim), as Kafka's `Time.milliseconds()`.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A request for a link to carry.
enum WireRequest {
    Produce { req: WireProduce, acks: i16 },
    Metadata(MetadataRequest),
    InitProducerId(InitProducerIdRequest),
}

enum Reply {
    Produce(ProduceResponse),
    /// acks=0: written, no answer expected.
    Written,
    Metadata(MetadataResponse),
    InitProducerId(InitProducerIdResponse),
}

struct Job {
    id: u64,
    request: WireRequest,
}

struct Event {
    job: u64,
    result: Result<Reply, ClientError>,
}

/// What the driver waits for from a job.
#[derive(Debug, Clone)]
enum JobKind {
    Produce { request_id: u64, broker: BrokerId },
    Metadata { topics: Vec<String> },
    InitProducerId,
}

struct Link {
    jobs: mpsc::UnboundedSender<Job>,
    task: JoinHandle<()>,
}

/// What the driver learned while carrying out effects, given to the core after the whole batch (the core
/// must not change under effects it already emitted).
enum Deferred {
    Disconnected(BrokerId),
    MetadataFailed,
}

struct Driver {
    core: Producer,
    rng: ChaCha8Rng,
    bootstrap: Vec<String>,
    connection: ConnectionConfig,
    request_timeout: Duration,
    retry_backoff_ms: i64,
    /// Broker addresses from the last Metadata response.
    brokers: BTreeMap<BrokerId, String>,
    links: BTreeMap<String, Link>,
    outstanding: BTreeMap<u64, (String, JobKind)>,
    next_job: u64,
    events_tx: mpsc::UnboundedSender<Event>,
    events_rx: mpsc::UnboundedReceiver<Event>,
    waiters: BTreeMap<SendId, Waiter>,
    flushes: Vec<oneshot::Sender<()>>,
    closing: Option<oneshot::Sender<()>>,
    /// Which Metadata / InitProducerId target to try next (an index into bootstrap ++ known brokers).
    any_broker_cursor: usize,
    /// InitProducerId failed: tell the core at this time (its retry backoff), so that a broker without it
    /// is not asked in a tight loop.
    init_retry_at_ms: Option<i64>,
    wake_at_ms: Option<i64>,
    deferred: Vec<Deferred>,
    hook: Option<WireHook>,
}

impl Driver {
    fn new(
        bootstrap: Vec<String>,
        config: ProducerConfig,
        client_id: String,
        seed: u64,
        hook: Option<WireHook>,
    ) -> Self {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        Self {
            request_timeout: Duration::from_millis(config.request_timeout_ms),
            retry_backoff_ms: config.retry_backoff_ms as i64,
            core: Producer::new(config),
            rng: ChaCha8Rng::seed_from_u64(seed),
            bootstrap,
            connection: ConnectionConfig {
                client_id,
                ..ConnectionConfig::default()
            },
            brokers: BTreeMap::new(),
            links: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            next_job: 0,
            events_tx,
            events_rx,
            waiters: BTreeMap::new(),
            flushes: vec![],
            closing: None,
            any_broker_cursor: 0,
            init_retry_at_ms: None,
            wake_at_ms: None,
            deferred: vec![],
            hook,
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut commands_open = true;
        loop {
            self.step();
            let idle = !self.core.has_incomplete();
            if idle {
                for f in self.flushes.drain(..) {
                    let _ = f.send(());
                }
                if self.closing.is_some() || !commands_open {
                    break;
                }
            }
            let wait_ms = self
                .next_timer_ms()
                .map_or(3_600_000, |at| (at - now_ms()).clamp(0, 3_600_000));
            tokio::select! {
                biased;
                Some(ev) = self.events_rx.recv() => self.on_event(ev),
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => commands_open = false,
                },
                _ = rt::sleep(Duration::from_millis(wait_ms as u64)) => {}
            }
        }
        for (_, link) in std::mem::take(&mut self.links) {
            link.task.abort();
        }
        if let Some(done) = self.closing.take() {
            let _ = done.send(());
        }
    }

    fn next_timer_ms(&self) -> Option<i64> {
        [self.wake_at_ms, self.init_retry_at_ms].into_iter().flatten().min()
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Send { record, done } => {
                let id = self.core.send(record, now_ms(), &mut self.rng);
                self.waiters.insert(id, done);
            }
            Command::Flush { done } => {
                self.core.flush();
                self.flushes.push(done);
            }
            Command::Close { done } => {
                self.core.flush();
                self.closing = Some(done);
            }
        }
    }

    /// Gives the core what was deferred and the time, then carries out its effects.
    fn step(&mut self) {
        let now = now_ms();
        for d in std::mem::take(&mut self.deferred) {
            match d {
                Deferred::Disconnected(broker) => self.core.on_disconnect(now, broker),
                Deferred::MetadataFailed => self.core.on_metadata_failed(now),
            }
        }
        if self.init_retry_at_ms.is_some_and(|at| now >= at) {
            self.init_retry_at_ms = None;
            self.core.on_init_producer_id_failed(now);
        }
        self.wake_at_ms = None;
        for effect in self.core.poll(now, &mut self.rng) {
            self.carry_out(effect);
        }
        if !self.deferred.is_empty() {
            // Failures found while carrying out the batch: let the core hear them at once.
            self.wake_at_ms = Some(now);
        }
    }

    fn carry_out(&mut self, effect: Effect) {
        match effect {
            Effect::InitProducerId => {
                let req = InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(i32::MAX);
                let addr = self.any_broker();
                self.submit(addr, JobKind::InitProducerId, WireRequest::InitProducerId(req));
            }
            Effect::Metadata { topics } => {
                let wire = topics
                    .iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                    .collect();
                let req = MetadataRequest::default()
                    .with_topics(Some(wire))
                    .with_allow_auto_topic_creation(false);
                let addr = self.any_broker();
                self.submit(addr, JobKind::Metadata { topics }, WireRequest::Metadata(req));
            }
            Effect::Produce(req) => self.produce(req),
            Effect::Disconnect { broker } => {
                // The core has failed every request on this broker already.
                if let Some(addr) = self.brokers.get(&broker).cloned() {
                    self.drop_link(&addr, false);
                }
            }
            Effect::Complete { send_id, outcome } => {
                if let Some(waiter) = self.waiters.remove(&send_id) {
                    waiter.complete(outcome);
                }
            }
            Effect::WakeAt { at_ms } => self.wake_at_ms = Some(at_ms),
        }
    }

    fn produce(&mut self, req: ProduceRequest) {
        let Some(addr) = self.brokers.get(&req.broker).cloned() else {
            // A leader without an address in the same metadata: fail it as unreachable.
            self.deferred.push(Deferred::Disconnected(req.broker));
            return;
        };
        let kind = JobKind::Produce {
            request_id: req.request_id,
            broker: req.broker,
        };
        let acks = req.acks;
        self.submit(
            addr,
            kind,
            WireRequest::Produce {
                req: wire_produce(&req),
                acks,
            },
        );
    }

    /// Metadata and InitProducerId go to the bootstrap servers first, then to any known broker; a failure
    /// moves the cursor on.
    fn any_broker(&self) -> String {
        let mut candidates = self.bootstrap.clone();
        for addr in self.brokers.values() {
            if !candidates.contains(addr) {
                candidates.push(addr.clone());
            }
        }
        if candidates.is_empty() {
            return String::from("(no bootstrap server)");
        }
        candidates[self.any_broker_cursor % candidates.len()].clone()
    }

    fn submit(&mut self, addr: String, kind: JobKind, request: WireRequest) {
        self.next_job += 1;
        let id = self.next_job;
        if let (Some(hook), JobKind::Produce { .. }) = (&self.hook, &kind) {
            hook(true);
        }
        self.outstanding.insert(id, (addr.clone(), kind));
        let link = self.links.entry(addr.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let conn = Connection::new_closed(addr, self.connection.clone());
            let task = rt::spawn(run_link(conn, self.request_timeout, rx, self.events_tx.clone()));
            Link { jobs: tx, task }
        });
        // The link task lives until this driver drops or aborts it, so the send cannot fail.
        let _ = link.jobs.send(Job { id, request });
    }

    /// Drops the link to `addr` (closing its connection) and every request queued on it. `fail_produce`:
    /// the link failed on its own, so the core must hear that its Produce requests there failed.
    fn drop_link(&mut self, addr: &str, fail_produce: bool) {
        if let Some(link) = self.links.remove(addr) {
            link.task.abort();
        }
        let jobs: Vec<u64> = self
            .outstanding
            .iter()
            .filter(|(_, (a, _))| a == addr)
            .map(|(id, _)| *id)
            .collect();
        let mut failed_brokers = vec![];
        for id in jobs {
            let Some((_, kind)) = self.outstanding.remove(&id) else {
                continue;
            };
            self.answered(&kind);
            match kind {
                JobKind::Produce { broker, .. } if fail_produce && !failed_brokers.contains(&broker) => {
                    failed_brokers.push(broker)
                }
                JobKind::Produce { .. } => {}
                JobKind::Metadata { .. } => self.metadata_failed(),
                JobKind::InitProducerId => self.init_failed(),
            }
        }
        self.deferred
            .extend(failed_brokers.into_iter().map(Deferred::Disconnected));
    }

    /// A job left `outstanding` (answered or failed).
    fn answered(&self, kind: &JobKind) {
        if let (Some(hook), JobKind::Produce { .. }) = (&self.hook, kind) {
            hook(false);
        }
    }

    fn metadata_failed(&mut self) {
        self.any_broker_cursor += 1;
        self.deferred.push(Deferred::MetadataFailed);
    }

    fn init_failed(&mut self) {
        self.any_broker_cursor += 1;
        self.init_retry_at_ms = Some(now_ms() + self.retry_backoff_ms);
    }

    fn on_event(&mut self, ev: Event) {
        let Some((addr, kind)) = self.outstanding.remove(&ev.job) else {
            return; // its link was dropped meanwhile; the core heard about it then
        };
        let now = now_ms();
        let reply = match ev.result {
            Ok(reply) => reply,
            Err(e) => {
                tracing::debug!("{kind:?} to {addr} failed: {e}");
                // Put it back so that dropping the link accounts for it with the rest.
                self.outstanding.insert(ev.job, (addr.clone(), kind));
                self.drop_link(&addr, true);
                return;
            }
        };
        self.answered(&kind);
        match (kind, reply) {
            (JobKind::Produce { request_id, .. }, Reply::Produce(resp)) => {
                self.core.on_response(now, request_id, &partition_responses(&resp));
            }
            (JobKind::Produce { .. }, Reply::Written) => {}
            (JobKind::Metadata { topics }, Reply::Metadata(resp)) => self.on_metadata(now, &topics, &resp),
            (JobKind::InitProducerId, Reply::InitProducerId(resp)) => {
                if resp.error_code == 0 {
                    self.init_retry_at_ms = None;
                    self.core
                        .on_init_producer_id(now, resp.producer_id.0, resp.producer_epoch);
                } else {
                    tracing::debug!("InitProducerId to {addr}: error code {}", resp.error_code);
                    self.init_failed();
                }
            }
            (kind, _) => panic!("link to {addr} answered {kind:?} with another API's reply"),
        }
    }

    fn on_metadata(&mut self, now: i64, topics: &[String], resp: &MetadataResponse) {
        self.brokers = resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
            .collect();
        if topics.is_empty() {
            // Nothing asked: clear the core's request with a name no topic has ("" is not a valid topic).
            self.core.on_metadata(now, "", None, &mut self.rng);
        }
        for topic in topics {
            let leaders = leaders_of(resp, topic);
            self.core.on_metadata(now, topic, leaders, &mut self.rng);
        }
    }
}

/// Per partition index its leader, for a topic the response knows without error; `None` otherwise (the
/// core keeps its sends waiting, up to `max.block.ms`).
fn leaders_of(resp: &MetadataResponse, topic: &str) -> Option<Vec<Option<BrokerId>>> {
    let t = resp
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))?;
    if t.error_code != 0 || t.partitions.is_empty() {
        return None;
    }
    let count = t.partitions.iter().map(|p| p.partition_index).max().unwrap_or(-1) + 1;
    let mut leaders = vec![None; count.max(0) as usize];
    for p in &t.partitions {
        let usable = p.error_code == 0 || p.error_code == code_replica_not_available();
        if p.partition_index >= 0 && p.leader_id.0 >= 0 && usable {
            leaders[p.partition_index as usize] = Some(p.leader_id.0);
        }
    }
    Some(leaders)
}

/// `REPLICA_NOT_AVAILABLE` (9): a follower is down, the leader still serves.
fn code_replica_not_available() -> i16 {
    9
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// The core's Produce request on the wire: its batches grouped by topic.
fn wire_produce(req: &ProduceRequest) -> WireProduce {
    let mut by_topic: BTreeMap<&str, Vec<PartitionProduceData>> = BTreeMap::new();
    for b in &req.batches {
        let data = PartitionProduceData::default()
            .with_index(b.tp.partition)
            .with_records(Some(Bytes::from(b.bytes.clone())));
        by_topic.entry(b.tp.topic.as_str()).or_default().push(data);
    }
    let topic_data = by_topic
        .into_iter()
        .map(|(t, ps)| {
            TopicProduceData::default()
                .with_name(topic_name(t))
                .with_partition_data(ps)
        })
        .collect();
    WireProduce::default()
        .with_transactional_id(None)
        .with_acks(req.acks)
        .with_timeout_ms(req.timeout_ms)
        .with_topic_data(topic_data)
}

/// A Produce response as the core reads it: one entry per partition answered.
fn partition_responses(resp: &ProduceResponse) -> Vec<PartitionResponse> {
    resp.responses
        .iter()
        .flat_map(|t| {
            t.partition_responses.iter().map(|p| PartitionResponse {
                tp: TopicPartition::new(t.name.0.to_string(), p.index),
                error_code: p.error_code,
                base_offset: p.base_offset,
            })
        })
        .collect()
}

/// One broker address's requests, one at a time, in order, on one connection.
async fn run_link(
    mut conn: Connection,
    timeout: Duration,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    events: mpsc::UnboundedSender<Event>,
) {
    while let Some(job) = jobs.recv().await {
        let result = match job.request {
            WireRequest::Produce { req, acks: 0 } => conn
                .send_no_response_negotiated(&req, timeout)
                .await
                .map(|()| Reply::Written),
            WireRequest::Produce { req, .. } => conn.request_negotiated(&req, timeout).await.map(Reply::Produce),
            WireRequest::Metadata(req) => conn.request_negotiated(&req, timeout).await.map(Reply::Metadata),
            WireRequest::InitProducerId(req) => conn.request_negotiated(&req, timeout).await.map(Reply::InitProducerId),
        };
        if events.send(Event { job: job.id, result }).is_err() {
            return; // the driver is gone
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::ProduceBatch;
    use kafka_protocol::messages::metadata_response::{MetadataResponsePartition, MetadataResponseTopic};
    use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
    use kafka_protocol::messages::BrokerId as WireBrokerId;

    fn batch(topic: &str, partition: i32) -> ProduceBatch {
        ProduceBatch {
            tp: TopicPartition::new(topic, partition),
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: 1,
            bytes: vec![partition as u8; 3],
        }
    }

    #[test]
    fn a_core_produce_request_groups_its_batches_by_topic_on_the_wire() {
        let req = ProduceRequest {
            request_id: 1,
            broker: 2,
            acks: 1,
            timeout_ms: 3000,
            batches: vec![batch("b", 0), batch("a", 1), batch("b", 2)],
        };
        let wire = wire_produce(&req);
        assert_eq!((wire.acks, wire.timeout_ms), (1, 3000));
        assert_eq!(wire.transactional_id, None);
        let names: Vec<_> = wire.topic_data.iter().map(|t| t.name.0.to_string()).collect();
        assert_eq!(names, vec!["a", "b"]);
        let b: Vec<_> = wire.topic_data[1].partition_data.iter().map(|p| p.index).collect();
        assert_eq!(b, vec![0, 2]);
        assert_eq!(
            wire.topic_data[1].partition_data[1].records.as_deref(),
            Some(&[2u8, 2, 2][..])
        );
    }

    #[test]
    fn a_produce_response_becomes_one_partition_response_per_partition() {
        let resp = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
            .with_name(topic_name("t"))
            .with_partition_responses(vec![
                PartitionProduceResponse::default().with_index(0).with_base_offset(7),
                PartitionProduceResponse::default().with_index(1).with_error_code(6),
            ])]);
        let parts = partition_responses(&resp);
        assert_eq!(
            parts,
            vec![
                PartitionResponse {
                    tp: TopicPartition::new("t", 0),
                    error_code: 0,
                    base_offset: 7
                },
                PartitionResponse {
                    tp: TopicPartition::new("t", 1),
                    error_code: 6,
                    base_offset: 0
                },
            ]
        );
    }

    #[test]
    fn metadata_gives_leaders_by_partition_index_and_none_for_unknown_topics() {
        let p = |i, leader, err| {
            MetadataResponsePartition::default()
                .with_partition_index(i)
                .with_leader_id(WireBrokerId(leader))
                .with_error_code(err)
        };
        let resp = MetadataResponse::default().with_topics(vec![
            MetadataResponseTopic::default()
                .with_name(Some(topic_name("t")))
                .with_partitions(vec![p(2, 3, 0), p(0, 1, 9), p(1, -1, 5)]),
            MetadataResponseTopic::default()
                .with_name(Some(topic_name("gone")))
                .with_error_code(3),
        ]);
        assert_eq!(leaders_of(&resp, "t"), Some(vec![Some(1), None, Some(3)]));
        assert_eq!(leaders_of(&resp, "gone"), None);
        assert_eq!(leaders_of(&resp, "never-asked"), None);
    }
}
