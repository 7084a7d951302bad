//! Compacted topics (`cleanup.policy` holding `compact`): what the log cleaner may legally remove, and the
//! checks only compaction needs (ARCHITECTURE §6; issue 10 item 6).
//!
//! Kafka's cleaner (`LogCleaner`, `shouldRetainRecord`) keeps, per key, the record at the key's highest
//! offset and removes an older record only when a later record of the same key sits above it in the same
//! log; offsets are preserved, so a key's records are never reordered. Hence:
//! - an acknowledged (or read) record may be missing from the final log only when a later landed record of
//!   its key (an acked send, or any record a reader or a final replica log showed) sits at a higher offset
//!   of its partition: [`Compaction::superseded`]; the lost-write, read-then-lost, poll-skip and
//!   offset-skip checkers excuse exactly those;
//! - `stale-latest`: a fresh read from the log start (the drain) must return, per key, the record at the
//!   key's highest landed offset below where it read to (uncleaned and active segments may still show older
//!   ones as well);
//! - replicas compact independently: [`compare_records`] compares two replicas offset by offset — a record
//!   both hold must agree; one only one holds is legal only if the other holds a later record of its key,
//!   or a later record of its key is a tombstone that may have expired.
//!
//! A key's latest record goes only when it is a tombstone whose `delete.retention.ms` passed
//! ([`super::tombstones`]); a tombstone counts as a later record of its key like any value.

use std::collections::{BTreeMap, BTreeSet};

use super::tombstones::Tombstones;
use super::view::{tp_name, Send, Tp, View};
use super::{Anomaly, CheckInput, ReplicaLog};
use crate::history::{OpBody, ReadRecord};

/// Per compacted partition, the landed records' keys by offset and each key's highest landed offset.
#[derive(Debug, Default)]
pub(super) struct Compaction {
    /// Per partition, per offset, the values that landed there (several after a legal reuse).
    landed: BTreeMap<Tp, BTreeMap<i64, BTreeSet<String>>>,
    /// Per partition, per key, its highest landed offset.
    latest: BTreeMap<Tp, BTreeMap<String, i64>>,
    /// The key of every value sent to a compacted topic.
    key_of: BTreeMap<String, String>,
    /// The tombstones among them, and when each may expire.
    pub tombstones: Tombstones,
}

/// The key of every value a producer sent (values are unique per run).
pub(super) fn keys_of_values(ops: &[crate::history::Op]) -> BTreeMap<&str, &str> {
    ops.iter()
        .filter_map(|op| match &op.body {
            OpBody::Send { key, value, .. } => Some((value.as_str(), key.as_str())),
            _ => None,
        })
        .collect()
}

impl Compaction {
    /// From the acked sends and every observation (`by_offset`: reads and final replica logs) of the
    /// compacted topics' partitions.
    pub fn build(input: &CheckInput<'_>, acked: &[Send], by_offset: &super::view::ByOffset<'_>) -> Self {
        let mut c = Compaction::default();
        if input.compacted_topics.is_empty() {
            return c;
        }
        c.tombstones = Tombstones::build(input);
        let compacted = |tp: &Tp| input.compacted_topics.contains(&tp.0);
        for op in input.ops {
            if let OpBody::Send { topic, key, value, .. } = &op.body {
                if input.compacted_topics.contains(topic) {
                    c.key_of.insert(value.clone(), key.clone());
                }
            }
        }
        let observed = by_offset
            .iter()
            .filter(|(tp, _)| compacted(tp))
            .flat_map(|(tp, offsets)| {
                offsets
                    .iter()
                    .flat_map(move |(o, values)| values.iter().map(move |v| (tp, *o, *v)))
            });
        let sent = acked
            .iter()
            .filter(|s| compacted(&s.tp))
            .filter_map(|s| Some((&s.tp, s.offset?, s.value)));
        for (tp, offset, value) in sent.chain(observed) {
            let Some(key) = c.key_of.get(value).cloned() else {
                continue;
            };
            c.landed
                .entry(tp.clone())
                .or_default()
                .entry(offset)
                .or_default()
                .insert(value.to_string());
            let l = c.latest.entry(tp.clone()).or_default().entry(key).or_insert(offset);
            *l = (*l).max(offset);
        }
        c
    }

    /// The offset of a later landed record of `key` above `offset` in `tp`, on a compacted topic: the cleaner
    /// may have removed the record at `offset`.
    pub fn superseded(&self, tp: &Tp, offset: i64, key: &str) -> Option<i64> {
        self.latest.get(tp)?.get(key).copied().filter(|&l| l > offset)
    }

    /// Whether every record known at `offset` of `tp` has a later landed record of its key, or is a
    /// tombstone that may have expired by `by_us`: a reader may legally find the offset gone then (a consumer
    /// jumping over it is no poll-skip).
    pub fn superseded_at(&self, tp: &Tp, offset: i64, by_us: u64) -> bool {
        self.landed.get(tp).and_then(|o| o.get(&offset)).is_some_and(|values| {
            values.iter().all(|v| {
                let key = self.key_of.get(v).map_or("", String::as_str);
                self.superseded(tp, offset, key).is_some()
                    || self.tombstones.expired(v, by_us).is_some()
                    || self.tombstones.may_have_deleted(tp, key, by_us).is_some()
            })
        })
    }

    /// Per key, its highest landed offset in `tp`.
    pub fn latest_of(&self, tp: &Tp) -> Option<&BTreeMap<String, i64>> {
        self.latest.get(tp)
    }

    /// The key of `value`, if it was sent to a compacted topic.
    pub fn key_of(&self, value: &str) -> Option<&str> {
        self.key_of.get(value).map(String::as_str)
    }
}

impl View<'_> {
    /// On a compacted topic, the offset of a later landed record of `value`'s key above `offset`.
    pub(super) fn compacted_by(&self, tp: &Tp, offset: i64, value: &str) -> Option<i64> {
        let key = self.compaction.key_of(value)?;
        self.compaction.superseded(tp, offset, key)
    }

    /// stale-latest: the drain read a compacted partition from its log start but did not return, for some key,
    /// the record at the key's highest landed offset below where it read to, though that record was read or
    /// held by a replica (a record never observed anywhere is the lost-write checker's).
    /// A latest record that is a tombstone may be gone once it may have expired ([`super::tombstones`]).
    pub fn stale_latest(&self, out: &mut Vec<Anomaly>) {
        for (tp, d) in self.drained_compacted() {
            let Some(latest) = self.compaction.latest.get(tp) else {
                continue;
            };
            let (start, end, records) = (d.start, d.end, &d.records);
            for (key, &at) in latest.iter().filter(|(_, &at)| at >= start && at < end) {
                let values = self.values_of_key_at(tp, at, key);
                let Some(value) = values.iter().find(|v| self.seen.contains_key(**v)) else {
                    continue;
                };
                if values.iter().any(|v| records.get(&at).map(|r| r.0) == Some(v)) {
                    continue;
                }
                let tombstones = &self.compaction.tombstones;
                if values.iter().any(|v| tombstones.expired(v, d.last_us).is_some()) {
                    continue; // gone as Kafka promises; `resurrected` checks no older value came back
                }
                if tombstones.may_have_deleted(tp, key, d.last_us).is_some() {
                    continue;
                }
                let first_us = self.seen[*value].iter().map(|s| s.time_us).min().unwrap_or(0);
                let why = self.loss_explained(tp, at, first_us, None);
                let read = records.get(&at).map_or("nothing".to_string(), |v| v.0.to_string());
                let d = format!(
                    "the drain read {} from {start} to {end} and returned {read} at offset {at}, the highest landed offset of key {key} ({value})",
                    tp_name(tp)
                );
                out.push(Self::anomaly("stale-latest", tp, Some(at), Some(value), d, why));
            }
        }
    }

    pub(super) fn values_of_key_at(&self, tp: &Tp, offset: i64, key: &str) -> Vec<&str> {
        let observed = self
            .by_offset
            .get(tp)
            .and_then(|o| o.get(&offset))
            .into_iter()
            .flatten();
        let acked = self
            .acked
            .iter()
            .filter(|s| &s.tp == tp && s.offset == Some(offset))
            .map(|s| s.value);
        let mut out: Vec<&str> = observed
            .copied()
            .chain(acked)
            .filter(|v| self.compaction.key_of(v) == Some(key))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Compares two replicas of a compacted partition offset by offset in [`from`, `hw`): a record both hold
/// must be the same value; a record only one holds is legal only if the other holds a later record of the
/// same key (its own cleaner removed it), or a later record of the key that one holds is a tombstone that
/// may have expired (`deleted(offset, value)`: the record is such a tombstone or lies below one, so that
/// replica's cleaner removed it with the tombstone). Returns the first difference.
pub(super) fn compare_records(
    a: &ReplicaLog,
    b: &ReplicaLog,
    from: i64,
    hw: i64,
    key_of: &BTreeMap<&str, &str>,
    deleted: &dyn Fn(i64, &str) -> bool,
) -> Option<String> {
    let removable = |missing: &ReplicaLog, o: i64, x: &str| holds_later(missing, o, x, key_of) || deleted(o, x);
    let in_range = |l: &'_ ReplicaLog| -> BTreeMap<i64, String> {
        l.records
            .iter()
            .filter(|r| r.offset >= from && r.offset < hw)
            .map(|r| (r.offset, r.value.clone()))
            .collect()
    };
    let (xs, ys) = (in_range(a), in_range(b));
    let offsets: BTreeSet<i64> = xs.keys().chain(ys.keys()).copied().collect();
    for o in offsets {
        match (xs.get(&o), ys.get(&o)) {
            (Some(x), Some(y)) if x != y => {
                return Some(format!(
                    "below the high watermark {hw}, {} holds {x} at offset {o} where {} holds {y}",
                    a.node, b.node
                ));
            }
            (Some(x), None) if !removable(b, o, x) => return Some(lacks(b, a, o, x, hw, key_of)),
            (None, Some(y)) if !removable(a, o, y) => return Some(lacks(a, b, o, y, hw, key_of)),
            _ => {}
        }
    }
    None
}

/// Whether `log` holds a record of `value`'s key above `offset`.
fn holds_later(log: &ReplicaLog, offset: i64, value: &str, key_of: &BTreeMap<&str, &str>) -> bool {
    let Some(key) = key_of.get(value) else { return false };
    log.records
        .iter()
        .any(|r: &ReadRecord| r.offset > offset && key_of.get(r.value.as_str()) == Some(key))
}

fn lacks(
    missing: &ReplicaLog,
    other: &ReplicaLog,
    o: i64,
    value: &str,
    hw: i64,
    key_of: &BTreeMap<&str, &str>,
) -> String {
    let key = key_of.get(value).copied().unwrap_or("?");
    format!(
        "below the high watermark {hw}, {} lacks offset {o} ({value}, key {key}) that {} holds, and holds no later record of key {key} (compaction removes a record only below a later one of its key, or an expired tombstone)",
        missing.node, other.node
    )
}
#[cfg(test)]
#[path = "compaction_tests.rs"]
mod tests;
