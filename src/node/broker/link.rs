//! The broker's link to the controller quorum (KIP-631): it follows `__cluster_metadata` as an observer
//! (KIP-595 Fetch from the quorum leader, committed entries only), replays the records into its own copy of
//! the metadata state and hands each new image to the broker core; and its lifecycle manager registers the
//! broker (BrokerRegistration, with a fresh incarnation id per process) and heartbeats every
//! `broker.heartbeat.interval.ms`, reporting the metadata offset it applied. The controller unfences the
//! broker once that offset reaches its registration record, and a controlled shutdown is a heartbeat asking
//! to shut down, repeated until the controller says the broker may stop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::alter_partition_request::{PartitionData as AlterData, TopicData as AlterTopic};
use kafka_protocol::messages::broker_registration_request::Listener as RegistrationListener;
use kafka_protocol::messages::{
    AllocateProducerIdsRequest, AlterPartitionRequest, AlterPartitionResponse, BrokerHeartbeatRequest, BrokerId,
    BrokerRegistrationRequest,
};
use kafka_protocol::protocol::StrBytes;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::Node;
use crate::client::connection::{Connection, ConnectionConfig};
use crate::controller::{decode_records, ControllerState, ResponseError};
use crate::node::controller::wire;
use crate::raft;
use crate::rt::{self, Notify};

/// Kafka's `broker.heartbeat.interval.ms`.
pub const BROKER_HEARTBEAT_INTERVAL_MS: u64 = 2000;
/// Heartbeats while a controlled shutdown is under way come faster, as Kafka's lifecycle manager does.
const SHUTDOWN_HEARTBEAT_INTERVAL_MS: u64 = 500;
const REQUEST_TIMEOUT: Duration = Duration::from_millis(2000);
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Where the controllers are and who this broker is to them.
#[derive(Debug, Clone)]
pub struct ControllerLinkConfig {
    /// `controller.quorum.voters`: id and controller listener address.
    pub controllers: BTreeMap<i32, SocketAddr>,
    pub cluster_id: String,
    /// The host and port this broker registers (its advertised listener).
    pub advertised_host: String,
    pub advertised_port: u16,
    /// This process's incarnation id (a new one per start).
    pub incarnation_id: Uuid,
}

#[derive(Debug, Default)]
struct Shared {
    /// The offset of the last metadata entry applied (-1: none).
    applied_offset: i64,
    /// The quorum leader as last heard of.
    leader: Option<i32>,
    broker_epoch: i64,
    fenced: bool,
    /// A heartbeat answer said the broker has caught up with the metadata log since it registered. Until
    /// then the broker replays metadata but publishes none of it to its partitions, as Kafka's BrokerServer
    /// waits for `initialCatchUpFuture` before it installs its metadata publishers: a restarted broker must
    /// not act on leadership its previous incarnation held (it may have lost power and its log tail).
    caught_up: bool,
    shutting_down: bool,
    may_stop: bool,
}

/// The link's state, shared by its two tasks and the broker's shutdown path.
pub struct Link {
    cfg: ControllerLinkConfig,
    broker_id: i32,
    shared: Mutex<Shared>,
    /// Wakes the lifecycle task (a controlled shutdown began).
    wake: Notify,
    /// Signalled when the controller lets the broker stop.
    stopped: Notify,
}

impl Link {
    pub fn new(cfg: ControllerLinkConfig, broker_id: i32) -> Arc<Link> {
        Arc::new(Link {
            cfg,
            broker_id,
            shared: Mutex::new(Shared {
                applied_offset: -1,
                fenced: true,
                ..Shared::default()
            }),
            wake: Notify::new(),
            stopped: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The controller to ask next: the known leader, else the voters in turn.
    fn target(&self, turn: &mut usize) -> (i32, SocketAddr) {
        if let Some(l) = self.lock().leader {
            if let Some(addr) = self.cfg.controllers.get(&l) {
                return (l, *addr);
            }
        }
        let ids: Vec<_> = self.cfg.controllers.iter().collect();
        *turn = turn.wrapping_add(1);
        let (id, addr) = ids[*turn % ids.len()];
        (*id, *addr)
    }

    fn learn_leader(&self, leader: Option<i32>) {
        self.lock().leader = leader;
    }

    /// Begins a controlled shutdown and waits until the controller lets the broker stop (leadership moved
    /// away), at most `limit`. Returns whether it did.
    pub async fn controlled_shutdown(&self, limit: Duration) -> bool {
        self.lock().shutting_down = true;
        self.wake.notify_one();
        let wait = async {
            loop {
                let stopped = self.stopped.notified();
                if self.lock().may_stop {
                    return;
                }
                stopped.await;
            }
        };
        rt::timeout(limit, wait).await.is_ok()
    }
}

fn connection<'a>(
    link: &Link,
    addr: SocketAddr,
    conns: &'a mut BTreeMap<SocketAddr, Connection>,
) -> &'a mut Connection {
    conns.entry(addr).or_insert_with(|| {
        let config = ConnectionConfig {
            client_id: format!("broker-{}", link.broker_id),
            ..ConnectionConfig::default()
        };
        Connection::new_closed(addr.to_string(), config)
    })
}

/// Follows the metadata log: fetch committed entries, replay them, hand the image to the broker.
pub(super) async fn follow_metadata(node: Node, link: Arc<Link>) {
    let mut state = ControllerState::default();
    let mut next: u64 = 0;
    let mut last_epoch = 0;
    // The metadata offset last published to the broker's partitions.
    let mut published = -1;
    let mut turn = 0;
    let mut conns = BTreeMap::new();
    loop {
        let (target, addr) = link.target(&mut turn);
        let fetch = raft::FetchRequest {
            correlation_id: 0,
            replica_id: link.broker_id,
            current_leader_epoch: -1,
            fetch_offset: next,
            last_fetched_epoch: last_epoch,
            max_wait_ms: raft::FETCH_MAX_WAIT_MS,
        };
        let req = wire::fetch_request(&fetch, &link.cfg.cluster_id);
        let conn = connection(&link, addr, &mut conns);
        let resp = match conn.request_negotiated(&req, REQUEST_TIMEOUT).await {
            Ok(r) => wire::from_fetch_response(&r, 0),
            Err(e) => Err(e.to_string()),
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                debug!(
                    broker = link.broker_id,
                    controller = target,
                    "metadata fetch failed: {e}"
                );
                link.learn_leader(None);
                rt::sleep(RETRY_BACKOFF).await;
                continue;
            }
        };
        if resp.error_code != raft::RaftError::None {
            link.learn_leader(resp.leader_id.filter(|l| *l != target));
            rt::sleep(RETRY_BACKOFF).await;
            continue;
        }
        link.learn_leader(Some(target));
        let fresh: Vec<_> = resp.records.into_iter().filter(|e| e.offset >= next).collect();
        for e in &fresh {
            if e.offset != next {
                warn!(
                    broker = link.broker_id,
                    "metadata fetch skipped from {next} to {}", e.offset
                );
                break;
            }
            if !e.data.is_empty() {
                let records = match decode_records(&e.data) {
                    Ok(r) => r,
                    Err(err) => {
                        warn!(
                            broker = link.broker_id,
                            "metadata entry {} does not decode: {err}", e.offset
                        );
                        break;
                    }
                };
                for r in &records {
                    if let Err(err) = state.replay(e.offset as i64, r) {
                        warn!(broker = link.broker_id, "metadata entry {}: {err}", e.offset);
                    }
                }
            }
            next = e.offset + 1;
            last_epoch = e.epoch;
        }
        let offset = next as i64 - 1;
        let caught_up = {
            let mut s = link.lock();
            s.applied_offset = offset;
            s.caught_up
        };
        if caught_up && published < offset {
            let image = state.image(&link.cfg.cluster_id, target);
            node.apply_metadata(image, offset).await;
            published = offset;
        }
    }
}

/// Registers the broker, then heartbeats until the process ends.
pub(super) async fn lifecycle(node: Node, link: Arc<Link>) {
    let mut turn = 0;
    let mut conns = BTreeMap::new();
    loop {
        let epoch = register(&link, &mut turn, &mut conns).await;
        info!(broker = link.broker_id, epoch, "registered with the controller");
        heartbeat_until_stale(&node, &link, epoch, &mut turn, &mut conns).await;
    }
}

/// Asks the active controller for a block of producer ids (KIP-730 AllocateProducerIds) when the broker's
/// InitProducerId handler is out of them or running low.
async fn maybe_allocate_producer_ids(
    node: &Node,
    link: &Link,
    epoch: i64,
    turn: &mut usize,
    conns: &mut BTreeMap<SocketAddr, Connection>,
) {
    if !node.lock().broker.wants_producer_ids() {
        return;
    }
    let (target, addr) = link.target(turn);
    let req = AllocateProducerIdsRequest::default()
        .with_broker_id(BrokerId(link.broker_id))
        .with_broker_epoch(epoch);
    match connection(link, addr, conns)
        .request_negotiated(&req, REQUEST_TIMEOUT)
        .await
    {
        Ok(r) if r.error_code == 0 => {
            node.lock()
                .broker
                .grant_producer_ids(r.producer_id_start.0, i64::from(r.producer_id_len));
        }
        Ok(r) => debug!(
            broker = link.broker_id,
            "producer ids refused: {}",
            wire::code_name(r.error_code)
        ),
        Err(e) => debug!(
            broker = link.broker_id,
            controller = target,
            "AllocateProducerIds failed: {e}"
        ),
    }
}

/// How often the AlterPartition sender looks for proposals.
const ALTER_PARTITION_POLL: Duration = Duration::from_millis(50);

/// Sends the broker core's ISR proposals to the active controller (KIP-497 AlterPartition v2: the new ISR
/// as broker ids; v3's KIP-903 broker epochs are not on the controller listener yet) and feeds the answers
/// back. NOT_CONTROLLER, STALE_BROKER_EPOCH and failures send the proposals again.
pub(super) async fn alter_partitions(node: Node, link: Arc<Link>) {
    let mut turn = 0;
    let mut conns = BTreeMap::new();
    loop {
        rt::sleep(ALTER_PARTITION_POLL).await;
        let epoch = link.lock().broker_epoch;
        if epoch <= 0 {
            continue;
        }
        let items = node.lock().broker.take_alter_partitions();
        if items.is_empty() {
            continue;
        }
        let (target, addr) = link.target(&mut turn);
        let req = alter_partition_request(link.broker_id, epoch, &items);
        let answer = connection(&link, addr, &mut conns)
            .request_negotiated(&req, REQUEST_TIMEOUT)
            .await;
        let now = node.clock.now_ms();
        match answer {
            Ok(r) if r.error_code == 0 => {
                let answers = alter_partition_answers(&r);
                let mut s = node.lock();
                s.broker.alter_partitions_answered(&items, &answers, now);
                node.report_states(&mut s.broker);
                let marks = s.broker.take_marks();
                if let Some(super::Observer(o)) = &node.observer {
                    marks.into_iter().for_each(|m| o.mark(m));
                }
                drop(s);
                node.wake.notify_one();
            }
            Ok(r) => {
                if r.error_code == ResponseError::NotController.code() {
                    link.learn_leader(None);
                }
                debug!(
                    broker = link.broker_id,
                    "AlterPartition refused: {}",
                    wire::code_name(r.error_code)
                );
                node.lock().broker.alter_partitions_unsent(&items);
                rt::sleep(RETRY_BACKOFF).await;
            }
            Err(e) => {
                debug!(
                    broker = link.broker_id,
                    controller = target,
                    "AlterPartition failed: {e}"
                );
                link.learn_leader(None);
                node.lock().broker.alter_partitions_unsent(&items);
                rt::sleep(RETRY_BACKOFF).await;
            }
        }
    }
}

/// Asks the active controller to create `__consumer_offsets` whenever a FindCoordinator found it missing
/// (Kafka's `AutoTopicCreationManager` for internal topics): one CreateTopics v7 at a time, with
/// `offsets.topic.num.partitions` and `offsets.topic.replication.factor`. The controller refuses while fewer
/// brokers than the replication factor are registered; the next FindCoordinator asks again.
pub(super) async fn create_offsets_topic(node: Node, link: Arc<Link>) {
    let mut turn = 0;
    let mut conns = BTreeMap::new();
    loop {
        node.offsets_topic.notified().await;
        let req = node.lock().broker.offsets_topic_request();
        let (target, addr) = link.target(&mut turn);
        match connection(&link, addr, &mut conns)
            .request_negotiated(&req, REQUEST_TIMEOUT)
            .await
        {
            Ok(r) => {
                for t in &r.topics {
                    if t.error_code == ResponseError::NotController.code() {
                        link.learn_leader(None);
                    }
                    info!(
                        broker = link.broker_id,
                        "CreateTopics {}: {}",
                        t.name.0.as_str(),
                        wire::code_name(t.error_code)
                    );
                }
            }
            Err(e) => {
                debug!(broker = link.broker_id, controller = target, "CreateTopics failed: {e}");
                link.learn_leader(None);
            }
        }
        rt::sleep(RETRY_BACKOFF).await;
    }
}

/// KIP-590: a broker forwards a client's CreateTopics to the active controller and relays its answer. It
/// tries the voters in turn (NOT_CONTROLLER or no answer moves on) for at most `FORWARD_ATTEMPTS` rounds;
/// when none answers, every topic gets REQUEST_TIMED_OUT (the client may retry: the topic may exist).
pub(super) async fn forward_create_topics(
    link: &Link,
    req: &kafka_protocol::messages::CreateTopicsRequest,
) -> kafka_protocol::messages::CreateTopicsResponse {
    let not_controller = |r: &kafka_protocol::messages::CreateTopicsResponse| {
        r.topics
            .iter()
            .any(|t| t.error_code == ResponseError::NotController.code())
    };
    let timed_out = || {
        let topics = req
            .topics
            .iter()
            .map(|t| {
                kafka_protocol::messages::create_topics_response::CreatableTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(ResponseError::RequestTimedOut.code())
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
            })
            .collect();
        kafka_protocol::messages::CreateTopicsResponse::default().with_topics(topics)
    };
    forward(link, req, not_controller, timed_out).await
}

/// KIP-590 forwarding of any controller API: the voters in turn (the known leader first), NOT_CONTROLLER
/// or no answer moves on, at most `FORWARD_ATTEMPTS` tries; then `timed_out()` (REQUEST_TIMED_OUT per
/// topic: the change may or may not have happened).
pub(super) async fn forward<Req>(
    link: &Link,
    req: &Req,
    not_controller: impl Fn(&Req::Response) -> bool,
    timed_out: impl FnOnce() -> Req::Response,
) -> Req::Response
where
    Req: kafka_protocol::protocol::Request,
    Req::Response: crate::client::shape::BoundedShape,
{
    let mut turn = 0;
    let mut conns = BTreeMap::new();
    for _ in 0..FORWARD_ATTEMPTS {
        let (target, addr) = link.target(&mut turn);
        match connection(link, addr, &mut conns)
            .request_negotiated(req, REQUEST_TIMEOUT)
            .await
        {
            Ok(r) if not_controller(&r) => link.learn_leader(None),
            Ok(r) => return r,
            Err(e) => {
                debug!(
                    broker = link.broker_id,
                    controller = target,
                    "forwarding {}: {e}",
                    crate::protocol::errors::api_name(Req::KEY)
                );
                link.learn_leader(None);
            }
        }
        rt::sleep(RETRY_BACKOFF).await;
    }
    timed_out()
}

/// How many controllers a forwarded request tries before it answers REQUEST_TIMED_OUT.
const FORWARD_ATTEMPTS: usize = 6;

fn alter_partition_request(
    broker_id: i32,
    epoch: i64,
    items: &[crate::broker::AlterPartitionItem],
) -> AlterPartitionRequest {
    let mut topics: Vec<AlterTopic> = Vec::new();
    for item in items {
        let p = AlterData::default()
            .with_partition_index(item.tp.partition)
            .with_leader_epoch(item.leader_epoch)
            .with_partition_epoch(item.partition_epoch)
            .with_new_isr(item.new_isr.iter().map(|m| BrokerId(m.broker_id)).collect());
        match topics.iter_mut().find(|t| t.topic_id == item.topic_id) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                AlterTopic::default()
                    .with_topic_id(item.topic_id)
                    .with_partitions(vec![p]),
            ),
        }
    }
    AlterPartitionRequest::default()
        .with_broker_id(BrokerId(broker_id))
        .with_broker_epoch(epoch)
        .with_topics(topics)
}

fn alter_partition_answers(r: &AlterPartitionResponse) -> Vec<crate::broker::AlterPartitionAnswer> {
    r.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| crate::broker::AlterPartitionAnswer {
                topic_id: t.topic_id,
                partition: p.partition_index,
                error: p.error_code,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                isr: p.isr.iter().map(|b| b.0).collect(),
            })
        })
        .collect()
}

async fn register(link: &Link, turn: &mut usize, conns: &mut BTreeMap<SocketAddr, Connection>) -> i64 {
    loop {
        let (target, addr) = link.target(turn);
        let listener = RegistrationListener::default()
            .with_name(StrBytes::from_static_str("PLAINTEXT"))
            .with_host(StrBytes::from_string(link.cfg.advertised_host.clone()))
            .with_port(link.cfg.advertised_port);
        let req = BrokerRegistrationRequest::default()
            .with_broker_id(BrokerId(link.broker_id))
            .with_cluster_id(StrBytes::from_string(link.cfg.cluster_id.clone()))
            .with_incarnation_id(link.cfg.incarnation_id)
            .with_listeners(vec![listener]);
        let conn = connection(link, addr, conns);
        match conn.request_negotiated(&req, REQUEST_TIMEOUT).await {
            Ok(r) if r.error_code == 0 => {
                let mut s = link.lock();
                s.broker_epoch = r.broker_epoch;
                s.leader = Some(target);
                return r.broker_epoch;
            }
            Ok(r) if r.error_code == ResponseError::NotController.code() => {
                link.learn_leader(None);
                rt::sleep(RETRY_BACKOFF).await;
            }
            Ok(r) => {
                // DUPLICATE_BROKER_REGISTRATION: the previous incarnation's session still lives; it will be
                // fenced after `broker.session.timeout.ms`.
                debug!(
                    broker = link.broker_id,
                    "registration refused: {}",
                    wire::code_name(r.error_code)
                );
                rt::sleep(Duration::from_millis(BROKER_HEARTBEAT_INTERVAL_MS)).await;
            }
            Err(e) => {
                debug!(broker = link.broker_id, controller = target, "registration failed: {e}");
                link.learn_leader(None);
                rt::sleep(RETRY_BACKOFF).await;
            }
        }
    }
}

/// Heartbeats with `epoch` until the controller no longer knows it (then the broker registers again).
async fn heartbeat_until_stale(
    node: &Node,
    link: &Link,
    epoch: i64,
    turn: &mut usize,
    conns: &mut BTreeMap<SocketAddr, Connection>,
) {
    loop {
        maybe_allocate_producer_ids(node, link, epoch, turn, conns).await;
        let (target, addr) = link.target(turn);
        let (applied, shutting_down) = {
            let s = link.lock();
            (s.applied_offset, s.shutting_down)
        };
        let req = BrokerHeartbeatRequest::default()
            .with_broker_id(BrokerId(link.broker_id))
            .with_broker_epoch(epoch)
            .with_current_metadata_offset(applied)
            .with_want_fence(false)
            .with_want_shut_down(shutting_down);
        let conn = connection(link, addr, conns);
        let mut interval = if shutting_down {
            SHUTDOWN_HEARTBEAT_INTERVAL_MS
        } else {
            BROKER_HEARTBEAT_INTERVAL_MS
        };
        match conn.request_negotiated(&req, REQUEST_TIMEOUT).await {
            Ok(r) if r.error_code == 0 => {
                let mut s = link.lock();
                s.fenced = r.is_fenced;
                s.caught_up |= r.is_caught_up;
                if r.should_shut_down && s.shutting_down {
                    s.may_stop = true;
                    link.stopped.notify_waiters();
                }
                if r.is_fenced && !s.shutting_down {
                    interval = interval.min(SHUTDOWN_HEARTBEAT_INTERVAL_MS);
                }
            }
            Ok(r) if r.error_code == ResponseError::NotController.code() => {
                link.learn_leader(None);
                interval = RETRY_BACKOFF.as_millis() as u64;
            }
            Ok(r) => {
                warn!(
                    broker = link.broker_id,
                    "heartbeat refused: {}",
                    wire::code_name(r.error_code)
                );
                return;
            }
            Err(e) => {
                debug!(broker = link.broker_id, controller = target, "heartbeat failed: {e}");
                link.learn_leader(None);
                interval = RETRY_BACKOFF.as_millis() as u64;
            }
        }
        tokio::select! {
            biased;
            _ = link.wake.notified() => {}
            _ = rt::sleep(Duration::from_millis(interval)) => {}
        }
    }
}
