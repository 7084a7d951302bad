//! The contract monitor's inputs from the scenario: each topic's `min.insync.replicas` (its topic config,
//! else the brokers' `min.insync.replicas`, else Kafka's default 1). The monitor itself is the pure
//! [`crate::checker::contract`].

use std::collections::BTreeMap;

use crate::scenario::Scenario;

/// `min.insync.replicas` by topic.
pub fn min_insync_replicas(s: &Scenario) -> BTreeMap<String, u32> {
    let broker_default: u32 = crate::scenario::broker_config(&s.file.cluster)
        .get("min.insync.replicas")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut out: BTreeMap<String, u32> = s
        .file
        .topics
        .iter()
        .map(|t| {
            let name = t.name.get_ref().clone();
            let min = s
                .topic_configs
                .get(&name)
                .and_then(|c| c.get("min.insync.replicas"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(broker_default);
            (name, min)
        })
        .collect();
    // The group coordinator's internal topic takes the brokers' default, as the brokers enforce it.
    out.insert(crate::group::OFFSETS_TOPIC.to_string(), broker_default);
    out
}

/// Every topic's `delete.retention.ms` (the brokers' `log.cleaner.delete.retention.ms`, else Kafka's
/// default of one day): how long the cleaner keeps a tombstone once it kept it (KIP-534).
pub fn delete_retention_ms(s: &Scenario) -> std::collections::BTreeMap<String, i64> {
    let broker_default = crate::scenario::broker_config(&s.file.cluster)
        .get("log.cleaner.delete.retention.ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(crate::log::LogConfig::default().delete_retention_ms);
    s.file
        .topics
        .iter()
        .map(|t| {
            let name = t.name.get_ref().clone();
            let ms = s
                .topic_configs
                .get(&name)
                .and_then(|c| c.get("delete.retention.ms"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(broker_default);
            (name, ms)
        })
        .collect()
}

/// The topics whose `cleanup.policy` holds `compact` (`compact` or `compact,delete`): the checkers let the
/// log cleaner remove a record below a later one of its key there.
pub fn compacted_topics(s: &Scenario) -> std::collections::BTreeSet<String> {
    let broker_default = crate::scenario::broker_config(&s.file.cluster)
        .get("log.cleanup.policy")
        .cloned();
    s.file
        .topics
        .iter()
        .map(|t| t.name.get_ref().clone())
        .filter(|name| {
            s.topic_configs
                .get(name)
                .and_then(|c| c.get("cleanup.policy"))
                .or(broker_default.as_ref())
                .is_some_and(|p| p.split(',').any(|x| x.trim() == "compact"))
        })
        .collect()
}
