//! A producer workload: keyed records at a steady rate through a [`KafkaProducer`] (which partitions by
//! murmur2 of the key, batches, retries and, with `enable.idempotence`, sequences), each send recorded as an
//! invoke and its outcome. The outcome table (ARCHITECTURE §6) is decided by the producer core
//! ([`crate::producer::outcome::final_outcome`]):
//!
//! | producer outcome | history type |
//! |---|---|
//! | response without error, with an offset | ok (with the partition and offset) |
//! | rejected before any append on every attempt, or never sent before `delivery.timeout.ms` | fail |
//! | some attempt may have landed (timeout, disconnect, `NOT_ENOUGH_REPLICAS_AFTER_APPEND`, ...) | info |
//! | acks=0 | info |
//!
//! With retries on and idempotence off, a retried batch that had landed is written twice: duplicates (and,
//! with several requests in flight, reordering) are then correct Kafka behaviour.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::client::{KafkaProducer, WireHook};
use crate::history::{OpBody, OpType, TOMBSTONE_VALUE_HEADER};
use crate::producer::outcome::{Failure, InfoReason, Outcome};
use crate::producer::partitioner::partition_for_key;
use crate::producer::{ProducerConfig, ProducerConfigError, ProducerRecord};
use crate::rt::{self, mpsc};
use crate::sim::recorder::Recorder;

/// One producer client's workload.
#[derive(Debug, Clone)]
pub struct ProducerWorkload {
    /// The process name in the history (its node's name).
    pub name: String,
    pub topic: String,
    pub partitions: i32,
    pub records_per_s: f64,
    pub key_space: u32,
    /// The fraction of sends that are tombstones (a null value, Kafka's delete marker on a compacted topic)
    /// for a key this producer wrote a value for before; 0 writes none (and draws nothing for them).
    pub tombstone_rate: f64,
    /// Stop after this many records.
    pub records: Option<u64>,
    /// Start producing at this simulated time (µs since the run started).
    pub start_at_us: u64,
    /// Stop producing new records at this simulated time (µs since the run started).
    pub stop_at_us: u64,
    /// `acks`, used when `client_config` does not set it.
    pub acks: i16,
    /// `linger.ms`, used when `client_config` does not set it.
    pub linger_ms: u64,
    /// `batch.size`, used when `client_config` does not set it.
    pub batch_size: usize,
    /// The producer's config by Kafka's names (`acks`, `enable.idempotence`, `retries`, `linger.ms`,
    /// `batch.size`, `max.in.flight.requests.per.connection`, `delivery.timeout.ms`, `request.timeout.ms`,
    /// `retry.backoff.ms`, `max.block.ms`).
    pub client_config: BTreeMap<String, String>,
    pub bootstrap: Vec<String>,
    /// Seed of this workload's own RNG stream (keys, and the producer core's RNG).
    pub seed: u64,
}

impl ProducerWorkload {
    /// The producer's configuration: `client_config`, with `acks`, `linger.ms` and `batch.size` taken from
    /// the fields where the map lacks them. A bad or inconsistent setting (KIP-679: `enable.idempotence=true`
    /// with `acks=1`) is an error naming the key.
    pub fn producer_config(&self) -> Result<ProducerConfig, ProducerConfigError> {
        let mut props = self.client_config.clone();
        let acks = match self.acks {
            -1 => "all".to_string(),
            n => n.to_string(),
        };
        props.entry("acks".into()).or_insert(acks);
        props.entry("linger.ms".into()).or_insert(self.linger_ms.to_string());
        props.entry("batch.size".into()).or_insert(self.batch_size.to_string());
        ProducerConfig::from_map(&props)
    }
}

/// Runs the workload to completion: every invoked send has its outcome recorded when this returns. A bad
/// config is an error before anything is sent (the scenario validator rejects it earlier).
pub async fn run(w: ProducerWorkload, rec: Recorder) {
    if let Err(e) = try_run(w.clone(), rec).await {
        tracing::error!("{}: bad producer config: {e}", w.name);
    }
}

/// As [`run`], returning the config error.
pub async fn try_run(w: ProducerWorkload, rec: Recorder) -> Result<(), ProducerConfigError> {
    let config = w.producer_config()?;
    let mut rng = ChaCha8Rng::seed_from_u64(w.seed);
    let core_seed: u64 = rng.random();
    let hook_rec = rec.clone();
    let hook: WireHook = Arc::new(move |started| hook_rec.produce_request(started));
    let producer = KafkaProducer::start_with_hook(w.bootstrap.clone(), config, w.name.clone(), core_seed, Some(hook));
    // Outcomes are recorded by one task in the order the producer completes them (one task per send
    // would record simultaneous completions in scheduler order).
    let (sink, mut outcomes) = mpsc::unbounded_channel();
    let sent: Arc<Mutex<BTreeMap<u64, SentRecord>>> = Arc::default();
    let recorder = {
        let (rec, name, topic, sent) = (rec.clone(), w.name.clone(), w.topic.clone(), sent.clone());
        rt::spawn(async move {
            while let Some((tag, outcome)) = outcomes.recv().await {
                let entry = sent.lock().unwrap_or_else(|p| p.into_inner()).remove(&tag);
                if let Some(s) = entry {
                    record_outcome(&rec, &name, &topic, &s, outcome);
                }
            }
        })
    };
    let interval_us = (1e6 / w.records_per_s).max(1.0);
    let mut i: u64 = 0;
    // Keys whose last send was a value: a tombstone deletes one of them.
    let mut live_keys: BTreeSet<String> = BTreeSet::new();
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
        // Drawn only with a rate, so a workload without tombstones keeps its RNG stream.
        let tombstone = w.tombstone_rate > 0.0 && live_keys.contains(&key) && rng.random::<f64>() < w.tombstone_rate;
        match tombstone {
            true => live_keys.remove(&key),
            false => live_keys.insert(key.clone()),
        };
        // The core partitions the same way (murmur2 of the key over the topic's partition count).
        let partition = partition_for_key(key.as_bytes(), w.partitions);
        let s = SentRecord {
            partition,
            key,
            value,
            tombstone,
        };
        rec.op(&w.name, OpType::Invoke, send_body(&w.topic, &s, partition, None), None);
        sent.lock().unwrap_or_else(|p| p.into_inner()).insert(i, s.clone());
        producer.send_to(record_of(&w.topic, s), i, &sink);
        i += 1;
    }
    drop(sink);
    producer.close().await;
    // The driver dropped its sink clones with the last completion: the recorder ends once it drained them.
    let _ = recorder.await;
    Ok(())
}

/// One send as the history names it.
#[derive(Debug, Clone)]
struct SentRecord {
    partition: i32,
    key: String,
    value: String,
    tombstone: bool,
}

/// The record on the wire: the value, or for a tombstone a null value (length -1) with the history value in
/// the [`TOMBSTONE_VALUE_HEADER`] header.
fn record_of(topic: &str, s: SentRecord) -> ProducerRecord {
    let (value, headers) = match s.tombstone {
        true => (
            None,
            vec![(TOMBSTONE_VALUE_HEADER.to_string(), Some(s.value.into_bytes()))],
        ),
        false => (Some(s.value.into_bytes()), vec![]),
    };
    ProducerRecord {
        topic: topic.to_string(),
        partition: None,
        key: Some(s.key.into_bytes()),
        value,
        // CreateTime as Kafka's producer stamps it (System.currentTimeMillis), on the same (simulated,
        // deterministic) wall clock the brokers read: retention and time lookups compare the two.
        timestamp_ms: Some(wall_clock_ms()),
        headers,
    }
}

fn record_outcome(rec: &Recorder, name: &str, topic: &str, s: &SentRecord, outcome: Outcome) {
    let (op_type, body, error) = match outcome {
        Outcome::Ok { partition: tp, offset } => {
            (OpType::Ok, send_body(&tp.topic, s, tp.partition, Some(offset)), None)
        }
        Outcome::Fail(f) => (
            OpType::Fail,
            send_body(topic, s, s.partition, None),
            Some(describe_failure(&f)),
        ),
        Outcome::Info(reason) => {
            let why = match reason {
                InfoReason::Acks0 => "acks=0: no response".to_string(),
                InfoReason::MayHaveLanded(f) => format!("may have landed: {}", describe_failure(&f)),
            };
            (OpType::Info, send_body(topic, s, s.partition, None), Some(why))
        }
    };
    rec.op(name, op_type, body, error);
}

fn describe_failure(f: &Failure) -> String {
    match f {
        Failure::Broker { code } => match crate::protocol::errors::ResponseError::try_from_code(*code) {
            Some(e) => format!("{e:?} (Kafka error code {code})"),
            None => format!("Kafka error code {code}"),
        },
        Failure::Disconnected => "disconnected".into(),
        Failure::RequestTimeout => "no response within request.timeout.ms".into(),
        Failure::DeliveryTimeout => "delivery.timeout.ms expired".into(),
        Failure::MetadataTimeout { topic } => format!("no metadata for {topic} within max.block.ms"),
        Failure::InvalidPartition { partition, count } => {
            format!("partition {partition} outside the topic's {count} partitions")
        }
    }
}

fn send_body(topic: &str, s: &SentRecord, partition: i32, offset: Option<i64>) -> OpBody {
    OpBody::Send {
        topic: topic.to_string(),
        partition,
        key: s.key.clone(),
        value: s.value.clone(),
        offset,
        tombstone: s.tombstone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(config: &[(&str, &str)], acks: i16) -> ProducerWorkload {
        ProducerWorkload {
            name: "client-1".into(),
            topic: "t".into(),
            partitions: 3,
            records_per_s: 10.0,
            key_space: 10,
            tombstone_rate: 0.0,
            records: None,
            start_at_us: 0,
            stop_at_us: 1,
            acks,
            linger_ms: 7,
            batch_size: 1000,
            client_config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            bootstrap: vec![],
            seed: 1,
        }
    }

    #[test]
    fn the_config_map_wins_over_the_fields_and_the_fields_fill_the_gaps() {
        let c = workload(&[("retries", "3"), ("linger.ms", "1")], 1)
            .producer_config()
            .expect("valid");
        assert_eq!((c.acks, c.linger_ms, c.batch_size, c.retries), (1, 1, 1000, 3));
        assert!(!c.enable_idempotence, "KIP-679: the default yields to acks=1");
        let c = workload(&[("acks", "all")], 1).producer_config().expect("valid");
        assert_eq!(c.acks, -1);
        assert!(c.enable_idempotence);
    }

    #[test]
    fn idempotence_with_acks_1_is_a_config_error() {
        let e = workload(&[("enable.idempotence", "true")], 1)
            .producer_config()
            .expect_err("KIP-679");
        assert!(e.to_string().starts_with("acks=1"), "{e}");
    }
}

/// Milliseconds since the Unix epoch on this node's wall clock (madsim's simulated `SystemTime`).
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
