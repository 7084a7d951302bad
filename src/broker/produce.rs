//! Produce (Kafka's `KafkaApis.handleProduceRequest` → `ReplicaManager.appendRecords`).

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use std::collections::BTreeMap;

use super::{partition_error, respond, Broker, ConnId, Failure, Reply};
use crate::log::Disk;
use crate::protocol::errors::code;
use crate::replication::WaitStatus;
use crate::types::LeaderEpoch;
use crate::types::TopicPartition;

/// The size of a v2 record batch header (`DefaultRecordBatch.RECORD_BATCH_OVERHEAD`).
const BATCH_HEADER_BYTES: usize = 61;

/// One partition's outcome: the appended batch's base offset, last offset and leader epoch, or an error
/// code and message.
type PartitionOutcome = Result<(i64, i64, LeaderEpoch), (i16, String)>;

/// An acks=all produce waiting for the ISR: the response so far, to finish when the purgatory completes it.
#[derive(Debug, Clone)]
pub(super) struct ParkedProduce {
    response: ProduceResponse,
    version: i16,
    correlation_id: i32,
}

impl Broker {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn produce(
        &mut self,
        disk: &mut dyn Disk,
        conn_id: ConnId,
        req: &ProduceRequest,
        version: i16,
        corr: i32,
        now_ms: i64,
    ) -> Result<Reply, Failure> {
        let mut responses = Vec::new();
        let mut first_error: Option<String> = None;
        let mut waits = Vec::new();
        for t in &req.topic_data {
            let mut partitions = Vec::new();
            for p in &t.partition_data {
                let tp = TopicPartition::new(t.name.0.to_string(), p.index);
                let outcome = if matches!(req.acks, -1..=1) {
                    self.produce_partition(disk, &tp, p.records.as_deref(), req.acks, now_ms)?
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
                    Ok((base_offset, last_offset, epoch)) => {
                        if req.acks == -1 {
                            waits.push((tp.clone(), last_offset + 1, epoch));
                        }
                        r.with_base_offset(base_offset)
                    }
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
        let mut response = ProduceResponse::default().with_responses(responses);
        if !waits.is_empty() {
            // acks=all: answer now if the high watermark already covers every batch, else wait for it.
            let mut codes = BTreeMap::new();
            for (tp, required, epoch) in &waits {
                match self.acks_status(tp, *required, *epoch) {
                    WaitStatus::Done(c) => {
                        codes.insert(tp.clone(), c);
                    }
                    WaitStatus::Waiting => break,
                }
            }
            if codes.len() < waits.len() {
                let deadline_ms = now_ms.saturating_add(i64::from(req.timeout_ms.max(0)));
                let parked = ParkedProduce {
                    response,
                    version,
                    correlation_id: corr,
                };
                self.acks.park(conn_id, parked, deadline_ms, waits);
                return Ok(Reply::ParkProduce { deadline_ms });
            }
            set_codes(&mut response, &codes);
        }
        respond(ApiKey::Produce, version, corr, &response)
    }

    /// Completes the acks=all produces whose partitions are done or whose time ran out.
    pub(super) fn poll_acks(&mut self, now_ms: i64) -> Vec<(ConnId, Result<Reply, Failure>)> {
        let mut acks = std::mem::take(&mut self.acks);
        let done = acks.poll(now_ms, |tp, required, epoch| self.acks_status(tp, required, epoch));
        self.acks = acks;
        done.into_iter()
            .map(|(conn_id, mut parked, codes)| {
                set_codes(&mut parked.response, &codes);
                let reply = respond(ApiKey::Produce, parked.version, parked.correlation_id, &parked.response);
                (conn_id, reply)
            })
            .collect()
    }

    fn produce_partition(
        &mut self,
        disk: &mut dyn Disk,
        tp: &TopicPartition,
        records: Option<&[u8]>,
        acks: i16,
        now_ms: i64,
    ) -> Result<PartitionOutcome, Failure> {
        let leader_epoch = match self.led_partition(tp, -1) {
            Ok(part) => part.leader_epoch,
            Err(error) => return Ok(Err((error, format!("{tp} is not led here")))),
        };
        if acks == -1 {
            // Kafka's `Partition.appendRecordsToLeader`: the committed ISR must hold min.insync.replicas.
            let isr = self.known_isr(tp).map_or(0, |i| i.len());
            let min_isr = self.min_insync_replicas(tp);
            if isr < min_isr {
                let message = format!("{tp}: ISR of {isr} below min.insync.replicas {min_isr}");
                return Ok(Err((code::NOT_ENOUGH_REPLICAS, message)));
            }
        }
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
                let leo = log.log_end_offset();
                if let Some(l) = self.leader_state_mut(tp) {
                    l.on_leader_append(leo, now_ms);
                }
                Ok(Ok((info.first_offset, info.last_offset, leader_epoch)))
            }
            Err(e) => Ok(Err((partition_error(&e)?, e.to_string()))),
        }
    }
}

/// Sets each completed partition's error code (a failed one loses its base offset, as Kafka answers).
fn set_codes(response: &mut ProduceResponse, codes: &BTreeMap<TopicPartition, i16>) {
    for t in &mut response.responses {
        for p in &mut t.partition_responses {
            let tp = TopicPartition::new(t.name.0.to_string(), p.index);
            if let Some(c) = codes.get(&tp).copied().filter(|c| *c != code::NONE) {
                p.error_code = c;
                p.base_offset = -1;
                p.error_message = Some(StrBytes::from_static_str("acks=all not satisfied"));
            }
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
