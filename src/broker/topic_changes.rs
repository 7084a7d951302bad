//! DeleteTopics and CreatePartitions on the broker listener. With a controller quorum the node shell
//! forwards both to the active controller (KIP-590) before they reach the core; a broker serving a static
//! image has nobody to change its metadata, so it refuses them per topic. The refusal builders are shared
//! with the shell (forwarding that found no controller) and the controller (NOT_CONTROLLER on a standby).

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreatePartitionsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
};
use kafka_protocol::protocol::StrBytes;

use std::collections::BTreeSet;

use super::{respond, Broker, Failure, MetadataImage, Reply};
use crate::log::{Disk, LogError};
use crate::protocol::errors::ResponseError;
use crate::types::TopicPartition;

/// The mark of a broker deleting a replica's log because its topic was deleted (or recreated).
pub const TOPIC_LOG_DELETED_MARK: &str = "deleted-topic-log-removed";

/// Every topic of `req` refused with `error`; the message names the topic.
pub fn delete_topics_refused(req: &DeleteTopicsRequest, error: ResponseError, why: &str) -> DeleteTopicsResponse {
    let responses = req
        .topics
        .iter()
        .map(|t| {
            let what = match &t.name {
                Some(n) => format!("topic {}", n.0.as_str()),
                None => format!("topic id {}", t.topic_id),
            };
            DeletableTopicResult::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(format!("{what}: {why}"))))
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Every topic of `req` refused with `error`; the message names the topic.
pub fn create_partitions_refused(
    req: &CreatePartitionsRequest,
    error: ResponseError,
    why: &str,
) -> CreatePartitionsResponse {
    let results = req
        .topics
        .iter()
        .map(|t| {
            let msg = format!("topic {}: {why}", t.name.0.as_str());
            CreatePartitionsTopicResult::default()
                .with_name(t.name.clone())
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(msg)))
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

const NO_QUORUM: &str = "this broker serves a static metadata image; topic changes need the controller quorum";

impl Broker {
    pub(super) fn delete_topics(&self, req: &DeleteTopicsRequest, version: i16, corr: i32) -> Result<Reply, Failure> {
        let resp = delete_topics_refused(req, ResponseError::InvalidRequest, NO_QUORUM);
        respond(ApiKey::DeleteTopics, version, corr, &resp)
    }

    pub(super) fn create_partitions(
        &self,
        req: &CreatePartitionsRequest,
        version: i16,
        corr: i32,
    ) -> Result<Reply, Failure> {
        let resp = create_partitions_refused(req, ResponseError::InvalidRequest, NO_QUORUM);
        respond(ApiKey::CreatePartitions, version, corr, &resp)
    }
}

/// Every partition of the topics `older` has and `newer` does not, by topic id (KIP-516): a topic deleted,
/// or deleted and recreated under a new id between the two images (Kafka's `TopicsDelta.deletedTopicIds`,
/// which `BrokerMetadataPublisher` turns into the partitions it hands `onPartitionsDeleted`).
pub(super) fn deleted_partitions(older: &MetadataImage, newer: &MetadataImage) -> BTreeSet<TopicPartition> {
    older
        .topics
        .iter()
        .filter(|(name, t)| newer.topic(name).is_none_or(|n| n.topic_id != t.topic_id))
        .flat_map(|(name, t)| t.partitions.keys().map(|p| TopicPartition::new(name.clone(), *p)))
        .collect()
}

impl Broker {
    /// Logs this broker holds that the image no longer has a place for: the topic is gone (a RemoveTopic
    /// record), or it exists under another topic id (deleted and recreated while this broker was away;
    /// KIP-516 keeps the id in `partition.metadata`), or the partition does not exist. Kafka's
    /// `ReplicaManager.applyDelta` deletes the first two; a restarted broker's stray-log detection
    /// (KAFKA-14616) all of them.
    fn stray_logs(&self) -> Vec<TopicPartition> {
        self.logs
            .partitions()
            .filter(|tp| {
                let Some(topic) = self.image.topic(&tp.topic) else {
                    return true;
                };
                let id = topic.topic_id.to_string();
                let other_id = self
                    .logs
                    .get(tp)
                    .and_then(|l| l.topic_id())
                    .is_some_and(|found| found != id);
                other_id || !topic.partitions.contains_key(&tp.partition)
            })
            .cloned()
            .collect()
    }

    /// Deletes every stray log (see [`Broker::stray_logs`]): the partition stops being served at once (its
    /// role goes with the next `sync_roles`) and its files leave the disk crash-safely
    /// (`LogManager::delete_log`). `Err` is a storage failure.
    pub(super) fn delete_stray_logs(&mut self, disk: &mut dyn Disk) -> Result<(), LogError> {
        for tp in self.stray_logs() {
            self.replicas.remove(&tp);
            self.checkpointed_hw.remove(&tp);
            self.deleted_since_checkpoint = true;
            if self.logs.delete_log(disk, &tp)? {
                self.marks.push(TOPIC_LOG_DELETED_MARK);
            }
        }
        Ok(())
    }

    /// Rewrites `replication-offset-checkpoint` after logs were deleted, so a log recreated under the same
    /// name never starts from the deleted one's high watermark.
    pub(super) fn checkpoint_deleted_high_watermarks(&mut self, disk: &mut dyn Disk) -> Result<(), LogError> {
        if std::mem::take(&mut self.deleted_since_checkpoint) {
            self.checkpoint_high_watermarks(disk)?;
        }
        Ok(())
    }
}
