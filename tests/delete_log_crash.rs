//! `LogManager::delete_log` (a deleted topic's replica leaving the disk) interrupted at every disk call,
//! then a process crash or a power loss on the simulated disk, then recovery.
//!
//! For every crash point, checked after recovery:
//! - `LogManager::startup` recovers without error or panic;
//! - the partition is either gone, or served whole (every old record, as written), or a remnant that still
//!   names the old topic id in `partition.metadata` and serves nothing but old records at their offsets
//!   (so a broker recognises it as the deleted topic's and deletes it again);
//! - a broker that comes back and learns the topic was recreated under a new topic id serves an empty log
//!   of the new id, and one that learns the topic is gone serves no log and leaves no directory;
//! - a power loss before the deletion's first durable step leaves the whole old log.
//!
//! One crash point found a gap: after `partition.metadata` was removed and before the directory was, the
//! empty directory loaded as a log without a topic id, which no broker recognises as stray.
//! `LogManager::startup` now finishes removing such a directory.

use std::collections::BTreeMap;

use gregor::broker::{log_config, Broker, BrokerConfig, MetadataImage};
use gregor::log::{Disk, LogConfig, LogManager};
use gregor::protocol::batch::BatchBuilder;
use gregor::sim::disk::{SimDisk, SimDiskConfig};
use gregor::types::TopicPartition;
use uuid::Uuid;

#[path = "common/dying_disk.rs"]
mod dying_disk;
use dying_disk::DyingDisk;

const OLD_ID: u128 = 0x01d;
const NEW_ID: u128 = 0x2ee;

fn tp() -> TopicPartition {
    TopicPartition::new("events", 0)
}

fn broker_config() -> BrokerConfig {
    let mut c = BrokerConfig::new(1);
    c.log_segment_bytes = 300;
    c.log_index_interval_bytes = 100;
    c.log_index_size_max_bytes = 4_096;
    c
}

fn config() -> LogConfig {
    log_config(&broker_config())
}

/// Broker 1 alone; `events` (one partition on broker 1) under `topic_id`, or no topic at all.
fn image(topic_id: Option<u128>) -> MetadataImage {
    let img = MetadataImage::unfenced("gregor", &[1]);
    match topic_id {
        Some(id) => img.with_local_topic("events", id, 1, 1),
        None => img,
    }
}

/// (offset, value) as served.
type Served = Vec<(i64, Vec<u8>)>;

fn read_all(disk: &mut dyn Disk, mgr: &mut LogManager, tp: &TopicPartition) -> Served {
    let served = dying_disk::served_records(disk, mgr, tp);
    served
        .into_iter()
        .map(|r| (r.offset, r.value.expect("a value").to_vec()))
        .collect()
}

/// A durable log of `events-0` under the old topic id over several segments, checkpointed; returns the
/// disk, the log manager and what the log serves.
fn old_log(seed: u64) -> (SimDisk, LogManager, Served) {
    let mut disk = SimDisk::new("broker-1", seed, SimDiskConfig::default());
    let (mut mgr, _) = LogManager::startup(&mut disk, config(), 0).expect("startup");
    let old_id = Uuid::from_u128(OLD_ID).to_string();
    mgr.create_log(&mut disk, &tp(), &old_id, config(), 0).expect("create");
    let log = mgr.get_mut(&tp()).expect("log");
    for i in 0..12u32 {
        let mut b = BatchBuilder::new(i64::from(i));
        let value = format!("old-{i}");
        b.push(i64::from(i), Some(b"k"), Some(value.as_bytes()), &[]);
        log.append_as_leader(&mut disk, &mut b.build(), 0, i64::from(i))
            .expect("append");
    }
    let leo = log.log_end_offset();
    log.flush(&mut disk, leo).expect("flush");
    assert!(
        log.segment_base_offsets().len() >= 3,
        "{:?}",
        log.segment_base_offsets()
    );
    mgr.checkpoint(&mut disk).expect("checkpoint");
    let served = read_all(&mut disk, &mut mgr, &tp());
    assert_eq!(served.len(), 12);
    (disk, mgr, served)
}

/// What recovery left of the old log.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Left {
    Nothing,
    Whole,
    Remnant,
}

/// Deletes the old log with the process dying after `ops` disk calls, then crashes or cuts power, and
/// recovers; checks what is left. Returns it, and whether the deletion ran to completion.
fn delete_and_recover(ops: u32, power_loss: bool) -> (Left, bool) {
    let (mut disk, mut mgr, old) = old_log(u64::from(ops) * 2 + u64::from(power_loss));
    let mut dying = DyingDisk::new(&mut disk, ops);
    let done = matches!(mgr.delete_log(&mut dying, &tp()), Ok(true));
    if power_loss {
        disk.power_loss();
    } else {
        disk.crash();
    }
    let at = format!("crash point {ops} (power loss {power_loss})");
    let (mut mgr, _) =
        LogManager::startup(&mut disk, config(), 100).unwrap_or_else(|e| panic!("{at}: recovery failed: {e}"));
    let left = match mgr.get(&tp()).map(|l| l.topic_id().map(str::to_string)) {
        None => Left::Nothing,
        Some(id) => {
            let served = read_all(&mut disk, &mut mgr, &tp());
            for (offset, value) in &served {
                let want = old.iter().find(|(o, _)| o == offset).map(|(_, v)| v);
                assert_eq!(want, Some(value), "{at}: offset {offset} serves {value:?}");
            }
            if served == old {
                Left::Whole
            } else {
                let old_id = Uuid::from_u128(OLD_ID).to_string();
                assert_eq!(
                    id.as_deref(),
                    Some(old_id.as_str()),
                    "{at}: a remnant without the old topic id"
                );
                Left::Remnant
            }
        }
    };
    if done {
        assert_eq!(left, Left::Nothing, "{at}: a completed deletion left {left:?}");
    }
    check_broker_never_serves_old_data(&disk, &at);
    (left, done)
}

/// A broker restarted on (copies of) this disk that learns the topic was recreated under a new id, or
/// deleted, never serves the old records.
fn check_broker_never_serves_old_data(disk: &SimDisk, at: &str) {
    for recreated in [true, false] {
        let mut disk = disk.snapshot();
        let (mut broker, _) = Broker::new(broker_config(), MetadataImage::default(), &mut disk, 200, 1)
            .unwrap_or_else(|e| panic!("{at}: broker startup failed: {e}"));
        let img = image(recreated.then_some(NEW_ID));
        broker
            .apply_image(&mut disk, img, 300)
            .unwrap_or_else(|e| panic!("{at}: applying the image failed: {e}"));
        match broker.logs().get(&tp()) {
            Some(log) => {
                assert!(recreated, "{at}: a log of a deleted topic is served");
                let new_id = Uuid::from_u128(NEW_ID).to_string();
                assert_eq!(log.topic_id(), Some(new_id.as_str()), "{at}");
                assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0), "{at}: old data");
            }
            None => {
                assert!(!recreated, "{at}: the recreated topic has no log");
                assert!(!disk.exists("events-0"), "{at}: {:?}", disk.files());
            }
        }
    }
}

fn every_crash_point(power_loss: bool) -> BTreeMap<Left, usize> {
    let mut seen = BTreeMap::new();
    for ops in 0..200 {
        let (left, done) = delete_and_recover(ops, power_loss);
        *seen.entry(left).or_insert(0) += 1;
        if done {
            return seen;
        }
    }
    panic!("delete_log never completed within 200 disk calls");
}

#[test]
fn a_power_loss_at_any_point_of_a_log_deletion_leaves_the_whole_log_or_a_recognisable_remnant_or_nothing() {
    let seen = every_crash_point(true);
    assert!(seen.contains_key(&Left::Whole), "{seen:?}");
    assert!(
        seen.contains_key(&Left::Remnant),
        "a crash point after the files went: {seen:?}"
    );
    assert!(seen.contains_key(&Left::Nothing), "{seen:?}");
    let (left, _) = delete_and_recover(0, true);
    assert_eq!(left, Left::Whole, "nothing durable happened before the first call");
}

#[test]
fn a_process_crash_at_any_point_of_a_log_deletion_leaves_the_whole_log_or_a_recognisable_remnant_or_nothing() {
    let seen = every_crash_point(false);
    assert!(seen.contains_key(&Left::Whole), "{seen:?}");
    assert!(
        seen.contains_key(&Left::Remnant),
        "a crash point among the removals: {seen:?}"
    );
    assert!(seen.contains_key(&Left::Nothing), "{seen:?}");
}
