//! Produce (Kafka's `KafkaApis.handleProduceRequest` → `ReplicaManager.appendRecords`).

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::{partition_error, respond, Broker, Failure, Reply};
use crate::log::Disk;
use crate::protocol::errors::code;
use crate::types::TopicPartition;

/// The size of a v2 record batch header (`DefaultRecordBatch.RECORD_BATCH_OVERHEAD`).
const BATCH_HEADER_BYTES: usize = 61;

/// One partition's outcome: the base offset of the appended batch, or an error code and message.
type PartitionOutcome = Result<i64, (i16, String)>;

impl Broker {
    pub(super) fn produce(
        &mut self,
        disk: &mut dyn Disk,
        req: &ProduceRequest,
        version: i16,
        corr: i32,
        now_ms: i64,
    ) -> Result<Reply, Failure> {
        let mut responses = Vec::new();
        let mut first_error: Option<String> = None;
        for t in &req.topic_data {
            let mut partitions = Vec::new();
            for p in &t.partition_data {
                let tp = TopicPartition::new(t.name.0.to_string(), p.index);
                let outcome = if matches!(req.acks, -1..=1) {
                    self.produce_partition(disk, &tp, p.records.as_deref(), now_ms)?
                } else {
                    Err((
                        code::INVALID_REQUIRED_ACKS,
                        format!("acks={} is not -1, 0 or 1", req.acks),
                    ))
                };
                let log_start_offset = self.logs.get(&tp).map_or(-1, |l| l.log_start_offset());
                let mut r = PartitionProduceResponse::default()
                    .with_index(p.index)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(log_start_offset);
                r = match outcome {
                    Ok(base_offset) => r.with_base_offset(base_offset),
                    Err((error, message)) => {
                        first_error.get_or_insert_with(|| format!("{tp}: error {error}: {message}"));
                        let message = Some(StrBytes::from_string(message));
                        r.with_error_code(error)
                            .with_base_offset(-1)
                            .with_error_message(message)
                    }
                };
                partitions.push(r);
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(t.name.clone())
                    .with_partition_responses(partitions),
            );
        }
        if req.acks == 0 {
            // Kafka closes the connection of a failed acks=0 produce: the client learns of it only so.
            return Ok(first_error.map_or(Reply::NoResponse, |e| {
                Reply::Close(format!("acks=0 produce failed: {e}"))
            }));
        }
        respond(
            ApiKey::Produce,
            version,
            corr,
            &ProduceResponse::default().with_responses(responses),
        )
    }

    fn produce_partition(
        &mut self,
        disk: &mut dyn Disk,
        tp: &TopicPartition,
        records: Option<&[u8]>,
        now_ms: i64,
    ) -> Result<PartitionOutcome, Failure> {
        let leader_epoch = match self.led_partition(tp, -1) {
            Ok(part) => part.leader_epoch,
            Err(error) => return Ok(Err((error, format!("{tp} is not led here")))),
        };
        let records = records.unwrap_or(&[]);
        if let Err(message) = exactly_one_batch(records) {
            return Ok(Err((code::INVALID_RECORD, message)));
        }
        let mut records = records.to_vec();
        let Some(log) = self.logs.get_mut(tp) else {
            return Ok(Err((code::UNKNOWN_TOPIC_OR_PARTITION, format!("no log for {tp}"))));
        };
        match log.append_as_leader(disk, &mut records, leader_epoch, now_ms) {
            Ok(info) => {
                if info.duplicate {
                    // A retry of a batch already in the log: NONE with its original offset (Kafka since 2.x).
                    self.marks.push(super::DUPLICATE_BATCH_MARK);
                }
                Ok(Ok(info.first_offset))
            }
            Err(e) => Ok(Err((partition_error(&e)?, e.to_string()))),
        }
    }
}

/// Produce v3+ carries exactly one v2 record batch per partition (`ProduceRequest.validateRecords`);
/// the log validates the batch itself (CRC, lengths) on append.
fn exactly_one_batch(records: &[u8]) -> Result<(), String> {
    if records.len() < BATCH_HEADER_BYTES {
        return Err(format!("{} bytes of records: not one record batch", records.len()));
    }
    let magic = records[16];
    if magic != 2 {
        return Err(format!("record batch magic {magic}, only 2 is supported"));
    }
    let batch_length = i32::from_be_bytes([records[8], records[9], records[10], records[11]]);
    let size = 12i64 + i64::from(batch_length);
    if size < records.len() as i64 {
        return Err(format!(
            "more than one record batch ({} bytes, the first is {size})",
            records.len()
        ));
    }
    Ok(())
}
