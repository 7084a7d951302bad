//! The group coordinator hosted by brokers, end to end in the simulator: 3 controllers, 3 brokers. Raw
//! group requests (FindCoordinator, JoinGroup, SyncGroup, OffsetCommit, OffsetFetch) on the Kafka wire;
//! `__consumer_offsets` is created through the controller on the first FindCoordinator; the coordinator's
//! broker crashes and the committed offset is read back from the new coordinator, which loaded it from its
//! replica of the offsets partition.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

use gregor::broker::{BrokerConfig, MetadataImage};
use gregor::node::broker::{run_broker, BrokerNodeConfig, ControllerLinkConfig};
use gregor::protocol::api::encode_request;
use gregor::rt::{self, TcpStream};
use gregor::sim::disk::{SimDisk, SimDiskConfig};
use gregor::sim::{broker_ip, BROKER_PORT};

#[path = "common/quorum.rs"]
mod quorum;
use quorum::{start_controllers, voters};

const G: &str = "orders-group";

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

/// Starts broker `id`; its disk survives restarts (a process crash keeps the page cache).
fn start_broker(handle: &madsim::runtime::Handle, id: i32) -> madsim::runtime::NodeHandle {
    let disk = SimDisk::new(&format!("broker-{id}"), 10 + id as u64, SimDiskConfig::default());
    let restarts = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    handle
        .create_node()
        .name(format!("broker-{id}"))
        .ip(broker_ip(id))
        .init(move || {
            let inc = restarts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut config = BrokerConfig::new(id);
            config.offsets_topic_num_partitions = 3;
            config.group_initial_rebalance_delay_ms = 0;
            config.min_insync_replicas = 2;
            let mut cfg = BrokerNodeConfig::new(config, MetadataImage::default(), 200 + id as u64);
            cfg.node_name = format!("broker-{id}");
            cfg.incarnation = inc as u32;
            cfg.controllers = Some(ControllerLinkConfig {
                controllers: voters(),
                cluster_id: "gregor".into(),
                advertised_host: broker_ip(id).to_string(),
                advertised_port: BROKER_PORT,
                incarnation_id: Uuid::from_u64_pair(id as u64, inc),
            });
            let disk = disk.clone();
            async move {
                run_broker(cfg, Box::new(disk)).await;
            }
        })
        .build()
}

/// One raw request on a fresh connection; `None` on any failure or after 5 s.
async fn raw<Req: Encodable, Resp: Decodable>(broker: i32, key: ApiKey, v: i16, req: &Req) -> Option<Resp> {
    let addr = SocketAddr::new(broker_ip(broker), BROKER_PORT);
    let go = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let frame = encode_request(key, v, 1, "group-test", req).ok()?;
        rt::write_frame(&mut stream, &frame).await.ok()?;
        let body = rt::read_frame(&mut stream, 1 << 20).await.ok()??;
        let mut buf = Bytes::from(body);
        ResponseHeader::decode(&mut buf, key.response_header_version(v)).ok()?;
        Resp::decode(&mut buf, v).ok()
    };
    rt::timeout(Duration::from_secs(5), go).await.ok().flatten()
}

/// Asks brokers in turn until one names the group's coordinator.
async fn find_coordinator() -> i32 {
    for attempt in 0..600 {
        let broker = 1 + attempt % 3;
        let req = FindCoordinatorRequest::default().with_coordinator_keys(vec![s(G)]);
        let r: Option<FindCoordinatorResponse> = raw(broker, ApiKey::FindCoordinator, 4, &req).await;
        if let Some(c) = r.as_ref().and_then(|r| r.coordinators.first()) {
            if c.error_code == 0 {
                return c.node_id.0;
            }
        }
        rt::sleep(Duration::from_millis(200)).await;
    }
    panic!("no coordinator found for {G}");
}

fn join(member_id: &str) -> JoinGroupRequest {
    let p = JoinGroupRequestProtocol::default()
        .with_name(s("range"))
        .with_metadata(Bytes::from_static(b"orders"));
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(G)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![p])
}

fn commit(generation: i32, member: &str, offset: i64) -> OffsetCommitRequest {
    let p = OffsetCommitRequestPartition::default()
        .with_partition_index(0)
        .with_committed_offset(offset)
        .with_committed_leader_epoch(-1);
    let t = OffsetCommitRequestTopic::default()
        .with_name(TopicName(s("orders")))
        .with_partitions(vec![p]);
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(G)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![t])
}

async fn fetch_offset(broker: i32) -> Option<(i16, i64)> {
    let g = OffsetFetchRequestGroup::default()
        .with_group_id(GroupId(s(G)))
        .with_topics(None);
    let req = OffsetFetchRequest::default().with_groups(vec![g]);
    let r: OffsetFetchResponse = raw(broker, ApiKey::OffsetFetch, 8, &req).await?;
    let g = r.groups.first()?;
    let offset = g
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.committed_offset)
        .next();
    Some((g.error_code, offset.unwrap_or(-1)))
}

#[madsim::test]
async fn a_committed_offset_survives_a_crash_of_the_coordinators_broker() {
    let handle = madsim::runtime::Handle::current();
    start_controllers(&handle);
    let brokers: BTreeMap<i32, _> = (1..=3).map(|id| (id, start_broker(&handle, id))).collect();
    let client = handle
        .create_node()
        .name("client-1")
        .ip(gregor::sim::client_ip(1))
        .build();
    let (coordinator, generation, member) = client
        .spawn(async move {
            let coordinator = find_coordinator().await;
            // A first join gets MEMBER_ID_REQUIRED and its id (KIP-394), then joins with it.
            let first: JoinGroupResponse = raw(coordinator, ApiKey::JoinGroup, 7, &join("")).await.expect("join");
            assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
            let member = first.member_id.to_string();
            let joined: JoinGroupResponse = raw(coordinator, ApiKey::JoinGroup, 7, &join(&member))
                .await
                .expect("second join");
            assert_eq!(joined.error_code, 0);
            assert_eq!(joined.leader.as_str(), member, "the only member leads");
            let a = SyncGroupRequestAssignment::default()
                .with_member_id(s(&member))
                .with_assignment(Bytes::from_static(b"orders-0"));
            let sync = SyncGroupRequest::default()
                .with_group_id(GroupId(s(G)))
                .with_generation_id(joined.generation_id)
                .with_member_id(s(&member))
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range")))
                .with_assignments(vec![a]);
            let synced: SyncGroupResponse = raw(coordinator, ApiKey::SyncGroup, 5, &sync).await.expect("sync");
            assert_eq!(synced.error_code, 0);
            assert_eq!(&synced.assignment[..], b"orders-0");
            let c: OffsetCommitResponse = raw(
                coordinator,
                ApiKey::OffsetCommit,
                8,
                &commit(joined.generation_id, &member, 1234),
            )
            .await
            .expect("commit");
            assert_eq!(c.topics[0].partitions[0].error_code, 0, "replicated to the ISR");
            assert_eq!(fetch_offset(coordinator).await, Some((0, 1234)));
            (coordinator, joined.generation_id, member)
        })
        .await
        .unwrap();
    handle.kill(brokers[&coordinator].id());
    let (moved_to, offset) = client
        .spawn(async move {
            // The controller fences the dead broker after broker.session.timeout.ms and moves leadership.
            for _ in 0..300 {
                rt::sleep(Duration::from_millis(200)).await;
                let c = find_coordinator().await;
                if c == coordinator {
                    continue;
                }
                if let Some((0, offset)) = fetch_offset(c).await {
                    return (c, offset);
                }
            }
            panic!("no new coordinator served {G}");
        })
        .await
        .unwrap();
    assert_ne!(moved_to, coordinator);
    assert_eq!(offset, 1234, "the new coordinator loaded the committed offset");
    // The old generation's member is unknown to the new coordinator only if the group metadata did not
    // survive; it did (the sync stored it), so the member may still commit in its generation.
    let code = client
        .spawn(async move {
            let r: Option<OffsetCommitResponse> =
                raw(moved_to, ApiKey::OffsetCommit, 8, &commit(generation - 1, &member, 9)).await;
            r.map(|r| r.topics[0].partitions[0].error_code)
        })
        .await
        .unwrap();
    assert_eq!(
        code,
        Some(22),
        "a stale generation is ILLEGAL_GENERATION on the new coordinator too"
    );
}
