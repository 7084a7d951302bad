//! L3: the broker node's async shell. It reads frames, parses them with the bounded parser, hands them to
//! the pure [`Broker`] core, awaits the simulated disk time the core spent, and writes the response. Like
//! Kafka, one request per connection at a time (the connection is muted until its response is sent).
//!
//! A bad frame (oversize, unknown API key, unsupported version of any API but ApiVersions, malformed body)
//! closes that connection only; the broker keeps serving the others. A storage failure (KIP-112, one log
//! dir) makes `run_broker` return: the broker shuts down.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{oneshot, Notify};
use tracing::{error, info, warn};

use crate::broker::{Broker, BrokerConfig, ConnId, MetadataImage, Reply};
use crate::history::StateObserver;
use crate::log::Disk;
use crate::protocol::api::{parse_request, Request};
use crate::protocol::errors::api_name;
use crate::rt::{self, TcpListener, TcpStream};

mod fetcher;
mod link;
pub use link::{ControllerLinkConfig, BROKER_HEARTBEAT_INTERVAL_MS};

/// What a broker node needs to start.
#[derive(Debug, Clone)]
pub struct BrokerNodeConfig {
    pub broker: BrokerConfig,
    /// The metadata image to serve from (static until the controller quorum exists).
    pub image: MetadataImage,
    /// Where to listen (Kafka's `listeners`); `0.0.0.0:9092` by default.
    pub listen_addr: SocketAddr,
    /// Seeds the core's RNG (topic ids, replica placement).
    pub seed: u64,
    /// Where replica state changes are reported (the simulator's state trace), with this node's name and
    /// incarnation (bumped on every restart).
    pub observer: Option<Observer>,
    pub node_name: String,
    pub incarnation: u32,
    /// Network faults of our own on responses (drop, reset), if any.
    pub response_faults: Option<ResponseHook>,
    /// The node's wall clock (skewable).
    pub clock: NodeClock,
    /// The controller quorum to register with and follow; `None` serves the static `image`.
    pub controllers: Option<ControllerLinkConfig>,
}

/// What happens to a response the broker is about to send: our own network faults, since madsim's TCP
/// never loses data (ARCHITECTURE §4). They are what make clients retry a request that did take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseAction {
    Deliver,
    /// The response is lost: the connection stays open and the client times out (`request.timeout.ms`).
    Drop,
    /// The connection is reset instead of answering.
    Reset,
}

/// Decides each response's fate (the simulator implements it; lower layers only call it).
pub trait ResponseFaults: Send + Sync {
    /// `api_key` is the request's API (Produce = 0, ...).
    fn on_response(&self, api_key: i16) -> ResponseAction;
}

/// A response-fault hook handle (a newtype so that the config stays `Debug`).
#[derive(Clone)]
pub struct ResponseHook(pub Arc<dyn ResponseFaults>);

impl std::fmt::Debug for ResponseHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseHook")
    }
}

/// A state observer handle (a newtype so that the config stays `Debug`).
#[derive(Clone)]
pub struct Observer(pub Arc<dyn StateObserver>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

impl BrokerNodeConfig {
    pub fn new(broker: BrokerConfig, image: MetadataImage, seed: u64) -> Self {
        Self {
            broker,
            image,
            listen_addr: SocketAddr::from(([0, 0, 0, 0], 9092)),
            seed,
            observer: None,
            node_name: String::new(),
            incarnation: 0,
            response_faults: None,
            clock: NodeClock::default(),
            controllers: None,
        }
    }
}

/// Why `run_broker` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerExit {
    /// Binding the listener failed.
    Listen(String),
    /// Log recovery or log creation at startup failed.
    Startup(String),
    /// The log dir failed while running: the broker shut down (KIP-112).
    StorageFailure(String),
    /// A controlled shutdown (SIGTERM / ctrl-c): logs flushed, checkpoints and the clean-shutdown marker
    /// written; `Err` says what failed on the way.
    Shutdown(Result<(), String>),
}

struct Shared {
    broker: Broker,
    disk: Box<dyn Disk + Send>,
    /// Connections whose fetch is parked, waiting for its reply.
    waiters: BTreeMap<ConnId, oneshot::Sender<Reply>>,
}

/// Handles shared by the node's tasks.
#[derive(Clone)]
struct Node {
    shared: Arc<Mutex<Shared>>,
    /// Wakes the background task: an append happened or a fetch parked.
    wake: Arc<Notify>,
    /// Signals the accept loop that the broker must shut down.
    fatal: Arc<Notify>,
    max_frame_bytes: usize,
    observer: Option<Observer>,
    node_name: String,
    incarnation: u32,
    response_faults: Option<ResponseHook>,
    clock: NodeClock,
    /// No controller quorum: `__consumer_offsets` is created locally, as static topics are.
    static_metadata: bool,
    /// Wakes the controller link's task that asks for `__consumer_offsets` (a FindCoordinator missed it).
    offsets_topic: Arc<Notify>,
    /// The controller link, with a quorum: client CreateTopics are forwarded to it (KIP-590).
    link: Option<Arc<link::Link>>,
}

impl Node {
    /// Forwards the core's coverage marks to the observer.
    fn forward_marks(&self, broker: &mut Broker) {
        let marks = broker.take_marks();
        if let Some(Observer(o)) = &self.observer {
            marks.into_iter().for_each(|m| o.mark(m));
        }
    }

    /// `__consumer_offsets` is missing and a FindCoordinator wants it: create it here (static image) or ask
    /// the active controller (KIP-631), as Kafka's `AutoTopicCreationManager` does for internal topics.
    fn maybe_create_offsets_topic(&self, s: &mut Shared) {
        if !s.broker.take_offsets_topic_wanted() {
            return;
        }
        if self.static_metadata {
            if let Err(e) = s.broker.create_offsets_topic(s.disk.as_mut(), self.clock.now_ms()) {
                warn!("creating __consumer_offsets: {e}");
            }
        } else {
            self.offsets_topic.notify_one();
        }
    }

    /// Reports every hosted replica's state to the observer (it records changes only).
    fn report_states(&self, broker: &mut Broker) {
        if let Some(Observer(o)) = &self.observer {
            for state in broker.changed_replica_states(&self.node_name, self.incarnation) {
                o.replica_state(state);
            }
        }
    }
}

impl Node {
    /// Serves from a newer metadata image (applied up to metadata `offset`), reports it to the state trace and
    /// awaits the disk time spent creating logs. A storage failure stops the broker.
    async fn apply_metadata(&self, image: MetadataImage, offset: i64) {
        let trace = image.trace(&self.node_name, self.incarnation, offset);
        let (result, elapsed) = {
            let mut guard = self.lock();
            let s = &mut *guard;
            let result = s.broker.apply_image(s.disk.as_mut(), image, self.clock.now_ms());
            self.report_states(&mut s.broker);
            self.forward_marks(&mut s.broker);
            (result, s.disk.take_elapsed())
        };
        if let Some(Observer(o)) = &self.observer {
            o.metadata_state(trace);
        }
        rt::sleep_for(elapsed).await;
        if let Err(e) = result {
            error!("applying metadata at offset {offset}: {e}");
            if self.lock().broker.fatal().is_some() {
                self.fatal.notify_one();
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A poisoned lock means a task panicked: madsim aborts the run before anyone gets here.
        self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A node's wall clock: the (simulated) system clock plus the node's skew, which the simulator's
/// `clock_skew` fault sets. Kafka reads wall time for segment rolls, flush.ms and timestamps, so a skewed
/// broker behaves as one whose NTP went wrong.
#[derive(Debug, Clone, Default)]
pub struct NodeClock {
    skew_ms: Arc<AtomicI64>,
}

impl NodeClock {
    /// Wall-clock milliseconds, skew included.
    pub fn now_ms(&self) -> i64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        system.saturating_add(self.skew_ms.load(AtomicOrdering::Relaxed))
    }

    pub fn set_skew_ms(&self, skew_ms: i64) {
        self.skew_ms.store(skew_ms, AtomicOrdering::Relaxed);
    }

    pub fn skew_ms(&self) -> i64 {
        self.skew_ms.load(AtomicOrdering::Relaxed)
    }
}

/// Runs one broker until its log dir fails (or startup fails).
pub async fn run_broker(cfg: BrokerNodeConfig, mut disk: Box<dyn Disk + Send>) -> BrokerExit {
    let node_id = cfg.broker.node_id;
    let max_frame_bytes = cfg.broker.socket_request_max_bytes;
    let clock = cfg.clock.clone();
    let started = Broker::new(cfg.broker, cfg.image, disk.as_mut(), clock.now_ms(), cfg.seed);
    rt::sleep_for(disk.take_elapsed()).await;
    let mut broker = match started {
        Ok((broker, reports)) => {
            info!(node_id, recovered = reports.len(), "broker started");
            for r in reports
                .iter()
                .filter(|r| r.truncated_bytes > 0 || r.first_bad.is_some())
            {
                info!(
                    node_id,
                    "log recovery of {}: from {} truncated {} bytes, log end {} ({:?})",
                    r.tp,
                    r.recovered_from,
                    r.truncated_bytes,
                    r.log_end_offset,
                    r.first_bad
                );
            }
            broker
        }
        Err(e) => {
            error!(node_id, "broker startup failed: {e}");
            return BrokerExit::Startup(e.to_string());
        }
    };
    if cfg.controllers.is_none() {
        // No controller to hand out producer id blocks (KIP-730): a static image gets a block of its own per
        // broker and incarnation, so a restarted broker never hands out an id an earlier process used.
        let first = (i64::from(cfg.incarnation) + 1) * STATIC_PRODUCER_ID_STRIDE + i64::from(node_id) * 10_000;
        broker.grant_producer_ids(first, 10_000);
    }
    let listener = match TcpListener::bind(cfg.listen_addr).await {
        Ok(l) => l,
        Err(e) => return BrokerExit::Listen(format!("binding {}: {e}", cfg.listen_addr)),
    };
    let shared = Shared {
        broker,
        disk,
        waiters: BTreeMap::new(),
    };
    let link = cfg.controllers.clone().map(|c| link::Link::new(c, node_id));
    let node = Node {
        shared: Arc::new(Mutex::new(shared)),
        wake: Arc::new(Notify::new()),
        fatal: Arc::new(Notify::new()),
        max_frame_bytes,
        observer: cfg.observer.clone(),
        node_name: cfg.node_name.clone(),
        incarnation: cfg.incarnation,
        response_faults: cfg.response_faults.clone(),
        clock,
        static_metadata: cfg.controllers.is_none(),
        offsets_topic: Arc::new(Notify::new()),
        link: link.clone(),
    };
    node.report_states(&mut node.lock().broker);
    let background = rt::spawn(background_loop(node.clone()));
    let fetchers = rt::spawn(fetcher::fetcher_manager(node.clone()));
    let link_tasks = link.as_ref().map(|l| {
        [
            rt::spawn(link::follow_metadata(node.clone(), l.clone())),
            rt::spawn(link::lifecycle(node.clone(), l.clone())),
            rt::spawn(link::alter_partitions(node.clone(), l.clone())),
            rt::spawn(link::create_offsets_topic(node.clone(), l.clone())),
        ]
    });
    let mut next_conn: ConnId = 0;
    // One subscription for the whole life of the broker, so a signal sent between two turns is not missed.
    let shutdown_signal = tokio::signal::ctrl_c();
    tokio::pin!(shutdown_signal);
    let exit = loop {
        tokio::select! {
            biased;
            _ = &mut shutdown_signal => {
                if let Some(l) = &link {
                    // KIP-631: leadership moves away before the broker stops.
                    let moved = l.controlled_shutdown(Duration::from_secs(CONTROLLED_SHUTDOWN_WAIT_S)).await;
                    if !moved {
                        warn!(node_id, "the controller did not release the broker in time; stopping anyway");
                    }
                }
                info!(node_id, "controlled shutdown: flushing logs and writing checkpoints");
                let (result, elapsed) = {
                    let mut guard = node.lock();
                    let s = &mut *guard;
                    s.broker.stop_serving("controlled shutdown");
                    let result = s.broker.shutdown(s.disk.as_mut());
                    (result, s.disk.take_elapsed())
                };
                rt::sleep_for(elapsed).await;
                break BrokerExit::Shutdown(result);
            }
            _ = node.fatal.notified() => {
                let reason = node.lock().broker.fatal().unwrap_or("log dir failed").to_string();
                error!(node_id, "log dir offline, shutting the broker down: {reason}");
                break BrokerExit::StorageFailure(reason);
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    next_conn += 1;
                    rt::spawn(serve_connection(node.clone(), stream, peer, next_conn));
                }
                Err(e) => warn!(node_id, "accept failed: {e}"),
            },
        }
    };
    background.abort();
    fetchers.abort();
    for t in link_tasks.into_iter().flatten() {
        t.abort();
    }
    exit
}

/// Producer ids a static-image broker's incarnations are spaced by.
const STATIC_PRODUCER_ID_STRIDE: i64 = 1_000_000;

/// How long a controlled shutdown waits for the controller to move leadership away.
const CONTROLLED_SHUTDOWN_WAIT_S: u64 = 30;

/// Serves one connection: one request at a time, in order.
async fn serve_connection(node: Node, mut stream: TcpStream, peer: SocketAddr, conn_id: ConnId) {
    loop {
        let frame = match rt::read_frame(&mut stream, node.max_frame_bytes).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                error!(%peer, "closing connection: reading a frame: {e}");
                break;
            }
        };
        let req = match parse_request(&frame) {
            Ok(req) => req,
            Err(e) => {
                error!(%peer, "closing connection: {e}");
                break;
            }
        };
        let api = req.api_key();
        let reply = match (&req.body, &node.link) {
            (Request::CreateTopics(r), Some(link)) => forward_create_topics(link, r, &req).await,
            (Request::DeleteTopics(r), Some(link)) => forward_delete_topics(link, r, &req).await,
            (Request::CreatePartitions(r), Some(link)) => forward_create_partitions(link, r, &req).await,
            _ => call_core(&node, conn_id, req).await,
        };
        let Some(reply) = reply else {
            break;
        };
        match reply {
            Reply::Respond(body) => {
                match node
                    .response_faults
                    .as_ref()
                    .map_or(ResponseAction::Deliver, |h| h.0.on_response(api))
                {
                    ResponseAction::Deliver => {}
                    ResponseAction::Drop => {
                        warn!(%peer, "fault: dropping the {} response", api_name(api));
                        continue;
                    }
                    ResponseAction::Reset => {
                        warn!(%peer, "fault: resetting the connection instead of the {} response", api_name(api));
                        break;
                    }
                }
                if let Err(e) = rt::write_frame(&mut stream, &body).await {
                    warn!(%peer, "closing connection: writing the {} response: {e}", api_name(api));
                    break;
                }
            }
            Reply::NoResponse => {}
            Reply::Close(reason) => {
                error!(%peer, "closing connection after {}: {reason}", api_name(api));
                break;
            }
            Reply::Fatal(_) => {
                node.fatal.notify_one();
                break;
            }
            Reply::ParkFetch { .. } | Reply::ParkProduce { .. } | Reply::ParkGroup => {
                error!(%peer, "closing connection: a parked request completed with another park");
                break;
            }
        }
    }
    let mut s = node.lock();
    s.broker.cancel_parked(conn_id);
    s.waiters.remove(&conn_id);
}

/// KIP-590: a client's CreateTopics goes to the active controller; its answer is relayed at the client's
/// version and correlation id. The topic reaches this broker later, through the metadata log.
async fn forward_create_topics(
    link: &link::Link,
    r: &kafka_protocol::messages::CreateTopicsRequest,
    req: &crate::protocol::api::ParsedRequest,
) -> Option<Reply> {
    let resp = link::forward_create_topics(link, r).await;
    relay(kafka_protocol::messages::ApiKey::CreateTopics, req, &resp)
}

/// KIP-590: DeleteTopics goes to the active controller. The brokers delete the replicas' logs when the
/// RemoveTopic record reaches them through the metadata log.
async fn forward_delete_topics(
    link: &link::Link,
    r: &kafka_protocol::messages::DeleteTopicsRequest,
    req: &crate::protocol::api::ParsedRequest,
) -> Option<Reply> {
    use crate::protocol::errors::ResponseError;
    let not_controller = |resp: &kafka_protocol::messages::DeleteTopicsResponse| {
        let code = ResponseError::NotController.code();
        resp.responses.iter().any(|t| t.error_code == code)
    };
    let timed_out = || {
        let why = "no active controller answered";
        crate::broker::delete_topics_refused(r, ResponseError::RequestTimedOut, why)
    };
    let resp = link::forward(link, r, not_controller, timed_out).await;
    relay(kafka_protocol::messages::ApiKey::DeleteTopics, req, &resp)
}

/// KIP-590: CreatePartitions goes to the active controller; new partitions reach the brokers through the
/// metadata log.
async fn forward_create_partitions(
    link: &link::Link,
    r: &kafka_protocol::messages::CreatePartitionsRequest,
    req: &crate::protocol::api::ParsedRequest,
) -> Option<Reply> {
    use crate::protocol::errors::ResponseError;
    let not_controller = |resp: &kafka_protocol::messages::CreatePartitionsResponse| {
        let code = ResponseError::NotController.code();
        resp.results.iter().any(|t| t.error_code == code)
    };
    let timed_out = || {
        let why = "no active controller answered";
        crate::broker::create_partitions_refused(r, ResponseError::RequestTimedOut, why)
    };
    let resp = link::forward(link, r, not_controller, timed_out).await;
    relay(kafka_protocol::messages::ApiKey::CreatePartitions, req, &resp)
}

/// The controller's answer, encoded at the client's version and correlation id.
fn relay<R: kafka_protocol::protocol::Encodable>(
    key: kafka_protocol::messages::ApiKey,
    req: &crate::protocol::api::ParsedRequest,
    resp: &R,
) -> Option<Reply> {
    Some(
        match crate::protocol::api::encode_response(key, req.api_version(), req.correlation_id(), resp) {
            Ok(body) => Reply::Respond(body),
            Err(e) => Reply::Close(e.to_string()),
        },
    )
}

/// Runs one request through the core, awaits its disk time and, for a parked fetch, its completion.
/// `None`: the broker is shutting down.
async fn call_core(node: &Node, conn_id: ConnId, req: crate::protocol::api::ParsedRequest) -> Option<Reply> {
    let is_produce = req.api_key() == kafka_protocol::messages::ApiKey::Produce as i16;
    let is_fetch = req.api_key() == kafka_protocol::messages::ApiKey::Fetch as i16;
    // A group request may answer other parked group requests (a join completing a rebalance) or append.
    let is_group = crate::broker::is_group_api(req.api_key());
    let (tx, rx) = oneshot::channel();
    let (reply, elapsed) = {
        let mut guard = node.lock();
        let s = &mut *guard;
        let changes_state =
            is_produce || is_group || req.api_key() == kafka_protocol::messages::ApiKey::CreateTopics as i16;
        let reply = s.broker.handle(s.disk.as_mut(), conn_id, req, node.clock.now_ms());
        if matches!(
            reply,
            Reply::ParkFetch { .. } | Reply::ParkProduce { .. } | Reply::ParkGroup
        ) {
            s.waiters.insert(conn_id, tx);
        }
        node.maybe_create_offsets_topic(s);
        if changes_state {
            node.report_states(&mut s.broker);
        }
        node.forward_marks(&mut s.broker);
        (reply, s.disk.take_elapsed())
    };
    rt::sleep_for(elapsed).await;
    match reply {
        Reply::ParkFetch { .. } | Reply::ParkProduce { .. } | Reply::ParkGroup => {
            node.wake.notify_one();
            rx.await.ok()
        }
        Reply::Fatal(reason) => Some(Reply::Fatal(reason)),
        other => {
            if is_produce || is_fetch || is_group {
                // An append, or a follower's fetch that may move the high watermark: parked requests may complete.
                node.wake.notify_one();
            }
            Some(other)
        }
    }
}

/// Completes parked fetches (on appends and at their deadlines), and runs the log flusher and the
/// recovery-point checkpoint on their intervals.
async fn background_loop(node: Node) {
    let (flush_ms, checkpoint_ms) = {
        let s = node.lock();
        let c = s.broker.config();
        (
            c.log_flush_scheduler_interval_ms,
            c.log_flush_offset_checkpoint_interval_ms,
        )
    };
    let isr_check_ms = (node.lock().broker.config().replica_lag_time_max_ms / 2).max(1);
    let retention_ms = node.lock().broker.config().log_retention_check_interval_ms.max(1);
    let cleaner_ms = node.lock().broker.config().log_cleaner_backoff_ms.max(1);
    let start = node.clock.now_ms();
    let mut next_isr_check = start.saturating_add(isr_check_ms);
    let mut next_flush = start.saturating_add(flush_ms);
    let mut next_checkpoint = start.saturating_add(checkpoint_ms);
    let mut next_retention = start.saturating_add(retention_ms);
    let mut next_clean = start.saturating_add(cleaner_ms);
    loop {
        let parked = node.lock().broker.next_parked_deadline();
        let due = [
            Some(next_flush),
            Some(next_checkpoint),
            Some(next_isr_check),
            Some(next_retention),
            Some(next_clean),
            parked,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(i64::MAX);
        let wait_ms = due.saturating_sub(node.clock.now_ms()).clamp(0, 3_600_000) as u64;
        tokio::select! {
            biased;
            _ = node.wake.notified() => {}
            _ = rt::sleep(Duration::from_millis(wait_ms)) => {}
        }
        let now = node.clock.now_ms();
        let (elapsed, failed) = {
            let mut guard = node.lock();
            let s = &mut *guard;
            if now >= next_isr_check {
                // Kafka's `isr-expiration` task, every replica.lag.time.max.ms / 2.
                next_isr_check = now.saturating_add(isr_check_ms);
                s.broker.tick_replication(now);
            }
            for (conn_id, reply) in s.broker.poll_parked(s.disk.as_mut(), now) {
                if let Some(tx) = s.waiters.remove(&conn_id) {
                    let _ = tx.send(reply); // the connection may have closed meanwhile
                }
            }
            node.report_states(&mut s.broker);
            node.forward_marks(&mut s.broker);
            let mut failed = s.broker.fatal().is_some();
            if !failed && now >= next_flush {
                next_flush = now.saturating_add(flush_ms);
                failed |= s.broker.flush_dirty(s.disk.as_mut(), now).is_err();
            }
            if !failed && now >= next_retention {
                // Kafka's `kafka-log-retention` task, every log.retention.check.interval.ms.
                next_retention = now.saturating_add(retention_ms);
                failed |= s.broker.retention_pass(s.disk.as_mut(), now).is_err();
            }
            if !failed && now >= next_clean {
                // Kafka's log cleaner threads, which back off log.cleaner.backoff.ms when nothing is dirty.
                next_clean = now.saturating_add(cleaner_ms);
                failed |= s.broker.cleaner_pass(s.disk.as_mut(), now).is_err();
            }
            if !failed && now >= next_checkpoint {
                next_checkpoint = now.saturating_add(checkpoint_ms);
                failed |= s.broker.checkpoint(s.disk.as_mut()).is_err();
            }
            (s.disk.take_elapsed(), failed)
        };
        rt::sleep_for(elapsed).await;
        if failed {
            node.fatal.notify_one();
            return;
        }
    }
}
