//! Broker core tests: requests encoded by kafka-protocol go through `parse_request` and `Broker::handle`.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::*;
use crate::log::mem_disk::MemDisk;
use crate::protocol::api::{encode_request, parse_request};
use crate::protocol::batch::BatchBuilder;

/// A v2 record batch of `values` (no key, no headers).
pub(crate) fn batch(values: &[&[u8]], timestamp: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(timestamp);
    for v in values {
        b.push(timestamp, None, Some(v), &[]);
    }
    b.build()
}

/// A broker and its disk.
pub(crate) struct Fx {
    pub(crate) broker: Broker,
    pub(crate) disk: MemDisk,
}

impl Fx {
    fn poll_parked(&mut self, now_ms: i64) -> Vec<(ConnId, Reply)> {
        self.broker.poll_parked(&mut self.disk, now_ms)
    }
}

pub(super) fn image(brokers: &[i32]) -> MetadataImage {
    let mut img = MetadataImage::unfenced("gregor", brokers);
    let part = |leader| PartitionImage {
        leader_epoch: 3,
        partition_epoch: 3,
        ..PartitionImage::sole_replica(leader)
    };
    let partitions = BTreeMap::from([(0, part(1)), (1, part(2))]);
    img.topics.insert(
        "orders".into(),
        TopicImage {
            topic_id: uuid::Uuid::from_u128(1),
            partitions,
            configs: BTreeMap::new(),
        },
    );
    img
}

pub(super) fn broker(brokers: &[i32]) -> Fx {
    let mut disk = MemDisk::new();
    let broker = Broker::new(BrokerConfig::new(1), image(brokers), &mut disk, 0, 42)
        .unwrap()
        .0;
    Fx { broker, disk }
}

pub(super) fn call<R: Encodable>(b: &mut Fx, key: ApiKey, v: i16, req: &R, now_ms: i64) -> Reply {
    let frame = encode_request(key, v, 11, "t", req).unwrap();
    b.broker.handle(&mut b.disk, 1, parse_request(&frame).unwrap(), now_ms)
}

pub(super) fn decode<R: Decodable>(key: ApiKey, v: i16, reply: Reply) -> R {
    let Reply::Respond(body) = reply else {
        panic!("expected a response, got {reply:?}")
    };
    let mut buf = Bytes::from(body);
    let header = ResponseHeader::decode(&mut buf, key.response_header_version(v)).unwrap();
    assert_eq!(header.correlation_id, 11);
    R::decode(&mut buf, v).unwrap()
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.into()))
}

pub(super) fn produce(p: i32, records: Vec<u8>, acks: i16) -> ProduceRequest {
    let pd = PartitionProduceData::default()
        .with_index(p)
        .with_records(Some(Bytes::from(records)));
    let t = TopicProduceData::default()
        .with_name(name("orders"))
        .with_partition_data(vec![pd]);
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(1000)
        .with_topic_data(vec![t])
}

pub(super) fn fetch(offset: i64, min_bytes: i32, max_wait_ms: i32) -> FetchRequest {
    let p = FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20);
    let t = FetchTopic::default()
        .with_topic(name("orders"))
        .with_partitions(vec![p]);
    FetchRequest::default()
        .with_max_bytes(1 << 20)
        .with_min_bytes(min_bytes)
        .with_max_wait_ms(max_wait_ms)
        .with_topics(vec![t])
}

pub(super) fn produce_codes(reply: Reply) -> Vec<(i16, i64)> {
    let resp: ProduceResponse = decode(ApiKey::Produce, 11, reply);
    resp.responses[0]
        .partition_responses
        .iter()
        .map(|p| (p.error_code, p.base_offset))
        .collect()
}

#[test]
fn produced_batches_get_consecutive_offsets_and_fetch_returns_them_up_to_the_high_watermark() {
    let mut b = broker(&[1, 2]);
    let r1 = call(&mut b, ApiKey::Produce, 11, &produce(0, batch(&[b"a", b"b"], 5), 1), 10);
    assert_eq!(produce_codes(r1), vec![(0, 0)]);
    let r2 = call(&mut b, ApiKey::Produce, 11, &produce(0, batch(&[b"c"], 6), -1), 11);
    assert_eq!(produce_codes(r2), vec![(0, 2)]);
    let resp: FetchResponse = decode(
        ApiKey::Fetch,
        12,
        call(&mut b, ApiKey::Fetch, 12, &fetch(0, 1, 500), 12),
    );
    let p = &resp.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark, p.log_start_offset), (0, 3, 0));
    let records = p.records.as_ref().unwrap();
    assert_eq!(i64::from_be_bytes(records[0..8].try_into().unwrap()), 0);
    assert_eq!(
        i32::from_be_bytes(records[12..16].try_into().unwrap()),
        3,
        "partition leader epoch"
    );
}

#[test]
fn produce_errors_are_per_partition_and_acks_zero_sends_nothing_or_closes() {
    let mut b = broker(&[1, 2]);
    assert_eq!(
        produce_codes(call(&mut b, ApiKey::Produce, 11, &produce(1, batch(&[b"x"], 0), 1), 0)),
        vec![(6, -1)]
    );
    assert_eq!(
        produce_codes(call(&mut b, ApiKey::Produce, 11, &produce(9, batch(&[b"x"], 0), 1), 0)),
        vec![(3, -1)]
    );
    let mut bad = batch(&[b"x"], 0);
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(
        produce_codes(call(&mut b, ApiKey::Produce, 11, &produce(0, bad, 1), 0)),
        vec![(2, -1)]
    );
    assert_eq!(
        produce_codes(call(&mut b, ApiKey::Produce, 11, &produce(0, batch(&[b"x"], 0), 2), 0)),
        vec![(21, -1)]
    );
    assert_eq!(
        call(&mut b, ApiKey::Produce, 11, &produce(0, batch(&[b"x"], 0), 0), 0),
        Reply::NoResponse
    );
    assert!(matches!(
        call(&mut b, ApiKey::Produce, 11, &produce(1, batch(&[b"x"], 0), 0), 0),
        Reply::Close(_)
    ));
}

#[test]
fn a_fetch_without_enough_bytes_parks_until_data_arrives_or_the_deadline() {
    let mut b = broker(&[1]);
    assert_eq!(
        call(&mut b, ApiKey::Fetch, 12, &fetch(0, 1, 500), 100),
        Reply::ParkFetch { deadline_ms: 600 }
    );
    assert_eq!(b.broker.next_parked_deadline(), Some(600));
    assert!(b.poll_parked(200).is_empty());
    call(&mut b, ApiKey::Produce, 11, &produce(0, batch(&[b"a"], 5), 1), 300);
    let done = b.poll_parked(300);
    assert_eq!(done.len(), 1);
    let resp: FetchResponse = decode(ApiKey::Fetch, 12, done[0].1.clone());
    assert_eq!(resp.responses[0].partitions[0].high_watermark, 1);
    assert_eq!(b.broker.next_parked_deadline(), None);
    // nothing arrives: answered empty at the deadline
    call(&mut b, ApiKey::Fetch, 12, &fetch(1, 1, 500), 1000);
    assert!(b.poll_parked(1499).is_empty());
    let done = b.poll_parked(1500);
    let resp: FetchResponse = decode(ApiKey::Fetch, 12, done[0].1.clone());
    assert_eq!(
        resp.responses[0].partitions[0].records.as_ref().map(|r| r.len()),
        Some(0)
    );
}

#[test]
fn metadata_lists_brokers_leaders_and_epochs_and_unknown_topics() {
    let mut b = broker(&[1, 2]);
    let resp: MetadataResponse = decode(
        ApiKey::Metadata,
        12,
        call(
            &mut b,
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
            0,
        ),
    );
    assert_eq!(resp.brokers.len(), 2);
    let t = &resp.topics[0];
    assert_eq!(t.topic_id, uuid::Uuid::from_u128(1));
    assert_eq!(
        t.partitions
            .iter()
            .map(|p| (p.leader_id.0, p.leader_epoch))
            .collect::<Vec<_>>(),
        vec![(1, 3), (2, 3)]
    );
    let want = metadata_request::MetadataRequestTopic::default().with_name(Some(name("nope")));
    let req = MetadataRequest::default().with_topics(Some(vec![want]));
    let resp: MetadataResponse = decode(ApiKey::Metadata, 13, call(&mut b, ApiKey::Metadata, 13, &req, 0));
    assert_eq!(resp.topics[0].error_code, 3);
}

#[test]
fn create_topics_assigns_an_id_creates_logs_and_refuses_rf_above_one() {
    let mut b = broker(&[1]);
    let topic = |n: &str, rf| {
        CreatableTopic::default()
            .with_name(name(n))
            .with_num_partitions(2)
            .with_replication_factor(rf)
    };
    let req =
        CreateTopicsRequest::default().with_topics(vec![topic("events", 1), topic("wide", 2), topic("orders", 1)]);
    let resp: CreateTopicsResponse = decode(ApiKey::CreateTopics, 7, call(&mut b, ApiKey::CreateTopics, 7, &req, 0));
    let codes: Vec<i16> = resp.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, vec![0, 38, 36]);
    assert!(!resp.topics[0].topic_id.is_nil());
    assert!(b.broker.logs().get(&TopicPartition::new("events", 1)).is_some());
    let r = call(&mut b, ApiKey::Produce, 11, &produce(0, batch(&[b"a"], 0), 1), 0);
    assert_eq!(produce_codes(r), vec![(0, 0)]);
}

#[test]
fn list_offsets_answers_earliest_latest_and_by_timestamp() {
    let mut b = broker(&[1]);
    call(&mut b, ApiKey::Produce, 11, &produce(0, batch(&[b"a", b"b"], 0), 1), 0);
    let part = |ts| {
        list_offsets_request::ListOffsetsPartition::default()
            .with_partition_index(0)
            .with_timestamp(ts)
    };
    let t = list_offsets_request::ListOffsetsTopic::default()
        .with_name(name("orders"))
        .with_partitions(vec![part(-2), part(-1), part(5), part(0), part(-3), part(-4)]);
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![t]);
    let resp: ListOffsetsResponse = decode(ApiKey::ListOffsets, 7, call(&mut b, ApiKey::ListOffsets, 7, &req, 0));
    let got: Vec<(i16, i64)> = resp.topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.offset))
        .collect();
    // By timestamp (both records carry 0): 5 finds nothing, 0 and -3 (max timestamp) find offset 0.
    assert_eq!(got, vec![(0, 0), (0, 2), (0, -1), (0, 0), (0, 0), (42, -1)]);
}

#[test]
fn api_versions_lists_the_advertised_ranges() {
    let mut b = broker(&[1]);
    let resp: ApiVersionsResponse = decode(
        ApiKey::ApiVersions,
        3,
        call(&mut b, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default(), 0),
    );
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.api_keys.len(), crate::protocol::api::ADVERTISED.len());
}

#[test]
fn create_topics_applies_topic_configs_and_refuses_bad_names_and_unknown_configs() {
    let mut b = broker(&[1]);
    let cfg = |k: &str, v: &str| {
        create_topics_request::CreatableTopicConfig::default()
            .with_name(StrBytes::from_string(k.into()))
            .with_value(Some(StrBytes::from_string(v.into())))
    };
    let topic = |n: &str, c| {
        CreatableTopic::default()
            .with_name(name(n))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(c)
    };
    let req = CreateTopicsRequest::default().with_topics(vec![
        topic("small", vec![cfg("max.message.bytes", "100")]),
        topic("bad/name", vec![]),
        topic("odd", vec![cfg("cleanup.policy.typo", "x")]),
    ]);
    let resp: CreateTopicsResponse = decode(ApiKey::CreateTopics, 7, call(&mut b, ApiKey::CreateTopics, 7, &req, 0));
    assert_eq!(
        resp.topics.iter().map(|t| t.error_code).collect::<Vec<_>>(),
        vec![0, 17, 40]
    );
    let tp = TopicPartition::new("small", 0);
    assert_eq!(b.broker.logs().get(&tp).unwrap().config().max_message_bytes, 100);
    let big = vec![7u8; 200];
    let pd = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(Bytes::from(batch(&[&big], 0))));
    let t = TopicProduceData::default()
        .with_name(name("small"))
        .with_partition_data(vec![pd]);
    let req = ProduceRequest::default().with_acks(1).with_topic_data(vec![t]);
    assert_eq!(
        produce_codes(call(&mut b, ApiKey::Produce, 11, &req, 0)),
        vec![(10, -1)]
    );
}

#[test]
fn a_fetch_past_the_log_end_is_offset_out_of_range_and_answered_at_once() {
    let mut b = broker(&[1]);
    let resp: FetchResponse = decode(ApiKey::Fetch, 12, call(&mut b, ApiKey::Fetch, 12, &fetch(5, 1, 500), 0));
    assert_eq!(resp.responses[0].partitions[0].error_code, 1);
    assert_eq!(b.broker.parked_count(), 0);
}
