//! Follower (Kafka's `FollowerState`): pulls from the leader with one Fetch at a time (KIP-595), carrying
//! its log end offset and the epoch of its last entry. The offset it reports is flushed before the Fetch
//! leaves (same Ready). On `divergingEpoch` it truncates as Kafka's `truncateToEndOffset` does: to its own
//! end of that epoch, capped by the leader's end offset when both know the epoch — never below the high
//! watermark it learned (Kafka treats that as fatal; here it is an assertion). A Fetch that goes
//! unanswered for the request timeout is sent again; no successful response for
//! `controller.quorum.fetch.timeout.ms` makes it a candidate.

use rand::Rng;

use super::messages::{FetchRequest, FetchResponse, Message, RaftError};
use super::quorum::State;
use super::{RaftNode, FETCH_MAX_WAIT_MS, RETRY_BACKOFF_MS};

#[derive(Clone, Debug)]
pub(crate) enum FetchState {
    Idle { send_at_ms: i64 },
    InFlight { correlation_id: u64, sent_at_ms: i64 },
}

#[derive(Clone, Debug)]
pub(crate) struct FollowerState {
    pub fetch_deadline_ms: i64,
    pub fetch: FetchState,
}

impl FollowerState {
    pub fn next_deadline(&self, request_timeout_ms: i64) -> i64 {
        let fetch = match self.fetch {
            FetchState::Idle { send_at_ms } => send_at_ms,
            FetchState::InFlight { sent_at_ms, .. } => sent_at_ms + request_timeout_ms,
        };
        fetch.min(self.fetch_deadline_ms)
    }
}

impl RaftNode {
    pub(super) fn become_follower(&mut self, epoch: i32, leader_id: i32, now_ms: i64) {
        if epoch > self.quorum.epoch {
            self.quorum.bump_to(epoch);
        }
        self.quorum.leader_id = Some(leader_id);
        let deadline = now_ms + self.config.fetch_timeout_ms;
        self.set_state(State::Follower(FollowerState {
            fetch_deadline_ms: deadline,
            fetch: FetchState::Idle { send_at_ms: now_ms },
        }));
        self.send_fetch(now_ms);
    }

    pub(super) fn tick_follower(&mut self, now_ms: i64, rng: &mut impl Rng) {
        let request_timeout_ms = self.request_timeout_ms();
        let State::Follower(f) = &self.state else { return };
        if now_ms >= f.fetch_deadline_ms {
            self.become_candidate(now_ms, rng);
            return;
        }
        let due = match f.fetch {
            FetchState::Idle { send_at_ms } => now_ms >= send_at_ms,
            FetchState::InFlight { sent_at_ms, .. } => now_ms >= sent_at_ms + request_timeout_ms,
        };
        if due {
            self.send_fetch(now_ms);
        }
    }

    fn send_fetch(&mut self, now_ms: i64) {
        let Some(leader) = self.quorum.leader_id else { return };
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let State::Follower(f) = &mut self.state else { return };
        f.fetch = FetchState::InFlight {
            correlation_id,
            sent_at_ms: now_ms,
        };
        let req = FetchRequest {
            correlation_id,
            replica_id: self.config.node_id,
            current_leader_epoch: self.quorum.epoch,
            fetch_offset: self.log.log_end_offset(),
            last_fetched_epoch: self.log.last_fetched_epoch(),
            max_wait_ms: FETCH_MAX_WAIT_MS,
        };
        self.send(leader, Message::Fetch(req));
    }

    pub(super) fn handle_fetch_response(&mut self, r: FetchResponse, now_ms: i64, rng: &mut impl Rng) {
        if r.leader_epoch != self.quorum.epoch {
            self.observe_epoch(r.leader_epoch, r.leader_id, now_ms, rng);
            return;
        }
        let State::Follower(f) = &mut self.state else {
            self.observe_epoch(r.leader_epoch, r.leader_id, now_ms, rng);
            return;
        };
        match f.fetch {
            FetchState::InFlight { correlation_id, .. } if correlation_id == r.correlation_id => {}
            _ => return, // a late or duplicated response
        }
        if r.error_code != RaftError::None {
            f.fetch = FetchState::Idle {
                send_at_ms: now_ms + RETRY_BACKOFF_MS,
            };
            return;
        }
        f.fetch_deadline_ms = now_ms + self.config.fetch_timeout_ms;
        if let Some(diverging) = r.diverging_epoch {
            let offset = self.log.truncation_offset_for(diverging);
            self.truncate_log(offset);
        } else {
            self.append_as_follower(r.records);
            if let Some(hw) = r.high_watermark {
                let hw = hw.min(self.log.log_end_offset());
                if self.high_watermark.is_none_or(|old| hw > old) {
                    self.high_watermark = Some(hw);
                }
            }
        }
        self.send_fetch(now_ms);
    }

    fn append_as_follower(&mut self, records: Vec<super::Entry>) {
        for e in records {
            let leo = self.log.log_end_offset();
            if e.offset < leo {
                let mine = self.log.get(e.offset).map(|m| m.epoch);
                assert_eq!(
                    mine,
                    Some(e.epoch),
                    "node {} holds another entry at {}",
                    self.config.node_id,
                    e.offset
                );
            } else if e.offset == leo {
                self.append_entry(e);
            } else {
                break;
            }
        }
    }
}
