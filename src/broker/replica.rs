//! The broker's replicas: which partitions it leads (a [`LeaderState`] per tenure) and which it follows;
//! the replica fetcher's requests and responses as data for the node shell; AlterPartition proposals; the
//! `replication-offset-checkpoint` (Kafka's `ReplicaManager` and `ReplicaFetcherThread`, minus the IO).

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId as WireBrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::{partition_error, Broker, Failure};
use crate::log::checkpoint::{read_offsets, write_offsets};
use crate::log::{Disk, LogError};
use crate::protocol::errors::code;
use crate::replication::{
    follower_high_watermark, truncation_offset, AlterPartitionOutcome, EpochEndOffset, IsrMember, LeaderState,
    ReplicaEligibility, WaitStatus,
};
use crate::types::{BrokerId, LeaderEpoch, PartitionEpoch, TopicPartition};

/// Kafka's per-log-dir file of high watermarks.
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
/// The mark of a follower that cut a divergent tail after a leader change (KIP-101).
pub const FOLLOWER_TRUNCATED_MARK: &str = "follower-truncated-divergent-tail";
/// A follower whose fetch offset fell below the leader's log start offset started over there.
pub const FOLLOWER_STARTED_OVER_MARK: &str = "follower-started-over-at-leader-log-start";

/// This broker's role for one partition it hosts.
#[derive(Debug, Clone)]
pub(super) enum Role {
    Leader(Box<LeaderState>),
    Follower {
        leader: BrokerId,
        leader_epoch: LeaderEpoch,
        high_watermark: i64,
    },
}

impl Role {
    pub(super) fn high_watermark(&self) -> i64 {
        match self {
            Role::Leader(l) => l.high_watermark(),
            Role::Follower { high_watermark, .. } => *high_watermark,
        }
    }
}

/// One partition the replica fetcher asks its leader for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTarget {
    pub tp: TopicPartition,
    pub leader_epoch: LeaderEpoch,
    pub fetch_offset: i64,
    /// The epoch of the last batch in the follower's log (-1: none), for the leader's divergence check.
    pub last_fetched_epoch: i32,
}

/// What to fetch from one leader broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPlan {
    pub leader: BrokerId,
    pub host: String,
    pub port: u16,
    pub partitions: Vec<FetchTarget>,
}

/// One partition's AlterPartition proposal, to send to the active controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionItem {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    pub new_isr: Vec<IsrMember>,
}

/// The controller's answer for one partition (error `NONE`: the state after the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionAnswer {
    pub topic_id: Uuid,
    pub partition: i32,
    pub error: i16,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
    pub isr: Vec<BrokerId>,
}

impl Broker {
    /// Brings every hosted partition's role in line with the image (Kafka's `makeLeader`/`makeFollower`).
    pub(super) fn sync_roles(&mut self, disk: &mut dyn Disk, now_ms: i64) -> Result<(), LogError> {
        let me = self.config.node_id;
        let eligibility: BTreeMap<BrokerId, ReplicaEligibility> = self
            .image
            .brokers
            .values()
            .map(|b| {
                let e = ReplicaEligibility {
                    broker_epoch: b.epoch,
                    fenced: b.fenced,
                    in_controlled_shutdown: b.in_controlled_shutdown,
                };
                (b.id, e)
            })
            .collect();
        let mine: Vec<_> = self
            .image
            .partitions_of(me)
            .into_iter()
            .map(|(tp, _, p)| (tp, p.clone()))
            .collect();
        let lag_ms = self.config.replica_lag_time_max_ms;
        let mut roles = BTreeMap::new();
        for (tp, part) in mine {
            let Some(log) = self.logs.get_mut(&tp) else { continue };
            let leo = log.log_end_offset();
            let prev = self.replicas.remove(&tp);
            let hw = prev
                .as_ref()
                .map(Role::high_watermark)
                .or_else(|| self.checkpointed_hw.get(&tp).copied())
                .unwrap_or(0);
            let hw = follower_high_watermark(hw, log.log_start_offset(), leo);
            let role = if part.leader == me {
                match prev {
                    Some(Role::Leader(mut l)) if l.leader_epoch() == part.leader_epoch => {
                        l.set_eligibility(eligibility.clone());
                        l.update_committed(part.partition_epoch, part.replicas.clone(), part.isr.clone(), now_ms);
                        Role::Leader(l)
                    }
                    _ => {
                        if part.replicas.len() > 1 && log.latest_epoch().is_none_or(|e| e < part.leader_epoch) {
                            log.maybe_assign_epoch_start_offset(disk, part.leader_epoch, leo)?;
                        }
                        let mut l = LeaderState::new(
                            me,
                            part.leader_epoch,
                            part.partition_epoch,
                            part.replicas.clone(),
                            part.isr.clone(),
                            leo,
                            hw,
                            now_ms,
                            lag_ms,
                        );
                        l.set_eligibility(eligibility.clone());
                        l.maybe_increment_high_watermark(now_ms);
                        Role::Leader(Box::new(l))
                    }
                }
            } else {
                Role::Follower {
                    leader: part.leader,
                    leader_epoch: part.leader_epoch,
                    high_watermark: hw,
                }
            };
            roles.insert(tp, role);
        }
        self.replicas = roles;
        Ok(())
    }

    /// The partition's high watermark as this replica knows it.
    pub(super) fn high_watermark(&self, tp: &TopicPartition) -> i64 {
        self.replicas.get(tp).map_or(0, Role::high_watermark)
    }

    /// The committed ISR as this broker knows it (a leader may know a newer one than its image).
    pub(super) fn known_isr(&self, tp: &TopicPartition) -> Option<Vec<BrokerId>> {
        match self.replicas.get(tp)? {
            Role::Leader(l) => Some(l.isr().to_vec()),
            Role::Follower { .. } => None,
        }
    }

    /// `min.insync.replicas` of the partition's topic (topic config over the broker's).
    pub(super) fn min_insync_replicas(&self, tp: &TopicPartition) -> usize {
        self.image
            .topic(&tp.topic)
            .and_then(|t| t.configs.get("min.insync.replicas"))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(self.config.min_insync_replicas.max(1) as usize)
    }

    /// How a waiting acks=all produce on `tp` stands (Kafka's `checkEnoughReplicasReachOffset`).
    pub(super) fn acks_status(&self, tp: &TopicPartition, required_offset: i64, epoch: LeaderEpoch) -> WaitStatus {
        match self.replicas.get(tp) {
            Some(Role::Leader(l)) if l.leader_epoch() == epoch => {
                l.acks_all_status(required_offset, self.min_insync_replicas(tp))
            }
            _ => WaitStatus::Done(code::NOT_LEADER_OR_FOLLOWER),
        }
    }

    pub(super) fn leader_state_mut(&mut self, tp: &TopicPartition) -> Option<&mut LeaderState> {
        match self.replicas.get_mut(tp)? {
            Role::Leader(l) => Some(l),
            Role::Follower { .. } => None,
        }
    }

    /// The `isr-expiration` task and a high watermark check (the shell calls it every
    /// `replica.lag.time.max.ms / 2` and more often is harmless). Returns whether any HW moved.
    pub fn tick_replication(&mut self, now_ms: i64) -> bool {
        let mut moved = false;
        for role in self.replicas.values_mut() {
            if let Role::Leader(l) = role {
                l.maybe_shrink_isr(now_ms);
                moved |= l.maybe_increment_high_watermark(now_ms);
            }
        }
        moved
    }

    /// What the replica fetcher should ask each leader for now, by leader (empty for a single broker).
    pub fn replica_fetch_plans(&self) -> Vec<FetchPlan> {
        let mut by_leader: BTreeMap<BrokerId, Vec<FetchTarget>> = BTreeMap::new();
        for (tp, role) in &self.replicas {
            let Role::Follower {
                leader, leader_epoch, ..
            } = role
            else {
                continue;
            };
            let Some(log) = self.logs.get(tp) else { continue };
            if *leader < 0 || !self.image.brokers.contains_key(leader) {
                continue;
            }
            by_leader.entry(*leader).or_default().push(FetchTarget {
                tp: tp.clone(),
                leader_epoch: *leader_epoch,
                fetch_offset: log.log_end_offset(),
                last_fetched_epoch: log.latest_epoch().unwrap_or(-1),
            });
        }
        by_leader
            .into_iter()
            .filter_map(|(leader, partitions)| {
                let b = self.image.brokers.get(&leader)?;
                Some(FetchPlan {
                    leader,
                    host: b.host.clone(),
                    port: b.port,
                    partitions,
                })
            })
            .collect()
    }

    /// The Fetch v12 request of `plan` (`replica_id` = this broker, `replica.fetch.*` settings).
    pub fn replica_fetch_request(&self, plan: &FetchPlan) -> FetchRequest {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for t in &plan.partitions {
            let p = FetchPartition::default()
                .with_partition(t.tp.partition)
                .with_current_leader_epoch(t.leader_epoch)
                .with_fetch_offset(t.fetch_offset)
                .with_last_fetched_epoch(t.last_fetched_epoch)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(self.config.replica_fetch_max_bytes);
            match topics.iter_mut().find(|x| x.topic.0.as_str() == t.tp.topic) {
                Some(x) => x.partitions.push(p),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(t.tp.topic.clone())))
                        .with_partitions(vec![p]),
                ),
            }
        }
        FetchRequest::default()
            .with_replica_id(WireBrokerId(self.config.node_id))
            .with_max_wait_ms(self.config.replica_fetch_wait_max_ms)
            .with_min_bytes(self.config.replica_fetch_min_bytes)
            .with_max_bytes(i32::MAX)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics)
    }

    /// Applies a leader's answer to the fetch of `plan` (Kafka's `processPartitionData` and truncation on
    /// fetch): appends the records as they are, truncates a divergent tail, takes the leader's high
    /// watermark. A partition whose role, leader epoch or log end changed since the plan is skipped.
    /// `Err` is a storage failure: the broker is offline.
    pub fn apply_replica_fetch(
        &mut self,
        disk: &mut dyn Disk,
        plan: &FetchPlan,
        response: &FetchResponse,
        now_ms: i64,
    ) -> Result<(), String> {
        for t in &response.responses {
            for p in &t.partitions {
                let tp = TopicPartition::new(t.topic.0.to_string(), p.partition_index);
                let Some(target) = plan.partitions.iter().find(|x| x.tp == tp) else {
                    continue;
                };
                let r = self.apply_partition_fetch(disk, plan.leader, target, p, now_ms);
                if let Err(Failure::Storage(reason)) = r {
                    self.offline.get_or_insert_with(|| reason.clone());
                    return Err(reason);
                }
            }
        }
        Ok(())
    }

    fn apply_partition_fetch(
        &mut self,
        disk: &mut dyn Disk,
        leader: BrokerId,
        target: &FetchTarget,
        p: &kafka_protocol::messages::fetch_response::PartitionData,
        now_ms: i64,
    ) -> Result<(), Failure> {
        let tp = &target.tp;
        let current = matches!(self.replicas.get(tp),
            Some(Role::Follower { leader: l, leader_epoch: e, .. }) if *l == leader && *e == target.leader_epoch);
        let Some(log) = self.logs.get_mut(tp) else {
            return Ok(());
        };
        if !current || log.log_end_offset() != target.fetch_offset {
            return Ok(());
        }
        if p.error_code == code::OFFSET_OUT_OF_RANGE && p.log_start_offset > log.log_end_offset() {
            // The leader's log starts past ours (Kafka's `fetchOffsetAndTruncate`): start over there.
            log.truncate_fully_and_start_at(disk, p.log_start_offset)
                .map_err(|e| storage(&e))?;
            self.marks.push(FOLLOWER_STARTED_OVER_MARK);
            // The high watermark moves up to the new log start with it (KAFKA-9491's fix); the `[bugs]`
            // switch KAFKA-9491 brings the defect back, leaving it below the log start until the next fetch.
            if !self.config.bugs.kafka_9491 {
                if let Some(Role::Follower { high_watermark, .. }) = self.replicas.get_mut(tp) {
                    *high_watermark = (*high_watermark).max(p.log_start_offset);
                }
            }
        }
        if p.error_code != code::NONE {
            return Ok(());
        }
        let div = p.diverging_epoch.clone();
        if div.epoch >= 0 || div.end_offset >= 0 {
            let diverging = EpochEndOffset {
                leader_epoch: div.epoch,
                end_offset: div.end_offset,
            };
            let own = log.end_offset_for_epoch(diverging.leader_epoch);
            if let Some(offset) = truncation_offset(diverging, own, log.log_end_offset()) {
                if offset < log.log_end_offset() {
                    self.logs.truncate_to(disk, tp, offset).map_err(|e| storage(&e))?;
                    self.marks.push(FOLLOWER_TRUNCATED_MARK);
                }
            }
        } else if let Some(records) = p.records.as_ref().filter(|r| !r.is_empty()) {
            let records: &Bytes = records;
            if let Err(e) = log.append_as_follower(disk, records, now_ms) {
                partition_error(&e)?;
                tracing::warn!(broker = self.config.node_id, "{tp}: follower append refused: {e}");
                return Ok(());
            }
        }
        let leo = self.logs.get(tp).map_or(0, |l| l.log_end_offset());
        let mut follower_hw = None;
        if let Some(Role::Follower { high_watermark, .. }) = self.replicas.get_mut(tp) {
            let leader_hw = if p.high_watermark >= 0 {
                p.high_watermark
            } else {
                *high_watermark
            };
            let start = self.logs.get(tp).map_or(0, |l| l.log_start_offset());
            *high_watermark = follower_high_watermark(leader_hw.max(*high_watermark), start, leo);
            follower_hw = Some(*high_watermark);
        }
        // The follower takes the leader's log start offset (Kafka's `processPartitionData`: after the high
        // watermark, `maybeIncrementLogStartOffset(leaderLogStartOffset)`), bounded by its own high watermark.
        let start = self.logs.get(tp).map_or(0, |l| l.log_start_offset());
        if let Some(hw) = follower_hw.filter(|_| p.log_start_offset > start) {
            let new_start = p.log_start_offset.min(hw);
            if new_start > start {
                self.logs
                    .increment_log_start_offset(disk, tp, new_start, hw)
                    .map_err(|e| storage(&e))?;
            }
        }
        Ok(())
    }

    /// The AlterPartition proposals to send now (each is marked sent).
    pub fn take_alter_partitions(&mut self) -> Vec<AlterPartitionItem> {
        let ids: BTreeMap<String, Uuid> = self.image.topics.iter().map(|(n, t)| (n.clone(), t.topic_id)).collect();
        let mut out = Vec::new();
        for (tp, role) in &mut self.replicas {
            let Role::Leader(l) = role else { continue };
            let Some(topic_id) = ids.get(&tp.topic) else { continue };
            if let Some(p) = l.take_proposal() {
                out.push(AlterPartitionItem {
                    tp: tp.clone(),
                    topic_id: *topic_id,
                    leader_epoch: l.leader_epoch(),
                    partition_epoch: l.partition_epoch(),
                    new_isr: p.isr,
                });
            }
        }
        out
    }

    /// Sending `items` failed (no controller answered, NOT_CONTROLLER, STALE_BROKER_EPOCH): they are sent
    /// again later.
    pub fn alter_partitions_unsent(&mut self, items: &[AlterPartitionItem]) {
        for item in items {
            if let Some(l) = self.leader_state_mut(&item.tp) {
                l.proposal_unsent();
            }
        }
    }

    /// The controller's answers to `items` (Kafka's `handleAlterPartitionUpdate`).
    pub fn alter_partitions_answered(
        &mut self,
        items: &[AlterPartitionItem],
        answers: &[AlterPartitionAnswer],
        now_ms: i64,
    ) {
        for item in items {
            let answer = answers
                .iter()
                .find(|a| a.topic_id == item.topic_id && a.partition == item.tp.partition);
            let outcome = match answer {
                Some(a) if a.error == code::NONE => AlterPartitionOutcome::Committed {
                    leader_epoch: a.leader_epoch,
                    partition_epoch: a.partition_epoch,
                    isr: a.isr.clone(),
                },
                Some(a) => AlterPartitionOutcome::Rejected(a.error),
                None => AlterPartitionOutcome::Rejected(code::UNKNOWN_SERVER_ERROR),
            };
            let Some(l) = self.leader_state_mut(&item.tp) else {
                continue;
            };
            // The isr-shrunk / isr-expanded marks are counted from the controllers' metadata trace.
            l.on_alter_partition(outcome, now_ms);
        }
    }

    /// Reads `replication-offset-checkpoint` (startup).
    pub(super) fn load_high_watermarks(&mut self, disk: &mut dyn Disk) -> Result<(), LogError> {
        self.checkpointed_hw = read_offsets(disk, REPLICATION_OFFSET_CHECKPOINT)?;
        Ok(())
    }

    /// Writes every hosted partition's high watermark to `replication-offset-checkpoint`.
    pub(super) fn checkpoint_high_watermarks(&mut self, disk: &mut dyn Disk) -> Result<(), LogError> {
        let hws: BTreeMap<TopicPartition, i64> = self
            .replicas
            .iter()
            .map(|(tp, r)| (tp.clone(), r.high_watermark()))
            .collect();
        write_offsets(disk, REPLICATION_OFFSET_CHECKPOINT, &hws)
    }
}

pub(super) fn storage(e: &LogError) -> Failure {
    match partition_error(e) {
        Err(f) => f,
        Ok(_) => Failure::Storage(format!("log dir failed: {e}")),
    }
}
