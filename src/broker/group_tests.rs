//! The group APIs through `parse_request` and `Broker::handle`, by hand: joins, syncs, heartbeats, commits,
//! fetches, expiry, and a coordinator that loses and regains its `__consumer_offsets` partition.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::tests::Fx;
use super::*;
use crate::group::{err, OFFSETS_TOPIC};
use crate::log::mem_disk::MemDisk;
use crate::protocol::api::{encode_request, parse_request};

const G: &str = "group-1";
const SESSION_MS: i32 = 10_000;

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

fn config() -> BrokerConfig {
    let mut c = BrokerConfig::new(1);
    c.offsets_topic_num_partitions = 4;
    c.group_initial_rebalance_delay_ms = 0;
    c
}

/// An image with brokers 1 and 2 and `__consumer_offsets` (4 partitions) led by `leader` at `epoch`,
/// replicated on `replicas`.
fn image(leader: i32, epoch: i32, replicas: &[i32]) -> MetadataImage {
    let mut img = MetadataImage::unfenced("gregor", &[1, 2]);
    let part = PartitionImage {
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
        leader,
        leader_epoch: epoch,
        partition_epoch: epoch,
    };
    let partitions = (0..4).map(|p| (p, part.clone())).collect();
    let t = TopicImage {
        topic_id: uuid::Uuid::from_u128(7),
        partitions,
        configs: BTreeMap::new(),
    };
    img.topics.insert(OFFSETS_TOPIC.into(), t);
    img
}

fn coordinator(replicas: &[i32]) -> Fx {
    let mut disk = MemDisk::new();
    let broker = Broker::new(config(), image(1, 1, replicas), &mut disk, 0, 42)
        .unwrap()
        .0;
    Fx { broker, disk }
}

fn call<R: Encodable>(fx: &mut Fx, conn: ConnId, key: ApiKey, v: i16, req: &R, now_ms: i64) -> Reply {
    let frame = encode_request(key, v, 11, "client-1", req).unwrap();
    fx.broker
        .handle(&mut fx.disk, conn, parse_request(&frame).unwrap(), now_ms)
}

fn decode<R: Decodable>(key: ApiKey, v: i16, reply: Reply) -> R {
    super::tests::decode(key, v, reply)
}

/// The reply of `conn`: direct, or out of `poll_parked` at `now_ms`.
fn answer(fx: &mut Fx, conn: ConnId, reply: Reply, now_ms: i64) -> Option<Reply> {
    if reply != Reply::ParkGroup {
        return Some(reply);
    }
    let mut done: BTreeMap<ConnId, Reply> = fx.broker.poll_parked(&mut fx.disk, now_ms).into_iter().collect();
    done.remove(&conn)
}

fn join_request(member_id: &str) -> JoinGroupRequest {
    let p = JoinGroupRequestProtocol::default()
        .with_name(s("range"))
        .with_metadata(Bytes::from_static(b"sub"));
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(G)))
        .with_session_timeout_ms(SESSION_MS)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![p])
}

/// A first join: MEMBER_ID_REQUIRED with the member's id (KIP-394).
fn member_id(fx: &mut Fx, conn: ConnId, now_ms: i64) -> String {
    let r: JoinGroupResponse = decode(
        ApiKey::JoinGroup,
        7,
        call(fx, conn, ApiKey::JoinGroup, 7, &join_request(""), now_ms),
    );
    assert_eq!(r.error_code, err::MEMBER_ID_REQUIRED);
    r.member_id.to_string()
}

fn commit(fx: &mut Fx, conn: ConnId, generation: i32, member: &str, offset: i64, now_ms: i64) -> i16 {
    let p = OffsetCommitRequestPartition::default()
        .with_partition_index(0)
        .with_committed_offset(offset)
        .with_committed_leader_epoch(-1);
    let t = OffsetCommitRequestTopic::default()
        .with_name(TopicName(s("orders")))
        .with_partitions(vec![p]);
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(G)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![t]);
    let reply = call(fx, conn, ApiKey::OffsetCommit, 8, &req, now_ms);
    let reply = answer(fx, conn, reply, now_ms).expect("commit answered");
    let r: OffsetCommitResponse = decode(ApiKey::OffsetCommit, 8, reply);
    r.topics[0].partitions[0].error_code
}

/// The committed offset of orders-0 (or the group's error code as `Err`).
fn fetch_offset(fx: &mut Fx, now_ms: i64) -> Result<i64, i16> {
    let g = OffsetFetchRequestGroup::default()
        .with_group_id(GroupId(s(G)))
        .with_topics(None);
    let req = OffsetFetchRequest::default().with_groups(vec![g]);
    let r: OffsetFetchResponse = decode(
        ApiKey::OffsetFetch,
        8,
        call(fx, 9, ApiKey::OffsetFetch, 8, &req, now_ms),
    );
    let g = &r.groups[0];
    if g.error_code != err::NONE {
        return Err(g.error_code);
    }
    Ok(g.topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.committed_offset)
        .next()
        .unwrap_or(-1))
}

fn heartbeat(fx: &mut Fx, conn: ConnId, generation: i32, member: &str, now_ms: i64) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(GroupId(s(G)))
        .with_generation_id(generation)
        .with_member_id(s(member));
    let r: HeartbeatResponse = decode(ApiKey::Heartbeat, 4, call(fx, conn, ApiKey::Heartbeat, 4, &req, now_ms));
    r.error_code
}

/// Members on connections 1 and 2 join and sync; returns (generation, member of conn 1, member of conn 2).
fn stable_group_of_two(fx: &mut Fx, now_ms: i64) -> (i32, String, String) {
    let (a, b) = (member_id(fx, 1, now_ms), member_id(fx, 2, now_ms));
    let first = call(fx, 1, ApiKey::JoinGroup, 7, &join_request(&a), now_ms);
    assert_eq!(first, Reply::ParkGroup, "the join phase waits for every member");
    let second = call(fx, 2, ApiKey::JoinGroup, 7, &join_request(&b), now_ms);
    let mut joins: BTreeMap<ConnId, Reply> = fx.broker.poll_parked(&mut fx.disk, now_ms).into_iter().collect();
    if second != Reply::ParkGroup {
        joins.insert(2, second);
    }
    let ja: JoinGroupResponse = decode(ApiKey::JoinGroup, 7, joins.remove(&1).expect("join of a answered"));
    let jb: JoinGroupResponse = decode(ApiKey::JoinGroup, 7, joins.remove(&2).expect("join of b answered"));
    assert_eq!((ja.error_code, jb.error_code), (err::NONE, err::NONE));
    assert_eq!(ja.generation_id, jb.generation_id);
    assert_eq!(ja.leader, jb.leader);
    assert_eq!(ja.protocol_name.as_deref(), Some("range"));
    let (leader_conn, leader) = if ja.leader.as_str() == a { (1, &ja) } else { (2, &jb) };
    assert_eq!(leader.members.len(), 2, "the leader gets every member's metadata");
    let generation = ja.generation_id;
    let assignment = |m: &str, data: &'static [u8]| {
        SyncGroupRequestAssignment::default()
            .with_member_id(s(m))
            .with_assignment(Bytes::from_static(data))
    };
    let sync = |member: &str, assignments| {
        SyncGroupRequest::default()
            .with_group_id(GroupId(s(G)))
            .with_generation_id(generation)
            .with_member_id(s(member))
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")))
            .with_assignments(assignments)
    };
    let follower_conn = 3 - leader_conn;
    let follower = if follower_conn == 1 { a.clone() } else { b.clone() };
    let f = call(
        fx,
        follower_conn,
        ApiKey::SyncGroup,
        5,
        &sync(&follower, vec![]),
        now_ms,
    );
    assert_eq!(f, Reply::ParkGroup, "a follower waits for the leader's assignment");
    let all = vec![assignment(&a, b"to-a"), assignment(&b, b"to-b")];
    let l = call(
        fx,
        leader_conn,
        ApiKey::SyncGroup,
        5,
        &sync(leader.leader.as_str(), all),
        now_ms,
    );
    let mut syncs: BTreeMap<ConnId, Reply> = fx.broker.poll_parked(&mut fx.disk, now_ms).into_iter().collect();
    if l != Reply::ParkGroup {
        syncs.insert(leader_conn, l);
    }
    for (conn, want) in [(1, b"to-a"), (2, b"to-b")] {
        let r: SyncGroupResponse = decode(ApiKey::SyncGroup, 5, syncs.remove(&conn).expect("sync answered"));
        assert_eq!(r.error_code, err::NONE);
        assert_eq!(&r.assignment[..], &want[..]);
    }
    (generation, a, b)
}

#[test]
fn find_coordinator_answers_the_leader_of_the_groups_offsets_partition() {
    let mut fx = coordinator(&[1]);
    let req = FindCoordinatorRequest::default().with_coordinator_keys(vec![s(G), s("other")]);
    let r: FindCoordinatorResponse = decode(
        ApiKey::FindCoordinator,
        4,
        call(&mut fx, 1, ApiKey::FindCoordinator, 4, &req, 0),
    );
    assert_eq!(r.coordinators.len(), 2);
    for c in &r.coordinators {
        assert_eq!(
            (c.error_code, c.node_id.0, c.host.as_str(), c.port),
            (0, 1, "10.0.0.1", 9092)
        );
    }
    assert!(!fx.broker.take_offsets_topic_wanted());
}

#[test]
fn find_coordinator_without_offsets_topic_is_unavailable_until_static_mode_creates_it() {
    let mut disk = MemDisk::new();
    let mut img = image(1, 1, &[1]);
    img.topics.clear();
    img.brokers.remove(&2);
    let broker = Broker::new(config(), img, &mut disk, 0, 42).unwrap().0;
    let mut fx = Fx { broker, disk };
    let req = FindCoordinatorRequest::default().with_coordinator_keys(vec![s(G)]);
    let r: FindCoordinatorResponse = decode(
        ApiKey::FindCoordinator,
        4,
        call(&mut fx, 1, ApiKey::FindCoordinator, 4, &req, 0),
    );
    assert_eq!(r.coordinators[0].error_code, err::COORDINATOR_NOT_AVAILABLE);
    assert!(fx.broker.take_offsets_topic_wanted());
    fx.broker.create_offsets_topic(&mut fx.disk, 0).unwrap();
    let topic = fx.broker.image().topic(OFFSETS_TOPIC).expect("created");
    assert_eq!(topic.partitions.len(), 4, "offsets.topic.num.partitions");
    let r: FindCoordinatorResponse = decode(
        ApiKey::FindCoordinator,
        4,
        call(&mut fx, 1, ApiKey::FindCoordinator, 4, &req, 0),
    );
    assert_eq!((r.coordinators[0].error_code, r.coordinators[0].node_id.0), (0, 1));
    assert_eq!(
        commit(&mut fx, 1, -1, "", 3, 0),
        err::NONE,
        "a simple commit to an empty group"
    );
    assert_eq!(fetch_offset(&mut fx, 0), Ok(3));
}

#[test]
fn two_members_join_sync_heartbeat_commit_and_fetch_and_a_stale_commit_is_refused() {
    let mut fx = coordinator(&[1]);
    let (generation, a, b) = stable_group_of_two(&mut fx, 0);
    assert_eq!(generation, 1);
    assert_eq!(fx.broker.group_state(G), Some(crate::group::GroupState::Stable));
    assert_eq!(heartbeat(&mut fx, 1, generation, &a, 100), err::NONE);
    assert_eq!(heartbeat(&mut fx, 2, generation - 1, &b, 100), err::ILLEGAL_GENERATION);
    assert_eq!(commit(&mut fx, 1, generation, &a, 42, 200), err::NONE);
    assert_eq!(fetch_offset(&mut fx, 200), Ok(42));
    fx.broker.take_marks();
    assert_eq!(commit(&mut fx, 2, generation - 1, &b, 7, 300), err::ILLEGAL_GENERATION);
    assert_eq!(fx.broker.take_marks(), vec![STALE_COMMIT_REJECTED_MARK]);
    assert_eq!(commit(&mut fx, 2, generation, "nobody", 7, 300), err::UNKNOWN_MEMBER_ID);
    assert_eq!(fx.broker.take_marks(), vec![STALE_COMMIT_REJECTED_MARK]);
    assert_eq!(fetch_offset(&mut fx, 300), Ok(42), "refused commits change nothing");
    let d: DescribeGroupsResponse = decode(
        ApiKey::DescribeGroups,
        5,
        call(
            &mut fx,
            3,
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(s(G))]),
            300,
        ),
    );
    assert_eq!(d.groups[0].group_state.as_str(), "Stable");
    assert_eq!(d.groups[0].protocol_data.as_str(), "range");
    assert_eq!(d.groups[0].members.len(), 2);
    let l: ListGroupsResponse = decode(
        ApiKey::ListGroups,
        4,
        call(&mut fx, 3, ApiKey::ListGroups, 4, &ListGroupsRequest::default(), 300),
    );
    let listed: Vec<_> = l
        .groups
        .iter()
        .map(|g| (g.group_id.as_str(), g.group_state.as_str()))
        .collect();
    assert_eq!(listed, vec![(G, "Stable")]);
}

#[test]
fn a_member_that_stops_heartbeating_expires_after_session_timeout() {
    let mut fx = coordinator(&[1]);
    let (generation, a, b) = stable_group_of_two(&mut fx, 0);
    // b heartbeats, a goes silent.
    for t in [3_000, 6_000, 9_000] {
        assert_eq!(heartbeat(&mut fx, 2, generation, &b, t), err::NONE);
        fx.broker.poll_parked(&mut fx.disk, t);
    }
    let deadline = fx.broker.next_parked_deadline().expect("a session timer");
    assert!(deadline <= i64::from(SESSION_MS), "deadline {deadline}");
    fx.broker.poll_parked(&mut fx.disk, i64::from(SESSION_MS) + 1);
    assert_eq!(
        heartbeat(&mut fx, 2, generation, &b, 10_500),
        err::REBALANCE_IN_PROGRESS
    );
    assert_eq!(commit(&mut fx, 1, generation, &a, 5, 10_500), err::UNKNOWN_MEMBER_ID);
    let view = fx.broker.group_coordinator().view(G).expect("group");
    assert!(!view.members.contains_key(&a), "a expired: {view:?}");
    assert!(view.members.contains_key(&b));
}

#[test]
fn a_coordinator_that_loses_and_regains_its_offsets_partition_reloads_committed_offsets() {
    let mut fx = coordinator(&[1]);
    assert_eq!(commit(&mut fx, 1, -1, "", 17, 0), err::NONE);
    fx.broker.take_marks();
    fx.broker.apply_image(&mut fx.disk, image(2, 2, &[1, 2]), 100).unwrap();
    assert_eq!(fetch_offset(&mut fx, 100), Err(err::NOT_COORDINATOR));
    assert_eq!(commit(&mut fx, 1, -1, "", 18, 100), err::NOT_COORDINATOR);
    let req = FindCoordinatorRequest::default().with_coordinator_keys(vec![s(G)]);
    let r: FindCoordinatorResponse = decode(
        ApiKey::FindCoordinator,
        4,
        call(&mut fx, 1, ApiKey::FindCoordinator, 4, &req, 100),
    );
    assert_eq!(r.coordinators[0].node_id.0, 2);
    assert!(fx.broker.take_marks().is_empty());
    fx.broker.apply_image(&mut fx.disk, image(1, 3, &[1]), 200).unwrap();
    assert_eq!(fetch_offset(&mut fx, 200), Ok(17), "reloaded from the local log");
    assert_eq!(fx.broker.take_marks(), vec![COORDINATOR_LOADED_OFFSETS_MARK]);
}

#[test]
fn a_commit_the_isr_does_not_replicate_fails_after_offsets_commit_timeout() {
    let mut fx = coordinator(&[1, 2]);
    let p = OffsetCommitRequestPartition::default()
        .with_partition_index(0)
        .with_committed_offset(9);
    let t = OffsetCommitRequestTopic::default()
        .with_name(TopicName(s("orders")))
        .with_partitions(vec![p]);
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(G)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![t]);
    assert_eq!(call(&mut fx, 1, ApiKey::OffsetCommit, 8, &req, 0), Reply::ParkGroup);
    assert!(
        fx.broker.poll_parked(&mut fx.disk, 4_999).is_empty(),
        "follower 2 never fetched"
    );
    assert_eq!(fx.broker.next_parked_deadline(), Some(5_000));
    let done = fx.broker.poll_parked(&mut fx.disk, 5_000);
    assert_eq!(done.len(), 1);
    let r: OffsetCommitResponse = decode(ApiKey::OffsetCommit, 8, done.into_iter().next().unwrap().1);
    // REQUEST_TIMED_OUT of the append is COORDINATOR_NOT_AVAILABLE to the committer (Kafka's mapping).
    assert_eq!(r.topics[0].partitions[0].error_code, err::COORDINATOR_NOT_AVAILABLE);
    assert_eq!(fetch_offset(&mut fx, 5_000), Ok(-1));
}

/// `img` with a topic `orders` (one partition on broker 1) of topic id `id`.
fn with_orders(img: MetadataImage, id: u128) -> MetadataImage {
    img.with_local_topic("orders", id, 1, 1)
}

#[test]
fn deleting_a_topic_removes_its_committed_offsets_also_after_recreation_and_a_restart() {
    let mut disk = MemDisk::new();
    let broker = Broker::new(config(), with_orders(image(1, 1, &[1]), 100), &mut disk, 0, 42)
        .unwrap()
        .0;
    let mut fx = Fx { broker, disk };
    assert_eq!(commit(&mut fx, 1, -1, "", 17, 0), err::NONE);
    assert_eq!(fetch_offset(&mut fx, 0), Ok(17));
    fx.broker.take_marks();

    fx.broker.apply_image(&mut fx.disk, image(1, 1, &[1]), 10).unwrap();
    let marks = fx.broker.take_marks();
    assert!(marks.contains(&DELETED_TOPIC_OFFSETS_REMOVED_MARK), "{marks:?}");
    assert_eq!(fetch_offset(&mut fx, 10), Ok(-1), "the tombstone landed (one replica)");
    fx.broker
        .apply_image(&mut fx.disk, with_orders(image(1, 1, &[1]), 200), 20)
        .unwrap();
    assert_eq!(fetch_offset(&mut fx, 20), Ok(-1), "a recreated topic has no old offset");

    let Fx { mut disk, .. } = fx;
    let restarted = Broker::new(config(), with_orders(image(1, 2, &[1]), 200), &mut disk, 30, 43)
        .unwrap()
        .0;
    let mut fx = Fx {
        broker: restarted,
        disk,
    };
    assert_eq!(fetch_offset(&mut fx, 30), Ok(-1), "the tombstone is replayed on load");
}

#[test]
fn a_topic_recreated_between_two_images_counts_as_deleted() {
    let mut fx = {
        let mut disk = MemDisk::new();
        let broker = Broker::new(config(), with_orders(image(1, 1, &[1]), 100), &mut disk, 0, 42)
            .unwrap()
            .0;
        Fx { broker, disk }
    };
    assert_eq!(commit(&mut fx, 1, -1, "", 5, 0), err::NONE);
    fx.broker
        .apply_image(&mut fx.disk, with_orders(image(1, 1, &[1]), 101), 10)
        .unwrap();
    assert_eq!(fetch_offset(&mut fx, 10), Ok(-1));
    // The same topic id again is no deletion.
    assert_eq!(commit(&mut fx, 1, -1, "", 6, 10), err::NONE);
    fx.broker
        .apply_image(&mut fx.disk, with_orders(image(1, 1, &[1]), 101), 20)
        .unwrap();
    assert_eq!(fetch_offset(&mut fx, 20), Ok(6));
}
