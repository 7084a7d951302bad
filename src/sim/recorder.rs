//! The run's recorder: every node and client appends ops and replica states here, stamped with simulated
//! time. Shared by all nodes of one run (madsim runs them on one thread; the Mutex only satisfies Send).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rustc_hash::FxHashMap;

use crate::history::{History, MetadataState, OpBody, OpType, RaftState, ReplicaState, StateObserver};
use crate::rt::{Instant, Notify};

/// Invariants checked after every state event, as it is recorded (ARCHITECTURE §6, "online invariants").
/// The runner installs one; each call returns a line per invariant the event broke.
pub trait OnlineCheck: Send {
    fn replica(&mut self, s: &ReplicaState) -> Vec<String>;
    fn raft(&mut self, s: &RaftState) -> Vec<String>;
    fn metadata(&mut self, s: &MetadataState) -> Vec<String>;
}

/// An invariant broken at the moment its event was recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OnlineViolation {
    /// Simulated µs since the run started.
    pub time_us: u64,
    /// Which trace the event went to (`replica`, `raft`, `metadata`) and its index there.
    pub trace: &'static str,
    pub index: usize,
    pub text: String,
}

struct Inner {
    history: History,
    start: Instant,
    /// Last state per (node, topic, partition), to record changes only.
    /// Per (node, topic, partition), the index of its last state in `history.states`.
    last: LastStates,
    /// Produce requests written and not yet answered (or failed), over all clients.
    requests_in_flight: u64,
    /// Offset commits invoked and not yet completed, over all consumers (from the `commit` ops).
    commits_in_flight: u64,
    /// Coverage marks the nodes hit, by name.
    marks: BTreeMap<String, u64>,
    online: Option<Box<dyn OnlineCheck>>,
    violations: Vec<OnlineViolation>,
}

#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
    /// Woken at the first online violation (it keeps the permit, so a later waiter sees it too).
    violated: Arc<Notify>,
}

impl Recorder {
    /// A recorder whose clock starts now. Call it inside the simulation: outside, `Instant::now` is real time.
    pub fn new() -> Recorder {
        Recorder {
            inner: Arc::new(Mutex::new(Inner {
                history: History::default(),
                start: Instant::now(),
                last: LastStates::default(),
                requests_in_flight: 0,
                commits_in_flight: 0,
                marks: BTreeMap::new(),
                online: None,
                violations: vec![],
            })),
            violated: Arc::new(Notify::new()),
        }
    }

    /// Reserves room for about `ops` ops and `states` replica states up front: a history that doubles its
    /// way up copies itself and touches twice the fresh memory (the kernel zeroes each new page, and a
    /// run is one short process); room reserved and never used costs no page.
    pub fn reserve(&self, ops: usize, states: usize) {
        let mut inner = self.lock();
        inner.history.ops.reserve(ops);
        inner.history.states.reserve(states);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere aborts the simulation; a poisoned lock still holds consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks every state event from now on with `check`, as it is recorded.
    pub fn check_online(&self, check: Box<dyn OnlineCheck>) {
        self.lock().online = Some(check);
    }

    /// The invariants broken so far, in the order their events were recorded.
    pub fn violations(&self) -> Vec<OnlineViolation> {
        self.lock().violations.clone()
    }

    /// Returns once an online check has failed (at once if one already has).
    pub async fn violated(&self) {
        self.violated.notified().await;
    }

    /// Runs the online check on the event just pushed to `trace` at `index`.
    fn check(
        &self,
        inner: &mut Inner,
        trace: &'static str,
        index: usize,
        run: impl FnOnce(&mut dyn OnlineCheck) -> Vec<String>,
    ) {
        let Some(online) = inner.online.as_deref_mut() else {
            return;
        };
        let broken = run(online);
        if broken.is_empty() {
            return;
        }
        let now = Instant::now().saturating_duration_since(inner.start).as_micros() as u64;
        for text in broken {
            tracing::error!(at_us = now, "online invariant broken: {text}");
            inner.violations.push(OnlineViolation {
                time_us: now,
                trace,
                index,
                text,
            });
        }
        self.violated.notify_one();
    }

    /// Simulated microseconds since the run started.
    pub fn now_us(&self) -> u64 {
        let start = self.lock().start;
        Instant::now().saturating_duration_since(start).as_micros() as u64
    }

    /// Records an op.
    pub fn op(&self, process: &str, op_type: OpType, body: OpBody, error: Option<String>) {
        let now = self.now_us();
        let mut inner = self.lock();
        if matches!(body, OpBody::Commit { .. }) {
            inner.commits_in_flight = match op_type {
                OpType::Invoke => inner.commits_in_flight + 1,
                _ => inner.commits_in_flight.saturating_sub(1),
            };
        }
        inner.history.push(now, process, op_type, body, error);
    }

    /// Offset commits a consumer sent and has no answer to yet.
    pub fn commits_in_flight(&self) -> u64 {
        self.lock().commits_in_flight
    }

    /// A client is about to send a produce request (`true`) or has its outcome (`false`).
    pub fn produce_request(&self, started: bool) {
        let mut inner = self.lock();
        inner.requests_in_flight = if started {
            inner.requests_in_flight + 1
        } else {
            inner.requests_in_flight.saturating_sub(1)
        };
    }

    /// Produce requests on the wire or awaiting their answer: what the `*-with-sends-in-flight` marks mean.
    pub fn requests_in_flight(&self) -> u64 {
        self.lock().requests_in_flight
    }

    /// Whether broker `node` (id `id`), by the newest state it reported, leads `tp` and holds records above
    /// its high watermark: batches an acks=all producer waits on until the ISR has them.
    pub fn leader_awaiting_isr(&self, node: &str, id: i32, tp: &crate::types::TopicPartition) -> bool {
        let inner = self.lock();
        inner.last.get(node, &tp.topic, tp.partition).is_some_and(|at| {
            let s = &inner.history.states[at];
            s.leader == id && s.log_end_offset > s.high_watermark
        })
    }

    /// The history so far (a copy).
    pub fn snapshot(&self) -> History {
        self.lock().history.clone()
    }

    /// Takes the coverage marks the nodes hit out (the runner adds them to its own counts).
    pub fn take_marks(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut self.lock().marks)
    }

    /// Takes the history out.
    pub fn take(&self) -> History {
        std::mem::take(&mut self.lock().history)
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// The node that leads the highest Raft epoch any controller has reported leading, if any.
    pub fn raft_leader(&self) -> Option<String> {
        let inner = self.lock();
        inner
            .history
            .raft_states
            .iter()
            .filter(|s| s.role == crate::history::RaftRole::Leader)
            .max_by_key(|s| s.epoch)
            .map(|s| s.node.clone())
    }

    /// The newest metadata any controller applied (the highest offset), if any.
    pub fn latest_controller_metadata(&self) -> Option<MetadataState> {
        let inner = self.lock();
        inner
            .history
            .metadata_states
            .iter()
            .filter(|s| s.node.starts_with("controller-"))
            .max_by_key(|s| s.offset)
            .cloned()
    }
}

/// Per node, topic and partition, where its newest replica state sits in the trace. Nested by name so
/// that a lookup borrows the names (a state is recorded on almost every request a broker serves). Looked
/// up only, never iterated.
#[derive(Default)]
struct LastStates(FxHashMap<String, FxHashMap<String, FxHashMap<i32, usize>>>);

impl LastStates {
    fn get(&self, node: &str, topic: &str, partition: i32) -> Option<usize> {
        self.0.get(node)?.get(topic)?.get(&partition).copied()
    }

    fn set(&mut self, node: &str, topic: &str, partition: i32, index: usize) {
        let topics = match self.0.get_mut(node) {
            Some(topics) => topics,
            None => self.0.entry(node.to_string()).or_default(),
        };
        let partitions = match topics.get_mut(topic) {
            Some(partitions) => partitions,
            None => topics.entry(topic.to_string()).or_default(),
        };
        partitions.insert(partition, index);
    }
}

impl StateObserver for Recorder {
    fn replica_state(&self, mut state: ReplicaState) {
        state.time_us = self.now_us();
        let mut inner = self.lock();
        let index = inner.history.states.len();
        let unchanged = inner
            .last
            .get(&state.node, &state.topic, state.partition)
            .is_some_and(|at| {
                let prev = &inner.history.states[at];
                let time_us = std::mem::replace(&mut state.time_us, prev.time_us);
                let same = *prev == state;
                state.time_us = time_us;
                same
            });
        if unchanged {
            return;
        }
        inner.last.set(&state.node, &state.topic, state.partition, index);
        self.check(&mut inner, "replica", index, |c| c.replica(&state));
        inner.history.states.push(state);
    }

    fn raft_state(&self, mut state: RaftState) {
        state.time_us = self.now_us();
        let mut inner = self.lock();
        let index = inner.history.raft_states.len();
        self.check(&mut inner, "raft", index, |c| c.raft(&state));
        inner.history.raft_states.push(state);
    }

    fn metadata_state(&self, mut state: MetadataState) {
        state.time_us = self.now_us();
        let mut inner = self.lock();
        let index = inner.history.metadata_states.len();
        self.check(&mut inner, "metadata", index, |c| c.metadata(&state));
        inner.history.metadata_states.push(state);
    }

    fn mark(&self, mark: &'static str) {
        *self.lock().marks.entry(mark.to_string()).or_default() += 1;
    }
}
