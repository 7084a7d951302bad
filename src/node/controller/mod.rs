//! L3: the controller node's async shell (KRaft, KIP-595 and KIP-631). One actor task owns the pure cores —
//! the Raft node ([`crate::raft::RaftNode`]), the committed metadata state and, while this node leads, the
//! active [`Controller`] — and the metadata log on disk. Connection tasks and per-peer sender tasks talk to it
//! through one channel, so the cores see one event at a time, in a deterministic order.
//!
//! What the actor does after each event (the order the Raft core's module doc fixes):
//! 1. write and sync the quorum state; 2. truncate, append and sync the metadata log (awaiting the simulated
//! disk time); 3. send the messages: requests to peers go to that peer's sender task, responses to the
//! connection whose request they answer; 4. replay newly committed entries into the committed state, answer
//! the broker requests whose records are now committed, and serve waiting observer fetches.
//!
//! Brokers are observers (KIP-595): their metadata Fetch (`replica_id` = the broker id, not a voter) is
//! served by the leader from committed entries only, so an observer never has to truncate. Broker-facing
//! requests (BrokerRegistration, BrokerHeartbeat, CreateTopics, AlterPartition, AllocateProducerIds) are
//! handled by the active controller: it proposes the records as one entry, replays them at once (Kafka's
//! active controller applies its own records before they commit) and answers once the entry commits. A
//! standby controller, or a leader that has not yet replayed the log up to its own epoch's first entry,
//! answers NOT_CONTROLLER.

pub mod requests;
pub mod storage;
pub mod wire;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, BrokerHeartbeatResponse, BrokerRegistrationResponse};
use kafka_protocol::protocol::Encodable;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tracing::{debug, error, info, warn};

use crate::client::connection::{Connection, ConnectionConfig};
use crate::controller::{decode_records, encode_records, Controller, ControllerConfig, ControllerState, ResponseError};
use crate::history::{RaftRole, RaftState};
use crate::log::Disk;
use crate::node::broker::Observer;
use crate::protocol::api::{encode_response, parse_request_on, Listener, ParsedRequest, Request};
use crate::raft::{self, Message, PersistedState, RaftConfig, RaftNode, Role};
use crate::rt::{self, mpsc, oneshot, TcpListener, TcpStream};
use storage::MetadataStore;

/// Kafka's `controller.quorum.request.timeout.ms`.
const QUORUM_REQUEST_TIMEOUT: Duration = Duration::from_millis(2000);
/// How often the active controller checks broker sessions (Kafka's periodic fencing check).
const SESSION_CHECK_INTERVAL_MS: i64 = 250;
/// Most entries one observer Fetch response carries.
const OBSERVER_FETCH_MAX_ENTRIES: u64 = 256;

/// What a controller node needs to start.
#[derive(Debug, Clone)]
pub struct ControllerNodeConfig {
    /// `node.id`, one of `voters`.
    pub node_id: i32,
    /// `controller.quorum.voters`: every voter's id and controller listener address.
    pub voters: BTreeMap<i32, SocketAddr>,
    /// The controller listener (`0.0.0.0:9093`).
    pub listen_addr: SocketAddr,
    /// Cluster id, `broker.session.timeout.ms`, `unclean.leader.election.enable`, defaults for topics.
    pub controller: ControllerConfig,
    /// The quorum's timeouts (`controller.quorum.*`); `node_id` and `voters` must match the fields above.
    pub raft: RaftConfig,
    /// Seeds the cores' RNG (election timeouts, topic ids, replica placement).
    pub seed: u64,
    pub observer: Option<Observer>,
    pub node_name: String,
    pub incarnation: u32,
}

/// Why `run_controller` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControllerExit {
    Listen(String),
    Startup(String),
    /// The metadata log dir failed: a controller cannot go on without it (Kafka's fatal fault handler).
    StorageFailure(String),
    /// SIGTERM / ctrl-c: the controller stopped (its log is synced after every append).
    Shutdown,
}

/// A frame to send back, or `None` to close the connection.
type Responder = oneshot::Sender<Option<Vec<u8>>>;

enum Event {
    Request {
        req: ParsedRequest,
        reply: Responder,
    },
    /// A voter's answer to one of our quorum requests.
    Response {
        from: i32,
        msg: Message,
    },
}

/// Which quorum request an inbound response answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Vote,
    BeginQuorumEpoch,
    EndQuorumEpoch,
    Fetch,
}

struct Inbound {
    correlation_id: i32,
    version: i16,
    reply: Responder,
}

/// A broker-facing answer waiting for its records to commit.
struct Waiting {
    frame: Vec<u8>,
    /// The NOT_CONTROLLER answer, if leadership is lost first.
    refused: Vec<u8>,
    reply: Responder,
}

struct ParkedObserver {
    fetch_offset: u64,
    deadline_ms: i64,
    correlation_id: i32,
    version: i16,
    reply: Responder,
}

/// Runs one controller until its disk fails (or startup fails).
pub async fn run_controller(cfg: ControllerNodeConfig, mut disk: Box<dyn Disk + Send>) -> ControllerExit {
    let start = rt::Instant::now();
    let opened = MetadataStore::open(disk.as_mut(), 0);
    rt::sleep_for(disk.take_elapsed()).await;
    let (store, persisted) = match opened {
        Ok(x) => x,
        Err(e) => {
            error!(node = cfg.node_id, "controller startup failed: {e}");
            return ControllerExit::Startup(e);
        }
    };
    let listener = match TcpListener::bind(cfg.listen_addr).await {
        Ok(l) => l,
        Err(e) => return ControllerExit::Listen(format!("binding {}: {e}", cfg.listen_addr)),
    };
    info!(
        node = cfg.node_id,
        epoch = persisted.epoch,
        log_end = persisted.entries.len(),
        "controller started"
    );
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let actor = Actor::new(cfg, store, disk, persisted, start, &events_tx);
    let accept = rt::spawn(accept_loop(listener, events_tx));
    let exit = tokio::select! {
        biased;
        _ = tokio::signal::ctrl_c() => ControllerExit::Shutdown,
        exit = actor.run(events_rx) => exit,
    };
    accept.abort();
    exit
}

async fn accept_loop(listener: TcpListener, events: mpsc::UnboundedSender<Event>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                rt::spawn(serve_connection(stream, peer, events.clone()));
            }
            Err(e) => warn!("accept failed: {e}"),
        }
    }
}

/// One request at a time per connection, as Kafka does; a bad frame closes the connection.
async fn serve_connection(mut stream: TcpStream, peer: SocketAddr, events: mpsc::UnboundedSender<Event>) {
    loop {
        let frame = match rt::read_frame(&mut stream, crate::protocol::frame::SOCKET_REQUEST_MAX_BYTES).await {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                warn!(%peer, "closing controller connection: {e}");
                return;
            }
        };
        let req = match parse_request_on(Listener::Controller, &frame) {
            Ok(r) => r,
            Err(e) => {
                warn!(%peer, "closing controller connection: {e}");
                return;
            }
        };
        let (tx, rx) = oneshot::channel();
        if events.send(Event::Request { req, reply: tx }).is_err() {
            return;
        }
        let Ok(Some(body)) = rx.await else { return };
        if let Err(e) = rt::write_frame(&mut stream, &body).await {
            debug!(%peer, "closing controller connection: {e}");
            return;
        }
    }
}

/// Sends one peer our quorum requests of one class (Vote/BeginQuorumEpoch/EndQuorumEpoch, or Fetch), one at
/// a time on its own connection, and hands the answers to the actor.
async fn peer_sender(
    me: i32,
    peer: i32,
    addr: SocketAddr,
    cluster_id: String,
    mut rx: mpsc::UnboundedReceiver<Message>,
    events: mpsc::UnboundedSender<Event>,
) {
    let config = ConnectionConfig {
        client_id: format!("controller-{me}"),
        ..ConnectionConfig::default()
    };
    let mut conn = Connection::new_closed(addr.to_string(), config);
    let t = QUORUM_REQUEST_TIMEOUT;
    while let Some(msg) = rx.recv().await {
        let answer = match &msg {
            Message::Vote(r) => conn
                .request_negotiated(&wire::vote_request(r, &cluster_id), t)
                .await
                .map_err(|e| e.to_string())
                .and_then(|resp| wire::from_vote_response(&resp))
                .map(Message::VoteResponse),
            Message::BeginQuorumEpoch(r) => conn
                .request_negotiated(&wire::begin_quorum_epoch_request(r, &cluster_id), t)
                .await
                .map_err(|e| e.to_string())
                .and_then(|resp| wire::from_begin_quorum_epoch_response(&resp))
                .map(Message::BeginQuorumEpochResponse),
            Message::EndQuorumEpoch(r) => conn
                .request_negotiated(&wire::end_quorum_epoch_request(r, &cluster_id), t)
                .await
                .map_err(|e| e.to_string())
                .and_then(|resp| wire::from_end_quorum_epoch_response(&resp))
                .map(Message::EndQuorumEpochResponse),
            Message::Fetch(r) => conn
                .request_negotiated(&wire::fetch_request(r, &cluster_id), t)
                .await
                .map_err(|e| e.to_string())
                .and_then(|resp| wire::from_fetch_response(&resp, r.correlation_id))
                .map(Message::FetchResponse),
            other => {
                error!(peer, "not a request, not sent: {other}");
                continue;
            }
        };
        match answer {
            Ok(m) => {
                if events.send(Event::Response { from: peer, msg: m }).is_err() {
                    return;
                }
            }
            Err(e) => debug!(peer, "quorum request {msg} failed: {e}"),
        }
    }
}

struct Peer {
    quorum: mpsc::UnboundedSender<Message>,
    fetch: mpsc::UnboundedSender<Message>,
}

struct Actor {
    cfg: ControllerNodeConfig,
    raft: RaftNode,
    rng: ChaCha8Rng,
    store: MetadataStore,
    disk: Box<dyn Disk + Send>,
    start: rt::Instant,
    /// The state replayed from committed entries (what a standby controller and a new leader start from).
    committed: ControllerState,
    /// Next committed offset to replay.
    applied_next: u64,
    /// The active controller, while this node leads and has replayed its epoch's first entry.
    active: Option<Controller>,
    /// The Raft epoch `active` belongs to.
    active_epoch: i32,
    /// The last entry the active controller proposed (answers wait for it to commit).
    last_proposed: Option<u64>,
    next_session_check_ms: i64,
    inbound: BTreeMap<(i32, Kind), VecDeque<Inbound>>,
    waiting: BTreeMap<u64, Vec<Waiting>>,
    observers: Vec<ParkedObserver>,
    peers: BTreeMap<i32, Peer>,
    reported: Option<(RaftRole, i32, Option<i32>, Option<u64>)>,
}

impl Actor {
    fn new(
        cfg: ControllerNodeConfig,
        store: MetadataStore,
        disk: Box<dyn Disk + Send>,
        persisted: PersistedState,
        start: rt::Instant,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Actor {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let raft_config = RaftConfig {
            node_id: cfg.node_id,
            voters: cfg.voters.keys().copied().collect(),
            ..cfg.raft.clone()
        };
        let raft = RaftNode::new(raft_config, persisted, 0, &mut rng);
        let mut peers = BTreeMap::new();
        for (&id, &addr) in cfg.voters.iter().filter(|(id, _)| **id != cfg.node_id) {
            let (quorum, quorum_rx) = mpsc::unbounded_channel();
            let (fetch, fetch_rx) = mpsc::unbounded_channel();
            let cluster = cfg.controller.cluster_id.clone();
            rt::spawn(peer_sender(
                cfg.node_id,
                id,
                addr,
                cluster.clone(),
                quorum_rx,
                events.clone(),
            ));
            rt::spawn(peer_sender(cfg.node_id, id, addr, cluster, fetch_rx, events.clone()));
            peers.insert(id, Peer { quorum, fetch });
        }
        Actor {
            cfg,
            raft,
            rng,
            store,
            disk,
            start,
            committed: ControllerState::default(),
            applied_next: 0,
            active: None,
            active_epoch: -1,
            last_proposed: None,
            next_session_check_ms: 0,
            inbound: BTreeMap::new(),
            waiting: BTreeMap::new(),
            observers: vec![],
            peers,
            reported: None,
        }
    }

    /// Monotonic milliseconds since the node started (Kafka's timers use a monotonic clock).
    fn now_ms(&self) -> i64 {
        self.start.elapsed().as_millis() as i64
    }

    async fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) -> ControllerExit {
        loop {
            if let Err(e) = self.drive().await {
                error!(
                    node = self.cfg.node_id,
                    "metadata log failed, the controller stops: {e}"
                );
                return ControllerExit::StorageFailure(e);
            }
            let deadline = self.next_deadline();
            let wait = Duration::from_millis(deadline.saturating_sub(self.now_ms()).clamp(0, 60_000) as u64);
            tokio::select! {
                biased;
                ev = events.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => return ControllerExit::Listen("event channel closed".into()),
                },
                _ = rt::sleep(wait) => {}
            }
            let now = self.now_ms();
            self.raft.tick(now, &mut self.rng);
            self.check_sessions(now);
        }
    }

    fn next_deadline(&self) -> i64 {
        let raft = self.raft.next_deadline().unwrap_or(i64::MAX);
        let session = if self.active.is_some() {
            self.next_session_check_ms
        } else {
            i64::MAX
        };
        let observers = self.observers.iter().map(|o| o.deadline_ms).min().unwrap_or(i64::MAX);
        raft.min(session).min(observers)
    }

    fn on_event(&mut self, ev: Event) {
        let now = self.now_ms();
        match ev {
            Event::Response { from, msg } => self.raft.step(from, msg, now, &mut self.rng),
            Event::Request { req, reply } => self.on_request(req, reply, now),
        }
    }

    fn on_request(&mut self, req: ParsedRequest, reply: Responder, now: i64) {
        let (corr, version) = (req.correlation_id(), req.api_version());
        let inbound = |reply| Inbound {
            correlation_id: corr,
            version,
            reply,
        };
        let quorum = match &req.body {
            Request::Vote(r) => wire::from_vote_request(r).map(|m| (Kind::Vote, m.candidate_id, Message::Vote(m))),
            Request::BeginQuorumEpoch(r) => wire::from_begin_quorum_epoch_request(r)
                .map(|m| (Kind::BeginQuorumEpoch, m.leader_id, Message::BeginQuorumEpoch(m))),
            Request::EndQuorumEpoch(r) => wire::from_end_quorum_epoch_request(r)
                .map(|m| (Kind::EndQuorumEpoch, m.leader_id, Message::EndQuorumEpoch(m))),
            Request::Fetch(r) => match wire::from_fetch_request(r, corr as u64) {
                Ok(f) if !self.cfg.voters.contains_key(&f.replica_id) => {
                    self.observers.push(ParkedObserver {
                        fetch_offset: f.fetch_offset,
                        deadline_ms: now + f.max_wait_ms.clamp(0, raft::FETCH_MAX_WAIT_MS),
                        correlation_id: corr,
                        version,
                        reply,
                    });
                    return;
                }
                Ok(f) => Ok((Kind::Fetch, f.replica_id, Message::Fetch(f))),
                Err(e) => Err(e),
            },
            _ => {
                self.on_controller_request(req, reply, now);
                return;
            }
        };
        match quorum {
            Ok((kind, from, msg)) => {
                self.inbound.entry((from, kind)).or_default().push_back(inbound(reply));
                self.raft.step(from, msg, now, &mut self.rng);
            }
            Err(e) => {
                warn!(node = self.cfg.node_id, "closing a connection: {e}");
                let _ = reply.send(None);
            }
        }
    }

    /// Broker-facing APIs: handled by the active controller, NOT_CONTROLLER elsewhere.
    fn on_controller_request(&mut self, req: ParsedRequest, reply: Responder, now: i64) {
        let (corr, v) = (req.correlation_id(), req.api_version());
        let not_controller = ResponseError::NotController;
        macro_rules! frame {
            ($key:expr, $body:expr) => {
                match encode_response($key, v, corr, &$body) {
                    Ok(f) => f,
                    Err(e) => {
                        error!("{e}");
                        let _ = reply.send(None);
                        return;
                    }
                }
            };
        }
        let (key, refused) = match &req.body {
            Request::BrokerRegistration(_) => (
                ApiKey::BrokerRegistration,
                frame!(
                    ApiKey::BrokerRegistration,
                    BrokerRegistrationResponse::default()
                        .with_error_code(not_controller.code())
                        .with_broker_epoch(-1)
                ),
            ),
            Request::BrokerHeartbeat(_) => (
                ApiKey::BrokerHeartbeat,
                frame!(
                    ApiKey::BrokerHeartbeat,
                    BrokerHeartbeatResponse::default()
                        .with_error_code(not_controller.code())
                        .with_is_fenced(true)
                ),
            ),
            Request::CreateTopics(r) => (
                ApiKey::CreateTopics,
                frame!(ApiKey::CreateTopics, requests::create_topics_refused(r, not_controller)),
            ),
            Request::DeleteTopics(r) => (
                ApiKey::DeleteTopics,
                frame!(
                    ApiKey::DeleteTopics,
                    crate::broker::delete_topics_refused(r, not_controller, "not the active controller")
                ),
            ),
            Request::CreatePartitions(r) => (
                ApiKey::CreatePartitions,
                frame!(
                    ApiKey::CreatePartitions,
                    crate::broker::create_partitions_refused(r, not_controller, "not the active controller")
                ),
            ),
            Request::AlterPartition(_) => (
                ApiKey::AlterPartition,
                frame!(
                    ApiKey::AlterPartition,
                    kafka_protocol::messages::AlterPartitionResponse::default().with_error_code(not_controller.code())
                ),
            ),
            Request::AllocateProducerIds(_) => (
                ApiKey::AllocateProducerIds,
                frame!(
                    ApiKey::AllocateProducerIds,
                    kafka_protocol::messages::AllocateProducerIdsResponse::default()
                        .with_error_code(not_controller.code())
                        .with_producer_id_start(kafka_protocol::messages::ProducerId(-1))
                ),
            ),
            Request::ApiVersions(_) => {
                let body = crate::protocol::api::api_versions_response_on(Listener::Controller, 0);
                let frame = frame!(ApiKey::ApiVersions, body);
                let _ = reply.send(Some(frame));
                return;
            }
            Request::ApiVersionsUnsupported => {
                let _ = reply
                    .send(crate::protocol::api::unsupported_api_versions_response_on(Listener::Controller, corr).ok());
                return;
            }
            other => {
                warn!(
                    node = self.cfg.node_id,
                    "closing a connection: {other:?} is not a controller API"
                );
                let _ = reply.send(None);
                return;
            }
        };
        let Some(active) = self.active.as_mut() else {
            let _ = reply.send(Some(refused));
            return;
        };
        let (records, frame) = match &req.body {
            Request::BrokerRegistration(r) => match requests::registration(r) {
                Ok(r) => {
                    let res = active.register_broker(r, now);
                    (res.records, frame!(key, requests::registration_response(&res.response)))
                }
                Err(e) => {
                    warn!("closing a connection: {e}");
                    let _ = reply.send(None);
                    return;
                }
            },
            Request::BrokerHeartbeat(r) => {
                let res = active.heartbeat(requests::heartbeat(r), now);
                (res.records, frame!(key, requests::heartbeat_response(&res.response)))
            }
            Request::CreateTopics(r) => {
                let res = active.create_topics(requests::create_topics(r), now, &mut self.rng);
                (
                    res.records,
                    frame!(key, requests::create_topics_response(&res.response)),
                )
            }
            Request::DeleteTopics(r) => {
                let res = active.delete_topics(&requests::delete_topics(r));
                (
                    res.records,
                    frame!(key, requests::delete_topics_response(&res.response)),
                )
            }
            Request::CreatePartitions(r) => {
                let res = active.create_partitions(requests::create_partitions(r), &mut self.rng);
                (
                    res.records,
                    frame!(key, requests::create_partitions_response(&res.response)),
                )
            }
            Request::AlterPartition(r) => {
                let res = active.alter_partition(requests::alter_partition(r));
                (
                    res.records,
                    frame!(key, requests::alter_partition_response(&res.response)),
                )
            }
            Request::AllocateProducerIds(r) => {
                let res = active.allocate_producer_ids(requests::allocate_producer_ids(r));
                (
                    res.records,
                    frame!(key, requests::allocate_producer_ids_response(&res.response)),
                )
            }
            _ => unreachable!("matched above"),
        };
        match self.propose(records, now) {
            Ok(Some(offset)) => self
                .waiting
                .entry(offset)
                .or_default()
                .push(Waiting { frame, refused, reply }),
            Ok(None) => {
                let _ = reply.send(Some(frame));
            }
            Err(()) => {
                let _ = reply.send(Some(refused));
            }
        }
    }

    /// Proposes `records` as one entry and replays them into the active controller at once. `Ok(offset)`: the
    /// entry an answer must wait for (the last proposed one when there are no records, if not yet committed).
    fn propose(&mut self, records: Vec<crate::controller::Record>, now: i64) -> Result<Option<u64>, ()> {
        if records.is_empty() {
            let hw = self.raft.high_watermark().unwrap_or(0);
            return Ok(self.last_proposed.filter(|o| *o >= hw));
        }
        let offset = match self.raft.propose(encode_records(&records), now) {
            Ok(o) => o,
            Err(e) => {
                debug!("proposal refused: {e}");
                return Err(());
            }
        };
        let active = self
            .active
            .as_mut()
            .expect("propose is called by the active controller");
        if let Err(e) = active.replay_all(offset as i64, &records) {
            // The handler built these records from this very state: a replay error is a bug.
            panic!(
                "controller {}: replaying its own records at {offset}: {e}",
                self.cfg.node_id
            );
        }
        self.last_proposed = Some(offset);
        Ok(Some(offset))
    }

    fn check_sessions(&mut self, now: i64) {
        if self.active.is_none() || now < self.next_session_check_ms {
            return;
        }
        self.next_session_check_ms = now + SESSION_CHECK_INTERVAL_MS;
        let records = self.active.as_mut().map(|a| a.tick(now).records).unwrap_or_default();
        if !records.is_empty() {
            let _ = self.propose(records, now);
        }
    }

    /// Carries out Readys until the core has nothing more to do.
    async fn drive(&mut self) -> Result<(), String> {
        loop {
            let ready = self.raft.ready();
            if ready.is_empty() {
                break;
            }
            let now = self.now_ms();
            let disk = self.disk.as_mut();
            let mut written = Ok(());
            if let Some((epoch, voted)) = ready.persist_quorum_state {
                written = written.and_then(|()| self.store.persist_quorum_state(disk, epoch, voted));
            }
            if let Some(offset) = ready.truncate_to {
                written = written.and_then(|()| self.store.truncate_to(disk, offset));
            }
            if !ready.append.is_empty() {
                written = written.and_then(|()| self.store.append(disk, &ready.append, now));
            }
            if ready.flush_to.is_some() {
                written = written.and_then(|()| self.store.flush(disk));
            }
            rt::sleep_for(self.disk.take_elapsed()).await;
            written?;
            for (to, msg) in &ready.messages {
                self.send(*to, msg.clone());
            }
            self.apply_committed(&ready.committed)?;
            self.raft.advance(ready);
        }
        let now = self.now_ms();
        self.update_activity(now);
        self.release_committed();
        self.serve_observers(now);
        self.report();
        Ok(())
    }

    fn send(&mut self, to: i32, msg: Message) {
        let kind = match &msg {
            Message::VoteResponse(_) => Some(Kind::Vote),
            Message::BeginQuorumEpochResponse(_) => Some(Kind::BeginQuorumEpoch),
            Message::EndQuorumEpochResponse(_) => Some(Kind::EndQuorumEpoch),
            Message::FetchResponse(_) => Some(Kind::Fetch),
            _ => None,
        };
        let Some(kind) = kind else {
            let Some(peer) = self.peers.get(&to) else { return };
            let queue = if matches!(msg, Message::Fetch(_)) {
                &peer.fetch
            } else {
                &peer.quorum
            };
            let _ = queue.send(msg);
            return;
        };
        let Some(queue) = self.inbound.get_mut(&(to, kind)) else {
            debug!(to, "no request waits for {msg}");
            return;
        };
        while let Some(waiting) = queue.pop_front() {
            if waiting.reply.is_closed() {
                continue;
            }
            let frame = encode_quorum_response(&msg, waiting.version, waiting.correlation_id);
            let _ = waiting.reply.send(frame);
            return;
        }
    }

    /// Replays committed entries into the committed state and reports what it now says.
    fn apply_committed(&mut self, entries: &[raft::Entry]) -> Result<(), String> {
        let mut applied = false;
        for e in entries {
            if e.offset < self.applied_next {
                continue;
            }
            self.applied_next = e.offset + 1;
            if e.data.is_empty() {
                continue; // the leader-change marker of an epoch
            }
            let records = decode_records(&e.data).map_err(|err| format!("committed entry {}: {err}", e.offset))?;
            for r in &records {
                self.committed
                    .replay(e.offset as i64, r)
                    .map_err(|err| format!("replaying committed entry {}: {err}", e.offset))?;
            }
            applied = true;
        }
        if applied {
            if let Some(o) = &self.cfg.observer {
                let image = self.committed.image(&self.cfg.controller.cluster_id, self.leader_id());
                let offset = self.applied_next as i64 - 1;
                o.0.metadata_state(image.trace(&self.cfg.node_name, self.cfg.incarnation, offset));
            }
        }
        Ok(())
    }

    fn leader_id(&self) -> i32 {
        self.raft.leader().unwrap_or(-1)
    }

    /// Becomes the active controller once this leader has replayed its own epoch's first entry (so the whole
    /// log before it); stops being it on losing leadership, refusing every answer still waiting.
    fn update_activity(&mut self, now: i64) {
        let leads =
            self.raft.role() == Role::Leader && (self.active.is_none() || self.active_epoch == self.raft.epoch());
        if !leads {
            if self.active.take().is_some() {
                info!(node = self.cfg.node_id, "no longer the active controller");
            }
            self.last_proposed = None;
            for (_, waiting) in std::mem::take(&mut self.waiting) {
                for w in waiting {
                    let _ = w.reply.send(Some(w.refused));
                }
            }
            return;
        }
        if self.active.is_some() {
            return;
        }
        let epoch = self.raft.epoch();
        let epoch_start = self
            .raft
            .log()
            .entries()
            .iter()
            .rev()
            .take_while(|e| e.epoch == epoch)
            .last()
            .map(|e| e.offset);
        if epoch_start.is_some_and(|s| self.applied_next > s) {
            info!(node = self.cfg.node_id, epoch, "active controller");
            let config = ControllerConfig {
                node_id: self.cfg.node_id,
                ..self.cfg.controller.clone()
            };
            self.active = Some(Controller::new(config, self.committed.clone(), now));
            self.active_epoch = epoch;
            self.next_session_check_ms = now + SESSION_CHECK_INTERVAL_MS;
        }
    }

    /// Answers broker requests whose records are committed.
    fn release_committed(&mut self) {
        let hw = self.raft.high_watermark().unwrap_or(0);
        let later = self.waiting.split_off(&hw);
        for (_, waiting) in std::mem::replace(&mut self.waiting, later) {
            for w in waiting {
                let _ = w.reply.send(Some(w.frame));
            }
        }
    }

    /// Observer (broker) metadata fetches: committed entries from the leader; others learn who leads.
    fn serve_observers(&mut self, now: i64) {
        let leads = self.raft.role() == Role::Leader;
        let hw = self.raft.high_watermark();
        let mut still = vec![];
        for o in std::mem::take(&mut self.observers) {
            if o.reply.is_closed() {
                continue;
            }
            let entries: Vec<raft::Entry> = match hw {
                Some(hw) if leads && o.fetch_offset < hw => {
                    let to = hw.min(o.fetch_offset + OBSERVER_FETCH_MAX_ENTRIES);
                    self.raft.log().slice(o.fetch_offset, to).to_vec()
                }
                _ => vec![],
            };
            if leads && entries.is_empty() && now < o.deadline_ms {
                still.push(o);
                continue;
            }
            let resp = raft::FetchResponse {
                correlation_id: o.correlation_id as u64,
                error_code: if leads {
                    raft::RaftError::None
                } else {
                    raft::RaftError::NotLeaderOrFollower
                },
                leader_id: self.raft.leader(),
                leader_epoch: self.raft.epoch(),
                high_watermark: if leads { hw } else { None },
                diverging_epoch: None,
                records: entries,
            };
            let frame = encode_quorum_response(&Message::FetchResponse(resp), o.version, o.correlation_id);
            let _ = o.reply.send(frame);
        }
        self.observers = still;
    }

    fn report(&mut self) {
        let role = match self.raft.role() {
            Role::Unattached if self.raft.voted_for().is_some() => RaftRole::Voted,
            Role::Unattached => RaftRole::Unattached,
            Role::Candidate => RaftRole::Candidate,
            Role::Leader => RaftRole::Leader,
            Role::Follower => RaftRole::Follower,
            Role::Resigned => RaftRole::Resigned,
        };
        let now = (role, self.raft.epoch(), self.raft.leader(), self.raft.high_watermark());
        if self.reported == Some(now) {
            return;
        }
        self.reported = Some(now);
        if let Some(o) = &self.cfg.observer {
            o.0.raft_state(RaftState {
                time_us: 0,
                node: self.cfg.node_name.clone(),
                incarnation: self.cfg.incarnation,
                role,
                epoch: now.1,
                leader: now.2,
                high_watermark: now.3.map(|h| h as i64),
            });
        }
    }
}

/// The wire frame of a quorum response at the request's version.
fn encode_quorum_response(msg: &Message, version: i16, corr: i32) -> Option<Vec<u8>> {
    fn enc<R: Encodable>(key: ApiKey, v: i16, corr: i32, body: &R) -> Option<Vec<u8>> {
        encode_response(key, v, corr, body).map_err(|e| error!("{e}")).ok()
    }
    match msg {
        Message::VoteResponse(r) => enc(ApiKey::Vote, version, corr, &wire::vote_response(r)),
        Message::BeginQuorumEpochResponse(r) => enc(
            ApiKey::BeginQuorumEpoch,
            version,
            corr,
            &wire::begin_quorum_epoch_response(r),
        ),
        Message::EndQuorumEpochResponse(r) => enc(
            ApiKey::EndQuorumEpoch,
            version,
            corr,
            &wire::end_quorum_epoch_response(r),
        ),
        Message::FetchResponse(r) => enc(ApiKey::Fetch, version, corr, &wire::fetch_response(r)),
        _ => None,
    }
}
