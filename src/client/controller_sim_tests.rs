//! The client against a fake controller that parses with the controller listener's bounded parser
//! (`parse_request_on(Listener::Controller, ..)`) and answers with kafka-protocol: every KRaft API the client
//! speaks negotiates its version from the controller's ApiVersions and round-trips.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use uuid::Uuid;

use super::*;
use crate::protocol::api::{api_versions_response_on, encode_response, parse_request_on, Listener, Request as Parsed};
use crate::rt::{self, TcpListener, TcpStream};

const CONTROLLER_IP: &str = "10.0.1.1";
const CONTROLLER_PORT: u16 = 9093;

/// What the fake controller saw: (api key, version) of every parsed request, and every refusal.
#[derive(Default)]
struct Seen {
    requests: Vec<(i16, i16)>,
    refused: Vec<String>,
}

async fn serve(seen: Arc<Mutex<Seen>>) {
    let addr: SocketAddr = format!("0.0.0.0:{CONTROLLER_PORT}").parse().unwrap();
    let listener = TcpListener::bind(addr).await.unwrap();
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        rt::spawn(serve_connection(stream, seen.clone()));
    }
}

async fn serve_connection(mut stream: TcpStream, seen: Arc<Mutex<Seen>>) {
    while let Ok(Some(frame)) = rt::read_frame(&mut stream, 1 << 20).await {
        let req = match parse_request_on(Listener::Controller, &frame) {
            Ok(req) => req,
            Err(e) => {
                // Kafka closes the connection on a request it cannot parse.
                seen.lock().unwrap().refused.push(e.to_string());
                return;
            }
        };
        seen.lock().unwrap().requests.push((req.api_key(), req.api_version()));
        let response = answer(req.api_version(), req.correlation_id(), req.body);
        if rt::write_frame(&mut stream, &response).await.is_err() {
            return;
        }
    }
}

fn respond<R: Encodable>(key: ApiKey, v: i16, corr: i32, body: &R) -> Vec<u8> {
    encode_response(key, v, corr, body).unwrap()
}

/// Answers each request with values derived from it, so the test sees the request was parsed.
fn answer(v: i16, corr: i32, body: Parsed) -> Vec<u8> {
    match body {
        Parsed::ApiVersions(_) => respond(
            ApiKey::ApiVersions,
            v,
            corr,
            &api_versions_response_on(Listener::Controller, 0),
        ),
        Parsed::Vote(r) => {
            let p = &r.topics[0].partitions[0];
            let granted = vote_response::PartitionData::default()
                .with_leader_epoch(p.replica_epoch)
                .with_vote_granted(true);
            let t = vote_response::TopicData::default()
                .with_topic_name(r.topics[0].topic_name.clone())
                .with_partitions(vec![granted]);
            respond(ApiKey::Vote, v, corr, &VoteResponse::default().with_topics(vec![t]))
        }
        Parsed::BeginQuorumEpoch(r) => {
            let e = begin_quorum_epoch_response::NodeEndpoint::default()
                .with_node_id(r.topics[0].partitions[0].leader_id)
                .with_host(r.leader_endpoints[0].host.clone())
                .with_port(r.leader_endpoints[0].port);
            let resp = BeginQuorumEpochResponse::default().with_node_endpoints(vec![e]);
            respond(ApiKey::BeginQuorumEpoch, v, corr, &resp)
        }
        Parsed::EndQuorumEpoch(r) => {
            let resp = EndQuorumEpochResponse::default().with_error_code(if r.topics.is_empty() { 42 } else { 0 });
            respond(ApiKey::EndQuorumEpoch, v, corr, &resp)
        }
        Parsed::BrokerRegistration(r) => {
            let resp = BrokerRegistrationResponse::default().with_broker_epoch(r.previous_broker_epoch + 100);
            respond(ApiKey::BrokerRegistration, v, corr, &resp)
        }
        Parsed::BrokerHeartbeat(r) => {
            let resp = BrokerHeartbeatResponse::default()
                .with_is_caught_up(r.current_metadata_offset >= 10)
                .with_is_fenced(r.want_fence);
            respond(ApiKey::BrokerHeartbeat, v, corr, &resp)
        }
        Parsed::AlterPartition(r) => {
            let asked = &r.topics[0].partitions[0];
            let p = alter_partition_response::PartitionData::default()
                .with_isr(asked.new_isr.clone())
                .with_partition_epoch(asked.partition_epoch + 1);
            let t = alter_partition_response::TopicData::default()
                .with_topic_id(r.topics[0].topic_id)
                .with_partitions(vec![p]);
            let resp = AlterPartitionResponse::default().with_topics(vec![t]);
            respond(ApiKey::AlterPartition, v, corr, &resp)
        }
        Parsed::AllocateProducerIds(r) => {
            let resp = AllocateProducerIdsResponse::default()
                .with_producer_id_start(ProducerId(i64::from(r.broker_id.0) * 1000))
                .with_producer_id_len(1000);
            respond(ApiKey::AllocateProducerIds, v, corr, &resp)
        }
        Parsed::Fetch(r) => {
            let p = fetch_response::PartitionData::default()
                .with_high_watermark(r.topics[0].partitions[0].fetch_offset)
                .with_snapshot_id(fetch_response::SnapshotId::default().with_end_offset(5).with_epoch(1));
            let t = fetch_response::FetchableTopicResponse::default()
                .with_topic(r.topics[0].topic.clone())
                .with_partitions(vec![p]);
            respond(
                ApiKey::Fetch,
                v,
                corr,
                &FetchResponse::default().with_responses(vec![t]),
            )
        }
        other => panic!("the controller listener parsed {other:?}, which it does not answer here"),
    }
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

fn metadata_topic() -> TopicName {
    TopicName(s("__cluster_metadata"))
}

async fn run_against_fake_controller<F, Fut>(seen: Arc<Mutex<Seen>>, test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let handle = madsim::runtime::Handle::current();
    handle
        .create_node()
        .name("controller-1")
        .ip(CONTROLLER_IP.parse().unwrap())
        .init(move || serve(seen.clone()))
        .build();
    let client = handle
        .create_node()
        .name("broker-1")
        .ip("10.0.0.1".parse().unwrap())
        .build();
    client
        .spawn(async move {
            rt::sleep(Duration::from_millis(100)).await;
            test().await;
        })
        .await
        .unwrap();
}

async fn quorum_requests(conn: &mut Connection, timeout: Duration) {
    let vote =
        VoteRequest::default()
            .with_cluster_id(Some(s("c")))
            .with_topics(vec![vote_request::TopicData::default()
                .with_topic_name(metadata_topic())
                .with_partitions(vec![vote_request::PartitionData::default()
                    .with_replica_epoch(8)
                    .with_replica_id(BrokerId(2))])]);
    let resp = conn.request_negotiated(&vote, timeout).await.unwrap();
    assert!(resp.topics[0].partitions[0].vote_granted);
    assert_eq!(resp.topics[0].partitions[0].leader_epoch, 8);

    let begin = BeginQuorumEpochRequest::default()
        .with_topics(vec![begin_quorum_epoch_request::TopicData::default()
            .with_topic_name(metadata_topic())
            .with_partitions(vec![begin_quorum_epoch_request::PartitionData::default()
                .with_leader_id(BrokerId(1))
                .with_leader_epoch(8)])])
        .with_leader_endpoints(vec![begin_quorum_epoch_request::LeaderEndpoint::default()
            .with_name(s("CONTROLLER"))
            .with_host(s(CONTROLLER_IP))
            .with_port(CONTROLLER_PORT)]);
    let resp = conn.request_negotiated(&begin, timeout).await.unwrap();
    assert_eq!(resp.node_endpoints[0].node_id, BrokerId(1));
    assert_eq!(resp.node_endpoints[0].port, CONTROLLER_PORT);

    let end = EndQuorumEpochRequest::default().with_topics(vec![
        end_quorum_epoch_request::TopicData::default().with_topic_name(metadata_topic())
    ]);
    assert_eq!(conn.request_negotiated(&end, timeout).await.unwrap().error_code, 0);

    let fetch =
        FetchRequest::default()
            .with_replica_id(BrokerId(2))
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(metadata_topic())
                .with_partitions(vec![
                    fetch_request::FetchPartition::default().with_fetch_offset(33)
                ])]);
    let resp = conn.request_negotiated(&fetch, timeout).await.unwrap();
    assert_eq!(resp.responses[0].partitions[0].high_watermark, 33);
    assert_eq!(resp.responses[0].partitions[0].snapshot_id.end_offset, 5);
}

async fn broker_lifecycle_requests(conn: &mut Connection, timeout: Duration) {
    let register = BrokerRegistrationRequest::default()
        .with_broker_id(BrokerId(1))
        .with_cluster_id(s("c"))
        .with_incarnation_id(Uuid::from_u128(7))
        .with_previous_broker_epoch(5);
    assert_eq!(
        conn.request_negotiated(&register, timeout).await.unwrap().broker_epoch,
        105
    );
    let heartbeat = BrokerHeartbeatRequest::default()
        .with_broker_id(BrokerId(1))
        .with_broker_epoch(105)
        .with_current_metadata_offset(12)
        .with_want_fence(true);
    let resp = conn.request_negotiated(&heartbeat, timeout).await.unwrap();
    assert!(resp.is_caught_up && resp.is_fenced);

    let alter = AlterPartitionRequest::default()
        .with_broker_id(BrokerId(1))
        .with_topics(vec![alter_partition_request::TopicData::default()
            .with_topic_id(Uuid::from_u128(3))
            .with_partitions(vec![alter_partition_request::PartitionData::default()
                .with_new_isr(vec![BrokerId(1), BrokerId(2)])
                .with_partition_epoch(4)])]);
    let resp = conn.request_negotiated(&alter, timeout).await.unwrap();
    assert_eq!(resp.topics[0].topic_id, Uuid::from_u128(3));
    assert_eq!(resp.topics[0].partitions[0].isr, vec![BrokerId(1), BrokerId(2)]);
    assert_eq!(resp.topics[0].partitions[0].partition_epoch, 5);

    let allocate = AllocateProducerIdsRequest::default().with_broker_id(BrokerId(3));
    let resp = conn.request_negotiated(&allocate, timeout).await.unwrap();
    assert_eq!((resp.producer_id_start, resp.producer_id_len), (ProducerId(3000), 1000));
}

#[madsim::test]
async fn every_controller_api_negotiates_and_round_trips_against_the_controller_listener() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let observed = seen.clone();
    run_against_fake_controller(seen, || async move {
        let timeout = Duration::from_secs(1);
        let addr = format!("{CONTROLLER_IP}:{CONTROLLER_PORT}");
        let mut conn = Connection::connect(addr, ConnectionConfig::default(), timeout)
            .await
            .unwrap();
        assert_eq!(conn.negotiated_version(ApiKey::Vote).unwrap(), 0);
        assert_eq!(conn.negotiated_version(ApiKey::BeginQuorumEpoch).unwrap(), 1);
        assert_eq!(conn.negotiated_version(ApiKey::BrokerRegistration).unwrap(), 4);
        assert_eq!(conn.negotiated_version(ApiKey::BrokerHeartbeat).unwrap(), 1);
        quorum_requests(&mut conn, timeout).await;
        broker_lifecycle_requests(&mut conn, timeout).await;
        // Produce is not on the controller listener: refused before anything is sent.
        let produce = ProduceRequest::default();
        let refused = conn.request_negotiated(&produce, timeout).await;
        assert!(
            matches!(
                refused,
                Err(ClientError::UnsupportedVersion {
                    api: ApiKey::Produce,
                    broker: None,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert_eq!(conn.connections_opened(), 1);
    })
    .await;
    let seen = observed.lock().unwrap();
    assert!(seen.refused.is_empty(), "{:?}", seen.refused);
    let keys: Vec<(i16, i16)> = seen.requests.clone();
    assert_eq!(
        keys,
        vec![
            (ApiKey::ApiVersions as i16, 3),
            (ApiKey::Vote as i16, 0),
            (ApiKey::BeginQuorumEpoch as i16, 1),
            (ApiKey::EndQuorumEpoch as i16, 1),
            (ApiKey::Fetch as i16, 12),
            (ApiKey::BrokerRegistration as i16, 4),
            (ApiKey::BrokerHeartbeat as i16, 1),
            (ApiKey::AlterPartition as i16, 2),
            (ApiKey::AllocateProducerIds as i16, 0),
        ]
    );
}
