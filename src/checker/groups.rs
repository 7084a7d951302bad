//! Consumer-group checkers (ARCHITECTURE §6): `offset-regress` (a group's committed offset for a partition
//! moves back, in commit order) and `offset-skip` (a new owner starts past records nobody in the group
//! processed). A committed offset is the next offset to read.
//!
//! Legal Kafka behaviour they must not flag: a member's seek or `auto.offset.reset` moves the position, and
//! the next commit follows it; a commit whose outcome is unknown (`info`) may have landed; records below the
//! log start offset (retention, DeleteRecords) cannot be read; a power loss or an unclean election of the
//! offsets topic (`__consumer_offsets`) out of contract can lose commits.

use std::collections::{BTreeMap, BTreeSet};

use super::view::{tp_name, Tp, View};
use super::Anomaly;
use crate::history::{FaultPhase, Op, OpBody, OpType};

/// Kafka's internal topic holding committed offsets (`offsets.topic.num.partitions` partitions).
const OFFSETS_TOPIC: &str = "__consumer_offsets";

struct Commit<'a> {
    index: u64,
    process: &'a str,
    group: &'a str,
    tp: Tp,
    offset: i64,
    invoke_us: u64,
    time_us: u64,
}

/// A seek or an offset reset by a consumer.
struct Move<'a> {
    index: u64,
    process: &'a str,
    tp: Tp,
    offset: Option<i64>,
    what: String,
    time_us: u64,
}

struct Sync<'a> {
    index: u64,
    process: &'a str,
    group: &'a str,
    generation: i32,
    assignment: Vec<Tp>,
}

/// An unclean election of a partition, as the history records it: a fault event of kind `unclean_election`
/// whose target names the partition (`__consumer_offsets-7`).
struct Unclean {
    time_us: u64,
    target: String,
}

fn secs(time_us: u64) -> f64 {
    time_us as f64 / 1e6
}

/// The history's group ops, read once.
pub(super) struct Groups<'a> {
    ok_commits: Vec<Commit<'a>>,
    info_commits: Vec<Commit<'a>>,
    /// Per group, every process that joined or synced it.
    members: BTreeMap<&'a str, BTreeSet<&'a str>>,
    moves: Vec<Move<'a>>,
    syncs: Vec<Sync<'a>>,
    unclean: Vec<Unclean>,
}

impl<'a> Groups<'a> {
    pub fn build(ops: &'a [Op]) -> Groups<'a> {
        let mut g = Groups {
            ok_commits: vec![],
            info_commits: vec![],
            members: BTreeMap::new(),
            moves: vec![],
            syncs: vec![],
            unclean: vec![],
        };
        let mut invoked: BTreeMap<(&str, &str, &str, i32, i64), u64> = BTreeMap::new();
        for op in ops {
            let p = op.process.as_str();
            let done = matches!(op.op_type, OpType::Ok | OpType::Info);
            match &op.body {
                OpBody::Commit {
                    group,
                    topic,
                    partition,
                    offset,
                    ..
                } => {
                    let key = (p, group.as_str(), topic.as_str(), *partition, *offset);
                    if op.op_type == OpType::Invoke {
                        invoked.insert(key, op.time_us);
                        continue;
                    }
                    let c = Commit {
                        index: op.index,
                        process: p,
                        group,
                        tp: (topic.clone(), *partition),
                        offset: *offset,
                        invoke_us: invoked.remove(&key).unwrap_or(op.time_us),
                        time_us: op.time_us,
                    };
                    match op.op_type {
                        OpType::Ok => g.ok_commits.push(c),
                        OpType::Info => g.info_commits.push(c),
                        _ => {}
                    }
                }
                OpBody::Join { group, .. } => {
                    g.members.entry(group).or_default().insert(p);
                }
                OpBody::Sync {
                    group,
                    generation,
                    assignment,
                    ..
                } => {
                    g.members.entry(group).or_default().insert(p);
                    if op.op_type == OpType::Ok {
                        g.syncs.push(Sync {
                            index: op.index,
                            process: p,
                            group,
                            generation: *generation,
                            assignment: assignment.iter().map(|t| (t.topic.clone(), t.partition)).collect(),
                        });
                    }
                }
                OpBody::Seek {
                    topic,
                    partition,
                    offset,
                } if done => g.moves.push(Move {
                    index: op.index,
                    process: p,
                    tp: (topic.clone(), *partition),
                    offset: Some(*offset),
                    what: format!("seek to {offset}"),
                    time_us: op.time_us,
                }),
                OpBody::Reset {
                    topic,
                    partition,
                    policy,
                    offset,
                } if done => g.moves.push(Move {
                    index: op.index,
                    process: p,
                    tp: (topic.clone(), *partition),
                    offset: *offset,
                    what: format!("reset ({policy}) to {}", offset.map_or("?".into(), |o| o.to_string())),
                    time_us: op.time_us,
                }),
                OpBody::Fault {
                    kind,
                    target,
                    phase: FaultPhase::Start,
                    ..
                } if kind == "unclean_election" => g.unclean.push(Unclean {
                    time_us: op.time_us,
                    target: target.clone(),
                }),
                _ => {}
            }
        }
        g
    }

    fn is_member(&self, group: &str, process: &str) -> bool {
        self.members.get(group).is_some_and(|m| m.contains(process))
    }

    /// offset-regress: per group and partition, an ok commit below the previous ok commit.
    pub fn offset_regress(&self, v: &View<'_>, out: &mut Vec<Anomaly>) {
        let mut last: BTreeMap<(&str, &Tp), &Commit<'_>> = BTreeMap::new();
        for c in &self.ok_commits {
            let key = (c.group, &c.tp);
            if let Some(prev) = last.get(&key).filter(|p| c.offset < p.offset) {
                let why = self
                    .moved_between(c.group, &c.tp, prev.invoke_us, c.time_us)
                    .or_else(|| self.commit_lost(v, prev, c));
                let d = format!(
                    "group {} committed {} for {} by {} at {:.3}s after {} by {} at {:.3}s",
                    c.group,
                    c.offset,
                    tp_name(&c.tp),
                    c.process,
                    secs(c.time_us),
                    prev.offset,
                    prev.process,
                    secs(prev.time_us)
                );
                out.push(View::anomaly("offset-regress", &c.tp, Some(c.offset), None, d, why));
            }
            last.insert(key, c);
        }
    }

    /// partition-owners: each partition of a group has one owner per generation, as the ok SyncGroup answers
    /// gave it (a member paused past its session may still believe it owns a partition of an older
    /// generation: only one generation's assignments are compared with each other).
    pub fn partition_owners(&self, out: &mut Vec<Anomaly>) {
        let mut owners: BTreeMap<(&str, i32, &Tp), BTreeSet<&str>> = BTreeMap::new();
        for s in &self.syncs {
            for tp in &s.assignment {
                owners.entry((s.group, s.generation, tp)).or_default().insert(s.process);
            }
        }
        for ((group, generation, tp), procs) in owners {
            if procs.len() > 1 {
                let names: Vec<&str> = procs.into_iter().collect();
                let d = format!(
                    "group {group} generation {generation} gave {} to {} members: {}",
                    tp_name(tp),
                    names.len(),
                    names.join(", ")
                );
                out.push(View::anomaly("partition-owners", tp, None, None, d, None));
            }
        }
    }

    /// A seek or reset of `tp` by a member of `group` within [from_us, to_us].
    fn moved_between(&self, group: &str, tp: &Tp, from_us: u64, to_us: u64) -> Option<String> {
        self.moves
            .iter()
            .find(|m| &m.tp == tp && (from_us..=to_us).contains(&m.time_us) && self.is_member(group, m.process))
            .map(|m| format!("{} by {} at {:.3}s", m.what, m.process, secs(m.time_us)))
    }

    /// Whether the offsets topic may have lost `prev` before `next` was committed: a power loss of a node
    /// holding an offsets partition, after `prev` was written and acknowledged by that node's incarnation, or
    /// an unclean election of an offsets partition in that window. Both take the offsets topic out of contract.
    fn commit_lost(&self, v: &View<'_>, prev: &Commit<'_>, next: &Commit<'_>) -> Option<String> {
        let window = prev.invoke_us..=next.time_us;
        let power = v.power_losses.iter().find(|p| {
            window.contains(&p.time_us)
                && p.restart_us.is_none_or(|r| prev.time_us < r)
                && p.frontier.keys().any(|k| k.starts_with(OFFSETS_TOPIC))
        });
        if let Some(p) = power {
            return Some(format!(
                "power loss of {} at {:.3}s may have taken the commit of {} from {OFFSETS_TOPIC} (unsynced)",
                p.node,
                secs(p.time_us),
                prev.offset
            ));
        }
        self.unclean
            .iter()
            .find(|u| window.contains(&u.time_us) && u.target.contains(OFFSETS_TOPIC))
            .map(|u| format!("unclean election of {} at {:.3}s", u.target, secs(u.time_us)))
    }

    /// offset-skip: at each new ownership of a partition (an ok sync giving it to a member, in a generation
    /// that member did not own it in), the owner's first poll with records must not start past offsets that
    /// exist, lie at or above the group's last committed offset, and no member of the group polled.
    pub fn offset_skip(&self, v: &View<'_>, out: &mut Vec<Anomaly>) {
        let mut owner: BTreeMap<(&str, &Tp), (&str, i32)> = BTreeMap::new();
        for s in &self.syncs {
            for tp in &s.assignment {
                if owner.insert((s.group, tp), (s.process, s.generation)) != Some((s.process, s.generation)) {
                    self.check_new_owner(v, s, tp, out);
                }
            }
        }
    }

    fn check_new_owner(&self, v: &View<'_>, s: &Sync<'_>, tp: &Tp, out: &mut Vec<Anomaly>) {
        let next_sync = self
            .syncs
            .iter()
            .filter(|o| o.process == s.process && o.group == s.group && o.index > s.index)
            .map(|o| o.index)
            .min()
            .unwrap_or(u64::MAX);
        let first_poll = v.polls.iter().find(|p| {
            p.process == s.process && &p.tp == tp && (s.index..next_sync).contains(&p.index) && !p.records.is_empty()
        });
        let Some(poll) = first_poll else { return };
        let start = poll.records[0].offset;
        let committed = self
            .ok_commits
            .iter()
            .filter(|c| c.group == s.group && &c.tp == tp && c.index < poll.index)
            .last();
        let Some(committed) = committed.filter(|c| c.offset < start) else {
            return;
        };
        let polled: BTreeSet<i64> = v
            .polls
            .iter()
            .filter(|q| q.index < poll.index && &q.tp == tp && self.is_member(s.group, q.process))
            .flat_map(|q| q.records.iter().map(|r| r.offset))
            .filter(|o| (committed.offset..start).contains(o))
            .collect();
        let skipped: Vec<i64> = v
            .by_offset
            .get(tp)
            .map(|o| o.range(committed.offset..start).map(|(k, _)| *k).collect())
            .unwrap_or_default();
        let skipped: Vec<i64> = skipped
            .into_iter()
            .filter(|o| !polled.contains(o) && !v.compaction.superseded_at(tp, *o, poll.time_us))
            .collect();
        let Some(&first) = skipped.first() else { return };
        let excuses = self.skip_excuses(v, s, tp, poll.index, poll.time_us, start);
        let unexplained: Vec<i64> = skipped
            .iter()
            .copied()
            .filter(|o| !excuses.iter().any(|(below, _)| o < below))
            .collect();
        let why = if unexplained.is_empty() {
            let used: Vec<&str> = excuses
                .iter()
                .filter(|(below, _)| skipped.iter().any(|o| o < below))
                .map(|(_, w)| w.as_str())
                .collect();
            Some(used.join("; "))
        } else {
            None
        };
        let d = format!(
            "{} took {} in generation {} of group {}, whose last commit was {}, and first read offset {start}: {} offsets in between exist that no member polled ({} unexplained)",
            s.process,
            tp_name(tp),
            s.generation,
            s.group,
            committed.offset,
            skipped.len(),
            unexplained.len()
        );
        let at = unexplained.first().copied().unwrap_or(first);
        out.push(View::anomaly("offset-skip", tp, Some(at), None, d, why));
    }

    /// What legally moves a new owner's start past its group's committed offset: each excuse covers the
    /// offsets below its bound. A seek or reset by the owner after it took the partition (to at most where it
    /// started), a commit with unknown outcome invoked before its read (it may have landed), and the log start
    /// offset (records retention or DeleteRecords removed).
    fn skip_excuses(
        &self,
        v: &View<'_>,
        s: &Sync<'_>,
        tp: &Tp,
        poll_index: u64,
        poll_us: u64,
        start: i64,
    ) -> Vec<(i64, String)> {
        let mut out = vec![];
        for m in self
            .moves
            .iter()
            .filter(|m| m.process == s.process && &m.tp == tp && (s.index..poll_index).contains(&m.index))
        {
            if let Some(o) = m.offset.filter(|&o| o <= start) {
                out.push((o, format!("{} by {} at {:.3}s", m.what, m.process, secs(m.time_us))));
            }
        }
        for c in self
            .info_commits
            .iter()
            .filter(|c| c.group == s.group && &c.tp == tp && c.invoke_us <= poll_us && c.offset <= start)
        {
            out.push((
                c.offset,
                format!(
                    "commit of {} by {} at {:.3}s has an unknown outcome and may have landed",
                    c.offset,
                    c.process,
                    secs(c.invoke_us)
                ),
            ));
        }
        let log_start = log_start_offset(v, tp);
        if log_start > 0 {
            out.push((
                log_start,
                format!(
                    "records below the log start offset {log_start} of {} were removed (retention)",
                    tp_name(tp)
                ),
            ));
        }
        out
    }
}

/// The highest log start offset any replica reported for `tp` (state trace or final logs).
fn log_start_offset(v: &View<'_>, tp: &Tp) -> i64 {
    let traced = v
        .input
        .states
        .iter()
        .filter(|s| s.topic == tp.0 && s.partition == tp.1)
        .map(|s| s.log_start_offset);
    let last = v
        .input
        .final_state
        .replica_logs
        .iter()
        .filter(|l| l.topic == tp.0 && l.partition == tp.1)
        .map(|l| l.log_start_offset);
    traced.chain(last).max().unwrap_or(0)
}
