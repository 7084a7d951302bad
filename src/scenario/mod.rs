//! L5: scenario files (`scenarios/*.toml`, documented key by key in `scenarios/README.md`).
//!
//! A scenario reads like a Kafka operator's note: Kafka's config names, times in simulated seconds, faults
//! aimed at roles. Loading is strict: unknown keys, wrong types and impossible shapes are errors that name
//! the key, the file, the line and the column (the CLI exits 2 on them).

mod schema;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};

pub use schema::*;
pub use validate::{
    broker_config, consumer_config, consumer_names, controller_settings, producer_config, swarm_kinds, FaultKind,
    FaultParams, FaultSpec, PartitionMode, Target, TimeSpec,
};

/// A bad scenario: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// A loaded, validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The path it was read from, as given.
    pub path: String,
    /// SHA-256 (hex) of the file's bytes: a run reproduces for one build and one scenario text.
    pub hash: String,
    pub file: ScenarioFile,
    /// The fault plan, validated.
    pub faults: Vec<FaultSpec>,
    /// Per topic, its validated config (Kafka's topic config names).
    pub topic_configs: BTreeMap<String, BTreeMap<String, String>>,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: shown.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read the scenario file: {e}"),
        })?;
        Self::parse(&shown, &text)
    }

    /// Parses and validates scenario text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let locate = |span: Option<std::ops::Range<usize>>, message: String| {
            let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
            ScenarioError {
                file: file.to_string(),
                line,
                column,
                message,
            }
        };
        let parsed: ScenarioFile = toml::from_str(text)
            .map_err(|e| locate(refine_span(text, e.span(), e.message()), e.message().to_string()))?;
        let (faults, topic_configs) = validate::validate(&parsed).map_err(|e| locate(e.span, e.message))?;
        let hash = crate::history::hex(&Sha256::digest(text.as_bytes()));
        Ok(Scenario {
            path: file.to_string(),
            hash,
            file: parsed,
            faults,
            topic_configs,
        })
    }

    pub fn name(&self) -> &str {
        &self.file.name
    }
}

/// serde reports an unknown field at its table; point at the key itself.
fn refine_span(text: &str, span: Option<std::ops::Range<usize>>, message: &str) -> Option<std::ops::Range<usize>> {
    let span = span?;
    let key = message
        .strip_prefix("unknown field `")
        .and_then(|m| m.split('`').next());
    let Some(key) = key else { return Some(span) };
    // The span may cover only the table's header: look from it to the next table header.
    let region = text.get(span.start..).unwrap_or("");
    let mut pos = 0;
    for (i, line) in region.split_inclusive('\n').enumerate() {
        if i > 0 && line.trim_start().starts_with('[') {
            break;
        }
        let trimmed = line.trim_start();
        let bare = trimmed
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        let quoted = trimmed
            .strip_prefix(&format!("\"{key}\""))
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if bare || quoted {
            let at = span.start + pos + (line.len() - trimmed.len());
            return Some(at..at + key.len());
        }
        pos += line.len();
    }
    Some(span)
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests;
