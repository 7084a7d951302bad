//! A partition leader's replication state (Kafka's `Partition` as leader, with one `Replica` per follower).

use std::collections::BTreeMap;

use crate::types::{BrokerId, LeaderEpoch, PartitionEpoch};

use super::purgatory::WaitStatus;
use super::UNKNOWN_OFFSET;
use crate::protocol::errors::code;

/// A member of a proposed ISR with its broker epoch (KIP-903; -1 unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsrMember {
    pub broker_id: BrokerId,
    pub broker_epoch: i64,
}

/// What the metadata image says of a broker, for ISR eligibility (KIP-841, KIP-903).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaEligibility {
    pub broker_epoch: i64,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

impl ReplicaEligibility {
    fn eligible(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }
}

/// `lastCaughtUpTimeMs` of a follower that never caught up (Kafka's 0, far enough in the past on any clock).
const NEVER_MS: i64 = i64::MIN / 4;

/// The leader's view of one follower (Kafka's `ReplicaState`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerReplica {
    pub broker_id: BrokerId,
    /// The follower's fetch offset, as its last fetch reported it ([`UNKNOWN_OFFSET`] before any).
    pub log_end_offset: i64,
    /// Kafka's `lastCaughtUpTimeMs`: the last time the follower was known to have the leader's log end.
    pub last_caught_up_time_ms: i64,
    /// The leader's log end offset when the follower last fetched, and when that was.
    pub last_fetch_leader_log_end_offset: i64,
    pub last_fetch_time_ms: i64,
}

impl FollowerReplica {
    /// `makeLeader` resets every follower: ISR members count as caught up now, the others never were.
    fn reset(broker_id: BrokerId, in_isr: bool, now_ms: i64) -> Self {
        Self {
            broker_id,
            log_end_offset: UNKNOWN_OFFSET,
            last_caught_up_time_ms: if in_isr { now_ms } else { NEVER_MS },
            last_fetch_leader_log_end_offset: UNKNOWN_OFFSET,
            last_fetch_time_ms: NEVER_MS,
        }
    }

    /// Kafka's `ReplicaState.isCaughtUp`.
    pub fn is_caught_up(&self, leader_log_end_offset: i64, now_ms: i64, lag_max_ms: i64) -> bool {
        self.log_end_offset == leader_log_end_offset || now_ms.saturating_sub(self.last_caught_up_time_ms) <= lag_max_ms
    }

    /// Kafka's `Replica.updateFetchStateOrThrow`.
    fn update_fetch(&mut self, fetch_offset: i64, leader_log_end_offset: i64, now_ms: i64) {
        if fetch_offset >= leader_log_end_offset {
            self.last_caught_up_time_ms = self.last_caught_up_time_ms.max(now_ms);
        } else if fetch_offset >= self.last_fetch_leader_log_end_offset {
            self.last_caught_up_time_ms = self.last_caught_up_time_ms.max(self.last_fetch_time_ms);
        }
        self.log_end_offset = fetch_offset;
        self.last_fetch_leader_log_end_offset = leader_log_end_offset;
        self.last_fetch_time_ms = now_ms;
    }
}

/// Why an ISR change was proposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IsrChange {
    Expand(BrokerId),
    Shrink(Vec<BrokerId>),
}

/// An AlterPartition in flight (Kafka's `PendingExpandIsr` / `PendingShrinkIsr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposedIsr {
    pub isr: Vec<IsrMember>,
    pub change: IsrChange,
    /// Handed to the shell to send (cleared when sending failed, so it is sent again).
    pub sent: bool,
}

/// The controller's answer to an AlterPartition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlterPartitionOutcome {
    /// The partition's state after the request (the change committed, or it was already so).
    Committed {
        leader_epoch: LeaderEpoch,
        partition_epoch: PartitionEpoch,
        isr: Vec<BrokerId>,
    },
    /// Refused (FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION, INELIGIBLE_REPLICA, ...): the proposal is dropped
    /// and the leader proposes again from its committed state.
    Rejected(i16),
}

/// One partition, led by this broker, in one leader epoch (a tenure).
#[derive(Clone, Debug)]
pub struct LeaderState {
    leader_id: BrokerId,
    leader_epoch: LeaderEpoch,
    partition_epoch: PartitionEpoch,
    /// The leader's log end offset when this epoch began (KAFKA-7128).
    epoch_start_offset: i64,
    replicas: Vec<BrokerId>,
    /// The ISR the controller committed.
    isr: Vec<BrokerId>,
    pending: Option<ProposedIsr>,
    followers: BTreeMap<BrokerId, FollowerReplica>,
    eligibility: BTreeMap<BrokerId, ReplicaEligibility>,
    log_end_offset: i64,
    high_watermark: i64,
    lag_max_ms: i64,
}

impl LeaderState {
    /// Kafka's `Partition.makeLeader`: the epoch starts at the log end offset; the high watermark carries
    /// over (clamped to the log end), every follower's state is reset.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        leader_id: BrokerId,
        leader_epoch: LeaderEpoch,
        partition_epoch: PartitionEpoch,
        replicas: Vec<BrokerId>,
        isr: Vec<BrokerId>,
        log_end_offset: i64,
        high_watermark: i64,
        now_ms: i64,
        lag_max_ms: i64,
    ) -> Self {
        let followers = replicas
            .iter()
            .filter(|r| **r != leader_id)
            .map(|r| (*r, FollowerReplica::reset(*r, isr.contains(r), now_ms)))
            .collect();
        let mut s = Self {
            leader_id,
            leader_epoch,
            partition_epoch,
            epoch_start_offset: log_end_offset,
            replicas,
            isr,
            pending: None,
            followers,
            eligibility: BTreeMap::new(),
            log_end_offset,
            high_watermark: high_watermark.clamp(0, log_end_offset.max(0)),
            lag_max_ms,
        };
        s.maybe_increment_high_watermark(now_ms);
        s
    }

    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.leader_epoch
    }

    pub fn partition_epoch(&self) -> PartitionEpoch {
        self.partition_epoch
    }

    pub fn epoch_start_offset(&self) -> i64 {
        self.epoch_start_offset
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    /// The committed ISR.
    pub fn isr(&self) -> &[BrokerId] {
        &self.isr
    }

    pub fn pending(&self) -> Option<&ProposedIsr> {
        self.pending.as_ref()
    }

    pub fn follower(&self, id: BrokerId) -> Option<&FollowerReplica> {
        self.followers.get(&id)
    }

    /// The committed ISR plus a pending addition; a pending shrink does not count until committed (KIP-497).
    pub fn maximal_isr(&self) -> Vec<BrokerId> {
        let mut out = self.isr.clone();
        if let Some(ProposedIsr {
            change: IsrChange::Expand(id),
            ..
        }) = &self.pending
        {
            if !out.contains(id) {
                out.push(*id);
            }
        }
        out
    }

    /// The brokers' epochs and states from the metadata image.
    pub fn set_eligibility(&mut self, eligibility: BTreeMap<BrokerId, ReplicaEligibility>) {
        self.eligibility = eligibility;
    }

    fn eligible(&self, id: BrokerId) -> bool {
        self.eligibility.get(&id).is_some_and(ReplicaEligibility::eligible)
    }

    /// A newer committed state from the metadata image (same leader epoch): taken if its partition epoch is
    /// not older; a newer one ends any proposal in flight. Returns whether the high watermark moved.
    pub fn update_committed(
        &mut self,
        partition_epoch: PartitionEpoch,
        replicas: Vec<BrokerId>,
        isr: Vec<BrokerId>,
        now_ms: i64,
    ) -> bool {
        if partition_epoch < self.partition_epoch {
            return false;
        }
        if partition_epoch > self.partition_epoch {
            self.pending = None;
        }
        for r in &replicas {
            if *r != self.leader_id && !self.followers.contains_key(r) {
                self.followers.insert(*r, FollowerReplica::reset(*r, false, now_ms));
            }
        }
        self.followers.retain(|id, _| replicas.contains(id));
        self.partition_epoch = partition_epoch;
        self.replicas = replicas;
        self.isr = isr;
        self.maybe_increment_high_watermark(now_ms)
    }

    /// The leader appended: its log end offset is now `log_end_offset`. Returns whether the HW moved.
    pub fn on_leader_append(&mut self, log_end_offset: i64, now_ms: i64) -> bool {
        assert!(
            log_end_offset >= self.log_end_offset,
            "a leader's log end offset went back: {} -> {log_end_offset}",
            self.log_end_offset
        );
        self.log_end_offset = log_end_offset;
        self.maybe_increment_high_watermark(now_ms)
    }

    /// A follower fetched at `fetch_offset` (its log end offset; the caller has checked it is within the
    /// leader's log and that no divergence was found). Updates its state, maybe proposes adding it to the ISR
    /// and maybe advances the high watermark (returned: whether it moved). `None`: not a follower here.
    pub fn update_follower_fetch(&mut self, follower: BrokerId, fetch_offset: i64, now_ms: i64) -> Option<bool> {
        assert!(
            fetch_offset <= self.log_end_offset,
            "follower {follower} fetched at {fetch_offset} beyond the leader's log end {}",
            self.log_end_offset
        );
        let leo = self.log_end_offset;
        self.followers
            .get_mut(&follower)?
            .update_fetch(fetch_offset, leo, now_ms);
        self.maybe_expand_isr(follower);
        Some(self.maybe_increment_high_watermark(now_ms))
    }

    /// Kafka's `isFollowerInSync` plus `isReplicaIsrEligible`: the follower has the high watermark and the
    /// start of this leader epoch (KAFKA-7128), and is neither fenced nor shutting down (KIP-841).
    fn can_join_isr(&self, f: &FollowerReplica) -> bool {
        f.log_end_offset >= 0
            && f.log_end_offset >= self.high_watermark
            && f.log_end_offset >= self.epoch_start_offset
            && self.eligible(f.broker_id)
    }

    fn maybe_expand_isr(&mut self, follower: BrokerId) {
        if self.pending.is_some() || self.isr.contains(&follower) {
            return;
        }
        let Some(f) = self.followers.get(&follower) else { return };
        if !self.can_join_isr(f) {
            return;
        }
        let mut isr = self.isr.clone();
        isr.push(follower);
        self.propose(isr, IsrChange::Expand(follower));
    }

    /// Kafka's `maybeShrinkIsr` (the `isr-expiration` task, every `replica.lag.time.max.ms / 2`): followers
    /// not caught up within `replica.lag.time.max.ms` leave the ISR — once the controller commits it.
    /// Returns whether a shrink was proposed.
    pub fn maybe_shrink_isr(&mut self, now_ms: i64) -> bool {
        if self.pending.is_some() {
            return false;
        }
        let leo = self.log_end_offset;
        let out_of_sync: Vec<BrokerId> = self
            .isr
            .iter()
            .filter(|id| **id != self.leader_id)
            .filter(|id| {
                self.followers
                    .get(id)
                    .is_none_or(|f| !f.is_caught_up(leo, now_ms, self.lag_max_ms))
            })
            .copied()
            .collect();
        if out_of_sync.is_empty() {
            return false;
        }
        let isr = self
            .isr
            .iter()
            .filter(|id| !out_of_sync.contains(id))
            .copied()
            .collect();
        self.propose(isr, IsrChange::Shrink(out_of_sync));
        true
    }

    fn propose(&mut self, isr: Vec<BrokerId>, change: IsrChange) {
        let isr = isr
            .into_iter()
            .map(|broker_id| IsrMember {
                broker_id,
                broker_epoch: self.eligibility.get(&broker_id).map_or(-1, |e| e.broker_epoch),
            })
            .collect();
        self.pending = Some(ProposedIsr {
            isr,
            change,
            sent: false,
        });
    }

    /// The proposal to send now, if one waits (it is marked sent).
    pub fn take_proposal(&mut self) -> Option<ProposedIsr> {
        let p = self.pending.as_mut().filter(|p| !p.sent)?;
        p.sent = true;
        Some(p.clone())
    }

    /// Sending the proposal failed (no controller answered): send it again later.
    pub fn proposal_unsent(&mut self) {
        if let Some(p) = &mut self.pending {
            p.sent = false;
        }
    }

    /// The controller answered the proposal in flight (Kafka's `handleAlterPartitionUpdate`). Returns whether
    /// the high watermark moved.
    pub fn on_alter_partition(&mut self, outcome: AlterPartitionOutcome, now_ms: i64) -> bool {
        match outcome {
            AlterPartitionOutcome::Committed {
                leader_epoch,
                partition_epoch,
                isr,
            } => {
                if leader_epoch != self.leader_epoch || partition_epoch < self.partition_epoch {
                    // Stale: the metadata image will tell what happened.
                    self.pending = None;
                    return false;
                }
                self.pending = None;
                self.partition_epoch = partition_epoch;
                self.isr = isr;
                self.maybe_increment_high_watermark(now_ms)
            }
            AlterPartitionOutcome::Rejected(_) => {
                self.pending = None;
                false
            }
        }
    }

    /// Kafka's `maybeIncrementLeaderHW`: the minimum log end offset over the maximal ISR, and over followers
    /// caught up and eligible that are about to join it; it never moves back within the tenure.
    pub fn maybe_increment_high_watermark(&mut self, now_ms: i64) -> bool {
        let maximal = self.maximal_isr();
        let mut new_hw = self.log_end_offset;
        for f in self.followers.values() {
            let wait_to_join =
                f.is_caught_up(self.log_end_offset, now_ms, self.lag_max_ms) && self.eligible(f.broker_id);
            if f.log_end_offset < new_hw && (maximal.contains(&f.broker_id) || wait_to_join) {
                new_hw = f.log_end_offset;
            }
        }
        if new_hw > self.high_watermark {
            self.high_watermark = new_hw;
            assert!(
                self.high_watermark <= self.log_end_offset,
                "hw={} leo={}",
                self.high_watermark,
                self.log_end_offset
            );
            true
        } else {
            false
        }
    }

    /// Kafka's `checkEnoughReplicasReachOffset` for an acks=all produce that needs `required_offset`.
    pub fn acks_all_status(&self, required_offset: i64, min_insync_replicas: usize) -> WaitStatus {
        if self.high_watermark < required_offset {
            return WaitStatus::Waiting;
        }
        if self.maximal_isr().len() >= min_insync_replicas {
            WaitStatus::Done(code::NONE)
        } else {
            WaitStatus::Done(code::NOT_ENOUGH_REPLICAS_AFTER_APPEND)
        }
    }
}
