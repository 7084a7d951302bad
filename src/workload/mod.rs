//! L4: workload generators. They drive the clients and record every op in the history.

pub mod producer;
pub mod consumer;
