//! The consumer core (Kafka's `KafkaConsumer` over `ConsumerCoordinator`, `Fetcher` and
//! `SubscriptionState`), pure: the shell calls the application's operations ([`Consumer::subscribe`],
//! [`Consumer::assign`], [`Consumer::poll`], [`Consumer::seek`], [`Consumer::commit`]), carries out the
//! [`Effect`]s, feeds answers back (`on_*`), and calls [`Consumer::tick`] by [`Effect::WakeAt`] so
//! heartbeats go out between polls (Kafka's heartbeat thread).

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::config::ConsumerConfig;
use super::member::{self, diff, MemberInfo, MemberState, RebalanceEvent};
use super::positions::{Awaiting, ConsumerRecord, FetchPosition, FetchResult, Positions, Truncation};
use super::protocol::decode_assignment;
use crate::group::coordinator::err;
use crate::group::{
    CommitOffset, JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest, OffsetFetchResponse, RebalanceProtocol,
    SyncGroupRequest, SyncGroupResponse,
};
use crate::types::{LeaderEpoch, Offset, TopicPartition};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Find the group's coordinator; answer with [`Consumer::on_coordinator`].
    FindCoordinator {
        group_id: String,
    },
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat {
        group_id: String,
        generation_id: i32,
        member_id: String,
    },
    LeaveGroup {
        group_id: String,
        member_id: String,
    },
    OffsetFetch {
        group_id: String,
        partitions: Vec<TopicPartition>,
    },
    OffsetCommit {
        commit_id: u64,
        request: OffsetCommitRequest,
    },
    /// ListOffsets for a reset (-2 earliest, -1 latest).
    ListOffsets {
        tp: TopicPartition,
        timestamp: i64,
    },
    /// KIP-320: ask `tp`'s leader (at `current_leader_epoch`) where `position.leader_epoch` ends; answer
    /// with [`Consumer::on_epoch_end_offset`].
    OffsetsForLeaderEpoch {
        tp: TopicPartition,
        position: FetchPosition,
        current_leader_epoch: LeaderEpoch,
    },
    /// KIP-320: the leader's log ends below the position for its epoch; the position moved (or resets).
    TruncationDetected {
        tp: TopicPartition,
        truncation: Truncation,
    },
    /// Fetch `tp` from `position` at its leader.
    Fetch {
        tp: TopicPartition,
        position: FetchPosition,
    },
    /// The leader needs these topics' partition counts: answer with [`Consumer::on_metadata`].
    Metadata {
        topics: Vec<String>,
    },
    Rebalance(RebalanceEvent),
    /// A commit's answer, per partition.
    CommitDone {
        commit_id: u64,
        partitions: Vec<(TopicPartition, i16)>,
    },
    WakeAt {
        at_ms: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConsumerError {
    #[error("subscribe and commits need a group.id")]
    NoGroupId,
    #[error("no committed offset and auto.offset.reset=none for {partitions:?}")]
    NoOffsetForPartition { partitions: Vec<TopicPartition> },
    #[error("partition {tp} is not assigned to this consumer")]
    NotAssigned { tp: TopicPartition },
}

/// The member's JoinGroup answer waiting for topic metadata before the leader can assign.
#[derive(Clone, Debug)]
struct PendingLeader {
    protocol_name: String,
    members: Vec<(String, Vec<u8>)>,
}

#[derive(Clone, Debug)]
pub struct Consumer {
    config: ConsumerConfig,
    /// `subscribe`d topics (group management); `None` with `assign`.
    subscription: Option<BTreeSet<String>>,
    positions: Positions,
    member: MemberInfo,
    coordinator_known: bool,
    find_in_flight: bool,
    partitions_per_topic: BTreeMap<String, i32>,
    pending_leader: Option<PendingLeader>,
    next_join_ms: i64,
    next_auto_commit_ms: i64,
    last_app_poll_ms: i64,
    /// Left the group because the application did not poll within `max.poll.interval.ms`.
    left_for_poll_timeout: bool,
    next_commit_id: u64,
    outbox: Vec<Effect>,
}

impl Consumer {
    pub fn new(config: ConsumerConfig, now_ms: i64) -> Self {
        let next_auto_commit_ms = now_ms + config.auto_commit_interval_ms;
        Self {
            config,
            subscription: None,
            positions: Positions::default(),
            member: MemberInfo::default(),
            coordinator_known: false,
            find_in_flight: false,
            partitions_per_topic: BTreeMap::new(),
            pending_leader: None,
            next_join_ms: now_ms,
            next_auto_commit_ms,
            last_app_poll_ms: now_ms,
            left_for_poll_timeout: false,
            next_commit_id: 0,
            outbox: vec![],
        }
    }

    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    pub fn member(&self) -> &MemberInfo {
        &self.member
    }

    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.positions.assignment()
    }

    pub fn position(&self, tp: &TopicPartition) -> Option<FetchPosition> {
        self.positions.position(tp)
    }

    /// Effects produced since the last call.
    pub fn effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.outbox)
    }

    /// Kafka's `subscribe`: join the group for these topics (a change makes the member rejoin).
    pub fn subscribe(&mut self, topics: BTreeSet<String>) -> Result<(), ConsumerError> {
        if self.config.group_id.is_none() {
            return Err(ConsumerError::NoGroupId);
        }
        if self.subscription.as_ref() != Some(&topics) && self.member.state == MemberState::Stable {
            self.member.state = MemberState::Unjoined;
        }
        self.subscription = Some(topics);
        Ok(())
    }

    /// Kafka's `assign`: these partitions, no group management. Positions come from committed offsets when
    /// there is a group, else from `auto.offset.reset`.
    pub fn assign(&mut self, partitions: &[TopicPartition]) {
        self.subscription = None;
        let initial = self.initial_awaiting();
        self.positions.set_assignment(partitions, initial);
    }

    fn initial_awaiting(&self) -> Awaiting {
        if self.config.group_id.is_some() {
            return Awaiting::Committed;
        }
        self.reset_awaiting()
    }

    fn reset_awaiting(&self) -> Awaiting {
        match self.config.auto_offset_reset.list_offsets_timestamp() {
            Some(timestamp) => Awaiting::Reset { timestamp },
            None => Awaiting::NoOffset,
        }
    }

    pub fn seek(&mut self, tp: &TopicPartition, offset: Offset) -> Result<(), ConsumerError> {
        self.positions
            .seek(tp, offset)
            .then_some(())
            .ok_or(ConsumerError::NotAssigned { tp: tp.clone() })
    }

    pub fn seek_to_beginning(&mut self, tp: &TopicPartition) -> Result<(), ConsumerError> {
        self.positions
            .request_reset(tp, -2)
            .then_some(())
            .ok_or(ConsumerError::NotAssigned { tp: tp.clone() })
    }

    pub fn seek_to_end(&mut self, tp: &TopicPartition) -> Result<(), ConsumerError> {
        self.positions
            .request_reset(tp, -1)
            .then_some(())
            .ok_or(ConsumerError::NotAssigned { tp: tp.clone() })
    }

    /// The application's `poll`: auto-commits what earlier polls returned when due, drives the group and the
    /// fetches, and returns buffered records (at most `max.poll.records`).
    pub fn poll(&mut self, now_ms: i64) -> Result<Vec<ConsumerRecord>, ConsumerError> {
        self.last_app_poll_ms = now_ms;
        self.left_for_poll_timeout = false;
        if self.config.enable_auto_commit && now_ms >= self.next_auto_commit_ms {
            self.next_auto_commit_ms = now_ms + self.config.auto_commit_interval_ms;
            self.auto_commit();
        }
        self.tick(now_ms);
        let records = self.positions.poll(self.config.max_poll_records);
        let missing = self.positions.without_offset();
        if records.is_empty() && !missing.is_empty() {
            return Err(ConsumerError::NoOffsetForPartition { partitions: missing });
        }
        Ok(records)
    }

    /// Commits every position (what `poll` returned, KAFKA-2942); returns the commit id.
    pub fn commit(&mut self) -> Option<u64> {
        let offsets = self.positions.all_consumed();
        self.commit_offsets(offsets.into_iter().collect())
    }

    /// Commits these positions (`commitSync(Map)`).
    pub fn commit_offsets(&mut self, offsets: Vec<(TopicPartition, FetchPosition)>) -> Option<u64> {
        let group_id = self.config.group_id.clone()?;
        if offsets.is_empty() {
            return None;
        }
        let (generation_id, member_id) = match self.subscription {
            Some(_) => (self.member.generation_id, self.member.member_id.clone()),
            None => (-1, String::new()),
        };
        self.next_commit_id += 1;
        let request = OffsetCommitRequest {
            group_id,
            generation_id,
            member_id,
            offsets: offsets
                .into_iter()
                .map(|(tp, pos)| CommitOffset {
                    tp,
                    offset: pos.offset,
                    leader_epoch: pos.leader_epoch,
                    metadata: String::new(),
                })
                .collect(),
        };
        self.outbox.push(Effect::OffsetCommit {
            commit_id: self.next_commit_id,
            request,
        });
        Some(self.next_commit_id)
    }

    fn auto_commit(&mut self) {
        let in_group = self.subscription.is_none() || self.member.state == MemberState::Stable;
        if in_group {
            self.commit();
        }
    }

    /// Timers and requests due at `now_ms`: coordinator discovery, joins, heartbeats, the poll timeout,
    /// offset lookups and fetches.
    pub fn tick(&mut self, now_ms: i64) {
        if self.subscription.is_some() {
            self.drive_group(now_ms);
        }
        self.drive_fetches();
        let mut wake = vec![self.next_auto_commit_ms];
        if self.member.state == MemberState::Stable {
            wake.push(self.member.next_heartbeat_ms);
            wake.push(self.last_app_poll_ms + self.config.max_poll_interval_ms + 1);
        }
        if self.member.state == MemberState::Unjoined && self.subscription.is_some() {
            wake.push(self.next_join_ms);
        }
        if let Some(at_ms) = wake.into_iter().filter(|&t| t > now_ms).min() {
            self.outbox.push(Effect::WakeAt { at_ms });
        }
    }

    fn group_id(&self) -> String {
        self.config.group_id.clone().unwrap_or_default()
    }

    fn drive_group(&mut self, now_ms: i64) {
        if !self.coordinator_known {
            if !self.find_in_flight {
                self.find_in_flight = true;
                self.outbox.push(Effect::FindCoordinator {
                    group_id: self.group_id(),
                });
            }
            return;
        }
        let in_group = self.member.generation_id >= 0 || self.member.state != MemberState::Unjoined;
        if in_group && now_ms > self.last_app_poll_ms + self.config.max_poll_interval_ms {
            // `maybeLeaveGroup("consumer poll timeout has expired")`.
            let member_id = self.member.member_id.clone();
            self.outbox.push(Effect::LeaveGroup {
                group_id: self.group_id(),
                member_id,
            });
            self.lose_partitions();
            self.left_for_poll_timeout = true;
            return;
        }
        match self.member.state {
            MemberState::Unjoined if !self.left_for_poll_timeout && now_ms >= self.next_join_ms => self.start_join(),
            MemberState::Stable if !self.member.heartbeat_in_flight && now_ms >= self.member.next_heartbeat_ms => {
                self.member.heartbeat_in_flight = true;
                self.member.next_heartbeat_ms = now_ms + self.config.heartbeat_interval_ms;
                self.outbox.push(Effect::Heartbeat {
                    group_id: self.group_id(),
                    generation_id: self.member.generation_id,
                    member_id: self.member.member_id.clone(),
                });
            }
            _ => {}
        }
    }

    /// `onJoinPrepare` then JoinGroup: an eager member commits and revokes everything first.
    fn start_join(&mut self) {
        if self.member.rebalance_protocol() == RebalanceProtocol::Eager && !self.member.owned.is_empty() {
            if self.config.enable_auto_commit {
                self.commit();
            }
            let partitions = std::mem::take(&mut self.member.owned);
            let generation_id = self.member.generation_id;
            self.outbox.push(Effect::Rebalance(RebalanceEvent::Revoked {
                generation_id,
                partitions,
            }));
            self.positions.set_assignment(&[], Awaiting::Committed);
        }
        let topics = self.subscription.clone().unwrap_or_default();
        let protocols = member::join_protocols(
            &self.config.assignors,
            &topics,
            &self.member.owned,
            self.member.generation_id,
        );
        self.member.state = MemberState::Joining;
        self.outbox.push(Effect::JoinGroup(JoinGroupRequest {
            group_id: self.group_id(),
            member_id: self.member.member_id.clone(),
            client_id: self.config.client_id.clone(),
            client_host: String::new(),
            session_timeout_ms: self.config.session_timeout_ms,
            rebalance_timeout_ms: self.config.max_poll_interval_ms.min(i32::MAX as i64) as i32,
            protocol_type: "consumer".into(),
            protocols,
            require_known_member_id: true,
        }));
    }

    fn drive_fetches(&mut self) {
        let mut committed = vec![];
        for (tp, wants) in self.positions.take_lookups() {
            match wants {
                Awaiting::Committed => committed.push(tp),
                Awaiting::Reset { timestamp } => self.outbox.push(Effect::ListOffsets { tp, timestamp }),
                Awaiting::NoOffset => {}
            }
        }
        if !committed.is_empty() {
            self.outbox.push(Effect::OffsetFetch {
                group_id: self.group_id(),
                partitions: committed,
            });
        }
        for (tp, position, current_leader_epoch) in self.positions.take_validations() {
            self.outbox.push(Effect::OffsetsForLeaderEpoch {
                tp,
                position,
                current_leader_epoch,
            });
        }
        for (tp, position) in self.positions.take_fetchable() {
            self.outbox.push(Effect::Fetch { tp, position });
        }
    }

    /// The member fell out of the group: partitions lost, id and generation forgotten (`onPartitionsLost`).
    fn lose_partitions(&mut self) {
        let partitions = self.member.reset();
        self.pending_leader = None;
        self.positions.set_assignment(&[], Awaiting::Committed);
        if !partitions.is_empty() {
            self.outbox.push(Effect::Rebalance(RebalanceEvent::Lost { partitions }));
        }
    }

    /// Reacts to a group error common to every group answer; true if it was one.
    fn on_group_error(&mut self, code: i16, now_ms: i64) -> bool {
        match code {
            err::NONE => return false,
            err::UNKNOWN_MEMBER_ID | err::ILLEGAL_GENERATION => self.lose_partitions(),
            err::NOT_COORDINATOR | err::COORDINATOR_NOT_AVAILABLE => {
                self.coordinator_known = false;
                self.member.state = MemberState::Unjoined;
            }
            _ => self.member.state = MemberState::Unjoined,
        }
        self.member.heartbeat_in_flight = false;
        self.next_join_ms = now_ms + self.config.retry_backoff_ms;
        true
    }

    pub fn on_coordinator(&mut self, found: bool, now_ms: i64) {
        self.find_in_flight = false;
        self.coordinator_known = found;
        if !found {
            self.next_join_ms = now_ms + self.config.retry_backoff_ms;
        }
    }

    /// The connection to the coordinator broke: find it again; requests on it are lost.
    pub fn on_coordinator_disconnect(&mut self, now_ms: i64) {
        self.on_group_error(err::NOT_COORDINATOR, now_ms);
    }

    pub fn on_metadata(&mut self, partitions_per_topic: &BTreeMap<String, i32>) {
        for (t, n) in partitions_per_topic {
            self.partitions_per_topic.insert(t.clone(), *n);
        }
        if let Some(p) = self.pending_leader.take() {
            self.leader_sync(p);
        }
    }

    pub fn on_join(&mut self, resp: &JoinGroupResponse, now_ms: i64) {
        if self.member.state != MemberState::Joining {
            return;
        }
        if resp.error_code == err::MEMBER_ID_REQUIRED {
            self.member.member_id = resp.member_id.clone();
            self.member.state = MemberState::Unjoined;
            self.next_join_ms = now_ms;
            return;
        }
        if self.on_group_error(resp.error_code, now_ms) {
            return;
        }
        self.member.member_id = resp.member_id.clone();
        self.member.generation_id = resp.generation_id;
        self.member.protocol_name = resp.protocol_name.clone();
        self.member.state = MemberState::Syncing;
        if resp.leader == resp.member_id {
            let members: Vec<(String, Vec<u8>)> = resp
                .members
                .iter()
                .map(|m| (m.member_id.clone(), m.metadata.clone()))
                .collect();
            let p = PendingLeader {
                protocol_name: resp.protocol_name.clone().unwrap_or_default(),
                members,
            };
            let topics = member::group_topics(&p.members);
            self.pending_leader = Some(p);
            self.outbox.push(Effect::Metadata {
                topics: topics.into_iter().collect(),
            });
        } else {
            self.send_sync(vec![]);
        }
    }

    fn leader_sync(&mut self, p: PendingLeader) {
        if self.member.state != MemberState::Syncing {
            return;
        }
        let assignments = member::leader_assignment(&p.protocol_name, &p.members, &self.partitions_per_topic);
        self.send_sync(assignments);
    }

    fn send_sync(&mut self, assignments: Vec<(String, Vec<u8>)>) {
        self.outbox.push(Effect::SyncGroup(SyncGroupRequest {
            group_id: self.group_id(),
            generation_id: self.member.generation_id,
            member_id: self.member.member_id.clone(),
            protocol_type: Some("consumer".into()),
            protocol_name: self.member.protocol_name.clone(),
            assignments,
        }));
    }

    /// `onJoinComplete`: eager members take the new assignment; cooperative ones revoke what they lost first
    /// and rejoin at once if they revoked anything (KIP-429).
    pub fn on_sync(&mut self, resp: &SyncGroupResponse, now_ms: i64) {
        if self.member.state != MemberState::Syncing || self.on_group_error(resp.error_code, now_ms) {
            return;
        }
        let assigned = decode_assignment(&resp.assignment).unwrap_or_default();
        let generation_id = self.member.generation_id;
        let (revoked, added) = diff(&self.member.owned, &assigned);
        if !revoked.is_empty() {
            if self.config.enable_auto_commit {
                let consumed = self.positions.all_consumed();
                let offsets = revoked
                    .iter()
                    .filter_map(|tp| Some((tp.clone(), *consumed.get(tp)?)))
                    .collect();
                self.commit_offsets(offsets);
            }
            self.outbox.push(Effect::Rebalance(RebalanceEvent::Revoked {
                generation_id,
                partitions: revoked.clone(),
            }));
        }
        self.member.owned = assigned.clone();
        self.positions.set_assignment(&assigned, Awaiting::Committed);
        self.outbox.push(Effect::Rebalance(RebalanceEvent::Assigned {
            generation_id,
            partitions: added,
        }));
        let cooperative = self.member.rebalance_protocol() == RebalanceProtocol::Cooperative;
        self.member.state = if cooperative && !revoked.is_empty() {
            MemberState::Unjoined
        } else {
            MemberState::Stable
        };
        self.next_join_ms = now_ms;
        self.member.next_heartbeat_ms = now_ms + self.config.heartbeat_interval_ms;
    }

    pub fn on_heartbeat(&mut self, error_code: i16, now_ms: i64) {
        self.member.heartbeat_in_flight = false;
        if error_code == err::REBALANCE_IN_PROGRESS {
            if self.member.state == MemberState::Stable {
                self.member.state = MemberState::Unjoined;
                self.next_join_ms = now_ms;
            }
            return;
        }
        self.on_group_error(error_code, now_ms);
    }

    pub fn on_offset_fetch(&mut self, resp: &OffsetFetchResponse, requested: &[TopicPartition]) {
        let reset = self.config.auto_offset_reset.list_offsets_timestamp();
        if resp.error_code != err::NONE {
            for tp in requested {
                self.positions.on_lookup_failed(tp);
            }
            return;
        }
        for o in &resp.offsets {
            if o.error_code != err::NONE {
                self.positions.on_lookup_failed(&o.tp);
                continue;
            }
            let committed = (o.offset >= 0).then_some(FetchPosition {
                offset: o.offset,
                leader_epoch: o.leader_epoch,
            });
            self.positions.on_committed(&o.tp, committed, reset);
        }
    }

    pub fn on_list_offsets(&mut self, tp: &TopicPartition, timestamp: i64, result: Result<(Offset, LeaderEpoch), i16>) {
        match result {
            Ok((offset, leader_epoch)) => self.positions.on_list_offsets(tp, timestamp, offset, leader_epoch),
            Err(_) => self.positions.on_lookup_failed(tp),
        }
    }

    /// Metadata shows `tp`'s leader at `current_leader_epoch` (KIP-320): returns whether the position now
    /// awaits validation, in which case a fetch about to go out must not ([`Consumer::cancel_fetch`]).
    pub fn on_leader_epoch(&mut self, tp: &TopicPartition, current_leader_epoch: LeaderEpoch) -> bool {
        self.positions.on_leader_epoch(tp, current_leader_epoch)
    }

    /// A fetch the core asked for was not sent.
    pub fn cancel_fetch(&mut self, tp: &TopicPartition, fetch_offset: Offset) {
        self.positions.cancel_fetch(tp, fetch_offset);
    }

    /// The leader's OffsetsForLeaderEpoch answer for `validated` (see [`Positions::on_epoch_end_offset`]);
    /// a truncation is reported as [`Effect::TruncationDetected`].
    pub fn on_epoch_end_offset(
        &mut self,
        tp: &TopicPartition,
        validated: FetchPosition,
        result: Result<(LeaderEpoch, Offset), i16>,
    ) {
        let reset = self.config.auto_offset_reset.list_offsets_timestamp();
        if let Some(truncation) = self.positions.on_epoch_end_offset(tp, validated, result, reset) {
            self.outbox.push(Effect::TruncationDetected {
                tp: tp.clone(),
                truncation,
            });
        }
    }

    /// A Fetch answer for `tp` from `fetch_offset`; returns an error code the shell acts on (metadata refresh).
    pub fn on_fetch(&mut self, tp: &TopicPartition, fetch_offset: Offset, result: FetchResult) -> Option<i16> {
        let reset = self.config.auto_offset_reset.list_offsets_timestamp();
        self.positions.on_fetch(tp, fetch_offset, result, reset)
    }

    pub fn on_commit(&mut self, commit_id: u64, partitions: Vec<(TopicPartition, i16)>, now_ms: i64) {
        let worst = partitions.iter().map(|(_, c)| *c).find(|&c| c != err::NONE);
        self.outbox.push(Effect::CommitDone { commit_id, partitions });
        if self.subscription.is_none() {
            return;
        }
        match worst {
            Some(code @ (err::UNKNOWN_MEMBER_ID | err::ILLEGAL_GENERATION)) => {
                self.on_group_error(code, now_ms);
            }
            Some(err::REBALANCE_IN_PROGRESS) if self.member.state == MemberState::Stable => {
                self.member.state = MemberState::Unjoined;
            }
            Some(code @ (err::NOT_COORDINATOR | err::COORDINATOR_NOT_AVAILABLE)) => {
                self.on_group_error(code, now_ms);
            }
            _ => {}
        }
    }
}
