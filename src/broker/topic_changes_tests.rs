//! Topic deletion and recreation on the broker (the RemoveTopic record arriving in a new image), and the
//! KIP-937 timestamp bounds on produce.

use std::collections::BTreeMap;

use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, FetchResponse};
use uuid::Uuid;

use super::tests::{batch, broker, call, decode, fetch, image, produce, produce_codes};
use super::*;
use crate::log::checkpoint::RECOVERY_POINT_CHECKPOINT;
use crate::log::Disk;
use crate::protocol::errors::code;

fn orders_0() -> TopicPartition {
    TopicPartition::new("orders", 0)
}

fn without_orders() -> MetadataImage {
    let mut img = image(&[1, 2]);
    img.topics.remove("orders");
    img
}

fn recreated(id: u128) -> MetadataImage {
    let mut img = image(&[1, 2]);
    img.topics.get_mut("orders").unwrap().topic_id = Uuid::from_u128(id);
    img
}

fn read(disk: &mut dyn Disk, path: &str) -> String {
    let len = disk.len(path).unwrap() as usize;
    String::from_utf8(disk.read_at(path, 0, len).unwrap()).unwrap()
}

#[test]
fn a_deleted_topics_log_leaves_the_disk_and_produce_and_fetch_get_unknown_topic() {
    let mut b = broker(&[1, 2]);
    let r = call(&mut b, ApiKey::Produce, 11, &produce(0, batch(&[b"a", b"b"], 5), 1), 10);
    assert_eq!(produce_codes(r), vec![(0, 0)]);
    b.broker.checkpoint(&mut b.disk).unwrap();
    assert!(read(&mut b.disk, RECOVERY_POINT_CHECKPOINT).contains("orders 0"));

    b.broker.apply_image(&mut b.disk, without_orders(), 20).unwrap();
    assert!(b.broker.logs().get(&orders_0()).is_none());
    assert!(!b.disk.exists("orders-0"), "{:?}", b.disk.list("").unwrap());
    assert!(!read(&mut b.disk, RECOVERY_POINT_CHECKPOINT).contains("orders 0"));
    assert!(b.broker.take_marks().contains(&TOPIC_LOG_DELETED_MARK));

    let r = call(&mut b, ApiKey::Produce, 11, &produce(0, batch(&[b"c"], 5), 1), 30);
    assert_eq!(produce_codes(r)[0].0, code::UNKNOWN_TOPIC_OR_PARTITION);
    let resp: FetchResponse = decode(ApiKey::Fetch, 12, call(&mut b, ApiKey::Fetch, 12, &fetch(0, 0, 0), 30));
    assert_eq!(
        resp.responses[0].partitions[0].error_code,
        code::UNKNOWN_TOPIC_OR_PARTITION
    );
}

#[test]
fn a_topic_recreated_under_a_new_id_starts_from_an_empty_log() {
    let mut b = broker(&[1, 2]);
    let r = call(&mut b, ApiKey::Produce, 11, &produce(0, batch(&[b"old"], 5), 1), 10);
    assert_eq!(produce_codes(r), vec![(0, 0)]);
    b.broker.apply_image(&mut b.disk, recreated(9), 20).unwrap();
    let log = b.broker.logs().get(&orders_0()).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.topic_id(), Some(Uuid::from_u128(9).to_string().as_str()));
    assert!(read(&mut b.disk, "orders-0/partition.metadata").contains(&Uuid::from_u128(9).to_string()));
    let r = call(&mut b, ApiKey::Produce, 11, &produce(0, batch(&[b"new"], 5), 1), 30);
    assert_eq!(produce_codes(r), vec![(0, 0)], "the new topic's first offset is 0");
}

#[test]
fn a_restarted_broker_deletes_a_half_deleted_dir_of_the_old_topic_instead_of_serving_it() {
    let mut b = broker(&[1, 2]);
    call(&mut b, ApiKey::Produce, 11, &produce(0, batch(&[b"old"], 5), 1), 10);
    b.broker.shutdown(&mut b.disk).unwrap();
    // A deletion cut short after the data files went: only the old partition.metadata is left.
    for f in b.disk.list("orders-0").unwrap() {
        if f != "partition.metadata" {
            b.disk.remove(&format!("orders-0/{f}")).unwrap();
        }
    }
    let mut disk = b.disk;
    let (mut restarted, _) = Broker::new(BrokerConfig::new(1), MetadataImage::default(), &mut disk, 40, 1).unwrap();
    restarted.apply_image(&mut disk, recreated(9), 50).unwrap();
    let log = restarted.logs().get(&orders_0()).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.topic_id(), Some(Uuid::from_u128(9).to_string().as_str()));
}

#[test]
fn a_static_image_broker_refuses_delete_topics_naming_the_topic() {
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    let mut b = broker(&[1]);
    let t = DeleteTopicState::default().with_name(Some(kafka_protocol::messages::TopicName("orders".into())));
    let req = DeleteTopicsRequest::default().with_topics(vec![t]);
    let resp: DeleteTopicsResponse = decode(ApiKey::DeleteTopics, 6, call(&mut b, ApiKey::DeleteTopics, 6, &req, 0));
    assert_eq!(resp.responses[0].error_code, code::INVALID_REQUEST);
    assert!(resp.responses[0]
        .error_message
        .as_deref()
        .unwrap()
        .contains("topic orders"));
    assert!(b.broker.logs().get(&orders_0()).is_some());
}

fn with_topic_configs(configs: &[(&str, &str)]) -> super::tests::Fx {
    let mut b = broker(&[1, 2]);
    let mut img = image(&[1, 2]);
    img.topics.get_mut("orders").unwrap().configs = configs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>();
    b.broker.apply_image(&mut b.disk, img, 0).unwrap();
    b
}

#[test]
fn create_time_records_outside_the_timestamp_bounds_get_invalid_timestamp() {
    let mut b = with_topic_configs(&[
        ("message.timestamp.before.max.ms", "1000"),
        ("message.timestamp.after.max.ms", "500"),
    ]);
    let now = 100_000;
    let send = |b: &mut super::tests::Fx, ts: i64| {
        produce_codes(call(b, ApiKey::Produce, 11, &produce(0, batch(&[b"v"], ts), 1), now))[0]
    };
    assert_eq!(send(&mut b, now - 1_001).0, code::INVALID_TIMESTAMP);
    assert_eq!(send(&mut b, now + 501).0, code::INVALID_TIMESTAMP);
    assert_eq!(send(&mut b, now - 1_000), (0, 0));
    assert_eq!(send(&mut b, now + 500), (0, 1));
    assert_eq!(b.broker.logs().get(&orders_0()).unwrap().log_end_offset(), 2);
}

#[test]
fn log_append_time_ignores_the_timestamp_bounds_and_the_broker_default_applies() {
    let mut b = with_topic_configs(&[
        ("message.timestamp.type", "LogAppendTime"),
        ("message.timestamp.difference.max.ms", "10"),
    ]);
    let r = call(&mut b, ApiKey::Produce, 11, &produce(0, batch(&[b"v"], 1), 1), 100_000);
    assert_eq!(produce_codes(r), vec![(0, 0)]);

    let props = |key: &str, ms: i64| {
        BTreeMap::from([
            ("node.id".to_string(), toml::Value::Integer(1)),
            (key.to_string(), toml::Value::Integer(ms)),
        ])
    };
    let config = BrokerConfig::from_map(&props("log.message.timestamp.difference.max.ms", 10)).unwrap();
    assert_eq!(config.log_message_timestamp_difference_max_ms, 10);
    let mut disk = crate::log::mem_disk::MemDisk::new();
    let (broker, _) = Broker::new(config, image(&[1, 2]), &mut disk, 0, 1).unwrap();
    let mut b = super::tests::Fx { broker, disk };
    let r = call(&mut b, ApiKey::Produce, 11, &produce(0, batch(&[b"v"], 1), 1), 100_000);
    assert_eq!(produce_codes(r)[0].0, code::INVALID_TIMESTAMP);
    assert!(BrokerConfig::from_map(&props("log.message.timestamp.after.max.ms", -1)).is_err());
}
