//! node

pub mod broker;
pub mod real_disk;
