//! Kafka's `LogLoader`: opening a partition directory after a restart. After a clean shutdown the segments
//! and indexes are trusted; otherwise every segment from the one holding the recovery point on is
//! recovered — each batch validated (length, magic, CRC-32C, offsets), the log truncated at the first bad
//! one, later segments deleted, indexes rebuilt. Corrupt on-disk data never panics: recovery truncates.
//! Then the producer state is loaded from the newest readable snapshot at or below the recovered log end
//! offset and the log replayed from there (`Log::reload_producer_state`).

use std::collections::BTreeMap;

use crate::log::config::LogConfig;
use crate::log::disk::{join, Disk};
use crate::log::epoch_cache::{LeaderEpochCache, LEADER_EPOCH_CHECKPOINT};
use crate::log::log::Log;
use crate::log::producer_state::ProducerStateManager;
use crate::log::segment::{file_name, scan, LogSegment};
use crate::log::LogError;
use crate::types::TopicPartition;

pub const PARTITION_METADATA: &str = "partition.metadata";

/// What loading one log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    pub tp: TopicPartition,
    /// The offset recovery validated from (the log end offset after a clean shutdown: nothing validated).
    pub recovered_from: i64,
    pub truncated_bytes: u64,
    pub log_end_offset: i64,
    /// The first bad batch: file, byte and what was wrong.
    pub first_bad: Option<String>,
    /// Producer state snapshots that could not be read (deleted; the state came from an older one or the
    /// log start instead), each with the reason.
    pub skipped_snapshots: Vec<String>,
    /// Log cleaner swaps found committed and completed (`<base>.log.swap` files).
    pub swaps_completed: usize,
}

/// The checkpointed offsets a log is loaded with.
#[derive(Debug, Clone, Copy)]
pub struct LoadOffsets {
    pub recovery_point: i64,
    pub log_start_offset: i64,
    pub clean_shutdown: bool,
}

/// `partition.metadata` as Kafka writes it (KIP-516).
pub fn partition_metadata_text(topic_id: &str) -> String {
    format!("version: 0\ntopic_id: {topic_id}\n")
}

fn read_topic_id(disk: &mut dyn Disk, path: &str) -> Result<Option<String>, LogError> {
    if !disk.exists(path) {
        return Ok(None);
    }
    let len = disk.len(path)?;
    let text = String::from_utf8(disk.read_at(path, 0, len as usize)?).unwrap_or_default();
    let bad = |line: usize, reason: &str| LogError::MalformedFile {
        file: path.to_string(),
        line,
        reason: reason.to_string(),
    };
    let mut lines = text.lines();
    if lines.next() != Some("version: 0") {
        return Err(bad(1, "expected `version: 0`"));
    }
    match lines.next().and_then(|l| l.strip_prefix("topic_id: ")) {
        Some(id) if !id.trim().is_empty() => Ok(Some(id.trim().to_string())),
        _ => Err(bad(2, "expected `topic_id: <id>`")),
    }
}

/// Completes every log cleaner swap the directory holds (Kafka's `LogLoader` second pass over `.swap`
/// files): a `<base>.log.swap` was committed (synced, then its rename made durable), so every segment whose
/// base lies in [base, the swap's next offset) is one it replaces and goes; then the `.swap` files take their
/// final names, durably. `.cleaned` leftovers are not committed: `list_segments` deletes them.
pub(super) fn complete_swaps(disk: &mut dyn Disk, dir: &str) -> Result<usize, LogError> {
    let names = disk.list(dir)?;
    let swap_bases: Vec<i64> = names
        .iter()
        .filter_map(|n| n.strip_suffix(".log.swap"))
        .filter(|stem| stem.len() == 20)
        .filter_map(|stem| stem.parse::<i64>().ok())
        .collect();
    for &base in &swap_bases {
        let swap_log = join(dir, &file_name(base, ".log.swap"));
        let len = disk.len(&swap_log)?;
        let mut next = base;
        scan(disk, &swap_log, 0, len, &mut |_, h, _| {
            next = h.next_offset();
            Ok(true)
        })?;
        for name in &names {
            let Some(old) = name.strip_suffix(".log").and_then(|s| s.parse::<i64>().ok()) else {
                continue;
            };
            if old == base || (old > base && old < next) {
                for ext in [".log", ".index", ".timeindex"] {
                    let path = join(dir, &file_name(old, ext));
                    if disk.exists(&path) {
                        disk.remove(&path)?;
                    }
                }
            }
        }
        for ext in [".log", ".index", ".timeindex"] {
            let swap = join(dir, &file_name(base, &format!("{ext}.swap")));
            if disk.exists(&swap) {
                disk.rename(&swap, &join(dir, &file_name(base, ext)))?;
            }
        }
    }
    if !swap_bases.is_empty() {
        disk.sync_dir(dir)?;
    }
    Ok(swap_bases.len())
}

/// Segment base offsets from `<20 digits>.log` names; removes leftovers (temp files, orphan indexes).
fn list_segments(disk: &mut dyn Disk, dir: &str) -> Result<Vec<i64>, LogError> {
    let names = disk.list(dir)?;
    let mut bases = Vec::new();
    for name in &names {
        if let Some(stem) = name.strip_suffix(".log") {
            if let (20, Ok(base)) = (stem.len(), stem.parse::<i64>()) {
                bases.push(base);
            }
        }
    }
    for name in &names {
        let orphan = [".index", ".timeindex"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|stem| stem.parse::<i64>().map_or(true, |b| !bases.contains(&b)))
        });
        let temp = [".tmp", ".cleaned", ".swap", ".deleted"]
            .iter()
            .any(|s| name.ends_with(s));
        if orphan || temp {
            disk.remove(&join(dir, name))?;
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

impl Log {
    /// Loads the log in `tp`'s directory (Kafka's `LogLoader.load`).
    pub(super) fn load(
        disk: &mut dyn Disk,
        tp: &TopicPartition,
        config: LogConfig,
        offsets: LoadOffsets,
        now_ms: i64,
    ) -> Result<(Log, RecoveryReport), LogError> {
        let dir = tp.dir_name();
        let topic_id = read_topic_id(disk, &join(&dir, PARTITION_METADATA))?;
        let swaps_completed = complete_swaps(disk, &dir)?;
        let bases = list_segments(disk, &dir)?;
        let epoch_cache = LeaderEpochCache::load(disk, &join(&dir, LEADER_EPOCH_CHECKPOINT))?;
        let mut log = Log {
            tp: tp.clone(),
            dir: dir.clone(),
            topic_id,
            config,
            segments: BTreeMap::new(),
            log_start_offset: offsets.log_start_offset.max(0),
            log_end_offset: 0,
            recovery_point: offsets.recovery_point,
            epoch_cache,
            unflushed_messages: 0,
            last_flush_ms: now_ms,
            dir_dirty: false,
            producer_state: ProducerStateManager::new(),
            pending_deletes: Default::default(),
        };
        let mut report = RecoveryReport {
            tp: tp.clone(),
            recovered_from: offsets.recovery_point,
            truncated_bytes: 0,
            log_end_offset: 0,
            first_bad: None,
            skipped_snapshots: Vec::new(),
            swaps_completed,
        };
        let recover_from_base = match offsets.clean_shutdown {
            true => i64::MAX,
            false => bases
                .iter()
                .copied()
                .filter(|b| *b <= offsets.recovery_point)
                .max()
                .unwrap_or(i64::MIN),
        };
        let recovered_any = log.load_segments(disk, &bases, recover_from_base, now_ms, &mut report)?;
        log.finish_load(disk, offsets, recovered_any, now_ms)?;
        report.skipped_snapshots = log.reload_producer_state(disk)?;
        report.log_end_offset = log.log_end_offset;
        if offsets.clean_shutdown && !recovered_any {
            report.recovered_from = log.log_end_offset;
        }
        Ok((log, report))
    }

    /// Opens or recovers each segment in order; after a truncating recovery the later segments are deleted.
    /// Returns whether any segment was recovered.
    fn load_segments(
        &mut self,
        disk: &mut dyn Disk,
        bases: &[i64],
        recover_from_base: i64,
        now_ms: i64,
        report: &mut RecoveryReport,
    ) -> Result<bool, LogError> {
        let mut recovered_any = false;
        let mut min_offset = i64::MIN;
        for (i, &base) in bases.iter().enumerate() {
            if base < min_offset {
                // Segments never overlap; one that does is left over from an interrupted change.
                report.first_bad = Some(format!(
                    "segment {base} overlaps the previous one, which ends at {min_offset}"
                ));
                self.delete_later_segments(disk, &bases[i..], report)?;
                recovered_any = true;
                break;
            }
            let opened = match base >= recover_from_base {
                true => None,
                false => LogSegment::open(disk, &self.dir, base, &self.config, now_ms)?,
            };
            let seg = match opened {
                Some(seg) => seg,
                None => {
                    recovered_any = true;
                    report.recovered_from = report.recovered_from.min(base);
                    let mut seg = LogSegment::open_for_recovery(disk, &self.dir, base, &self.config, now_ms)?;
                    let outcome = seg.recover(disk, &self.config, min_offset)?;
                    for (epoch, start) in outcome.epochs {
                        if self.epoch_cache.latest_epoch().is_none_or(|e| epoch > e) {
                            self.epoch_cache.assign_in_memory(epoch, start);
                        }
                    }
                    if let Some(bad) = outcome.first_bad {
                        report.truncated_bytes += outcome.truncated_bytes;
                        report.first_bad = Some(bad);
                        self.segments.insert(base, seg);
                        self.delete_later_segments(disk, &bases[i + 1..], report)?;
                        break;
                    }
                    if base < recover_from_base {
                        seg.flush(disk)?; // a trusted segment whose indexes failed: make the rebuild durable
                    }
                    seg
                }
            };
            min_offset = seg.next_offset;
            self.segments.insert(base, seg);
        }
        Ok(recovered_any)
    }

    fn delete_later_segments(
        &mut self,
        disk: &mut dyn Disk,
        bases: &[i64],
        report: &mut RecoveryReport,
    ) -> Result<(), LogError> {
        for &base in bases {
            let seg = LogSegment::open_for_recovery(disk, &self.dir, base, &self.config, 0)?;
            report.truncated_bytes += seg.size;
            seg.delete(disk)?;
            self.dir_dirty = true;
        }
        Ok(())
    }

    /// Sets the offsets from the loaded segments, drops empty non-active segments' inconsistencies, and
    /// trims the epoch cache to the log (Kafka truncates it to the recovered log end offset).
    fn finish_load(
        &mut self,
        disk: &mut dyn Disk,
        offsets: LoadOffsets,
        recovered_any: bool,
        now_ms: i64,
    ) -> Result<(), LogError> {
        if self.segments.is_empty() {
            let start = self.log_start_offset;
            let seg = LogSegment::create(disk, &self.dir, start, &self.config, now_ms)?;
            self.segments.insert(start, seg);
            self.dir_dirty = true;
        }
        let config = self.config.clone();
        let last_base = *self.segments.keys().next_back().expect("one segment");
        for (base, seg) in self.segments.iter_mut() {
            if *base == last_base {
                seg.on_become_active(disk, &config)?;
            } else {
                seg.on_become_inactive(disk)?;
            }
        }
        let first_base = *self.segments.keys().next().expect("one segment");
        self.log_start_offset = self.log_start_offset.max(first_base);
        self.log_end_offset = self.segments.values().next_back().expect("one segment").next_offset;
        if self.log_end_offset < self.log_start_offset {
            let start = self.log_start_offset;
            self.truncate_fully_and_start_at(disk, start)?;
        }
        self.recovery_point = match offsets.clean_shutdown && !recovered_any {
            true => self.log_end_offset,
            false => offsets.recovery_point.clamp(self.log_start_offset, self.log_end_offset),
        };
        self.epoch_cache
            .persist_if_needed(disk, self.log_start_offset, self.log_end_offset)?;
        if self.dir_dirty {
            disk.sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }
}
