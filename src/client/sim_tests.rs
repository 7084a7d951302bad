//! Simulation tests of the client against a tiny fake broker node (the real broker lives elsewhere).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{decode_request_header_from_buffer, Decodable, Encodable, HeaderVersion, StrBytes};

use super::*;
use crate::protocol::batch;
use crate::rt::{self, TcpListener, TcpStream};

const BROKER_IP: &str = "10.0.0.1";
const BROKER_PORT: i32 = 9092;

/// The fake broker's state: one partition `t-0` as a list of batches, and how to misbehave.
#[derive(Default)]
struct FakeBroker {
    batches: Vec<Vec<u8>>,
    list_offsets_seen: u32,
    /// Delay the answer to the n-th ListOffsets request (1-based) by this long.
    delay_list_offsets: Option<(u32, Duration)>,
    /// Requests seen: (connection number, API key, correlation id).
    seen: Vec<(u32, i16, i32)>,
    connections: u32,
    topics_created: Vec<String>,
}

fn frame_of<R: Encodable + HeaderVersion>(correlation_id: i32, version: i16, resp: &R) -> Vec<u8> {
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, R::header_version(version))
        .unwrap();
    resp.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

fn name(x: &str) -> TopicName {
    TopicName(StrBytes::from_string(x.to_string()))
}

async fn serve(state: Arc<Mutex<FakeBroker>>) {
    let addr: SocketAddr = format!("0.0.0.0:{BROKER_PORT}").parse().unwrap();
    let listener = TcpListener::bind(addr).await.unwrap();
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let conn_no = {
            let mut s = state.lock().unwrap();
            s.connections += 1;
            s.connections
        };
        rt::spawn(serve_connection(stream, conn_no, state.clone()));
    }
}

async fn serve_connection(mut stream: TcpStream, conn_no: u32, state: Arc<Mutex<FakeBroker>>) {
    while let Ok(Some(frame)) = rt::read_frame(&mut stream, 1 << 20).await {
        let mut buf = Bytes::from(frame);
        let header = decode_request_header_from_buffer(&mut buf).unwrap();
        let (key, version, cid) = (
            header.request_api_key,
            header.request_api_version,
            header.correlation_id,
        );
        state.lock().unwrap().seen.push((conn_no, key, cid));
        let (delay, response) = answer(&state, ApiKey::try_from(key).unwrap(), version, cid, buf);
        rt::sleep_for(delay).await;
        if let Some(response) = response {
            if rt::write_frame(&mut stream, &response).await.is_err() {
                return;
            }
        }
    }
}

fn answer(
    state: &Mutex<FakeBroker>,
    key: ApiKey,
    version: i16,
    cid: i32,
    mut body: Bytes,
) -> (Duration, Option<Vec<u8>>) {
    let mut s = state.lock().unwrap();
    let none = Duration::ZERO;
    match key {
        ApiKey::ApiVersions => {
            // Advertise wider ranges than the client speaks, as a real broker does.
            let keys = [
                (ApiKey::ApiVersions, 0, 4),
                (ApiKey::Metadata, 0, 13),
                (ApiKey::Produce, 3, 13),
            ]
            .into_iter()
            .chain([
                (ApiKey::Fetch, 4, 17),
                (ApiKey::ListOffsets, 1, 10),
                (ApiKey::CreateTopics, 2, 7),
            ])
            .map(|(k, min, max)| {
                ApiVersion::default()
                    .with_api_key(k as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect();
            (
                none,
                Some(frame_of(
                    cid,
                    version,
                    &ApiVersionsResponse::default().with_api_keys(keys),
                )),
            )
        }
        ApiKey::Metadata => {
            let broker = MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(StrBytes::from_string(BROKER_IP.to_string()))
                .with_port(BROKER_PORT);
            let partition = MetadataResponsePartition::default()
                .with_leader_id(BrokerId(1))
                .with_leader_epoch(1)
                .with_replica_nodes(vec![BrokerId(1)])
                .with_isr_nodes(vec![BrokerId(1)]);
            let topic = MetadataResponseTopic::default()
                .with_name(Some(name("t")))
                .with_partitions(vec![partition]);
            let resp = MetadataResponse::default()
                .with_brokers(vec![broker])
                .with_topics(vec![topic]);
            (none, Some(frame_of(cid, version, &resp)))
        }
        ApiKey::Produce => {
            let req = ProduceRequest::decode(&mut body, version).unwrap();
            let mut records = req.topic_data[0].partition_data[0].records.clone().unwrap().to_vec();
            let base_offset = s
                .batches
                .last()
                .map_or(0, |b| batch::validate_batch(b).unwrap().next_offset());
            batch::set_base_offset(&mut records, base_offset);
            s.batches.push(records);
            if req.acks == 0 {
                return (none, None);
            }
            let p = PartitionProduceResponse::default()
                .with_index(0)
                .with_base_offset(base_offset);
            let t = TopicProduceResponse::default()
                .with_name(name("t"))
                .with_partition_responses(vec![p]);
            (
                none,
                Some(frame_of(
                    cid,
                    version,
                    &ProduceResponse::default().with_responses(vec![t]),
                )),
            )
        }
        ApiKey::Fetch => {
            let req = FetchRequest::decode(&mut body, version).unwrap();
            let offset = req.topics[0].partitions[0].fetch_offset;
            let hw = s
                .batches
                .last()
                .map_or(0, |b| batch::BatchHeader::parse(b).unwrap().next_offset());
            let records: Vec<u8> = s
                .batches
                .iter()
                .filter(|b| batch::BatchHeader::parse(b).unwrap().next_offset() > offset)
                .flat_map(|b| b.iter().copied())
                .collect();
            let p = PartitionData::default()
                .with_high_watermark(hw)
                .with_records(Some(records.into()));
            let t = FetchableTopicResponse::default()
                .with_topic(name("t"))
                .with_partitions(vec![p]);
            (
                none,
                Some(frame_of(
                    cid,
                    version,
                    &FetchResponse::default().with_responses(vec![t]),
                )),
            )
        }
        ApiKey::ListOffsets => {
            s.list_offsets_seen += 1;
            let nth = s.list_offsets_seen;
            let delay = match s.delay_list_offsets {
                Some((n, d)) if n == nth => d,
                _ => none,
            };
            // The answer names which request it answers: offset 1000 + n.
            let p = ListOffsetsPartitionResponse::default().with_offset(1000 + nth as i64);
            let t = ListOffsetsTopicResponse::default()
                .with_name(name("t"))
                .with_partitions(vec![p]);
            (
                delay,
                Some(frame_of(
                    cid,
                    version,
                    &ListOffsetsResponse::default().with_topics(vec![t]),
                )),
            )
        }
        ApiKey::CreateTopics => {
            use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
            let req = CreateTopicsRequest::decode(&mut body, version).unwrap();
            let t = &req.topics[0];
            let exists = s.topics_created.contains(&t.name.0.to_string());
            s.topics_created.push(t.name.0.to_string());
            let code = if exists { 36 } else { 0 }; // TOPIC_ALREADY_EXISTS
            let r = CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_error_code(code);
            (
                none,
                Some(frame_of(
                    cid,
                    version,
                    &CreateTopicsResponse::default().with_topics(vec![r]),
                )),
            )
        }
        other => panic!("fake broker got {other:?}"),
    }
}

/// Starts the fake broker node and runs `test` on a client node.
async fn with_fake_broker<F, Fut>(state: Arc<Mutex<FakeBroker>>, test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let handle = madsim::runtime::Handle::current();
    let server_state = state.clone();
    handle
        .create_node()
        .name("broker-1")
        .ip(BROKER_IP.parse().unwrap())
        .init(move || serve(server_state.clone()))
        .build();
    let client = handle
        .create_node()
        .name("client-1")
        .ip("10.0.0.2".parse().unwrap())
        .build();
    client
        .spawn(async move {
            rt::sleep(Duration::from_millis(100)).await;
            test().await;
        })
        .await
        .unwrap();
}

fn list_offsets_req() -> ListOffsetsRequest {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name("t"))
            .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(-1)])])
}

fn broker_addr() -> String {
    format!("{BROKER_IP}:{BROKER_PORT}")
}

#[madsim::test]
async fn a_timed_out_request_closes_the_connection_and_the_next_request_reconnects() {
    let state = Arc::new(Mutex::new(FakeBroker {
        delay_list_offsets: Some((1, Duration::from_secs(3))),
        ..FakeBroker::default()
    }));
    let observed = state.clone();
    with_fake_broker(state, || async move {
        let timeout = Duration::from_secs(1);
        let mut conn = Connection::connect(broker_addr(), ConnectionConfig::default(), timeout)
            .await
            .unwrap();
        assert_eq!(
            conn.negotiated_version(ApiKey::ListOffsets).unwrap(),
            8,
            "highest common version"
        );
        assert_eq!(conn.negotiated_version(ApiKey::Produce).unwrap(), 11);
        let req = list_offsets_req();
        let first = conn.request_negotiated(&req, timeout).await;
        assert!(
            matches!(
                first,
                Err(ClientError::Timeout {
                    api: ApiKey::ListOffsets,
                    timeout_ms: 1000,
                    ..
                })
            ),
            "{first:?}"
        );
        assert!(!conn.is_connected(), "a timed-out request closes its connection");
        // The late answer to request 1 (offset 1001) must never be taken for the answer to request 2.
        let second = conn.request_negotiated(&req, timeout).await.unwrap();
        assert_eq!(second.topics[0].partitions[0].offset, 1002);
        assert_eq!(conn.connections_opened(), 2);
        rt::sleep(Duration::from_secs(5)).await;
        let third = conn.request_negotiated(&req, timeout).await.unwrap();
        assert_eq!(third.topics[0].partitions[0].offset, 1003);
        assert_eq!(conn.connections_opened(), 2, "a healthy connection is reused");
    })
    .await;
    let s = observed.lock().unwrap();
    let keys = |c: u32| {
        s.seen
            .iter()
            .filter(|(n, _, _)| *n == c)
            .map(|(_, k, _)| *k)
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(1), vec![ApiKey::ApiVersions as i16, ApiKey::ListOffsets as i16]);
    assert_eq!(
        keys(2),
        vec![
            ApiKey::ApiVersions as i16,
            ApiKey::ListOffsets as i16,
            ApiKey::ListOffsets as i16
        ]
    );
    let cids: Vec<i32> = s.seen.iter().map(|(_, _, c)| *c).collect();
    assert!(
        cids.windows(2).all(|w| w[0] < w[1]),
        "correlation ids increase: {cids:?}"
    );
}

#[madsim::test]
async fn client_produces_fetches_and_lists_offsets_through_the_partition_leader() {
    let state = Arc::new(Mutex::new(FakeBroker::default()));
    let observed = state.clone();
    with_fake_broker(state, || async move {
        let mut client = Client::new(vec![broker_addr()], ClientConfig::default());
        let configs = BTreeMap::from([("min.insync.replicas".to_string(), "1".to_string())]);
        client.create_topic("t", 1, 1, &configs).await.unwrap();
        let again = client.create_topic("t", 1, 1, &configs).await.unwrap_err();
        assert_eq!(again.kafka_code(), Some(KafkaErrorCode::TopicAlreadyExists), "{again}");
        assert!(!again.is_indefinite());
        let tp = TopicPartition::new("t", 0);
        let first = keyed_batch(&[(b"k1", b"v1"), (b"k2", b"v2")], 1_000);
        assert_eq!(
            client.produce(&tp, first, -1, 5_000).await.unwrap().base_offset,
            Some(0)
        );
        let second = keyed_batch(&[(b"k3", b"v3")], 2_000);
        assert_eq!(
            client.produce(&tp, second, 1, 5_000).await.unwrap().base_offset,
            Some(2)
        );
        let third = keyed_batch(&[(b"k4", b"v4")], 3_000);
        assert_eq!(
            client.produce(&tp, third, 0, 5_000).await.unwrap().base_offset,
            None,
            "acks=0"
        );
        assert_eq!(client.cached_metadata().leader(&tp).map(|(id, _)| id), Some(1));
        let latest = client.list_offsets(&tp, OffsetSpec::Latest).await.unwrap();
        assert_eq!(latest, 1001, "fake broker numbers its ListOffsets answers");
        let fetched = client.fetch(&tp, 1, 1 << 20, 100, 1).await.unwrap();
        let values: Vec<_> = fetched
            .records
            .iter()
            .map(|r| (r.offset, r.value.clone().unwrap()))
            .collect();
        assert_eq!(
            values,
            vec![(1, b"v2".to_vec()), (2, b"v3".to_vec()), (3, b"v4".to_vec())]
        );
        assert_eq!(fetched.high_watermark, 4);
        assert_eq!(fetched.next_fetch_offset, 4);
    })
    .await;
    assert_eq!(observed.lock().unwrap().batches.len(), 3);
}

#[madsim::test]
async fn a_corrupt_fetched_batch_is_an_error_naming_partition_and_offset() {
    let state = Arc::new(Mutex::new(FakeBroker::default()));
    let corrupt = state.clone();
    with_fake_broker(state, || async move {
        let mut client = Client::new(vec![broker_addr()], ClientConfig::default());
        let tp = TopicPartition::new("t", 0);
        client
            .produce(&tp, keyed_batch(&[(b"a", b"1")], 10), -1, 5_000)
            .await
            .unwrap();
        client
            .produce(&tp, keyed_batch(&[(b"b", b"2")], 20), -1, 5_000)
            .await
            .unwrap();
        {
            let mut s = corrupt.lock().unwrap();
            let last = s.batches[1].len() - 1;
            s.batches[1][last] ^= 0x40; // a bit flip inside the CRC-covered bytes
        }
        // The good batch before it is returned first (as Kafka's fetcher does); the corrupt one is an error.
        let good = client.fetch(&tp, 0, 1 << 20, 100, 1).await.unwrap();
        assert_eq!((good.records.len(), good.next_fetch_offset), (1, 1));
        let err = client.fetch(&tp, 1, 1 << 20, 100, 1).await.unwrap_err();
        match &err {
            ClientError::CorruptBatch { tp: at, offset, .. } => {
                assert_eq!(at, &tp);
                assert_eq!(*offset, 1);
            }
            other => panic!("expected CorruptBatch, got {other}"),
        }
        assert!(err.to_string().contains("t-0"), "{err}");
    })
    .await;
}
