//! L0: the Kafka wire protocol: framing, bounded decoding, record batches, error codes.

pub mod batch;
pub mod frame;

pub mod api;
pub mod schemas;
mod group_schemas;
pub mod bounded;
pub mod errors;
