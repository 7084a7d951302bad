//! Kafka's `LogManager` for one log dir (root `""`): loads every `<topic>-<partition>` directory at startup,
//! keeps the recovery-point and log-start-offset checkpoints, flushes by `flush.ms`, and shuts down cleanly
//! (the `.kafka_cleanshutdown` marker lets the next startup skip recovery).

use std::collections::BTreeMap;

use crate::log::checkpoint::{read_offsets, write_offsets, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT};
use crate::log::cleaner::{CleanOutcome, CLEANER_OFFSET_CHECKPOINT};
use crate::log::config::LogConfig;
use crate::log::disk::{join, write_atomically, Disk};
use crate::log::log::Log;
use crate::log::recovery::{partition_metadata_text, LoadOffsets, RecoveryReport, PARTITION_METADATA};
use crate::log::retention::RetentionOutcome;
use crate::log::LogError;
use crate::types::TopicPartition;

/// Kafka's marker of a clean shutdown in a log dir.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
const ROOT: &str = "";
/// Kafka's suffix of a log dir scheduled for deletion (`<topic>-<partition>.<uuid>-delete`).
pub const DELETE_DIR_SUFFIX: &str = "-delete";

#[derive(Debug)]
pub struct LogManager {
    logs: BTreeMap<TopicPartition, Log>,
    default_config: LogConfig,
    /// The log cleaner's checkpoints (`cleaner-offset-checkpoint`): below each offset the log is clean.
    cleaner_checkpoints: BTreeMap<TopicPartition, i64>,
    /// Logs the cleaner failed on with a non-storage error (Kafka's `markPartitionUncleanable`).
    uncleanable: BTreeMap<TopicPartition, String>,
}

impl LogManager {
    /// Loads every log of the log dir. After a clean shutdown the logs are trusted (and the marker removed,
    /// durably); otherwise each is recovered from its checkpointed recovery point.
    pub fn startup(
        disk: &mut dyn Disk,
        default_config: LogConfig,
        now_ms: i64,
    ) -> Result<(LogManager, Vec<RecoveryReport>), LogError> {
        let clean_shutdown = disk.exists(CLEAN_SHUTDOWN_FILE);
        let recovery_points = read_offsets(disk, RECOVERY_POINT_CHECKPOINT)?;
        let log_starts = read_offsets(disk, LOG_START_OFFSET_CHECKPOINT)?;
        let cleaner_checkpoints = read_offsets(disk, CLEANER_OFFSET_CHECKPOINT)?;
        let mut logs = BTreeMap::new();
        let mut reports = Vec::new();
        for name in disk.list(ROOT)? {
            if name.ends_with(DELETE_DIR_SUFFIX) {
                // A deletion that did not finish (Kafka's `-delete` dirs are removed at startup too).
                remove_log_dir(disk, &name)?;
                continue;
            }
            let Some(tp) = TopicPartition::parse(&name).filter(|tp| tp.dir_name() == name) else {
                continue;
            };
            let offsets = LoadOffsets {
                recovery_point: recovery_points.get(&tp).copied().unwrap_or(0),
                log_start_offset: log_starts.get(&tp).copied().unwrap_or(0),
                clean_shutdown,
            };
            let (log, report) = Log::load(disk, &tp, default_config.clone(), offsets, now_ms)?;
            if log.topic_id().is_none() && log.log_end_offset() == 0 {
                // No `partition.metadata` and no record: the tail of an interrupted `delete_log` (after its
                // `partition.metadata` went) or `create_log` (before it was written). Nothing to recover, and
                // no topic id to recognise it by: finish removing it; the image recreates the log if needed.
                remove_log_dir(disk, &name)?;
                continue;
            }
            logs.insert(tp, log);
            reports.push(report);
        }
        if clean_shutdown {
            disk.remove(CLEAN_SHUTDOWN_FILE)?;
            disk.sync_dir(ROOT)?;
        }
        let manager = LogManager {
            logs,
            default_config,
            cleaner_checkpoints,
            uncleanable: BTreeMap::new(),
        };
        Ok((manager, reports))
    }

    pub fn default_config(&self) -> &LogConfig {
        &self.default_config
    }

    /// Creates the log (directory, `partition.metadata`, first segment), durably; idempotent. A log that
    /// exists with another topic id is an error (KIP-516).
    pub fn create_log(
        &mut self,
        disk: &mut dyn Disk,
        tp: &TopicPartition,
        topic_id: &str,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<(), LogError> {
        if let Some(log) = self.logs.get_mut(tp) {
            return match log.topic_id.as_deref() {
                Some(found) if found != topic_id => Err(LogError::InconsistentTopicId {
                    tp: tp.to_string(),
                    expected: topic_id.to_string(),
                    found: found.to_string(),
                }),
                Some(_) => Ok(()),
                None => {
                    write_atomically(
                        disk,
                        &join(&tp.dir_name(), PARTITION_METADATA),
                        partition_metadata_text(topic_id).as_bytes(),
                    )?;
                    log.topic_id = Some(topic_id.to_string());
                    Ok(())
                }
            };
        }
        let dir = tp.dir_name();
        if !disk.exists(&dir) {
            disk.create_dir(&dir)?;
        }
        disk.sync_dir(ROOT)?;
        write_atomically(
            disk,
            &join(&dir, PARTITION_METADATA),
            partition_metadata_text(topic_id).as_bytes(),
        )?;
        let log = Log::create(disk, tp, Some(topic_id.to_string()), config, now_ms)?;
        self.logs.insert(tp.clone(), log);
        Ok(())
    }

    /// Deletes a log (its topic was deleted, or recreated under a new topic id: Kafka's `asyncDelete`),
    /// crash-safely with what the disk model offers (no directory rename, so no `<tp>.<id>-delete` dir):
    /// 1. the checkpoints are rewritten without it, so a log recreated under the name never inherits its
    ///    recovery point, log start offset or cleaner offset;
    /// 2. every file but `partition.metadata` is removed and the directory synced;
    /// 3. then `partition.metadata`, then the directory itself (root synced).
    ///
    /// Whatever point a crash or power loss hits, a directory that still holds old data still holds its
    /// old `partition.metadata`, so the broker recognises it as the deleted topic's and deletes it again
    /// (see `Broker::apply_image`) instead of serving it under a new topic id. `Ok(false)`: no such log.
    pub fn delete_log(&mut self, disk: &mut dyn Disk, tp: &TopicPartition) -> Result<bool, LogError> {
        if self.logs.remove(tp).is_none() {
            return Ok(false);
        }
        self.uncleanable.remove(tp);
        if self.cleaner_checkpoints.remove(tp).is_some() {
            write_offsets(disk, CLEANER_OFFSET_CHECKPOINT, &self.cleaner_checkpoints)?;
        }
        self.checkpoint(disk)?;
        remove_log_dir(disk, &tp.dir_name())?;
        Ok(true)
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<&Log> {
        self.logs.get(tp)
    }

    pub fn get_mut(&mut self, tp: &TopicPartition) -> Option<&mut Log> {
        self.logs.get_mut(tp)
    }

    pub fn partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.logs.keys()
    }

    /// Every log with its partition, in partition order.
    pub fn iter(&self) -> impl Iterator<Item = (&TopicPartition, &Log)> {
        self.logs.iter()
    }

    /// Truncates one log and rewrites the recovery-point checkpoint at once, as Kafka's
    /// `LogManager.truncateTo` does: a checkpointed recovery point above the new end would let a later
    /// recovery trust bytes written after the truncation.
    pub fn truncate_to(&mut self, disk: &mut dyn Disk, tp: &TopicPartition, offset: i64) -> Result<(), LogError> {
        let log = self
            .logs
            .get_mut(tp)
            .ok_or_else(|| LogError::UnknownPartition { tp: tp.to_string() })?;
        log.truncate_to(disk, offset)?;
        // Kafka's `LogCleaner.maybeTruncateCheckpoint`: the clean section ends at the log end at most.
        let leo = log.log_end_offset();
        let mut cleaner_moved = false;
        if let Some(c) = self.cleaner_checkpoints.get_mut(tp).filter(|c| **c > leo) {
            *c = leo;
            cleaner_moved = true;
        }
        if cleaner_moved {
            write_offsets(disk, CLEANER_OFFSET_CHECKPOINT, &self.cleaner_checkpoints)?;
        }
        self.checkpoint(disk)
    }

    /// One pass of the log cleaner (Kafka's `CleanerThread`, which cleans the filthiest log until none is
    /// dirty enough and then backs off `log.cleaner.backoff.ms`; here every log dirty enough is cleaned once
    /// per pass): each log with `compact` in its `cleanup.policy` and a high watermark in `high_watermarks`
    /// is cleaned below it; the cleaner checkpoints are written if any moved. A storage failure is an
    /// error; any other error marks that log uncleanable and the pass goes on.
    pub fn clean_logs(
        &mut self,
        disk: &mut dyn Disk,
        high_watermarks: &BTreeMap<TopicPartition, i64>,
        now_ms: i64,
    ) -> Result<BTreeMap<TopicPartition, CleanOutcome>, LogError> {
        let mut out = BTreeMap::new();
        for (tp, log) in self.logs.iter_mut() {
            let Some(hw) = high_watermarks.get(tp) else { continue };
            if self.uncleanable.contains_key(tp) {
                continue;
            }
            let checkpoint = self
                .cleaner_checkpoints
                .get(tp)
                .copied()
                .unwrap_or(log.log_start_offset());
            match log.clean(disk, checkpoint, *hw, now_ms) {
                Ok(Some(outcome)) => {
                    self.cleaner_checkpoints.insert(tp.clone(), outcome.end_offset);
                    out.insert(tp.clone(), outcome);
                }
                Ok(None) => {}
                Err(LogError::Disk(e)) => return Err(LogError::Disk(e)),
                Err(e) => {
                    self.uncleanable.insert(tp.clone(), e.to_string());
                }
            }
        }
        if !out.is_empty() {
            write_offsets(disk, CLEANER_OFFSET_CHECKPOINT, &self.cleaner_checkpoints)?;
        }
        Ok(out)
    }

    /// The cleaner checkpoint of a log (where its dirty section starts), if it was ever cleaned.
    pub fn cleaner_checkpoint(&self, tp: &TopicPartition) -> Option<i64> {
        self.cleaner_checkpoints.get(tp).copied()
    }

    /// Logs the cleaner gave up on, with why.
    pub fn uncleanable(&self) -> &BTreeMap<TopicPartition, String> {
        &self.uncleanable
    }

    /// Writes both checkpoint files (recovery points, log start offsets), each crash-safely.
    pub fn checkpoint(&mut self, disk: &mut dyn Disk) -> Result<(), LogError> {
        let recovery_points = self
            .logs
            .iter()
            .map(|(tp, l)| (tp.clone(), l.recovery_point()))
            .collect();
        write_offsets(disk, RECOVERY_POINT_CHECKPOINT, &recovery_points)?;
        let log_starts = self
            .logs
            .iter()
            .map(|(tp, l)| (tp.clone(), l.log_start_offset()))
            .collect();
        write_offsets(disk, LOG_START_OFFSET_CHECKPOINT, &log_starts)
    }

    /// One retention pass over every log in `high_watermarks` (Kafka's `cleanupLogs`, run every
    /// `log.retention.check.interval.ms`): each log deletes what its policy allows below its high watermark
    /// and removes its `.deleted` files that are due; the log start offsets are checkpointed if any moved.
    /// Returns the logs that deleted segments, with what went.
    pub fn delete_old_segments(
        &mut self,
        disk: &mut dyn Disk,
        high_watermarks: &BTreeMap<TopicPartition, i64>,
        now_ms: i64,
    ) -> Result<BTreeMap<TopicPartition, RetentionOutcome>, LogError> {
        let mut out = BTreeMap::new();
        for (tp, log) in self.logs.iter_mut() {
            log.delete_pending_files(disk, now_ms)?;
            let Some(hw) = high_watermarks.get(tp) else {
                continue;
            };
            let before = log.log_start_offset();
            let outcome = log.delete_old_segments(disk, *hw, now_ms)?;
            if !outcome.deleted.is_empty() || outcome.log_start_offset != before {
                out.insert(tp.clone(), outcome);
            }
        }
        if !out.is_empty() {
            self.checkpoint(disk)?;
        }
        Ok(out)
    }

    /// Raises one log's start offset (DeleteRecords on the leader, or a follower taking the leader's) and
    /// checkpoints it when it moved. `Ok(false)`: it was already there.
    pub fn increment_log_start_offset(
        &mut self,
        disk: &mut dyn Disk,
        tp: &TopicPartition,
        new_start: i64,
        high_watermark: i64,
    ) -> Result<bool, LogError> {
        let log = self
            .logs
            .get_mut(tp)
            .ok_or_else(|| LogError::UnknownPartition { tp: tp.to_string() })?;
        let moved = log.maybe_increment_log_start_offset(disk, new_start, high_watermark)?;
        if moved {
            self.checkpoint(disk)?;
        }
        Ok(moved)
    }

    /// Flushes every log whose last flush is `flush.ms` old (Kafka's `flushDirtyLogs`).
    pub fn flush_dirty(&mut self, disk: &mut dyn Disk, now_ms: i64) -> Result<(), LogError> {
        for log in self.logs.values_mut() {
            log.flush_if_due(disk, now_ms)?;
        }
        Ok(())
    }

    /// Flushes and closes every log, checkpoints, then writes `.kafka_cleanshutdown` durably.
    pub fn shutdown(&mut self, disk: &mut dyn Disk) -> Result<(), LogError> {
        for log in self.logs.values_mut() {
            log.close(disk)?;
        }
        self.checkpoint(disk)?;
        if !disk.exists(CLEAN_SHUTDOWN_FILE) {
            disk.create(CLEAN_SHUTDOWN_FILE)?;
        }
        disk.sync(CLEAN_SHUTDOWN_FILE)?;
        disk.sync_dir(ROOT)?;
        Ok(())
    }
}

/// Removes a partition directory: its data files (directory synced), then `partition.metadata`, then the
/// directory (root synced). The order keeps the topic id on disk for as long as any data is.
fn remove_log_dir(disk: &mut dyn Disk, dir: &str) -> Result<(), LogError> {
    let files = disk.list(dir)?;
    for f in files.iter().filter(|f| *f != PARTITION_METADATA) {
        disk.remove(&join(dir, f))?;
    }
    disk.sync_dir(dir)?;
    if files.iter().any(|f| f == PARTITION_METADATA) {
        disk.remove(&join(dir, PARTITION_METADATA))?;
        disk.sync_dir(dir)?;
    }
    disk.remove(dir)?;
    disk.sync_dir(ROOT)?;
    Ok(())
}
