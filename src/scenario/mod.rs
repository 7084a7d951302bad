//! L5: scenario files (`scenarios/*.toml`, documented key by key in `scenarios/README.md`).
//!
//! A scenario reads like a Kafka operator's note: Kafka's config names, times in simulated seconds, faults
//! aimed at roles. Loading is strict: unknown keys, wrong types and impossible shapes are errors that name
//! the key, the file, the line and the column (the CLI exits 2 on them).

mod overrides;
mod schema;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};

pub use overrides::{parse_override, unclean_election_enabled, Override, SECTIONS as OVERRIDE_SECTIONS};
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
        if self.line == 0 {
            // Not at a place in the file: it cannot be read, or a `--set` override is bad.
            return write!(f, "{}: {}", self.file, self.message);
        }
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
    /// The `--set` overrides applied on top of the file, as given (empty for the file as written).
    pub overrides: Vec<String>,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        Self::load_with(path, &[])
    }

    /// Reads a scenario file and applies `--set` overrides (see `overrides.rs`) before validating.
    pub fn load_with(path: &Path, overrides: &[Override]) -> Result<Scenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: shown.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read the scenario file: {e}"),
        })?;
        Self::parse_with(&shown, &text, overrides)
    }

    /// Parses and validates scenario text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        Self::parse_with(file, text, &[])
    }

    /// Parses scenario text, applies the overrides, validates. The hash covers the text and the overrides,
    /// so a run reproduces for one build, one scenario text and one set of overrides.
    pub fn parse_with(file: &str, text: &str, overrides: &[Override]) -> Result<Scenario, ScenarioError> {
        let locate = |span: Option<std::ops::Range<usize>>, message: String| {
            if let Some(o) = span.as_ref().and_then(|s| s.start.checked_sub(text.len())) {
                let given = overrides.get(o).map_or("?", |o| o.text.as_str());
                return ScenarioError {
                    file: file.to_string(),
                    line: 0,
                    column: 0,
                    message: format!("--set {given}: {message}"),
                };
            }
            let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
            ScenarioError {
                file: file.to_string(),
                line,
                column,
                message,
            }
        };
        let mut parsed: ScenarioFile = toml::from_str(text)
            .map_err(|e| locate(refine_span(text, e.span(), e.message()), e.message().to_string()))?;
        overrides::apply(&mut parsed, overrides, text.len());
        let (faults, topic_configs) = validate::validate(&parsed).map_err(|e| locate(e.span, e.message))?;
        let mut hashed = text.to_string();
        for o in overrides {
            hashed.push_str(&format!("\n# --set {}", o.text));
        }
        let hash = crate::history::hex(&Sha256::digest(hashed.as_bytes()));
        Ok(Scenario {
            path: file.to_string(),
            hash,
            file: parsed,
            faults,
            topic_configs,
            overrides: overrides.iter().map(|o| o.text.clone()).collect(),
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
