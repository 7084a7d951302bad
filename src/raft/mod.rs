//! The KRaft core (KIP-595) as a pure state machine in the style of raft-rs' `RawNode`: inputs are
//! messages (`step`), timers (`tick`) and proposals; outputs are a [`Ready`] of effects as data. No IO, no
//! clock (`now_ms` is an argument), no global RNG (an `&mut impl Rng` is passed in).
//!
//! The shell carries out a `Ready` in this order, then calls `advance` with it:
//! 1. `persist_quorum_state`: write and sync `(epoch, voted_for)` (Kafka's `quorum-state` file);
//! 2. `truncate_to`, then `append`, then sync the log through `flush_to`;
//! 3. send `messages`; 4. apply `committed`.
//!
//! Messages are built from state that steps 1–2 make durable: a Vote is granted only once the vote is on
//! disk (KAFKA-10533), and a Fetch reports a `fetch_offset` only once the entries below it are flushed.
//! A node may be stepped between `ready` and `advance`; Readys must be carried out and advanced in order.
//!
//! Kafka rules kept (see each role's file): randomized election timeouts
//! (`controller.quorum.election.timeout.ms` + a random share of it), election backoff
//! (`controller.quorum.election.backoff.max.ms`), the follower's fetch timeout
//! (`controller.quorum.fetch.timeout.ms`), the leader's check-quorum (resign after 1.5 × fetch timeout
//! without fetches from a majority), BeginQuorumEpoch from a new leader, EndQuorumEpoch on resignation,
//! a high watermark over flushed offsets only that needs an entry of the leader's epoch.
//! Skipped: pre-vote (KIP-996), observers, snapshots (FetchSnapshot), voter changes (KIP-853).

mod candidate;
pub mod cluster;
mod follower;
mod leader;
pub mod log;
pub mod messages;
pub mod quorum;
mod resigned;
mod unattached;

use std::collections::VecDeque;

use rand::Rng;
use thiserror::Error;

pub use log::{Entry, OffsetAndEpoch, RaftLog};
pub use messages::*;
use quorum::State;
pub use quorum::{QuorumState, Role};

/// Kafka's `controller.quorum.*` settings that the core uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftConfig {
    pub node_id: i32,
    pub voters: Vec<i32>,
    /// `controller.quorum.election.timeout.ms` (1000).
    pub election_timeout_ms: i64,
    /// `controller.quorum.fetch.timeout.ms` (2000).
    pub fetch_timeout_ms: i64,
    /// `controller.quorum.election.backoff.max.ms` (1000).
    pub election_backoff_max_ms: i64,
}

impl RaftConfig {
    /// Kafka's defaults for `node_id` among `voters`.
    pub fn new(node_id: i32, voters: Vec<i32>) -> Self {
        RaftConfig {
            node_id,
            voters,
            election_timeout_ms: 1000,
            fetch_timeout_ms: 2000,
            election_backoff_max_ms: 1000,
        }
    }

    /// Sets one `controller.quorum.*` timeout by Kafka's name; says why a key or value is refused.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let ms = value
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|ms| *ms >= 1)
            .ok_or_else(|| format!("{key} = {value:?}: must be a positive number of milliseconds"))?;
        match key {
            "controller.quorum.election.timeout.ms" => self.election_timeout_ms = ms,
            "controller.quorum.fetch.timeout.ms" => self.fetch_timeout_ms = ms,
            "controller.quorum.election.backoff.max.ms" => self.election_backoff_max_ms = ms,
            other => return Err(format!("unknown quorum config `{other}`")),
        }
        Ok(())
    }

    pub fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

/// What a node finds on its disk when it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistedState {
    pub epoch: i32,
    pub voted_for: Option<i32>,
    /// The log as recovered (entries past `flushed_end` survived a process crash in the page cache).
    pub entries: Vec<Entry>,
    pub flushed_end: u64,
}

/// Effects for the shell, in the order of the module doc.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    pub persist_quorum_state: Option<(i32, Option<i32>)>,
    pub truncate_to: Option<u64>,
    pub append: Vec<Entry>,
    pub flush_to: Option<u64>,
    pub messages: Vec<(i32, Message)>,
    /// Entries newly below the high watermark (since this node started).
    pub committed: Vec<Entry>,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        *self == Ready::default()
    }
}

#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("node {node_id} is not the leader (leader {leader_id:?}, epoch {epoch})")]
pub struct NotLeader {
    pub node_id: i32,
    pub leader_id: Option<i32>,
    pub epoch: i32,
}

/// How long a leader keeps a Fetch with nothing to return (Kafka's `FETCH_MAX_WAIT_MS`).
pub const FETCH_MAX_WAIT_MS: i64 = 500;
/// Kafka's `quorum.retry.backoff.ms`.
pub const RETRY_BACKOFF_MS: i64 = 20;
/// Most entries one Fetch response carries.
pub const MAX_FETCH_RECORDS: u64 = 64;

pub struct RaftNode {
    config: RaftConfig,
    quorum: QuorumState,
    state: State,
    log: RaftLog,
    high_watermark: Option<u64>,
    /// The log is durable below this offset.
    flushed_end: u64,
    /// The log end offset the shell holds once it has carried out every Ready taken so far.
    written_end: u64,
    /// `flush_to` of Readys taken but not yet advanced, oldest first.
    pending_flushes: VecDeque<u64>,
    out: Ready,
    /// Next offset to hand out in `Ready::committed`.
    committed_next: u64,
    /// Correlation id of the next Fetch; starts at a random point so a new incarnation ignores answers
    /// meant for the old one.
    next_correlation_id: u64,
}

impl RaftNode {
    pub fn new(config: RaftConfig, persisted: PersistedState, now_ms: i64, rng: &mut impl Rng) -> Self {
        assert!(
            config.voters.contains(&config.node_id),
            "node {} not among voters {:?}",
            config.node_id,
            config.voters
        );
        let log = RaftLog::from_entries(persisted.entries);
        let flushed_end = persisted.flushed_end.min(log.log_end_offset());
        let mut node = RaftNode {
            quorum: QuorumState::new(persisted.epoch, persisted.voted_for),
            state: State::Unattached(unattached::UnattachedState {
                election_deadline_ms: 0,
            }),
            written_end: log.log_end_offset(),
            log,
            high_watermark: None,
            flushed_end,
            pending_flushes: VecDeque::new(),
            out: Ready::default(),
            committed_next: 0,
            next_correlation_id: u64::from(rng.random::<u32>()) << 32,
            config,
        };
        node.become_unattached(node.quorum.epoch, now_ms, rng);
        if node.config.voters.len() == 1 {
            node.become_candidate(now_ms, rng);
        }
        node
    }

    pub fn step(&mut self, from: i32, msg: Message, now_ms: i64, rng: &mut impl Rng) {
        if from == self.config.node_id || !self.config.voters.contains(&from) {
            return; // Kafka answers INCONSISTENT_VOTER_SET; observers are not modelled.
        }
        match msg {
            Message::Vote(r) => self.handle_vote_request(from, r, now_ms, rng),
            Message::VoteResponse(r) => self.handle_vote_response(from, r, now_ms, rng),
            Message::BeginQuorumEpoch(r) => self.handle_begin_quorum_epoch(from, r, now_ms, rng),
            Message::BeginQuorumEpochResponse(r) => self.handle_begin_quorum_epoch_response(from, r, now_ms, rng),
            Message::EndQuorumEpoch(r) => self.handle_end_quorum_epoch(from, r, now_ms, rng),
            Message::EndQuorumEpochResponse(r) => self.observe_epoch(r.leader_epoch, r.leader_id, now_ms, rng),
            Message::Fetch(r) => self.handle_fetch_request(from, r, now_ms, rng),
            Message::FetchResponse(r) => self.handle_fetch_response(r, now_ms, rng),
        }
    }

    pub fn tick(&mut self, now_ms: i64, rng: &mut impl Rng) {
        match self.state.role() {
            Role::Unattached => self.tick_unattached(now_ms, rng),
            Role::Candidate => self.tick_candidate(now_ms, rng),
            Role::Leader => self.tick_leader(now_ms, rng),
            Role::Follower => self.tick_follower(now_ms, rng),
            Role::Resigned => self.tick_resigned(now_ms, rng),
        }
    }

    /// Forces an election now (raft-rs' `campaign`), unless this node leads.
    pub fn campaign(&mut self, now_ms: i64, rng: &mut impl Rng) {
        if self.state.role() != Role::Leader {
            self.become_candidate(now_ms, rng);
        }
    }

    pub fn next_deadline(&self) -> Option<i64> {
        match &self.state {
            State::Unattached(s) => Some(s.election_deadline_ms),
            State::Candidate(s) => Some(s.next_deadline()),
            State::Leader(s) => Some(s.next_deadline(self.check_quorum_timeout_ms())),
            State::Follower(s) => Some(s.next_deadline(self.request_timeout_ms())),
            State::Resigned(s) => Some(s.election_deadline_ms),
        }
    }

    pub fn ready(&mut self) -> Ready {
        let mut ready = std::mem::take(&mut self.out);
        ready.persist_quorum_state = self.quorum.take_persist();
        let leo = self.log.log_end_offset();
        let queued = self.pending_flushes.back().copied().unwrap_or(self.flushed_end);
        if ready.truncate_to.is_some() || !ready.append.is_empty() || leo > queued {
            ready.flush_to = Some(leo);
            self.pending_flushes.push_back(leo);
        }
        self.written_end = leo;
        let hw = self.high_watermark.unwrap_or(0);
        if hw > self.committed_next {
            ready.committed = self.log.slice(self.committed_next, hw).to_vec();
            self.committed_next = hw;
        }
        ready
    }

    pub fn advance(&mut self, done: Ready) {
        if done.flush_to.is_some() {
            let flushed = self
                .pending_flushes
                .pop_front()
                .expect("advance of a Ready that was never taken");
            self.flushed_end = self.flushed_end.max(flushed).min(self.log.log_end_offset());
        }
        if self.state.role() == Role::Leader {
            self.maybe_update_high_watermark();
        }
    }

    pub fn propose(&mut self, data: Vec<u8>, now_ms: i64) -> Result<u64, NotLeader> {
        let _ = now_ms;
        if self.state.role() != Role::Leader {
            return Err(NotLeader {
                node_id: self.config.node_id,
                leader_id: self.quorum.leader_id,
                epoch: self.quorum.epoch,
            });
        }
        Ok(self.append_as_leader(data))
    }

    pub fn role(&self) -> Role {
        self.state.role()
    }
    pub fn epoch(&self) -> i32 {
        self.quorum.epoch
    }
    pub fn voted_for(&self) -> Option<i32> {
        self.quorum.voted_for
    }
    pub fn leader(&self) -> Option<i32> {
        self.quorum.leader_id
    }
    pub fn high_watermark(&self) -> Option<u64> {
        self.high_watermark
    }
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    pub fn flushed_end(&self) -> u64 {
        self.flushed_end
    }
    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    // ---- helpers shared by the roles ----

    fn send(&mut self, to: i32, msg: Message) {
        self.out.messages.push((to, msg));
    }

    fn other_voters(&self) -> Vec<i32> {
        self.config
            .voters
            .iter()
            .copied()
            .filter(|&v| v != self.config.node_id)
            .collect()
    }

    /// `controller.quorum.election.timeout.ms` plus a random share of it, as Kafka draws it.
    fn randomized_election_timeout_ms(&self, rng: &mut impl Rng) -> i64 {
        let base = self.config.election_timeout_ms.max(1);
        base + rng.random_range(0..base)
    }

    fn check_quorum_timeout_ms(&self) -> i64 {
        self.config.fetch_timeout_ms * 3 / 2
    }

    fn request_timeout_ms(&self) -> i64 {
        (self.config.fetch_timeout_ms / 2).max(FETCH_MAX_WAIT_MS + 1)
    }

    /// Removes entries at and above `offset` and tells the shell to do the same.
    fn truncate_log(&mut self, offset: u64) {
        if let Some(hw) = self.high_watermark {
            // Kafka raises a fatal error here too: a committed entry is on every later leader.
            assert!(
                offset >= hw,
                "node {} asked to truncate to {offset} below high_watermark={hw}",
                self.config.node_id
            );
        }
        if offset >= self.log.log_end_offset() {
            return;
        }
        self.log.truncate_to(offset);
        self.out.append.retain(|e| e.offset < offset);
        if offset < self.written_end {
            self.out.truncate_to = Some(self.out.truncate_to.map_or(offset, |t| t.min(offset)));
            self.written_end = offset;
        }
        self.flushed_end = self.flushed_end.min(offset);
        for f in self.pending_flushes.iter_mut() {
            *f = (*f).min(offset);
        }
        self.committed_next = self.committed_next.min(offset);
    }

    fn append_entry(&mut self, entry: Entry) {
        self.log.append(entry.clone());
        self.out.append.push(entry);
    }

    /// Reacts to an epoch and leader another node reported (Kafka's `maybeHandleCommonResponse` and the
    /// epoch checks of each request handler).
    fn observe_epoch(&mut self, epoch: i32, leader_id: Option<i32>, now_ms: i64, rng: &mut impl Rng) {
        let me = self.config.node_id;
        if epoch > self.quorum.epoch {
            match leader_id {
                Some(l) if l != me => self.become_follower(epoch, l, now_ms),
                _ => self.become_unattached(epoch, now_ms, rng),
            }
            return;
        }
        let Some(l) = leader_id else { return };
        if epoch < self.quorum.epoch || l == me {
            return;
        }
        match self.state.role() {
            Role::Unattached | Role::Candidate => self.become_follower(epoch, l, now_ms),
            Role::Follower => {
                assert_eq!(
                    self.quorum.leader_id,
                    Some(l),
                    "node {me}: two leaders in epoch {epoch}"
                );
            }
            Role::Leader | Role::Resigned => panic!("node {me} leads epoch {epoch} but {l} claims it too"),
        }
    }

    /// Leaves the current role. A leader answers its parked fetches so followers learn at once.
    fn set_state(&mut self, state: State) {
        let old = std::mem::replace(&mut self.state, state);
        if let State::Leader(leader) = old {
            for (replica, parked) in leader.parked_fetches {
                let resp = self.error_fetch_response(parked.request.correlation_id, RaftError::NotLeaderOrFollower);
                self.send(replica, resp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn node(id: i32, voters: Vec<i32>, persisted: PersistedState) -> (RaftNode, ChaCha8Rng) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        (RaftNode::new(RaftConfig::new(id, voters), persisted, 0, &mut rng), rng)
    }

    #[test]
    fn a_vote_response_leaves_in_the_ready_that_persists_the_vote() {
        let (mut n, mut rng) = node(2, vec![1, 2, 3], PersistedState::default());
        let vote = VoteRequest {
            candidate_epoch: 1,
            candidate_id: 1,
            last_offset_epoch: 0,
            last_offset: 0,
        };
        n.step(1, Message::Vote(vote), 10, &mut rng);
        let ready = n.ready();
        assert_eq!(ready.persist_quorum_state, Some((1, Some(1))));
        assert!(matches!(&ready.messages[..], [(1, Message::VoteResponse(r))] if r.vote_granted));
    }

    #[test]
    fn a_voter_never_votes_twice_in_one_epoch_even_after_a_restart() {
        let persisted = PersistedState {
            epoch: 1,
            voted_for: Some(1),
            ..Default::default()
        };
        let (mut n, mut rng) = node(2, vec![1, 2, 3], persisted);
        let vote = VoteRequest {
            candidate_epoch: 1,
            candidate_id: 3,
            last_offset_epoch: 0,
            last_offset: 0,
        };
        n.step(3, Message::Vote(vote), 10, &mut rng);
        let ready = n.ready();
        assert_eq!(ready.persist_quorum_state, None);
        assert!(matches!(&ready.messages[..], [(3, Message::VoteResponse(r))] if !r.vote_granted));
    }

    #[test]
    fn a_single_voter_elects_itself_and_commits_only_after_its_flush() {
        let (mut n, _) = node(1, vec![1], PersistedState::default());
        assert_eq!(n.role(), Role::Leader);
        let ready = n.ready();
        assert_eq!(ready.flush_to, Some(1));
        assert_eq!(n.high_watermark(), None, "not flushed yet");
        n.advance(ready);
        assert_eq!(n.high_watermark(), Some(1));
        assert_eq!(n.propose(b"x".to_vec(), 0), Ok(1));
    }

    #[test]
    fn a_follower_reports_its_log_end_only_in_a_ready_that_flushes_it() {
        let (mut n, mut rng) = node(2, vec![1, 2, 3], PersistedState::default());
        n.step(
            1,
            Message::BeginQuorumEpoch(BeginQuorumEpochRequest {
                leader_id: 1,
                leader_epoch: 1,
            }),
            0,
            &mut rng,
        );
        let ready = n.ready();
        let Some((1, Message::Fetch(f))) = ready
            .messages
            .iter()
            .find(|(_, m)| matches!(m, Message::Fetch(_)))
            .cloned()
        else {
            panic!("no fetch in {ready:?}")
        };
        n.advance(ready);
        let records = vec![Entry {
            epoch: 1,
            offset: 0,
            data: vec![],
        }];
        let resp = FetchResponse {
            correlation_id: f.correlation_id,
            error_code: RaftError::None,
            leader_id: Some(1),
            leader_epoch: 1,
            high_watermark: None,
            diverging_epoch: None,
            records,
        };
        n.step(1, Message::FetchResponse(resp), 5, &mut rng);
        let ready = n.ready();
        assert_eq!(ready.flush_to, Some(1));
        assert!(ready
            .messages
            .iter()
            .any(|(_, m)| matches!(m, Message::Fetch(f) if f.fetch_offset == 1)));
    }
}
