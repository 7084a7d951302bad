//! A controller's durable state on its disk: the `__cluster_metadata-0` log (the Raft entries, one record
//! batch each, kept by `src/log` with its recovery) and the `quorum-state` file (epoch and vote, written
//! atomically and synced before a vote leaves the node, KAFKA-10533).

use uuid::Uuid;

use super::wire::{batches_to_entries, entry_to_batch, METADATA_PARTITION, METADATA_TOPIC};
use crate::log::disk::{join, write_atomically, Disk};
use crate::log::{LogConfig, LogManager};
use crate::raft::{Entry, PersistedState};
use crate::types::TopicPartition;

/// Kafka's `quorum-state` file name, inside the metadata partition's directory.
pub const QUORUM_STATE_FILE: &str = "quorum-state";

/// The topic id Kafka gives `__cluster_metadata` (`Uuid.METADATA_TOPIC_ID`).
fn metadata_topic_id() -> String {
    Uuid::from_u128(1).to_string()
}

pub struct MetadataStore {
    logs: LogManager,
    tp: TopicPartition,
}

fn metadata_log_config() -> LogConfig {
    LogConfig {
        // `metadata.log.segment.bytes` (1 GiB) and `metadata.log.segment.ms` (7 days): runs never roll.
        flush_messages: u64::MAX,
        flush_ms: i64::MAX,
        ..LogConfig::default()
    }
}

impl MetadataStore {
    /// Recovers the metadata log and the quorum state. Everything recovered is synced first, so the core may
    /// count it as flushed.
    pub fn open(disk: &mut dyn Disk, now_ms: i64) -> Result<(MetadataStore, PersistedState), String> {
        let tp = TopicPartition::new(METADATA_TOPIC, METADATA_PARTITION);
        let (mut logs, _) =
            LogManager::startup(disk, metadata_log_config(), now_ms).map_err(|e| format!("metadata log: {e}"))?;
        logs.create_log(disk, &tp, &metadata_topic_id(), metadata_log_config(), now_ms)
            .map_err(|e| format!("creating the metadata log: {e}"))?;
        let mut store = MetadataStore { logs, tp };
        let entries = store.read_all(disk)?;
        let end = entries.len() as u64;
        store.flush(disk)?;
        let (epoch, voted_for) = read_quorum_state(disk, &store.quorum_state_path())?;
        let persisted = PersistedState {
            epoch,
            voted_for,
            entries,
            flushed_end: end,
        };
        Ok((store, persisted))
    }

    fn quorum_state_path(&self) -> String {
        join(&self.tp.dir_name(), QUORUM_STATE_FILE)
    }

    fn read_all(&mut self, disk: &mut dyn Disk) -> Result<Vec<Entry>, String> {
        let log = self
            .logs
            .get_mut(&self.tp)
            .expect("the metadata log was created at open");
        let mut entries = vec![];
        let mut next = log.log_start_offset();
        while next < log.log_end_offset() {
            let data = log
                .read(disk, next, 1 << 20, None, true)
                .map_err(|e| format!("reading the metadata log at {next}: {e}"))?;
            let batch = batches_to_entries(&data.records).map_err(|e| format!("metadata log at {next}: {e}"))?;
            let Some(last) = batch.last() else {
                return Err(format!("metadata log: nothing readable at offset {next}"));
            };
            next = last.offset as i64 + 1;
            entries.extend(batch);
        }
        if entries.iter().enumerate().any(|(i, e)| e.offset != i as u64) {
            return Err("metadata log: entries do not start at 0 or have gaps".into());
        }
        Ok(entries)
    }

    pub fn persist_quorum_state(
        &mut self,
        disk: &mut dyn Disk,
        epoch: i32,
        voted_for: Option<i32>,
    ) -> Result<(), String> {
        let text = format!(
            "{{\"leaderEpoch\":{epoch},\"votedId\":{},\"data_version\":0}}\n",
            voted_for.unwrap_or(-1)
        );
        write_atomically(disk, &self.quorum_state_path(), text.as_bytes()).map_err(|e| format!("quorum-state: {e}"))
    }

    pub fn truncate_to(&mut self, disk: &mut dyn Disk, offset: u64) -> Result<(), String> {
        self.logs
            .truncate_to(disk, &self.tp, offset as i64)
            .map_err(|e| format!("truncating the metadata log to {offset}: {e}"))
    }

    pub fn append(&mut self, disk: &mut dyn Disk, entries: &[Entry], now_ms: i64) -> Result<(), String> {
        let log = self
            .logs
            .get_mut(&self.tp)
            .expect("the metadata log was created at open");
        for e in entries {
            log.append_as_follower(disk, &entry_to_batch(e), now_ms)
                .map_err(|err| format!("appending metadata entry {}: {err}", e.offset))?;
        }
        Ok(())
    }

    pub fn flush(&mut self, disk: &mut dyn Disk) -> Result<(), String> {
        let log = self
            .logs
            .get_mut(&self.tp)
            .expect("the metadata log was created at open");
        let end = log.log_end_offset();
        log.flush(disk, end)
            .map_err(|e| format!("flushing the metadata log: {e}"))
    }

    pub fn log_end_offset(&self) -> i64 {
        self.logs.get(&self.tp).map_or(0, |l| l.log_end_offset())
    }
}

/// `(epoch, voted_for)` from the quorum-state file; a missing file is a fresh node.
fn read_quorum_state(disk: &mut dyn Disk, path: &str) -> Result<(i32, Option<i32>), String> {
    if !disk.exists(path) {
        return Ok((0, None));
    }
    let len = disk.len(path).map_err(|e| format!("{path}: {e}"))?;
    let bytes = disk
        .read_at(path, 0, len as usize)
        .map_err(|e| format!("{path}: {e}"))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("{path}: not JSON: {e}"))?;
    let int = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_i64)
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| format!("{path}: no integer {k}"))
    };
    let epoch = int("leaderEpoch")?;
    let voted = int("votedId")?;
    Ok((epoch, (voted >= 0).then_some(voted)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::mem_disk::MemDisk;

    fn entry(epoch: i32, offset: u64, data: &[u8]) -> Entry {
        Entry {
            epoch,
            offset,
            data: data.to_vec(),
        }
    }

    #[test]
    fn entries_and_the_vote_survive_a_reopen() {
        let mut disk = MemDisk::new();
        let (mut store, p) = MetadataStore::open(&mut disk, 0).unwrap();
        assert_eq!(p, PersistedState::default());
        let entries = vec![entry(1, 0, b""), entry(1, 1, b"[]"), entry(2, 2, b"x")];
        store.append(&mut disk, &entries, 0).unwrap();
        store.flush(&mut disk).unwrap();
        store.persist_quorum_state(&mut disk, 2, Some(3)).unwrap();
        let (mut store, p) = MetadataStore::open(&mut disk, 0).unwrap();
        assert_eq!((p.epoch, p.voted_for, p.flushed_end), (2, Some(3), 3));
        assert_eq!(p.entries, entries);
        store.truncate_to(&mut disk, 1).unwrap();
        let (_, p) = MetadataStore::open(&mut disk, 0).unwrap();
        assert_eq!(p.entries, entries[..1]);
    }

    #[test]
    fn a_garbled_quorum_state_is_an_error_naming_the_file() {
        let mut disk = MemDisk::new();
        let (store, _) = MetadataStore::open(&mut disk, 0).unwrap();
        let path = store.quorum_state_path();
        write_atomically(&mut disk, &path, b"{\"leaderEpoch\":").unwrap();
        let err = MetadataStore::open(&mut disk, 0).err().unwrap();
        assert!(err.contains("quorum-state"), "{err}");
    }
}
