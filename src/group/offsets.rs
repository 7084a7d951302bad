//! OffsetCommit and OffsetFetch (Kafka's `GroupCoordinator.handleCommitOffsets` / `validateOffsetCommit` and
//! `handleFetchOffsets`). A commit's records go to `__consumer_offsets`; the offsets change when the append
//! lands ([`GroupCoordinator::on_append`] replays them), and the committer is answered then. The offsets of
//! deleted partitions go the same way, by tombstones ([`GroupCoordinator::on_partitions_deleted`]).

use std::collections::{BTreeMap, BTreeSet};

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

    /// The partitions of deleted topics (Kafka's `GroupCoordinator.onPartitionsDeleted`, which the broker's
    /// metadata publisher calls with every partition of each deleted topic id): every group this coordinator
    /// serves appends an offset tombstone for each of those partitions it holds an offset for, landed or
    /// still in flight (Kafka 4's `OffsetMetadataManager.onPartitionsDeleted` sees uncommitted offsets too),
    /// one append per group. As for any record, the offsets go when the tombstones land (replay), so a
    /// coordinator that takes over later reads them from the log; a recreated topic of the same name
    /// therefore starts without the old topic's offsets. Returns the number of tombstones appended.
    pub fn on_partitions_deleted(&mut self, deleted: &BTreeSet<TopicPartition>) -> usize {
        if deleted.is_empty() {
            return 0;
        }
        let mut by_group: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        for (group_id, group) in &self.groups {
            if !self.is_coordinator_for(group_id) {
                continue;
            }
            let held = group.offsets.keys().filter(|tp| deleted.contains(tp));
            by_group.entry(group_id.clone()).or_default().extend(held.cloned());
        }
        for (group_id, tp) in self.pending_commit_offsets() {
            if deleted.contains(&tp) && self.is_coordinator_for(&group_id) {
                by_group.entry(group_id).or_default().push(tp);
            }
        }
        let mut appended = 0;
        for (group_id, mut tps) in by_group {
            tps.sort();
            tps.dedup();
            if tps.is_empty() {
                continue;
            }
            appended += tps.len();
            let records = tps
                .into_iter()
                .map(|tp| GroupRecord::OffsetCommit {
                    group_id: group_id.clone(),
                    tp,
                    value: None,
                })
                .collect();
            self.append(&group_id, records, PendingWriteKind::Tombstones);
        }
        appended
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
