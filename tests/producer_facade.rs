//! Simulation tests of the producer facade (`KafkaProducer`) against a real broker node (the node shell over the broker core,
//! on a simulated disk), with our own response faults to force retries.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gregor::broker::{BrokerConfig, MetadataImage};
use gregor::client::{Client, ClientConfig, KafkaProducer};
use gregor::node::broker::{run_broker, BrokerNodeConfig, ResponseAction, ResponseFaults, ResponseHook};
use gregor::producer::partitioner::partition_for_key;
use gregor::producer::{Outcome, ProducerConfig, ProducerRecord};
use gregor::rt;
use gregor::sim::disk::{SimDisk, SimDiskConfig};
use gregor::types::TopicPartition;
use kafka_protocol::messages::ApiKey;

const BOOTSTRAP: &str = "10.0.0.1:9092";

/// Drops the n-th Produce response (1-based) after the broker did the work.
struct DropNthProduceResponse {
    nth: u32,
    seen: AtomicU32,
}

impl ResponseFaults for DropNthProduceResponse {
    fn on_response(&self, api_key: i16) -> ResponseAction {
        if api_key != ApiKey::Produce as i16 {
            return ResponseAction::Deliver;
        }
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.nth {
            ResponseAction::Drop
        } else {
            ResponseAction::Deliver
        }
    }
}

fn start_broker(faults: Option<Arc<dyn ResponseFaults>>) {
    let image = MetadataImage::unfenced("gregor", &[1]);
    let mut cfg = BrokerNodeConfig::new(BrokerConfig::new(1), image, 7);
    cfg.response_faults = faults.map(ResponseHook);
    let disk = SimDisk::new("broker-1", 3, SimDiskConfig::default());
    madsim::runtime::Handle::current()
        .create_node()
        .name("broker-1")
        .ip("10.0.0.1".parse().unwrap())
        .init(move || {
            let (cfg, disk) = (cfg.clone(), disk.clone());
            async move {
                run_broker(cfg, Box::new(disk)).await;
            }
        })
        .build();
}

async fn on_client<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
    let node = madsim::runtime::Handle::current()
        .create_node()
        .name("client-1")
        .ip("10.0.0.2".parse().unwrap())
        .build();
    node.spawn(async move {
        rt::sleep(Duration::from_millis(50)).await;
        f.await
    })
    .await
    .unwrap();
}

fn config(pairs: &[(&str, &str)]) -> ProducerConfig {
    let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ProducerConfig::from_map(&map).expect("valid producer config")
}

fn record(topic: &str, key: &str, value: &str) -> ProducerRecord {
    ProducerRecord {
        topic: topic.into(),
        partition: None,
        key: Some(key.as_bytes().to_vec()),
        value: Some(value.as_bytes().to_vec()),
        timestamp_ms: None,
        headers: vec![],
    }
}

/// Every value in `tp`'s log, in offset order.
async fn read_all(c: &mut Client, tp: &TopicPartition) -> Vec<(i64, String)> {
    let f = c.fetch(tp, 0, 1 << 20, 100, 1).await.expect("fetch");
    f.records
        .iter()
        .map(|r| {
            (
                r.offset,
                String::from_utf8(r.value.clone().unwrap_or_default()).unwrap(),
            )
        })
        .collect()
}

#[madsim::test]
async fn a_producer_without_idempotence_and_acks_1_gets_every_record_acked_at_dense_offsets() {
    start_broker(None);
    on_client(async {
        let mut admin = Client::new(vec![BOOTSTRAP.into()], ClientConfig::default());
        admin.create_topic("t", 3, 1, &BTreeMap::new()).await.expect("topic");
        let cfg = config(&[("acks", "1"), ("enable.idempotence", "false"), ("linger.ms", "5")]);
        let producer = KafkaProducer::start(vec![BOOTSTRAP.into()], cfg, "p-1", 42);
        // Pipelined: every send is queued before any outcome is awaited.
        let handles: Vec<_> = (0..300)
            .map(|i| {
                let key = format!("k{}", i % 23);
                (key.clone(), producer.send(record("t", &key, &format!("v{i}"))))
            })
            .collect();
        let mut acked: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for (key, h) in handles {
            match h.await {
                Outcome::Ok { partition, offset } => {
                    assert_eq!(
                        partition.partition,
                        partition_for_key(key.as_bytes(), 3),
                        "murmur2 of {key}"
                    );
                    acked.entry(partition.partition).or_default().push(offset);
                }
                other => panic!("send of {key} ended {other:?}"),
            }
        }
        producer.close().await;
        assert_eq!(acked.len(), 3, "23 keys reach every partition");
        for (p, offsets) in &acked {
            let want: Vec<i64> = (0..offsets.len() as i64).collect();
            assert_eq!(
                offsets, &want,
                "partition {p}: acked offsets are dense and in send order"
            );
            let log = read_all(&mut admin, &TopicPartition::new("t", *p)).await;
            assert_eq!(log.len(), offsets.len(), "partition {p}: each record once");
        }
    })
    .await;
}

#[madsim::test]
async fn a_dropped_produce_response_is_retried_and_without_idempotence_the_record_lands_twice() {
    let faults = DropNthProduceResponse {
        nth: 1,
        seen: AtomicU32::new(0),
    };
    start_broker(Some(Arc::new(faults)));
    on_client(async {
        let mut admin = Client::new(vec![BOOTSTRAP.into()], ClientConfig::default());
        admin.create_topic("t", 1, 1, &BTreeMap::new()).await.expect("topic");
        let cfg = config(&[
            ("acks", "1"),
            ("enable.idempotence", "false"),
            ("request.timeout.ms", "1000"),
            ("linger.ms", "0"),
        ]);
        let producer = KafkaProducer::start(vec![BOOTSTRAP.into()], cfg, "p-1", 42);
        let outcome = producer.send(record("t", "k", "only")).await;
        producer.close().await;
        // The first attempt was appended at 0 and its answer lost; the request timed out, the connection
        // closed, and the retry was appended again at 1: legal Kafka without idempotence.
        assert_eq!(
            outcome,
            Outcome::Ok {
                partition: TopicPartition::new("t", 0),
                offset: 1
            }
        );
        let log = read_all(&mut admin, &TopicPartition::new("t", 0)).await;
        assert_eq!(log, vec![(0, "only".to_string()), (1, "only".to_string())]);
    })
    .await;
}

/// Pending the broker's producer state (InitProducerId and sequence checks, branch `pstate`): until the
/// broker serves InitProducerId, an idempotent producer never gets an id and its sends expire.
#[madsim::test]
async fn with_idempotence_a_dropped_produce_response_is_retried_and_the_record_lands_once() {
    let faults = DropNthProduceResponse {
        nth: 1,
        seen: AtomicU32::new(0),
    };
    start_broker(Some(Arc::new(faults)));
    on_client(async {
        let mut admin = Client::new(vec![BOOTSTRAP.into()], ClientConfig::default());
        admin.create_topic("t", 1, 1, &BTreeMap::new()).await.expect("topic");
        let cfg = config(&[("acks", "all"), ("request.timeout.ms", "1000"), ("linger.ms", "0")]);
        assert!(cfg.enable_idempotence, "Kafka 3.0+ default with acks=all");
        let producer = KafkaProducer::start(vec![BOOTSTRAP.into()], cfg, "p-1", 42);
        let first = producer.send(record("t", "k", "first")).await;
        let second = producer.send(record("t", "k", "second")).await;
        producer.close().await;
        // The retry carries the same producer id, epoch and sequence: the broker answers it as a duplicate
        // with the original offset.
        let tp = TopicPartition::new("t", 0);
        assert_eq!(
            first,
            Outcome::Ok {
                partition: tp.clone(),
                offset: 0
            }
        );
        assert_eq!(
            second,
            Outcome::Ok {
                partition: tp.clone(),
                offset: 1
            }
        );
        let log = read_all(&mut admin, &tp).await;
        assert_eq!(log, vec![(0, "first".to_string()), (1, "second".to_string())]);
    })
    .await;
}
