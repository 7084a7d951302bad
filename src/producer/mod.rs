//! L1: the producer's pure core (client side): partitioner, configuration, accumulator, sequence numbers and
//! retry decisions. No IO, no clock, no global RNG: `now_ms` and the RNG are passed in, effects come out as
//! data ([`sender::Effect`]). The outcome table of ARCHITECTURE §6 sits beside [`outcome::final_outcome`].

pub mod accumulator;
pub mod config;
pub mod outcome;
pub mod partitioner;
pub mod sender;
pub mod sequence;

pub use accumulator::{RecordAccumulator, SendId};
pub use config::{ProducerConfig, ProducerConfigError};
pub use outcome::{Failure, InfoReason, Outcome};
pub use partitioner::{murmur2, partition_for_key, StickyPartitioner, BATCH_SIZE_DEFAULT};
pub use sender::{Effect, PartitionResponse, ProduceBatch, ProduceRequest, Producer, ProducerRecord};
