use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::{ApiVersion, SupportedFeatureKey};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::{EpochEndOffset, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable, HeaderVersion, Request, StrBytes};
use proptest::prelude::*;

use super::*;

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

fn topic(x: &str) -> TopicName {
    TopicName(s(x))
}

/// Encodes `req` with the connection's encoder and decodes it with kafka-protocol's broker-side decoder.
fn round_trip_request<Req: Request + PartialEq + std::fmt::Debug>(version: i16, req: &Req) {
    let body = encode_request("client-7", 41, version, req).expect("encodes");
    let mut buf = Bytes::from(body);
    let header = decode_request_header_from_buffer(&mut buf).expect("header decodes");
    assert_eq!(header.request_api_key, Req::KEY);
    assert_eq!(header.request_api_version, version);
    assert_eq!(header.correlation_id, 41);
    assert_eq!(header.client_id.as_deref(), Some("client-7"));
    let decoded = Req::decode(&mut buf, version).expect("body decodes");
    assert_eq!(&decoded, req, "{:?} v{version}", api_key_of::<Req>());
    assert!(buf.is_empty(), "{} bytes left after the body", buf.len());
}

#[test]
fn every_request_the_client_sends_round_trips_through_kafka_protocols_decoder() {
    let api_versions = ApiVersionsRequest::default()
        .with_client_software_name(s("gregor"))
        .with_client_software_version(s("0.1.0"));
    round_trip_request(3, &api_versions);
    let metadata =
        MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(topic("t")))]));
    round_trip_request(12, &metadata);
    round_trip_request(12, &MetadataRequest::default().with_topics(None));
    let create = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic("orders"))
            .with_num_partitions(3)
            .with_replication_factor(3)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(s("min.insync.replicas"))
                .with_value(Some(s("2")))])])
        .with_timeout_ms(30_000);
    round_trip_request(7, &create);
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic("orders"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(2)
                .with_records(Some(Bytes::from_static(b"not-a-batch")))])]);
    for v in 9..=11 {
        round_trip_request(v, &produce);
    }
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(topic("orders")).with_partitions(
            vec![FetchPartition::default()
                .with_partition(1)
                .with_fetch_offset(17)
                .with_partition_max_bytes(1 << 20)],
        )]);
    round_trip_request(12, &fetch);
    let list = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic("orders"))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-2)])]);
    for v in 7..=8 {
        round_trip_request(v, &list);
    }
}

#[test]
fn request_headers_are_v2_for_flexible_versions_and_v1_otherwise() {
    // Produce v9+ is flexible: header v2 ends with an empty tagged-field section after the client id.
    let body = encode_request("c", 5, 9, &ProduceRequest::default()).expect("encodes");
    let header_v2_len = 2 + 2 + 4 + 2 + 1 + 1;
    assert_eq!(&body[8..11], &[0, 1, b'c']);
    assert_eq!(body[header_v2_len - 1], 0, "empty tagged fields in header v2");
    assert_eq!(ApiKey::Produce.request_header_version(9), 2);
    assert_eq!(ApiKey::Produce.request_header_version(8), 1);
    // ApiVersions responses always use header v0 (KIP-511), even at v3.
    assert_eq!(<ApiVersionsResponse as HeaderVersion>::header_version(3), 0);
}

#[test]
fn negotiation_picks_the_highest_common_version_and_refuses_disjoint_ranges() {
    assert_eq!(negotiate("b:1", ApiKey::Produce, Some((3, 13))).expect("common"), 11);
    assert_eq!(negotiate("b:1", ApiKey::Produce, Some((3, 10))).expect("common"), 10);
    assert_eq!(negotiate("b:1", ApiKey::ListOffsets, Some((0, 7))).expect("common"), 7);
    assert!(matches!(
        negotiate("b:1", ApiKey::Fetch, Some((4, 11))),
        Err(ClientError::UnsupportedVersion {
            api: ApiKey::Fetch,
            client_min: 12,
            client_max: 12,
            ..
        })
    ));
    assert!(matches!(
        negotiate("b:1", ApiKey::Metadata, None),
        Err(ClientError::UnsupportedVersion { broker: None, .. })
    ));
}

pub(super) fn response_frame<R: Encodable + HeaderVersion>(correlation_id: i32, version: i16, resp: &R) -> Bytes {
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, R::header_version(version))
        .expect("header encodes");
    resp.encode(&mut buf, version).expect("response encodes");
    buf.freeze()
}

fn round_trip_response<Req>(version: i16, resp: &Req::Response)
where
    Req: Request,
    Req::Response: BoundedShape + PartialEq + std::fmt::Debug,
{
    let frame = response_frame(9, version, resp);
    let decoded = decode_response::<Req>("b:1", 9, version, frame).expect("decodes");
    assert_eq!(&decoded, resp, "{:?} v{version}", api_key_of::<Req>());
}

fn sample_api_versions() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_api_keys(
            CLIENT_API_VERSIONS
                .iter()
                .map(|&(k, min, max)| {
                    ApiVersion::default()
                        .with_api_key(k as i16)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        )
        .with_supported_features(vec![SupportedFeatureKey::default()
            .with_name(s("metadata.version"))
            .with_min_version(1)
            .with_max_version(20)])
        .with_finalized_features_epoch(3)
        .with_zk_migration_ready(true)
}

fn sample_metadata() -> MetadataResponse {
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(s("10.0.0.1"))
            .with_port(9092)
            .with_rack(Some(s("r1")))])
        .with_cluster_id(Some(s("gregor")))
        .with_controller_id(BrokerId(1))
        .with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(topic("orders")))
            .with_topic_id(uuid::Uuid::from_u128(7))
            .with_partitions(vec![MetadataResponsePartition::default()
                .with_partition_index(0)
                .with_leader_id(BrokerId(1))
                .with_leader_epoch(4)
                .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                .with_isr_nodes(vec![BrokerId(1)])])])
}

fn sample_produce() -> ProduceResponse {
    ProduceResponse::default()
        .with_responses(vec![TopicProduceResponse::default()
            .with_name(topic("orders"))
            .with_partition_responses(vec![PartitionProduceResponse::default()
                .with_index(0)
                .with_base_offset(42)
                .with_error_message(Some(s("fine")))
                .with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(2))
                        .with_leader_epoch(5),
                )])])
        .with_node_endpoints(vec![NodeEndpoint::default()
            .with_node_id(BrokerId(2))
            .with_host(s("h"))
            .with_port(1)])
}

fn sample_fetch() -> FetchResponse {
    FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(topic("orders"))
        .with_partitions(vec![PartitionData::default()
            .with_partition_index(0)
            .with_high_watermark(10)
            .with_log_start_offset(0)
            .with_records(Some(Bytes::from_static(b"some bytes")))
            .with_diverging_epoch(EpochEndOffset::default().with_epoch(3).with_end_offset(8))])])
}

#[test]
fn every_response_the_client_reads_passes_the_shape_check_and_decodes_unchanged() {
    round_trip_response::<ApiVersionsRequest>(3, &sample_api_versions());
    round_trip_response::<ApiVersionsRequest>(3, &ApiVersionsResponse::default());
    round_trip_response::<MetadataRequest>(12, &sample_metadata());
    round_trip_response::<MetadataRequest>(12, &MetadataResponse::default());
    let create = CreateTopicsResponse::default().with_topics(vec![CreatableTopicResult::default()
        .with_name(topic("orders"))
        .with_error_code(36)
        .with_error_message(Some(s("exists")))
        .with_topic_config_error_code(1)]);
    round_trip_response::<CreateTopicsRequest>(7, &create);
    for v in 9..=11 {
        let mut produce = sample_produce();
        if v < 10 {
            produce = produce.with_node_endpoints(vec![]);
            produce.responses[0].partition_responses[0].current_leader = LeaderIdAndEpoch::default();
        }
        round_trip_response::<ProduceRequest>(v, &produce);
    }
    round_trip_response::<FetchRequest>(12, &sample_fetch());
    let list = ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
        .with_name(topic("orders"))
        .with_partitions(vec![ListOffsetsPartitionResponse::default()
            .with_offset(99)
            .with_leader_epoch(2)])]);
    for v in 7..=8 {
        round_trip_response::<ListOffsetsRequest>(v, &list);
    }
}

#[test]
fn a_response_with_another_correlation_id_is_refused() {
    let frame = response_frame(8, 12, &sample_metadata());
    let err = decode_response::<MetadataRequest>("b:1", 9, 12, frame).expect_err("mismatch");
    assert!(
        matches!(
            err,
            ClientError::CorrelationMismatch {
                expected: 9,
                got: 8,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_huge_array_count_is_a_decode_error_not_an_allocation() {
    // Metadata v12 body: throttle_time_ms, then the brokers array count as a varint: claim 2^31 brokers.
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&9i32.to_be_bytes());
    frame.extend_from_slice(&[0]); // header tagged fields
    frame.extend_from_slice(&0i32.to_be_bytes());
    frame.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x08]);
    frame.extend_from_slice(&[0; 16]);
    let err = decode_response::<MetadataRequest>("b:1", 9, 12, frame.freeze()).expect_err("refused");
    assert!(
        matches!(
            err,
            ClientError::Decode {
                api: ApiKey::Metadata,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("brokers"), "{err}");
}

#[test]
fn truncated_and_padded_responses_are_decode_errors() {
    let frame = response_frame(9, 12, &sample_fetch());
    for cut in [0, 3, 5, frame.len() / 2, frame.len() - 1] {
        let err = decode_response::<FetchRequest>("b:1", 9, 12, frame.slice(..cut)).expect_err("truncated");
        assert!(matches!(err, ClientError::Decode { .. }), "cut at {cut}: {err}");
    }
    let mut padded = BytesMut::from(&frame[..]);
    padded.extend_from_slice(&[0]);
    let err = decode_response::<FetchRequest>("b:1", 9, 12, padded.freeze()).expect_err("trailing");
    assert!(err.to_string().contains("trailing"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Bounded fuzzing: a mutated response never panics or aborts; it decodes or is a Decode error.
    #[test]
    fn mutated_responses_decode_or_fail_cleanly(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let frame = match which {
            0 => response_frame(9, 12, &sample_metadata()),
            1 => response_frame(9, 11, &sample_produce()),
            2 => response_frame(9, 12, &sample_fetch()),
            _ => response_frame(9, 3, &sample_api_versions()),
        };
        let mut bytes = frame.to_vec();
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        let keep = bytes.len() - cut % 4;
        bytes.truncate(keep);
        let frame = Bytes::from(bytes);
        let result = match which {
            0 => decode_response::<MetadataRequest>("b:1", 9, 12, frame).map(|_| ()),
            1 => decode_response::<ProduceRequest>("b:1", 9, 11, frame).map(|_| ()),
            2 => decode_response::<FetchRequest>("b:1", 9, 12, frame).map(|_| ()),
            _ => decode_response::<ApiVersionsRequest>("b:1", 9, 3, frame).map(|_| ()),
        };
        if let Err(e) = result {
            prop_assert!(
                matches!(e, ClientError::Decode { .. } | ClientError::CorrelationMismatch { .. }),
                "{e}"
            );
        }
    }
}

#[test]
fn every_api_the_client_speaks_negotiates_against_the_listener_that_serves_it() {
    use crate::protocol::api::{advertised_on, Listener};
    for &(api, client_min, client_max) in CLIENT_API_VERSIONS {
        let served: Vec<(Listener, i16)> = Listener::ALL
            .into_iter()
            .filter_map(|l| advertised_on(l, api as i16).map(|r| (l, r)))
            .map(|(l, r)| {
                (
                    l,
                    negotiate("n:1", api, Some((r.min, r.max))).expect("a common version"),
                )
            })
            .collect();
        assert!(!served.is_empty(), "{api:?} is on no listener");
        for (listener, version) in served {
            assert!(
                (client_min..=client_max).contains(&version),
                "{api:?} v{version} on the {listener:?} listener"
            );
        }
    }
    for r in crate::protocol::api::CONTROLLER_ADVERTISED {
        assert!(
            CLIENT_API_VERSIONS.iter().any(|(k, _, _)| *k == r.key),
            "the client cannot speak {:?} to a controller",
            r.key
        );
    }
}

fn sample_init_producer_id() -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_throttle_time_ms(3)
        .with_producer_id(ProducerId(4_000))
        .with_producer_epoch(2)
}

#[test]
fn init_producer_id_requests_and_responses_round_trip_at_every_client_version() {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    for v in 4..=5 {
        round_trip_request(v, &req);
        round_trip_response::<InitProducerIdRequest>(v, &sample_init_producer_id());
        round_trip_response::<InitProducerIdRequest>(v, &InitProducerIdResponse::default().with_error_code(15));
    }
    let v6 = sample_init_producer_id()
        .with_ongoing_txn_producer_id(ProducerId(9))
        .with_ongoing_txn_producer_epoch(1);
    round_trip_response::<InitProducerIdRequest>(6, &v6);
    assert_eq!(
        negotiate("b:1", ApiKey::InitProducerId, Some((0, 6))).expect("common"),
        5
    );
    assert_eq!(
        negotiate("b:1", ApiKey::InitProducerId, Some((0, 4))).expect("common"),
        4
    );
    assert!(negotiate("b:1", ApiKey::InitProducerId, Some((0, 3))).is_err());
}

#[test]
fn truncated_padded_or_old_init_producer_id_responses_are_decode_errors() {
    let frame = response_frame(9, 4, &sample_init_producer_id());
    for cut in [0, 3, 5, 9, frame.len() - 2, frame.len() - 1] {
        let err = decode_response::<InitProducerIdRequest>("b:1", 9, 4, frame.slice(..cut)).expect_err("truncated");
        assert!(
            matches!(
                err,
                ClientError::Decode {
                    api: ApiKey::InitProducerId,
                    ..
                }
            ),
            "cut at {cut}: {err}"
        );
    }
    let mut padded = BytesMut::from(&frame[..]);
    padded.extend_from_slice(&[0]);
    let err = decode_response::<InitProducerIdRequest>("b:1", 9, 4, padded.freeze()).expect_err("trailing");
    assert!(err.to_string().contains("trailing"), "{err}");
    // v1 is not flexible: no bounded decoder describes it, so it is refused rather than guessed at.
    let old = response_frame(9, 1, &sample_init_producer_id());
    assert!(decode_response::<InitProducerIdRequest>("b:1", 9, 1, old).is_err());
}
