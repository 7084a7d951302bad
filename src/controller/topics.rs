//! Topic changes after creation: DeleteTopics (a RemoveTopicRecord per topic) and CreatePartitions (a
//! PartitionRecord per new partition), as Kafka's `ReplicationControlManager.deleteTopics` and
//! `createPartitions`. Brokers forward both from clients (KIP-590).

use rand::Rng;
use uuid::Uuid;

use super::election::RecordBuilder;
use super::records::Record;
use super::replication::place_replicas;
use super::{Controller, ControllerResult, ResponseError};
use crate::types::BrokerId;

/// The broker/controller config that allows DeleteTopics (`delete.topic.enable`, default true).
pub const DELETE_TOPIC_ENABLE: &str = "delete.topic.enable";

/// One topic to delete, by name or (DeleteTopics v6+) by id; a nil id means "by name".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletableTopic {
    pub name: Option<String>,
    pub topic_id: Uuid,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletableTopicResult {
    /// The topic's name (as asked, or found by id; None for an unknown id).
    pub name: Option<String>,
    pub topic_id: Uuid,
    pub error: Option<ResponseError>,
    pub error_message: Option<String>,
}

/// One topic's new partition count, with optional manual replica assignments for the new partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatePartitionsTopic {
    pub name: String,
    pub count: i32,
    pub assignments: Option<Vec<Vec<BrokerId>>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CreatePartitionsRequest {
    pub topics: Vec<CreatePartitionsTopic>,
    pub validate_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatePartitionsTopicResult {
    pub name: String,
    pub error: Option<ResponseError>,
    pub error_message: Option<String>,
}

type TopicError = (ResponseError, String);

impl Controller {
    /// DeleteTopics: each named topic (by name or id) is removed with one RemoveTopicRecord; unknown ones get
    /// UNKNOWN_TOPIC_OR_PARTITION (by name) or UNKNOWN_TOPIC_ID (by id); with `delete.topic.enable=false`
    /// every topic gets TOPIC_DELETION_DISABLED. Internal topics (`__consumer_offsets`) are refused with
    /// INVALID_REQUEST here: the group coordinator's state lives in them.
    pub fn delete_topics(&self, topics: &[DeletableTopic]) -> ControllerResult<Vec<DeletableTopicResult>> {
        let mut b = RecordBuilder::new(&self.state, self.config.unclean_leader_election_enable);
        let mut results = Vec::with_capacity(topics.len());
        for t in topics {
            let found = self.find_topic(&b, t);
            let result = found.and_then(|(name, id)| {
                if !self.config.delete_topic_enable {
                    return Err((
                        ResponseError::TopicDeletionDisabled,
                        format!("{DELETE_TOPIC_ENABLE}=false: topic {name} stays"),
                    ));
                }
                if name.starts_with("__") {
                    let msg = format!("topic {name} is internal and cannot be deleted");
                    return Err((ResponseError::InvalidRequest, msg));
                }
                b.push(Record::RemoveTopic { topic_id: id });
                Ok((name, id))
            });
            results.push(match result {
                Ok((name, id)) => DeletableTopicResult {
                    name: Some(name),
                    topic_id: id,
                    error: None,
                    error_message: None,
                },
                Err((e, msg)) => DeletableTopicResult {
                    name: t.name.clone(),
                    topic_id: t.topic_id,
                    error: Some(e),
                    error_message: Some(msg),
                },
            });
        }
        ControllerResult {
            records: b.records,
            response: results,
        }
    }

    /// The topic `t` names, as (name, id), in the scratch state (so a topic named twice in one request is
    /// deleted once and then unknown).
    fn find_topic(&self, b: &RecordBuilder, t: &DeletableTopic) -> Result<(String, Uuid), TopicError> {
        if !t.topic_id.is_nil() {
            return b
                .scratch
                .topics
                .get(&t.topic_id)
                .map(|topic| (topic.name.clone(), t.topic_id))
                .ok_or((
                    ResponseError::UnknownTopicId,
                    format!("no topic with id {}", t.topic_id),
                ));
        }
        let name = t.name.clone().unwrap_or_default();
        match b.scratch.topic_ids.get(&name) {
            Some(id) => Ok((name, *id)),
            None => Err((
                ResponseError::UnknownTopicOrPartition,
                format!("topic {name} does not exist"),
            )),
        }
    }

    /// CreatePartitions: grows each topic to `count` partitions, the new ones placed over the active brokers
    /// with the topic's replication factor (or as `assignments` say), leader the first replica, ISR all of
    /// them. A count at or below the current one is INVALID_PARTITIONS; an unknown topic
    /// UNKNOWN_TOPIC_OR_PARTITION; a bad assignment INVALID_REPLICA_ASSIGNMENT.
    pub fn create_partitions(
        &self,
        req: CreatePartitionsRequest,
        rng: &mut impl Rng,
    ) -> ControllerResult<Vec<CreatePartitionsTopicResult>> {
        let mut b = RecordBuilder::new(&self.state, self.config.unclean_leader_election_enable);
        let mut results = Vec::with_capacity(req.topics.len());
        for t in &req.topics {
            let twice = req.topics.iter().filter(|o| o.name == t.name).count() > 1;
            let result = if twice {
                let msg = format!("topic {} named twice in one request", t.name);
                Err((ResponseError::InvalidRequest, msg))
            } else {
                grow_topic(&mut b, t, req.validate_only, rng)
            };
            let (error, error_message) = match result {
                Ok(()) => (None, None),
                Err((e, msg)) => (Some(e), Some(msg)),
            };
            results.push(CreatePartitionsTopicResult {
                name: t.name.clone(),
                error,
                error_message,
            });
        }
        ControllerResult {
            records: if req.validate_only { vec![] } else { b.records },
            response: results,
        }
    }
}

fn grow_topic(
    b: &mut RecordBuilder,
    t: &CreatePartitionsTopic,
    validate_only: bool,
    rng: &mut impl Rng,
) -> Result<(), TopicError> {
    let Some(&topic_id) = b.scratch.topic_ids.get(&t.name) else {
        let msg = format!("topic {} does not exist", t.name);
        return Err((ResponseError::UnknownTopicOrPartition, msg));
    };
    let topic = &b.scratch.topics[&topic_id];
    let current = topic.partitions.len() as i32;
    if t.count <= current {
        let msg = format!(
            "topic {} has {current} partitions; the new count {} must be higher",
            t.name, t.count
        );
        return Err((ResponseError::InvalidPartitions, msg));
    }
    let rf = topic.partitions.values().next().map_or(1, |p| p.replicas.len());
    let added = t.count - current;
    let assignment = match &t.assignments {
        Some(a) => validate_assignments(b, &t.name, a, added, rf)?,
        None => {
            let brokers = b.scratch.active_brokers();
            if rf > brokers.len() {
                let msg = format!(
                    "topic {}: replication factor {rf} with {} active brokers",
                    t.name,
                    brokers.len()
                );
                return Err((ResponseError::InvalidReplicationFactor, msg));
            }
            place_replicas(&brokers, added, rf, rng)
        }
    };
    if validate_only {
        return Ok(());
    }
    for (partition, replicas) in (current..).zip(assignment) {
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
    Ok(())
}

/// Manual assignments: one per new partition, each `rf` distinct registered brokers.
fn validate_assignments(
    b: &RecordBuilder,
    topic: &str,
    assignments: &[Vec<BrokerId>],
    added: i32,
    rf: usize,
) -> Result<Vec<Vec<BrokerId>>, TopicError> {
    let bad = |msg: String| Err((ResponseError::InvalidReplicaAssignment, format!("topic {topic}: {msg}")));
    if assignments.len() != added as usize {
        return bad(format!("{} assignments for {added} new partitions", assignments.len()));
    }
    for replicas in assignments {
        let mut distinct = replicas.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if replicas.len() != rf || distinct.len() != rf {
            return bad(format!("replicas {replicas:?}: need {rf} distinct brokers"));
        }
        if let Some(unknown) = replicas.iter().find(|r| !b.scratch.brokers.contains_key(r)) {
            return bad(format!("broker {unknown} is not registered"));
        }
    }
    Ok(assignments.to_vec())
}
