//! gregor: a deterministic simulation testbed for a Kafka-style event streaming system.
//!
//! Layers (ARCHITECTURE §2): a module imports only from the layers listed before its own.
//! - L0 data: [`types`], [`protocol`], [`history`], [`metadata`] (the metadata image brokers serve from)
//! - L1 pure cores: [`log`], [`producer`], [`replication`], [`raft`], [`controller`], [`group`], [`consumer`]
//! - L2: [`broker`]
//! - L3: [`node`], [`client`], [`rt`]
//! - L4: [`sim`], [`workload`]
//! - L5: [`scenario`], [`runner`], [`checker`]
//! - L6: [`cli`]

pub mod history;
pub mod metadata;
pub mod protocol;
pub mod types;

pub mod log;
pub mod producer;
pub mod replication;
pub mod raft;
pub mod controller;
pub mod group;
pub mod consumer;

pub mod broker;

pub mod client;
pub mod node;
pub mod rt;

pub mod sim;
pub mod workload;

pub mod checker;
pub mod runner;
pub mod scenario;

pub mod cli;
