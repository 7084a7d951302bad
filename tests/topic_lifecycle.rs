//! Topic deletion, recreation and growth end to end: 3 controllers, 3 brokers following the quorum. The admin
//! deletes a topic (DeleteTopics forwarded to the controller, KIP-590); produce and fetch then fail with
//! UNKNOWN_TOPIC_OR_PARTITION and the brokers' disks lose its logs; the name is reused with a new topic id
//! and nobody reads the old records, also after a broker restart. CreatePartitions grows a topic 3 -> 6 and
//! a producer's new keys land on the partition murmur2 gives over 6.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::ResponseError;
use uuid::Uuid;

use gregor::broker::{BrokerConfig, MetadataImage};
use gregor::client::admin::{AdminError, NewTopic};
use gregor::client::{keyed_batch, ClientError, KafkaAdmin, KafkaProducer};
use gregor::node::broker::{run_broker, BrokerNodeConfig, ControllerLinkConfig};
use gregor::producer::config::ProducerConfig;
use gregor::producer::outcome::Outcome;
use gregor::producer::partitioner::partition_for_key;
use gregor::producer::sender::ProducerRecord;
use gregor::rt;
use gregor::sim::disk::{SimDisk, SimDiskConfig};
use gregor::sim::{broker_ip, BROKER_PORT};
use gregor::types::TopicPartition;

#[path = "common/quorum.rs"]
mod quorum;
use quorum::{start_controllers, voters};

/// Starts the quorum and 3 brokers; returns each broker's node id and disk.
fn start_cluster() -> Vec<(String, SimDisk)> {
    let handle = madsim::runtime::Handle::current();
    start_controllers(&handle);
    let mut out = vec![];
    for id in 1..=3 {
        let disk = SimDisk::new(&format!("broker-{id}"), 10 + id as u64, SimDiskConfig::default());
        let node_disk = disk.clone();
        handle
            .create_node()
            .name(format!("broker-{id}"))
            .ip(broker_ip(id))
            .init(move || {
                let mut cfg = BrokerNodeConfig::new(BrokerConfig::new(id), MetadataImage::default(), 200 + id as u64);
                cfg.node_name = format!("broker-{id}");
                cfg.controllers = Some(ControllerLinkConfig {
                    controllers: voters(),
                    cluster_id: "gregor".into(),
                    advertised_host: broker_ip(id).to_string(),
                    advertised_port: BROKER_PORT,
                    incarnation_id: Uuid::from_u128(rand::random::<u128>()),
                });
                let disk = node_disk.clone();
                async move {
                    run_broker(cfg, Box::new(disk)).await;
                }
            })
            .build();
        out.push((format!("broker-{id}"), disk));
    }
    out
}

fn bootstrap() -> Vec<String> {
    (1..=3).map(|id| format!("{}:{BROKER_PORT}", broker_ip(id))).collect()
}

fn client_node(name: &str, n: u8) -> madsim::runtime::NodeHandle {
    madsim::runtime::Handle::current()
        .create_node()
        .name(name)
        .ip(std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 2, n)))
        .build()
}

fn admin() -> KafkaAdmin {
    let props = BTreeMap::from([("default.api.timeout.ms".to_string(), "10000".to_string())]);
    KafkaAdmin::new(bootstrap(), &props)
}

/// Creates `topic` (retrying until the brokers registered) and waits for every partition's leader.
async fn create_and_wait(admin: &mut KafkaAdmin, topic: &str, partitions: i32) -> Uuid {
    let mut id = Uuid::nil();
    for _ in 0..100 {
        match admin.create_topic(&NewTopic::new(topic, partitions, 3)).await {
            Ok(created) => {
                id = created.topic_id;
                break;
            }
            Err(AdminError::CreateTopic {
                code: ResponseError::InvalidReplicationFactor,
                ..
            }) => rt::sleep(Duration::from_millis(500)).await,
            Err(e) => panic!("{e}"),
        }
    }
    wait_for_leaders(admin, topic, partitions).await;
    id
}

async fn wait_for_leaders(admin: &mut KafkaAdmin, topic: &str, partitions: i32) {
    for _ in 0..100 {
        if let Ok(d) = admin.describe_topics(&[topic]).await {
            let t = &d[topic];
            if t.partitions.len() == partitions as usize && t.partitions.iter().all(|p| p.leader.is_some()) {
                return;
            }
        }
        rt::sleep(Duration::from_millis(200)).await;
    }
    panic!("{topic} never had {partitions} partitions with leaders");
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
