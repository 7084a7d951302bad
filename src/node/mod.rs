//! node

pub mod broker;
pub mod controller;
pub mod real_disk;
