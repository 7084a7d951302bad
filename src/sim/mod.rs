//! sim

pub mod disk;
