//! The checkers' own view of a run, built from the history alone, and the checks over it.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap as HashMap;
use serde::Serialize;
use smallvec::SmallVec;

use super::{Anomaly, CheckInput};
use crate::history::{FaultPhase, OpBody, OpType};

/// A power loss as the history recorded it: when, which node, and per partition (`topic-partition`) the
/// first offset that was NOT wholly inside the durable frontier SimDisk recorded at that instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PowerLoss {
    pub time_us: u64,
    pub node: String,
    pub frontier: BTreeMap<String, i64>,
    /// When the node came back (its next `restart`), if it did: until then it served nothing, so anything
    /// observed before it (an ack or a read still on the wire at the power loss included) was written by
    /// the incarnation that lost power.
    pub restart_us: Option<u64>,
    /// What cut the log: a power loss, or log recovery truncating at a corrupt batch.
    pub cause: LossCause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LossCause {
    PowerLoss,
    RecoveryTruncation,
}

pub(super) type Tp = (String, i32);

/// The distinct values observed at one offset, sorted: nearly always one, kept inline.
pub(super) type Values<'a> = SmallVec<[&'a str; 1]>;

/// Per partition, per offset, the values observed there.
pub(super) type ByOffset<'a> = BTreeMap<Tp, BTreeMap<i64, Values<'a>>>;

/// A partition named by a topic the history holds: what each observation keeps (a `Tp` would be one String
/// per observation, and a run has hundreds of thousands).
pub(super) type TpRef<'a> = (&'a str, i32);

fn same_tp(a: TpRef<'_>, b: &Tp) -> bool {
    a.0 == b.0 && a.1 == b.1
}

fn owned_tp(tp: TpRef<'_>) -> Tp {
    (tp.0.to_string(), tp.1)
}

pub(super) fn tp_name(tp: &Tp) -> String {
    format!("{}-{}", tp.0, tp.1)
}

#[derive(Debug, Clone)]
pub(super) struct Send<'a> {
    pub process: &'a str,
    pub tp: Tp,
    pub value: &'a str,
    pub offset: Option<i64>,
    pub invoke_us: u64,
    /// The invoke op's index in the history: the producer's send order, even within one microsecond.
    pub invoke_index: u64,
    pub complete_us: u64,
}

#[derive(Debug, Clone)]
pub(super) struct Seen<'a> {
    pub tp: TpRef<'a>,
    pub offset: i64,
    pub time_us: u64,
    pub source: Source<'a>,
}

/// Who observed a value: a consumer process, or a replica's final log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source<'a> {
    Consumer(&'a str),
    Replica(&'a str),
}

impl std::fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Consumer(process) => f.write_str(process),
            Source::Replica(node) => write!(f, "replica {node}"),
        }
    }
}

pub(super) struct Poll<'a> {
    /// The op's index in the history.
    pub index: u64,
    pub process: &'a str,
    pub tp: Tp,
    pub fetch_offset: i64,
    pub time_us: u64,
    pub records: &'a [crate::history::ReadRecord],
}

/// Where a consumer's poll sequence restarts (ARCHITECTURE §6): at an assign or a rebalance (sync, revoke) it
/// is forgotten for every partition of the consumer; at a seek or a reset with a known position it restarts
/// there, so the next poll fetching from that position is judged against it.
struct Restart<'a> {
    /// How many polls came before it in the history.
    before_poll: usize,
    process: &'a str,
    time_us: u64,
    position: Option<(Tp, Option<i64>)>,
}

pub(super) struct View<'a> {
    pub input: &'a CheckInput<'a>,
    pub acked: Vec<Send<'a>>,
    pub indeterminate: Vec<Send<'a>>,
    pub failed: Vec<Send<'a>>,
    /// Every invoked send by value, with how it ended (None while no completion was recorded).
    /// Looked up only, never iterated (a hash map leaks no order).
    outcome: HashMap<&'a str, Option<OpType>>,
    /// Every place a value was observed (consumer reads and final replica logs). Looked up only: iterate
    /// [`Self::seen_sorted`], in value order. Hashed, as a B-tree keyed by 40k strings spent most of the
    /// view's time comparing them.
    pub seen: HashMap<&'a str, Vec<Seen<'a>>>,
    /// The keys of `seen`, sorted.
    seen_values: Vec<&'a str>,
    /// Per partition, per offset, the values observed there.
    pub by_offset: ByOffset<'a>,
    /// Per partition, the highest offset any consumer read reached.
    max_read: BTreeMap<Tp, i64>,
    pub polls: Vec<Poll<'a>>,
    restarts: Vec<Restart<'a>>,
    pub power_losses: Vec<PowerLoss>,
    /// Per partition, the offsets a consumer found corrupt (batch CRC), and whether a bit flip at rest happened.
    corrupt: BTreeMap<Tp, BTreeSet<i64>>,
    bitflips: Vec<String>,
    /// Unclean elections (`unclean.leader.election.enable`) the controllers committed.
    unclean: Vec<super::contract::UncleanElection>,
    end_us: u64,
    /// What the cleaner may have removed from compacted topics ([`super::compaction`]).
    pub compaction: super::compaction::Compaction,
    /// [`Self::leader_changes`], built at the first question.
    leaders: std::cell::OnceCell<BTreeMap<Tp, Vec<(u64, i32)>>>,
}

impl<'a> View<'a> {
    /// `out_of_contract`: the partitions the contract monitor took out ([`super::contract`]).
    pub fn build(input: &'a CheckInput<'a>, out_of_contract: &BTreeSet<Tp>) -> View<'a> {
        let mut v = View {
            input,
            acked: vec![],
            indeterminate: vec![],
            failed: vec![],
            outcome: HashMap::default(),
            seen: HashMap::default(),
            seen_values: vec![],
            by_offset: BTreeMap::new(),
            max_read: BTreeMap::new(),
            polls: vec![],
            restarts: vec![],
            power_losses: vec![],
            corrupt: BTreeMap::new(),
            bitflips: vec![],
            unclean: super::contract::unclean_elections(input.metadata_states),
            end_us: input.ops.last().map_or(0, |o| o.time_us),
            compaction: Default::default(),
            leaders: Default::default(),
        };
        // Looked up only, never iterated: a hash map leaks no order.
        let mut invoked: HashMap<(&str, &str), (u64, u64)> = HashMap::default();
        for op in input.ops {
            match (&op.body, op.op_type) {
                (OpBody::Send { value, .. }, OpType::Invoke) => {
                    invoked.insert((&op.process, value), (op.time_us, op.index));
                    v.outcome.insert(value, None);
                }
                (
                    OpBody::Send {
                        topic,
                        partition,
                        value,
                        offset,
                        ..
                    },
                    t,
                ) => {
                    let (invoke_us, invoke_index) = invoked
                        .get(&(op.process.as_str(), value.as_str()))
                        .copied()
                        .unwrap_or((op.time_us, op.index));
                    let send = Send {
                        process: &op.process,
                        tp: (topic.clone(), *partition),
                        value,
                        offset: *offset,
                        invoke_us,
                        invoke_index,
                        complete_us: op.time_us,
                    };
                    v.outcome.insert(value, Some(t));
                    match t {
                        OpType::Ok if offset.is_some() => v.acked.push(send),
                        OpType::Fail => v.failed.push(send),
                        _ => v.indeterminate.push(send),
                    }
                }
                (
                    OpBody::Poll {
                        topic,
                        partition,
                        fetch_offset,
                        records,
                    },
                    OpType::Ok,
                ) => {
                    let tp = (topic.clone(), *partition);
                    let read = records.iter().map(|r| (r.offset, r.value.as_str()));
                    v.observe(&tp, topic, read, op.time_us, Source::Consumer(&op.process));
                    v.polls.push(Poll {
                        index: op.index,
                        process: &op.process,
                        tp,
                        fetch_offset: *fetch_offset,
                        time_us: op.time_us,
                        records,
                    });
                }
                (
                    OpBody::Fault {
                        kind,
                        phase: FaultPhase::Start,
                        detail,
                        ..
                    },
                    _,
                ) if kind == "power_loss" => {
                    let node = detail
                        .get("node")
                        .and_then(|n| n.as_str())
                        .unwrap_or_default()
                        .to_string();
                    let frontier = detail
                        .get("frontier")
                        .and_then(|f| serde_json::from_value::<BTreeMap<String, i64>>(f.clone()).ok())
                        .unwrap_or_default();
                    v.power_losses.push(PowerLoss {
                        time_us: op.time_us,
                        node,
                        frontier,
                        restart_us: None,
                        cause: LossCause::PowerLoss,
                    });
                }
                (
                    OpBody::CorruptRead {
                        topic,
                        partition,
                        offset,
                        ..
                    },
                    _,
                ) => {
                    v.corrupt
                        .entry((topic.clone(), *partition))
                        .or_default()
                        .insert(*offset);
                }
                (
                    OpBody::Fault {
                        kind,
                        phase: FaultPhase::Start,
                        detail,
                        ..
                    },
                    _,
                ) if kind == "disk_bitflip" && !detail.contains_key("skipped") => {
                    let path = detail.get("path").and_then(|p| p.as_str()).unwrap_or_default();
                    let node = detail.get("node").and_then(|n| n.as_str()).unwrap_or_default();
                    v.bitflips.push(format!("{node}:{path}"));
                }
                (
                    OpBody::Fault {
                        kind,
                        phase: FaultPhase::End,
                        detail,
                        ..
                    },
                    _,
                ) if kind == "restart" => {
                    let node = detail.get("node").and_then(|n| n.as_str()).unwrap_or_default();
                    for p in v
                        .power_losses
                        .iter_mut()
                        .filter(|p| p.node == node && p.restart_us.is_none())
                    {
                        p.restart_us = Some(op.time_us);
                    }
                    // Log recovery at this start truncates at a corrupt batch: like a power loss's frontier,
                    // it may take what was observed before this restart.
                    let truncates = detail
                        .get("recovery_truncates")
                        .and_then(|f| serde_json::from_value::<BTreeMap<String, i64>>(f.clone()).ok());
                    if let Some(frontier) = truncates {
                        v.power_losses.push(PowerLoss {
                            time_us: op.time_us,
                            node: node.to_string(),
                            frontier,
                            restart_us: Some(op.time_us),
                            cause: LossCause::RecoveryTruncation,
                        });
                    }
                }
                (body, t) if matches!(t, OpType::Ok | OpType::Info) => v.note_restart(op, body),
                _ => {}
            }
        }
        // A power loss (or a recovery truncation after corruption) explains a loss only where it took the
        // partition out of contract: with fewer than min.insync.replicas replicas hit, an intact replica
        // still held every acks=all record.
        for p in &mut v.power_losses {
            p.frontier
                .retain(|name, _| super::contract::parse_tp(name).is_some_and(|tp| out_of_contract.contains(&tp)));
        }
        for log in &input.final_state.replica_logs {
            let tp = (log.topic.clone(), log.partition);
            let held = log.records.iter().map(|r| (r.offset, r.value.as_str()));
            v.observe(&tp, &log.topic, held, v.end_us, Source::Replica(&log.node));
        }
        v.seen_values = v.seen.keys().copied().collect();
        v.seen_values.sort_unstable();
        v.compaction = super::compaction::Compaction::build(input, &v.acked, &v.by_offset);
        v
    }

    /// When the run's history ends.
    pub(super) fn end_us(&self) -> u64 {
        self.end_us
    }

    fn note_restart(&mut self, op: &'a crate::history::Op, body: &OpBody) {
        let position = match body {
            OpBody::Seek {
                topic,
                partition,
                offset,
            } => Some(((topic.clone(), *partition), Some(*offset))),
            OpBody::Reset {
                topic,
                partition,
                offset,
                ..
            } => Some(((topic.clone(), *partition), *offset)),
            OpBody::Assign { .. } | OpBody::Sync { .. } | OpBody::Revoke { .. } => None,
            _ => return,
        };
        self.restarts.push(Restart {
            before_poll: self.polls.len(),
            process: &op.process,
            time_us: op.time_us,
            position,
        });
    }

    /// Raises the highest offset reached on `tp` to `offset`.
    fn note_read_reach(&mut self, tp: &Tp, offset: i64) {
        match self.max_read.get_mut(tp) {
            Some(m) => *m = (*m).max(offset),
            None => {
                self.max_read.insert(tp.clone(), offset);
            }
        }
    }

    /// Every observed value with where it was seen, in value order.
    pub(super) fn seen_sorted(&self) -> impl Iterator<Item = (&'a str, &Vec<Seen<'a>>)> + '_ {
        self.seen_values.iter().map(|v| (*v, &self.seen[v]))
    }

    /// Notes the records (offset, value) one source saw on `tp` at `time_us`: where each value was seen,
    /// the values at each offset, and how far reads reached.
    fn observe(
        &mut self,
        tp: &Tp,
        topic: &'a str,
        records: impl Iterator<Item = (i64, &'a str)>,
        time_us: u64,
        source: Source<'a>,
    ) {
        let mut records = records.peekable();
        if records.peek().is_none() {
            return;
        }
        let offsets = match self.by_offset.get_mut(tp) {
            Some(offsets) => offsets,
            None => self.by_offset.entry(tp.clone()).or_default(),
        };
        let mut reach = i64::MIN;
        for (offset, value) in records {
            self.seen.entry(value).or_default().push(Seen {
                tp: (topic, tp.1),
                offset,
                time_us,
                source,
            });
            let values = offsets.entry(offset).or_default();
            if let Err(at) = values.binary_search(&value) {
                values.insert(at, value);
            }
            reach = reach.max(offset);
        }
        self.note_read_reach(tp, reach);
    }

    /// Why `offset` of `tp`, observed (acked or read) at `after_us`, may legally have vanished since: a power
    /// loss took it (it lay beyond the durable frontier SimDisk recorded then), or, under acks 0/1, leadership
    /// moved to another replica. A power loss counts when the observation came from the incarnation that
    /// lost power: before that node's restart (an ack on the wire at the power loss arrives after it).
    /// [`Self::loss_explained`] for an acknowledged send: its append may also have come from the incarnation
    /// that lost power when the send was in flight across the power loss (invoked before it, acked after it
    /// — an ack delayed past the restart by a slow network). While clients do not retry, that is the only way
    /// the old incarnation wrote it; with retries this needs the appending incarnation, not times.
    fn send_loss_explained(&self, s: &Send, offset: i64) -> Option<String> {
        self.loss_explained_from(&s.tp, offset, s.complete_us, Some(s.invoke_us), Some(s.process))
    }

    pub(super) fn loss_explained(&self, tp: &Tp, offset: i64, after_us: u64, producer: Option<&str>) -> Option<String> {
        self.loss_explained_from(tp, offset, after_us, None, producer)
    }

    fn loss_explained_from(
        &self,
        tp: &Tp,
        offset: i64,
        after_us: u64,
        invoked_us: Option<u64>,
        producer: Option<&str>,
    ) -> Option<String> {
        let name = tp_name(tp);
        // What survives a power loss is durable from then on (SimDisk syncs the survivors): only the first
        // power loss that could have hit the observation can explain its loss; later truncations still can.
        // Power losses at one instant (every broker at once) are one event: any of their frontiers applies,
        // since any of those replicas may lead afterwards with its shorter log.
        let mut first_power_loss_us: Option<u64> = None;
        for p in self.power_losses.iter().filter(|p| {
            p.restart_us.is_none_or(|r| after_us < r)
                || (p.cause == LossCause::PowerLoss && invoked_us.is_some_and(|i| i <= p.time_us))
        }) {
            if p.cause == LossCause::PowerLoss {
                if first_power_loss_us.is_some_and(|t| t != p.time_us) {
                    continue;
                }
                first_power_loss_us = Some(p.time_us);
            }
            if let Some(&frontier) = p.frontier.get(&name) {
                if offset >= frontier {
                    return Some(match p.cause {
                        LossCause::PowerLoss => format!(
                            "power loss of {} at {:.3}s: offset {offset} of {name} lay beyond the durable frontier {frontier} (Kafka does not fsync each write)",
                            p.node,
                            p.time_us as f64 / 1e6
                        ),
                        LossCause::RecoveryTruncation => format!(
                            "log recovery when {} restarted at {:.3}s truncated {name} at {frontier}, its first corrupt batch after the recovery point: offset {offset} went with it",
                            p.node,
                            p.time_us as f64 / 1e6
                        ),
                    });
                }
            }
        }
        if self.corrupt.get(tp).is_some_and(|c| c.contains(&offset)) {
            if let Some(flip) = self.bitflips.iter().find(|f| f.contains(&format!(":{name}/"))) {
                return Some(format!(
                    "a bit flipped at rest ({flip}); a consumer found offset {offset} of {name} corrupt (CRC) and did not read it"
                ));
            }
        }
        // An unclean election after the record was sent elected a leader that may never have had it: Kafka
        // trades those acknowledged records for availability when `unclean.leader.election.enable` is on.
        let sent_us = invoked_us.unwrap_or(after_us);
        if let Some(u) = self.unclean.iter().find(|u| &u.tp == tp && u.time_us > sent_us) {
            return Some(u.describe());
        }
        let acks = producer.and_then(|p| self.input.producers.get(p)).map(|f| f.acks);
        if matches!(acks, Some(0 | 1)) {
            // A send's append happened somewhere between its invoke and its ack, on whichever broker led then
            // (a leader that has not yet learnt it was replaced still acks acks=1 writes): leadership moving
            // any time after the invoke explains its loss.
            if let Some(why) = self.leader_moved(tp, invoked_us.unwrap_or(after_us)) {
                return Some(format!("acks={}: {why}", acks.unwrap_or(1)));
            }
        }
        None
    }

    /// Whether leadership of `tp` passed to another broker after `after_us`, per the state trace.
    fn leader_moved(&self, tp: &Tp, after_us: u64) -> Option<String> {
        let leaders = self.leaders.get_or_init(|| Self::leader_changes(self.input.states));
        let states = leaders.get(tp)?;
        // The trace is in time order: the reports up to `after_us` end where the later ones begin.
        let split = states.partition_point(|&(time_us, _)| time_us <= after_us);
        let before = states[..split].last().map(|&(_, leader)| leader)?;
        states[split..]
            .iter()
            .filter(|&&(_, leader)| leader != before && leader >= 0)
            .map(|&(time_us, leader)| (time_us, leader))
            .map(|(time_us, leader)| {
                format!(
                    "leadership of {} moved from {before} to {leader} at {:.3}s",
                    tp_name(tp),
                    time_us as f64 / 1e6
                )
            })
            .next()
    }

    /// Per partition, the leader each replica state reported, in time order; a report naming the same
    /// leader as the one before it is left out (it changes no answer of [`Self::leader_moved`]).
    fn leader_changes(states: &[crate::history::ReplicaState]) -> BTreeMap<Tp, Vec<(u64, i32)>> {
        // Drained into a B-tree: its order leaks nowhere.
        let mut by_tp: HashMap<(&str, i32), Vec<(u64, i32)>> = HashMap::default();
        for s in states {
            by_tp
                .entry((&s.topic, s.partition))
                .or_default()
                .push((s.time_us, s.leader));
        }
        let mut out = BTreeMap::new();
        for ((topic, partition), mut reports) in by_tp {
            // The trace is in time order already; a stable sort keeps a hand-made one's ties in order.
            reports.sort_by_key(|&(time_us, _)| time_us);
            reports.dedup_by_key(|&mut (_, leader)| leader);
            out.insert((topic.to_string(), partition), reports);
        }
        out
    }

    /// The highest log start offset each partition reached, and who reported it: retention
    /// (`retention.ms`, `retention.bytes`) and DeleteRecords remove records from the log's start, and a
    /// follower that fell behind the leader's log start starts over there (`truncateFullyAndStartAt`).
    /// Only a leader moves its log start on its own, so any replica's reported start is one a leader reached.
    fn log_starts(&self) -> BTreeMap<Tp, (i64, String)> {
        let mut out: BTreeMap<Tp, (i64, String)> = BTreeMap::new();
        let reports = self
            .input
            .states
            .iter()
            .map(|s| (&s.topic, s.partition, s.log_start_offset, &s.node));
        let logs = self
            .input
            .final_state
            .replica_logs
            .iter()
            .map(|l| (&l.topic, l.partition, l.log_start_offset, &l.node));
        for (topic, partition, start, node) in reports.chain(logs) {
            let e = out.entry((topic.clone(), partition)).or_insert((0, String::new()));
            if start > e.0 {
                *e = (start, node.clone());
            }
        }
        out
    }

    /// Whether an acknowledged `offset` of `tp` is legally gone: it lies below a log start the partition
    /// reached. Records at or above every log start stay subject to the loss checks.
    fn below_log_start(starts: &BTreeMap<Tp, (i64, String)>, tp: &Tp, offset: i64) -> bool {
        starts.get(tp).is_some_and(|(start, _)| offset < *start)
    }

    pub(super) fn anomaly(
        class: &'static str,
        tp: &Tp,
        offset: Option<i64>,
        value: Option<&str>,
        detail: String,
        why: Option<String>,
    ) -> Anomaly {
        Anomaly {
            class,
            topic: tp.0.clone(),
            partition: tp.1,
            offset,
            value: value.map(str::to_string),
            detail,
            explained_by: why,
        }
    }

    /// lost-write: acked, never read, at or below the highest offset a read reached; unseen: acked, never
    /// read by the end of the drain.
    /// Returns how many acknowledged records never read were removed from the log's start instead.
    /// Also returns how many a compacted topic's cleaner may have removed (a later record of the key above).
    pub fn lost_and_unseen(&self, out: &mut Vec<Anomaly>) -> (u64, u64) {
        let starts = self.log_starts();
        let (mut removed, mut compacted) = (0, 0);
        for s in &self.acked {
            if let Some(seen) = self.seen.get(s.value) {
                // The ack named an offset: the value must be read there and nowhere else in its partition
                // (Jepsen counts the ack's offset in the version order). A retry without idempotence may
                // add a second copy; that is the duplicate checker's to judge.
                let acked_at = s.offset.unwrap_or(-1);
                let read_in_partition = seen.iter().any(|x| same_tp(x.tp, &s.tp));
                let read_elsewhere =
                    read_in_partition && !seen.iter().any(|x| same_tp(x.tp, &s.tp) && x.offset == acked_at);
                if read_elsewhere {
                    let elsewhere: BTreeSet<i64> =
                        seen.iter().filter(|x| same_tp(x.tp, &s.tp)).map(|x| x.offset).collect();
                    let d = format!(
                        "{} acked at offset {acked_at} by {} but read at {:?}",
                        s.value, s.process, elsewhere
                    );
                    out.push(Self::anomaly(
                        "inconsistent-offsets",
                        &s.tp,
                        Some(acked_at),
                        Some(s.value),
                        d,
                        None,
                    ));
                }
                continue;
            }
            let offset = s.offset.unwrap_or(-1);
            let class = if self.max_read.get(&s.tp).is_some_and(|&m| offset <= m) {
                "lost-write"
            } else {
                "unseen"
            };
            if Self::below_log_start(&starts, &s.tp, offset) {
                removed += 1;
                continue;
            }
            let deleted = self.deleted_by_tombstone(&s.tp, s.value, self.drained_until_us(&s.tp));
            if self.compacted_by(&s.tp, offset, s.value).is_some() || deleted {
                compacted += 1;
                continue;
            }
            let why = self.send_loss_explained(s, offset);
            let detail = format!(
                "{} acked at offset {offset} by {} at {:.3}s, never read",
                s.value,
                s.process,
                s.complete_us as f64 / 1e6
            );
            out.push(Self::anomaly(class, &s.tp, Some(offset), Some(s.value), detail, why));
        }
        (removed, compacted)
    }

    /// duplicate: one value at two offsets. Legal only for a producer without idempotence that retries.
    pub fn duplicates(&self, out: &mut Vec<Anomaly>) {
        // Looked up only, never iterated.
        let producer_of: HashMap<&str, &str> = self
            .acked
            .iter()
            .chain(&self.indeterminate)
            .map(|s| (s.value, s.process))
            .collect();
        for (value, seen) in self.seen_sorted() {
            if seen.iter().all(|s| s.tp == seen[0].tp && s.offset == seen[0].offset) {
                continue;
            }
            let offsets: BTreeSet<(Tp, i64)> = seen.iter().map(|s| (owned_tp(s.tp), s.offset)).collect();
            let (tp, first) = offsets.iter().next().cloned().unwrap_or_default();
            let facts = producer_of.get(value).and_then(|p| self.input.producers.get(*p));
            let why = facts.filter(|f| !f.idempotence && f.retries > 0).map(|_| {
                "idempotence off and the send was retryable: a retried batch may be written twice".to_string()
            });
            let at: Vec<String> = offsets.iter().map(|(tp, o)| format!("{}@{o}", tp_name(tp))).collect();
            out.push(Self::anomaly(
                "duplicate",
                &tp,
                Some(first),
                Some(value),
                format!("{value} at {}", at.join(", ")),
                why,
            ));
        }
    }

    /// inconsistent-offsets: one offset of one partition holding two values across reads and replica logs.
    pub fn inconsistent_offsets(&self, out: &mut Vec<Anomaly>) {
        for (tp, offsets) in &self.by_offset {
            for (&offset, values) in offsets.iter().filter(|(_, v)| v.len() > 1) {
                let first_us = values
                    .iter()
                    .filter_map(|v| self.seen.get(v))
                    .flatten()
                    .filter(|s| same_tp(s.tp, tp) && s.offset == offset)
                    .map(|s| s.time_us)
                    .min()
                    .unwrap_or(0);
                // A power loss that truncated below this offset after the first observation makes the offset
                // legally reused by a later append.
                let why = self.loss_explained(tp, offset, first_us, None);
                let vals: Vec<&str> = values.iter().copied().collect();
                out.push(Self::anomaly(
                    "inconsistent-offsets",
                    tp,
                    Some(offset),
                    None,
                    format!("values {}", vals.join(", ")),
                    why,
                ));
            }
        }
    }

    /// aborted-read: a read value whose send failed; phantom-read: a read value nobody ever sent.
    pub fn aborted_and_phantom_reads(&self, out: &mut Vec<Anomaly>) {
        for (value, seen) in self.seen_sorted() {
            let s = &seen[0];
            match self.outcome.get(value) {
                Some(Some(OpType::Fail)) => out.push(Self::anomaly(
                    "aborted-read",
                    &owned_tp(s.tp),
                    Some(s.offset),
                    Some(value),
                    format!("{value} read by {} but its send failed", s.source),
                    None,
                )),
                None => out.push(Self::anomaly(
                    "phantom-read",
                    &owned_tp(s.tp),
                    Some(s.offset),
                    Some(value),
                    format!("{value} read by {} was never sent", s.source),
                    None,
                )),
                _ => {}
            }
        }
    }

    /// int-nonmonotonic-poll within one poll; nonmonotonic-poll and poll-skip between a consumer's polls of a
    /// partition. Each consumer's sequence restarts where it fetched from a new position, and at every assign,
    /// seek, reset and rebalance of that consumer (a seek or reset restarts it at the position it set).
    pub fn poll_order(&self, out: &mut Vec<Anomaly>) {
        let mut last_end: BTreeMap<(&str, Tp), (i64, u64)> = BTreeMap::new();
        let mut restarts = self.restarts.iter().peekable();
        for (i, p) in self.polls.iter().enumerate() {
            while let Some(r) = restarts.next_if(|r| r.before_poll <= i) {
                last_end.retain(|(process, tp), _| {
                    *process != r.process || r.position.as_ref().is_some_and(|(at, _)| at != tp)
                });
                if let Some((tp, Some(offset))) = &r.position {
                    last_end.insert((r.process, tp.clone()), (offset - 1, r.time_us));
                }
            }
            Self::int_poll_order(p, out);
            let (Some(first), Some(last)) = (p.records.first(), p.records.last()) else {
                continue;
            };
            let key = (p.process, p.tp.clone());
            if let Some(&(prev, prev_us)) = last_end.get(&key) {
                if p.fetch_offset == prev + 1 {
                    self.check_poll_step(p, prev, prev_us, first.offset, out);
                }
            }
            last_end.insert(key, (last.offset, p.time_us));
        }
    }

    fn int_poll_order(p: &Poll<'_>, out: &mut Vec<Anomaly>) {
        for w in p.records.windows(2) {
            if w[1].offset <= w[0].offset {
                let d = format!(
                    "{} read offset {} after {} in one poll",
                    p.process, w[1].offset, w[0].offset
                );
                out.push(Self::anomaly(
                    "int-nonmonotonic-poll",
                    &p.tp,
                    Some(w[1].offset),
                    Some(&w[1].value),
                    d,
                    None,
                ));
            }
        }
    }

    fn check_poll_step(&self, p: &Poll<'_>, prev: i64, prev_us: u64, first: i64, out: &mut Vec<Anomaly>) {
        if first <= prev {
            let why = self.loss_explained(&p.tp, first, prev_us, None);
            let d = format!("{} polled offset {first} after reaching {prev}", p.process);
            out.push(Self::anomaly("nonmonotonic-poll", &p.tp, Some(first), None, d, why));
            return;
        }
        let skipped = self.by_offset.get(&p.tp).map_or(0, |o| {
            o.range(prev + 1..first)
                .filter(|(at, _)| !self.compaction.superseded_at(&p.tp, **at, p.time_us))
                .count()
        });
        if skipped > 0 {
            let d = format!(
                "{} jumped from {prev} to {first} over {skipped} offsets known to exist",
                p.process
            );
            out.push(Self::anomaly("poll-skip", &p.tp, Some(prev + 1), None, d, None));
        }
    }

    /// nonmonotonic-send: one producer's ok send to a partition got an offset no higher than a send it made
    /// to that partition before (in send order, the invoke order: Kafka appends one producer's records to a
    /// partition in the order they were sent, KIP-98); realtime-offset: an ok send got an offset at or below
    /// one acknowledged before it was invoked.
    pub fn send_order(&self, out: &mut Vec<Anomaly>) {
        let mut by_tp: BTreeMap<&Tp, Vec<&Send>> = BTreeMap::new();
        for s in &self.acked {
            by_tp.entry(&s.tp).or_default().push(s);
        }
        for (tp, sends) in by_tp {
            self.producer_order(tp, &sends, out);
            self.realtime_order(tp, sends, out);
        }
    }

    fn producer_order(&self, tp: &Tp, sends: &[&Send], out: &mut Vec<Anomaly>) {
        let mut by_process: BTreeMap<&str, Vec<&Send>> = BTreeMap::new();
        for s in sends {
            by_process.entry(s.process).or_default().push(s);
        }
        for (process, mut sends) in by_process {
            sends.sort_by_key(|s| s.invoke_index);
            let mut best: Option<&Send> = None;
            for s in sends {
                let o = s.offset.unwrap_or(-1);
                if let Some(prev) = best.filter(|p| o <= p.offset.unwrap_or(-1)) {
                    let po = prev.offset.unwrap_or(-1);
                    let why = self
                        .send_loss_explained(prev, po)
                        .or_else(|| self.reorder_explained(process));
                    let d = format!(
                        "{process} got offset {o} for {} after offset {po} for {}, sent before it",
                        s.value, prev.value
                    );
                    out.push(Self::anomaly("nonmonotonic-send", tp, Some(o), Some(s.value), d, why));
                }
                if best.is_none_or(|p| p.offset.unwrap_or(-1) < o) {
                    best = Some(s);
                }
            }
        }
    }

    /// Without idempotence, a retried batch lands after the later batches that were in flight with it
    /// (`max.in.flight.requests.per.connection` > 1 and `retries` > 0): Kafka then keeps no send order.
    fn reorder_explained(&self, process: &str) -> Option<String> {
        let f = self.input.producers.get(process)?;
        (!f.idempotence && f.retries > 0 && f.max_in_flight > 1).then(|| {
            format!(
                "idempotence off, retries on and max.in.flight.requests.per.connection={}: a retried batch may land after a later one",
                f.max_in_flight
            )
        })
    }

    fn realtime_order(&self, tp: &Tp, mut sends: Vec<&Send>, out: &mut Vec<Anomaly>) {
        sends.sort_by_key(|s| (s.complete_us, s.offset));
        // Acked sends so far in completion order, each with the highest-offset send among it and those before
        // it (ties to the later, as `max_by_key`): the highest acked before an invoke is one binary search.
        let mut completed: Vec<u64> = vec![];
        let mut best_so_far: Vec<(i64, &Send)> = vec![];
        for s in &sends {
            let o = s.offset.unwrap_or(-1);
            let before = completed.partition_point(|t| *t < s.invoke_us);
            if let Some(&(po, prev)) = before.checked_sub(1).map(|i| &best_so_far[i]) {
                if o <= po {
                    let why = self.send_loss_explained(prev, po);
                    let d = format!(
                        "{} got offset {o}, at or below offset {po} acked for {} before it was sent",
                        s.value, prev.value
                    );
                    out.push(Self::anomaly("realtime-offset", tp, Some(o), Some(s.value), d, why));
                }
            }
            let best = match best_so_far.last() {
                Some(&(bo, b)) if bo > o => (bo, b),
                _ => (o, *s),
            };
            completed.push(s.complete_us);
            best_so_far.push(best);
        }
    }

    /// read-then-lost: a record a consumer read is gone from every replica's final log.
    pub fn read_then_lost(&self, out: &mut Vec<Anomaly>) {
        let logs = &self.input.final_state.replica_logs;
        if logs.is_empty() {
            return;
        }
        for (value, seen) in self.seen_sorted() {
            let in_final = seen.iter().any(|s| matches!(s.source, Source::Replica(_)));
            let read = seen
                .iter()
                .filter(|s| matches!(s.source, Source::Consumer(_)))
                .min_by_key(|s| s.time_us);
            if let (false, Some(r)) = (in_final, read) {
                let tp = owned_tp(r.tp);
                let below_start = logs
                    .iter()
                    .any(|l| l.topic == r.tp.0 && l.partition == r.tp.1 && r.offset < l.log_start_offset);
                let deleted = self.deleted_by_tombstone(&tp, value, self.end_us);
                if below_start || deleted || self.compacted_by(&tp, r.offset, value).is_some() {
                    continue;
                }
                let why = self.loss_explained(&tp, r.offset, r.time_us, None);
                let d = format!(
                    "{value} read at offset {} by {} is in no replica's final log",
                    r.offset, r.source
                );
                out.push(Self::anomaly(
                    "read-then-lost",
                    &tp,
                    Some(r.offset),
                    Some(value),
                    d,
                    why,
                ));
            }
        }
    }

    /// nonmonotonic-log: offsets must strictly increase within each replica's log.
    pub fn log_order(&self, out: &mut Vec<Anomaly>) {
        for log in &self.input.final_state.replica_logs {
            let tp = (log.topic.clone(), log.partition);
            for w in log.records.windows(2) {
                if w[1].offset <= w[0].offset {
                    let d = format!(
                        "replica {} holds offset {} after {}",
                        log.node, w[1].offset, w[0].offset
                    );
                    out.push(Self::anomaly(
                        "nonmonotonic-log",
                        &tp,
                        Some(w[1].offset),
                        Some(&w[1].value),
                        d,
                        None,
                    ));
                }
            }
        }
    }
}
