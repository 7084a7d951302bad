//! Leader (Kafka's `LeaderState`): appends a leader-change entry at the start of its epoch, sends
//! BeginQuorumEpoch to every voter (again every fetch timeout / 2 to those it has not heard from in
//! that long: Kafka persists the leader id so a restarted voter knows it; our quorum state holds only
//! `(epoch, voted_for)`, and this resend tells it instead), answers
//! Fetch (KIP-595 pull replication; a Fetch with nothing new waits up to `FETCH_MAX_WAIT_MS`), and keeps
//! the high watermark: the largest offset a majority of voters has *flushed* — its own flushed end,
//! and each follower's `fetch_offset`, which a follower sends only once flushed (KAFKA-10533) — and only
//! once it passes the epoch's start offset, so an entry of the current epoch is committed (Raft's "commit
//! only current-term entries"; Kafka's `LeaderState.maybeUpdateHighWatermark`). It never moves back.
//! Check-quorum: without fetches from a majority for 1.5 × `controller.quorum.fetch.timeout.ms`
//! (Kafka's `checkQuorumTimer`), it resigns.

use std::collections::BTreeMap;

use rand::Rng;

use super::messages::{BeginQuorumEpochRequest, FetchRequest, FetchResponse, Message, QuorumEpochResponse, RaftError};
use super::quorum::State;
use super::{Entry, RaftNode, FETCH_MAX_WAIT_MS, MAX_FETCH_RECORDS};

#[derive(Clone, Debug, Default)]
pub(crate) struct ReplicaState {
    /// The voter's flushed log end offset, as its last valid Fetch reported it.
    pub end_offset: Option<u64>,
    pub last_fetch_ms: Option<i64>,
    pub begin_acked: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct ParkedFetch {
    pub request: FetchRequest,
    pub deadline_ms: i64,
}

#[derive(Clone, Debug)]
pub(crate) struct LeaderState {
    pub epoch_start_offset: u64,
    pub elected_ms: i64,
    /// Every other voter.
    pub replicas: BTreeMap<i32, ReplicaState>,
    pub parked_fetches: BTreeMap<i32, ParkedFetch>,
    pub begin_quorum_resend_ms: i64,
    pub majority: usize,
}

impl LeaderState {
    /// When check-quorum fails unless more fetches arrive: the (majority − 1)-th most recent fetch (or
    /// the election) plus the timeout. `i64::MAX` for a single voter.
    pub fn check_quorum_deadline(&self, check_quorum_timeout_ms: i64) -> i64 {
        let needed = self.majority - 1;
        if needed == 0 {
            return i64::MAX;
        }
        let mut seen: Vec<i64> = self
            .replicas
            .values()
            .map(|r| r.last_fetch_ms.unwrap_or(self.elected_ms))
            .collect();
        seen.sort_unstable_by(|a, b| b.cmp(a));
        seen[needed - 1] + check_quorum_timeout_ms
    }

    pub fn next_deadline(&self, check_quorum_timeout_ms: i64) -> i64 {
        let parked = self
            .parked_fetches
            .values()
            .map(|p| p.deadline_ms)
            .min()
            .unwrap_or(i64::MAX);
        let begin = self.begin_quorum_resend_ms;
        parked
            .min(begin)
            .min(self.check_quorum_deadline(check_quorum_timeout_ms))
    }
}

impl RaftNode {
    pub(super) fn become_leader(&mut self, now_ms: i64) {
        let me = self.config.node_id;
        self.quorum.leader_id = Some(me);
        // Kafka's LeaderState starts without a high watermark: the one learned as a follower may lag the
        // last leader's, and the first one reported must cover every committed entry.
        self.high_watermark = None;
        let replicas = self
            .other_voters()
            .into_iter()
            .map(|v| (v, ReplicaState::default()))
            .collect();
        self.set_state(State::Leader(LeaderState {
            epoch_start_offset: self.log.log_end_offset(),
            elected_ms: now_ms,
            replicas,
            parked_fetches: BTreeMap::new(),
            begin_quorum_resend_ms: now_ms + self.config.fetch_timeout_ms / 2,
            majority: self.config.majority(),
        }));
        self.append_as_leader(Vec::new()); // the LeaderChangeMessage control record
        let req = BeginQuorumEpochRequest {
            leader_id: me,
            leader_epoch: self.quorum.epoch,
        };
        for v in self.other_voters() {
            self.send(v, Message::BeginQuorumEpoch(req.clone()));
        }
    }

    pub(super) fn append_as_leader(&mut self, data: Vec<u8>) -> u64 {
        let offset = self.log.log_end_offset();
        self.append_entry(Entry {
            epoch: self.quorum.epoch,
            offset,
            data,
        });
        self.complete_parked_fetches(); // new data for fetches waiting at the end of the log
        offset
    }

    pub(super) fn tick_leader(&mut self, now_ms: i64, rng: &mut impl Rng) {
        let cq = self.check_quorum_timeout_ms();
        let State::Leader(l) = &mut self.state else { return };
        let expired: Vec<i32> = l
            .parked_fetches
            .iter()
            .filter(|(_, p)| p.deadline_ms <= now_ms)
            .map(|(&r, _)| r)
            .collect();
        let mut answers = vec![];
        for r in expired {
            if let Some(p) = l.parked_fetches.remove(&r) {
                answers.push((r, p.request));
            }
        }
        for (r, req) in answers {
            let resp = self.fetch_response(&req);
            self.send(r, resp);
        }
        let State::Leader(l) = &mut self.state else { return };
        if now_ms >= l.check_quorum_deadline(cq) {
            self.become_resigned(now_ms, rng);
            return;
        }
        if now_ms >= l.begin_quorum_resend_ms {
            l.begin_quorum_resend_ms = now_ms + self.config.fetch_timeout_ms / 2;
            let quiet_since_ms = now_ms - self.config.fetch_timeout_ms / 2;
            let silent: Vec<i32> = l
                .replicas
                .iter()
                .filter(|(_, r)| r.last_fetch_ms.is_none_or(|t| t < quiet_since_ms))
                .map(|(&v, _)| v)
                .collect();
            let req = BeginQuorumEpochRequest {
                leader_id: self.config.node_id,
                leader_epoch: self.quorum.epoch,
            };
            for v in silent {
                self.send(v, Message::BeginQuorumEpoch(req.clone()));
            }
        }
    }

    pub(super) fn handle_begin_quorum_epoch(
        &mut self,
        from: i32,
        r: BeginQuorumEpochRequest,
        now_ms: i64,
        rng: &mut impl Rng,
    ) {
        if r.leader_epoch < self.quorum.epoch {
            let resp = self.quorum_epoch_response(RaftError::FencedLeaderEpoch);
            self.send(from, Message::BeginQuorumEpochResponse(resp));
            return;
        }
        self.observe_epoch(r.leader_epoch, Some(r.leader_id), now_ms, rng);
        let resp = self.quorum_epoch_response(RaftError::None);
        self.send(from, Message::BeginQuorumEpochResponse(resp));
    }

    pub(super) fn handle_begin_quorum_epoch_response(
        &mut self,
        from: i32,
        r: QuorumEpochResponse,
        now_ms: i64,
        rng: &mut impl Rng,
    ) {
        if r.leader_epoch == self.quorum.epoch && r.error_code == RaftError::None {
            if let State::Leader(l) = &mut self.state {
                if let Some(rep) = l.replicas.get_mut(&from) {
                    rep.begin_acked = true;
                }
            }
            return;
        }
        self.observe_epoch(r.leader_epoch, r.leader_id, now_ms, rng);
    }

    pub(super) fn handle_fetch_request(&mut self, from: i32, r: FetchRequest, now_ms: i64, rng: &mut impl Rng) {
        let _ = rng;
        let error = if r.current_leader_epoch < self.quorum.epoch {
            Some(RaftError::FencedLeaderEpoch)
        } else if r.current_leader_epoch > self.quorum.epoch {
            Some(RaftError::UnknownLeaderEpoch)
        } else if !matches!(self.state, State::Leader(_)) {
            Some(RaftError::NotLeaderOrFollower)
        } else {
            None
        };
        if let Some(e) = error {
            let resp = self.error_fetch_response(r.correlation_id, e);
            self.send(from, resp);
            return;
        }
        let diverging = self.log.validate_offset_and_epoch(r.fetch_offset, r.last_fetched_epoch);
        let leo = self.log.log_end_offset();
        let State::Leader(l) = &mut self.state else { return };
        l.parked_fetches.remove(&from);
        let Some(rep) = l.replicas.get_mut(&from) else { return };
        rep.last_fetch_ms = Some(now_ms);
        if let Some(d) = diverging {
            let mut resp = self.fetch_response(&r);
            if let Message::FetchResponse(f) = &mut resp {
                f.diverging_epoch = Some(d);
                f.records.clear();
            }
            self.send(from, resp);
            return;
        }
        rep.end_offset = Some(r.fetch_offset);
        let hw_moved = self.maybe_update_high_watermark();
        if hw_moved || r.fetch_offset < leo || r.max_wait_ms <= 0 {
            let resp = self.fetch_response(&r);
            self.send(from, resp);
        } else if let State::Leader(l) = &mut self.state {
            let deadline_ms = now_ms + r.max_wait_ms.min(FETCH_MAX_WAIT_MS);
            l.parked_fetches.insert(
                from,
                ParkedFetch {
                    request: r,
                    deadline_ms,
                },
            );
        }
    }

    /// Recomputes the high watermark from flushed offsets; answers parked fetches when it moves.
    pub(super) fn maybe_update_high_watermark(&mut self) -> bool {
        let State::Leader(l) = &self.state else { return false };
        let mut offsets: Vec<u64> = l.replicas.values().map(|r| r.end_offset.unwrap_or(0)).collect();
        offsets.push(self.flushed_end);
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = offsets[l.majority - 1];
        let moves = candidate > l.epoch_start_offset && self.high_watermark.is_none_or(|hw| candidate > hw);
        if moves {
            assert!(
                candidate <= self.log.log_end_offset(),
                "hw={candidate} leo={}",
                self.log.log_end_offset()
            );
            self.high_watermark = Some(candidate);
            self.complete_parked_fetches();
        }
        moves
    }

    fn complete_parked_fetches(&mut self) {
        let State::Leader(l) = &mut self.state else { return };
        let parked = std::mem::take(&mut l.parked_fetches);
        for (replica, p) in parked {
            let resp = self.fetch_response(&p.request);
            self.send(replica, resp);
        }
    }

    fn fetch_response(&self, req: &FetchRequest) -> Message {
        let from = req.fetch_offset;
        Message::FetchResponse(FetchResponse {
            correlation_id: req.correlation_id,
            error_code: RaftError::None,
            leader_id: Some(self.config.node_id),
            leader_epoch: self.quorum.epoch,
            high_watermark: self.high_watermark,
            diverging_epoch: None,
            records: self.log.slice(from, from.saturating_add(MAX_FETCH_RECORDS)).to_vec(),
        })
    }

    pub(super) fn error_fetch_response(&self, correlation_id: u64, error_code: RaftError) -> Message {
        Message::FetchResponse(FetchResponse {
            correlation_id,
            error_code,
            leader_id: self.quorum.leader_id,
            leader_epoch: self.quorum.epoch,
            high_watermark: None,
            diverging_epoch: None,
            records: vec![],
        })
    }
}
