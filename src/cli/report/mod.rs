//! `gregor report`: the durability matrix (fault scenarios x acks x min.insync.replicas x unclean election),
//! one process per seed, written as `index.html`, `report.md`, `results.json` and SVG plots. `gregor report
//! merge` renders one report from several shards' `results.json`.
//!
//! The pure parts (matrix, aggregation, bounds, timeline, rendering) spawn nothing; `run.rs` runs children.

pub mod aggregate;
pub mod groups;
pub mod matrix;
pub mod plots;
pub mod render;
pub mod results;
mod run;
pub mod stats;
pub mod timeline;

pub use run::{cmd_report, ReportArgs};
