//! Record timestamps (KIP-32/33/79): `message.timestamp.type` LogAppendTime stamping on the leader, and
//! lookups by timestamp for ListOffsets (`offsetsForTimes`; -3 is KIP-734's max timestamp).
//!
//! With LogAppendTime the leader overwrites each batch's maxTimestamp with its clock and sets attribute
//! bit 3 (Kafka's `LogValidator` in place: `setMaxTimestamp(LOG_APPEND_TIME, now)`, CRC recomputed); every
//! record of such a batch reads that timestamp. With CreateTime the producer's timestamps stay, so time rolls
//! (`segment.ms`) and time retention follow the producer's clock.

use crate::log::disk::Disk;
use crate::log::log::Log;
use crate::log::segment::{scan, ScanEnd};
use crate::log::LogError;
use crate::protocol::batch::{decode_records, TimestampType};

/// ListOffsets' `MAX_TIMESTAMP` (KIP-734): the record with the largest timestamp.
pub const MAX_TIMESTAMP: i64 = -3;

const ATTRIBUTES_AT: usize = 21;
const MAX_TIMESTAMP_AT: usize = 35;
const CRC_AT: usize = 17;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;

/// Marks one whole batch LogAppendTime with maxTimestamp `now_ms`, recomputing its CRC-32C.
pub fn stamp_log_append_time(batch: &mut [u8], now_ms: i64) {
    assert!(batch.len() >= 61, "a batch of {} bytes has no v2 header", batch.len());
    let attrs = i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]]) | ATTR_LOG_APPEND_TIME;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attrs.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// What a lookup by timestamp found (Kafka's `TimestampAndOffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampAndOffset {
    pub timestamp: i64,
    pub offset: i64,
    pub leader_epoch: Option<i32>,
}

impl Log {
    /// The timestamp type the leader gives appended batches (`message.timestamp.type`).
    pub fn timestamp_type(&self) -> TimestampType {
        self.config.message_timestamp_type
    }

    /// The first record at or after the log start offset whose timestamp is ≥ `target` (Kafka's
    /// `fetchOffsetByTimestamp`), or with [`MAX_TIMESTAMP`] the first record holding the largest timestamp.
    /// `None` when no record qualifies. The caller bounds the answer by the high watermark.
    pub fn fetch_offset_by_timestamp(
        &mut self,
        disk: &mut dyn Disk,
        target: i64,
    ) -> Result<Option<TimestampAndOffset>, LogError> {
        let target = match target {
            MAX_TIMESTAMP => match self.segments.values().map(|s| s.max_timestamp_so_far).max() {
                Some(ts) if ts >= 0 => ts,
                _ => return Ok(None),
            },
            t if t < 0 => return Ok(None),
            t => t,
        };
        let start = self.log_start_offset;
        for seg in self.segments.values().filter(|s| s.max_timestamp_so_far >= target) {
            // The largest time index entry below the target: nothing before its offset can qualify.
            let entries = &seg.time_index.file.entries;
            let floor = entries.partition_point(|e| e.timestamp < target);
            let from = match floor {
                0 => seg.base_offset,
                i => seg.base_offset + entries[i - 1].relative_offset as i64,
            }
            .max(start);
            let (_, position) = seg.index.lookup(from);
            let mut found = None;
            let end = scan(disk, &seg.log_path, position, seg.size, &mut |_, h, bytes| {
                if h.last_offset() < from || h.max_timestamp < target {
                    return Ok(true);
                }
                let records = decode_records(bytes).map_err(|e| e.to_string())?;
                found = records
                    .iter()
                    .find(|r| r.offset >= from && r.timestamp >= target)
                    .map(|r| (r.timestamp, r.offset));
                Ok(found.is_none())
            })?;
            if let ScanEnd::Bad { position, reason } = end {
                return Err(LogError::InvalidRecords {
                    reason: format!("{} at byte {position}: {reason}", seg.log_path),
                });
            }
            if let Some((timestamp, offset)) = found {
                let leader_epoch = self
                    .epoch_cache
                    .entries()
                    .iter()
                    .rev()
                    .find(|e| e.start_offset <= offset)
                    .map(|e| e.epoch);
                return Ok(Some(TimestampAndOffset {
                    timestamp,
                    offset,
                    leader_epoch,
                }));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
#[path = "timestamps_tests.rs"]
mod tests;
