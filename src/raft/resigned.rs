//! Resigned (Kafka's `ResignedState`): a leader that gave up its epoch, by `resign` or because
//! check-quorum failed. It tells the voters with EndQuorumEpoch (successors ordered by how far their
//! logs reached, so the best-placed voter campaigns first), serves no fetches, and campaigns itself after
//! an election timeout unless a newer epoch reaches it first.

use rand::Rng;

use super::messages::{EndQuorumEpochRequest, Message, QuorumEpochResponse, RaftError};
use super::quorum::{Role, State};
use super::RaftNode;

#[derive(Clone, Debug)]
pub(crate) struct ResignedState {
    pub election_deadline_ms: i64,
}

impl RaftNode {
    /// Graceful resignation (Kafka's `RaftClient.resign`): only a leader resigns.
    pub fn resign(&mut self, now_ms: i64, rng: &mut impl Rng) {
        if self.state.role() == Role::Leader {
            self.become_resigned(now_ms, rng);
        }
    }

    pub(super) fn become_resigned(&mut self, now_ms: i64, rng: &mut impl Rng) {
        let State::Leader(leader) = &self.state else { return };
        let mut successors: Vec<(u64, i32)> = leader
            .replicas
            .iter()
            .filter(|(&id, _)| id != self.config.node_id)
            .map(|(&id, r)| (r.end_offset.unwrap_or(0), id))
            .collect();
        successors.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let preferred_successors: Vec<i32> = successors.into_iter().map(|(_, id)| id).collect();
        let deadline = now_ms + self.randomized_election_timeout_ms(rng);
        self.set_state(State::Resigned(ResignedState {
            election_deadline_ms: deadline,
        }));
        let req = EndQuorumEpochRequest {
            leader_id: self.config.node_id,
            leader_epoch: self.quorum.epoch,
            preferred_successors,
        };
        for v in self.other_voters() {
            self.send(v, Message::EndQuorumEpoch(req.clone()));
        }
    }

    pub(super) fn tick_resigned(&mut self, now_ms: i64, rng: &mut impl Rng) {
        if let State::Resigned(s) = &self.state {
            if now_ms >= s.election_deadline_ms {
                self.become_candidate(now_ms, rng);
            }
        }
    }

    /// A leader stepping down: a follower of it (or an unattached voter) of that epoch campaigns after a
    /// backoff that grows with its place among the preferred successors (0 for the first).
    pub(super) fn handle_end_quorum_epoch(
        &mut self,
        from: i32,
        r: EndQuorumEpochRequest,
        now_ms: i64,
        rng: &mut impl Rng,
    ) {
        if r.leader_epoch < self.quorum.epoch {
            let resp = self.quorum_epoch_response(RaftError::FencedLeaderEpoch);
            self.send(from, Message::EndQuorumEpochResponse(resp));
            return;
        }
        self.observe_epoch(r.leader_epoch, Some(r.leader_id), now_ms, rng);
        let backoff_ms = match r.preferred_successors.iter().position(|&v| v == self.config.node_id) {
            Some(0) => 0,
            Some(p) => (100i64 << (p - 1).min(20)).min(self.config.election_backoff_max_ms),
            None => self.config.election_backoff_max_ms,
        };
        let deadline = now_ms + backoff_ms;
        match &mut self.state {
            State::Follower(f) if self.quorum.leader_id == Some(r.leader_id) => {
                f.fetch_deadline_ms = f.fetch_deadline_ms.min(deadline)
            }
            State::Unattached(u) => u.election_deadline_ms = u.election_deadline_ms.min(deadline),
            _ => {}
        }
        let resp = self.quorum_epoch_response(RaftError::None);
        self.send(from, Message::EndQuorumEpochResponse(resp));
    }

    pub(super) fn quorum_epoch_response(&self, error_code: RaftError) -> QuorumEpochResponse {
        QuorumEpochResponse {
            error_code,
            leader_id: self.quorum.leader_id,
            leader_epoch: self.quorum.epoch,
        }
    }
}
