//! Retention, DeleteRecords and the log start offset through the broker (leader and follower).

use std::collections::BTreeMap;

use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::tests::{batch, call, decode, produce, produce_codes, Fx};
use super::*;
use crate::log::mem_disk::MemDisk;
use crate::protocol::api::{encode_request, parse_request};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.into()))
}

/// "orders" partition 0 on brokers 1 (leader) and 2, both in the ISR.
fn replicated_image() -> MetadataImage {
    let mut img = MetadataImage::unfenced("gregor", &[1, 2]);
    let part = PartitionImage {
        replicas: vec![1, 2],
        isr: vec![1, 2],
        leader: 1,
        leader_epoch: 3,
        partition_epoch: 3,
    };
    img.topics.insert(
        "orders".into(),
        TopicImage {
            topic_id: uuid::Uuid::from_u128(1),
            partitions: BTreeMap::from([(0, part)]),
            configs: BTreeMap::new(),
        },
    );
    img
}

/// A broker whose every batch fills a segment (`log.segment.bytes` 100) with `retention.ms` 1000.
fn node(id: i32) -> Fx {
    let mut config = BrokerConfig::new(id);
    config.log_segment_bytes = 100;
    config.log_retention_ms = 1_000;
    config.log_segment_delete_delay_ms = 0;
    let mut disk = MemDisk::new();
    let broker = Broker::new(config, replicated_image(), &mut disk, 0, 7).unwrap().0;
    Fx { broker, disk }
}

fn tp() -> TopicPartition {
    TopicPartition::new("orders", 0)
}

/// One round of the follower's fetcher against the leader (a parked fetch completes at its deadline).
fn replicate(leader: &mut Fx, follower: &mut Fx, now_ms: i64) -> FetchResponse {
    let plan = follower.broker.replica_fetch_plans().pop().expect("a fetch plan");
    let req = follower.broker.replica_fetch_request(&plan);
    let frame = encode_request(ApiKey::Fetch, 12, 11, "broker-2", &req).unwrap();
    let mut reply = leader
        .broker
        .handle(&mut leader.disk, 9, parse_request(&frame).unwrap(), now_ms);
    if let Reply::ParkFetch { deadline_ms } = reply {
        let mut done = leader.broker.poll_parked(&mut leader.disk, deadline_ms);
        reply = done.pop().expect("the parked fetch completes at its deadline").1;
    }
    let resp: FetchResponse = decode(ApiKey::Fetch, 12, reply);
    follower
        .broker
        .apply_replica_fetch(&mut follower.disk, &plan, &resp, now_ms)
        .unwrap();
    resp
}

fn delete_records(offset: i64) -> DeleteRecordsRequest {
    let p = DeleteRecordsPartition::default()
        .with_partition_index(0)
        .with_offset(offset);
    let t = DeleteRecordsTopic::default()
        .with_name(name("orders"))
        .with_partitions(vec![p]);
    DeleteRecordsRequest::default()
        .with_topics(vec![t])
        .with_timeout_ms(1000)
}

fn delete_records_answer(b: &mut Fx, offset: i64) -> (i16, i64) {
    let resp: DeleteRecordsResponse = decode(
        ApiKey::DeleteRecords,
        2,
        call(b, ApiKey::DeleteRecords, 2, &delete_records(offset), 0),
    );
    let p = &resp.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

fn consumer_fetch(b: &mut Fx, offset: i64) -> (i16, i64) {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let p = FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20);
    let t = FetchTopic::default()
        .with_topic(name("orders"))
        .with_partitions(vec![p]);
    let req = FetchRequest::default().with_max_bytes(1 << 20).with_topics(vec![t]);
    let resp: FetchResponse = decode(ApiKey::Fetch, 12, call(b, ApiKey::Fetch, 12, &req, 0));
    let p = &resp.responses[0].partitions[0];
    (p.error_code, p.log_start_offset)
}

/// Three batches of two records at offsets 0, 2, 4 (timestamps 10, 20, 30), replicated and committed.
fn committed_log() -> (Fx, Fx) {
    let (mut leader, mut follower) = (node(1), node(2));
    for (i, ts) in [10, 20, 30].into_iter().enumerate() {
        let r = call(
            &mut leader,
            ApiKey::Produce,
            11,
            &produce(0, batch(&[b"aaaa", b"bbbb"], ts), 1),
            ts,
        );
        assert_eq!(produce_codes(r), vec![(0, 2 * i as i64)]);
    }
    // A fetch reads within one segment: one round per segment, one more to report the end.
    for now in 40..44 {
        replicate(&mut leader, &mut follower, now);
    }
    assert_eq!(leader.broker.high_watermark(&tp()), 6);
    assert_eq!(follower.broker.logs().get(&tp()).unwrap().log_end_offset(), 6);
    (leader, follower)
}

#[test]
fn delete_records_moves_the_leaders_log_start_and_the_follower_follows() {
    let (mut leader, mut follower) = committed_log();
    assert_eq!(
        delete_records_answer(&mut leader, 7).0,
        code::OFFSET_OUT_OF_RANGE,
        "above the high watermark"
    );
    assert_eq!(delete_records_answer(&mut leader, 3), (code::NONE, 3));
    assert_eq!(consumer_fetch(&mut leader, 2), (code::OFFSET_OUT_OF_RANGE, 3));
    assert_eq!(consumer_fetch(&mut leader, 3).0, code::NONE);
    let resp = replicate(&mut leader, &mut follower, 50);
    assert_eq!(resp.responses[0].partitions[0].log_start_offset, 3);
    assert_eq!(follower.broker.logs().get(&tp()).unwrap().log_start_offset(), 3);
    // -1 deletes up to the high watermark.
    assert_eq!(delete_records_answer(&mut leader, -1), (code::NONE, 6));
    assert!(leader.broker.take_marks().contains(&DELETE_RECORDS_MARK));
    // Segments wholly below the log start go at the next retention pass, on each replica.
    // The active segment [4, 6) stays: only a segment whose successor starts at or below the log start goes.
    leader.broker.retention_pass(&mut leader.disk, 60).unwrap();
    let log = leader.broker.logs().get(&tp()).unwrap();
    assert_eq!((log.log_start_offset(), log.segment_base_offsets()), (6, vec![4]));
}

#[test]
fn retention_deletes_expired_segments_below_each_replicas_high_watermark() {
    let (mut leader, mut follower) = committed_log();
    // At 1025 the segments with max timestamps 10 and 20 expired (retention.ms 1000), 30 has not.
    leader.broker.retention_pass(&mut leader.disk, 1_025).unwrap();
    assert!(leader.broker.take_marks().contains(&RETENTION_DELETED_MARK));
    let log = leader.broker.logs().get(&tp()).unwrap();
    assert_eq!((log.log_start_offset(), log.segment_base_offsets()), (4, vec![4]));
    assert_eq!(consumer_fetch(&mut leader, 0), (code::OFFSET_OUT_OF_RANGE, 4));
    // The follower knows high watermark 6 once it fetched again; its own pass deletes the same.
    replicate(&mut leader, &mut follower, 1_026);
    assert_eq!(follower.broker.logs().get(&tp()).unwrap().log_start_offset(), 4);
    follower.broker.retention_pass(&mut follower.disk, 1_027).unwrap();
    assert_eq!(
        follower.broker.logs().get(&tp()).unwrap().segment_base_offsets(),
        vec![4]
    );
    // The leader's own produce still lands after the log start.
    let r = call(
        &mut leader,
        ApiKey::Produce,
        11,
        &produce(0, batch(&[b"c"], 2_000), 1),
        2_000,
    );
    assert_eq!(produce_codes(r), vec![(0, 6)]);
}

#[test]
fn a_follower_whose_log_runs_past_the_leaders_end_learns_where_to_truncate() {
    // A follower with an unreplicated tail from the old epoch (every broker crashed; a replica with a
    // shorter log became leader) fetches past the leader's end: Kafka's Partition.fetchRecords answers
    // with the diverging epoch, not OFFSET_OUT_OF_RANGE, so the follower truncates and catches up.
    let (mut leader, follower) = committed_log();
    let plan = follower.broker.replica_fetch_plans().pop().expect("a fetch plan");
    let mut req = follower.broker.replica_fetch_request(&plan);
    let p = &mut req.topics[0].partitions[0];
    assert!(p.last_fetched_epoch >= 0, "{p:?}");
    p.fetch_offset = 9;
    let frame = encode_request(ApiKey::Fetch, 12, 11, "broker-2", &req).unwrap();
    let reply = leader
        .broker
        .handle(&mut leader.disk, 9, parse_request(&frame).unwrap(), 50);
    let resp: FetchResponse = decode(ApiKey::Fetch, 12, reply);
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0, "{p:?}");
    assert_eq!(p.diverging_epoch.end_offset, 6, "{p:?}");
}
