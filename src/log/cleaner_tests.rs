//! Log cleaner tests over the in-memory disk.

use std::collections::BTreeMap;

use super::*;
use crate::log::config::{CleanupPolicy, DirtyRatio, LogConfig};
use crate::log::mem_disk::MemDisk;
use crate::log::LogManager;
use crate::protocol::batch::{batches, decode_records, BatchBuilder};
use crate::types::TopicPartition;

fn tp() -> TopicPartition {
    TopicPartition::new("c", 0)
}

fn config() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::COMPACT,
        min_cleanable_dirty_ratio: DirtyRatio::new(0.0),
        delete_retention_ms: 1_000,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    }
}

/// One batch of (key, value) records, timestamps `ts`.
fn batch(ts: i64, records: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut b = BatchBuilder::new(ts);
    for (k, v) in records {
        b.push(ts, Some(k.as_bytes()), v.map(str::as_bytes), &[]);
    }
    b.build()
}

/// A log whose segments hold the given batches, one segment per entry (rolled between), then an active
/// segment holding `active`.
fn log_with(
    cfg: LogConfig,
    segments: &[&[(&str, Option<&str>)]],
    active: &[(&str, Option<&str>)],
) -> (MemDisk, LogManager) {
    let mut disk = MemDisk::new();
    let (mut mgr, _) = LogManager::startup(&mut disk, cfg.clone(), 0).expect("startup");
    mgr.create_log(&mut disk, &tp(), "id-1", cfg, 0).expect("create");
    let log = mgr.get_mut(&tp()).expect("log");
    for (i, recs) in segments.iter().chain([&active]).enumerate() {
        let ts = 1_000 * (i as i64 + 1);
        if i > 0 {
            log.roll(&mut disk, ts).expect("roll");
        }
        if !recs.is_empty() {
            log.append_as_leader(&mut disk, &mut batch(ts, recs), 0, ts)
                .expect("append");
        }
    }
    (disk, mgr)
}

/// Every (offset, key, value) the log serves from its start.
fn read_all(disk: &mut MemDisk, mgr: &mut LogManager) -> Vec<(i64, String, Option<String>)> {
    let log = mgr.get_mut(&tp()).expect("log");
    let mut out = Vec::new();
    let mut at = log.log_start_offset();
    while at < log.log_end_offset() {
        let data = log.read(disk, at, 1 << 20, None, true).expect("read");
        let mut next = at;
        for item in batches(&data.records) {
            let (h, bytes) = item.expect("whole batch");
            for r in decode_records(bytes).expect("valid") {
                if r.offset >= at {
                    let s = |b: Vec<u8>| String::from_utf8(b).expect("utf8");
                    out.push((r.offset, s(r.key.expect("key")), r.value.map(s)));
                }
            }
            next = next.max(h.next_offset());
        }
        assert!(next > at, "no progress at {at}");
        at = next;
    }
    out
}

fn hws(hw: i64) -> BTreeMap<TopicPartition, i64> {
    BTreeMap::from([(tp(), hw)])
}

fn values(v: &[(i64, String, Option<String>)]) -> Vec<(i64, &str, Option<&str>)> {
    v.iter().map(|(o, k, v)| (*o, k.as_str(), v.as_deref())).collect()
}

#[test]
fn cleaning_keeps_the_latest_record_per_key_at_its_offset_and_never_touches_the_active_segment() {
    let (mut disk, mut mgr) = log_with(
        config(),
        &[
            &[("a", Some("a0")), ("b", Some("b0"))],
            &[("a", Some("a1")), ("c", Some("c0"))],
        ],
        &[("a", Some("a2")), ("b", Some("b1"))],
    );
    let out = mgr.clean_logs(&mut disk, &hws(6), 10_000).expect("clean");
    let o = &out[&tp()];
    assert_eq!((o.first_dirty_offset, o.end_offset), (0, 4));
    assert_eq!(o.swapped, vec![(0, vec![0, 2])], "both closed segments fit one group");
    assert_eq!(o.records_removed, 1);
    // a0 (superseded in the cleaned range) goes; b0 stays: b1 is in the active segment, above the dirty
    // section the map covers. The active segment is untouched.
    let got = read_all(&mut disk, &mut mgr);
    assert_eq!(
        values(&got),
        vec![
            (1, "b", Some("b0")),
            (2, "a", Some("a1")),
            (3, "c", Some("c0")),
            (4, "a", Some("a2")),
            (5, "b", Some("b1"))
        ]
    );
    let log = mgr.get(&tp()).expect("log");
    assert_eq!(log.segment_base_offsets(), vec![0, 4]);
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(mgr.cleaner_checkpoint(&tp()), Some(4));
    assert!(disk.exists("c-0/00000000000000000000.log.deleted"));
    assert!(!disk.exists("c-0/00000000000000000000.log.swap"));
}

#[test]
fn nothing_at_or_above_the_high_watermark_is_cleaned() {
    let (mut disk, mut mgr) = log_with(
        config(),
        &[&[("a", Some("a0"))], &[("a", Some("a1"))]],
        &[("a", Some("a2"))],
    );
    // The high watermark 1 lies inside the second segment: only the first is cleanable, and alone it has
    // nothing superseded within the dirty section.
    let out = mgr.clean_logs(&mut disk, &hws(1), 10_000).expect("clean");
    assert_eq!(out[&tp()].end_offset, 1);
    assert_eq!(read_all(&mut disk, &mut mgr).len(), 3);
    let out = mgr.clean_logs(&mut disk, &hws(3), 10_000).expect("clean");
    assert_eq!(out[&tp()].end_offset, 2);
    let got = read_all(&mut disk, &mut mgr);
    assert_eq!(values(&got), vec![(1, "a", Some("a1")), (2, "a", Some("a2"))]);
}

#[test]
fn the_dirty_ratio_gates_cleaning() {
    let cfg = LogConfig {
        min_cleanable_dirty_ratio: DirtyRatio::new(0.6),
        ..config()
    };
    let (mut disk, mut mgr) = log_with(
        cfg,
        &[&[("a", Some("a0"))], &[("a", Some("a1"))], &[("a", Some("a2"))]],
        &[],
    );
    let log = mgr.get(&tp()).expect("log");
    let range = log.cleanable_range(2, 3, 0).expect("range");
    assert_eq!((range.first_dirty_offset, range.first_uncleanable_offset), (2, 3));
    assert!((range.dirty_ratio() - 1.0 / 3.0).abs() < 1e-9, "{range:?}");
    // Checkpoint at 2: one dirty segment of three — below 0.6, no cleaning.
    let log = mgr.get_mut(&tp()).expect("log");
    assert_eq!(log.clean(&mut disk, 2, 3, 0).expect("clean"), None);
    // From the start: all dirty.
    let out = log.clean(&mut disk, 0, 3, 0).expect("clean").expect("cleaned");
    assert_eq!(out.records_removed, 2);
    assert_eq!(values(&read_all(&mut disk, &mut mgr)), vec![(2, "a", Some("a2"))]);
}

#[test]
fn min_compaction_lag_keeps_young_segments_dirty() {
    let cfg = LogConfig {
        min_compaction_lag_ms: 1_500,
        ..config()
    };
    // Segment timestamps 1000, 2000; active 3000.
    let (mut disk, mut mgr) = log_with(cfg, &[&[("a", Some("a0"))], &[("a", Some("a1"))]], &[("b", Some("b0"))]);
    let log = mgr.get(&tp()).expect("log");
    // At 3000 only the first segment is 1500 ms old.
    assert_eq!(
        log.cleanable_range(0, 3, 3_000).map(|r| r.first_uncleanable_offset),
        Some(1)
    );
    assert_eq!(
        log.cleanable_range(0, 3, 3_600).map(|r| r.first_uncleanable_offset),
        Some(2)
    );
    assert_eq!(log.cleanable_range(0, 3, 2_000), None);
    let out = mgr.clean_logs(&mut disk, &hws(3), 3_600).expect("clean");
    assert_eq!(out[&tp()].records_removed, 1);
    let _ = &mut disk;
}

#[test]
fn a_tombstone_lives_delete_retention_ms_from_its_first_cleaning_then_goes() {
    let (mut disk, mut mgr) = log_with(
        config(),
        &[&[("a", Some("a0")), ("b", Some("b0"))], &[("a", None)]],
        &[("c", Some("c0"))],
    );
    let out = mgr.clean_logs(&mut disk, &hws(4), 5_000).expect("clean");
    assert_eq!((out[&tp()].records_removed, out[&tp()].tombstones_removed), (1, 0));
    let got = read_all(&mut disk, &mut mgr);
    assert_eq!(
        values(&got),
        vec![(1, "b", Some("b0")), (2, "a", None), (3, "c", Some("c0"))]
    );
    // The tombstone's batch now carries the delete horizon 5000 + 1000.
    let log = mgr.get_mut(&tp()).expect("log");
    let data = log.read(&mut disk, 2, 1 << 20, None, true).expect("read");
    let (h, _) = batches(&data.records).next().expect("batch").expect("whole");
    assert_eq!(h.delete_horizon_ms(), Some(6_000));
    // More dirt, cleaned before the horizon: the tombstone stays.
    log.roll(&mut disk, 5_500).expect("roll");
    log.append_as_leader(&mut disk, &mut batch(5_500, &[("d", Some("d0"))]), 0, 5_500)
        .expect("append");
    log.roll(&mut disk, 5_600).expect("roll");
    mgr.clean_logs(&mut disk, &hws(5), 5_900).expect("clean");
    assert!(read_all(&mut disk, &mut mgr)
        .iter()
        .any(|(o, _, v)| *o == 2 && v.is_none()));
    // After the horizon, the next cleaning drops it.
    let log = mgr.get_mut(&tp()).expect("log");
    log.append_as_leader(&mut disk, &mut batch(6_100, &[("e", Some("e0"))]), 0, 6_100)
        .expect("append");
    log.roll(&mut disk, 6_100).expect("roll");
    let out = mgr.clean_logs(&mut disk, &hws(6), 6_100).expect("clean");
    assert_eq!(out[&tp()].tombstones_removed, 1);
    let got = read_all(&mut disk, &mut mgr);
    assert_eq!(
        values(&got),
        vec![
            (1, "b", Some("b0")),
            (3, "c", Some("c0")),
            (4, "d", Some("d0")),
            (5, "e", Some("e0"))
        ]
    );
}

#[test]
fn an_emptied_last_batch_of_a_group_keeps_its_header_so_the_cleaned_segment_ends_where_it_did() {
    // segment.bytes below two segments' sizes: each segment is a group of its own.
    let cfg = LogConfig {
        segment_bytes: 100,
        ..config()
    };
    let (mut disk, mut mgr) = log_with(
        cfg,
        &[
            &[("a", Some("a0")), ("b", Some("b0"))],
            &[("a", Some("a1")), ("b", Some("b1"))],
        ],
        &[],
    );
    let out = mgr.clean_logs(&mut disk, &hws(4), 10_000).expect("clean");
    assert_eq!(out[&tp()].swapped, vec![(0, vec![0]), (2, vec![2])]);
    let log = mgr.get_mut(&tp()).expect("log");
    let data = log.read(&mut disk, 0, 1 << 20, None, true).expect("read");
    let headers: Vec<_> = batches(&data.records).map(|b| b.expect("whole").0).collect();
    assert_eq!(headers.len(), 1, "{headers:?}");
    assert_eq!(
        (
            headers[0].base_offset,
            headers[0].last_offset(),
            headers[0].records_count
        ),
        (0, 1, 0)
    );
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4]);
    let got = read_all(&mut disk, &mut mgr);
    assert_eq!(values(&got), vec![(2, "a", Some("a1")), (3, "b", Some("b1"))]);
}

#[test]
fn a_compacted_topic_refuses_records_without_a_key() {
    let (mut disk, mut mgr) = log_with(config(), &[], &[]);
    let mut b = BatchBuilder::new(0);
    b.push(0, Some(b"k"), Some(b"v"), &[]);
    b.push(0, None, Some(b"v"), &[]);
    let log = mgr.get_mut(&tp()).expect("log");
    let err = log
        .append_as_leader(&mut disk, &mut b.build(), 0, 0)
        .expect_err("null key");
    assert!(matches!(err, LogError::InvalidRecords { .. }), "{err}");
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn a_delete_policy_log_is_never_cleaned() {
    let cfg = LogConfig {
        cleanup_policy: CleanupPolicy::DELETE,
        ..config()
    };
    let (mut disk, mut mgr) = log_with(cfg, &[&[("a", Some("a0"))], &[("a", Some("a1"))]], &[]);
    assert!(mgr.clean_logs(&mut disk, &hws(2), 10_000).expect("clean").is_empty());
    assert_eq!(read_all(&mut disk, &mut mgr).len(), 2);
}

#[test]
fn the_cleaner_checkpoint_survives_a_restart_and_a_swap_left_behind_is_completed() {
    let (mut disk, mut mgr) = log_with(
        config(),
        &[&[("a", Some("a0"))], &[("a", Some("a1"))]],
        &[("b", Some("b0"))],
    );
    mgr.clean_logs(&mut disk, &hws(3), 10_000).expect("clean");
    // Simulate a crash right after the commit point: the cleaned segment is back to `.swap`, and the old
    // segments are back in place.
    let dir = "c-0";
    let old0 = disk.bytes(&format!("{dir}/00000000000000000000.log.deleted"));
    let old1 = disk.bytes(&format!("{dir}/00000000000000000001.log.deleted"));
    for ext in [".log", ".index", ".timeindex"] {
        let name = format!("{dir}/00000000000000000000{ext}");
        disk.rename(&name, &format!("{name}.swap")).expect("rename");
    }
    for (base, bytes) in [(0, old0), (1, old1)] {
        let p = format!("{dir}/{base:020}.log");
        disk.create(&p).expect("create");
        disk.write_at(&p, 0, &bytes).expect("write");
    }
    disk.create(&format!("{dir}/00000000000000000003.log.cleaned"))
        .expect("leftover");
    let (mut mgr, reports) = LogManager::startup(&mut disk, config(), 20_000).expect("restart");
    assert_eq!(reports[0].swaps_completed, 1);
    assert_eq!(mgr.cleaner_checkpoint(&tp()), Some(2));
    assert!(!disk.exists(&format!("{dir}/00000000000000000003.log.cleaned")));
    let got = read_all(&mut disk, &mut mgr);
    assert_eq!(values(&got), vec![(1, "a", Some("a1")), (2, "b", Some("b0"))]);
    assert_eq!(mgr.get(&tp()).expect("log").segment_base_offsets(), vec![0, 2]);
}
