//! L1: the producer's pure core (client side): partitioning now; the accumulator, sequence numbers and
//! retry decisions later. No IO, no clock, no global RNG: randomness is passed in.

pub mod partitioner;

pub use partitioner::{murmur2, partition_for_key, StickyPartitioner, BATCH_SIZE_DEFAULT};
