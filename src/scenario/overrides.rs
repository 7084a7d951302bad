//! `--set SECTION.KEY=VALUE`: one run's configuration changed without editing the scenario file.
//!
//! The sections are the scenario file's own config tables, and the key is Kafka's config name:
//!
//! | `--set`                               | changes                                  |
//! |---------------------------------------|------------------------------------------|
//! | `producers.config.acks=1`             | every `[[producers]]`'s `config`          |
//! | `topics.config.min.insync.replicas=1` | every `[[topics]]`'s `config`             |
//! | `cluster.broker_config.KEY=VALUE`     | `[cluster] broker_config`                 |
//! | `cluster.controller_config.KEY=VALUE` | `[cluster] controller_config`             |
//!
//! An override replaces the file's value or adds the key, then the whole scenario is validated as if the file
//! said so: an unknown key or a bad value is an error naming the `--set`. Expectations follow (ARCHITECTURE
//! §6): they are derived from the resulting configuration, and `must_hit` marks the new configuration cannot
//! reach (an idempotence mark once acks is not `all`) are dropped.

use toml::Spanned;

use super::schema::{ConfigMap, ScenarioFile};

/// The sections `--set` knows, as written before the key.
pub const SECTIONS: &[&str] = &[
    "producers.config.",
    "topics.config.",
    "cluster.broker_config.",
    "cluster.controller_config.",
];

/// Coverage marks that only an idempotent producer can hit.
const IDEMPOTENCE_MARKS: &[&str] = &["duplicate-batch-answered-with-original-offset"];

/// Coverage marks about a leader holding acks=all batches until the ISR has them: only an acks=all producer.
const ACKS_ALL_MARKS: &[&str] = &[
    "leader-crashed-with-acks-all-in-flight",
    "leader-lost-power-with-acks-all-in-flight",
];

/// Coverage marks about produce requests awaiting their answer: an acks=0 producer awaits none.
const SENDS_IN_FLIGHT_MARKS: &[&str] = &[
    "broker-crashed-with-sends-in-flight",
    "broker-lost-power-with-sends-in-flight",
    "broker-shut-down-with-sends-in-flight",
    "broker-paused-with-sends-in-flight",
    "broker-isolated-with-sends-in-flight",
    "broker-disk-slow-with-sends-in-flight",
    "produce-response-dropped",
];

/// Coverage marks only `unclean.leader.election.enable=true` can reach.
const UNCLEAN_MARKS: &[&str] = &["unclean-leader-elected"];

/// One parsed `--set`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// As given: `producers.config.acks=1`.
    pub text: String,
    /// One of [`SECTIONS`], without the trailing dot.
    pub section: &'static str,
    /// Kafka's config name: `acks`, `min.insync.replicas`.
    pub key: String,
    pub value: String,
}

/// Parses `SECTION.KEY=VALUE`; the error names the argument and lists the sections.
pub fn parse_override(text: &str) -> Result<Override, String> {
    let (path, value) = text
        .split_once('=')
        .ok_or_else(|| format!("--set {text:?}: expected SECTION.KEY=VALUE, e.g. producers.config.acks=1"))?;
    let (path, value) = (path.trim(), value.trim());
    let section = SECTIONS.iter().find(|s| path.starts_with(*s)).ok_or_else(|| {
        format!(
            "--set {text:?}: unknown section; the key must start with one of {}",
            SECTIONS.join(", ")
        )
    })?;
    let key = &path[section.len()..];
    if key.is_empty() {
        return Err(format!("--set {text:?}: no config key after `{section}`"));
    }
    if value.is_empty() {
        return Err(format!("--set {text:?}: no value after `=`"));
    }
    Ok(Override {
        text: text.to_string(),
        section: &section[..section.len() - 1],
        key: key.to_string(),
        value: value.to_string(),
    })
}

/// Applies the overrides to a parsed file. Override `i`'s entries get the span `base + i`, past the end of
/// the file's text, so a validation error on them can name the `--set` instead of a line.
pub(super) fn apply(file: &mut ScenarioFile, overrides: &[Override], base: usize) {
    for (i, o) in overrides.iter().enumerate() {
        let span = base + i..base + i + 1;
        let set = |map: &mut ConfigMap| {
            map.retain(|k, _| k.get_ref() != &o.key);
            map.insert(
                Spanned::new(span.clone(), o.key.clone()),
                Spanned::new(span.clone(), toml::Value::String(o.value.clone())),
            );
        };
        match o.section {
            "producers.config" => file.producers.iter_mut().for_each(|p| set(&mut p.config)),
            "topics.config" => file.topics.iter_mut().for_each(|t| set(&mut t.config)),
            "cluster.broker_config" => set(&mut file.cluster.broker_config),
            _ => set(&mut file.cluster.controller_config),
        }
    }
    drop_unreachable_marks(file);
}

/// `must_hit` marks the configuration cannot reach: an idempotence mark when no producer is idempotent, an
/// acks=all mark when no producer uses acks=all, a sends-in-flight mark when every producer uses acks=0, an
/// unclean-election mark when `unclean.leader.election.enable` is off for every topic.
fn drop_unreachable_marks(file: &mut ScenarioFile) {
    let configs: Vec<_> = file
        .producers
        .iter()
        .filter_map(|p| crate::producer::ProducerConfig::from_map(&super::producer_config(p)).ok())
        .collect();
    let mut unreachable: Vec<&str> = vec![];
    if !configs.iter().any(|c| c.enable_idempotence) {
        unreachable.extend(IDEMPOTENCE_MARKS);
    }
    if !configs.iter().any(|c| c.acks == -1) {
        unreachable.extend(ACKS_ALL_MARKS);
    }
    if !configs.is_empty() && configs.iter().all(|c| c.acks == 0) {
        unreachable.extend(SENDS_IN_FLIGHT_MARKS);
    }
    if !unclean_election_enabled(file) {
        unreachable.extend(UNCLEAN_MARKS);
    }
    file.expect
        .must_hit
        .retain(|m| !unreachable.contains(&m.get_ref().as_str()));
    file.expect
        .sweep_must_hit
        .retain(|m, _| !unreachable.contains(&m.get_ref().as_str()));
}

/// Whether some topic may elect a leader from outside its ISR: `unclean.leader.election.enable` of the topic,
/// else the controllers' default (Kafka's topic config overrides the cluster default).
pub fn unclean_election_enabled(file: &ScenarioFile) -> bool {
    let key = "unclean.leader.election.enable";
    let value = |map: &ConfigMap| {
        map.iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(_, v)| match v.get_ref() {
                toml::Value::Boolean(b) => *b,
                toml::Value::String(s) => s.trim() == "true",
                _ => false,
            })
    };
    let default = value(&file.cluster.controller_config).unwrap_or(false);
    file.topics.iter().any(|t| value(&t.config).unwrap_or(default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_splits_into_section_kafka_key_and_value() {
        let o = parse_override("topics.config.min.insync.replicas=1").unwrap();
        assert_eq!(o.section, "topics.config");
        assert_eq!(o.key, "min.insync.replicas");
        assert_eq!(o.value, "1");
        let o = parse_override("producers.config.acks=all").unwrap();
        assert_eq!(
            (o.section, o.key.as_str(), o.value.as_str()),
            ("producers.config", "acks", "all")
        );
    }

    #[test]
    fn a_bad_override_names_itself_and_says_why() {
        let e = parse_override("producer.acks=1").unwrap_err();
        assert!(e.contains("producer.acks=1") && e.contains("producers.config."), "{e}");
        assert!(parse_override("producers.config.acks")
            .unwrap_err()
            .contains("SECTION.KEY=VALUE"));
        assert!(parse_override("producers.config.=1")
            .unwrap_err()
            .contains("no config key"));
        assert!(parse_override("producers.config.acks=")
            .unwrap_err()
            .contains("no value"));
    }

    fn must_hit_with(path: &str, sets: &[&str]) -> Vec<String> {
        let file = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")).join(path);
        let o: Vec<Override> = sets.iter().map(|s| parse_override(s).unwrap()).collect();
        let s = crate::scenario::Scenario::load_with(&file, &o).unwrap();
        s.file.expect.must_hit.iter().map(|m| m.get_ref().clone()).collect()
    }

    #[test]
    fn marks_a_configuration_cannot_reach_are_dropped_with_the_override() {
        let all = must_hit_with("leader-crash-acks-all.toml", &["producers.config.acks=all"]);
        assert!(
            all.contains(&"leader-crashed-with-acks-all-in-flight".to_string()),
            "{all:?}"
        );
        let one = must_hit_with("leader-crash-acks-all.toml", &["producers.config.acks=1"]);
        assert!(
            !one.contains(&"leader-crashed-with-acks-all-in-flight".to_string()),
            "{one:?}"
        );
        assert!(
            one.contains(&"broker-crashed-with-sends-in-flight".to_string()),
            "{one:?}"
        );
        let zero = must_hit_with("leader-crash-acks-all.toml", &["producers.config.acks=0"]);
        assert!(
            !zero.contains(&"broker-crashed-with-sends-in-flight".to_string()),
            "{zero:?}"
        );
        assert!(zero.contains(&"partition-leader-changed".to_string()), "{zero:?}");
    }

    #[test]
    fn the_unclean_election_mark_is_dropped_once_unclean_election_is_turned_off() {
        let on = must_hit_with("isr-shrink-leader-crash-unclean.toml", &["producers.config.acks=all"]);
        assert!(on.contains(&"unclean-leader-elected".to_string()), "{on:?}");
        let off = must_hit_with(
            "isr-shrink-leader-crash-unclean.toml",
            &["cluster.controller_config.unclean.leader.election.enable=false"],
        );
        assert!(!off.contains(&"unclean-leader-elected".to_string()), "{off:?}");
    }
}
