//! A producer workload: keyed records at a steady rate, batched per partition, each send recorded as an
//! invoke and its outcome (ARCHITECTURE §6's table).
//!
//! | producer outcome | history type |
//! |---|---|
//! | response without error, with an offset | ok |
//! | rejected before any append (a Kafka error on the only attempt, or no connection) | fail |
//! | timeout, disconnect after the request was written | info |
//! | acks=0 | info |
//!
//! The minimal client does not retry yet (`retries` arrives with the producer issue), so a send is one
//! attempt: a duplicate can only come from a bug.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::client::{Client, ClientConfig};
use crate::history::{OpBody, OpType};
use crate::producer::partitioner::partition_for_key;
use crate::protocol::batch::BatchBuilder;
use crate::rt::{self, mpsc};
use crate::sim::recorder::Recorder;
use crate::types::TopicPartition;

/// One producer client's workload.
#[derive(Debug, Clone)]
pub struct ProducerWorkload {
    /// The process name in the history (its node's name).
    pub name: String,
    pub topic: String,
    pub partitions: i32,
    pub records_per_s: f64,
    pub key_space: u32,
    /// Stop after this many records.
    pub records: Option<u64>,
    /// Start producing at this simulated time (µs since the run started).
    pub start_at_us: u64,
    /// Stop producing new records at this simulated time (µs since the run started).
    pub stop_at_us: u64,
    pub acks: i16,
    pub linger_ms: u64,
    pub batch_size: usize,
    /// Client config by Kafka's names (`request.timeout.ms`, ...).
    pub client_config: BTreeMap<String, String>,
    pub bootstrap: Vec<String>,
    /// Seed of this workload's own RNG stream (keys).
    pub seed: u64,
}

struct Pending {
    key: String,
    value: String,
}

/// Runs the workload to completion: every invoked send has its outcome recorded when this returns.
pub async fn run(w: ProducerWorkload, rec: Recorder) {
    let mut rng = ChaCha8Rng::seed_from_u64(w.seed);
    let mut senders = BTreeMap::new();
    let mut tasks = vec![];
    for p in 0..w.partitions {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.insert(p, tx);
        let tp = TopicPartition::new(w.topic.clone(), p);
        tasks.push(rt::spawn(send_loop(w.clone(), tp, rx, rec.clone())));
    }
    let interval_us = (1e6 / w.records_per_s).max(1.0);
    let mut i: u64 = 0;
    loop {
        if w.records.is_some_and(|n| i >= n) {
            break;
        }
        let due_us = w.start_at_us + (i as f64 * interval_us) as u64;
        if due_us >= w.stop_at_us {
            break;
        }
        let now = rec.now_us();
        if due_us > now {
            rt::sleep(Duration::from_micros(due_us - now)).await;
        }
        let key = format!("k{}", rng.random_range(0..w.key_space));
        let value = format!("{}-{i}", w.name);
        let partition = partition_for_key(key.as_bytes(), w.partitions);
        let body = send_body(&w.topic, partition, &key, &value, None);
        rec.op(&w.name, OpType::Invoke, body, None);
        if let Some(tx) = senders.get(&partition) {
            // The receiver lives as long as its task, which ends only when this sender is dropped.
            let _ = tx.send(Pending { key, value });
        }
        i += 1;
    }
    drop(senders);
    for t in tasks {
        let _ = t.await;
    }
}

fn send_body(topic: &str, partition: i32, key: &str, value: &str, offset: Option<i64>) -> OpBody {
    OpBody::Send {
        topic: topic.to_string(),
        partition,
        key: key.to_string(),
        value: value.to_string(),
        offset,
    }
}

/// One partition's sender: waits `linger.ms` after the first record, sends up to `batch.size` bytes in one
/// batch, one request in flight at a time.
async fn send_loop(w: ProducerWorkload, tp: TopicPartition, mut rx: mpsc::UnboundedReceiver<Pending>, rec: Recorder) {
    let config = match ClientConfig::from_properties(&w.client_config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{}: bad client config: {e}", w.name);
            return;
        }
    };
    let mut client = Client::new(w.bootstrap.clone(), config);
    let timeout_ms = client.config().request_timeout().as_millis() as i32;
    while let Some(first) = rx.recv().await {
        if w.linger_ms > 0 {
            rt::sleep(Duration::from_millis(w.linger_ms)).await;
        }
        let mut batch = vec![first];
        let mut bytes = batch[0].key.len() + batch[0].value.len();
        while bytes < w.batch_size {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.key.len() + p.value.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let now_ms = (rec.now_us() / 1000) as i64;
        let mut builder = BatchBuilder::new(now_ms);
        for p in &batch {
            builder.push(now_ms, Some(p.key.as_bytes()), Some(p.value.as_bytes()), &[]);
        }
        rec.produce_request(true);
        let outcome = client.produce(&tp, builder.build(), w.acks, timeout_ms).await;
        rec.produce_request(false);
        for (i, p) in batch.iter().enumerate() {
            let (op_type, offset, error) = match &outcome {
                Ok(o) => match o.base_offset {
                    Some(base) => (OpType::Ok, Some(base + i as i64), None),
                    None => (OpType::Info, None, Some("acks=0: no response".to_string())),
                },
                Err(e) if e.is_indefinite() => (OpType::Info, None, Some(e.to_string())),
                Err(e) => (OpType::Fail, None, Some(e.to_string())),
            };
            rec.op(
                &w.name,
                op_type,
                send_body(&tp.topic, tp.partition, &p.key, &p.value, offset),
                error,
            );
        }
    }
}
