//! Unit tests of [`Log`] and [`LogManager`](crate::log::LogManager) over the in-memory disk.

use super::*;
use crate::log::mem_disk::MemDisk;
use crate::log::LogManager;
use crate::protocol::batch::{decode_records, BatchBuilder};

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1_000,
        index_interval_bytes: 100,
        segment_index_bytes: 1_024,
        ..LogConfig::default()
    }
}

/// A batch of `n` records of `value_bytes` each, timestamps from `ts`.
fn batch(n: usize, value_bytes: usize, ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(ts);
    for i in 0..n {
        b.push(ts + i as i64, None, Some(&vec![b'x'; value_bytes]), &[]);
    }
    b.build()
}

fn setup(config: LogConfig) -> (MemDisk, LogManager) {
    let mut disk = MemDisk::new();
    let (mut mgr, reports) = LogManager::startup(&mut disk, config.clone(), 0).expect("startup");
    assert!(reports.is_empty());
    mgr.create_log(&mut disk, &tp(), "topic-id-1", config, 0)
        .expect("create");
    (disk, mgr)
}

fn append(disk: &mut MemDisk, mgr: &mut LogManager, n: usize, epoch: i32) -> AppendInfo {
    let mut b = batch(n, 50, 1_000);
    mgr.get_mut(&tp())
        .expect("log")
        .append_as_leader(disk, &mut b, epoch, 1_000)
        .expect("append")
}

fn offsets_of(records: &[u8]) -> Vec<i64> {
    batches(records)
        .flat_map(|b| decode_records(b.expect("batch").1).expect("records"))
        .map(|r| r.offset)
        .collect()
}

#[test]
fn leader_append_assigns_offsets_and_epochs_in_place() {
    let (mut disk, mut mgr) = setup(LogConfig::default());
    let log = mgr.get_mut(&tp()).expect("log");
    let mut records = batch(3, 10, 5_000);
    records.extend(batch(2, 10, 6_000));
    let info = log.append_as_leader(&mut disk, &mut records, 4, 7_000).expect("append");
    assert_eq!((info.first_offset, info.last_offset, info.num_records), (0, 4, 5));
    assert_eq!((info.max_timestamp, info.valid_bytes), (6_001, records.len()));
    assert_eq!(log.log_end_offset(), 5);
    let second = validate_batch(&records[records.len() - batch(2, 10, 6_000).len()..]).expect("valid");
    assert_eq!((second.base_offset, second.partition_leader_epoch), (3, 4));
    assert_eq!(log.latest_epoch(), Some(4));
    assert_eq!(log.end_offset_for_epoch(4), Some((4, 5)));
    let data = log.read(&mut disk, 0, 1 << 20, None, false).expect("read");
    assert_eq!(data.records, records);
    assert_eq!(offsets_of(&data.records), vec![0, 1, 2, 3, 4]);
}

#[test]
fn leader_append_refuses_corrupt_oversized_and_partial_batches() {
    let (mut disk, mut mgr) = setup(LogConfig {
        max_message_bytes: 500,
        ..LogConfig::default()
    });
    let log = mgr.get_mut(&tp()).expect("log");
    let mut big = batch(10, 100, 0);
    assert!(matches!(
        log.append_as_leader(&mut disk, &mut big, 0, 0),
        Err(LogError::RecordTooLarge { max: 500, .. })
    ));
    let mut flipped = batch(1, 10, 0);
    flipped[70] ^= 1;
    assert!(matches!(
        log.append_as_leader(&mut disk, &mut flipped, 0, 0),
        Err(LogError::CorruptRecord {
            position: 0,
            source: crate::protocol::batch::BatchError::CrcMismatch { .. }
        })
    ));
    let mut partial = batch(1, 10, 0);
    partial.extend_from_slice(&batch(1, 10, 0)[..20]);
    assert!(matches!(
        log.append_as_leader(&mut disk, &mut partial, 0, 0),
        Err(LogError::InvalidRecords { .. })
    ));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn segments_roll_by_segment_bytes_and_reads_cross_them_by_offset() {
    let (mut disk, mut mgr) = setup(small_config());
    for _ in 0..20 {
        append(&mut disk, &mut mgr, 2, 0);
    }
    let log = mgr.get_mut(&tp()).expect("log");
    assert_eq!(log.log_end_offset(), 40);
    assert!(log.segment_count() > 3, "segments: {:?}", log.segment_base_offsets());
    // A rolled segment is flushed: the recovery point is the active segment's base.
    assert_eq!(
        log.recovery_point(),
        *log.segment_base_offsets().last().expect("segment")
    );
    let mut next = 0;
    while next < 40 {
        let data = log.read(&mut disk, next, 300, None, true).expect("read");
        let offsets = offsets_of(&data.records);
        assert!(!offsets.is_empty(), "read at {next} returned nothing");
        assert_eq!(offsets[0], next);
        next = *offsets.last().expect("offset") + 1;
    }
    for off in [0, 7, 13, 39] {
        let data = log.read(&mut disk, off, 1, None, true).expect("read");
        let offsets = offsets_of(&data.records);
        assert!(offsets.contains(&off), "offset {off} not in {offsets:?}");
    }
}

#[test]
fn rolled_segment_indexes_are_trimmed_and_active_ones_preallocated() {
    let (mut disk, mut mgr) = setup(small_config());
    for _ in 0..20 {
        append(&mut disk, &mut mgr, 2, 0);
    }
    let log = mgr.get(&tp()).expect("log");
    let bases = log.segment_base_offsets();
    let first = &log.segments[&bases[0]];
    assert_eq!(
        disk.len(&first.index.file.path),
        Ok(first.index.file.entries.len() as u64 * 8)
    );
    assert!(!first.index.file.entries.is_empty());
    let active = &log.segments[bases.last().expect("base")];
    assert_eq!(disk.len(&active.index.file.path), Ok(1_024));
}

#[test]
fn read_respects_max_offset_max_bytes_and_min_one_batch() {
    let (mut disk, mut mgr) = setup(LogConfig::default());
    for _ in 0..3 {
        append(&mut disk, &mut mgr, 2, 0);
    }
    let log = mgr.get_mut(&tp()).expect("log");
    let data = log.read(&mut disk, 0, 1 << 20, Some(4), false).expect("read");
    assert_eq!(offsets_of(&data.records), vec![0, 1, 2, 3]);
    let data = log.read(&mut disk, 0, 1 << 20, Some(3), false).expect("read");
    assert_eq!(
        offsets_of(&data.records),
        vec![0, 1],
        "a batch reaching max_offset is left out"
    );
    assert!(log
        .read(&mut disk, 0, 10, None, false)
        .expect("read")
        .records
        .is_empty());
    assert_eq!(
        offsets_of(&log.read(&mut disk, 0, 10, None, true).expect("read").records),
        vec![0, 1]
    );
    assert!(log
        .read(&mut disk, 6, 100, None, true)
        .expect("read at LEO")
        .records
        .is_empty());
    assert_eq!(
        log.read(&mut disk, 7, 100, None, true),
        Err(LogError::OffsetOutOfRange {
            offset: 7,
            log_start_offset: 0,
            log_end_offset: 6
        })
    );
}

#[test]
fn truncate_to_drops_whole_batches_segments_and_epochs() {
    let (mut disk, mut mgr) = setup(small_config());
    for i in 0..20 {
        append(&mut disk, &mut mgr, 2, i / 10);
    }
    let log = mgr.get_mut(&tp()).expect("log");
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 20)));
    log.truncate_to(&mut disk, 15).expect("truncate");
    assert_eq!(log.log_end_offset(), 14, "the batch holding 15 starts at 14");
    assert_eq!(log.latest_epoch(), Some(0));
    assert!(log.recovery_point() <= 14);
    let last_base = *log.segment_base_offsets().last().expect("base");
    assert!(last_base <= 14);
    let data = log.read(&mut disk, 12, 1 << 20, None, false).expect("read");
    assert_eq!(offsets_of(&data.records), vec![12, 13]);
    let info = append(&mut disk, &mut mgr, 2, 3);
    assert_eq!(info.first_offset, 14);
    let log = mgr.get(&tp()).expect("log");
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 14)));
    assert_eq!(log.end_offset_for_epoch(2), Some((0, 14)));
}

#[test]
fn follower_append_keeps_offsets_and_epochs_and_refuses_going_back() {
    let (mut disk, mut mgr) = setup(LogConfig::default());
    let log = mgr.get_mut(&tp()).expect("log");
    let mut b = batch(3, 10, 0);
    set_base_offset(&mut b, 0);
    set_partition_leader_epoch(&mut b, 2);
    log.append_as_follower(&mut disk, &b, 0).expect("append");
    let mut c = batch(2, 10, 0);
    set_base_offset(&mut c, 3);
    set_partition_leader_epoch(&mut c, 5);
    log.append_as_follower(&mut disk, &c, 0).expect("append");
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 3)));
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 5)));
    assert_eq!(
        log.append_as_follower(&mut disk, &b, 0),
        Err(LogError::UnexpectedAppendOffset {
            offset: 0,
            log_end_offset: 5
        })
    );
}

#[test]
fn flush_messages_policy_flushes_on_append() {
    let (mut disk, mut mgr) = setup(LogConfig {
        flush_messages: 3,
        ..LogConfig::default()
    });
    append(&mut disk, &mut mgr, 2, 0);
    assert_eq!(mgr.get(&tp()).expect("log").recovery_point(), 0);
    append(&mut disk, &mut mgr, 2, 0);
    assert_eq!(mgr.get(&tp()).expect("log").recovery_point(), 4);
    assert!(disk.syncs.iter().any(|p| p == "t-0/00000000000000000000.log"));
}

#[test]
fn flush_ms_policy_flushes_dirty_logs() {
    let (mut disk, mut mgr) = setup(LogConfig {
        flush_ms: 1_000,
        ..LogConfig::default()
    });
    let mut b = batch(1, 10, 0);
    mgr.get_mut(&tp())
        .expect("log")
        .append_as_leader(&mut disk, &mut b, 0, 500)
        .expect("append");
    mgr.flush_dirty(&mut disk, 900).expect("flush");
    assert_eq!(mgr.get(&tp()).expect("log").recovery_point(), 0);
    mgr.flush_dirty(&mut disk, 1_000).expect("flush");
    assert_eq!(mgr.get(&tp()).expect("log").recovery_point(), 1);
}

#[test]
fn segment_ms_rolls_by_record_timestamps() {
    let (mut disk, mut mgr) = setup(LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    });
    let log = mgr.get_mut(&tp()).expect("log");
    log.append_as_leader(&mut disk, &mut batch(1, 10, 10_000), 0, 0)
        .expect("append");
    log.append_as_leader(&mut disk, &mut batch(1, 10, 10_900), 0, 0)
        .expect("append");
    assert_eq!(log.segment_count(), 1);
    log.append_as_leader(&mut disk, &mut batch(1, 10, 11_001), 0, 0)
        .expect("append");
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
fn clean_shutdown_and_restart_trusts_the_logs() {
    let (mut disk, mut mgr) = setup(small_config());
    for i in 0..20 {
        append(&mut disk, &mut mgr, 2, i / 5);
    }
    let before = mgr
        .get_mut(&tp())
        .expect("log")
        .read(&mut disk, 0, 1 << 20, None, false)
        .expect("read");
    mgr.shutdown(&mut disk).expect("shutdown");
    assert!(disk.exists(crate::log::manager::CLEAN_SHUTDOWN_FILE));
    let (mut mgr, reports) = LogManager::startup(&mut disk, small_config(), 0).expect("startup");
    assert!(!disk.exists(crate::log::manager::CLEAN_SHUTDOWN_FILE));
    assert_eq!(reports.len(), 1);
    assert_eq!(
        (
            reports[0].recovered_from,
            reports[0].log_end_offset,
            reports[0].truncated_bytes
        ),
        (40, 40, 0)
    );
    let log = mgr.get_mut(&tp()).expect("log");
    assert_eq!(log.topic_id(), Some("topic-id-1"));
    assert_eq!(log.recovery_point(), 40);
    assert_eq!(log.latest_epoch(), Some(3));
    let after = log.read(&mut disk, 0, 1 << 20, None, false).expect("read");
    assert_eq!(after.records, before.records);
    assert_eq!(append(&mut disk, &mut mgr, 1, 3).first_offset, 40);
}

#[test]
fn unclean_restart_truncates_at_a_torn_batch_past_the_recovery_point() {
    let (mut disk, mut mgr) = setup(LogConfig::default());
    for _ in 0..5 {
        append(&mut disk, &mut mgr, 2, 0);
    }
    let log = mgr.get(&tp()).expect("log");
    let path = log.segments[&0].log_path.clone();
    let size = disk.len(&path).expect("len");
    disk.truncate(&path, size - 7).expect("tear the last batch");
    let (mut mgr, reports) = LogManager::startup(&mut disk, LogConfig::default(), 0).expect("startup");
    assert_eq!(reports[0].log_end_offset, 8);
    assert!(
        reports[0]
            .first_bad
            .as_deref()
            .is_some_and(|b| b.contains("00000000000000000000.log")),
        "{:?}",
        reports[0]
    );
    let batch_size = batch(2, 50, 1_000).len() as u64;
    assert_eq!(reports[0].truncated_bytes, batch_size - 7);
    assert_eq!(disk.len(&path), Ok(4 * batch_size));
    assert_eq!(append(&mut disk, &mut mgr, 1, 0).first_offset, 8);
}

#[test]
fn unclean_restart_truncates_at_a_flipped_bit_and_deletes_later_segments() {
    let (mut disk, mut mgr) = setup(small_config());
    for _ in 0..20 {
        append(&mut disk, &mut mgr, 2, 0);
    }
    let log = mgr.get(&tp()).expect("log");
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 3);
    // Never checkpointed: recovery starts at 0, so a flip in the second segment is found.
    let path = log.segments[&bases[1]].log_path.clone();
    let byte = disk.read_at(&path, 400, 1).expect("read")[0];
    disk.write_at(&path, 400, &[byte ^ 0x04]).expect("flip");
    let (mut mgr, reports) = LogManager::startup(&mut disk, small_config(), 0).expect("startup");
    let log = mgr.get_mut(&tp()).expect("log");
    assert_eq!(log.segment_count(), 2);
    assert!(reports[0].first_bad.is_some());
    let leo = log.log_end_offset();
    assert!(leo > bases[1] && leo < bases[2], "leo {leo} bases {bases:?}");
    let data = log.read(&mut disk, bases[1], 1 << 20, None, false).expect("read");
    for item in batches(&data.records) {
        validate_batch(item.expect("batch").1).expect("only valid batches are served");
    }
}

#[test]
fn checkpointed_recovery_point_skips_validation_below_it() {
    let (mut disk, mut mgr) = setup(small_config());
    for _ in 0..20 {
        append(&mut disk, &mut mgr, 2, 0);
    }
    mgr.checkpoint(&mut disk).expect("checkpoint");
    let rp = mgr.get(&tp()).expect("log").recovery_point();
    assert!(rp > 0);
    let (_mgr, reports) = LogManager::startup(&mut disk, small_config(), 0).expect("startup");
    assert_eq!(reports[0].recovered_from, rp);
    assert_eq!(reports[0].log_end_offset, 40);
}

#[test]
fn create_log_is_idempotent_and_checks_the_topic_id() {
    let (mut disk, mut mgr) = setup(LogConfig::default());
    mgr.create_log(&mut disk, &tp(), "topic-id-1", LogConfig::default(), 0)
        .expect("again");
    assert!(matches!(
        mgr.create_log(&mut disk, &tp(), "other", LogConfig::default(), 0),
        Err(LogError::InconsistentTopicId { .. })
    ));
    assert_eq!(
        disk.bytes("t-0/partition.metadata"),
        b"version: 0\ntopic_id: topic-id-1\n".to_vec()
    );
    assert_eq!(mgr.partitions().collect::<Vec<_>>(), vec![&tp()]);
}

#[test]
fn malformed_recovery_point_checkpoint_fails_startup_naming_the_file() {
    let mut disk = MemDisk::new();
    disk.create("recovery-point-offset-checkpoint").expect("create");
    disk.write_at("recovery-point-offset-checkpoint", 0, b"0\n1\nt 0\n")
        .expect("write");
    match LogManager::startup(&mut disk, LogConfig::default(), 0) {
        Err(LogError::MalformedFile { file, line, .. }) => {
            assert_eq!((file.as_str(), line), ("recovery-point-offset-checkpoint", 3))
        }
        other => panic!("expected a malformed file error, got {other:?}"),
    }
}

#[test]
fn manager_truncate_to_checkpoints_the_lowered_recovery_point() {
    let (mut disk, mut mgr) = setup(LogConfig::default());
    for _ in 0..5 {
        append(&mut disk, &mut mgr, 2, 0);
    }
    mgr.get_mut(&tp()).expect("log").flush(&mut disk, 10).expect("flush");
    mgr.checkpoint(&mut disk).expect("checkpoint");
    mgr.truncate_to(&mut disk, &tp(), 4).expect("truncate");
    let rps = crate::log::checkpoint::read_offsets(&mut disk, "recovery-point-offset-checkpoint").expect("read");
    assert_eq!(rps.get(&tp()), Some(&4));
}

#[test]
fn truncation_below_log_start_restarts_the_log_there() {
    let (mut disk, mut mgr) = setup(LogConfig::default());
    append(&mut disk, &mut mgr, 2, 0);
    let log = mgr.get_mut(&tp()).expect("log");
    log.truncate_fully_and_start_at(&mut disk, 100).expect("truncate");
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset(), log.segment_base_offsets()),
        (100, 100, vec![100])
    );
    assert_eq!(
        log.read(&mut disk, 0, 10, None, true).map(|_| ()),
        Err(LogError::OffsetOutOfRange {
            offset: 0,
            log_start_offset: 100,
            log_end_offset: 100
        })
    );
    mgr.checkpoint(&mut disk).expect("checkpoint");
    let (mgr, _) = LogManager::startup(&mut disk, LogConfig::default(), 0).expect("startup");
    assert_eq!(mgr.get(&tp()).expect("log").log_start_offset(), 100);
}
