//! L3: [`KafkaConsumer`], the async facade over the pure consumer core ([`crate::consumer::Consumer`]).
//!
//! The application owns the facade and drives it by calling [`KafkaConsumer::poll`] and
//! [`KafkaConsumer::commit_sync`], as Kafka's `KafkaConsumer` is driven by its caller. Each call feeds the core
//! the time, carries out its effects one after the other over the [`Client`]'s connections (Metadata,
//! FindCoordinator v4, JoinGroup v7, SyncGroup v5, Heartbeat v4, LeaveGroup v4, OffsetCommit v8, OffsetFetch
//! v8 to the coordinator; Fetch v12 and ListOffsets to partition leaders) and feeds the answers back.
//!
//! Every request has a timeout (`request.timeout.ms`; JoinGroup adds the rebalance timeout, Fetch its
//! `fetch.max.wait.ms`); a timed-out connection is closed. NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, a
//! timeout or a disconnect on a group request make the core find the coordinator again.
//!
//! Heartbeats the core asks for are sent at the start of the next `poll` (Kafka's heartbeat thread runs
//! beside the application; here the application's own calls carry them). So a member that was paused past
//! `session.timeout.ms` learns it was evicted only from its next answer: a `commit_sync` right after the
//! pause still carries the old generation and is rejected (ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID), as a
//! Kafka consumer's commit after a long GC pause is.
//!
//! What happens is reported to an observer ([`ConsumerEvent`]) at the moment it happens, so a workload can
//! record invokes before their completions.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest as WireJoin, LeaveGroupRequest,
    OffsetCommitRequest as WireCommit, OffsetFetchRequest, SyncGroupRequest as WireSync, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{Client, ClientConfig, ClientError, OffsetSpec};
use crate::consumer::{
    decode_assignment, Consumer, ConsumerConfig, ConsumerRecord, Effect, FetchPosition, FetchResult, RebalanceEvent,
};
use crate::group::{
    err, FetchedOffset, JoinGroupRequest, JoinGroupResponse, JoinMember, OffsetCommitRequest, OffsetFetchResponse,
    SyncGroupRequest, SyncGroupResponse,
};
use crate::rt;
use crate::types::TopicPartition;

/// The facade's own settings, by Kafka's names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchConfig {
    /// `fetch.min.bytes` (default 1).
    pub min_bytes: i32,
    /// `fetch.max.wait.ms` (default 500).
    pub max_wait_ms: i32,
    /// `max.partition.fetch.bytes` (default 1 MiB).
    pub max_partition_bytes: i32,
    /// `check.crcs` (default true): a corrupt batch is never returned as data. Batches are always checked
    /// here; false only stops the consumer from reporting them as corrupt.
    pub check_crcs: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            min_bytes: 1,
            max_wait_ms: 500,
            max_partition_bytes: 1 << 20,
            check_crcs: true,
        }
    }
}

impl FetchConfig {
    pub fn from_map(props: &BTreeMap<String, String>) -> Self {
        let mut c = Self::default();
        let int = |k: &str| props.get(k).and_then(|v| v.parse::<i32>().ok());
        c.min_bytes = int("fetch.min.bytes").unwrap_or(c.min_bytes);
        c.max_wait_ms = int("fetch.max.wait.ms").unwrap_or(c.max_wait_ms);
        c.max_partition_bytes = int("max.partition.fetch.bytes").unwrap_or(c.max_partition_bytes);
        c.check_crcs = props.get("check.crcs").map_or(true, |v| v != "false");
        c
    }
}

/// How a request to the cluster ended, for the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    Ok,
    /// The broker refused it (a Kafka error code): it did not happen.
    Fail(i16),
    /// No answer (timeout, disconnect): it may have happened.
    Info(String),
}

/// What the consumer did, told to the observer as it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsumerEvent {
    JoinInvoked {
        group_id: String,
    },
    Joined {
        group_id: String,
        member_id: String,
        generation_id: i32,
    },
    JoinFailed {
        group_id: String,
        error: String,
    },
    Synced {
        group_id: String,
        member_id: String,
        generation_id: i32,
        assignment: Vec<TopicPartition>,
    },
    /// Partitions given up (revoked before a rebalance, or lost when the member fell out of the group).
    Revoked {
        group_id: String,
        partitions: Vec<TopicPartition>,
        lost: bool,
    },
    CommitInvoked {
        request: OffsetCommitRequest,
    },
    /// Per partition of the request, how it ended.
    CommitDone {
        request: OffsetCommitRequest,
        results: Vec<(TopicPartition, Completion)>,
    },
    /// A committed offset was read (-1: none).
    OffsetFetched {
        group_id: String,
        tp: TopicPartition,
        offset: i64,
    },
    /// A fetch from `fetch_offset` answered OFFSET_OUT_OF_RANGE (the position lies below the log start or
    /// above the end): `auto.offset.reset` decides next (a `ResetInvoked` follows when it names a policy).
    OffsetOutOfRange {
        tp: TopicPartition,
        fetch_offset: i64,
    },
    /// `auto.offset.reset` or `seek_to_beginning`/`end` asked for (timestamp -2 earliest, -1 latest).
    ResetInvoked {
        tp: TopicPartition,
        timestamp: i64,
    },
    ResetDone {
        tp: TopicPartition,
        timestamp: i64,
        offset: Option<i64>,
    },
    /// KIP-320: validating the position after a leader change found the leader's log ends below it for the
    /// position's epoch. `reset_offset` is where the consumer resumes (the leader's end offset for that
    /// epoch); `None` when the leader knew no such epoch and `auto.offset.reset` decides (a `ResetInvoked`
    /// follows) or the application must seek.
    TruncationDetected {
        tp: TopicPartition,
        position: i64,
        reset_offset: Option<i64>,
    },
}

pub type Observer = Box<dyn FnMut(ConsumerEvent) + Send>;

/// Kafka's `KafkaConsumer`, driven by its caller.
pub struct KafkaConsumer {
    core: Consumer,
    client: Client,
    fetch: FetchConfig,
    coordinator: Option<String>,
    /// Effects not yet carried out, in order.
    pending: Vec<Effect>,
    /// Heartbeats due, sent at the start of the next poll.
    heartbeats: Vec<Effect>,
    observer: Observer,
    wake_at_ms: Option<i64>,
}

/// Wall-clock milliseconds (simulated in madsim), as Kafka's `Time.milliseconds()`.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl KafkaConsumer {
    /// A consumer that bootstraps from `bootstrap`; `props` holds every key by Kafka's names.
    pub fn new(
        bootstrap: Vec<String>,
        props: &BTreeMap<String, String>,
        observer: Observer,
    ) -> Result<Self, crate::consumer::config::ConsumerConfigError> {
        let config = ConsumerConfig::from_map(props)?;
        let client_config = ClientConfig::from_properties(props).unwrap_or_default();
        Ok(Self {
            core: Consumer::new(config, now_ms()),
            client: Client::new(bootstrap, client_config),
            fetch: FetchConfig::from_map(props),
            coordinator: None,
            pending: vec![],
            heartbeats: vec![],
            observer,
            wake_at_ms: None,
        })
    }

    pub fn core(&self) -> &Consumer {
        &self.core
    }

    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.core.assignment()
    }

    pub fn position(&self, tp: &TopicPartition) -> Option<FetchPosition> {
        self.core.position(tp)
    }

    pub fn subscribe(&mut self, topics: BTreeSet<String>) -> Result<(), crate::consumer::ConsumerError> {
        self.core.subscribe(topics)
    }

    pub fn assign(&mut self, partitions: &[TopicPartition]) {
        self.core.assign(partitions)
    }

    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<(), crate::consumer::ConsumerError> {
        self.core.seek(tp, offset)
    }

    /// Kafka's `poll(timeout)`: returns as soon as records are there, or empty at the timeout.
    pub async fn poll(&mut self, timeout: Duration) -> Vec<ConsumerRecord> {
        let deadline = now_ms() + timeout.as_millis() as i64;
        for beat in std::mem::take(&mut self.heartbeats) {
            if let Effect::Heartbeat {
                group_id,
                generation_id,
                member_id,
            } = beat
            {
                self.send_heartbeat(group_id, generation_id, member_id).await;
            }
        }
        loop {
            let records = self.core.poll(now_ms()).unwrap_or_default();
            let effects = self.core.effects();
            if !records.is_empty() {
                self.pending.extend(effects);
                return records;
            }
            let worked = self.run(effects).await;
            let now = now_ms();
            if now >= deadline {
                return vec![];
            }
            if !worked {
                let until = self.wake_at_ms.map_or(deadline, |w| w.clamp(now + 1, deadline));
                rt::sleep(Duration::from_millis((until - now).max(1) as u64)).await;
            }
        }
    }

    /// Kafka's `commitSync()`: commits every position (what `poll` returned); `None` if there was nothing
    /// to commit (no group, no position). Other pending work waits for the next poll.
    pub async fn commit_sync(&mut self) -> Option<Vec<(TopicPartition, Completion)>> {
        let commit_id = self.core.commit()?;
        let mut effects = self.core.effects();
        let at = effects
            .iter()
            .position(|e| matches!(e, Effect::OffsetCommit { commit_id: c, .. } if *c == commit_id))?;
        let Effect::OffsetCommit { request, .. } = effects.remove(at) else {
            return None;
        };
        self.pending.extend(effects);
        Some(self.offset_commit(commit_id, request).await)
    }

    /// Kafka's `close()`: leaves the group (LeaveGroup) so the others rebalance at once.
    pub async fn close(mut self) {
        let member_id = self.core.member().member_id.clone();
        let Some(group_id) = self.core.config().group_id.clone() else {
            return;
        };
        if member_id.is_empty() {
            return;
        }
        self.leave_group(group_id, member_id).await;
    }

    /// Carries out `effects` and every effect their answers produce; true if anything was sent.
    async fn run(&mut self, effects: Vec<Effect>) -> bool {
        self.pending.extend(effects);
        let mut worked = false;
        self.wake_at_ms = None;
        while !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            for e in batch {
                worked |= self.carry_out(e).await;
            }
            self.pending.extend(self.core.effects());
        }
        worked
    }

    async fn carry_out(&mut self, e: Effect) -> bool {
        let now = now_ms();
        match e {
            Effect::WakeAt { at_ms } => {
                self.wake_at_ms = Some(self.wake_at_ms.map_or(at_ms, |w| w.min(at_ms)));
                return false;
            }
            Effect::Heartbeat { .. } => {
                self.heartbeats.push(e);
                return false;
            }
            Effect::Rebalance(ev) => {
                self.rebalance_event(ev);
                return false;
            }
            Effect::CommitDone { .. } => return false,
            Effect::TruncationDetected { tp, truncation } => {
                (self.observer)(ConsumerEvent::TruncationDetected {
                    tp,
                    position: truncation.position.offset,
                    reset_offset: truncation.reset_to.map(|p| p.offset),
                });
                return false;
            }
            Effect::OffsetsForLeaderEpoch {
                tp,
                position,
                current_leader_epoch,
            } => self.validate_position(tp, position, current_leader_epoch).await,
            Effect::FindCoordinator { group_id } => self.find_coordinator(group_id, now).await,
            Effect::JoinGroup(req) => self.join_group(req).await,
            Effect::SyncGroup(req) => self.sync_group(req).await,
            Effect::LeaveGroup { group_id, member_id } => self.leave_group(group_id, member_id).await,
            Effect::OffsetFetch { group_id, partitions } => self.offset_fetch(group_id, partitions).await,
            Effect::OffsetCommit { commit_id, request } => {
                self.offset_commit(commit_id, request).await;
            }
            Effect::ListOffsets { tp, timestamp } => self.list_offsets(tp, timestamp).await,
            Effect::Fetch { tp, position } => self.fetch(tp, position).await,
            Effect::Metadata { topics } => self.metadata(topics).await,
        }
        true
    }

    fn group_id(&self) -> String {
        self.core.config().group_id.clone().unwrap_or_default()
    }

    fn rebalance_event(&mut self, ev: RebalanceEvent) {
        let group_id = self.group_id();
        let (partitions, lost) = match ev {
            RebalanceEvent::Revoked { partitions, .. } => (partitions, false),
            RebalanceEvent::Lost { partitions } => (partitions, true),
            RebalanceEvent::Assigned { .. } => return,
        };
        (self.observer)(ConsumerEvent::Revoked {
            group_id,
            partitions,
            lost,
        });
    }

    fn request_timeout(&self) -> Duration {
        self.client.config().request_timeout()
    }

    async fn find_coordinator(&mut self, group_id: String, now: i64) {
        let req = FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![StrBytes::from_string(group_id.clone())]);
        let found = match self.client.request_any(&req).await {
            Ok((_, resp)) => resp
                .coordinators
                .iter()
                .find(|c| c.key.as_str() == group_id && c.error_code == err::NONE && c.node_id.0 >= 0)
                .map(|c| format!("{}:{}", c.host.as_str(), c.port)),
            Err(_) => None,
        };
        self.coordinator = found.clone();
        self.core.on_coordinator(found.is_some(), now);
    }

    /// Sends a group request to the coordinator; a transport failure makes the core find it again.
    async fn to_coordinator<Req>(&mut self, req: &Req, timeout: Duration) -> Result<Req::Response, ClientError>
    where
        Req: kafka_protocol::protocol::Request,
        Req::Response: super::shape::BoundedShape,
    {
        let Some(addr) = self.coordinator.clone() else {
            self.core.on_coordinator_disconnect(now_ms());
            return Err(ClientError::Connect {
                addr: "(coordinator)".into(),
                reason: "coordinator unknown".into(),
            });
        };
        let result = self.client.request_at(&addr, req, timeout).await;
        if result.is_err() {
            self.coordinator = None;
            self.core.on_coordinator_disconnect(now_ms());
        }
        result
    }

    /// After a group answer: NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE forget the coordinator.
    fn after_group_code(&mut self, code: i16) {
        if code == err::NOT_COORDINATOR || code == err::COORDINATOR_NOT_AVAILABLE {
            self.coordinator = None;
        }
    }

    async fn join_group(&mut self, req: JoinGroupRequest) {
        let group_id = req.group_id.clone();
        (self.observer)(ConsumerEvent::JoinInvoked {
            group_id: group_id.clone(),
        });
        let wire = WireJoin::default()
            .with_group_id(GroupId(StrBytes::from_string(req.group_id.clone())))
            .with_session_timeout_ms(req.session_timeout_ms)
            .with_rebalance_timeout_ms(req.rebalance_timeout_ms)
            .with_member_id(StrBytes::from_string(req.member_id.clone()))
            .with_protocol_type(StrBytes::from_string(req.protocol_type.clone()))
            .with_protocols(
                req.protocols
                    .iter()
                    .map(|(name, meta)| {
                        JoinGroupRequestProtocol::default()
                            .with_name(StrBytes::from_string(name.clone()))
                            .with_metadata(Bytes::from(meta.clone()))
                    })
                    .collect(),
            );
        // JoinGroup waits for the rebalance (up to the rebalance timeout) before it answers.
        let timeout = self.request_timeout() + Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
        let resp = match self.to_coordinator(&wire, timeout).await {
            Ok(r) => r,
            Err(e) => {
                (self.observer)(ConsumerEvent::JoinFailed {
                    group_id,
                    error: e.to_string(),
                });
                return;
            }
        };
        self.after_group_code(resp.error_code);
        let answer = JoinGroupResponse {
            error_code: resp.error_code,
            generation_id: resp.generation_id,
            protocol_type: resp.protocol_type.as_ref().map(|s| s.to_string()),
            protocol_name: resp.protocol_name.as_ref().map(|s| s.to_string()),
            leader: resp.leader.to_string(),
            member_id: resp.member_id.to_string(),
            members: resp
                .members
                .iter()
                .map(|m| JoinMember {
                    member_id: m.member_id.to_string(),
                    metadata: m.metadata.to_vec(),
                })
                .collect(),
        };
        if answer.error_code == err::NONE {
            (self.observer)(ConsumerEvent::Joined {
                group_id,
                member_id: answer.member_id.clone(),
                generation_id: answer.generation_id,
            });
        } else {
            (self.observer)(ConsumerEvent::JoinFailed {
                group_id,
                error: code_name(answer.error_code),
            });
        }
        self.core.on_join(&answer, now_ms());
    }

    async fn sync_group(&mut self, req: SyncGroupRequest) {
        let wire = WireSync::default()
            .with_group_id(GroupId(StrBytes::from_string(req.group_id.clone())))
            .with_generation_id(req.generation_id)
            .with_member_id(StrBytes::from_string(req.member_id.clone()))
            .with_protocol_type(req.protocol_type.clone().map(StrBytes::from_string))
            .with_protocol_name(req.protocol_name.clone().map(StrBytes::from_string))
            .with_assignments(
                req.assignments
                    .iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(StrBytes::from_string(m.clone()))
                            .with_assignment(Bytes::from(a.clone()))
                    })
                    .collect(),
            );
        let timeout = self.request_timeout() + Duration::from_millis(self.core.config().max_poll_interval_ms as u64);
        let Ok(resp) = self.to_coordinator(&wire, timeout).await else {
            return;
        };
        self.after_group_code(resp.error_code);
        let answer = SyncGroupResponse {
            error_code: resp.error_code,
            protocol_type: resp.protocol_type.as_ref().map(|s| s.to_string()),
            protocol_name: resp.protocol_name.as_ref().map(|s| s.to_string()),
            assignment: resp.assignment.to_vec(),
        };
        if answer.error_code == err::NONE {
            (self.observer)(ConsumerEvent::Synced {
                group_id: req.group_id.clone(),
                member_id: req.member_id.clone(),
                generation_id: req.generation_id,
                assignment: decode_assignment(&answer.assignment).unwrap_or_default(),
            });
        }
        self.core.on_sync(&answer, now_ms());
    }

    async fn send_heartbeat(&mut self, group_id: String, generation_id: i32, member_id: String) {
        let wire = HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group_id)))
            .with_generation_id(generation_id)
            .with_member_id(StrBytes::from_string(member_id));
        let timeout = self.request_timeout();
        if let Ok(resp) = self.to_coordinator(&wire, timeout).await {
            self.after_group_code(resp.error_code);
            self.core.on_heartbeat(resp.error_code, now_ms());
        }
    }

    async fn leave_group(&mut self, group_id: String, member_id: String) {
        let wire = LeaveGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group_id)))
            .with_members(vec![
                MemberIdentity::default().with_member_id(StrBytes::from_string(member_id))
            ]);
        let timeout = self.request_timeout();
        let _ = self.to_coordinator(&wire, timeout).await;
    }

    async fn offset_fetch(&mut self, group_id: String, partitions: Vec<TopicPartition>) {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for tp in &partitions {
            by_topic.entry(tp.topic.clone()).or_default().push(tp.partition);
        }
        let topics = by_topic
            .into_iter()
            .map(|(t, ps)| {
                OffsetFetchRequestTopics::default()
                    .with_name(TopicName(StrBytes::from_string(t)))
                    .with_partition_indexes(ps)
            })
            .collect();
        let wire = OffsetFetchRequest::default()
            .with_require_stable(true)
            .with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(group_id.clone())))
                .with_topics(Some(topics))]);
        let timeout = self.request_timeout();
        let answer = match self.to_coordinator(&wire, timeout).await {
            Ok(resp) => {
                let mut answer = OffsetFetchResponse {
                    error_code: err::NONE,
                    offsets: vec![],
                };
                for g in resp.groups.iter().filter(|g| g.group_id.0.as_str() == group_id) {
                    answer.error_code = g.error_code;
                    for t in &g.topics {
                        for p in &t.partitions {
                            answer.offsets.push(FetchedOffset {
                                tp: TopicPartition::new(t.name.0.as_str(), p.partition_index),
                                offset: p.committed_offset,
                                leader_epoch: p.committed_leader_epoch,
                                metadata: String::new(),
                                error_code: p.error_code,
                            });
                        }
                    }
                }
                self.after_group_code(answer.error_code);
                answer
            }
            Err(_) => OffsetFetchResponse {
                error_code: err::COORDINATOR_NOT_AVAILABLE,
                offsets: vec![],
            },
        };
        for o in answer.offsets.iter().filter(|o| o.error_code == err::NONE) {
            (self.observer)(ConsumerEvent::OffsetFetched {
                group_id: group_id.clone(),
                tp: o.tp.clone(),
                offset: o.offset,
            });
        }
        self.core.on_offset_fetch(&answer, &partitions);
    }

    async fn offset_commit(
        &mut self,
        commit_id: u64,
        request: OffsetCommitRequest,
    ) -> Vec<(TopicPartition, Completion)> {
        (self.observer)(ConsumerEvent::CommitInvoked {
            request: request.clone(),
        });
        let mut by_topic: BTreeMap<String, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for o in &request.offsets {
            by_topic.entry(o.tp.topic.clone()).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(o.tp.partition)
                    .with_committed_offset(o.offset)
                    .with_committed_leader_epoch(o.leader_epoch)
                    .with_committed_metadata(Some(StrBytes::from_string(o.metadata.clone()))),
            );
        }
        let wire = WireCommit::default()
            .with_group_id(GroupId(StrBytes::from_string(request.group_id.clone())))
            .with_generation_id_or_member_epoch(request.generation_id)
            .with_member_id(StrBytes::from_string(request.member_id.clone()))
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t)))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let timeout = self.request_timeout();
        let (codes, results): (Vec<(TopicPartition, i16)>, Vec<(TopicPartition, Completion)>) =
            match self.to_coordinator(&wire, timeout).await {
                Ok(resp) => {
                    let mut answered: BTreeMap<TopicPartition, i16> = BTreeMap::new();
                    for t in &resp.topics {
                        for p in &t.partitions {
                            answered.insert(TopicPartition::new(t.name.0.as_str(), p.partition_index), p.error_code);
                        }
                    }
                    request
                        .offsets
                        .iter()
                        .map(|o| {
                            let code = answered.get(&o.tp).copied().unwrap_or(-1);
                            self.after_group_code(code);
                            let c = if code == err::NONE {
                                Completion::Ok
                            } else if indefinite_commit_code(code) {
                                Completion::Info(code_name(code))
                            } else {
                                Completion::Fail(code)
                            };
                            ((o.tp.clone(), code), (o.tp.clone(), c))
                        })
                        .unzip()
                }
                Err(e) => request
                    .offsets
                    .iter()
                    .map(|o| {
                        (
                            (o.tp.clone(), err::REQUEST_TIMED_OUT),
                            (o.tp.clone(), Completion::Info(e.to_string())),
                        )
                    })
                    .unzip(),
            };
        (self.observer)(ConsumerEvent::CommitDone {
            request,
            results: results.clone(),
        });
        self.core.on_commit(commit_id, codes, now_ms());
        results
    }

    async fn list_offsets(&mut self, tp: TopicPartition, timestamp: i64) {
        (self.observer)(ConsumerEvent::ResetInvoked {
            tp: tp.clone(),
            timestamp,
        });
        let spec = if timestamp == -2 {
            OffsetSpec::Earliest
        } else {
            OffsetSpec::Latest
        };
        let result = self.client.list_offsets_info(&tp, spec).await;
        let offset = result.as_ref().ok().map(|l| l.offset);
        (self.observer)(ConsumerEvent::ResetDone {
            tp: tp.clone(),
            timestamp,
            offset,
        });
        let answer = result
            .map(|l| (l.offset, l.leader_epoch))
            .map_err(|e| e.kafka_code().map_or(err::REQUEST_TIMED_OUT, |c| c.code()));
        if answer.is_err() {
            rt::sleep(Duration::from_millis(self.core.config().retry_backoff_ms.max(1) as u64)).await;
        }
        self.core.on_list_offsets(&tp, timestamp, answer);
    }

    /// KIP-320: OffsetsForLeaderEpoch for the position's epoch at the current leader.
    async fn validate_position(&mut self, tp: TopicPartition, position: FetchPosition, current_leader_epoch: i32) {
        let result = self
            .client
            .offset_for_leader_epoch(&tp, current_leader_epoch, position.leader_epoch)
            .await;
        let answer = result.map_err(|e| e.kafka_code().map_or(err::REQUEST_TIMED_OUT, |c| c.code()));
        if answer.is_err() {
            // FENCED_LEADER_EPOCH and the like dropped the topic from the metadata cache: fresh view below.
            rt::sleep(Duration::from_millis(self.core.config().retry_backoff_ms.max(1) as u64)).await;
        }
        self.core.on_epoch_end_offset(&tp, position, answer);
        if let Some(epoch) = self.client.leader_epoch(&tp).await {
            self.core.on_leader_epoch(&tp, epoch);
        }
    }

    async fn fetch(&mut self, tp: TopicPartition, position: FetchPosition) {
        // KIP-320: a leader epoch newer than the position's means validating before fetching.
        if let Some(epoch) = self.client.leader_epoch(&tp).await {
            if self.core.on_leader_epoch(&tp, epoch) {
                self.core.cancel_fetch(&tp, position.offset);
                return;
            }
        }
        let f = self.fetch.clone();
        let result = self
            .client
            .fetch(&tp, position.offset, f.max_partition_bytes, f.max_wait_ms, f.min_bytes)
            .await;
        let answer = match result {
            Ok(out) => FetchResult::Records {
                records: out
                    .records
                    .into_iter()
                    .zip(out.leader_epochs)
                    .map(|(r, leader_epoch)| ConsumerRecord {
                        tp: tp.clone(),
                        offset: r.offset,
                        leader_epoch,
                        timestamp_ms: r.timestamp,
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                    })
                    .collect(),
                high_watermark: out.high_watermark,
                next_fetch_offset: out.next_fetch_offset,
            },
            Err(e) => {
                // A failed fetch backs off before the next (Kafka's retry.backoff.ms).
                rt::sleep(Duration::from_millis(self.core.config().retry_backoff_ms.max(1) as u64)).await;
                FetchResult::Error {
                    error_code: e.kafka_code().map_or(err::REQUEST_TIMED_OUT, |c| c.code()),
                }
            }
        };
        // Some(OFFSET_OUT_OF_RANGE) only when the answer was current and the position was dropped for it.
        if self.core.on_fetch(&tp, position.offset, answer) == Some(crate::protocol::errors::code::OFFSET_OUT_OF_RANGE)
        {
            (self.observer)(ConsumerEvent::OffsetOutOfRange {
                tp,
                fetch_offset: position.offset,
            });
        }
    }

    async fn metadata(&mut self, topics: Vec<String>) {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let counts: BTreeMap<String, i32> = match self.client.metadata(Some(&names)).await {
            Ok(m) => topics
                .iter()
                .filter_map(|t| Some((t.clone(), m.partition_count(t)?)))
                .collect(),
            Err(_) => BTreeMap::new(),
        };
        self.core.on_metadata(&counts);
    }
}

/// OffsetCommit answers after which the commit may or may not have been written.
fn indefinite_commit_code(code: i16) -> bool {
    code == err::REQUEST_TIMED_OUT || code == err::COORDINATOR_NOT_AVAILABLE || code == err::NOT_COORDINATOR
}

/// A Kafka error code by its name (`ILLEGAL_GENERATION (22)`).
pub fn code_name(code: i16) -> String {
    match crate::protocol::errors::ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?} ({code})"),
        None => format!("error code {code}"),
    }
}
