//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the coordinator's timers (Kafka's classic
//! `GroupCoordinator.handleJoinGroup` / `handleSyncGroup` / `handleHeartbeat` / `handleLeaveGroup`,
//! `DelayedJoin`, `InitialDelayedJoin`, `DelayedHeartbeat` and the pending-sync timeout).

use std::collections::BTreeMap;

use rand::Rng;

use super::coordinator::{
    commit_error_for_append_error, err, GroupCoordinator, GroupState, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupResponse, PendingWriteKind, Response, SyncGroupRequest, SyncGroupResponse,
};
use super::records::GroupRecord;
use super::state::{Group, InitialDelay, Member};

impl GroupCoordinator {
    fn join_error(&mut self, request_id: u64, member_id: &str, error_code: i16) {
        let r = JoinGroupResponse {
            error_code,
            generation_id: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        };
        self.respond(request_id, Response::JoinGroup(r));
    }

    /// JoinGroup. The answer may come later (when the join phase ends), as an [`super::Effect::Respond`].
    pub fn join_group(&mut self, request_id: u64, req: JoinGroupRequest, now_ms: i64, rng: &mut impl Rng) {
        let error = if !self.is_coordinator_for(&req.group_id) {
            Some(err::NOT_COORDINATOR)
        } else if req.group_id.is_empty() {
            Some(err::INVALID_GROUP_ID)
        } else if req.session_timeout_ms < self.config.group_min_session_timeout_ms
            || req.session_timeout_ms > self.config.group_max_session_timeout_ms
        {
            Some(err::INVALID_SESSION_TIMEOUT)
        } else if !req.member_id.is_empty() && !self.groups.contains_key(&req.group_id) {
            Some(err::UNKNOWN_MEMBER_ID)
        } else {
            None
        };
        if let Some(code) = error {
            return self.join_error(request_id, &req.member_id, code);
        }
        let mut g = self
            .groups
            .remove(&req.group_id)
            .unwrap_or_else(|| Group::new(&req.group_id, now_ms));
        if req.member_id.is_empty() {
            self.join_unknown_member(&mut g, request_id, req, now_ms, rng);
        } else {
            self.join_known_member(&mut g, request_id, req, now_ms);
        }
        self.maybe_complete_join(&mut g, now_ms);
        self.put_group(g);
    }

    /// Puts a group back, unless it is a fresh Empty group with nothing in it.
    fn put_group(&mut self, g: Group) {
        let unused = g.state == GroupState::Empty
            && g.members.is_empty()
            && g.pending_members.is_empty()
            && g.offsets.is_empty()
            && g.generation_id == 0;
        if !unused {
            self.groups.insert(g.group_id.clone(), g);
        }
    }

    fn join_unknown_member(
        &mut self,
        g: &mut Group,
        request_id: u64,
        req: JoinGroupRequest,
        now_ms: i64,
        rng: &mut impl Rng,
    ) {
        if g.state == GroupState::Dead {
            return self.join_error(request_id, "", err::COORDINATOR_NOT_AVAILABLE);
        }
        if !g.supports_protocols(&req.protocol_type, &req.protocols) {
            return self.join_error(request_id, "", err::INCONSISTENT_GROUP_PROTOCOL);
        }
        let member_id = Self::new_member_id(&req.client_id, rng);
        if req.require_known_member_id {
            // KIP-394: the member must come back with this id; until then it is only pending.
            g.pending_members
                .insert(member_id.clone(), now_ms + req.session_timeout_ms as i64);
            return self.join_error(request_id, &member_id, err::MEMBER_ID_REQUIRED);
        }
        self.add_member_and_rebalance(g, member_id, request_id, req, now_ms);
    }

    fn join_known_member(&mut self, g: &mut Group, request_id: u64, req: JoinGroupRequest, now_ms: i64) {
        let member_id = req.member_id.clone();
        if g.state == GroupState::Dead {
            return self.join_error(request_id, &member_id, err::COORDINATOR_NOT_AVAILABLE);
        }
        if g.pending_members.remove(&member_id).is_some() {
            return self.add_member_and_rebalance(g, member_id, request_id, req, now_ms);
        }
        let Some(member) = g.members.get(&member_id) else {
            return self.join_error(request_id, &member_id, err::UNKNOWN_MEMBER_ID);
        };
        if !g.supports_protocols(&req.protocol_type, &req.protocols) {
            return self.join_error(request_id, &member_id, err::INCONSISTENT_GROUP_PROTOCOL);
        }
        let unchanged = member.matches(&req.protocols);
        let is_leader = g.leader_id.as_deref() == Some(member_id.as_str());
        match g.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(g, request_id, req, now_ms),
            // A retried join of this generation: answer with the generation as it is.
            GroupState::CompletingRebalance if unchanged => self.answer_join(g, request_id, &member_id),
            // The leader's join forces a rebalance (topic metadata may have changed), as does new metadata.
            GroupState::Stable if unchanged && !is_leader => self.answer_join(g, request_id, &member_id),
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member_and_rebalance(g, request_id, req, now_ms)
            }
            GroupState::Empty | GroupState::Dead => self.join_error(request_id, &member_id, err::UNKNOWN_MEMBER_ID),
        }
    }

    /// The JoinGroup answer of the current generation; the leader gets every member's metadata.
    fn answer_join(&mut self, g: &Group, request_id: u64, member_id: &str) {
        let is_leader = g.leader_id.as_deref() == Some(member_id);
        let r = JoinGroupResponse {
            error_code: err::NONE,
            generation_id: g.generation_id,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            leader: g.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if is_leader { g.join_members() } else { vec![] },
        };
        self.respond(request_id, Response::JoinGroup(r));
    }

    fn add_member_and_rebalance(
        &mut self,
        g: &mut Group,
        member_id: String,
        request_id: u64,
        req: JoinGroupRequest,
        now_ms: i64,
    ) {
        if g.members.is_empty() {
            g.protocol_type = Some(req.protocol_type.clone());
        }
        if g.leader_id.as_ref().is_none_or(|l| !g.members.contains_key(l)) {
            g.leader_id = Some(member_id.clone());
        }
        let member = Member {
            member_id: member_id.clone(),
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocols: req.protocols,
            assignment: vec![],
            join_request: Some(request_id),
            sync_request: None,
            latest_heartbeat_ms: now_ms,
            is_new: true,
        };
        g.members.insert(member_id, member);
        if let Some(delay) = g
            .initial_delay
            .as_mut()
            .filter(|_| g.state == GroupState::PreparingRebalance)
        {
            delay.new_member_added = true;
        }
        self.maybe_prepare_rebalance(g, now_ms);
    }

    fn update_member_and_rebalance(&mut self, g: &mut Group, request_id: u64, req: JoinGroupRequest, now_ms: i64) {
        let m = g.members.get_mut(&req.member_id).expect("a known member");
        let previous = m.join_request.replace(request_id);
        m.protocols = req.protocols;
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.latest_heartbeat_ms = now_ms;
        if let Some(old) = previous {
            // A join retried over a new connection: the old request's answer goes nowhere useful.
            self.join_error(old, &req.member_id, err::REBALANCE_IN_PROGRESS);
        }
        self.maybe_prepare_rebalance(g, now_ms);
    }

    pub(crate) fn maybe_prepare_rebalance(&mut self, g: &mut Group, now_ms: i64) {
        if matches!(
            g.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(g, now_ms);
        }
    }

    fn prepare_rebalance(&mut self, g: &mut Group, now_ms: i64) {
        if g.state == GroupState::CompletingRebalance {
            // `resetAndPropagateAssignmentError`: members waiting in SyncGroup must rejoin.
            for m in g.members.values_mut() {
                m.assignment.clear();
                if let Some(request_id) = m.sync_request.take() {
                    let r = SyncGroupResponse {
                        error_code: err::REBALANCE_IN_PROGRESS,
                        ..Default::default()
                    };
                    self.respond(request_id, Response::SyncGroup(r));
                }
            }
        }
        g.pending_sync.clear();
        g.sync_deadline_ms = None;
        let rebalance_timeout_ms = g.rebalance_timeout_ms();
        if g.state == GroupState::Empty {
            let delay_ms = self
                .config
                .group_initial_rebalance_delay_ms
                .min(rebalance_timeout_ms.max(0));
            g.join_deadline_ms = Some(now_ms + delay_ms);
            g.initial_delay = Some(InitialDelay {
                remaining_ms: (rebalance_timeout_ms - delay_ms).max(0),
                new_member_added: false,
            });
        } else {
            g.join_deadline_ms = Some(now_ms + rebalance_timeout_ms);
            g.initial_delay = None;
        }
        g.transition(GroupState::PreparingRebalance, now_ms);
    }

    /// `DelayedJoin.tryComplete`: the join phase ends early once every member rejoined (never during the
    /// initial delay).
    pub(crate) fn maybe_complete_join(&mut self, g: &mut Group, now_ms: i64) {
        if g.state == GroupState::PreparingRebalance && g.initial_delay.is_none() && g.has_all_members_joined() {
            self.complete_join(g, now_ms);
        }
    }

    /// `GroupCoordinator.onCompleteJoin`: members that did not rejoin are dropped, the generation advances,
    /// and every member gets its JoinGroup answer.
    fn complete_join(&mut self, g: &mut Group, now_ms: i64) {
        let gone: Vec<String> = g
            .members
            .values()
            .filter(|m| m.join_request.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            g.members.remove(&id);
        }
        if g.leader_id.as_ref().is_none_or(|l| !g.members.contains_key(l)) {
            g.leader_id = g.members.keys().next().cloned();
        }
        g.join_deadline_ms = None;
        g.initial_delay = None;
        g.generation_id += 1;
        if g.members.is_empty() {
            g.protocol_name = None;
            g.transition(GroupState::Empty, now_ms);
            let value = g.to_metadata(&BTreeMap::new());
            let record = GroupRecord::GroupMetadata {
                group_id: g.group_id.clone(),
                value: Some(value),
            };
            self.append(&g.group_id.clone(), vec![record], PendingWriteKind::Metadata);
            return;
        }
        g.protocol_name = g.select_protocol();
        g.transition(GroupState::CompletingRebalance, now_ms);
        g.pending_sync = g.members.keys().cloned().collect();
        g.sync_deadline_ms = Some(now_ms + g.rebalance_timeout_ms());
        let ids: Vec<String> = g.members.keys().cloned().collect();
        for id in ids {
            let m = g.members.get_mut(&id).expect("listed");
            let request_id = m.join_request.take().expect("every member rejoined");
            m.is_new = false;
            m.latest_heartbeat_ms = now_ms;
            self.answer_join(g, request_id, &id);
        }
    }

    fn sync_error(&mut self, request_id: u64, error_code: i16) {
        let r = SyncGroupResponse {
            error_code,
            ..Default::default()
        };
        self.respond(request_id, Response::SyncGroup(r));
    }

    /// SyncGroup. Followers wait for the leader's assignment to be stored.
    pub fn sync_group(&mut self, request_id: u64, req: SyncGroupRequest, now_ms: i64) {
        if !self.is_coordinator_for(&req.group_id) {
            return self.sync_error(request_id, err::NOT_COORDINATOR);
        }
        let Some(mut g) = self.groups.remove(&req.group_id) else {
            return self.sync_error(request_id, err::UNKNOWN_MEMBER_ID);
        };
        self.sync_in_group(&mut g, request_id, req, now_ms);
        self.put_group(g);
    }

    fn sync_in_group(&mut self, g: &mut Group, request_id: u64, req: SyncGroupRequest, now_ms: i64) {
        let protocol_mismatch = req
            .protocol_type
            .as_ref()
            .is_some_and(|t| g.protocol_type.as_ref() != Some(t))
            || req
                .protocol_name
                .as_ref()
                .is_some_and(|n| g.protocol_name.as_ref() != Some(n));
        let error = match g.state {
            GroupState::Dead => Some(err::COORDINATOR_NOT_AVAILABLE),
            _ if !g.members.contains_key(&req.member_id) => Some(err::UNKNOWN_MEMBER_ID),
            _ if req.generation_id != g.generation_id => Some(err::ILLEGAL_GENERATION),
            _ if protocol_mismatch => Some(err::INCONSISTENT_GROUP_PROTOCOL),
            GroupState::Empty => Some(err::UNKNOWN_MEMBER_ID),
            GroupState::PreparingRebalance => Some(err::REBALANCE_IN_PROGRESS),
            GroupState::CompletingRebalance | GroupState::Stable => None,
        };
        if let Some(code) = error {
            return self.sync_error(request_id, code);
        }
        g.pending_sync.remove(&req.member_id);
        let m = g.members.get_mut(&req.member_id).expect("checked");
        m.latest_heartbeat_ms = now_ms;
        if g.state == GroupState::Stable {
            // A retry after the assignment was stored: answer at once.
            let r = SyncGroupResponse {
                error_code: err::NONE,
                protocol_type: g.protocol_type.clone(),
                protocol_name: g.protocol_name.clone(),
                assignment: m.assignment.clone(),
            };
            return self.respond(request_id, Response::SyncGroup(r));
        }
        if let Some(old) = m.sync_request.replace(request_id) {
            self.sync_error(old, err::REBALANCE_IN_PROGRESS);
        }
        if g.leader_id.as_deref() == Some(req.member_id.as_str()) {
            let given: BTreeMap<String, Vec<u8>> = req.assignments.into_iter().collect();
            let assignments: BTreeMap<String, Vec<u8>> = g
                .members
                .keys()
                .map(|id| (id.clone(), given.get(id).cloned().unwrap_or_default()))
                .collect();
            let value = g.to_metadata(&assignments);
            let record = GroupRecord::GroupMetadata {
                group_id: g.group_id.clone(),
                value: Some(value),
            };
            let kind = PendingWriteKind::Assignment {
                generation_id: g.generation_id,
                assignments,
            };
            self.append(&g.group_id.clone(), vec![record], kind);
        }
    }

    /// The leader's assignment landed in `__consumer_offsets` (or did not).
    pub(crate) fn on_assignment_stored(
        &mut self,
        group_id: &str,
        generation_id: i32,
        assignments: BTreeMap<String, Vec<u8>>,
        error_code: i16,
        now_ms: i64,
    ) {
        let Some(mut g) = self.groups.remove(group_id) else {
            return;
        };
        if g.state == GroupState::CompletingRebalance && g.generation_id == generation_id {
            if error_code != err::NONE {
                let code = commit_error_for_append_error(error_code);
                for m in g.members.values_mut() {
                    m.assignment.clear();
                    if let Some(request_id) = m.sync_request.take() {
                        self.sync_error(request_id, code);
                    }
                }
                self.maybe_prepare_rebalance(&mut g, now_ms);
            } else {
                for m in g.members.values_mut() {
                    m.assignment = assignments.get(&m.member_id).cloned().unwrap_or_default();
                    if let Some(request_id) = m.sync_request.take() {
                        let r = SyncGroupResponse {
                            error_code: err::NONE,
                            protocol_type: g.protocol_type.clone(),
                            protocol_name: g.protocol_name.clone(),
                            assignment: m.assignment.clone(),
                        };
                        self.respond(request_id, Response::SyncGroup(r));
                    }
                }
                g.transition(GroupState::Stable, now_ms);
            }
        }
        self.put_group(g);
    }

    /// Heartbeat: answered at once; REBALANCE_IN_PROGRESS tells the member to rejoin.
    pub fn heartbeat(&mut self, request_id: u64, group_id: &str, generation_id: i32, member_id: &str, now_ms: i64) {
        let code = if !self.is_coordinator_for(group_id) {
            err::NOT_COORDINATOR
        } else {
            match self.groups.get_mut(group_id) {
                None => err::UNKNOWN_MEMBER_ID,
                Some(g) => match g.state {
                    GroupState::Dead => err::COORDINATOR_NOT_AVAILABLE,
                    GroupState::Empty => err::UNKNOWN_MEMBER_ID,
                    state => match g.members.get_mut(member_id) {
                        None => err::UNKNOWN_MEMBER_ID,
                        Some(_) if generation_id != g.generation_id => err::ILLEGAL_GENERATION,
                        Some(m) => {
                            m.latest_heartbeat_ms = now_ms;
                            if state == GroupState::PreparingRebalance {
                                err::REBALANCE_IN_PROGRESS
                            } else {
                                err::NONE
                            }
                        }
                    },
                },
            }
        };
        self.respond(request_id, Response::Heartbeat { error_code: code });
    }

    /// LeaveGroup (v3+: a batch of members).
    pub fn leave_group(&mut self, request_id: u64, group_id: &str, member_ids: &[String], now_ms: i64) {
        let top = if !self.is_coordinator_for(group_id) {
            Some(err::NOT_COORDINATOR)
        } else if self.groups.get(group_id).is_some_and(|g| g.state == GroupState::Dead) {
            Some(err::COORDINATOR_NOT_AVAILABLE)
        } else {
            None
        };
        if let Some(error_code) = top {
            let r = LeaveGroupResponse {
                error_code,
                members: vec![],
            };
            return self.respond(request_id, Response::LeaveGroup(r));
        }
        let mut members = vec![];
        let mut group = self.groups.remove(group_id);
        for id in member_ids {
            let code = match group.as_mut() {
                Some(g) if g.pending_members.contains_key(id) => {
                    g.pending_members.remove(id);
                    err::NONE
                }
                Some(g) if g.members.contains_key(id) => {
                    self.remove_member_and_update_group(g, id, now_ms);
                    err::NONE
                }
                _ => err::UNKNOWN_MEMBER_ID,
            };
            members.push((id.clone(), code));
        }
        if let Some(mut g) = group {
            self.maybe_complete_join(&mut g, now_ms);
            self.put_group(g);
        }
        let r = LeaveGroupResponse {
            error_code: err::NONE,
            members,
        };
        self.respond(request_id, Response::LeaveGroup(r));
    }

    fn remove_member_and_update_group(&mut self, g: &mut Group, member_id: &str, now_ms: i64) {
        let Some(mut m) = g.members.remove(member_id) else {
            return;
        };
        self.fail_waiting(&mut m, err::UNKNOWN_MEMBER_ID);
        g.pending_sync.remove(member_id);
        if g.leader_id.as_deref() == Some(member_id) {
            g.leader_id = g.members.keys().next().cloned();
        }
        if matches!(g.state, GroupState::Stable | GroupState::CompletingRebalance) {
            self.maybe_prepare_rebalance(g, now_ms);
        }
    }

    /// Runs the timers due at `now_ms`: session expiry, the end of a join phase (or of the initial delay),
    /// and the pending-sync timeout.
    pub fn tick(&mut self, now_ms: i64) {
        let due: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.next_deadline_ms().is_some_and(|d| d <= now_ms))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let mut g = self.groups.remove(&id).expect("listed");
            self.tick_group(&mut g, now_ms);
            self.put_group(g);
        }
    }

    fn tick_group(&mut self, g: &mut Group, now_ms: i64) {
        g.pending_members.retain(|_, expiry_ms| *expiry_ms > now_ms);
        let expired: Vec<String> = g
            .members
            .values()
            .filter(|m| !m.should_keep_alive(now_ms))
            .map(|m| m.member_id.clone())
            .collect();
        for id in expired {
            self.remove_member_and_update_group(g, &id, now_ms);
        }
        let sync_due = g.sync_deadline_ms.is_some_and(|d| d <= now_ms);
        if sync_due && matches!(g.state, GroupState::CompletingRebalance | GroupState::Stable) {
            let unsynced: Vec<String> = std::mem::take(&mut g.pending_sync).into_iter().collect();
            for id in unsynced {
                self.remove_member_and_update_group(g, &id, now_ms);
            }
        }
        let join_due = g.join_deadline_ms.is_some_and(|d| d <= now_ms);
        if g.state == GroupState::PreparingRebalance && join_due {
            match g.initial_delay.clone() {
                Some(delay) if delay.new_member_added && delay.remaining_ms > 0 => {
                    let step_ms = self.config.group_initial_rebalance_delay_ms.min(delay.remaining_ms);
                    g.join_deadline_ms = Some(now_ms + step_ms);
                    g.initial_delay = Some(InitialDelay {
                        remaining_ms: (delay.remaining_ms - step_ms).max(0),
                        new_member_added: false,
                    });
                }
                _ => self.complete_join(g, now_ms),
            }
        }
        self.maybe_complete_join(g, now_ms);
    }
}
