//! Topic deletion, recreation and growth end to end: 3 controllers, 3 brokers following the quorum. The admin
//! deletes a topic (DeleteTopics forwarded to the controller, KIP-590); produce and fetch then fail with
//! UNKNOWN_TOPIC_OR_PARTITION and the brokers' disks lose its logs; the name is reused with a new topic id
//! and nobody reads the old records, also after a broker restart. CreatePartitions grows a topic 3 -> 6 and
//! a producer's new keys land on the partition murmur2 gives over 6. A group's committed offsets of a
//! deleted topic are tombstoned by its coordinator (`onPartitionsDeleted`): gone for OffsetFetch, for the
//! recreated topic, and for the coordinator that takes over after a crash.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{FindCoordinatorRequest, GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use gregor::client::admin::AdminError;
use gregor::client::{keyed_batch, ClientError, KafkaAdmin, KafkaProducer};
use gregor::producer::config::ProducerConfig;
use gregor::producer::outcome::Outcome;
use gregor::producer::partitioner::partition_for_key;
use gregor::producer::sender::ProducerRecord;
use gregor::rt;
use gregor::sim::disk::SimDisk;
use gregor::types::TopicPartition;

#[path = "common/quorum.rs"]
mod quorum;
use quorum::{bootstrap, client_node, create_and_wait, wait_for_leaders};

/// The quorum and 3 brokers (`__consumer_offsets` with 3 partitions); each broker's name and disk.
fn start_cluster() -> Vec<(String, SimDisk)> {
    quorum::start_cluster(|c| c.offsets_topic_num_partitions = 3)
}

fn admin() -> KafkaAdmin {
    let props = BTreeMap::from([("default.api.timeout.ms".to_string(), "10000".to_string())]);
    KafkaAdmin::new(bootstrap(), &props)
}

async fn produce(admin: &mut KafkaAdmin, tp: &TopicPartition, values: &[String]) {
    let records: Vec<(&[u8], &[u8])> = values.iter().map(|v| (&b"k"[..], v.as_bytes())).collect();
    for _ in 0..50 {
        if admin
            .client()
            .produce(tp, keyed_batch(&records, 1), -1, 5_000)
            .await
            .is_ok()
        {
            return;
        }
        rt::sleep(Duration::from_millis(200)).await;
    }
    panic!("could not produce to {tp}");
}

/// Every value in `tp` from offset 0 up to its high watermark, read from its leader.
async fn read_all(admin: &mut KafkaAdmin, tp: &TopicPartition) -> Vec<String> {
    let mut out = vec![];
    let mut offset = 0;
    for _ in 0..100 {
        match admin.client().fetch(tp, offset, 1 << 20, 0, 0).await {
            Ok(f) => {
                for r in &f.records {
                    out.push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned());
                }
                offset = f.next_fetch_offset;
                if offset >= f.high_watermark {
                    return out;
                }
            }
            Err(_) => rt::sleep(Duration::from_millis(200)).await,
        }
    }
    panic!("could not read {tp}");
}

fn files_of(disks: &[(String, SimDisk)], topic: &str) -> Vec<String> {
    let prefix = format!("{topic}-");
    disks
        .iter()
        .flat_map(|(_, d)| d.files())
        .map(|(path, _)| path)
        .filter(|p| p.starts_with(&prefix))
        .collect()
}

#[madsim::test]
async fn a_deleted_topic_is_gone_from_every_broker_and_its_recreation_never_serves_old_records() {
    let disks = start_cluster();
    let broker_1 = disks[0].0.clone();
    let check_disks = disks.clone();
    client_node("admin", 1)
        .spawn(async move {
            rt::sleep(Duration::from_secs(2)).await;
            let mut admin = admin();
            let old_id = create_and_wait(&mut admin, "events", 3).await;
            let old: Vec<String> = (0..10).map(|i| format!("old-{i}")).collect();
            for p in 0..3 {
                produce(&mut admin, &TopicPartition::new("events", p), &old).await;
            }
            assert!(!files_of(&check_disks, "events").is_empty());

            let deleted = admin.delete_topics(&["events"]).await;
            assert!(deleted["events"].is_ok(), "{:?}", deleted["events"]);
            let again = admin.delete_topics(&["events"]).await;
            assert!(
                matches!(&again["events"], Err(AdminError::DeleteTopic { topic, code: ResponseError::UnknownTopicOrPartition, .. }) if topic == "events"),
                "{:?}",
                again["events"]
            );
            // The brokers apply the RemoveTopic record from the metadata log.
            for _ in 0..100 {
                if files_of(&check_disks, "events").is_empty() {
                    break;
                }
                rt::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(files_of(&check_disks, "events"), Vec::<String>::new());
            let tp0 = TopicPartition::new("events", 0);
            let produced = admin.client().produce(&tp0, keyed_batch(&[(b"k", b"late")], 1), -1, 1_000).await;
            assert!(
                matches!(produced, Err(ClientError::Kafka { code: ResponseError::UnknownTopicOrPartition, .. })),
                "{produced:?}"
            );
            let fetched = admin.client().fetch(&tp0, 0, 1 << 20, 0, 0).await;
            assert!(fetched.is_err(), "{:?}", fetched.map(|f| f.records.len()));

            let new_id = create_and_wait(&mut admin, "events", 3).await;
            assert_ne!(new_id, old_id, "a recreated topic has a new topic id (KIP-516)");
            let fresh: Vec<String> = (0..3).map(|i| format!("new-{i}")).collect();
            produce(&mut admin, &tp0, &fresh).await;
            for p in 0..3 {
                let read = read_all(&mut admin, &TopicPartition::new("events", p)).await;
                assert!(read.iter().all(|v| v.starts_with("new-")), "partition {p}: {read:?}");
            }
            assert_eq!(read_all(&mut admin, &tp0).await, fresh);
        })
        .await
        .unwrap();

    // A broker restart loads the new topic's logs only.
    let handle = madsim::runtime::Handle::current();
    handle.kill(broker_1.as_str());
    handle.restart(broker_1.as_str());
    client_node("reader", 2)
        .spawn(async move {
            rt::sleep(Duration::from_secs(15)).await;
            let mut admin = admin();
            wait_for_leaders(&mut admin, "events", 3).await;
            let d = admin.describe_topics(&["events"]).await.unwrap();
            assert_eq!(d["events"].partitions.len(), 3);
            for p in 0..3 {
                let read = read_all(&mut admin, &TopicPartition::new("events", p)).await;
                assert!(
                    read.iter().all(|v| v.starts_with("new-")),
                    "after a restart, partition {p}: {read:?}"
                );
            }
        })
        .await
        .unwrap();
    let on_disk = files_of(&disks, "events");
    assert!(!on_disk.is_empty());
    for (_, d) in &disks {
        for (path, _) in d.files().into_iter().filter(|(p, _)| p.ends_with("partition.metadata")) {
            if path.starts_with("events-") {
                let text = String::from_utf8(d.read_file(&path).unwrap()).unwrap();
                assert!(!text.is_empty(), "{path}");
            }
        }
    }
}

#[madsim::test]
async fn create_partitions_grows_a_topic_and_new_keys_hash_over_the_new_count() {
    start_cluster();
    client_node("admin", 1)
        .spawn(async {
            rt::sleep(Duration::from_secs(2)).await;
            let mut admin = admin();
            create_and_wait(&mut admin, "orders", 3).await;
            let mut config = ProducerConfig::default();
            config.metadata_max_age_ms = 1_000;
            let producer = KafkaProducer::start(bootstrap(), config, "keyed", 7);
            let send = |key: String| {
                producer.send(ProducerRecord {
                    topic: "orders".into(),
                    partition: None,
                    key: Some(key.into_bytes()),
                    value: Some(b"v".to_vec()),
                    timestamp_ms: None,
                    headers: vec![],
                })
            };
            for i in 0..6 {
                let key = format!("key-{i}");
                match send(key.clone()).await {
                    Outcome::Ok { partition, .. } => {
                        assert_eq!(partition.partition, partition_for_key(key.as_bytes(), 3), "{key}")
                    }
                    other => panic!("{key}: {other:?}"),
                }
            }

            let grown = admin.create_partitions(&BTreeMap::from([("orders".to_string(), 6)])).await;
            assert!(grown["orders"].is_ok(), "{:?}", grown["orders"]);
            let shrink = admin.create_partitions(&BTreeMap::from([("orders".to_string(), 4)])).await;
            assert!(
                matches!(&shrink["orders"], Err(AdminError::CreatePartitions { topic, code: ResponseError::InvalidPartitions, .. }) if topic == "orders"),
                "{:?}",
                shrink["orders"]
            );
            wait_for_leaders(&mut admin, "orders", 6).await;
            rt::sleep(Duration::from_secs(2)).await; // past metadata.max.age.ms: the producer refreshes
            let mut on_new = 0;
            for i in 0..40 {
                let key = format!("key-{i}");
                match send(key.clone()).await {
                    Outcome::Ok { partition, .. } => {
                        assert_eq!(partition.partition, partition_for_key(key.as_bytes(), 6), "{key}");
                        on_new += usize::from(partition.partition >= 3);
                    }
                    other => panic!("{key}: {other:?}"),
                }
            }
            assert!(on_new > 0, "some keys land on the new partitions");
            producer.close().await;
        })
        .await
        .unwrap();
}

const GROUP: &str = "offsets-of-deleted";

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

/// The group's coordinator as (node id, `host:port`), asking until one is named.
async fn coordinator(admin: &mut KafkaAdmin) -> (i32, String) {
    let req = FindCoordinatorRequest::default().with_coordinator_keys(vec![s(GROUP)]);
    for _ in 0..300 {
        if let Ok((_, r)) = admin.client().request_any(&req).await {
            if let Some(c) = r.coordinators.first().filter(|c| c.error_code == 0 && c.node_id.0 >= 0) {
                return (c.node_id.0, format!("{}:{}", c.host.as_str(), c.port));
            }
        }
        rt::sleep(Duration::from_millis(200)).await;
    }
    panic!("no coordinator for {GROUP}");
}

/// A simple commit (generation -1, no member: the group does not use group management) of `offsets`,
/// retried until the coordinator accepts every partition.
async fn commit(admin: &mut KafkaAdmin, offsets: &[(&str, i32, i64)]) {
    let topics = offsets
        .iter()
        .map(|(t, p, o)| {
            let part = OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o)
                .with_committed_leader_epoch(-1);
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(t)))
                .with_partitions(vec![part])
        })
        .collect();
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(topics);
    for _ in 0..50 {
        let (_, addr) = coordinator(admin).await;
        if let Ok(r) = admin.client().request_at(&addr, &req, Duration::from_secs(5)).await {
            if r.topics.iter().flat_map(|t| &t.partitions).all(|p| p.error_code == 0) {
                return;
            }
        }
        rt::sleep(Duration::from_millis(200)).await;
    }
    panic!("could not commit {offsets:?}");
}

/// The committed offsets of `tps` (-1: none) as coordinator `addr` answers OffsetFetch; `None` if it is not
/// (or not yet) the coordinator or does not answer.
async fn committed(admin: &mut KafkaAdmin, addr: &str, tps: &[TopicPartition]) -> Option<Vec<i64>> {
    let topics = tps
        .iter()
        .map(|tp| {
            kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopics::default()
                .with_name(TopicName(s(&tp.topic)))
                .with_partition_indexes(vec![tp.partition])
        })
        .collect();
    let g = OffsetFetchRequestGroup::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_topics(Some(topics));
    let req = OffsetFetchRequest::default().with_groups(vec![g]);
    let r = admin
        .client()
        .request_at(addr, &req, Duration::from_secs(5))
        .await
        .ok()?;
    let g = r.groups.first().filter(|g| g.error_code == 0)?;
    let found: BTreeMap<TopicPartition, i64> = g
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    TopicPartition::new(t.name.0.as_str(), p.partition_index),
                    p.committed_offset,
                )
            })
        })
        .collect();
    Some(tps.iter().map(|tp| found.get(tp).copied().unwrap_or(-1)).collect())
}

/// Polls the current coordinator until its committed offsets of `tps` equal `want`.
async fn await_committed(admin: &mut KafkaAdmin, tps: &[TopicPartition], want: &[i64]) -> i32 {
    let mut last = None;
    for _ in 0..150 {
        let (id, addr) = coordinator(admin).await;
        last = committed(admin, &addr, tps).await;
        if last.as_deref() == Some(want) {
            return id;
        }
        rt::sleep(Duration::from_millis(200)).await;
    }
    panic!("committed offsets of {tps:?} stayed {last:?}, want {want:?}");
}

#[madsim::test]
async fn committed_offsets_of_a_deleted_topic_are_gone_also_after_recreation_and_coordinator_failover() {
    start_cluster();
    let events: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new("events", p)).collect();
    let kept = vec![TopicPartition::new("kept", 0)];
    let admin_node = client_node("admin", 1);
    let first_coordinator = admin_node
        .spawn({
            let (events, kept) = (events.clone(), kept.clone());
            async move {
                rt::sleep(Duration::from_secs(2)).await;
                let mut admin = admin();
                create_and_wait(&mut admin, "events", 3).await;
                create_and_wait(&mut admin, "kept", 1).await;
                commit(
                    &mut admin,
                    &[("events", 0, 5), ("events", 1, 6), ("events", 2, 7), ("kept", 0, 11)],
                )
                .await;
                await_committed(&mut admin, &events, &[5, 6, 7]).await;

                let deleted = admin.delete_topics(&["events"]).await;
                assert!(deleted["events"].is_ok(), "{:?}", deleted["events"]);
                let c = await_committed(&mut admin, &events, &[-1, -1, -1]).await;
                await_committed(&mut admin, &kept, &[11]).await;

                create_and_wait(&mut admin, "events", 3).await;
                await_committed(&mut admin, &events, &[-1, -1, -1]).await;
                c
            }
        })
        .await
        .unwrap();

    // The coordinator's broker crashes: a new one loads the offsets partition from its replica, where the
    // tombstones sit after the commits.
    let handle = madsim::runtime::Handle::current();
    handle.kill(format!("broker-{first_coordinator}").as_str());
    client_node("reader", 2)
        .spawn(async move {
            let mut admin = admin();
            for _ in 0..300 {
                let (id, addr) = coordinator(&mut admin).await;
                if id != first_coordinator && committed(&mut admin, &addr, &kept).await == Some(vec![11]) {
                    let after = committed(&mut admin, &addr, &events).await;
                    assert_eq!(after, Some(vec![-1, -1, -1]), "the tombstones were replayed on load");
                    return;
                }
                rt::sleep(Duration::from_millis(200)).await;
            }
            panic!("no new coordinator took over {GROUP}");
        })
        .await
        .unwrap();
}
