//! The consumer facade (`KafkaConsumer`) and consumer groups in simulation: a consumer reads by `assign`
//! what a producer wrote; the group scenarios (`scenarios/group-member-crash.toml`,
//! `scenarios/coordinator-failover.toml`) pass on fixed seeds with their marks, and their histories show
//! what they are about (a group that split the partitions, a rejected stale commit).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gregor::broker::{BrokerConfig, MetadataImage};
use gregor::client::{Client, ClientConfig, ConsumerEvent, KafkaConsumer, KafkaProducer};
use gregor::history::{OpBody, OpType};
use gregor::node::broker::{run_broker, BrokerNodeConfig};
use gregor::producer::{Outcome, ProducerConfig, ProducerRecord};
use gregor::rt;
use gregor::runner;
use gregor::sim::disk::{SimDisk, SimDiskConfig};
use gregor::types::TopicPartition;

const BOOTSTRAP: &str = "10.0.0.1:9092";

fn start_broker() {
    let image = MetadataImage::unfenced("gregor", &[1]);
    let cfg = BrokerNodeConfig::new(BrokerConfig::new(1), image, 7);
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

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[madsim::test]
async fn a_consumer_reads_by_assign_every_record_a_producer_wrote_in_offset_order() {
    start_broker();
    let node = madsim::runtime::Handle::current()
        .create_node()
        .name("client-1")
        .ip("10.0.0.2".parse().unwrap())
        .build();
    node.spawn(async {
        rt::sleep(Duration::from_millis(50)).await;
        let mut admin = Client::new(vec![BOOTSTRAP.into()], ClientConfig::default());
        admin.create_topic("t", 1, 1, &BTreeMap::new()).await.expect("topic");
        let cfg = ProducerConfig::from_map(&props(&[("acks", "all"), ("linger.ms", "1")])).expect("config");
        let producer = KafkaProducer::start(vec![BOOTSTRAP.into()], cfg, "p-1", 1);
        for i in 0..50 {
            let record = ProducerRecord {
                topic: "t".into(),
                partition: None,
                key: Some(b"k".to_vec()),
                value: Some(format!("v{i}").into_bytes()),
                timestamp_ms: None,
                headers: vec![],
            };
            assert!(matches!(producer.send(record).await, Outcome::Ok { .. }));
        }
        let events = Arc::new(Mutex::new(vec![]));
        let seen = events.clone();
        let observer = Box::new(move |e: ConsumerEvent| seen.lock().unwrap().push(e));
        let config = props(&[("auto.offset.reset", "earliest"), ("max.poll.records", "20")]);
        let mut consumer = KafkaConsumer::new(vec![BOOTSTRAP.into()], &config, observer).expect("config");
        let tp = TopicPartition::new("t", 0);
        consumer.assign(std::slice::from_ref(&tp));
        let mut got = vec![];
        for _ in 0..100 {
            let records = consumer.poll(Duration::from_millis(200)).await;
            assert!(records.len() <= 20, "max.poll.records");
            got.extend(
                records
                    .into_iter()
                    .map(|r| (r.offset, String::from_utf8(r.value.unwrap()).unwrap())),
            );
            if got.len() >= 50 {
                break;
            }
        }
        let want: Vec<(i64, String)> = (0..50).map(|i| (i, format!("v{i}"))).collect();
        assert_eq!(got, want);
        assert_eq!(consumer.position(&tp).map(|p| p.offset), Some(50));
        let resets = events.lock().unwrap().clone();
        assert!(
            resets.contains(&ConsumerEvent::ResetDone {
                tp: tp.clone(),
                timestamp: -2,
                offset: Some(0)
            }),
            "auto.offset.reset=earliest: {resets:?}"
        );
        assert!(consumer.commit_sync().await.is_none(), "no group.id: nothing to commit");
    })
    .await
    .unwrap();
}

fn run(name: &str, seed: u64) -> runner::RunOutcome {
    common::run_passing(name, seed, 0)
}

/// Processes that polled records, and the generations each synced with a non-empty assignment.
fn group_facts(out: &runner::RunOutcome) -> (usize, BTreeMap<String, Vec<i32>>) {
    let mut syncs: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    let mut pollers = std::collections::BTreeSet::new();
    for op in &out.history.ops {
        match &op.body {
            OpBody::Sync {
                generation, assignment, ..
            } if op.op_type == OpType::Ok && !assignment.is_empty() => {
                syncs.entry(op.process.clone()).or_default().push(*generation);
            }
            OpBody::Poll { records, .. } if !records.is_empty() && op.process.starts_with("audit-") => {
                pollers.insert(op.process.clone());
            }
            _ => {}
        }
    }
    (pollers.len(), syncs)
}

#[test]
fn a_crashed_member_and_a_paused_member_lose_nothing_and_the_stale_commit_is_rejected() {
    for seed in [1, 2] {
        let out = run("group-member-crash", seed);
        let (pollers, syncs) = group_facts(&out);
        assert_eq!(pollers, 3, "seed {seed}: every member read records");
        assert!(
            syncs.len() >= 2,
            "seed {seed}: the group split the partitions: {syncs:?}"
        );
        let rejected = out.history.ops.iter().any(|op| {
            op.process == "audit-2" && op.op_type == OpType::Fail && matches!(op.body, OpBody::Commit { .. })
        });
        assert!(rejected, "seed {seed}: audit-2's commit after its pause failed");
    }
}

#[test]
fn members_survive_a_coordinator_crash_and_resume_from_committed_offsets() {
    for seed in [1, 2] {
        let out = run("coordinator-failover", seed);
        let (pollers, _) = group_facts(&out);
        assert_eq!(pollers, 3, "seed {seed}: every member read records");
    }
}
