//! Topics and partitions: CreateTopics, AlterPartition (KIP-497, KIP-841, KIP-903) and AllocateProducerIds
//! (KIP-730), as Kafka's `ReplicationControlManager` and `ProducerIdControlManager`.

use std::collections::BTreeMap;

use rand::Rng;
use uuid::Uuid;

use super::election::RecordBuilder;
use super::records::Record;
use super::{Controller, ControllerResult, ResponseError, UNCLEAN_LEADER_ELECTION_ENABLE};
use crate::types::{BrokerId, LeaderEpoch, PartitionEpoch};

/// Producer ids handed to a broker per AllocateProducerIds (Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;
/// Kafka's `Topic.MAX_NAME_LENGTH`.
const TOPIC_NAME_LENGTH_MAX: usize = 249;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatableTopic {
    pub name: String,
    /// -1: `num.partitions`.
    pub num_partitions: i32,
    /// -1: `default.replication.factor`.
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CreateTopicsRequest {
    pub topics: Vec<CreatableTopic>,
    pub validate_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatableTopicResult {
    pub name: String,
    pub error: Option<ResponseError>,
    pub error_message: Option<String>,
    /// Nil on error.
    pub topic_id: Uuid,
    pub num_partitions: i32,
    pub replication_factor: i16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTopicsReply {
    pub topics: Vec<CreatableTopicResult>,
}

/// A member of a proposed ISR with the broker epoch the leader saw in its fetches (KIP-903; -1 unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsrMember {
    pub broker_id: BrokerId,
    pub broker_epoch: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterPartitionData {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    pub new_isr: Vec<IsrMember>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterPartitionRequest {
    /// The leader sending it, and its broker epoch.
    pub broker_id: BrokerId,
    pub broker_epoch: i64,
    pub partitions: Vec<AlterPartitionData>,
}

/// The partition's state after the request (also on FENCED_LEADER_EPOCH / INVALID_UPDATE_VERSION, so the
/// leader learns what it missed), as Kafka's AlterPartitionResponse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterPartitionResult {
    pub topic_id: Uuid,
    pub partition: i32,
    pub error: Option<ResponseError>,
    pub leader: BrokerId,
    pub leader_epoch: LeaderEpoch,
    pub isr: Vec<BrokerId>,
    pub partition_epoch: PartitionEpoch,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterPartitionReply {
    /// A request-level error (STALE_BROKER_EPOCH): then `partitions` is empty.
    pub error: Option<ResponseError>,
    pub partitions: Vec<AlterPartitionResult>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocateProducerIdsRequest {
    pub broker_id: BrokerId,
    pub broker_epoch: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocateProducerIdsReply {
    pub error: Option<ResponseError>,
    pub producer_id_start: i64,
    pub producer_id_len: i64,
}

impl Controller {
    /// CreateTopics: each topic is validated (name, TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS,
    /// INVALID_REPLICATION_FACTOR when it exceeds the active brokers, INVALID_CONFIG), then gets a random
    /// topic id, its configs and partitions whose replicas are spread over the active brokers.
    pub fn create_topics(
        &self,
        req: CreateTopicsRequest,
        now_ms: i64,
        rng: &mut impl Rng,
    ) -> ControllerResult<CreateTopicsReply> {
        let _ = now_ms; // topic creation does not depend on time; kept for a uniform handler signature
        let mut b = RecordBuilder::new(&self.state, self.config.unclean_leader_election_enable);
        let mut results = Vec::with_capacity(req.topics.len());
        for topic in &req.topics {
            let duplicate_in_request = req.topics.iter().filter(|t| t.name == topic.name).count() > 1;
            let result = if duplicate_in_request {
                Err((
                    ResponseError::InvalidRequest,
                    "topic named twice in one request".to_string(),
                ))
            } else {
                self.create_topic(&mut b, topic, req.validate_only, rng)
            };
            results.push(topic_result(topic, result));
        }
        ControllerResult {
            records: if req.validate_only { vec![] } else { b.records },
            response: CreateTopicsReply { topics: results },
        }
    }

    fn create_topic(
        &self,
        b: &mut RecordBuilder,
        topic: &CreatableTopic,
        validate_only: bool,
        rng: &mut impl Rng,
    ) -> Result<(Uuid, i32, i16), (ResponseError, String)> {
        validate_topic_name(&topic.name)?;
        if b.scratch.topic_ids.contains_key(&topic.name) {
            return Err((
                ResponseError::TopicAlreadyExists,
                format!("topic {} exists", topic.name),
            ));
        }
        validate_configs(&topic.configs)?;
        let partitions = match topic.num_partitions {
            -1 => self.config.num_partitions,
            n if n >= 1 => n,
            n => return Err((ResponseError::InvalidPartitions, format!("{n} partitions"))),
        };
        let rf = match topic.replication_factor {
            -1 => self.config.default_replication_factor,
            n => n,
        };
        let brokers = b.scratch.active_brokers();
        if rf < 1 || rf as usize > brokers.len() {
            let msg = format!("replication factor {rf} with {} active brokers", brokers.len());
            return Err((ResponseError::InvalidReplicationFactor, msg));
        }
        let topic_id = new_topic_id(b, rng);
        if validate_only {
            return Ok((topic_id, partitions, rf));
        }
        let assignment = place_replicas(&brokers, partitions, rf as usize, rng);
        b.push(Record::Topic {
            name: topic.name.clone(),
            topic_id,
        });
        for (key, value) in &topic.configs {
            b.push(Record::Config {
                topic: topic.name.clone(),
                key: key.clone(),
                value: Some(value.clone()),
            });
        }
        for (partition, replicas) in (0..).zip(assignment) {
            b.push(Record::Partition {
                topic_id,
                partition,
                isr: replicas.clone(),
                leader: replicas[0],
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
            });
        }
        Ok((topic_id, partitions, rf))
    }

    /// AlterPartition (KIP-497) from a partition's leader. Per partition, as Kafka validates it:
    /// UNKNOWN_TOPIC_ID / UNKNOWN_TOPIC_OR_PARTITION; a leader epoch other than the current one:
    /// FENCED_LEADER_EPOCH; a sender that is not the leader: INVALID_REQUEST; a stale partition epoch:
    /// INVALID_UPDATE_VERSION; an ISR that is empty, repeats a broker, names a non-replica or lacks the
    /// leader: INVALID_REQUEST; a member fenced, in controlled shutdown (KIP-841) or with another broker
    /// epoch (KIP-903): INELIGIBLE_REPLICA. A valid change bumps the partition epoch.
    pub fn alter_partition(&self, req: AlterPartitionRequest) -> ControllerResult<AlterPartitionReply> {
        let sender_epoch = self.state.brokers.get(&req.broker_id).map(|r| r.epoch);
        if sender_epoch != Some(req.broker_epoch) {
            let response = AlterPartitionReply {
                error: Some(ResponseError::StaleBrokerEpoch),
                partitions: vec![],
            };
            return ControllerResult {
                records: vec![],
                response,
            };
        }
        let mut b = RecordBuilder::new(&self.state, self.config.unclean_leader_election_enable);
        let mut results = Vec::with_capacity(req.partitions.len());
        for data in &req.partitions {
            let error = match validate_alter(&b, req.broker_id, data) {
                Ok(Some(record)) => {
                    b.push(record);
                    None
                }
                Ok(None) => None,
                Err(e) => Some(e),
            };
            results.push(alter_result(&b, data, error));
        }
        let response = AlterPartitionReply {
            error: None,
            partitions: results,
        };
        ControllerResult {
            records: b.records,
            response,
        }
    }

    /// AllocateProducerIds (KIP-730): the next block of `PRODUCER_ID_BLOCK_SIZE` ids.
    pub fn allocate_producer_ids(&self, req: AllocateProducerIdsRequest) -> ControllerResult<AllocateProducerIdsReply> {
        let epoch = self.state.brokers.get(&req.broker_id).map(|r| r.epoch);
        if epoch != Some(req.broker_epoch) {
            let response = AllocateProducerIdsReply {
                error: Some(ResponseError::StaleBrokerEpoch),
                producer_id_start: -1,
                producer_id_len: 0,
            };
            return ControllerResult {
                records: vec![],
                response,
            };
        }
        let start = self.state.next_producer_id;
        let record = Record::ProducerIds {
            broker_id: req.broker_id,
            broker_epoch: req.broker_epoch,
            next_producer_id: start + PRODUCER_ID_BLOCK_SIZE,
        };
        let response = AllocateProducerIdsReply {
            error: None,
            producer_id_start: start,
            producer_id_len: PRODUCER_ID_BLOCK_SIZE,
        };
        ControllerResult {
            records: vec![record],
            response,
        }
    }
}

fn topic_result(
    topic: &CreatableTopic,
    result: Result<(Uuid, i32, i16), (ResponseError, String)>,
) -> CreatableTopicResult {
    let (error, error_message, (topic_id, num_partitions, replication_factor)) = match result {
        Ok(ok) => (None, None, ok),
        Err((e, msg)) => (Some(e), Some(msg), (Uuid::nil(), -1, -1)),
    };
    CreatableTopicResult {
        name: topic.name.clone(),
        error,
        error_message,
        topic_id,
        num_partitions,
        replication_factor,
    }
}

/// Kafka's `Topic.validate`: 1 to 249 characters of `[a-zA-Z0-9._-]`, not "." or "..".
pub(super) fn validate_topic_name(name: &str) -> Result<(), (ResponseError, String)> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= TOPIC_NAME_LENGTH_MAX
        && name.chars().all(legal);
    if ok {
        Ok(())
    } else {
        Err((
            ResponseError::InvalidTopicException,
            format!("illegal topic name {name:?}"),
        ))
    }
}

/// The configs the controller itself reads must parse.
fn validate_configs(configs: &BTreeMap<String, String>) -> Result<(), (ResponseError, String)> {
    for (key, value) in configs {
        let ok = match key.as_str() {
            UNCLEAN_LEADER_ELECTION_ENABLE => value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"),
            "min.insync.replicas" => value.parse::<i32>().is_ok_and(|n| n >= 1),
            _ => true,
        };
        if !ok {
            return Err((ResponseError::InvalidConfig, format!("{key}={value}")));
        }
    }
    Ok(())
}

/// A random topic id, neither nil nor in use (Kafka's `Uuid.randomUuid` also avoids reserved ids).
fn new_topic_id(b: &RecordBuilder, rng: &mut impl Rng) -> Uuid {
    loop {
        let id = Uuid::from_u128(rng.random::<u128>());
        if !id.is_nil() && !b.scratch.topics.contains_key(&id) {
            return id;
        }
    }
}

/// Replicas for each partition, round-robin over `brokers` (sorted ids) from a random start, each further
/// replica shifted by a random amount that grows every full round, as Kafka's rack-unaware assignment
/// does; the first replica is the preferred leader.
pub(super) fn place_replicas(
    brokers: &[BrokerId],
    partitions: i32,
    rf: usize,
    rng: &mut impl Rng,
) -> Vec<Vec<BrokerId>> {
    let n = brokers.len();
    assert!(rf >= 1 && rf <= n, "rf={rf} brokers={n}");
    let start = rng.random_range(0..n);
    let mut shift = rng.random_range(0..n);
    let mut out = Vec::with_capacity(partitions.max(0) as usize);
    for p in 0..partitions.max(0) as usize {
        if p > 0 && p % n == 0 {
            shift += 1;
        }
        let first = (p + start) % n;
        let mut replicas = vec![brokers[first]];
        for j in 0..rf - 1 {
            let offset = 1 + (shift + j) % (n - 1);
            replicas.push(brokers[(first + offset) % n]);
        }
        out.push(replicas);
    }
    out
}

fn validate_alter(
    b: &RecordBuilder,
    sender: BrokerId,
    data: &AlterPartitionData,
) -> Result<Option<Record>, ResponseError> {
    let state = &b.scratch;
    if !state.topics.contains_key(&data.topic_id) {
        return Err(ResponseError::UnknownTopicId);
    }
    let part = state
        .partition(data.topic_id, data.partition)
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    if data.leader_epoch != part.leader_epoch {
        return Err(ResponseError::FencedLeaderEpoch);
    }
    if sender != part.leader {
        return Err(ResponseError::InvalidRequest);
    }
    if data.partition_epoch != part.partition_epoch {
        return Err(ResponseError::InvalidUpdateVersion);
    }
    let isr: Vec<BrokerId> = data.new_isr.iter().map(|m| m.broker_id).collect();
    let mut unique = isr.clone();
    unique.sort_unstable();
    unique.dedup();
    let valid = !isr.is_empty()
        && unique.len() == isr.len()
        && isr.iter().all(|b| part.replicas.contains(b))
        && isr.contains(&part.leader);
    if !valid {
        return Err(ResponseError::InvalidRequest);
    }
    let eligible = |m: &IsrMember| {
        state
            .brokers
            .get(&m.broker_id)
            .is_some_and(|r| r.is_active() && (m.broker_epoch == -1 || m.broker_epoch == r.epoch))
    };
    if !data.new_isr.iter().all(eligible) {
        return Err(ResponseError::IneligibleReplica);
    }
    if isr == part.isr {
        return Ok(None);
    }
    Ok(Some(Record::PartitionChange {
        topic_id: data.topic_id,
        partition: data.partition,
        isr: Some(isr),
        leader: None,
        unclean: false,
    }))
}

fn alter_result(b: &RecordBuilder, data: &AlterPartitionData, error: Option<ResponseError>) -> AlterPartitionResult {
    let part = b.scratch.partition(data.topic_id, data.partition);
    AlterPartitionResult {
        topic_id: data.topic_id,
        partition: data.partition,
        error,
        leader: part.map_or(crate::metadata::NO_LEADER, |p| p.leader),
        leader_epoch: part.map_or(-1, |p| p.leader_epoch),
        isr: part.map(|p| p.isr.clone()).unwrap_or_default(),
        partition_epoch: part.map_or(-1, |p| p.partition_epoch),
    }
}
