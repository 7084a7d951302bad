//! node

pub mod broker;
