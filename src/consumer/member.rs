//! The group member's side of the classic protocol (Kafka's `AbstractCoordinator` +
//! `ConsumerCoordinator`), as state and pure decisions; [`super::Consumer`] drives it.
//!
//! join → (MEMBER_ID_REQUIRED → join again with the id, KIP-394) → sync → Stable with heartbeats every
//! `heartbeat.interval.ms`. Eager assignors revoke everything before joining; cooperative-sticky (KIP-429)
//! keeps its partitions, revokes only those the new assignment lacks, and joins again at once if it revoked
//! any, so a moving partition is handed out only after its old owner gave it up.

use std::collections::{BTreeMap, BTreeSet};

use crate::group::{Assignor, MemberSubscription, RebalanceProtocol};
use crate::types::TopicPartition;

use super::protocol::{decode_subscription, encode_assignment};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// Not in the group (or must rejoin).
    Unjoined,
    /// A JoinGroup in flight.
    Joining,
    /// A SyncGroup in flight.
    Syncing,
    Stable,
}

/// A change of the member's partitions, for the application's rebalance listener and the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RebalanceEvent {
    /// `onPartitionsRevoked`: given up cleanly (committed first when auto-commit is on).
    Revoked {
        generation_id: i32,
        partitions: Vec<TopicPartition>,
    },
    /// `onPartitionsAssigned`: the new partitions of `generation_id`.
    Assigned {
        generation_id: i32,
        partitions: Vec<TopicPartition>,
    },
    /// `onPartitionsLost`: the member fell out of the group; others may own these already.
    Lost { partitions: Vec<TopicPartition> },
}

#[derive(Clone, Debug)]
pub struct MemberInfo {
    pub state: MemberState,
    pub member_id: String,
    /// -1 until the first JoinGroup answer (Kafka's `Generation.NO_GENERATION`).
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub owned: Vec<TopicPartition>,
    pub next_heartbeat_ms: i64,
    pub heartbeat_in_flight: bool,
}

impl Default for MemberInfo {
    fn default() -> Self {
        Self {
            state: MemberState::Unjoined,
            member_id: String::new(),
            generation_id: -1,
            protocol_name: None,
            owned: vec![],
            next_heartbeat_ms: 0,
            heartbeat_in_flight: false,
        }
    }
}

impl MemberInfo {
    /// `resetStateAndGeneration`: the member id and generation are forgotten; what it owned is lost.
    pub fn reset(&mut self) -> Vec<TopicPartition> {
        self.member_id.clear();
        self.generation_id = -1;
        self.state = MemberState::Unjoined;
        self.heartbeat_in_flight = false;
        std::mem::take(&mut self.owned)
    }

    /// The protocol of the generation the member is in (eager unless cooperative-sticky was chosen).
    pub fn rebalance_protocol(&self) -> RebalanceProtocol {
        self.protocol_name
            .as_deref()
            .and_then(Assignor::from_name)
            .map_or(RebalanceProtocol::Eager, Assignor::rebalance_protocol)
    }
}

/// The JoinGroup protocols: one per assignor, each with the subscription (owned partitions only for
/// cooperative assignors, as Kafka's `ConsumerCoordinator.metadata` does).
pub fn join_protocols(
    assignors: &[Assignor],
    topics: &BTreeSet<String>,
    owned: &[TopicPartition],
    generation_id: i32,
) -> Vec<(String, Vec<u8>)> {
    assignors
        .iter()
        .map(|a| {
            let cooperative = a.rebalance_protocol() == RebalanceProtocol::Cooperative;
            let s = MemberSubscription {
                topics: topics.clone(),
                owned_partitions: if cooperative { owned.to_vec() } else { vec![] },
                generation_id: if cooperative { generation_id } else { -1 },
            };
            (a.name().to_string(), super::protocol::encode_subscription(&s))
        })
        .collect()
}

/// The leader's assignment (`ConsumerCoordinator.onLeaderElected`): members' subscriptions decoded (a member
/// whose metadata does not decode subscribes to nothing), then the chosen assignor.
pub fn leader_assignment(
    protocol_name: &str,
    members: &[(String, Vec<u8>)],
    partitions_per_topic: &BTreeMap<String, i32>,
) -> Vec<(String, Vec<u8>)> {
    let assignor = Assignor::from_name(protocol_name).unwrap_or(Assignor::Range);
    let subscriptions: BTreeMap<String, MemberSubscription> = members
        .iter()
        .map(|(id, bytes)| (id.clone(), decode_subscription(bytes).unwrap_or_default()))
        .collect();
    assignor
        .assign(partitions_per_topic, &subscriptions)
        .into_iter()
        .map(|(id, parts)| (id, encode_assignment(&parts)))
        .collect()
}

/// The topics every member subscribes to (the leader needs their partition counts).
pub fn group_topics(members: &[(String, Vec<u8>)]) -> BTreeSet<String> {
    members
        .iter()
        .filter_map(|(_, bytes)| decode_subscription(bytes).ok())
        .flat_map(|s| s.topics)
        .collect()
}

/// `(revoked, added)` going from `owned` to `assigned`.
pub fn diff(owned: &[TopicPartition], assigned: &[TopicPartition]) -> (Vec<TopicPartition>, Vec<TopicPartition>) {
    let revoked = owned.iter().filter(|tp| !assigned.contains(tp)).cloned().collect();
    let added = assigned.iter().filter(|tp| !owned.contains(tp)).cloned().collect();
    (revoked, added)
}
