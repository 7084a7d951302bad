//! The minimal client against a real simulated broker: create a topic, produce keyed records in batches
//! with Kafka's partitioner, fetch them back with every batch CRC checked; corrupt data at rest is reported,
//! never returned as valid.

use std::collections::BTreeMap;
use std::time::Duration;

use gregor::broker::{BrokerConfig, MetadataImage};
use gregor::client::{keyed_batch, Client, ClientConfig, ClientError, OffsetSpec};
use gregor::node::broker::{run_broker, BrokerNodeConfig};
use gregor::producer::partitioner::partition_for_key;
use gregor::rt;
use gregor::sim::disk::{SimDisk, SimDiskConfig};
use gregor::types::TopicPartition;
use kafka_protocol::ResponseError;

fn start_broker(disk: SimDisk) {
    let image = MetadataImage::unfenced("gregor", &[1]);
    let cfg = BrokerNodeConfig::new(BrokerConfig::new(1), image, 7);
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

fn client() -> Client {
    Client::new(vec!["10.0.0.1:9092".into()], ClientConfig::default())
}

#[madsim::test]
async fn keyed_records_produced_in_batches_are_fetched_back_in_their_partitions() {
    start_broker(SimDisk::new("broker-1", 3, SimDiskConfig::default()));
    on_client(async {
        let mut c = client();
        c.create_topic("events", 3, 1, &BTreeMap::new())
            .await
            .expect("create the topic");
        let err = c.create_topic("events", 3, 1, &BTreeMap::new()).await.unwrap_err();
        assert_eq!(err.kafka_code(), Some(ResponseError::TopicAlreadyExists), "{err}");
        let err = c.create_topic("replicated", 1, 2, &BTreeMap::new()).await.unwrap_err();
        assert_eq!(err.kafka_code(), Some(ResponseError::InvalidReplicationFactor), "{err}");

        // 60 keyed records, grouped per partition by Kafka's murmur2 partitioner, sent 5 per batch.
        let mut sent: BTreeMap<i32, Vec<(String, String)>> = BTreeMap::new();
        for i in 0..60 {
            let (key, value) = (format!("k{}", i % 17), format!("v{i}"));
            sent.entry(partition_for_key(key.as_bytes(), 3))
                .or_default()
                .push((key, value));
        }
        assert_eq!(sent.len(), 3, "17 keys spread over all 3 partitions");
        for (p, records) in &sent {
            let tp = TopicPartition::new("events", *p);
            for (n, chunk) in records.chunks(5).enumerate() {
                let pairs: Vec<(&[u8], &[u8])> = chunk.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
                let out = c
                    .produce(&tp, keyed_batch(&pairs, 1_000), 1, 30_000)
                    .await
                    .expect("produce");
                assert_eq!(out.base_offset, Some(5 * n as i64), "batches land back to back");
            }
        }
        for (p, records) in &sent {
            let tp = TopicPartition::new("events", *p);
            assert_eq!(c.list_offsets(&tp, OffsetSpec::Earliest).await.unwrap(), 0);
            assert_eq!(
                c.list_offsets(&tp, OffsetSpec::Latest).await.unwrap(),
                records.len() as i64
            );
            let f = c.fetch(&tp, 0, 1 << 20, 100, 1).await.expect("fetch");
            let got: Vec<(i64, String, String)> = f
                .records
                .iter()
                .map(|r| {
                    let text = |b: &Option<Vec<u8>>| String::from_utf8(b.clone().unwrap()).unwrap();
                    (r.offset, text(&r.key), text(&r.value))
                })
                .collect();
            let want: Vec<(i64, String, String)> = records
                .iter()
                .enumerate()
                .map(|(i, (k, v))| (i as i64, k.clone(), v.clone()))
                .collect();
            assert_eq!(got, want, "partition {p} reads back what was sent, in order");
            assert_eq!(f.high_watermark, records.len() as i64);
        }
    })
    .await;
}

#[madsim::test]
async fn a_bit_flipped_at_rest_reaches_the_client_as_a_corrupt_batch_never_as_data() {
    let disk = SimDisk::new("broker-1", 4, SimDiskConfig::default());
    start_broker(disk.clone());
    on_client(async move {
        let mut c = client();
        c.create_topic("events", 1, 1, &BTreeMap::new()).await.unwrap();
        let tp = TopicPartition::new("events", 0);
        let batch = keyed_batch(&[(b"k", b"precious")], 1_000);
        c.produce(&tp, batch, 1, 30_000).await.unwrap();
        let flipped = disk
            .flip_bit_at_rest(&|p| p.ends_with(".log"))
            .expect("a log file to corrupt");
        // Bytes 0..17 (base offset, length, partition leader epoch, magic) lie outside the CRC, as in Kafka;
        // this seed flips one inside what the CRC covers (or the CRC itself).
        assert!(flipped.1 >= 17, "the seed should flip a CRC-covered byte: {flipped:?}");
        let err = c.fetch(&tp, 0, 1 << 20, 100, 1).await.unwrap_err();
        assert!(matches!(err, ClientError::CorruptBatch { .. }), "{err}");
    })
    .await;
}
