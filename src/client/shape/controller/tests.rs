use std::fmt::Debug;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    alter_partition_response as apr, begin_quorum_epoch_response as bqe, end_quorum_epoch_response as eqe,
    vote_response, AllocateProducerIdsRequest, AlterPartitionRequest, BeginQuorumEpochRequest, BrokerHeartbeatRequest,
    BrokerId, BrokerRegistrationRequest, EndQuorumEpochRequest, ResponseHeader, TopicName, VoteRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use uuid::Uuid;

use super::*;
use crate::client::connection::decode_response;
use crate::client::shape::check_body;

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

fn metadata_topic() -> TopicName {
    TopicName(s("__cluster_metadata"))
}

fn body_of<R: Encodable>(version: i16, r: &R) -> Bytes {
    let mut buf = BytesMut::new();
    r.encode(&mut buf, version).expect("encodes");
    buf.freeze()
}

/// Encoded by kafka-protocol, the body passes the shape check and decodes to the same value; every strict
/// prefix fails the shape check, and so does one trailing byte.
fn round_trip_and_truncate<R>(version: i16, r: &R)
where
    R: BoundedShape + Encodable + Decodable + PartialEq + Debug,
{
    let body = body_of(version, r);
    check_body::<R>(&body, version).unwrap_or_else(|e| panic!("{r:?} v{version}: {e}"));
    let decoded = R::decode(&mut body.clone(), version).expect("decodes");
    assert_eq!(&decoded, r, "v{version}");
    for len in 0..body.len() {
        assert!(
            check_body::<R>(&body[..len], version).is_err(),
            "{r:?} v{version} cut at {len} of {}",
            body.len()
        );
    }
    let mut padded = body.to_vec();
    padded.push(0);
    assert_eq!(check_body::<R>(&padded, version), Err(ShapeError::Trailing { left: 1 }));
}

/// The whole frame, response header included, goes through the client's `decode_response` for `Req`.
fn decodes_as_the_answer_to<Req>(version: i16, resp: &Req::Response)
where
    Req: Request,
    Req::Response: BoundedShape + PartialEq + Debug,
{
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(5)
        .encode(&mut buf, <Req::Response as HeaderVersion>::header_version(version))
        .expect("header encodes");
    resp.encode(&mut buf, version).expect("body encodes");
    let decoded = decode_response::<Req>("controller-1:9093", 5, version, buf.freeze()).expect("decodes");
    assert_eq!(&decoded, resp);
}

fn sample_vote() -> VoteResponse {
    let p = vote_response::PartitionData::default()
        .with_partition_index(0)
        .with_error_code(0)
        .with_leader_id(BrokerId(2))
        .with_leader_epoch(7)
        .with_vote_granted(true);
    let t = vote_response::TopicData::default()
        .with_topic_name(metadata_topic())
        .with_partitions(vec![p]);
    VoteResponse::default().with_error_code(0).with_topics(vec![t])
}

fn sample_begin() -> BeginQuorumEpochResponse {
    let p = bqe::PartitionData::default()
        .with_error_code(6)
        .with_leader_id(BrokerId(1))
        .with_leader_epoch(9);
    let t = bqe::TopicData::default()
        .with_topic_name(metadata_topic())
        .with_partitions(vec![p]);
    let e = bqe::NodeEndpoint::default()
        .with_node_id(BrokerId(1))
        .with_host(s("10.0.1.1"))
        .with_port(9093);
    BeginQuorumEpochResponse::default()
        .with_error_code(0)
        .with_topics(vec![t])
        .with_node_endpoints(vec![e])
}

fn sample_end() -> EndQuorumEpochResponse {
    let p = eqe::PartitionData::default()
        .with_partition_index(0)
        .with_error_code(0)
        .with_leader_id(BrokerId(3))
        .with_leader_epoch(4);
    let t = eqe::TopicData::default()
        .with_topic_name(metadata_topic())
        .with_partitions(vec![p]);
    let e = eqe::NodeEndpoint::default()
        .with_node_id(BrokerId(3))
        .with_host(s("10.0.1.3"))
        .with_port(9093);
    EndQuorumEpochResponse::default()
        .with_error_code(0)
        .with_topics(vec![t])
        .with_node_endpoints(vec![e])
}

fn sample_registration() -> BrokerRegistrationResponse {
    BrokerRegistrationResponse::default()
        .with_throttle_time_ms(1)
        .with_error_code(0)
        .with_broker_epoch(42)
}

fn sample_heartbeat() -> BrokerHeartbeatResponse {
    BrokerHeartbeatResponse::default()
        .with_throttle_time_ms(2)
        .with_error_code(0)
        .with_is_caught_up(true)
        .with_is_fenced(false)
        .with_should_shut_down(true)
}

fn sample_alter_partition() -> AlterPartitionResponse {
    let p = apr::PartitionData::default()
        .with_partition_index(4)
        .with_error_code(0)
        .with_leader_id(BrokerId(1))
        .with_leader_epoch(3)
        .with_isr(vec![BrokerId(1), BrokerId(3)])
        .with_leader_recovery_state(0)
        .with_partition_epoch(10);
    let t = apr::TopicData::default()
        .with_topic_id(Uuid::from_u128(0x1234))
        .with_partitions(vec![p]);
    AlterPartitionResponse::default()
        .with_throttle_time_ms(0)
        .with_error_code(0)
        .with_topics(vec![t])
}

fn sample_allocate() -> AllocateProducerIdsResponse {
    AllocateProducerIdsResponse::default()
        .with_error_code(0)
        .with_producer_id_start(kafka_protocol::messages::ProducerId(1000))
        .with_producer_id_len(1000)
}

#[test]
fn vote_v0_round_trips_and_every_truncation_fails() {
    round_trip_and_truncate(0, &sample_vote());
    round_trip_and_truncate(0, &VoteResponse::default());
    decodes_as_the_answer_to::<VoteRequest>(0, &sample_vote());
}

#[test]
fn begin_and_end_quorum_epoch_v1_round_trip_with_their_tagged_endpoints() {
    round_trip_and_truncate(1, &sample_begin());
    round_trip_and_truncate(1, &BeginQuorumEpochResponse::default());
    round_trip_and_truncate(1, &sample_end());
    round_trip_and_truncate(1, &EndQuorumEpochResponse::default());
    decodes_as_the_answer_to::<BeginQuorumEpochRequest>(1, &sample_begin());
    decodes_as_the_answer_to::<EndQuorumEpochRequest>(1, &sample_end());
}

#[test]
fn broker_lifecycle_responses_round_trip_at_every_served_version() {
    for v in 3..=4 {
        round_trip_and_truncate(v, &sample_registration());
        decodes_as_the_answer_to::<BrokerRegistrationRequest>(v, &sample_registration());
    }
    for v in 0..=1 {
        round_trip_and_truncate(v, &sample_heartbeat());
        decodes_as_the_answer_to::<BrokerHeartbeatRequest>(v, &sample_heartbeat());
    }
}

#[test]
fn alter_partition_v2_and_allocate_producer_ids_v0_round_trip() {
    round_trip_and_truncate(2, &sample_alter_partition());
    round_trip_and_truncate(2, &AlterPartitionResponse::default());
    decodes_as_the_answer_to::<AlterPartitionRequest>(2, &sample_alter_partition());
    round_trip_and_truncate(0, &sample_allocate());
    decodes_as_the_answer_to::<AllocateProducerIdsRequest>(0, &sample_allocate());
}

#[test]
fn versions_without_a_described_layout_are_refused() {
    let vote_v1 = body_of(1, &sample_vote());
    assert_eq!(
        check_body::<VoteResponse>(&vote_v1, 1),
        Err(ShapeError::UnsupportedVersion { version: 1 })
    );
    assert_eq!(
        check_body::<BeginQuorumEpochResponse>(&[0, 0, 0, 0], 0),
        Err(ShapeError::UnsupportedVersion { version: 0 })
    );
    assert_eq!(
        check_body::<EndQuorumEpochResponse>(&[0, 0, 0, 0], 0),
        Err(ShapeError::UnsupportedVersion { version: 0 })
    );
    assert_eq!(
        check_body::<AllocateProducerIdsResponse>(&[], 1),
        Err(ShapeError::UnsupportedVersion { version: 1 })
    );
}

#[test]
fn a_huge_count_in_a_quorum_response_is_refused_before_any_allocation() {
    // AlterPartition v2: throttle, error, then a topics count of 2^31 - 1 with 17 bytes behind it.
    let mut body = vec![0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x08];
    body.extend_from_slice(&[0; 17]);
    assert!(matches!(
        check_body::<AlterPartitionResponse>(&body, 2),
        Err(ShapeError::CountTooLarge { what: "topics", .. })
    ));
    // BeginQuorumEpoch v1: a node_endpoints tag whose array claims more endpoints than its 3 bytes hold.
    let mut body = vec![0, 0, 1]; // error_code, empty topics
    body.extend_from_slice(&[1, 0, 3, 0x7f, 0, 0]); // one tag: 0, size 3, count 126
    assert!(matches!(
        check_body::<BeginQuorumEpochResponse>(&body, 1),
        Err(ShapeError::CountTooLarge {
            what: "node_endpoints",
            ..
        })
    ));
}

#[test]
fn delete_topics_v6_and_create_partitions_v2_to_3_round_trip_and_every_truncation_fails() {
    use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
    use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
    use kafka_protocol::messages::{CreatePartitionsRequest, DeleteTopicsRequest};
    let deleted = DeleteTopicsResponse::default().with_responses(vec![
        DeletableTopicResult::default()
            .with_name(Some(TopicName(s("orders"))))
            .with_topic_id(Uuid::from_u128(5))
            .with_error_code(3)
            .with_error_message(Some(s("topic orders does not exist"))),
        DeletableTopicResult::default().with_topic_id(Uuid::from_u128(6)),
    ]);
    round_trip_and_truncate(6, &deleted);
    decodes_as_the_answer_to::<DeleteTopicsRequest>(6, &deleted);
    let grown = CreatePartitionsResponse::default()
        .with_throttle_time_ms(4)
        .with_results(vec![CreatePartitionsTopicResult::default()
            .with_name(TopicName(s("orders")))
            .with_error_code(37)
            .with_error_message(Some(s("topic orders has 3 partitions")))]);
    for v in 2..=3 {
        round_trip_and_truncate(v, &grown);
        decodes_as_the_answer_to::<CreatePartitionsRequest>(v, &grown);
    }
    assert_eq!(
        check_body::<DeleteTopicsResponse>(&[0, 0, 0, 0], 5),
        Err(ShapeError::UnsupportedVersion { version: 5 })
    );
}
