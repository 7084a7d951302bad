use super::*;
use crate::log::disk::write_atomically;

fn disk() -> SimDisk {
    SimDisk::new("broker-1", 42, SimDiskConfig::default())
}

/// A disk with directory `d` created and durable.
fn disk_with_dir() -> SimDisk {
    let mut disk = disk();
    disk.create_dir("d").unwrap();
    disk.sync_dir("").unwrap();
    disk
}

#[test]
fn preallocating_a_10_mib_index_costs_no_pages() {
    let mut disk = disk_with_dir();
    disk.create("d/00000000000000000000.index").unwrap();
    disk.truncate("d/00000000000000000000.index", 10 << 20).unwrap();
    disk.sync("d/00000000000000000000.index").unwrap();
    disk.write_at("d/00000000000000000000.index", 8, &[1; 8]).unwrap();
    assert_eq!(disk.len("d/00000000000000000000.index").unwrap(), 10 << 20);
    assert_eq!(disk.resident_pages(), 1, "only the written page is resident");
    let tail = disk
        .read_at("d/00000000000000000000.index", (10 << 20) - 4, 100)
        .unwrap();
    assert_eq!(tail, vec![0; 4], "unwritten ranges read as zeros, short at the end");
}

#[test]
fn unsynced_create_vanishes_at_power_loss() {
    let mut disk = disk_with_dir();
    disk.create("d/a").unwrap();
    disk.append("d/a", b"hello").unwrap();
    disk.sync("d/a").unwrap(); // data synced, but the directory entry is not
    let report = disk.power_loss();
    assert!(!disk.exists("d/a"));
    assert!(report.files.is_empty(), "{report:?}");
    assert!(disk.exists("d"), "the synced directory stays");
}

#[test]
fn synced_data_and_entries_survive_power_loss() {
    let mut disk = disk_with_dir();
    disk.create("d/a").unwrap();
    disk.append("d/a", b"durable").unwrap();
    disk.sync("d/a").unwrap();
    disk.sync_dir("d").unwrap();
    disk.append("d/a", &[9; 3000]).unwrap();
    let report = disk.power_loss();
    let data = disk.read_file("d/a").unwrap();
    assert_eq!(&data[..7], b"durable");
    assert_eq!(report.files.len(), 1);
    let frontier = &report.files[0];
    assert_eq!((frontier.path.as_str(), frontier.durable_len), ("d/a", 7));
    assert_eq!(frontier.surviving_len, data.len() as u64);
    assert!(
        data[7..].iter().all(|&b| b == 9),
        "only a prefix of the pending append survives"
    );
}

#[test]
fn rename_is_undone_at_power_loss_without_a_directory_sync() {
    let mut disk = disk_with_dir();
    write_atomically(&mut disk, "d/checkpoint", b"v1").unwrap();
    disk.create("d/checkpoint.tmp").unwrap();
    disk.write_at("d/checkpoint.tmp", 0, b"v2").unwrap();
    disk.sync("d/checkpoint.tmp").unwrap();
    disk.rename("d/checkpoint.tmp", "d/checkpoint").unwrap();
    assert_eq!(disk.read_file("d/checkpoint").unwrap(), b"v2");
    disk.power_loss();
    assert_eq!(disk.read_file("d/checkpoint").unwrap(), b"v1");
    assert!(!disk.exists("d/checkpoint.tmp"));
}

#[test]
fn write_atomically_survives_power_loss() {
    let mut disk = disk_with_dir();
    write_atomically(&mut disk, "d/checkpoint", b"v1").unwrap();
    write_atomically(&mut disk, "d/checkpoint", b"v2").unwrap();
    disk.power_loss();
    assert_eq!(disk.read_file("d/checkpoint").unwrap(), b"v2");
    assert_eq!(disk.files(), vec![("d/checkpoint".to_string(), 2)]);
}

#[test]
fn removed_file_comes_back_at_power_loss_without_a_directory_sync() {
    let mut disk = disk_with_dir();
    write_atomically(&mut disk, "d/a", b"keep").unwrap();
    disk.remove("d/a").unwrap();
    assert!(!disk.exists("d/a"));
    disk.power_loss();
    assert_eq!(disk.read_file("d/a").unwrap(), b"keep");
}

#[test]
fn process_crash_keeps_everything() {
    let mut disk = disk_with_dir();
    disk.create("d/a").unwrap();
    disk.append("d/a", &[5; 5000]).unwrap();
    disk.create_dir("d/e").unwrap();
    disk.rename("d/a", "d/e/b").unwrap();
    let before = disk.files();
    disk.crash();
    assert_eq!(disk.files(), before);
    assert_eq!(disk.read_file("d/e/b").unwrap(), vec![5; 5000]);
    assert_eq!(
        disk.take_elapsed(),
        Duration::ZERO,
        "a crash drops the dead process's latency"
    );
}

#[test]
fn clones_share_one_disk_across_incarnations() {
    let mut first = disk_with_dir();
    let mut second = first.clone();
    first.create("d/a").unwrap();
    second.append("d/a", b"x").unwrap();
    assert_eq!(first.read_file("d/a").unwrap(), b"x");
}

#[test]
fn enospc_at_capacity_has_no_partial_effect() {
    let config = SimDiskConfig {
        capacity_bytes: Some(1000),
        ..SimDiskConfig::default()
    };
    let mut disk = SimDisk::new("broker-1", 1, config);
    disk.create("a").unwrap();
    disk.append("a", &[1; 600]).unwrap();
    disk.create("b").unwrap();
    let err = disk.append("b", &[2; 600]).unwrap_err();
    assert_eq!(err, DiskError::NoSpace { path: "b".into() });
    assert_eq!(disk.len("b").unwrap(), 0);
    assert_eq!(
        disk.truncate("a", 2000).unwrap_err(),
        DiskError::NoSpace { path: "a".into() }
    );
    disk.truncate("a", 100).unwrap();
    disk.append("b", &[2; 600]).unwrap();
    assert_eq!(disk.files(), vec![("a".into(), 100), ("b".into(), 600)]);
}

#[test]
fn removing_files_frees_capacity() {
    let config = SimDiskConfig {
        capacity_bytes: Some(1000),
        ..SimDiskConfig::default()
    };
    let mut disk = SimDisk::new("broker-1", 1, config);
    disk.create("a").unwrap();
    disk.append("a", &[1; 900]).unwrap();
    disk.remove("a").unwrap();
    disk.create("b").unwrap();
    disk.append("b", &[1; 900]).unwrap();
    assert_eq!(disk.len("b").unwrap(), 900);
}

#[test]
fn eio_rate_one_fails_every_call_with_no_effect() {
    let mut disk = disk_with_dir();
    disk.create("d/a").unwrap();
    disk.set_config(SimDiskConfig {
        eio_rate: 1.0,
        ..SimDiskConfig::default()
    });
    let io = |path: &str| DiskError::Io { path: path.into() };
    assert_eq!(disk.create("d/b"), Err(io("d/b")));
    assert_eq!(disk.create_dir("d/e"), Err(io("d/e")));
    assert_eq!(disk.write_at("d/a", 0, b"x"), Err(io("d/a")));
    assert_eq!(disk.append("d/a", b"x"), Err(io("d/a")));
    assert_eq!(disk.truncate("d/a", 9), Err(io("d/a")));
    assert_eq!(disk.read_at("d/a", 0, 1), Err(io("d/a")));
    assert_eq!(disk.len("d/a"), Err(io("d/a")));
    assert_eq!(disk.sync("d/a"), Err(io("d/a")));
    assert_eq!(disk.rename("d/a", "d/c"), Err(io("d/a")));
    assert_eq!(disk.remove("d/a"), Err(io("d/a")));
    assert_eq!(disk.list("d"), Err(io("d")));
    assert_eq!(disk.sync_dir("d"), Err(io("d")));
    assert!(disk.take_elapsed() > Duration::ZERO, "failed calls still cost time");
    assert_eq!(disk.files(), vec![("d/a".into(), 0)]);
}

#[test]
fn bit_flip_at_rest_changes_exactly_one_bit_in_both_copies() {
    let mut disk = disk_with_dir();
    write_atomically(&mut disk, "d/a.log", &[0xAA; 3000]).unwrap();
    write_atomically(&mut disk, "d/b.index", &[0x55; 3000]).unwrap();
    let (path, offset, bit) = disk.flip_bit_at_rest(&|p: &str| p.ends_with(".log")).unwrap();
    assert_eq!(path, "d/a.log");
    let data = disk.read_file("d/a.log").unwrap();
    let changed: u32 = data.iter().map(|b| (b ^ 0xAA).count_ones()).sum();
    assert_eq!(changed, 1);
    assert_eq!(data[offset as usize], 0xAA ^ (1 << bit));
    disk.power_loss();
    assert_eq!(
        disk.read_file("d/a.log").unwrap(),
        data,
        "the durable copy is flipped too"
    );
    assert_eq!(disk.read_file("d/b.index").unwrap(), vec![0x55; 3000]);
    assert_eq!(disk.flip_bit_at_rest(&|p: &str| p.ends_with(".nothing")), None);
}

#[test]
fn bit_flip_on_read_leaves_stored_data_intact() {
    let mut disk = disk_with_dir();
    disk.create("d/a").unwrap();
    disk.append("d/a", &[0; 100]).unwrap();
    disk.set_config(SimDiskConfig {
        bitflip_on_read_rate: 1.0,
        ..SimDiskConfig::default()
    });
    let read = disk.read_at("d/a", 0, 100).unwrap();
    let flipped: u32 = read.iter().map(|b| b.count_ones()).sum();
    assert_eq!(flipped, 1);
    assert_eq!(disk.read_file("d/a").unwrap(), vec![0; 100]);
}

/// Lengths of `d/a` after a power loss with 20 pending 700-byte appends, over 20 seeds.
fn torn_lengths(seed_base: u64) -> Vec<u64> {
    (0..20)
        .map(|i| {
            let mut disk = SimDisk::new("broker-1", seed_base + i, SimDiskConfig::default());
            disk.create("a").unwrap();
            disk.sync_dir("").unwrap();
            for _ in 0..20 {
                disk.append("a", &[7; 700]).unwrap();
            }
            disk.power_loss().files[0].surviving_len
        })
        .collect()
}

#[test]
fn same_seed_gives_the_same_torn_prefix() {
    assert_eq!(torn_lengths(100), torn_lengths(100));
    let lengths = torn_lengths(100);
    assert!(
        lengths.iter().any(|len| len % 700 != 0),
        "some write is torn: {lengths:?}"
    );
    assert!(
        lengths.iter().all(|len| len % 700 == 0 || len % 512 == 0),
        "{lengths:?}"
    );
    let other = SimDisk::new("broker-2", 100, SimDiskConfig::default());
    let same_name = SimDisk::new("broker-1", 100, SimDiskConfig::default());
    assert_ne!(other.lock().rng.random::<u64>(), same_name.lock().rng.random::<u64>());
}

#[test]
fn unsynced_truncate_is_undone_at_power_loss() {
    let mut disk = disk_with_dir();
    write_atomically(&mut disk, "d/a", &[3; 2000]).unwrap();
    disk.truncate("d/a", 10).unwrap();
    let lens: Vec<u64> = (0..10)
        .map(|_| {
            let len = disk.power_loss().files[0].surviving_len;
            disk.truncate("d/a", 10).unwrap();
            disk.append("d/a", &[3; 1990]).unwrap();
            disk.sync("d/a").unwrap();
            disk.truncate("d/a", 10).unwrap();
            len
        })
        .collect();
    assert!(lens.iter().all(|&len| len == 10 || len == 2000), "{lens:?}");
    assert!(lens.contains(&2000), "{lens:?}");
}

#[test]
fn latency_is_metered_and_slow_factor_multiplies_it() {
    let mut disk = disk_with_dir();
    disk.take_elapsed();
    disk.create("d/a").unwrap();
    let fast = disk.take_elapsed();
    assert!(
        fast >= Duration::from_micros(10) && fast <= Duration::from_micros(30),
        "{fast:?}"
    );
    disk.sync("d/a").unwrap();
    let sync = disk.take_elapsed();
    assert!(
        sync >= Duration::from_millis(1) && sync <= Duration::from_millis(3),
        "{sync:?}"
    );
    disk.set_config(SimDiskConfig {
        slow_factor: 100,
        ..SimDiskConfig::default()
    });
    disk.len("d/a").unwrap();
    assert!(disk.take_elapsed() >= Duration::from_micros(1000));
    assert_eq!(disk.take_elapsed(), Duration::ZERO, "take_elapsed drains the meter");
}

#[test]
fn bad_paths_are_errors_not_panics() {
    let mut disk = disk_with_dir();
    disk.create("d/a").unwrap();
    assert!(matches!(disk.create("d//x"), Err(DiskError::Invalid { .. })));
    assert!(matches!(disk.create("../x"), Err(DiskError::Invalid { .. })));
    assert!(matches!(disk.create("nope/x"), Err(DiskError::NotFound { .. })));
    assert!(matches!(disk.create("d/a/x"), Err(DiskError::Invalid { .. })));
    assert!(matches!(disk.create("d/a"), Err(DiskError::AlreadyExists { .. })));
    assert!(matches!(disk.read_at("d", 0, 1), Err(DiskError::Invalid { .. })));
    assert!(matches!(disk.list("d/a"), Err(DiskError::Invalid { .. })));
    assert!(matches!(disk.remove(""), Err(DiskError::Invalid { .. })));
    assert!(matches!(disk.remove("d"), Err(DiskError::Invalid { .. })));
    assert!(matches!(
        disk.write_at("d/a", u64::MAX, b"xy"),
        Err(DiskError::Invalid { .. })
    ));
    assert!(matches!(disk.rename("d", "d/e"), Err(DiskError::Invalid { .. })));
    assert_eq!(disk.read_at("d/a", 1 << 40, usize::MAX).unwrap(), Vec::<u8>::new());
    assert!(!disk.exists("d//a") && disk.exists("") && disk.exists("d/a"));
}

#[test]
fn directories_list_sorted_and_rename_moves_subtrees() {
    let mut disk = disk_with_dir();
    disk.create("d/b").unwrap();
    disk.create("d/a").unwrap();
    disk.create_dir("d/c").unwrap();
    disk.create("d/c/x").unwrap();
    assert_eq!(disk.list("d").unwrap(), vec!["a", "b", "c"]);
    disk.rename("d/c", "e").unwrap();
    assert_eq!(disk.list("").unwrap(), vec!["d", "e"]);
    assert!(disk.exists("e/x") && !disk.exists("d/c"));
    disk.remove("e/x").unwrap();
    disk.remove("e").unwrap();
    assert_eq!(disk.list("").unwrap(), vec!["d"]);
}
