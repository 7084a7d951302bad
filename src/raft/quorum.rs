//! `QuorumState`: the epoch, the vote and the known leader of one voter, and the role it is in — KRaft's
//! `QuorumState` (KIP-595). `(epoch, voted_for)` is what Kafka's `quorum-state` file holds; it is written
//! and synced (the shell carries out `Ready::persist_quorum_state` first) before any message that depends
//! on it leaves, so a vote is never granted twice in one epoch across a crash.
//!
//! Transition table (the same as Kafka's, minus `Prospective`: pre-vote, KIP-996, is skipped):
//!
//! | from \ to   | Unattached          | Candidate            | Leader            | Follower                  | Resigned        |
//! |-------------|---------------------|----------------------|-------------------|---------------------------|-----------------|
//! | Unattached  | higher epoch seen   | election timeout     | —                 | leader of epoch ≥ learned | —               |
//! | Candidate   | higher epoch seen   | backoff elapsed (+1) | majority of votes | leader of epoch ≥ learned | —               |
//! | Leader      | higher epoch seen   | —                    | —                 | higher epoch with leader  | check-quorum, `resign` |
//! | Follower    | higher epoch seen   | fetch timeout        | —                 | higher epoch with leader  | —               |
//! | Resigned    | higher epoch seen   | election timeout     | —                 | higher epoch with leader  | —               |
//!
//! Every move to Candidate bumps the epoch and votes for itself; Unattached may hold a vote
//! (`voted_for`, Kafka's former `Voted` state). A restart comes back Unattached at the persisted epoch
//! and vote, so a node that led epoch E never leads E again (Kafka comes back `Resigned`; both are safe).
//! A single voter elects itself at once.

use super::candidate::CandidateState;
use super::follower::FollowerState;
use super::leader::LeaderState;
use super::resigned::ResignedState;
use super::unattached::UnattachedState;

/// The role of a node, as Kafka's `QuorumState` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Unattached,
    Candidate,
    Leader,
    Follower,
    Resigned,
}

/// Epoch, vote and leader; `dirty` until the shell has been handed the change in a `Ready`.
#[derive(Clone, Debug)]
pub struct QuorumState {
    pub epoch: i32,
    pub voted_for: Option<i32>,
    pub leader_id: Option<i32>,
    pub(super) dirty: bool,
}

impl QuorumState {
    pub fn new(epoch: i32, voted_for: Option<i32>) -> Self {
        QuorumState {
            epoch,
            voted_for,
            leader_id: None,
            dirty: false,
        }
    }

    /// Moves to a newer epoch: the vote and the leader of the old one are gone.
    pub fn bump_to(&mut self, epoch: i32) {
        assert!(epoch > self.epoch, "epoch may only grow: {} -> {epoch}", self.epoch);
        self.epoch = epoch;
        self.voted_for = None;
        self.leader_id = None;
        self.dirty = true;
    }

    pub fn vote(&mut self, candidate: i32) {
        assert!(
            self.voted_for.is_none() || self.voted_for == Some(candidate),
            "epoch={} already voted for {:?}, not {candidate}",
            self.epoch,
            self.voted_for
        );
        if self.voted_for != Some(candidate) {
            self.voted_for = Some(candidate);
            self.dirty = true;
        }
    }

    /// Takes the state to persist, if it changed since the last `Ready`.
    pub fn take_persist(&mut self) -> Option<(i32, Option<i32>)> {
        std::mem::take(&mut self.dirty).then_some((self.epoch, self.voted_for))
    }
}

/// The role-specific state; each role lives in its own file.
#[derive(Clone, Debug)]
pub(super) enum State {
    Unattached(UnattachedState),
    Candidate(CandidateState),
    Leader(LeaderState),
    Follower(FollowerState),
    Resigned(ResignedState),
}

impl State {
    pub fn role(&self) -> Role {
        match self {
            State::Unattached(_) => Role::Unattached,
            State::Candidate(_) => Role::Candidate,
            State::Leader(_) => Role::Leader,
            State::Follower(_) => Role::Follower,
            State::Resigned(_) => Role::Resigned,
        }
    }
}
