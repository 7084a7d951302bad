//! DeleteRecords (KIP-107, Kafka's `ReplicaManager.deleteRecords`): the leader raises a partition's log
//! start offset; segments wholly below it go at the next retention pass, followers take the new log start
//! from their fetch responses, and a fetch below it gets OFFSET_OUT_OF_RANGE.
//!
//! Deviation: Kafka parks the request (`DelayedDeleteRecords`) until every replica's log start reached the
//! offset and answers the low watermark (the minimum over the replicas); here the leader answers at once
//! with its own new log start offset.

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};

use super::{partition_error, respond, Broker, Failure, Reply};
use crate::log::Disk;
use crate::protocol::errors::code;
use crate::types::TopicPartition;

/// `DeleteRecordsRequest.HIGH_WATERMARK`: delete up to the high watermark.
const HIGH_WATERMARK: i64 = -1;

/// The mark of a DeleteRecords that moved a log start offset.
pub const DELETE_RECORDS_MARK: &str = "delete-records-moved-log-start";

impl Broker {
    pub(super) fn delete_records(
        &mut self,
        disk: &mut dyn Disk,
        req: &DeleteRecordsRequest,
        version: i16,
        corr: i32,
    ) -> Result<Reply, Failure> {
        let mut topics = Vec::new();
        for t in &req.topics {
            let mut partitions = Vec::new();
            for p in &t.partitions {
                let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                let result = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                partitions.push(match self.delete_records_partition(disk, &tp, p.offset)? {
                    Ok(low_watermark) => result.with_low_watermark(low_watermark),
                    Err(error) => result.with_error_code(error).with_low_watermark(-1),
                });
            }
            topics.push(
                DeleteRecordsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions),
            );
        }
        let response = DeleteRecordsResponse::default().with_topics(topics);
        respond(ApiKey::DeleteRecords, version, corr, &response)
    }

    /// `Ok(Ok(log start offset))`, a partition error, or a storage failure.
    fn delete_records_partition(
        &mut self,
        disk: &mut dyn Disk,
        tp: &TopicPartition,
        offset: i64,
    ) -> Result<Result<i64, i16>, Failure> {
        if let Err(error) = self.led_partition(tp, -1) {
            return Ok(Err(error));
        }
        let hw = self.high_watermark(tp);
        let target = if offset == HIGH_WATERMARK { hw } else { offset };
        if target < 0 || target > hw {
            return Ok(Err(code::OFFSET_OUT_OF_RANGE));
        }
        match self.logs.increment_log_start_offset(disk, tp, target, hw) {
            Ok(moved) => {
                if moved {
                    self.marks.push(DELETE_RECORDS_MARK);
                }
                Ok(Ok(self.logs.get(tp).map_or(-1, |l| l.log_start_offset())))
            }
            Err(e) => Ok(Err(partition_error(&e)?)),
        }
    }
}
