//! The log's producer state: leader checks, snapshots on roll and shutdown, rebuild on load and truncation.

use super::*;
use crate::log::mem_disk::MemDisk;
use crate::log::producer_state::{list_snapshots, snapshot_file_name};
use crate::log::{AppendInfo, LogConfig, LogManager};
use crate::protocol::batch::BatchBuilder;
use crate::types::TopicPartition;

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        index_interval_bytes: 100,
        segment_index_bytes: 1_024,
        ..LogConfig::default()
    }
}

fn setup(config: LogConfig) -> (MemDisk, LogManager) {
    let mut disk = MemDisk::new();
    let (mut mgr, _) = LogManager::startup(&mut disk, config.clone(), 0).expect("startup");
    mgr.create_log(&mut disk, &tp(), "topic-id-1", config, 0)
        .expect("create");
    (disk, mgr)
}

/// An idempotent batch of `n` records of producer `pid`.
fn idempotent(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(1_000).producer(pid, epoch, seq);
    for _ in 0..n {
        b.push(1_000, None, Some(&[b'v'; 40]), &[]);
    }
    b.build()
}

fn send(disk: &mut MemDisk, mgr: &mut LogManager, mut batch: Vec<u8>) -> Result<AppendInfo, LogError> {
    mgr.get_mut(&tp())
        .expect("log")
        .append_as_leader(disk, &mut batch, 0, 1_000)
}

fn log(mgr: &LogManager) -> &Log {
    mgr.get(&tp()).expect("log")
}

/// Producer 1 sends `batches` batches of 2 records in order; returns the log end offset.
fn send_in_order(disk: &mut MemDisk, mgr: &mut LogManager, batches: i32) -> i64 {
    for i in 0..batches {
        let info = send(disk, mgr, idempotent(1, 0, i * 2, 2)).expect("in order");
        assert!(!info.duplicate);
    }
    log(mgr).log_end_offset()
}

/// The state a replay of the whole log gives.
fn rebuilt_from_scratch(disk: &mut MemDisk, mgr: &LogManager) -> ProducerStateManager {
    let mut state = ProducerStateManager::new();
    log(mgr).replay_into(disk, &mut state).expect("replay");
    state.update_map_end_offset(log(mgr).log_end_offset());
    state
}

fn restart(disk: &mut MemDisk) -> (LogManager, Vec<crate::log::RecoveryReport>) {
    LogManager::startup(disk, small_config(), 0).expect("restart")
}

#[test]
fn a_retried_batch_is_not_appended_and_answers_its_original_offsets() {
    let (mut disk, mut mgr) = setup(LogConfig::default());
    send(&mut disk, &mut mgr, idempotent(1, 0, 0, 3)).expect("first");
    send(&mut disk, &mut mgr, idempotent(1, 0, 3, 2)).expect("second");
    let retry = send(&mut disk, &mut mgr, idempotent(1, 0, 0, 3)).expect("duplicate");
    assert!(retry.duplicate);
    assert_eq!((retry.first_offset, retry.last_offset), (0, 2));
    assert_eq!((retry.num_records, retry.valid_bytes), (0, 0));
    assert_eq!(log(&mgr).log_end_offset(), 5, "nothing appended");
}

#[test]
fn a_sequence_gap_is_out_of_order_and_appends_nothing() {
    let (mut disk, mut mgr) = setup(LogConfig::default());
    send(&mut disk, &mut mgr, idempotent(1, 0, 0, 2)).expect("first");
    let gap = send(&mut disk, &mut mgr, idempotent(1, 0, 3, 1));
    assert_eq!(
        gap,
        Err(LogError::OutOfOrderSequence {
            producer_id: 1,
            first_seq: 3,
            last_seq: Some(1)
        })
    );
    assert_eq!(log(&mgr).log_end_offset(), 2);
}

#[test]
fn an_older_epoch_is_fenced_with_invalid_producer_epoch() {
    let (mut disk, mut mgr) = setup(LogConfig::default());
    send(&mut disk, &mut mgr, idempotent(1, 0, 0, 1)).expect("epoch 0");
    send(&mut disk, &mut mgr, idempotent(1, 1, 0, 1)).expect("epoch 1 starts at 0");
    let fenced = send(&mut disk, &mut mgr, idempotent(1, 0, 1, 1));
    assert_eq!(
        fenced,
        Err(LogError::InvalidProducerEpoch {
            producer_id: 1,
            epoch: 0,
            current_epoch: 1
        })
    );
    assert_eq!(log(&mgr).log_end_offset(), 2);
}

#[test]
fn batches_without_a_producer_id_are_appended_unchecked() {
    let (mut disk, mut mgr) = setup(LogConfig::default());
    let mut plain = BatchBuilder::new(0);
    plain.push(0, None, Some(b"v"), &[]);
    for expected in 0..2 {
        let info = send(&mut disk, &mut mgr, plain.build()).expect("append");
        assert_eq!((info.first_offset, info.duplicate), (expected, false));
    }
    assert_eq!(log(&mgr).producer_state().producers().count(), 0);
    assert_eq!(log(&mgr).producer_state().map_end_offset(), 2);
}

#[test]
fn a_roll_snapshots_the_state_at_the_new_segment_base_and_keeps_the_newest_two() {
    let (mut disk, mut mgr) = setup(small_config());
    send_in_order(&mut disk, &mut mgr, 12);
    let bases = log(&mgr).segment_base_offsets();
    assert!(bases.len() >= 4, "segments rolled: {bases:?}");
    let snapshots = list_snapshots(&mut disk, "t-0").expect("list");
    assert_eq!(
        snapshots,
        bases[bases.len() - 2..].to_vec(),
        "the newest two, at segment bases"
    );
    let newest = *snapshots.last().expect("one");
    let loaded = crate::log::producer_state::read_snapshot(&mut disk, "t-0", newest).expect("readable");
    assert_eq!(loaded.map_end_offset(), newest);
    let entry = loaded.entry(1).expect("producer 1");
    assert_eq!(entry.batches.back().map(|b| b.last_offset), Some(newest - 1));
}

#[test]
fn a_crash_restart_rebuilds_the_state_from_the_newest_snapshot_plus_the_log() {
    let (mut disk, mut mgr) = setup(small_config());
    let leo = send_in_order(&mut disk, &mut mgr, 13);
    let before = log(&mgr).producer_state().clone();
    assert_eq!(before, rebuilt_from_scratch(&mut disk, &mgr));
    let (mut mgr, reports) = restart(&mut disk); // no shutdown: a process crash
    assert_eq!(reports[0].skipped_snapshots, Vec::<String>::new());
    assert_eq!(log(&mgr).producer_state(), &before);
    let retry = send(&mut disk, &mut mgr, idempotent(1, 0, 20, 2)).expect("retry of the 11th batch");
    assert!(retry.duplicate);
    assert_eq!((retry.first_offset, retry.last_offset), (20, 21));
    assert_eq!(log(&mgr).log_end_offset(), leo);
}

#[test]
fn a_clean_shutdown_snapshots_at_the_log_end_so_the_next_load_replays_nothing() {
    let (mut disk, mut mgr) = setup(small_config());
    let leo = send_in_order(&mut disk, &mut mgr, 5);
    let before = log(&mgr).producer_state().clone();
    mgr.shutdown(&mut disk).expect("shutdown");
    let snapshots = list_snapshots(&mut disk, "t-0").expect("list");
    assert_eq!(snapshots.last(), Some(&leo));
    assert!(snapshots.len() <= SNAPSHOTS_TO_RETAIN, "{snapshots:?}");
    let (mgr, _) = restart(&mut disk);
    assert_eq!(log(&mgr).producer_state(), &before);
}

fn flip_last_byte(disk: &mut MemDisk, offset: i64) {
    let path = join("t-0", &snapshot_file_name(offset));
    let len = disk.len(&path).expect("snapshot exists");
    let byte = disk.read_at(&path, len - 1, 1).expect("read")[0];
    disk.write_at(&path, len - 1, &[byte ^ 0x10]).expect("write");
}

#[test]
fn a_corrupt_snapshot_falls_back_to_an_older_one_then_to_the_log_start() {
    let (mut disk, mut mgr) = setup(small_config());
    send_in_order(&mut disk, &mut mgr, 12);
    let before = log(&mgr).producer_state().clone();
    let snapshots = list_snapshots(&mut disk, "t-0").expect("list");
    assert_eq!(snapshots.len(), 2);
    flip_last_byte(&mut disk, snapshots[1]);
    let (mgr, reports) = restart(&mut disk);
    assert_eq!(reports[0].skipped_snapshots.len(), 1, "{:?}", reports[0]);
    assert!(reports[0].skipped_snapshots[0].contains("crc"), "{:?}", reports[0]);
    assert_eq!(log(&mgr).producer_state(), &before, "from the older snapshot");
    assert_eq!(
        list_snapshots(&mut disk, "t-0"),
        Ok(vec![snapshots[0]]),
        "the corrupt one is deleted"
    );
    flip_last_byte(&mut disk, snapshots[0]);
    let (mgr, reports) = restart(&mut disk);
    assert_eq!(reports[0].skipped_snapshots.len(), 1);
    assert_eq!(log(&mgr).producer_state(), &before, "from the log start");
    assert_eq!(list_snapshots(&mut disk, "t-0"), Ok(vec![]));
}

#[test]
fn truncation_drops_snapshots_above_the_new_end_and_rebuilds_the_state() {
    let (mut disk, mut mgr) = setup(small_config());
    send_in_order(&mut disk, &mut mgr, 12);
    let snapshots = list_snapshots(&mut disk, "t-0").expect("list");
    let cut = snapshots[1] - 2; // below the newest snapshot, at a batch boundary
    mgr.truncate_to(&mut disk, &tp(), cut).expect("truncate");
    assert_eq!(log(&mgr).log_end_offset(), cut);
    assert_eq!(list_snapshots(&mut disk, "t-0"), Ok(vec![snapshots[0]]));
    assert_eq!(log(&mgr).producer_state(), &rebuilt_from_scratch(&mut disk, &mgr));
    assert_eq!(log(&mgr).producer_state().map_end_offset(), cut);
    // The batch the truncation removed is the producer's next one again, not a duplicate.
    let resent = send(&mut disk, &mut mgr, idempotent(1, 0, cut as i32, 2)).expect("appended again");
    assert_eq!((resent.first_offset, resent.duplicate), (cut, false));
}

#[test]
fn truncating_below_the_log_start_removes_every_snapshot_and_the_state() {
    let (mut disk, mut mgr) = setup(small_config());
    send_in_order(&mut disk, &mut mgr, 12);
    let log = mgr.get_mut(&tp()).expect("log");
    log.truncate_fully_and_start_at(&mut disk, 100).expect("truncate fully");
    assert_eq!(list_snapshots(&mut disk, "t-0"), Ok(vec![]));
    assert_eq!(log.producer_state(), &ProducerStateManager::starting_at(100));
    let info = send(&mut disk, &mut mgr, idempotent(1, 0, 0, 1)).expect("a fresh start");
    assert_eq!(info.first_offset, 100);
}
