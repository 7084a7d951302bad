//! Hostile input against the request path: the bounded parser never panics or aborts on random and mutated
//! frames (proptest), and a simulated broker closes a bad connection and keeps serving the others (madsim).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gregor::broker::{BrokerConfig, MetadataImage};
use gregor::node::broker::{run_broker, BrokerExit, BrokerNodeConfig};
use gregor::protocol::api::{encode_request, parse_request, parse_request_on, ApiRange, Listener, ADVERTISED};
use gregor::protocol::batch::BatchBuilder;
use gregor::protocol::errors::RequestError;
use gregor::rt::{self, TcpStream};
use gregor::sim::disk::{SimDisk, SimDiskConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use proptest::prelude::*;

// ---------------------------------------------------------------- bounded parser fuzzing

fn valid_frames() -> Vec<(Listener, Vec<u8>)> {
    let name = TopicName(StrBytes::from_static_str("orders"));
    let pd = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(Bytes::from(batch(&[b"v"], 0))));
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name.clone())
            .with_partition_data(vec![pd])]);
    let fp = FetchPartition::default()
        .with_partition(0)
        .with_partition_max_bytes(100);
    let fetch =
        FetchRequest::default().with_topics(vec![FetchTopic::default().with_topic(name).with_partitions(vec![fp])]);
    vec![
        (
            Listener::Broker,
            encode_request(ApiKey::Produce, 11, 1, "c", &produce).unwrap(),
        ),
        (
            Listener::Broker,
            encode_request(ApiKey::Fetch, 12, 2, "c", &fetch).unwrap(),
        ),
        (
            Listener::Broker,
            encode_request(
                ApiKey::Metadata,
                12,
                3,
                "c",
                &MetadataRequest::default().with_topics(None),
            )
            .unwrap(),
        ),
        (
            Listener::Broker,
            encode_request(ApiKey::ApiVersions, 3, 4, "c", &ApiVersionsRequest::default()).unwrap(),
        ),
        (
            Listener::Broker,
            encode_request(ApiKey::ListOffsets, 6, 5, "c", &ListOffsetsRequest::default()).unwrap(),
        ),
        (
            Listener::Broker,
            encode_request(ApiKey::CreateTopics, 7, 6, "c", &CreateTopicsRequest::default()).unwrap(),
        ),
        (
            Listener::Broker,
            encode_request(ApiKey::InitProducerId, 4, 7, "c", &InitProducerIdRequest::default()).unwrap(),
        ),
        (
            Listener::Broker,
            encode_request(
                ApiKey::DeleteTopics,
                6,
                8,
                "c",
                &kafka_protocol::messages::DeleteTopicsRequest::default(),
            )
            .unwrap(),
        ),
        (
            Listener::Broker,
            encode_request(
                ApiKey::CreatePartitions,
                3,
                9,
                "c",
                &kafka_protocol::messages::CreatePartitionsRequest::default(),
            )
            .unwrap(),
        ),
    ]
    .into_iter()
    .chain(group_and_lifecycle_frames())
    .chain(controller_frames())
    .collect()
}

/// One valid frame of each group-coordinator API, of DeleteRecords and of OffsetForLeaderEpoch, at the versions the broker serves.
fn group_and_lifecycle_frames() -> Vec<(Listener, Vec<u8>)> {
    use kafka_protocol::messages::*;
    let frame = |key: ApiKey, v: i16, bytes: Result<Vec<u8>, gregor::protocol::errors::EncodeError>| {
        (Listener::Broker, bytes.unwrap_or_else(|e| panic!("{key:?} v{v}: {e}")))
    };
    vec![
        frame(
            ApiKey::FindCoordinator,
            4,
            encode_request(ApiKey::FindCoordinator, 4, 8, "c", &FindCoordinatorRequest::default()),
        ),
        frame(
            ApiKey::JoinGroup,
            7,
            encode_request(ApiKey::JoinGroup, 7, 9, "c", &JoinGroupRequest::default()),
        ),
        frame(
            ApiKey::SyncGroup,
            5,
            encode_request(ApiKey::SyncGroup, 5, 10, "c", &SyncGroupRequest::default()),
        ),
        frame(
            ApiKey::Heartbeat,
            4,
            encode_request(ApiKey::Heartbeat, 4, 11, "c", &HeartbeatRequest::default()),
        ),
        frame(
            ApiKey::LeaveGroup,
            4,
            encode_request(ApiKey::LeaveGroup, 4, 12, "c", &LeaveGroupRequest::default()),
        ),
        frame(
            ApiKey::OffsetCommit,
            8,
            encode_request(ApiKey::OffsetCommit, 8, 13, "c", &OffsetCommitRequest::default()),
        ),
        frame(
            ApiKey::OffsetFetch,
            8,
            encode_request(ApiKey::OffsetFetch, 8, 14, "c", &OffsetFetchRequest::default()),
        ),
        frame(
            ApiKey::DescribeGroups,
            5,
            encode_request(ApiKey::DescribeGroups, 5, 15, "c", &DescribeGroupsRequest::default()),
        ),
        frame(
            ApiKey::ListGroups,
            4,
            encode_request(ApiKey::ListGroups, 4, 16, "c", &ListGroupsRequest::default()),
        ),
        frame(
            ApiKey::DeleteRecords,
            2,
            encode_request(ApiKey::DeleteRecords, 2, 17, "c", &DeleteRecordsRequest::default()),
        ),
        frame(ApiKey::OffsetForLeaderEpoch, 4, {
            use kafka_protocol::messages::offset_for_leader_epoch_request::{
                OffsetForLeaderPartition, OffsetForLeaderTopic,
            };
            let p = OffsetForLeaderPartition::default()
                .with_partition(1)
                .with_current_leader_epoch(3)
                .with_leader_epoch(2);
            let t = OffsetForLeaderTopic::default()
                .with_topic(TopicName(StrBytes::from_string("orders".into())))
                .with_partitions(vec![p]);
            let r = OffsetForLeaderEpochRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![t]);
            encode_request(ApiKey::OffsetForLeaderEpoch, 4, 18, "c", &r)
        }),
    ]
}

/// One valid frame of each controller-listener API, with its arrays non-empty so mutations hit them.
fn controller_frames() -> Vec<(Listener, Vec<u8>)> {
    let s = |x: &str| StrBytes::from_string(x.to_string());
    let meta = TopicName(s("__cluster_metadata"));
    let vote = VoteRequest::default().with_topics(vec![vote_request::TopicData::default()
        .with_topic_name(meta.clone())
        .with_partitions(vec![vote_request::PartitionData::default().with_replica_epoch(3)])]);
    let begin = BeginQuorumEpochRequest::default()
        .with_topics(vec![begin_quorum_epoch_request::TopicData::default()
            .with_topic_name(meta.clone())
            .with_partitions(vec![begin_quorum_epoch_request::PartitionData::default()])])
        .with_leader_endpoints(vec![begin_quorum_epoch_request::LeaderEndpoint::default()
            .with_name(s("CONTROLLER"))
            .with_host(s("h"))]);
    let end = EndQuorumEpochRequest::default().with_topics(vec![end_quorum_epoch_request::TopicData::default()
        .with_topic_name(meta)
        .with_partitions(vec![end_quorum_epoch_request::PartitionData::default()
            .with_preferred_candidates(vec![end_quorum_epoch_request::ReplicaInfo::default()])])]);
    let register = BrokerRegistrationRequest::default()
        .with_cluster_id(s("c"))
        .with_listeners(vec![broker_registration_request::Listener::default()
            .with_name(s("PLAINTEXT"))
            .with_host(s("h"))])
        .with_log_dirs(vec![Default::default()]);
    let heartbeat = BrokerHeartbeatRequest::default().with_offline_log_dirs(vec![Default::default()]);
    let alter = AlterPartitionRequest::default()
        .with_topics(vec![alter_partition_request::TopicData::default().with_partitions(
            vec![alter_partition_request::PartitionData::default().with_new_isr(vec![BrokerId(1)])],
        )]);
    let c = Listener::Controller;
    vec![
        (c, encode_request(ApiKey::Vote, 0, 1, "c", &vote).unwrap()),
        (c, encode_request(ApiKey::BeginQuorumEpoch, 1, 2, "c", &begin).unwrap()),
        (c, encode_request(ApiKey::EndQuorumEpoch, 1, 3, "c", &end).unwrap()),
        (
            c,
            encode_request(ApiKey::BrokerRegistration, 4, 4, "c", &register).unwrap(),
        ),
        (
            c,
            encode_request(ApiKey::BrokerHeartbeat, 1, 5, "c", &heartbeat).unwrap(),
        ),
        (c, encode_request(ApiKey::AlterPartition, 2, 6, "c", &alter).unwrap()),
        (
            c,
            encode_request(
                ApiKey::AllocateProducerIds,
                0,
                7,
                "c",
                &AllocateProducerIdsRequest::default(),
            )
            .unwrap(),
        ),
    ]
}

/// Every advertised range on both listeners.
fn every_range() -> Vec<(Listener, ApiRange)> {
    Listener::ALL
        .into_iter()
        .flat_map(|l| l.advertised().iter().map(move |r| (l, *r)))
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    Truncate(usize),
    HugeLength(usize, u8),
    Insert(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0u8..4).prop_map(|(i, k)| Mutation::HugeLength(i, k)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8)).prop_map(|(i, v)| Mutation::Insert(i, v)),
    ]
}

fn apply(frame: &mut Vec<u8>, m: &Mutation) {
    let n = frame.len();
    match m {
        Mutation::FlipBit(i, b) => frame[i % n] ^= 1 << b,
        Mutation::Truncate(i) => frame.truncate(i % n),
        Mutation::HugeLength(i, k) => {
            let at = i % n;
            let huge: &[u8] = [
                &[0x7f, 0xff, 0xff, 0xff][..],
                &[0xff, 0xff, 0xff, 0x0f],
                &[0x7f, 0xff],
                &[0xfe, 0xff, 0xff, 0xff, 0x07],
            ][*k as usize % 4];
            for (j, b) in huge.iter().enumerate() {
                if at + j < n {
                    frame[at + j] = *b;
                }
            }
        }
        Mutation::Insert(i, bytes) => {
            let at = i % (n + 1);
            frame.splice(at..at, bytes.iter().copied());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_frames_never_panic_the_parser(frame in proptest::collection::vec(any::<u8>(), 0..256)) {
        for listener in Listener::ALL {
            let _ = parse_request_on(listener, &frame);
        }
    }

    #[test]
    fn random_bodies_behind_valid_headers_never_panic_the_parser(
        which in 0usize..64,
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let ranges = every_range();
        let (listener, r) = ranges[which % ranges.len()];
        let mut frame = Vec::new();
        frame.extend_from_slice(&(r.key as i16).to_be_bytes());
        frame.extend_from_slice(&r.max.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 1, 0, 1, b'c']);
        if r.max >= r.first_flexible {
            frame.push(0);
        }
        frame.extend_from_slice(&body);
        let _ = parse_request_on(listener, &frame);
    }

    #[test]
    fn mutated_valid_frames_never_panic_the_parser(
        which in 0usize..64,
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let frames = valid_frames();
        let (listener, mut frame) = frames[which % frames.len()].clone();
        for m in &mutations {
            if frame.is_empty() {
                break;
            }
            apply(&mut frame, m);
        }
        let _ = parse_request_on(listener, &frame);
    }
}

#[test]
fn every_valid_frame_parses_on_its_listener_and_only_shared_apis_on_the_other() {
    let frames = valid_frames();
    assert_eq!(
        frames.len(),
        every_range().len() - 5,
        "one frame per API (Fetch/ApiVersions/CreateTopics/DeleteTopics/CreatePartitions once)"
    );
    for (listener, frame) in frames {
        let parsed = parse_request_on(listener, &frame).unwrap_or_else(|e| panic!("{listener:?}: {e}"));
        let other = if listener == Listener::Broker {
            Listener::Controller
        } else {
            Listener::Broker
        };
        let shared = gregor::protocol::api::advertised_on(other, parsed.api_key()).is_some();
        match parse_request_on(other, &frame) {
            Ok(again) => assert!(shared && again == parsed, "{listener:?} key {}", parsed.api_key()),
            Err(e) => assert_eq!(e, RequestError::UnknownApiKey { key: parsed.api_key() }),
        }
    }
}

#[test]
fn metadata_v12_header_with_body_7fffffff_is_malformed() {
    let mut frame = encode_request(ApiKey::Metadata, 12, 1, "c", &MetadataRequest::default()).unwrap();
    frame.truncate(frame.len() - 4);
    frame.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
    assert!(matches!(
        parse_request(&frame),
        Err(RequestError::Malformed {
            api: 3,
            version: 12,
            ..
        })
    ));
}

// ---------------------------------------------------------------- a simulated broker

/// A v2 record batch of `values` (no key, no headers).
fn batch(values: &[&[u8]], timestamp: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(timestamp);
    for v in values {
        b.push(timestamp, None, Some(v), &[]);
    }
    b.build()
}

const BROKER: &str = "10.0.0.1:9092";

fn node_config() -> BrokerNodeConfig {
    let image = MetadataImage::unfenced("gregor", &[1]).with_local_topic("orders", 1, 1, 1);
    BrokerNodeConfig::new(BrokerConfig::new(1), image, 7)
}

/// Starts broker-1 on `disk` and a client node; runs `client` on the client node. The broker's exit, if
/// it exits, lands in `exit`.
async fn with_broker_on<F, Fut>(disk: SimDisk, exit: Arc<Mutex<Option<BrokerExit>>>, client: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let handle = madsim::runtime::Handle::current();
    let cfg = node_config();
    handle
        .create_node()
        .name("broker-1")
        .ip("10.0.0.1".parse().unwrap())
        .init(move || {
            let (cfg, disk, exit) = (cfg.clone(), disk.clone(), exit.clone());
            async move {
                let e = run_broker(cfg, Box::new(disk)).await;
                *exit.lock().unwrap() = Some(e);
            }
        })
        .build();
    let node = handle
        .create_node()
        .name("client-1")
        .ip("10.0.0.2".parse().unwrap())
        .build();
    node.spawn(async move {
        rt::sleep(Duration::from_millis(100)).await;
        client().await
    })
    .await
    .unwrap();
}

async fn with_broker<F, Fut>(client: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let exit = Arc::new(Mutex::new(None));
    with_broker_on(
        SimDisk::new("broker-1", 1, SimDiskConfig::default()),
        exit.clone(),
        client,
    )
    .await;
    assert_eq!(*exit.lock().unwrap(), None, "the broker must keep running");
}

async fn connect() -> TcpStream {
    TcpStream::connect(BROKER.parse::<SocketAddr>().unwrap()).await.unwrap()
}

async fn send(stream: &mut TcpStream, frame: &[u8]) {
    rt::write_frame(stream, frame).await.unwrap();
}

/// Reads one response frame; `None` when the broker closed the connection.
async fn recv(stream: &mut TcpStream) -> Option<Bytes> {
    let read = rt::timeout(Duration::from_secs(5), rt::read_frame(stream, 1 << 26))
        .await
        .expect("no answer in 5 s");
    read.ok().flatten().map(Bytes::from)
}

async fn call<Req: Encodable, Resp: Decodable>(stream: &mut TcpStream, key: ApiKey, v: i16, req: &Req) -> Resp {
    send(stream, &encode_request(key, v, 42, "client-1", req).unwrap()).await;
    let mut body = recv(stream).await.expect("connection closed");
    let header = ResponseHeader::decode(&mut body, key.response_header_version(v)).unwrap();
    assert_eq!(header.correlation_id, 42);
    Resp::decode(&mut body, v).unwrap()
}

async fn assert_broker_alive() {
    let mut s = connect().await;
    let resp: ApiVersionsResponse = call(&mut s, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.api_keys.len(), ADVERTISED.len());
}

async fn assert_closed_after(frame: &[u8]) {
    let mut s = connect().await;
    send(&mut s, frame).await;
    assert_eq!(recv(&mut s).await, None, "the broker must close the connection");
    assert_broker_alive().await;
}

#[madsim::test]
async fn hostile_metadata_frame_closes_connection() {
    with_broker(|| async {
        let mut frame = encode_request(ApiKey::Metadata, 12, 1, "evil", &MetadataRequest::default()).unwrap();
        frame.truncate(frame.len() - 4);
        frame.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
        assert_closed_after(&frame).await;
    })
    .await;
}

#[madsim::test]
async fn oversized_frames_unknown_keys_and_unsupported_versions_close_only_that_connection() {
    with_broker(|| async {
        // a size prefix above socket.request.max.bytes
        let mut s = connect().await;
        use tokio::io::AsyncWriteExt;
        s.write_all(&0x7fff_ffffu32.to_be_bytes()).await.unwrap();
        s.flush().await.unwrap();
        assert_eq!(recv(&mut s).await, None);
        assert_broker_alive().await;
        // an unknown api key
        let mut frame = encode_request(ApiKey::ApiVersions, 0, 1, "c", &ApiVersionsRequest::default()).unwrap();
        frame[0..2].copy_from_slice(&4242i16.to_be_bytes());
        assert_closed_after(&frame).await;
        // Produce v3: known to Kafka, not advertised here
        let frame = encode_request(ApiKey::Produce, 3, 1, "c", &ProduceRequest::default()).unwrap();
        assert_closed_after(&frame).await;
    })
    .await;
}

#[madsim::test]
async fn api_versions_at_an_unknown_version_answers_error_35_with_our_apiversions_range() {
    with_broker(|| async {
        let mut s = connect().await;
        let mut frame = encode_request(ApiKey::ApiVersions, 4, 9, "c", &ApiVersionsRequest::default()).unwrap();
        frame[2..4].copy_from_slice(&99i16.to_be_bytes());
        send(&mut s, &frame).await;
        let mut body = recv(&mut s).await.expect("an answer");
        assert_eq!(ResponseHeader::decode(&mut body, 0).unwrap().correlation_id, 9);
        let resp = ApiVersionsResponse::decode(&mut body, 0).unwrap();
        assert_eq!(resp.error_code, 35);
        let ranges: Vec<(i16, i16, i16)> = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        assert_eq!(ranges, vec![(18, 0, 4)], "KIP-511: our ApiVersions range");
        // the client retries at v3 and learns every range
        let resp: ApiVersionsResponse = call(&mut s, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
        assert_eq!(resp.api_keys.len(), ADVERTISED.len());
    })
    .await;
}

fn produce(values: &[&[u8]]) -> ProduceRequest {
    let pd = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(Bytes::from(batch(values, 1))));
    let t = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str("orders")))
        .with_partition_data(vec![pd]);
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![t])
}

fn fetch(offset: i64, max_wait_ms: i32) -> FetchRequest {
    let p = FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20);
    let t = FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_static_str("orders")))
        .with_partitions(vec![p]);
    FetchRequest::default()
        .with_max_bytes(1 << 20)
        .with_min_bytes(1)
        .with_max_wait_ms(max_wait_ms)
        .with_topics(vec![t])
}

/// The base offsets of the batches in a fetched record set.
fn base_offsets(records: &[u8]) -> Vec<i64> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= records.len() {
        out.push(i64::from_be_bytes(records[at..at + 8].try_into().unwrap()));
        at += 12 + i32::from_be_bytes(records[at + 8..at + 12].try_into().unwrap()) as usize;
    }
    out
}

#[madsim::test]
async fn produced_batches_with_acks_1_are_fetched_back_at_their_offsets() {
    with_broker(|| async {
        let mut s = connect().await;
        let mut bases = Vec::new();
        for values in [&[&b"a"[..], b"b"][..], &[b"c"], &[b"d", b"e", b"f"]] {
            let resp: ProduceResponse = call(&mut s, ApiKey::Produce, 11, &produce(values)).await;
            let p = &resp.responses[0].partition_responses[0];
            assert_eq!(p.error_code, 0);
            bases.push(p.base_offset);
        }
        assert_eq!(bases, vec![0, 2, 3]);
        let resp: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &fetch(0, 500)).await;
        let p = &resp.responses[0].partitions[0];
        assert_eq!((p.error_code, p.high_watermark), (0, 6));
        assert_eq!(base_offsets(p.records.as_ref().unwrap()), vec![0, 2, 3]);
        // a long poll at the end of the log is answered when a produce on another connection lands
        let mut producer = connect().await;
        let waiting = rt::spawn(async move {
            let start = rt::Instant::now();
            let resp: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &fetch(6, 5000)).await;
            (resp, start.elapsed())
        });
        rt::sleep(Duration::from_millis(200)).await;
        let _: ProduceResponse = call(&mut producer, ApiKey::Produce, 11, &produce(&[b"g"])).await;
        let (resp, waited) = waiting.await.unwrap();
        assert_eq!(
            base_offsets(resp.responses[0].partitions[0].records.as_ref().unwrap()),
            vec![6]
        );
        assert!(waited < Duration::from_secs(1), "long poll answered after {waited:?}");
    })
    .await;
}

#[madsim::test]
async fn an_eio_takes_the_log_dir_offline_and_shuts_the_single_dir_broker_down() {
    let disk = SimDisk::new("broker-1", 1, SimDiskConfig::default());
    let exit = Arc::new(Mutex::new(None));
    let (d, e) = (disk.clone(), exit.clone());
    with_broker_on(disk, exit, move || async move {
        let mut s = connect().await;
        let resp: ProduceResponse = call(&mut s, ApiKey::Produce, 11, &produce(&[b"a"])).await;
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
        d.set_config(SimDiskConfig {
            eio_rate: 1.0,
            ..SimDiskConfig::default()
        });
        send(
            &mut s,
            &encode_request(ApiKey::Produce, 11, 43, "c", &produce(&[b"b"])).unwrap(),
        )
        .await;
        assert_eq!(recv(&mut s).await, None, "no answer from a broker whose log dir failed");
        rt::sleep(Duration::from_millis(100)).await;
        let exit = e.lock().unwrap().clone();
        assert!(
            matches!(exit, Some(BrokerExit::StorageFailure(ref r)) if r.contains("EIO")),
            "{exit:?}"
        );
        assert!(
            TcpStream::connect(BROKER.parse::<SocketAddr>().unwrap()).await.is_err(),
            "the broker is down"
        );
    })
    .await;
}

#[madsim::test]
async fn a_killed_and_restarted_broker_recovers_its_log_and_serves_it_again() {
    let handle = madsim::runtime::Handle::current();
    let disk = SimDisk::new("broker-1", 2, SimDiskConfig::default());
    let cfg = node_config();
    let broker = handle
        .create_node()
        .name("broker-1")
        .ip("10.0.0.1".parse().unwrap())
        .init(move || {
            let (cfg, disk) = (cfg.clone(), disk.clone());
            async move {
                let exit = run_broker(cfg, Box::new(disk)).await;
                panic!("broker exited: {exit:?}");
            }
        })
        .build();
    let client = handle
        .create_node()
        .name("client-1")
        .ip("10.0.0.2".parse().unwrap())
        .build();
    let broker_id = broker.id();
    client
        .spawn(async move {
            rt::sleep(Duration::from_millis(100)).await;
            let mut s = connect().await;
            for values in [&[&b"a"[..], b"b"][..], &[b"c"]] {
                let resp: ProduceResponse = call(&mut s, ApiKey::Produce, 11, &produce(values)).await;
                assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
            }
            let h = madsim::runtime::Handle::current();
            h.kill(broker_id);
            assert_eq!(recv(&mut s).await, None, "a killed broker reads as EOF");
            h.restart(broker_id);
            rt::sleep(Duration::from_millis(100)).await;
            let mut s = connect().await;
            let resp: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &fetch(0, 0)).await;
            let p = &resp.responses[0].partitions[0];
            assert_eq!((p.error_code, p.high_watermark), (0, 3));
            assert_eq!(base_offsets(p.records.as_ref().unwrap()), vec![0, 2]);
            let resp: ProduceResponse = call(&mut s, ApiKey::Produce, 11, &produce(&[b"d"])).await;
            assert_eq!(resp.responses[0].partition_responses[0].base_offset, 3);
        })
        .await
        .unwrap();
}
