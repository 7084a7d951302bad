//! L1: the partition log, Kafka's layering: a log over segments over files, IO only through [`Disk`].

pub mod disk;

pub use disk::{Disk, DiskError, DiskResult};
