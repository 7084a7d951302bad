//! Retention and log start offset tests over the in-memory disk.

use std::collections::BTreeMap;

use super::*;
use crate::log::config::{CleanupPolicy, LogConfig};
use crate::log::mem_disk::MemDisk;
use crate::log::LogManager;
use crate::protocol::batch::BatchBuilder;
use crate::types::TopicPartition;

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn config(retention_ms: i64, retention_bytes: i64) -> LogConfig {
    LogConfig {
        retention_ms,
        retention_bytes,
        file_delete_delay_ms: 1_000,
        ..LogConfig::default()
    }
}

/// Five keyed records (a compacted topic refuses null keys) with timestamps `ts..ts+4`.
fn batch(ts: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(ts);
    for i in 0..5 {
        b.push(ts + i, Some(&[b'k', i as u8]), Some(&[b'v'; 40]), &[]);
    }
    b.build()
}

/// Three segments: [0, 5) with timestamps ~1000, [5, 10) ~2000, active [10, 15) ~3000.
fn three_segments(cfg: LogConfig) -> (MemDisk, LogManager) {
    let mut disk = MemDisk::new();
    let (mut mgr, _) = LogManager::startup(&mut disk, cfg.clone(), 0).expect("startup");
    mgr.create_log(&mut disk, &tp(), "id-1", cfg, 0).expect("create");
    let log = mgr.get_mut(&tp()).expect("log");
    for (i, ts) in [1_000, 2_000, 3_000].into_iter().enumerate() {
        if i > 0 {
            log.roll(&mut disk, ts).expect("roll");
        }
        log.append_as_leader(&mut disk, &mut batch(ts), 0, ts).expect("append");
    }
    assert_eq!(log.segment_base_offsets(), vec![0, 5, 10]);
    (disk, mgr)
}

fn hws(hw: i64) -> BTreeMap<TopicPartition, i64> {
    BTreeMap::from([(tp(), hw)])
}

#[test]
fn retention_ms_deletes_expired_segments_by_max_record_timestamp_only_below_the_high_watermark() {
    let (mut disk, mut mgr) = three_segments(config(1_500, -1));
    // Segments 0 and 5 expired at now=4000 (max timestamps 1004 and 2004), but the high watermark 7 sits
    // inside segment 5: only segment 0 may go.
    let out = mgr.delete_old_segments(&mut disk, &hws(7), 4_000).expect("pass");
    assert_eq!(out[&tp()].deleted, vec![(0, DeletionReason::RetentionMs)]);
    let log = mgr.get(&tp()).expect("log");
    assert_eq!((log.log_start_offset(), log.segment_base_offsets()), (5, vec![5, 10]));
    let out = mgr.delete_old_segments(&mut disk, &hws(15), 4_000).expect("pass");
    assert_eq!(out[&tp()].deleted, vec![(5, DeletionReason::RetentionMs)]);
    let log = mgr.get_mut(&tp()).expect("log");
    assert_eq!((log.log_start_offset(), log.segment_base_offsets()), (10, vec![10]));
    assert!(matches!(
        log.read(&mut disk, 9, 1 << 20, None, true),
        Err(LogError::OffsetOutOfRange {
            log_start_offset: 10,
            ..
        })
    ));
    assert!(!log
        .read(&mut disk, 10, 1 << 20, None, true)
        .expect("read")
        .records
        .is_empty());
    assert_eq!(
        crate::log::checkpoint::read_offsets(&mut disk, crate::log::checkpoint::LOG_START_OFFSET_CHECKPOINT)
            .expect("checkpoint")[&tp()],
        10
    );
}

#[test]
fn retention_bytes_deletes_oldest_segments_while_the_log_is_larger() {
    let (mut disk, mut mgr) = three_segments(config(-1, 0));
    let seg_size = batch(0).len() as i64;
    mgr.get_mut(&tp()).expect("log").set_config(config(-1, seg_size * 2));
    let out = mgr.delete_old_segments(&mut disk, &hws(15), 4_000).expect("pass");
    assert_eq!(out[&tp()].deleted, vec![(0, DeletionReason::RetentionBytes)]);
    assert_eq!(mgr.get(&tp()).expect("log").log_start_offset(), 5);
    // Once within bounds, nothing more goes.
    assert!(mgr
        .delete_old_segments(&mut disk, &hws(15), 4_000)
        .expect("pass")
        .is_empty());
}

#[test]
fn when_everything_expired_the_log_rolls_and_deletes_the_last_segment_too() {
    let (mut disk, mut mgr) = three_segments(config(1_000, -1));
    // The high watermark below the log end keeps the active segment.
    let out = mgr.delete_old_segments(&mut disk, &hws(14), 100_000).expect("pass");
    assert_eq!(out[&tp()].deleted.len(), 2);
    let out = mgr.delete_old_segments(&mut disk, &hws(15), 100_000).expect("pass");
    assert_eq!(out[&tp()].deleted, vec![(10, DeletionReason::RetentionMs)]);
    let log = mgr.get_mut(&tp()).expect("log");
    assert_eq!(log.segment_base_offsets(), vec![15]);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (15, 15));
    assert!(log
        .read(&mut disk, 15, 100, None, true)
        .expect("read")
        .records
        .is_empty());
    let info = log
        .append_as_leader(&mut disk, &mut batch(200_000), 0, 200_000)
        .expect("append");
    assert_eq!(info.first_offset, 15);
    // An empty active segment never goes.
    log.roll(&mut disk, 300_000).expect("roll");
    let out = mgr.delete_old_segments(&mut disk, &hws(20), 10_000_000).expect("pass");
    assert_eq!(out[&tp()].deleted, vec![(15, DeletionReason::RetentionMs)]);
    assert_eq!(mgr.get(&tp()).expect("log").segment_base_offsets(), vec![20]);
}

#[test]
fn deleted_segments_are_renamed_then_removed_after_file_delete_delay() {
    let (mut disk, mut mgr) = three_segments(config(1_500, -1));
    mgr.delete_old_segments(&mut disk, &hws(15), 4_000).expect("pass");
    let pending = mgr.get(&tp()).expect("log").pending_deletes();
    assert_eq!(pending.len(), 6, "{pending:?}");
    assert!(pending
        .iter()
        .all(|p| p.ends_with(DELETED_FILE_SUFFIX) && disk.exists(p)));
    assert!(!disk.exists("t-0/00000000000000000000.log"));
    // A high watermark of 14 keeps the active segment (it expires at 4505).
    mgr.delete_old_segments(&mut disk, &hws(14), 4_999).expect("pass");
    assert!(pending.iter().all(|p| disk.exists(p)), "removed before the delay");
    mgr.delete_old_segments(&mut disk, &hws(14), 5_000).expect("pass");
    assert!(pending.iter().all(|p| !disk.exists(p)));
    assert!(mgr.get(&tp()).expect("log").pending_deletes().is_empty());
}

#[test]
fn a_crash_between_rename_and_removal_recovers_without_the_deleted_files() {
    let (mut disk, mut mgr) = three_segments(config(1_500, -1));
    mgr.delete_old_segments(&mut disk, &hws(15), 4_000).expect("pass");
    // Crash: the `.deleted` files are still there; the process state is gone.
    let mut crashed = disk.clone();
    drop(mgr);
    let (mut mgr, reports) = LogManager::startup(&mut crashed, config(1_500, -1), 5_000).expect("restart");
    assert_eq!(reports.len(), 1);
    let names = crashed.list("t-0").expect("list");
    assert!(names.iter().all(|n| !n.ends_with(DELETED_FILE_SUFFIX)), "{names:?}");
    let log = mgr.get_mut(&tp()).expect("log");
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (10, 15));
    assert_eq!(log.segment_base_offsets(), vec![10]);
    assert!(!log
        .read(&mut crashed, 10, 1 << 20, None, true)
        .expect("read")
        .records
        .is_empty());
}

#[test]
fn a_crash_before_the_checkpoint_still_starts_the_log_at_its_first_segment() {
    let (mut disk, mut mgr) = three_segments(config(1_500, -1));
    let log = mgr.get_mut(&tp()).expect("log");
    log.delete_old_segments(&mut disk, 15, 4_000).expect("pass"); // no manager checkpoint
    let (mgr, _) = LogManager::startup(&mut disk, config(1_500, -1), 5_000).expect("restart");
    assert_eq!(mgr.get(&tp()).expect("log").log_start_offset(), 10);
}

#[test]
fn delete_records_moves_the_log_start_up_to_the_high_watermark_and_segments_below_go_under_any_policy() {
    let cfg = LogConfig {
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..config(1, 0)
    };
    let (mut disk, mut mgr) = three_segments(cfg);
    assert!(matches!(
        mgr.increment_log_start_offset(&mut disk, &tp(), 12, 11),
        Err(LogError::OffsetOutOfRange { offset: 12, .. })
    ));
    assert_eq!(mgr.increment_log_start_offset(&mut disk, &tp(), 7, 11), Ok(true));
    assert_eq!(mgr.increment_log_start_offset(&mut disk, &tp(), 6, 11), Ok(false));
    let log = mgr.get_mut(&tp()).expect("log");
    assert_eq!(log.log_start_offset(), 7);
    assert!(matches!(
        log.read(&mut disk, 6, 100, None, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    // The batch holding 7 starts at 5: reads from 7 return it whole, as Kafka does.
    assert!(!log
        .read(&mut disk, 7, 1 << 20, None, true)
        .expect("read")
        .records
        .is_empty());
    // Compact-only: no time or size retention, but segment 0 lies wholly below the log start.
    let out = mgr.delete_old_segments(&mut disk, &hws(11), 100_000).expect("pass");
    assert_eq!(out[&tp()].deleted, vec![(0, DeletionReason::LogStartOffset)]);
    assert_eq!(mgr.get(&tp()).expect("log").log_start_offset(), 7);
    let (restarted, _) = LogManager::startup(&mut disk, LogConfig::default(), 0).expect("restart");
    assert_eq!(restarted.get(&tp()).expect("log").log_start_offset(), 7);
}
