//! A stand-in for `crate::log::LogManager` while the log core is written on branch `log`: the same
//! signatures, kept in memory (no disk IO). `broker/mod.rs` names it through one `use` line; when the log
//! branch lands, that line points at `crate::log` and this file goes.

use std::collections::BTreeMap;

use crate::log::{Disk, DiskError};
use crate::types::TopicPartition;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub index_interval_bytes: u64,
    pub segment_index_bytes: u64,
    pub flush_messages: u64,
    pub flush_ms: i64,
    pub max_message_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: 604_800_000,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 << 20,
            flush_messages: i64::MAX as u64,
            flush_ms: i64::MAX,
            max_message_bytes: 1_048_588,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    RecordTooLarge { size: usize, max: u64 },
    #[error("corrupt record at byte {position}: {reason}")]
    CorruptRecord { position: usize, reason: String },
    #[error("offset {offset} outside [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("invalid records: {reason}")]
    InvalidRecords { reason: String },
    #[error("unexpected append offset {offset}: log end offset is {log_end_offset}")]
    UnexpectedAppendOffset { offset: i64, log_end_offset: i64 },
    #[error("{file}:{line}: {reason}")]
    MalformedFile {
        file: String,
        line: usize,
        reason: String,
    },
    #[error("{tp}: topic id {found} on disk, {expected} requested")]
    InconsistentTopicId {
        tp: String,
        expected: String,
        found: String,
    },
    #[error("no log for {tp}")]
    UnknownPartition { tp: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryReport {
    pub tp: TopicPartition,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub num_records: u32,
    pub valid_bytes: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchData {
    pub records: Vec<u8>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

#[derive(Debug, Default)]
pub struct Log {
    config: LogConfig,
    /// (base offset, last offset, batch bytes)
    batches: Vec<(i64, i64, Vec<u8>)>,
    log_end_offset: i64,
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Log {
    pub fn log_start_offset(&self) -> i64 {
        0
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    pub fn append_as_leader(
        &mut self,
        _disk: &mut dyn Disk,
        records: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let corrupt = |position, reason: &str| LogError::CorruptRecord {
            position,
            reason: reason.to_string(),
        };
        let mut pos = 0;
        let mut split = Vec::new();
        while pos < records.len() {
            if records.len() - pos < 61 {
                return Err(corrupt(pos, "batch header truncated"));
            }
            let len = be_i32(records, pos + 8);
            if len < 49 || len as usize > records.len() - pos - 12 {
                return Err(corrupt(pos, "batch length out of range"));
            }
            let size = 12 + len as usize;
            if size as u64 > self.config.max_message_bytes {
                return Err(LogError::RecordTooLarge {
                    size,
                    max: self.config.max_message_bytes,
                });
            }
            let crc = be_i32(records, pos + 17) as u32;
            if crc32c::crc32c(&records[pos + 21..pos + size]) != crc {
                return Err(corrupt(pos, "crc mismatch"));
            }
            split.push((pos, size));
            pos += size;
        }
        let first_offset = self.log_end_offset;
        let mut num_records = 0;
        for (at, size) in split {
            let batch = &mut records[at..at + size];
            let delta = be_i32(batch, 23) as i64;
            let count = be_i32(batch, 57) as usize;
            batch[0..8].copy_from_slice(&self.log_end_offset.to_be_bytes());
            batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
            let last = self.log_end_offset + delta;
            self.batches
                .push((self.log_end_offset, last, batch.to_vec()));
            self.log_end_offset = last + 1;
            num_records += count as u32;
        }
        Ok(AppendInfo {
            first_offset,
            last_offset: self.log_end_offset - 1,
            max_timestamp: now_ms,
            num_records,
            valid_bytes: pos,
        })
    }

    pub fn read(
        &mut self,
        _disk: &mut dyn Disk,
        start_offset: i64,
        max_bytes: usize,
        max_offset: Option<i64>,
        min_one_batch: bool,
    ) -> Result<FetchData, LogError> {
        if start_offset < 0 || start_offset > self.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset: start_offset,
                log_start_offset: 0,
                log_end_offset: self.log_end_offset,
            });
        }
        let limit = max_offset.unwrap_or(self.log_end_offset);
        let mut records = Vec::new();
        for (_, last, bytes) in self
            .batches
            .iter()
            .filter(|(_, last, _)| *last >= start_offset)
        {
            if *last >= limit {
                break;
            }
            if records.len() + bytes.len() > max_bytes && !(records.is_empty() && min_one_batch) {
                break;
            }
            records.extend_from_slice(bytes);
        }
        Ok(FetchData {
            records,
            log_start_offset: 0,
            log_end_offset: self.log_end_offset,
        })
    }
}

#[derive(Debug, Default)]
pub struct LogManager {
    logs: BTreeMap<TopicPartition, Log>,
}

impl LogManager {
    pub fn startup(
        _disk: &mut dyn Disk,
        _default_config: LogConfig,
        _now_ms: i64,
    ) -> Result<(LogManager, Vec<RecoveryReport>), LogError> {
        Ok((LogManager::default(), Vec::new()))
    }

    pub fn create_log(
        &mut self,
        _disk: &mut dyn Disk,
        tp: &TopicPartition,
        _topic_id: &str,
        config: LogConfig,
        _now_ms: i64,
    ) -> Result<(), LogError> {
        self.logs.entry(tp.clone()).or_insert_with(|| Log {
            config,
            ..Log::default()
        });
        Ok(())
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<&Log> {
        self.logs.get(tp)
    }

    pub fn get_mut(&mut self, tp: &TopicPartition) -> Option<&mut Log> {
        self.logs.get_mut(tp)
    }

    pub fn checkpoint(&mut self, _disk: &mut dyn Disk) -> Result<(), LogError> {
        Ok(())
    }

    pub fn flush_dirty(&mut self, _disk: &mut dyn Disk, _now_ms: i64) -> Result<(), LogError> {
        Ok(())
    }

    pub fn shutdown(&mut self, _disk: &mut dyn Disk) -> Result<(), LogError> {
        Ok(())
    }
}
