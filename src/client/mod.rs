//! L3: the client: connections to brokers, a metadata cache, and the requests a producer, a consumer and an
//! admin need (CreateTopics, Metadata, Produce, Fetch, ListOffsets). The full producer and consumer grow
//! from here as async facades over their pure cores ([`crate::producer`]).
//!
//! What a send's outcome means for the history (ARCHITECTURE §6), for the producer built on [`Client::produce`]:
//!
//! | producer outcome | history type |
//! |---|---|
//! | response without error, with an offset | ok |
//! | rejected before any append (`NOT_ENOUGH_REPLICAS`, `INVALID_*`, `RECORD_TOO_LARGE`, unknown topic) | fail |
//! | `NOT_ENOUGH_REPLICAS_AFTER_APPEND`, `REQUEST_TIMED_OUT`, `NOT_LEADER_OR_FOLLOWER`, timeout, disconnect | info ([`ClientError::is_indefinite`]) |
//! | acks=0 | info |

pub mod admin;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod metadata;
pub mod producer;
pub mod shape;

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId as WireBrokerId, CreateTopicsRequest, FetchRequest, ListOffsetsRequest, MetadataRequest,
    ProduceRequest, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::ResponseError;

pub use admin::{AdminError, KafkaAdmin};
pub use config::{ClientConfig, ConfigError};
pub use connection::{Connection, ConnectionConfig, CLIENT_API_VERSIONS};
pub use consumer::{ConsumerEvent, FetchConfig, KafkaConsumer};
pub use error::{ClientError, KafkaErrorCode};
pub use metadata::{BrokerAddress, ClusterMetadata, PartitionMetadata, TopicMetadata};
pub use producer::{KafkaProducer, SendHandle, WireHook};

use crate::protocol::batch::{self, BatchBuilder, Record};
use crate::types::{LeaderEpoch, Offset, TopicPartition};
use error::check_code;
use shape::BoundedShape;

/// What a Produce returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceOutcome {
    /// The offset of the batch's first record; `None` for acks=0 (no response).
    pub base_offset: Option<Offset>,
}

/// What a Fetch returned for one partition, every batch CRC-checked (`check.crcs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOutcome {
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
    /// Records at or after the fetch offset, in offset order (control batches left out).
    pub records: Vec<Record>,
    /// The partition leader epoch of each record's batch, one per record (KIP-320).
    pub leader_epochs: Vec<LeaderEpoch>,
    /// Where the next fetch starts: past the last whole batch returned, or the fetch offset if none.
    pub next_fetch_offset: Offset,
}

/// Which offset ListOffsets asks for (Kafka's `OffsetSpec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset (timestamp -2).
    Earliest,
    /// The high watermark (timestamp -1, read_uncommitted).
    Latest,
    /// The record with the largest timestamp (timestamp -3, KIP-734).
    MaxTimestamp,
    /// The first offset whose record timestamp is at or after this one (ms; `offsetsForTimes`).
    ForTimestamp(i64),
}

impl OffsetSpec {
    /// The ListOffsets request's `timestamp` for this spec.
    pub fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::MaxTimestamp => -3,
            OffsetSpec::ForTimestamp(t) => t,
        }
    }
}

/// One partition's ListOffsets answer (Kafka's `ListOffsetsResultInfo`): offset and timestamp are -1 when
/// no record matched a timestamp lookup; `leader_epoch` is the epoch of the record found (or the leader's
/// epoch for earliest/latest), -1 if unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    pub offset: Offset,
    pub timestamp_ms: i64,
    pub leader_epoch: LeaderEpoch,
}

/// A record batch v2 holding `records` (key, value) with offset deltas 0.., all stamped `timestamp_ms`.
pub fn keyed_batch(records: &[(&[u8], &[u8])], timestamp_ms: i64) -> Vec<u8> {
    let mut builder = BatchBuilder::new(timestamp_ms);
    for (key, value) in records {
        builder.push(timestamp_ms, Some(key), Some(value), &[]);
    }
    builder.build()
}

/// A client of the cluster: one connection per broker address, and a metadata cache.
pub struct Client {
    config: ClientConfig,
    bootstrap: Vec<String>,
    connections: BTreeMap<String, Connection>,
    metadata: ClusterMetadata,
}

impl Client {
    /// A client that bootstraps from `bootstrap` (`host:port` addresses); it connects lazily.
    pub fn new(bootstrap: Vec<String>, config: ClientConfig) -> Self {
        Self {
            config,
            bootstrap,
            connections: BTreeMap::new(),
            metadata: ClusterMetadata::default(),
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The metadata cache as of the last Metadata response.
    pub fn cached_metadata(&self) -> &ClusterMetadata {
        &self.metadata
    }

    /// Creates one topic (CreateTopics v7) and waits for the controller's answer.
    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), ClientError> {
        let configs = configs
            .iter()
            .map(|(k, v)| {
                CreatableTopicConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_value(Some(StrBytes::from_string(v.clone())))
            })
            .collect();
        let topic = CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(configs);
        let req = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(self.config.request_timeout_ms.min(i32::MAX as u64) as i32);
        let (addr, resp) = self.request_any(&req).await?;
        let result =
            resp.topics
                .iter()
                .find(|t| t.name.0.as_str() == name)
                .ok_or_else(|| ClientError::MissingInResponse {
                    addr,
                    api: ApiKey::CreateTopics,
                    what: format!("topic {name}"),
                })?;
        check_code(result.error_code, || format!("topic {name}"))?;
        self.metadata.invalidate(name);
        Ok(())
    }

    /// Asks any broker for metadata of `topics` (`None`: every topic) and merges it into the cache.
    pub async fn metadata(&mut self, topics: Option<&[&str]>) -> Result<ClusterMetadata, ClientError> {
        let topics = topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                .collect()
        });
        let req = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(false);
        let (_, resp) = self.request_any(&req).await?;
        let fresh = ClusterMetadata::from_response(&resp);
        self.metadata.merge(&fresh);
        Ok(fresh)
    }

    /// Appends one record batch v2 to `tp` on its leader. `acks` 0 sends without waiting for a response;
    /// `timeout_ms` is how long the leader waits for acks=all replication (ProduceRequest `timeout_ms`).
    pub async fn produce(
        &mut self,
        tp: &TopicPartition,
        batch: Vec<u8>,
        acks: i16,
        timeout_ms: i32,
    ) -> Result<ProduceOutcome, ClientError> {
        let partition = PartitionProduceData::default()
            .with_index(tp.partition)
            .with_records(Some(batch.into()));
        let topic = TopicProduceData::default()
            .with_name(topic_name(&tp.topic))
            .with_partition_data(vec![partition]);
        let req = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(timeout_ms)
            .with_topic_data(vec![topic]);
        let timeout = self.config.request_timeout();
        let conn = self.leader_connection(tp).await?;
        if acks == 0 {
            let sent = conn.send_no_response_negotiated(&req, timeout).await;
            return self
                .after_leader_request(tp, sent)
                .map(|()| ProduceOutcome { base_offset: None });
        }
        let addr = conn.addr().to_string();
        let resp = conn.request_negotiated(&req, timeout).await;
        let resp = self.after_leader_request(tp, resp)?;
        let p = resp
            .responses
            .iter()
            .filter(|t| t.name.0.as_str() == tp.topic)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == tp.partition)
            .ok_or_else(|| missing(&addr, ApiKey::Produce, tp))?;
        let checked = check_code(p.error_code, || tp.to_string());
        self.after_leader_request(tp, checked)?;
        Ok(ProduceOutcome {
            base_offset: Some(p.base_offset),
        })
    }

    /// Reads from `tp` at `offset` on its leader (read_uncommitted), checking every batch's CRC.
    pub async fn fetch(
        &mut self,
        tp: &TopicPartition,
        offset: Offset,
        max_bytes: i32,
        max_wait_ms: i32,
        min_bytes: i32,
    ) -> Result<FetchOutcome, ClientError> {
        let partition = FetchPartition::default()
            .with_partition(tp.partition)
            .with_current_leader_epoch(-1)
            .with_fetch_offset(offset)
            .with_last_fetched_epoch(-1)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(max_bytes);
        let topic = FetchTopic::default()
            .with_topic(topic_name(&tp.topic))
            .with_partitions(vec![partition]);
        let req = FetchRequest::default()
            .with_replica_id(WireBrokerId(-1))
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(min_bytes)
            .with_max_bytes(max_bytes)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![topic]);
        // The broker may hold a fetch for max_wait_ms before answering; that is not a timeout.
        let timeout = self.config.request_timeout() + Duration::from_millis(max_wait_ms.max(0) as u64);
        let conn = self.leader_connection(tp).await?;
        let addr = conn.addr().to_string();
        let resp = conn.request_negotiated(&req, timeout).await;
        let resp = self.after_leader_request(tp, resp)?;
        let p = resp
            .responses
            .iter()
            .filter(|t| t.topic.0.as_str() == tp.topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == tp.partition)
            .ok_or_else(|| missing(&addr, ApiKey::Fetch, tp))?;
        let checked = check_code(p.error_code, || tp.to_string());
        self.after_leader_request(tp, checked)?;
        let records_bytes = p.records.clone().unwrap_or_default();
        let (with_epochs, next_fetch_offset) = records_with_epochs_from(tp, offset, &records_bytes)?;
        let (records, leader_epochs) = with_epochs.into_iter().unzip();
        Ok(FetchOutcome {
            high_watermark: p.high_watermark,
            log_start_offset: p.log_start_offset,
            records,
            leader_epochs,
            next_fetch_offset,
        })
    }

    /// The earliest (log start) or latest (high watermark) offset of `tp`, from its leader.
    pub async fn list_offsets(&mut self, tp: &TopicPartition, spec: OffsetSpec) -> Result<Offset, ClientError> {
        self.list_offsets_info(tp, spec).await.map(|l| l.offset)
    }

    /// ListOffsets for `tp` at its leader: offset, timestamp and leader epoch of what `spec` names.
    pub async fn list_offsets_info(
        &mut self,
        tp: &TopicPartition,
        spec: OffsetSpec,
    ) -> Result<ListedOffset, ClientError> {
        let partition = ListOffsetsPartition::default()
            .with_partition_index(tp.partition)
            .with_current_leader_epoch(-1)
            .with_timestamp(spec.timestamp());
        let topic = ListOffsetsTopic::default()
            .with_name(topic_name(&tp.topic))
            .with_partitions(vec![partition]);
        let req = ListOffsetsRequest::default()
            .with_replica_id(WireBrokerId(-1))
            .with_isolation_level(0)
            .with_topics(vec![topic]);
        self.leader_partition_request(tp, ApiKey::ListOffsets, &req, |resp| {
            let p = resp
                .topics
                .iter()
                .filter(|t| t.name.0.as_str() == tp.topic)
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == tp.partition)?;
            let listed = ListedOffset {
                offset: p.offset,
                timestamp_ms: p.timestamp,
                leader_epoch: p.leader_epoch,
            };
            Some((p.error_code, listed))
        })
        .await
    }

    /// `tp`'s leader epoch as the metadata cache knows it, asking for the topic's metadata first if the
    /// cache lacks it; `None` if still unknown.
    pub async fn leader_epoch(&mut self, tp: &TopicPartition) -> Option<LeaderEpoch> {
        if self.metadata.leader(tp).is_none() {
            let _ = self.metadata(Some(&[tp.topic.as_str()])).await;
        }
        self.metadata.partition(tp).map(|p| p.leader_epoch)
    }

    /// OffsetForLeaderEpoch v4 at `tp`'s leader (KIP-320): the largest epoch ≤ `leader_epoch` the leader
    /// knows and its end offset ((-1, -1) when it knows none), fenced by `current_leader_epoch`.
    pub async fn offset_for_leader_epoch(
        &mut self,
        tp: &TopicPartition,
        current_leader_epoch: LeaderEpoch,
        leader_epoch: LeaderEpoch,
    ) -> Result<(LeaderEpoch, Offset), ClientError> {
        use kafka_protocol::messages::offset_for_leader_epoch_request::{
            OffsetForLeaderPartition, OffsetForLeaderTopic,
        };
        let partition = OffsetForLeaderPartition::default()
            .with_partition(tp.partition)
            .with_current_leader_epoch(current_leader_epoch)
            .with_leader_epoch(leader_epoch);
        let topic = OffsetForLeaderTopic::default()
            .with_topic(topic_name(&tp.topic))
            .with_partitions(vec![partition]);
        let req = kafka_protocol::messages::OffsetForLeaderEpochRequest::default()
            .with_replica_id(WireBrokerId(-1))
            .with_topics(vec![topic]);
        self.leader_partition_request(tp, ApiKey::OffsetForLeaderEpoch, &req, |resp| {
            let p = resp
                .topics
                .iter()
                .filter(|t| t.topic.0.as_str() == tp.topic)
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition == tp.partition)?;
            Some((p.error_code, (p.leader_epoch, p.end_offset)))
        })
        .await
    }

    /// Sends `req` (of `api`) to `tp`'s leader and returns what `find` takes from `tp`'s entry of the
    /// answer, once that entry's error code is none. `find` gives (error code, value), or `None` when the
    /// answer lacks `tp`. Errors that mean the leader moved drop the topic from the metadata cache.
    async fn leader_partition_request<Req, T>(
        &mut self,
        tp: &TopicPartition,
        api: ApiKey,
        req: &Req,
        find: impl FnOnce(&Req::Response) -> Option<(i16, T)>,
    ) -> Result<T, ClientError>
    where
        Req: Request,
        Req::Response: BoundedShape,
    {
        let timeout = self.config.request_timeout();
        let conn = self.leader_connection(tp).await?;
        let addr = conn.addr().to_string();
        let resp = conn.request_negotiated(req, timeout).await;
        let resp = self.after_leader_request(tp, resp)?;
        let (error_code, found) = find(&resp).ok_or_else(|| missing(&addr, api, tp))?;
        let checked = check_code(error_code, || tp.to_string());
        self.after_leader_request(tp, checked)?;
        Ok(found)
    }

    /// The connection to `tp`'s leader, asking for the topic's metadata first if the cache lacks it.
    async fn leader_connection(&mut self, tp: &TopicPartition) -> Result<&mut Connection, ClientError> {
        if self.metadata.leader(tp).is_none() {
            self.metadata(Some(&[tp.topic.as_str()])).await?;
        }
        if let Some(p) = self.metadata.partition(tp) {
            if let Some(code) = p.error.filter(|c| *c != ResponseError::ReplicaNotAvailable) {
                return Err(ClientError::Kafka {
                    code,
                    at: tp.to_string(),
                });
            }
        } else if let Some(code) = self.metadata.topics.get(&tp.topic).and_then(|t| t.error) {
            return Err(ClientError::Kafka {
                code,
                at: tp.topic.clone(),
            });
        }
        let (_, address) = self
            .metadata
            .leader(tp)
            .ok_or_else(|| ClientError::NoLeader { tp: tp.clone() })?;
        let addr = address.addr();
        Ok(self.connection(addr))
    }

    /// After a request to `tp`'s leader: errors that mean the leader moved (or died) drop the topic from
    /// the cache, so the next request asks for fresh metadata.
    fn after_leader_request<T>(
        &mut self,
        tp: &TopicPartition,
        result: Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        if let Err(e) = &result {
            if invalidates_metadata(e) {
                self.metadata.invalidate(&tp.topic);
            }
        }
        result
    }

    fn connection(&mut self, addr: String) -> &mut Connection {
        let config = ConnectionConfig {
            client_id: self.config.client_id.clone(),
            max_response_bytes: self.config.max_response_bytes,
        };
        self.connections
            .entry(addr.clone())
            .or_insert_with(|| Connection::new_closed(addr, config))
    }

    /// Sends `req` to the broker at `addr` (`host:port`) and waits up to `timeout` for its answer; a
    /// timeout closes that connection (a late answer never matches a newer request).
    pub async fn request_at<Req>(
        &mut self,
        addr: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Req::Response, ClientError>
    where
        Req: Request,
        Req::Response: BoundedShape,
    {
        self.connection(addr.to_string()).request_negotiated(req, timeout).await
    }

    /// Sends `req` to the first reachable broker: the bootstrap addresses, then every known broker.
    /// Only a failure to connect (nothing sent) moves on to the next address.
    pub async fn request_any<Req>(&mut self, req: &Req) -> Result<(String, Req::Response), ClientError>
    where
        Req: Request,
        Req::Response: BoundedShape,
    {
        let mut candidates = self.bootstrap.clone();
        for b in self.metadata.brokers.values() {
            let addr = b.addr();
            if !candidates.contains(&addr) {
                candidates.push(addr);
            }
        }
        let timeout = self.config.request_timeout();
        let mut last = None;
        for addr in candidates {
            match self.connection(addr.clone()).request_negotiated(req, timeout).await {
                Ok(resp) => return Ok((addr, resp)),
                Err(e @ ClientError::Connect { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Connect {
            addr: "(none)".into(),
            reason: "no bootstrap address".into(),
        }))
    }
}

fn invalidates_metadata(e: &ClientError) -> bool {
    match e {
        ClientError::Kafka { code, .. } => matches!(
            code,
            ResponseError::NotLeaderOrFollower
                | ResponseError::UnknownTopicOrPartition
                | ResponseError::LeaderNotAvailable
                | ResponseError::FencedLeaderEpoch
                | ResponseError::UnknownLeaderEpoch
                | ResponseError::NotController
        ),
        ClientError::Timeout { .. } | ClientError::Disconnected { .. } | ClientError::Connect { .. } => true,
        _ => false,
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn missing(addr: &str, api: ApiKey, tp: &TopicPartition) -> ClientError {
    ClientError::MissingInResponse {
        addr: addr.to_string(),
        api,
        what: tp.to_string(),
    }
}

/// Every whole batch in a fetch response's records, CRC-checked and decoded; records before `fetch_offset`
/// (a batch may start earlier) and control batches are left out. A partial batch at the end is normal
/// (the response was cut at max_bytes) and is ignored.
pub fn records_from(
    tp: &TopicPartition,
    fetch_offset: Offset,
    bytes: &[u8],
) -> Result<(Vec<Record>, Offset), ClientError> {
    let (with_epochs, next) = records_with_epochs_from(tp, fetch_offset, bytes)?;
    Ok((with_epochs.into_iter().map(|(r, _)| r).collect(), next))
}

/// [`records_from`], each record with its batch's partition leader epoch (KIP-320).
pub fn records_with_epochs_from(
    tp: &TopicPartition,
    fetch_offset: Offset,
    bytes: &[u8],
) -> Result<(Vec<(Record, LeaderEpoch)>, Offset), ClientError> {
    let mut records = Vec::new();
    let mut next_fetch_offset = fetch_offset;
    let mut iter = batch::batches(bytes);
    while let Some(item) = iter.next() {
        let at = iter.position();
        let checked = item
            .map_err(|e| (base_offset_at(bytes, at).unwrap_or(next_fetch_offset), e))
            .and_then(|(header, batch_bytes)| {
                let validated = batch::validate_batch(batch_bytes).map_err(|e| (header.base_offset, e))?;
                let decoded = if validated.is_control() {
                    vec![]
                } else {
                    batch::decode_records(batch_bytes).map_err(|e| (header.base_offset, e))?
                };
                Ok((validated, decoded, header.partition_leader_epoch))
            });
        match checked {
            Ok((validated, decoded, epoch)) => {
                next_fetch_offset = next_fetch_offset.max(validated.next_offset());
                records.extend(
                    decoded
                        .into_iter()
                        .filter(|r| r.offset >= fetch_offset)
                        .map(|r| (r, epoch)),
                );
            }
            // Like Kafka's fetcher, the records before a corrupt batch are returned; the error surfaces when
            // the corrupt batch is the first thing left to read.
            Err(_) if !records.is_empty() || next_fetch_offset > fetch_offset => break,
            Err((offset, e)) => {
                return Err(ClientError::CorruptBatch {
                    tp: tp.clone(),
                    offset,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok((records, next_fetch_offset))
}

fn base_offset_at(bytes: &[u8], at: usize) -> Option<Offset> {
    let b = bytes.get(at..at + 8)?;
    Some(i64::from_be_bytes(b.try_into().ok()?))
}

#[cfg(all(test, madsim))]
mod sim_tests;

#[cfg(all(test, madsim))]
mod controller_sim_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(batches: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut next = 0;
        for b in batches {
            let mut b = b.clone();
            batch::set_base_offset(&mut b, next);
            next = batch::validate_batch(&b).expect("valid").next_offset();
            out.extend_from_slice(&b);
        }
        out
    }

    #[test]
    fn records_from_skips_records_before_the_fetch_offset_and_a_partial_trailing_batch() {
        let a = keyed_batch(&[(b"k0", b"v0"), (b"k1", b"v1")], 5);
        let b = keyed_batch(&[(b"k2", b"v2")], 6);
        let log = log_of(&[a, b]);
        let tp = TopicPartition::new("t", 3);
        let (records, next) = records_from(&tp, 1, &log).expect("valid");
        let offsets: Vec<_> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![1, 2]);
        assert_eq!(next, 3);
        let (records, next) = records_from(&tp, 0, &log[..log.len() - 3]).expect("partial tail ignored");
        assert_eq!(records.len(), 2);
        assert_eq!(next, 2);
        let (records, next) = records_from(&tp, 7, &[]).expect("empty");
        assert!(records.is_empty());
        assert_eq!(next, 7);
    }

    #[test]
    fn records_from_reports_a_bad_header_with_the_partition_and_its_offset() {
        let mut log = log_of(&[keyed_batch(&[(b"k", b"v")], 5), keyed_batch(&[(b"k", b"w")], 5)]);
        let second = log.len() / 2;
        log[second + 16] = 1; // magic 1 in the second batch
        let tp = TopicPartition::new("t", 0);
        // As Kafka's fetcher: the good batch before it is returned, and reading on stops at the bad one...
        let (records, next) = records_from(&tp, 0, &log).expect("the good batch first");
        assert_eq!(records.len(), 1);
        assert_eq!(next, 1);
        // ...which is an error once it is the first thing left to read.
        let err = records_from(&tp, 1, &log[second..]).expect_err("bad magic");
        assert!(matches!(&err, ClientError::CorruptBatch { offset: 1, .. }), "{err}");
    }
}
