//! Candidate (Kafka's `CandidateState`): bumps the epoch, votes for itself (persisted before any Vote
//! request leaves) and asks every voter. A majority of grants makes it leader. When the randomized
//! election timeout expires, or a majority has rejected it, it backs off a random time up to
//! `controller.quorum.election.backoff.max.ms` and then campaigns again in the next epoch.

use std::collections::BTreeSet;

use rand::Rng;

use super::messages::{Message, RaftError, VoteRequest, VoteResponse};
use super::quorum::State;
use super::RaftNode;

#[derive(Clone, Debug)]
pub(crate) struct CandidateState {
    pub granted: BTreeSet<i32>,
    pub rejected: BTreeSet<i32>,
    pub election_deadline_ms: i64,
    pub backoff_until_ms: Option<i64>,
}

impl CandidateState {
    pub fn next_deadline(&self) -> i64 {
        self.backoff_until_ms.unwrap_or(self.election_deadline_ms)
    }
}

impl RaftNode {
    pub(super) fn become_candidate(&mut self, now_ms: i64, rng: &mut impl Rng) {
        let me = self.config.node_id;
        self.quorum.bump_to(self.quorum.epoch + 1);
        self.quorum.vote(me);
        let deadline = now_ms + self.randomized_election_timeout_ms(rng);
        self.set_state(State::Candidate(CandidateState {
            granted: BTreeSet::from([me]),
            rejected: BTreeSet::new(),
            election_deadline_ms: deadline,
            backoff_until_ms: None,
        }));
        let req = VoteRequest {
            candidate_epoch: self.quorum.epoch,
            candidate_id: me,
            last_offset_epoch: self.log.last_fetched_epoch(),
            last_offset: self.log.log_end_offset(),
        };
        for v in self.other_voters() {
            self.send(v, Message::Vote(req.clone()));
        }
        self.maybe_win_election(now_ms, rng);
    }

    pub(super) fn tick_candidate(&mut self, now_ms: i64, rng: &mut impl Rng) {
        let State::Candidate(c) = &mut self.state else { return };
        match c.backoff_until_ms {
            Some(t) if now_ms >= t => self.become_candidate(now_ms, rng),
            None if now_ms >= c.election_deadline_ms => {
                c.backoff_until_ms = Some(now_ms + rng.random_range(0..=self.config.election_backoff_max_ms.max(0)));
            }
            _ => {}
        }
    }

    pub(super) fn handle_vote_response(&mut self, from: i32, r: VoteResponse, now_ms: i64, rng: &mut impl Rng) {
        if r.leader_epoch != self.quorum.epoch || r.leader_id.is_some() {
            self.observe_epoch(r.leader_epoch, r.leader_id, now_ms, rng);
            return;
        }
        let State::Candidate(c) = &mut self.state else { return };
        if r.error_code != RaftError::None {
            return;
        }
        if r.vote_granted {
            c.granted.insert(from);
        } else {
            c.rejected.insert(from);
        }
        self.maybe_win_election(now_ms, rng);
    }

    fn maybe_win_election(&mut self, now_ms: i64, rng: &mut impl Rng) {
        let majority = self.config.majority();
        let voters = self.config.voters.len();
        let State::Candidate(c) = &mut self.state else { return };
        if c.granted.len() >= majority {
            self.become_leader(now_ms);
        } else if voters - c.rejected.len() < majority && c.backoff_until_ms.is_none() {
            c.backoff_until_ms = Some(now_ms + rng.random_range(0..=self.config.election_backoff_max_ms.max(0)));
        }
    }
}
