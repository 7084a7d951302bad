//! Reads a partition's log straight from a node's disk files, as the checkers' outside view: after a power
//! loss, how far each partition's log survived (its durable frontier); at the end, every replica's records.
//!
//! The scan follows Kafka's recovery rule: segments in base-offset order, batches validated (length, magic,
//! CRC-32C), and the log ends at the first bad batch.

use std::collections::BTreeMap;

use crate::history::ReadRecord;
use crate::protocol::batch::{decode_records, validate_batch, BatchHeader};

/// Files of a disk by path: what a scan needs from it.
pub trait DiskFiles {
    /// Every file path, sorted.
    fn paths(&self) -> Vec<String>;
    fn contents(&self, path: &str) -> Option<Vec<u8>>;
}

/// The `.log` segments of one partition's log in `dir`, by base offset: `(base offset, path)`.
fn segments(files: &dyn DiskFiles, dir: &str) -> Vec<(i64, String)> {
    let prefix = format!("{dir}/");
    let mut out: Vec<(i64, String)> = files
        .paths()
        .into_iter()
        .filter_map(|p| {
            Some((
                p.strip_prefix(&prefix)?.strip_suffix(".log")?.parse::<i64>().ok()?,
                p.clone(),
            ))
        })
        .collect();
    out.sort();
    out
}

/// The valid batches of one partition's log in `dir` (`topic-partition`), in order, each with its bytes.
fn valid_batches(files: &dyn DiskFiles, dir: &str) -> Vec<(BatchHeader, Vec<u8>)> {
    let segments = segments(files, dir);
    let mut out = vec![];
    let mut next: Option<i64> = None;
    for (base, path) in segments {
        if next.is_some_and(|n| base != n) {
            break;
        }
        let data = files.contents(&path).unwrap_or_default();
        let mut pos = 0;
        while pos < data.len() {
            let Ok(size) = BatchHeader::parse(&data[pos..]).map(|h| h.total_size()) else {
                return out;
            };
            let Some(bytes) = data.get(pos..pos.saturating_add(size)) else {
                return out;
            };
            let Ok(h) = validate_batch(bytes) else { return out };
            if next.is_some_and(|n| h.base_offset != n) || h.base_offset < base {
                return out;
            }
            let end = pos + h.total_size();
            next = Some(h.last_offset() + 1);
            out.push((h, data[pos..end].to_vec()));
            pos = end;
        }
        if next.is_none() {
            next = Some(base);
        }
    }
    out
}

/// The first offset of `dir`'s log that is not wholly on disk: every record below it survives recovery.
pub fn frontier(files: &dyn DiskFiles, dir: &str) -> i64 {
    valid_batches(files, dir).last().map_or(0, |(h, _)| h.last_offset() + 1)
}

/// A byte inside what some batch's CRC covers (attributes through the last record), in a segment of `dir`,
/// chosen by `pick` from the count of candidates: `(path, byte offset in the file)`.
pub fn crc_covered_byte(files: &dyn DiskFiles, dir: &str, pick: &mut dyn FnMut(u64) -> u64) -> Option<(String, u64)> {
    let prefix = format!("{dir}/");
    let mut spans: Vec<(String, u64, u64)> = vec![];
    for path in files
        .paths()
        .into_iter()
        .filter(|p| p.starts_with(&prefix) && p.ends_with(".log"))
    {
        let data = files.contents(&path).unwrap_or_default();
        let mut pos = 0usize;
        while let Ok(h) = BatchHeader::parse(&data[pos..]) {
            let end = pos + h.total_size();
            if end > data.len() {
                break;
            }
            spans.push((path.clone(), (pos + 21) as u64, end as u64));
            pos = end;
        }
    }
    let total: u64 = spans.iter().map(|(_, a, b)| b - a).sum();
    if total == 0 {
        return None;
    }
    let mut at = pick(total);
    for (path, a, b) in spans {
        if at < b - a {
            return Some((path, a + at));
        }
        at -= b - a;
    }
    None
}

/// Where log recovery will truncate each partition at the next start, as Kafka's LogLoader does after an
/// unclean stop: from the segment holding the recovery point on, every batch is validated and the log ends
/// at the first bad one. Empty after a clean shutdown (the marker skips recovery). Keys are `topic-partition`
/// directories; only partitions that lose something are listed.
pub fn recovery_truncations(files: &dyn DiskFiles) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    if files.contents(crate::log::manager::CLEAN_SHUTDOWN_FILE).is_some() {
        return out;
    }
    let points = recovery_points(files);
    for dir in partition_dirs(files) {
        let recovery_point = points.get(&dir).copied().unwrap_or(0);
        let segments = segments(files, &dir);
        let start = segments
            .iter()
            .rposition(|(base, _)| *base <= recovery_point)
            .unwrap_or(0);
        'segments: for (base, path) in segments.iter().skip(start) {
            let data = files.contents(path).unwrap_or_default();
            let mut pos = 0;
            let mut next = *base;
            while pos < data.len() {
                let valid = BatchHeader::parse(&data[pos..])
                    .ok()
                    .and_then(|h| data.get(pos..pos.saturating_add(h.total_size())))
                    .and_then(|bytes| validate_batch(bytes).ok());
                match valid {
                    Some(h) => {
                        next = h.last_offset() + 1;
                        pos += h.total_size();
                    }
                    None => {
                        out.insert(dir.clone(), next);
                        break 'segments;
                    }
                }
            }
        }
    }
    out
}

/// The recovery points in the log dir's `recovery-point-offset-checkpoint` (`0`, count, `topic partition
/// offset` lines), by `topic-partition`; empty when missing or unreadable (recovery then starts at 0).
fn recovery_points(files: &dyn DiskFiles) -> BTreeMap<String, i64> {
    let text = files
        .contents(crate::log::checkpoint::RECOVERY_POINT_CHECKPOINT)
        .unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .skip(2)
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (topic, partition, offset) = (parts.next()?, parts.next()?, parts.next()?.parse().ok()?);
            Some((format!("{topic}-{partition}"), offset))
        })
        .collect()
}

/// Every partition's log as recovery would keep it (see [`records`]), by `topic-partition`.
pub fn all_records(files: &dyn DiskFiles) -> BTreeMap<String, Vec<ReadRecord>> {
    partition_dirs(files)
        .into_iter()
        .map(|d| (d.clone(), records(files, &d)))
        .collect()
}

/// Per partition, the first offset whose record did not come through a power loss intact: the log after it
/// (`after`) matches the log before it (`before`) record for record below that offset. Comparing records,
/// not just lengths, matters: an unsynced truncation that the power loss undoes brings older records back
/// at offsets that newer ones had taken.
pub fn intact_frontiers(
    before: &BTreeMap<String, Vec<ReadRecord>>,
    after: &BTreeMap<String, Vec<ReadRecord>>,
) -> BTreeMap<String, i64> {
    let empty = vec![];
    before
        .iter()
        .map(|(dir, old)| {
            let new = after.get(dir).unwrap_or(&empty);
            let same = old.iter().zip(new.iter()).take_while(|(a, b)| a == b).count();
            let frontier = match (old.get(same), same) {
                (Some(first_lost), _) => first_lost.offset,
                (None, 0) => 0,
                (None, n) => old[n - 1].offset + 1,
            };
            (dir.clone(), frontier)
        })
        .collect()
}

/// Every partition directory on the disk (`topic-partition` names with a `.log` file).
pub fn partition_dirs(files: &dyn DiskFiles) -> Vec<String> {
    let mut dirs: Vec<String> = files
        .paths()
        .into_iter()
        .filter(|p| p.ends_with(".log"))
        .filter_map(|p| p.rsplit_once('/').map(|(d, _)| d.to_string()))
        .collect();
    dirs.dedup();
    dirs
}

/// Per partition directory, its durable frontier.
pub fn frontiers(files: &dyn DiskFiles) -> BTreeMap<String, i64> {
    partition_dirs(files)
        .into_iter()
        .map(|d| (d.clone(), frontier(files, &d)))
        .collect()
}

/// Whether some partition's last segment holds bytes past its last valid batch (a torn or corrupt tail that
/// log recovery will truncate).
pub fn has_torn_tail(files: &dyn DiskFiles) -> bool {
    partition_dirs(files).iter().any(|dir| {
        let valid: usize = valid_batches(files, dir).iter().map(|(_, b)| b.len()).sum();
        let prefix = format!("{dir}/");
        let on_disk: usize = files
            .paths()
            .iter()
            .filter(|p| p.starts_with(&prefix) && p.ends_with(".log"))
            .filter_map(|p| files.contents(p))
            .map(|c| c.len())
            .sum();
        on_disk > valid
    })
}

impl DiskFiles for super::disk::SimDisk {
    fn paths(&self) -> Vec<String> {
        self.files().into_iter().map(|(p, _)| p).collect()
    }

    fn contents(&self, path: &str) -> Option<Vec<u8>> {
        self.read_file(path)
    }
}

/// The log start offset a replica of `dir` (`topic-partition`) loads with (Kafka's `UnifiedLog` on load):
/// the larger of its first segment's base offset and its `log-start-offset-checkpoint` entry; 0 with
/// neither. Retention and DeleteRecords move it; compaction never does (a cleaned group keeps its first
/// segment's base), so a compacted log's first record may lie far above it.
pub fn log_start_offset(files: &dyn DiskFiles, dir: &str) -> i64 {
    let first_base = segments(files, dir).first().map_or(0, |(base, _)| *base);
    let checkpointed = files
        .contents(crate::log::checkpoint::LOG_START_OFFSET_CHECKPOINT)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .and_then(|text| {
            text.lines().skip(2).find_map(|line| {
                let mut f = line.split_whitespace();
                let (topic, partition, offset) = (f.next()?, f.next()?, f.next()?);
                (format!("{topic}-{partition}") == dir).then(|| offset.parse::<i64>().ok())?
            })
        })
        .unwrap_or(0);
    first_base.max(checkpointed)
}

/// Every record a running replica serves from `dir`: like [`records`], but a batch whose CRC fails is
/// skipped (its records are not counted) rather than ending the log — below the recovery point Kafka trusts
/// the disk and keeps serving what follows; consumers catch the bad batch by its CRC.
pub fn served_records(files: &dyn DiskFiles, dir: &str) -> Vec<ReadRecord> {
    let segments = segments(files, dir);
    let mut out = vec![];
    for (_, path) in segments {
        let data = files.contents(&path).unwrap_or_default();
        let mut pos = 0;
        while let Ok(h) = BatchHeader::parse(&data[pos..]) {
            let Some(bytes) = data.get(pos..pos.saturating_add(h.total_size())) else {
                break;
            };
            pos += h.total_size();
            if validate_batch(bytes).is_err() {
                continue;
            }
            push_records(bytes, &mut out);
        }
    }
    out
}

/// Every batch of `dir` whose CRC holds, as the replica-divergence checker compares them.
pub fn batch_digests(files: &dyn DiskFiles, dir: &str) -> Vec<crate::history::BatchDigest> {
    let mut out = vec![];
    for (_, path) in segments(files, dir) {
        let data = files.contents(&path).unwrap_or_default();
        let mut pos = 0;
        while let Ok(h) = BatchHeader::parse(&data[pos..]) {
            let Some(bytes) = data.get(pos..pos.saturating_add(h.total_size())) else {
                break;
            };
            pos += h.total_size();
            if validate_batch(bytes).is_ok() {
                out.push(crate::history::BatchDigest {
                    base_offset: h.base_offset,
                    last_offset: h.base_offset + i64::from(h.last_offset_delta),
                    partition_leader_epoch: h.partition_leader_epoch,
                    batch_length: h.batch_length,
                    crc: h.crc,
                });
            }
        }
    }
    out
}

/// Appends a valid batch's records, values as text.
fn push_records(batch: &[u8], out: &mut Vec<ReadRecord>) {
    for r in decode_records(batch).unwrap_or_default() {
        out.push(ReadRecord::decoded(r.offset, r.value.as_deref(), &r.headers));
    }
}

/// Every record of `dir`'s log, in order, with its value as text.
pub fn records(files: &dyn DiskFiles, dir: &str) -> Vec<ReadRecord> {
    let mut out = vec![];
    for (_, bytes) in valid_batches(files, dir) {
        push_records(&bytes, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files(BTreeMap<String, Vec<u8>>);

    impl DiskFiles for Files {
        fn paths(&self) -> Vec<String> {
            self.0.keys().cloned().collect()
        }
        fn contents(&self, path: &str) -> Option<Vec<u8>> {
            self.0.get(path).cloned()
        }
    }

    fn files(entries: &[(&str, &str)]) -> Files {
        Files(
            entries
                .iter()
                .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
                .collect(),
        )
    }

    #[test]
    fn the_log_start_is_the_first_segments_base_not_the_first_record() {
        // A cleaned first segment keeps its base (0) though its first records are gone.
        let f = files(&[
            ("kv-0/00000000000000000000.log", ""),
            ("kv-0/00000000000000000400.log", ""),
        ]);
        assert_eq!(log_start_offset(&f, "kv-0"), 0);
        let f = files(&[("kv-0/00000000000000000400.log", "")]);
        assert_eq!(log_start_offset(&f, "kv-0"), 400);
    }

    #[test]
    fn a_checkpointed_log_start_above_the_first_segment_wins() {
        let f = files(&[
            ("kv-0/00000000000000000000.log", ""),
            ("log-start-offset-checkpoint", "0\n2\nkv 1 70\nkv 0 35\n"),
        ]);
        assert_eq!(log_start_offset(&f, "kv-0"), 35);
        assert_eq!(log_start_offset(&f, "kv-1"), 70);
        assert_eq!(log_start_offset(&f, "other-0"), 0);
    }
}
