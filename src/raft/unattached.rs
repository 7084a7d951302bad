//! Unattached (Kafka's `UnattachedState`, which also covers the former `VotedState`): an epoch with no
//! known leader, perhaps with a vote cast. Grants at most one vote per epoch, to a candidate whose log
//! is at least as up to date `(last epoch, log end offset)`; becomes a candidate when the randomized
//! election timeout expires.

use rand::Rng;

use super::messages::{Message, RaftError, VoteRequest, VoteResponse};
use super::quorum::{Role, State};
use super::RaftNode;

#[derive(Clone, Debug)]
pub(crate) struct UnattachedState {
    pub election_deadline_ms: i64,
}

impl RaftNode {
    /// Unattached at `epoch` (a newer epoch drops the vote; the same epoch keeps it).
    pub(super) fn become_unattached(&mut self, epoch: i32, now_ms: i64, rng: &mut impl Rng) {
        if epoch > self.quorum.epoch {
            self.quorum.bump_to(epoch);
        }
        self.quorum.leader_id = None;
        let deadline = now_ms + self.randomized_election_timeout_ms(rng);
        self.set_state(State::Unattached(UnattachedState {
            election_deadline_ms: deadline,
        }));
    }

    pub(super) fn tick_unattached(&mut self, now_ms: i64, rng: &mut impl Rng) {
        if let State::Unattached(s) = &self.state {
            if now_ms >= s.election_deadline_ms {
                self.become_candidate(now_ms, rng);
            }
        }
    }

    pub(super) fn handle_vote_request(&mut self, from: i32, r: VoteRequest, now_ms: i64, rng: &mut impl Rng) {
        if r.candidate_epoch < self.quorum.epoch {
            let resp = self.vote_response(RaftError::FencedLeaderEpoch, false);
            self.send(from, resp);
            return;
        }
        if r.candidate_epoch > self.quorum.epoch {
            // Raft resets the election timer only when it grants a vote: a voter whose timer a rejected
            // candidate restarted each time would never campaign itself (a livelock the model test found;
            // pre-vote, KIP-996, is Kafka's later cure).
            let keep = match &self.state {
                State::Unattached(u) => Some(u.election_deadline_ms),
                State::Candidate(c) => Some(c.election_deadline_ms),
                State::Follower(f) => Some(f.fetch_deadline_ms),
                _ => None,
            };
            self.become_unattached(r.candidate_epoch, now_ms, rng);
            if let (Some(deadline), State::Unattached(u)) = (keep, &mut self.state) {
                u.election_deadline_ms = deadline;
            }
        }
        let log_ok = (r.last_offset_epoch, r.last_offset) >= (self.log.last_fetched_epoch(), self.log.log_end_offset());
        let grant = self.state.role() == Role::Unattached
            && match self.quorum.voted_for {
                None => log_ok,
                Some(v) => v == r.candidate_id,
            };
        if grant && self.quorum.voted_for.is_none() {
            // Persisted by the Ready that carries the response, before the response leaves.
            self.quorum.vote(r.candidate_id);
            let deadline = now_ms + self.randomized_election_timeout_ms(rng);
            self.state = State::Unattached(UnattachedState {
                election_deadline_ms: deadline,
            });
        }
        let resp = self.vote_response(RaftError::None, grant);
        self.send(from, resp);
    }

    fn vote_response(&self, error_code: RaftError, vote_granted: bool) -> Message {
        Message::VoteResponse(VoteResponse {
            error_code,
            leader_id: self.quorum.leader_id,
            leader_epoch: self.quorum.epoch,
            vote_granted,
        })
    }
}
