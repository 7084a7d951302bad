use kafka_protocol::messages::create_topics_request::CreatableTopicConfig;
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{alter_partition_request, broker_registration_request, vote_request};
use kafka_protocol::messages::{begin_quorum_epoch_request as bqe, end_quorum_epoch_request as eqe};
use kafka_protocol::messages::{BrokerId, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::*;

fn every_range() -> impl Iterator<Item = (Listener, &'static ApiRange)> {
    Listener::ALL
        .into_iter()
        .flat_map(|l| l.advertised().iter().map(move |r| (l, r)))
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn sample(key: ApiKey) -> Box<dyn Fn(i16) -> (Vec<u8>, Request)> {
    match key {
        ApiKey::ApiVersions => Box::new(move |v| {
            let mut r = ApiVersionsRequest::default();
            if v >= 3 {
                r = r
                    .with_client_software_name(StrBytes::from_static_str("gregor"))
                    .with_client_software_version(StrBytes::from_static_str("0.1"));
            }
            frame(key, v, r, Request::ApiVersions)
        }),
        ApiKey::Metadata => Box::new(move |v| {
            let t = MetadataRequestTopic::default().with_name(Some(name("orders")));
            let r = MetadataRequest::default()
                .with_topics(Some(vec![t]))
                .with_allow_auto_topic_creation(false);
            frame(key, v, r, Request::Metadata)
        }),
        ApiKey::CreateTopics => Box::new(move |v| {
            let a = CreatableReplicaAssignment::default().with_broker_ids(vec![BrokerId(1), BrokerId(2)]);
            let c = CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("segment.bytes"))
                .with_value(Some(StrBytes::from_static_str("1024")));
            let t = CreatableTopic::default()
                .with_name(name("orders"))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(vec![a])
                .with_configs(vec![c]);
            frame(
                key,
                v,
                CreateTopicsRequest::default()
                    .with_topics(vec![t])
                    .with_timeout_ms(5000),
                Request::CreateTopics,
            )
        }),
        ApiKey::Produce => Box::new(move |v| {
            let p = PartitionProduceData::default()
                .with_index(3)
                .with_records(Some(Bytes::from_static(b"0123456789")));
            let t = TopicProduceData::default()
                .with_name(name("orders"))
                .with_partition_data(vec![p]);
            let r = ProduceRequest::default()
                .with_acks(1)
                .with_timeout_ms(3000)
                .with_topic_data(vec![t]);
            frame(key, v, r, Request::Produce)
        }),
        ApiKey::Fetch => Box::new(move |v| {
            let p = FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(42)
                .with_partition_max_bytes(1 << 20);
            let t = FetchTopic::default()
                .with_topic(name("orders"))
                .with_partitions(vec![p]);
            let f = ForgottenTopic::default()
                .with_topic(name("old"))
                .with_partitions(vec![1, 2]);
            let r = FetchRequest::default()
                .with_max_wait_ms(500)
                .with_min_bytes(1)
                .with_max_bytes(1 << 24)
                .with_topics(vec![t])
                .with_forgotten_topics_data(vec![f])
                .with_rack_id(StrBytes::from_static_str("rack-a"))
                .with_cluster_id(Some(StrBytes::from_static_str("cluster-x")));
            frame(key, v, r, Request::Fetch)
        }),
        ApiKey::ListOffsets => Box::new(move |v| {
            let p = ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1);
            let t = ListOffsetsTopic::default()
                .with_name(name("orders"))
                .with_partitions(vec![p]);
            frame(
                key,
                v,
                ListOffsetsRequest::default().with_topics(vec![t]),
                Request::ListOffsets,
            )
        }),
        ApiKey::InitProducerId => Box::new(move |v| {
            let r = InitProducerIdRequest::default()
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(7))
                .with_producer_epoch(2);
            frame(key, v, r, Request::InitProducerId)
        }),
        other => group_sample(other),
    }
}

/// Samples of the group APIs, every field away from its default.
fn group_sample(key: ApiKey) -> Box<dyn Fn(i16) -> (Vec<u8>, Request)> {
    use kafka_protocol::messages::{join_group_request as jg, leave_group_request as lg};
    use kafka_protocol::messages::{offset_commit_request as oc, offset_fetch_request as of, sync_group_request as sg};
    use kafka_protocol::messages::{
        DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
        ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
    };
    let g = || GroupId(s("group-1"));
    match key {
        ApiKey::FindCoordinator => Box::new(move |v| {
            let r = FindCoordinatorRequest::default().with_coordinator_keys(vec![s("group-1"), s("group-2")]);
            frame(key, v, r, Request::FindCoordinator)
        }),
        ApiKey::JoinGroup => Box::new(move |v| {
            let p = jg::JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"meta"));
            let r = JoinGroupRequest::default()
                .with_group_id(g())
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(300_000)
                .with_member_id(s("m-1"))
                .with_group_instance_id(Some(s("i-1")))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![p]);
            frame(key, v, r, Request::JoinGroup)
        }),
        ApiKey::SyncGroup => Box::new(move |v| {
            let a = sg::SyncGroupRequestAssignment::default()
                .with_member_id(s("m-1"))
                .with_assignment(Bytes::from_static(b"assign"));
            let r = SyncGroupRequest::default()
                .with_group_id(g())
                .with_generation_id(3)
                .with_member_id(s("m-1"))
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range")))
                .with_assignments(vec![a]);
            frame(key, v, r, Request::SyncGroup)
        }),
        ApiKey::Heartbeat => Box::new(move |v| {
            let r = HeartbeatRequest::default()
                .with_group_id(g())
                .with_generation_id(3)
                .with_member_id(s("m-1"));
            frame(key, v, r, Request::Heartbeat)
        }),
        ApiKey::LeaveGroup => Box::new(move |v| {
            let m = lg::MemberIdentity::default().with_member_id(s("m-1"));
            let r = LeaveGroupRequest::default().with_group_id(g()).with_members(vec![m]);
            frame(key, v, r, Request::LeaveGroup)
        }),
        ApiKey::OffsetCommit => Box::new(move |v| {
            let p = oc::OffsetCommitRequestPartition::default()
                .with_partition_index(2)
                .with_committed_offset(42)
                .with_committed_leader_epoch(5)
                .with_committed_metadata(Some(s("m")));
            let t = oc::OffsetCommitRequestTopic::default()
                .with_name(name("orders"))
                .with_partitions(vec![p]);
            let r = OffsetCommitRequest::default()
                .with_group_id(g())
                .with_generation_id_or_member_epoch(3)
                .with_member_id(s("m-1"))
                .with_topics(vec![t]);
            frame(key, v, r, Request::OffsetCommit)
        }),
        ApiKey::OffsetFetch => Box::new(move |v| {
            let t = of::OffsetFetchRequestTopics::default()
                .with_name(name("orders"))
                .with_partition_indexes(vec![0, 2]);
            let g1 = of::OffsetFetchRequestGroup::default()
                .with_group_id(g())
                .with_topics(Some(vec![t]));
            let g2 = of::OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s("group-2")))
                .with_topics(None);
            let r = OffsetFetchRequest::default()
                .with_groups(vec![g1, g2])
                .with_require_stable(true);
            frame(key, v, r, Request::OffsetFetch)
        }),
        ApiKey::DescribeGroups => Box::new(move |v| {
            let r = DescribeGroupsRequest::default().with_groups(vec![g()]);
            frame(key, v, r, Request::DescribeGroups)
        }),
        ApiKey::ListGroups => Box::new(move |v| {
            let r = ListGroupsRequest::default().with_states_filter(vec![s("Stable")]);
            frame(key, v, r, Request::ListGroups)
        }),
        ApiKey::DeleteRecords => Box::new(move |v| {
            use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
            let p = DeleteRecordsPartition::default()
                .with_partition_index(3)
                .with_offset(42);
            let t = DeleteRecordsTopic::default()
                .with_name(name("orders"))
                .with_partitions(vec![p]);
            let r = kafka_protocol::messages::DeleteRecordsRequest::default()
                .with_topics(vec![t])
                .with_timeout_ms(30_000);
            frame(key, v, r, Request::DeleteRecords)
        }),
        ApiKey::OffsetForLeaderEpoch => Box::new(move |v| {
            use kafka_protocol::messages::offset_for_leader_epoch_request::{
                OffsetForLeaderPartition, OffsetForLeaderTopic,
            };
            let p = OffsetForLeaderPartition::default()
                .with_partition(3)
                .with_current_leader_epoch(7)
                .with_leader_epoch(5);
            let t = OffsetForLeaderTopic::default()
                .with_topic(name("orders"))
                .with_partitions(vec![p]);
            let r = kafka_protocol::messages::OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![t]);
            frame(key, v, r, Request::OffsetForLeaderEpoch)
        }),
        other => controller_sample(other),
    }
}

fn frame<R: Encodable + Clone>(key: ApiKey, v: i16, r: R, wrap: fn(R) -> Request) -> (Vec<u8>, Request) {
    (encode_request(key, v, 7, "client-1", &r).unwrap(), wrap(r))
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

/// Samples of the controller listener's own APIs, every field away from its default.
fn controller_sample(key: ApiKey) -> Box<dyn Fn(i16) -> (Vec<u8>, Request)> {
    match key {
        ApiKey::Vote => Box::new(move |v| frame(key, v, sample_vote(), Request::Vote)),
        ApiKey::BeginQuorumEpoch => Box::new(move |v| frame(key, v, sample_begin_quorum(), Request::BeginQuorumEpoch)),
        ApiKey::EndQuorumEpoch => Box::new(move |v| frame(key, v, sample_end_quorum(), Request::EndQuorumEpoch)),
        ApiKey::BrokerRegistration => {
            Box::new(move |v| frame(key, v, sample_registration(), Request::BrokerRegistration))
        }
        ApiKey::BrokerHeartbeat => Box::new(move |v| {
            let mut r = BrokerHeartbeatRequest::default()
                .with_broker_id(BrokerId(2))
                .with_broker_epoch(40)
                .with_current_metadata_offset(1234)
                .with_want_fence(true)
                .with_want_shut_down(true);
            if v >= 1 {
                r = r.with_offline_log_dirs(vec![Uuid::from_u128(9)]);
            }
            frame(key, v, r, Request::BrokerHeartbeat)
        }),
        ApiKey::AlterPartition => Box::new(move |v| {
            let p = alter_partition_request::PartitionData::default()
                .with_partition_index(4)
                .with_leader_epoch(3)
                .with_new_isr(vec![BrokerId(1), BrokerId(3)])
                .with_leader_recovery_state(1)
                .with_partition_epoch(9);
            let t = alter_partition_request::TopicData::default()
                .with_topic_id(Uuid::from_u128(0x1234))
                .with_partitions(vec![p]);
            let r = AlterPartitionRequest::default()
                .with_broker_id(BrokerId(1))
                .with_broker_epoch(77)
                .with_topics(vec![t]);
            frame(key, v, r, Request::AlterPartition)
        }),
        ApiKey::AllocateProducerIds => Box::new(move |v| {
            let r = AllocateProducerIdsRequest::default()
                .with_broker_id(BrokerId(3))
                .with_broker_epoch(12);
            frame(key, v, r, Request::AllocateProducerIds)
        }),
        other => topic_change_sample(other),
    }
}

/// Samples of DeleteTopics and CreatePartitions, every field away from its default.
fn topic_change_sample(key: ApiKey) -> Box<dyn Fn(i16) -> (Vec<u8>, Request)> {
    use kafka_protocol::messages::create_partitions_request::{CreatePartitionsAssignment, CreatePartitionsTopic};
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    match key {
        ApiKey::DeleteTopics => Box::new(move |v| {
            let by_name = DeleteTopicState::default().with_name(Some(name("orders")));
            let by_id = DeleteTopicState::default().with_topic_id(Uuid::from_u128(0x77));
            let r = DeleteTopicsRequest::default()
                .with_topics(vec![by_name, by_id])
                .with_timeout_ms(5000);
            frame(key, v, r, Request::DeleteTopics)
        }),
        ApiKey::CreatePartitions => Box::new(move |v| {
            let a = CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(1), BrokerId(2)]);
            let manual = CreatePartitionsTopic::default()
                .with_name(name("orders"))
                .with_count(4)
                .with_assignments(Some(vec![a]));
            let auto = CreatePartitionsTopic::default().with_name(name("events")).with_count(6);
            let r = CreatePartitionsRequest::default()
                .with_topics(vec![manual, auto])
                .with_timeout_ms(5000)
                .with_validate_only(true);
            frame(key, v, r, Request::CreatePartitions)
        }),
        other => panic!("no sample for {other:?}"),
    }
}

fn sample_vote() -> VoteRequest {
    let p = vote_request::PartitionData::default()
        .with_replica_epoch(5)
        .with_replica_id(BrokerId(2))
        .with_last_offset_epoch(4)
        .with_last_offset(120);
    let t = vote_request::TopicData::default()
        .with_topic_name(name("__cluster_metadata"))
        .with_partitions(vec![p]);
    VoteRequest::default()
        .with_cluster_id(Some(s("cluster-x")))
        .with_topics(vec![t])
}

fn leader_endpoint<E: Default>(with: impl FnOnce(E) -> E) -> Vec<E> {
    vec![with(E::default())]
}

fn sample_begin_quorum() -> BeginQuorumEpochRequest {
    let p = bqe::PartitionData::default()
        .with_voter_directory_id(Uuid::from_u128(5))
        .with_leader_id(BrokerId(1))
        .with_leader_epoch(6);
    let t = bqe::TopicData::default()
        .with_topic_name(name("__cluster_metadata"))
        .with_partitions(vec![p]);
    BeginQuorumEpochRequest::default()
        .with_cluster_id(Some(s("cluster-x")))
        .with_voter_id(BrokerId(3))
        .with_topics(vec![t])
        .with_leader_endpoints(leader_endpoint(|e: bqe::LeaderEndpoint| {
            e.with_name(s("CONTROLLER")).with_host(s("10.0.1.1")).with_port(9093)
        }))
}

fn sample_end_quorum() -> EndQuorumEpochRequest {
    let c = eqe::ReplicaInfo::default()
        .with_candidate_id(BrokerId(2))
        .with_candidate_directory_id(Uuid::from_u128(6));
    let p = eqe::PartitionData::default()
        .with_leader_id(BrokerId(1))
        .with_leader_epoch(6)
        .with_preferred_candidates(vec![c]);
    let t = eqe::TopicData::default()
        .with_topic_name(name("__cluster_metadata"))
        .with_partitions(vec![p]);
    EndQuorumEpochRequest::default()
        .with_cluster_id(None)
        .with_topics(vec![t])
        .with_leader_endpoints(leader_endpoint(|e: eqe::LeaderEndpoint| {
            e.with_name(s("CONTROLLER")).with_host(s("10.0.1.1")).with_port(9093)
        }))
}

fn sample_registration() -> BrokerRegistrationRequest {
    let l = broker_registration_request::Listener::default()
        .with_name(s("PLAINTEXT"))
        .with_host(s("10.0.0.1"))
        .with_port(9092)
        .with_security_protocol(0);
    let f = broker_registration_request::Feature::default()
        .with_name(s("metadata.version"))
        .with_min_supported_version(7)
        .with_max_supported_version(27);
    BrokerRegistrationRequest::default()
        .with_broker_id(BrokerId(1))
        .with_cluster_id(s("cluster-x"))
        .with_incarnation_id(Uuid::from_u128(0xabc))
        .with_listeners(vec![l])
        .with_features(vec![f])
        .with_rack(Some(s("rack-a")))
        .with_log_dirs(vec![Uuid::from_u128(1)])
        .with_previous_broker_epoch(17)
}

#[test]
fn every_advertised_version_round_trips_through_the_bounded_parser() {
    for (listener, r) in every_range() {
        for v in r.min..=r.max {
            let (frame, expected) = sample(r.key)(v);
            let parsed =
                parse_request_on(listener, &frame).unwrap_or_else(|e| panic!("{listener:?} {:?} v{v}: {e}", r.key));
            assert_eq!(parsed.body, expected, "{:?} v{v}", r.key);
            assert_eq!(parsed.correlation_id(), 7);
            assert_eq!(parsed.api_version(), v);
            assert_eq!(parsed.header.client_id.as_deref(), Some("client-1"));
        }
    }
}

#[test]
fn advertised_ranges_lie_inside_what_kafka_protocol_knows() {
    for (_, r) in every_range() {
        let known = r.key.valid_versions();
        assert!(
            known.min <= r.min && r.max <= known.max,
            "{:?} {r:?} vs {known:?}",
            r.key
        );
        assert_eq!(
            r.key.request_header_version(r.max),
            if r.max >= r.first_flexible { 2 } else { 1 }
        );
    }
}

#[test]
fn every_truncation_of_a_valid_request_is_malformed() {
    for (listener, r) in every_range() {
        for v in r.min..=r.max {
            let (frame, _) = sample(r.key)(v);
            for len in 0..frame.len() {
                assert!(
                    matches!(
                        parse_request_on(listener, &frame[..len]),
                        Err(RequestError::Malformed { .. })
                    ),
                    "{listener:?} {:?} v{v} cut at {len}",
                    r.key
                );
            }
        }
    }
}

#[test]
fn metadata_v12_body_7fffffff_is_malformed_not_an_abort() {
    let mut frame = encode_request(ApiKey::Metadata, 12, 1, "c", &MetadataRequest::default()).unwrap();
    let header_len = frame.len() - 4; // topics (1) + 2 bools + tags (1)
    frame.truncate(header_len);
    frame.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
    match parse_request(&frame) {
        Err(RequestError::Malformed {
            api: 3,
            version: 12,
            at_byte,
            what,
        }) => {
            assert_eq!(at_byte, header_len, "{what}");
            assert!(what.contains("topics"), "{what}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn unknown_keys_and_versions_are_refused_but_apiversions_is_answered() {
    let (mut frame, _) = sample(ApiKey::Produce)(9);
    frame[2..4].copy_from_slice(&8i16.to_be_bytes());
    assert_eq!(
        parse_request(&frame),
        Err(RequestError::UnsupportedVersion { key: 0, version: 8 })
    );
    frame[0..2].copy_from_slice(&1000i16.to_be_bytes());
    assert_eq!(parse_request(&frame), Err(RequestError::UnknownApiKey { key: 1000 }));
    let mut frame = encode_request(ApiKey::ApiVersions, 4, 5, "c", &ApiVersionsRequest::default()).unwrap();
    frame[2..4].copy_from_slice(&99i16.to_be_bytes());
    let parsed = parse_request(&frame).unwrap();
    assert_eq!(parsed.body, Request::ApiVersionsUnsupported);
    assert_eq!(parsed.correlation_id(), 5);
}

#[test]
fn unsupported_api_versions_answer_is_error_35_with_our_apiversions_range_at_v0() {
    let body = unsupported_api_versions_response(9).unwrap();
    let mut buf = Bytes::from(body);
    let header = ResponseHeader::decode(&mut buf, 0).unwrap();
    assert_eq!(header.correlation_id, 9);
    let resp = ApiVersionsResponse::decode(&mut buf, 0).unwrap();
    assert_eq!(resp.error_code, 35);
    assert_eq!(resp.api_keys.len(), 1);
    let av = resp.api_keys.iter().find(|k| k.api_key == 18).unwrap();
    assert_eq!((av.min_version, av.max_version), (0, 4));
}

#[test]
fn flexible_responses_carry_header_v1_and_apiversions_header_v0() {
    let meta = kafka_protocol::messages::MetadataResponse::default();
    let body = encode_response(ApiKey::Metadata, 12, 3, &meta).unwrap();
    assert_eq!(&body[..5], &[0, 0, 0, 3, 0]); // correlation id, empty tagged fields
    let av = encode_response(ApiKey::ApiVersions, 3, 3, &api_versions_response(0)).unwrap();
    let mut buf = Bytes::from(av);
    assert_eq!(ResponseHeader::decode(&mut buf, 0).unwrap().correlation_id, 3);
    assert_eq!(
        ApiVersionsResponse::decode(&mut buf, 3).unwrap().api_keys.len(),
        ADVERTISED.len()
    );
}

#[test]
fn an_api_off_its_listener_is_an_unknown_api_key() {
    for listener in Listener::ALL {
        let other = match listener {
            Listener::Broker => Listener::Controller,
            Listener::Controller => Listener::Broker,
        };
        for r in other.advertised() {
            if advertised_on(listener, r.key as i16).is_some() {
                continue;
            }
            let (frame, _) = sample(r.key)(r.max);
            assert_eq!(
                parse_request_on(listener, &frame),
                Err(RequestError::UnknownApiKey { key: r.key as i16 }),
                "{:?} on the {listener:?} listener",
                r.key
            );
        }
    }
    let (vote, _) = sample(ApiKey::Vote)(0);
    assert_eq!(parse_request(&vote), Err(RequestError::UnknownApiKey { key: 52 }));
    let (produce, _) = sample(ApiKey::Produce)(11);
    assert_eq!(
        parse_request_on(Listener::Controller, &produce),
        Err(RequestError::UnknownApiKey { key: 0 })
    );
    let (init, _) = sample(ApiKey::InitProducerId)(4);
    assert_eq!(
        parse_request_on(Listener::Controller, &init),
        Err(RequestError::UnknownApiKey { key: 22 })
    );
}

#[test]
fn listeners_share_fetch_apiversions_and_the_topic_apis_but_nothing_else() {
    let shared: Vec<ApiKey> = ADVERTISED
        .iter()
        .filter(|r| advertised_on(Listener::Controller, r.key as i16).is_some())
        .map(|r| r.key)
        .collect();
    let expected = vec![
        ApiKey::Fetch,
        ApiKey::ApiVersions,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::CreatePartitions,
    ];
    assert_eq!(shared, expected);
    for key in shared {
        assert_eq!(advertised(key as i16), advertised_on(Listener::Controller, key as i16));
    }
    assert_eq!(advertised_on(Listener::Controller, ApiKey::Metadata as i16), None);
}

#[test]
fn each_listener_answers_apiversions_with_its_own_ranges() {
    for listener in Listener::ALL {
        let resp = api_versions_response_on(listener, 0);
        let got: Vec<(i16, i16, i16)> = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        let want: Vec<(i16, i16, i16)> = listener
            .advertised()
            .iter()
            .map(|r| (r.key as i16, r.min, r.max))
            .collect();
        assert_eq!(got, want, "{listener:?}");
        let body = unsupported_api_versions_response_on(listener, 4).unwrap();
        let mut buf = Bytes::from(body);
        assert_eq!(ResponseHeader::decode(&mut buf, 0).unwrap().correlation_id, 4);
        let refused = ApiVersionsResponse::decode(&mut buf, 0).unwrap();
        assert_eq!(refused.error_code, code::UNSUPPORTED_VERSION);
        assert_eq!(refused.api_keys.len(), 1);
    }
    let controller = api_versions_response_on(Listener::Controller, 0);
    let vote = controller.api_keys.iter().find(|k| k.api_key == 52).unwrap();
    assert_eq!((vote.min_version, vote.max_version), (0, 0));
}

#[test]
fn a_controller_frame_with_a_huge_array_count_is_malformed_not_an_abort() {
    // AlterPartition v2: broker_id, broker_epoch, then topics as a compact array claiming 2^31 entries.
    let mut frame = encode_request(ApiKey::AlterPartition, 2, 1, "c", &AlterPartitionRequest::default()).unwrap();
    frame.truncate(frame.len() - 2); // topics (1) + tags (1)
    let at = frame.len();
    frame.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x08, 0]);
    match parse_request_on(Listener::Controller, &frame) {
        Err(RequestError::Malformed {
            api: 56,
            version: 2,
            at_byte,
            what,
        }) => {
            assert_eq!(at_byte, at, "{what}");
            assert!(what.contains("topics"), "{what}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}
