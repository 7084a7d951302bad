//! OffsetCommit and OffsetFetch (Kafka's `GroupCoordinator.handleCommitOffsets` / `validateOffsetCommit` and
//! `handleFetchOffsets`). A commit's records go to `__consumer_offsets`; the offsets change when the append
//! lands ([`GroupCoordinator::on_append`] replays them), and the committer is answered then.

use super::coordinator::{
    err, CommitOffset, FetchedOffset, GroupCoordinator, GroupState, OffsetCommitRequest, OffsetFetchResponse,
    PendingWriteKind, Response,
};
use super::records::{GroupRecord, OffsetCommitValue};
use super::state::Group;
use crate::types::TopicPartition;

impl GroupCoordinator {
    fn commit_error(&mut self, request_id: u64, offsets: &[CommitOffset], code: i16) {
        let partitions = offsets.iter().map(|o| (o.tp.clone(), code)).collect();
        self.respond(request_id, Response::OffsetCommit { partitions });
    }

    /// OffsetCommit. Answered when the records land, or at once when refused.
    pub fn offset_commit(&mut self, request_id: u64, req: OffsetCommitRequest, now_ms: i64) {
        if !self.is_coordinator_for(&req.group_id) {
            return self.commit_error(request_id, &req.offsets, err::NOT_COORDINATOR);
        }
        let Some(g) = self.groups.get_mut(&req.group_id) else {
            if req.generation_id < 0 {
                // The group does not use Kafka's group management (`assign`): allow the commit.
                let g = Group::new(&req.group_id, now_ms);
                self.groups.insert(req.group_id.clone(), g);
                return self.store_offsets(request_id, req, now_ms);
            }
            // Or a member of a generation this coordinator never knew: either way, reject.
            return self.commit_error(request_id, &req.offsets, err::ILLEGAL_GENERATION);
        };
        if let Some(code) = validate_offset_commit(g, &req) {
            return self.commit_error(request_id, &req.offsets, code);
        }
        match g.state {
            GroupState::Empty => self.store_offsets(request_id, req, now_ms),
            // While preparing a rebalance a member may still commit; its heartbeat tells it to rejoin.
            GroupState::Stable | GroupState::PreparingRebalance => {
                if let Some(m) = g.members.get_mut(&req.member_id) {
                    m.latest_heartbeat_ms = now_ms;
                }
                self.store_offsets(request_id, req, now_ms)
            }
            // The member has its JoinGroup answer but not its assignment: it must not commit yet.
            GroupState::CompletingRebalance => self.commit_error(request_id, &req.offsets, err::REBALANCE_IN_PROGRESS),
            GroupState::Dead => self.commit_error(request_id, &req.offsets, err::COORDINATOR_NOT_AVAILABLE),
        }
    }

    fn store_offsets(&mut self, request_id: u64, req: OffsetCommitRequest, now_ms: i64) {
        let max = self.config.offset_metadata_max_bytes;
        let (ok, too_large): (Vec<CommitOffset>, Vec<CommitOffset>) =
            req.offsets.into_iter().partition(|o| o.metadata.len() <= max);
        let rejected: Vec<(TopicPartition, i16)> = too_large
            .into_iter()
            .map(|o| (o.tp, err::OFFSET_METADATA_TOO_LARGE))
            .collect();
        if ok.is_empty() {
            return self.respond(request_id, Response::OffsetCommit { partitions: rejected });
        }
        let records = ok
            .into_iter()
            .map(|o| GroupRecord::OffsetCommit {
                group_id: req.group_id.clone(),
                tp: o.tp,
                value: Some(OffsetCommitValue {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata,
                    commit_timestamp_ms: now_ms,
                }),
            })
            .collect();
        self.append(
            &req.group_id,
            records,
            PendingWriteKind::Commit { request_id, rejected },
        );
    }

    /// OffsetFetch: committed offsets of `partitions` (all the group's when `None`); -1 where none.
    pub fn offset_fetch(&mut self, request_id: u64, group_id: &str, partitions: Option<&[TopicPartition]>) {
        let response = self.fetch_offsets(group_id, partitions);
        self.respond(request_id, Response::OffsetFetch(response));
    }

    pub fn fetch_offsets(&self, group_id: &str, partitions: Option<&[TopicPartition]>) -> OffsetFetchResponse {
        if !self.is_coordinator_for(group_id) {
            return OffsetFetchResponse {
                error_code: err::NOT_COORDINATOR,
                offsets: vec![],
            };
        }
        let committed = self.groups.get(group_id).map(|g| &g.offsets);
        let fetched = |tp: &TopicPartition| {
            let v = committed.and_then(|c| c.get(tp));
            FetchedOffset {
                tp: tp.clone(),
                offset: v.map_or(-1, |v| v.offset),
                leader_epoch: v.map_or(-1, |v| v.leader_epoch),
                metadata: v.map(|v| v.metadata.clone()).unwrap_or_default(),
                error_code: err::NONE,
            }
        };
        let offsets = match partitions {
            Some(list) => list.iter().map(fetched).collect(),
            None => committed.into_iter().flat_map(|c| c.keys()).map(fetched).collect(),
        };
        OffsetFetchResponse {
            error_code: err::NONE,
            offsets,
        }
    }
}

/// `GroupCoordinator.validateOffsetCommit`: a member's commit must name a current member and the current
/// generation; a simple commit (generation -1, no member id) only reaches an Empty group.
fn validate_offset_commit(g: &Group, req: &OffsetCommitRequest) -> Option<i16> {
    if g.state == GroupState::Dead {
        Some(err::COORDINATOR_NOT_AVAILABLE)
    } else if req.generation_id >= 0 || !req.member_id.is_empty() {
        if !g.members.contains_key(&req.member_id) {
            Some(err::UNKNOWN_MEMBER_ID)
        } else if req.generation_id != g.generation_id {
            Some(err::ILLEGAL_GENERATION)
        } else {
            None
        }
    } else if g.state != GroupState::Empty {
        // When the group is not empty, only its members can commit.
        Some(err::UNKNOWN_MEMBER_ID)
    } else {
        None
    }
}
