//! Kafka's text checkpoint files: version `0`, an entry count, then one entry a line. Used for
//! `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint` (`topic partition offset`) and
//! `leader-epoch-checkpoint` (`epoch start_offset`). Written through [`write_atomically`].

use std::collections::BTreeMap;

use crate::log::disk::{write_atomically, Disk};
use crate::log::LogError;
use crate::types::TopicPartition;

pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
const VERSION: &str = "0";

fn malformed(file: &str, line: usize, reason: impl Into<String>) -> LogError {
    LogError::MalformedFile {
        file: file.to_string(),
        line,
        reason: reason.into(),
    }
}

/// Writes `entries` (one line each) crash-safely.
pub fn write_entries(disk: &mut dyn Disk, path: &str, entries: &[String]) -> Result<(), LogError> {
    let mut text = format!("{VERSION}\n{}\n", entries.len());
    for e in entries {
        text.push_str(e);
        text.push('\n');
    }
    Ok(write_atomically(disk, path, text.as_bytes())?)
}

/// Reads the entry lines (with their 1-based line numbers) after checking version and count;
/// `None` if the file does not exist.
pub fn read_entries(disk: &mut dyn Disk, path: &str) -> Result<Option<Vec<(usize, String)>>, LogError> {
    if !disk.exists(path) {
        return Ok(None);
    }
    let len = disk.len(path)?;
    let bytes = disk.read_at(path, 0, len as usize)?;
    let text = String::from_utf8(bytes).map_err(|e| malformed(path, 0, format!("not UTF-8: {e}")))?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, VERSION)) => {}
        Some((n, other)) => return Err(malformed(path, n, format!("unsupported version {other:?}"))),
        None => return Err(malformed(path, 1, "empty file")),
    }
    let count: usize = match lines.next() {
        Some((n, c)) => c
            .trim()
            .parse()
            .map_err(|_| malformed(path, n, format!("bad entry count {c:?}")))?,
        None => return Err(malformed(path, 2, "missing entry count")),
    };
    let entries: Vec<(usize, String)> = lines.map(|(n, l)| (n, l.to_string())).collect();
    if entries.len() != count {
        return Err(malformed(
            path,
            2,
            format!("count says {count} entries, file has {}", entries.len()),
        ));
    }
    Ok(Some(entries))
}

/// Reads a `topic partition offset` checkpoint; an absent file is empty.
pub fn read_offsets(disk: &mut dyn Disk, path: &str) -> Result<BTreeMap<TopicPartition, i64>, LogError> {
    let mut out = BTreeMap::new();
    for (n, line) in read_entries(disk, path)?.unwrap_or_default() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [topic, partition, offset] = fields[..] else {
            return Err(malformed(
                path,
                n,
                format!("expected `topic partition offset`, got {line:?}"),
            ));
        };
        let partition: i32 = partition
            .parse()
            .map_err(|_| malformed(path, n, format!("bad partition {partition:?}")))?;
        let offset: i64 = offset
            .parse()
            .map_err(|_| malformed(path, n, format!("bad offset {offset:?}")))?;
        out.insert(TopicPartition::new(topic, partition), offset);
    }
    Ok(out)
}

/// Writes a `topic partition offset` checkpoint.
pub fn write_offsets(disk: &mut dyn Disk, path: &str, offsets: &BTreeMap<TopicPartition, i64>) -> Result<(), LogError> {
    let lines: Vec<String> = offsets
        .iter()
        .map(|(tp, o)| format!("{} {} {o}", tp.topic, tp.partition))
        .collect();
    write_entries(disk, path, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::mem_disk::MemDisk;

    #[test]
    fn offsets_checkpoint_round_trips_in_kafkas_format() {
        let mut disk = MemDisk::new();
        let mut offsets = BTreeMap::new();
        offsets.insert(TopicPartition::new("a-b", 3), 42);
        offsets.insert(TopicPartition::new("t", 0), 7);
        write_offsets(&mut disk, RECOVERY_POINT_CHECKPOINT, &offsets).expect("write");
        assert_eq!(
            disk.bytes(RECOVERY_POINT_CHECKPOINT),
            b"0\n2\na-b 3 42\nt 0 7\n".to_vec()
        );
        assert_eq!(read_offsets(&mut disk, RECOVERY_POINT_CHECKPOINT), Ok(offsets));
        assert_eq!(read_offsets(&mut disk, "missing"), Ok(BTreeMap::new()));
    }

    #[test]
    fn malformed_checkpoint_names_file_and_line() {
        let mut disk = MemDisk::new();
        disk.create("cp").expect("create");
        disk.write_at("cp", 0, b"0\n2\nt 0 1\nt zero 2\n").expect("write");
        match read_offsets(&mut disk, "cp") {
            Err(LogError::MalformedFile { file, line, .. }) => {
                assert_eq!((file.as_str(), line), ("cp", 4))
            }
            other => panic!("expected a malformed file error, got {other:?}"),
        }
        disk.write_at("cp", 0, b"1\n").expect("write");
        assert!(matches!(
            read_offsets(&mut disk, "cp"),
            Err(LogError::MalformedFile { line: 1, .. })
        ));
        disk.truncate("cp", 0).expect("truncate");
        disk.write_at("cp", 0, b"0\n3\nt 0 1\n").expect("write");
        assert!(matches!(
            read_offsets(&mut disk, "cp"),
            Err(LogError::MalformedFile { line: 2, .. })
        ));
    }
}
