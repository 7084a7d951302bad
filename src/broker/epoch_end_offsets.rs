//! OffsetForLeaderEpoch from consumers (KIP-320, Kafka's `ReplicaManager.lastOffsetForLeaderEpoch` and
//! `Partition.lastOffsetForLeaderEpoch`): the leader answers, for the epoch a consumer last fetched, the
//! largest epoch ≤ it in its own leader-epoch cache and that epoch's end offset (KIP-101/279). A consumer whose
//! position lies past that end offset saw records the new leader does not have: its log was truncated.
//!
//! The request's `current_leader_epoch` fences a consumer with a stale or too new view of the leader exactly
//! as Fetch does (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH). Followers use Fetch's diverging epoch instead
//! (KIP-595's path), so this handler only serves `replica_id` -1 in practice; it answers any caller alike.

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::{respond, Broker, Failure, Reply};
use crate::types::TopicPartition;

/// Kafka's `UNDEFINED_EPOCH` / `UNDEFINED_EPOCH_OFFSET`: the leader knows no epoch ≤ the one asked for.
const UNDEFINED_EPOCH: i32 = -1;
const UNDEFINED_EPOCH_OFFSET: i64 = -1;

impl Broker {
    pub(super) fn offset_for_leader_epoch(
        &self,
        req: &OffsetForLeaderEpochRequest,
        version: i16,
        corr: i32,
    ) -> Result<Reply, Failure> {
        let topics = req
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let tp = TopicPartition::new(t.topic.0.to_string(), p.partition);
                        let out = EpochEndOffset::default().with_partition(p.partition);
                        match self.epoch_end_offset(&tp, p.current_leader_epoch, p.leader_epoch) {
                            Ok((epoch, end_offset)) => out.with_leader_epoch(epoch).with_end_offset(end_offset),
                            Err(code) => out
                                .with_error_code(code)
                                .with_leader_epoch(UNDEFINED_EPOCH)
                                .with_end_offset(UNDEFINED_EPOCH_OFFSET),
                        }
                    })
                    .collect();
                OffsetForLeaderTopicResult::default()
                    .with_topic(t.topic.clone())
                    .with_partitions(partitions)
            })
            .collect();
        let resp = OffsetForLeaderEpochResponse::default().with_topics(topics);
        respond(ApiKey::OffsetForLeaderEpoch, version, corr, &resp)
    }

    /// (epoch, end offset) of the largest epoch ≤ `leader_epoch` on this leader, or
    /// (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET) when it knows none; `Err` is the partition's error code.
    fn epoch_end_offset(
        &self,
        tp: &TopicPartition,
        current_leader_epoch: i32,
        leader_epoch: i32,
    ) -> Result<(i32, i64), i16> {
        self.led_partition(tp, current_leader_epoch)?;
        let log = self
            .logs
            .get(tp)
            .ok_or(crate::protocol::errors::code::UNKNOWN_TOPIC_OR_PARTITION)?;
        Ok(log
            .end_offset_for_epoch(leader_epoch)
            .unwrap_or((UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)))
    }
}
