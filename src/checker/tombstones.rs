//! Tombstones on compacted topics: records with a null value, Kafka's delete markers (issue 10 item 2).
//!
//! Kafka's cleaner keeps a tombstone while it is its key's latest record, for `delete.retention.ms` after
//! the first cleaning that kept it (KIP-534's delete horizon, stamped on its batch from the cleaning broker's
//! wall clock), then removes it. A tombstone can therefore disappear only `delete.retention.ms` after it was
//! appended — after its send was invoked — and never earlier; and once a cleaning has kept it, no older
//! value of its key remains below it. Hence:
//! - an acknowledged (or read) tombstone that is its key's latest landed record may be missing from the end
//!   state only when it could have expired: [`Tombstones::expired`];
//! - `resurrected`: the drain read a compacted partition from its log start (within `delete.retention.ms`,
//!   Kafka's bound for a consistent snapshot), did not return a key's latest landed record, a tombstone, but
//!   returned an older value of that key: the delete came undone.
//!
//! Broker clock skew moves delete horizons (they are wall-clock instants): an expiry may come early by up to
//! twice the largest skew any `clock_skew` fault set (one broker stamps the horizon, another compares it).

use std::collections::{BTreeMap, BTreeSet};

use super::view::{tp_name, Tp, View};
use super::{Anomaly, CheckInput};
use crate::history::{FaultPhase, OpBody, OpType};

/// Kafka's default `delete.retention.ms` (`log.cleaner.delete.retention.ms`): one day.
pub const DEFAULT_DELETE_RETENTION_MS: i64 = 86_400_000;

/// The tombstones sent to compacted topics and when each could first expire.
#[derive(Debug, Default)]
pub(super) struct Tombstones {
    /// Per tombstone (its history value), the topic and the earliest invoke of its send (µs).
    sent: BTreeMap<String, (String, u64)>,
    /// `delete.retention.ms` per topic.
    delete_retention_ms: BTreeMap<String, i64>,
    /// How much earlier than `delete.retention.ms` a skewed broker clock may expire one.
    skew_allowance_us: u64,
    /// Per partition and key, the tombstones whose send neither succeeded nor failed (`info`, or no
    /// completion): each may have landed above any record of its key, deleted it, and expired unseen.
    indeterminate: BTreeMap<(Tp, String), BTreeSet<String>>,
    /// Per partition and key, where its tombstones landed (acked, or held by a final replica log).
    landed: BTreeMap<(Tp, String), BTreeMap<i64, String>>,
}

impl Tombstones {
    pub fn build(input: &CheckInput<'_>) -> Tombstones {
        let mut t = Tombstones {
            delete_retention_ms: input.delete_retention_ms.clone(),
            ..Tombstones::default()
        };
        let mut skew_ms_max: u64 = 0;
        for op in input.ops {
            match &op.body {
                OpBody::Send {
                    topic,
                    partition,
                    key,
                    value,
                    offset,
                    tombstone: true,
                } if input.compacted_topics.contains(topic) => {
                    let unknown = t
                        .indeterminate
                        .entry(((topic.clone(), *partition), key.clone()))
                        .or_default();
                    match op.op_type {
                        OpType::Invoke => {
                            let e = t.sent.entry(value.clone()).or_insert((topic.clone(), op.time_us));
                            e.1 = e.1.min(op.time_us);
                            unknown.insert(value.clone());
                        }
                        OpType::Ok | OpType::Fail => {
                            unknown.remove(value);
                            if let (OpType::Ok, Some(o)) = (op.op_type, offset) {
                                let tk = ((topic.clone(), *partition), key.clone());
                                t.landed.entry(tk).or_default().insert(*o, value.clone());
                            }
                        }
                        OpType::Info => {}
                    }
                }
                OpBody::Fault {
                    kind,
                    phase: FaultPhase::Start,
                    detail,
                    ..
                } if kind == "clock_skew" => {
                    let skew = detail.get("skew_ms").and_then(|s| s.as_i64()).unwrap_or(0);
                    skew_ms_max = skew_ms_max.max(skew.unsigned_abs());
                }
                _ => {}
            }
        }
        t.skew_allowance_us = skew_ms_max.saturating_mul(2_000);
        let key_of = super::compaction::keys_of_values(input.ops);
        for log in &input.final_state.replica_logs {
            for r in log.records.iter().filter(|r| r.tombstone) {
                if let Some(key) = key_of.get(r.value.as_str()) {
                    let tk = ((log.topic.clone(), log.partition), key.to_string());
                    t.landed.entry(tk).or_default().insert(r.offset, r.value.clone());
                }
            }
        }
        t
    }

    /// Why the record of `key` at `offset` of `tp` may be gone by `by_us` under a tombstone of its key: one
    /// landed above it and may have expired (the cleaner removes what a tombstone deletes no later than the
    /// tombstone itself), or one whose send's outcome is unknown may have.
    pub fn deletes_below(&self, tp: &Tp, key: &str, offset: i64, by_us: u64) -> Option<String> {
        let tk = (tp.clone(), key.to_string());
        let above = self.landed.get(&tk).into_iter().flat_map(|l| l.range(offset + 1..));
        above
            .filter_map(|(_, v)| self.expired(v, by_us))
            .next()
            .or_else(|| self.may_have_deleted(tp, key, by_us))
    }

    /// Why a record of `key` in `tp` may be gone by `by_us` under a tombstone whose send's outcome is
    /// unknown: it may have landed above the record and expired with it, unseen.
    pub fn may_have_deleted(&self, tp: &Tp, key: &str, by_us: u64) -> Option<String> {
        let unknown = self.indeterminate.get(&(tp.clone(), key.to_string()))?;
        unknown.iter().find_map(|v| {
            self.expired(v, by_us)
                .map(|why| format!("{why}; its send's outcome is unknown, so it may have deleted key {key}"))
        })
    }

    pub fn is_tombstone(&self, value: &str) -> bool {
        self.sent.contains_key(value)
    }

    /// The topic's `delete.retention.ms`.
    pub fn retention_ms(&self, topic: &str) -> i64 {
        self.delete_retention_ms
            .get(topic)
            .copied()
            .unwrap_or(DEFAULT_DELETE_RETENTION_MS)
    }

    /// Why `value`, a tombstone, may be gone by `by_us`: `delete.retention.ms` has passed since its send was
    /// invoked (no cleaning could stamp its delete horizon before it was appended). None when `value` is no
    /// tombstone or could not have expired yet.
    pub fn expired(&self, value: &str, by_us: u64) -> Option<String> {
        let (topic, invoke_us) = self.sent.get(value)?;
        let retention_ms = self.retention_ms(topic);
        let expiry_us = invoke_us
            .saturating_add(retention_ms.max(0) as u64 * 1_000)
            .saturating_sub(self.skew_allowance_us);
        (by_us >= expiry_us).then(|| {
            format!(
                "{value} is a tombstone sent at {:.3}s; with delete.retention.ms {retention_ms} the cleaner may remove it from {:.3}s (KIP-534 delete horizon), before {:.3}s",
                *invoke_us as f64 / 1e6,
                expiry_us as f64 / 1e6,
                by_us as f64 / 1e6
            )
        })
    }
}

impl View<'_> {
    /// Whether `value` at `tp` may be gone by `by_us` under a tombstone: it is one that may have expired, or
    /// a tombstone of its key whose send's outcome is unknown may have deleted it and expired.
    pub(super) fn deleted_by_tombstone(&self, tp: &Tp, value: &str, by_us: u64) -> bool {
        let t = &self.compaction.tombstones;
        t.expired(value, by_us).is_some()
            || self
                .compaction
                .key_of(value)
                .is_some_and(|key| t.may_have_deleted(tp, key, by_us).is_some())
    }

    /// When the drain last read `tp` (the end of the run when it did not): what it missed was gone by then.
    pub(super) fn drained_until_us(&self, tp: &Tp) -> u64 {
        self.polls
            .iter()
            .filter(|p| p.process == "drain" && &p.tp == tp)
            .map(|p| p.time_us)
            .max()
            .unwrap_or(self.end_us())
    }

    /// resurrected: the drain read a compacted partition from its log start within `delete.retention.ms`
    /// and returned an older value of a key whose latest landed record, a tombstone, it did not return.
    pub fn resurrected(&self, out: &mut Vec<Anomaly>) {
        for (tp, d) in self.drained_compacted() {
            let Some(latest) = self.compaction.latest_of(tp) else {
                continue;
            };
            if d.last_us - d.first_us >= self.compaction.tombstones.retention_ms(&tp.0).max(0) as u64 * 1_000 {
                continue; // Kafka promises a consistent snapshot only to a read from the start that is this quick
            }
            for (key, &at) in latest.iter().filter(|(_, &at)| at >= d.start && at < d.end) {
                let values = self.values_of_key_at(tp, at, key);
                let Some(tombstone) = values.iter().find(|v| self.compaction.tombstones.is_tombstone(v)) else {
                    continue;
                };
                if d.records.contains_key(&at) {
                    continue;
                }
                let older = d
                    .records
                    .range(..at)
                    .find(|(_, (v, tomb))| !*tomb && self.compaction.key_of(v) == Some(key.as_str()));
                let Some((&o, (v, _))) = older else { continue };
                let first_us = self.seen.get(*v).and_then(|s| s.iter().map(|s| s.time_us).min());
                let why = self.loss_explained(tp, at, first_us.unwrap_or(0), None);
                let d = format!(
                    "the drain read {} from {} to {} and returned {v} at offset {o}, an older value of key {key}, but not {tombstone} at offset {at}, the key's latest landed record, a tombstone: the delete came undone",
                    tp_name(tp),
                    d.start,
                    d.end
                );
                out.push(Self::anomaly("resurrected", tp, Some(at), Some(tombstone), d, why));
            }
        }
    }
}

/// What the drain read of one compacted partition: from `start` to `end`, between `first_us` and `last_us`,
/// per offset the value and whether it was a tombstone.
pub(super) struct Drained<'a> {
    pub start: i64,
    pub end: i64,
    pub first_us: u64,
    pub last_us: u64,
    pub records: BTreeMap<i64, (&'a str, bool)>,
}

impl<'a> View<'a> {
    /// Per compacted partition the drain read, what it returned.
    pub(super) fn drained_compacted(&self) -> BTreeMap<&Tp, Drained<'a>> {
        let mut drained: BTreeMap<&Tp, Drained<'a>> = BTreeMap::new();
        for p in self.polls.iter().filter(|p| p.process == "drain") {
            if !self.input.compacted_topics.contains(&p.tp.0) {
                continue;
            }
            let e = drained.entry(&p.tp).or_insert(Drained {
                start: p.fetch_offset,
                end: p.fetch_offset,
                first_us: p.time_us,
                last_us: p.time_us,
                records: BTreeMap::new(),
            });
            e.start = e.start.min(p.fetch_offset);
            e.end = e.end.max(p.fetch_offset);
            e.first_us = e.first_us.min(p.time_us);
            e.last_us = e.last_us.max(p.time_us);
            for r in p.records {
                e.end = e.end.max(r.offset + 1);
                e.records.insert(r.offset, (r.value.as_str(), r.tombstone));
            }
        }
        drained
    }
}
