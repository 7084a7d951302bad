//! Timestamp, time index lookup and header tests over the in-memory disk.

use super::*;
use crate::log::config::LogConfig;
use crate::log::mem_disk::MemDisk;
use crate::log::LogManager;
use crate::protocol::batch::{batches, validate_batch, BatchBuilder};
use crate::types::TopicPartition;

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn setup(config: LogConfig) -> (MemDisk, LogManager) {
    let mut disk = MemDisk::new();
    let (mut mgr, _) = LogManager::startup(&mut disk, config.clone(), 0).expect("startup");
    mgr.create_log(&mut disk, &tp(), "id-1", config, 0).expect("create");
    (disk, mgr)
}

fn batch_at(timestamps: &[i64]) -> Vec<u8> {
    let mut b = BatchBuilder::new(timestamps[0]);
    for ts in timestamps {
        b.push(*ts, Some(b"k"), Some(b"v"), &[]);
    }
    b.build()
}

fn records(disk: &mut MemDisk, log: &mut Log) -> Vec<crate::protocol::batch::Record> {
    let data = log
        .read(disk, log.log_start_offset(), 1 << 20, None, true)
        .expect("read");
    batches(&data.records)
        .flat_map(|b| decode_records(b.expect("batch").1).expect("records"))
        .collect()
}

#[test]
fn log_append_time_stamps_the_batch_with_the_leader_clock_and_keeps_the_crc_valid() {
    let (mut disk, mut mgr) = setup(LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    });
    let log = mgr.get_mut(&tp()).expect("log");
    let mut b = batch_at(&[5, 9]);
    let info = log.append_as_leader(&mut disk, &mut b, 0, 7_000).expect("append");
    assert_eq!(info.max_timestamp, 7_000);
    let h = validate_batch(&b).expect("the stamped batch's CRC is valid");
    assert_eq!(
        (h.timestamp_type(), h.max_timestamp),
        (TimestampType::LogAppendTime, 7_000)
    );
    let got: Vec<i64> = records(&mut disk, log).iter().map(|r| r.timestamp).collect();
    assert_eq!(got, vec![7_000, 7_000]);
    assert_eq!(
        log.fetch_offset_by_timestamp(&mut disk, 6_000)
            .expect("lookup")
            .map(|t| t.offset),
        Some(0)
    );
}

#[test]
fn create_time_lookups_find_the_first_offset_at_or_after_a_timestamp_across_segments() {
    let (mut disk, mut mgr) = setup(LogConfig {
        index_interval_bytes: 1,
        ..LogConfig::default()
    });
    let log = mgr.get_mut(&tp()).expect("log");
    // Producer clocks disagree: offsets 0..5 carry 100, 300, 200, 400, 150.
    log.append_as_leader(&mut disk, &mut batch_at(&[100, 300]), 2, 0)
        .expect("append");
    log.append_as_leader(&mut disk, &mut batch_at(&[200, 400]), 2, 0)
        .expect("append");
    log.roll(&mut disk, 0).expect("roll");
    log.append_as_leader(&mut disk, &mut batch_at(&[150]), 3, 0)
        .expect("append");
    let find = |log: &mut Log, disk: &mut MemDisk, ts| {
        log.fetch_offset_by_timestamp(disk, ts)
            .expect("lookup")
            .map(|t| (t.offset, t.timestamp))
    };
    assert_eq!(find(log, &mut disk, 0), Some((0, 100)));
    assert_eq!(find(log, &mut disk, 150), Some((1, 300)));
    assert_eq!(find(log, &mut disk, 250), Some((1, 300)));
    assert_eq!(find(log, &mut disk, 350), Some((3, 400)));
    assert_eq!(find(log, &mut disk, 401), None);
    assert_eq!(find(log, &mut disk, MAX_TIMESTAMP), Some((3, 400)));
    let last = log
        .fetch_offset_by_timestamp(&mut disk, 120)
        .expect("lookup")
        .expect("found");
    assert_eq!(last.leader_epoch, Some(2));
    // Below the log start nothing is answered.
    log.maybe_increment_log_start_offset(&mut disk, 2, 5)
        .expect("delete records");
    assert_eq!(find(log, &mut disk, 150), Some((2, 200)));
    assert_eq!(find(log, &mut disk, 301), Some((3, 400)));
}

#[test]
fn headers_round_trip_byte_exact_with_repeated_keys_in_order() {
    let (mut disk, mut mgr) = setup(LogConfig::default());
    let log = mgr.get_mut(&tp()).expect("log");
    let mut b = BatchBuilder::new(10).partition_leader_epoch(4);
    let headers: [(&str, Option<&[u8]>); 4] = [
        ("trace", Some(b"a")),
        ("k", Some(b"1")),
        ("trace", None),
        ("k", Some(b"")),
    ];
    b.push(10, Some(b"key"), Some(b"value"), &headers);
    b.push(11, None, None, &headers[1..2]);
    let sent = b.build();
    let mut appended = sent.clone();
    log.append_as_leader(&mut disk, &mut appended, 4, 0).expect("append");
    assert_eq!(appended, sent, "offset 0 and epoch 4: nothing to rewrite");
    let read = log.read(&mut disk, 0, 1 << 20, None, true).expect("read");
    assert_eq!(read.records, sent, "byte-exact");
    let got = records(&mut disk, log);
    let want: Vec<(String, Option<Vec<u8>>)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec)))
        .collect();
    assert_eq!(got[0].headers, want);
    assert_eq!(got[1].headers, want[1..2].to_vec());
}

#[test]
fn segment_ms_follows_the_leader_clock_under_log_append_time_and_producer_clocks_under_create_time() {
    for (kind, rolls) in [(TimestampType::CreateTime, true), (TimestampType::LogAppendTime, false)] {
        let (mut disk, mut mgr) = setup(LogConfig {
            segment_ms: 1_000,
            message_timestamp_type: kind,
            ..LogConfig::default()
        });
        let log = mgr.get_mut(&tp()).expect("log");
        // A producer whose clock runs an hour ahead on its second send; the broker's clock moves 10 ms.
        log.append_as_leader(&mut disk, &mut batch_at(&[0]), 0, 0)
            .expect("append");
        log.append_as_leader(&mut disk, &mut batch_at(&[3_600_000]), 0, 10)
            .expect("append");
        assert_eq!(log.segment_count() == 2, rolls, "{kind:?}");
    }
}
