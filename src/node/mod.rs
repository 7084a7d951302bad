//! node

pub mod real_disk;
