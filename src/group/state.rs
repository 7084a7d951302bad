//! One group's state (Kafka's `GroupMetadata` and `MemberMetadata`).

use std::collections::{BTreeMap, BTreeSet};

use super::coordinator::{GroupState, GroupView, JoinMember, NEW_MEMBER_JOIN_TIMEOUT_MS};
use super::records::{GroupMetadataValue, MemberMetadata, OffsetCommitValue};
use crate::types::TopicPartition;

#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocols: Vec<(String, Vec<u8>)>,
    pub assignment: Vec<u8>,
    /// The JoinGroup request parked until the join phase ends.
    pub join_request: Option<u64>,
    /// The SyncGroup request parked until the leader's assignment is stored.
    pub sync_request: Option<u64>,
    pub latest_heartbeat_ms: i64,
    /// Joined during this join phase for the first time.
    pub is_new: bool,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Vec<u8> {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// `MemberMetadata.shouldKeepAlive`: a member waiting in a join or sync never expires, except a new one
    /// that never completes its join.
    pub fn should_keep_alive(&self, now_ms: i64) -> bool {
        if self.join_request.is_some() {
            !self.is_new || self.latest_heartbeat_ms + NEW_MEMBER_JOIN_TIMEOUT_MS > now_ms
        } else if self.sync_request.is_some() {
            true
        } else {
            self.latest_heartbeat_ms + self.session_timeout_ms as i64 > now_ms
        }
    }

    pub fn expiry_ms(&self) -> Option<i64> {
        if self.join_request.is_some() {
            self.is_new
                .then_some(self.latest_heartbeat_ms + NEW_MEMBER_JOIN_TIMEOUT_MS)
        } else if self.sync_request.is_some() {
            None
        } else {
            Some(self.latest_heartbeat_ms + self.session_timeout_ms as i64)
        }
    }

    /// Same protocols and metadata as before (a retried JoinGroup).
    pub fn matches(&self, protocols: &[(String, Vec<u8>)]) -> bool {
        self.protocols == protocols
    }
}

/// The delay before the first join phase of an Empty group ends (`InitialDelayedJoin`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InitialDelay {
    pub remaining_ms: i64,
    pub new_member_added: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub state_timestamp_ms: i64,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED and not joined yet, with their expiry (KIP-394).
    pub pending_members: BTreeMap<String, i64>,
    /// Members of this generation that have not sent SyncGroup yet, and when they are dropped.
    pub pending_sync: BTreeSet<String>,
    pub sync_deadline_ms: Option<i64>,
    /// The end of the join phase in progress (`DelayedJoin` / `InitialDelayedJoin`).
    pub join_deadline_ms: Option<i64>,
    pub initial_delay: Option<InitialDelay>,
    pub offsets: BTreeMap<TopicPartition, OffsetCommitValue>,
}

impl Group {
    pub fn new(group_id: &str, now_ms: i64) -> Self {
        Self {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            state_timestamp_ms: now_ms,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            sync_deadline_ms: None,
            join_deadline_ms: None,
            initial_delay: None,
            offsets: BTreeMap::new(),
        }
    }

    pub fn transition(&mut self, to: GroupState, now_ms: i64) {
        use GroupState::*;
        let ok = match to {
            Empty => matches!(self.state, PreparingRebalance),
            PreparingRebalance => matches!(self.state, Empty | Stable | CompletingRebalance),
            CompletingRebalance => matches!(self.state, PreparingRebalance),
            Stable => matches!(self.state, CompletingRebalance),
            Dead => true,
        };
        assert!(ok, "group {} cannot go from {:?} to {to:?}", self.group_id, self.state);
        self.state = to;
        self.state_timestamp_ms = now_ms;
    }

    /// The join phase's timeout: the largest rebalance timeout of the members.
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0)
    }

    pub fn has_all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.join_request.is_some())
    }

    /// `GroupMetadata.supportsProtocols`: the type matches and some protocol is common to every member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Vec<u8>)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(p, _)| self.members.values().all(|m| m.protocols.iter().any(|(q, _)| q == p)))
    }

    /// `GroupMetadata.selectProtocol`: among the protocols every member supports, each member votes for its
    /// first; the most votes win (ties: the protocol name first in order).
    pub fn select_protocol(&self) -> Option<String> {
        let candidates: BTreeSet<&String> = self
            .members
            .values()
            .flat_map(|m| m.protocols.iter().map(|(p, _)| p))
            .filter(|p| self.members.values().all(|m| m.protocols.iter().any(|(q, _)| q == *p)))
            .collect();
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((p, _)) = m.protocols.iter().find(|(p, _)| candidates.contains(p)) {
                *votes.entry(p).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        votes.into_iter().find(|(_, v)| *v == best).map(|(p, _)| p.clone())
    }

    pub fn join_members(&self) -> Vec<JoinMember> {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinMember {
                member_id: m.member_id.clone(),
                metadata: m.metadata_for(&protocol),
            })
            .collect()
    }

    pub fn to_metadata(&self, assignments: &BTreeMap<String, Vec<u8>>) -> GroupMetadataValue {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation_id: self.generation_id,
            protocol_name: self.protocol_name.clone(),
            leader_id: self.leader_id.clone(),
            current_state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    group_instance_id: None,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol),
                    assignment: assignments.get(&m.member_id).cloned().unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// `GroupMetadataManager.loadGroup`: Stable with the stored members, or Empty without.
    pub fn load_metadata(&mut self, v: &GroupMetadataValue, now_ms: i64) {
        self.generation_id = v.generation_id;
        self.protocol_type = (!v.protocol_type.is_empty()).then(|| v.protocol_type.clone());
        self.protocol_name = v.protocol_name.clone();
        self.leader_id = v.leader_id.clone();
        self.state_timestamp_ms = v.current_state_timestamp_ms;
        self.pending_members.clear();
        self.pending_sync.clear();
        self.sync_deadline_ms = None;
        self.join_deadline_ms = None;
        self.initial_delay = None;
        let protocol = v.protocol_name.clone().unwrap_or_default();
        self.members = v
            .members
            .iter()
            .map(|m| {
                let member = Member {
                    member_id: m.member_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: vec![(protocol.clone(), m.subscription.clone())],
                    assignment: m.assignment.clone(),
                    join_request: None,
                    sync_request: None,
                    latest_heartbeat_ms: now_ms,
                    is_new: false,
                };
                (m.member_id.clone(), member)
            })
            .collect();
        self.state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
    }

    pub fn view(&self) -> GroupView {
        GroupView {
            state: self.state,
            generation_id: self.generation_id,
            protocol_name: self.protocol_name.clone(),
            leader_id: self.leader_id.clone(),
            members: self
                .members
                .values()
                .map(|m| (m.member_id.clone(), m.assignment.clone()))
                .collect(),
            offsets: self.offsets.clone(),
        }
    }

    pub fn next_deadline_ms(&self) -> Option<i64> {
        let members = self.members.values().filter_map(Member::expiry_ms);
        let pending = self.pending_members.values().copied();
        members
            .chain(pending)
            .chain(self.join_deadline_ms)
            .chain(self.sync_deadline_ms.filter(|_| !self.pending_sync.is_empty()))
            .min()
    }
}
