//! The group APIs on the wire (Kafka's `KafkaApis.handleFindCoordinatorRequest`, `handleJoinGroupRequest`,
//! ... `handleListGroupsRequest`): kafka-protocol messages in, the coordinator's requests and responses
//! converted, responses encoded at the request's version.

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId as WireBrokerId, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::groups::Waiter;
use super::{respond, Broker, Failure, Reply};
use crate::group::{self, err, partition_for, GroupState, Response, OFFSETS_TOPIC};
use crate::log::Disk;
use crate::protocol::api::encode_response;
use crate::protocol::errors::{code, EncodeError};
use crate::types::TopicPartition;

/// FindCoordinator's `key_type` for a consumer group (1 is a transactional id, not served).
const KEY_TYPE_GROUP: i8 = 0;
/// Kafka's `INVALID_REQUEST`.
const INVALID_REQUEST: i16 = 42;

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

impl Broker {
    /// FindCoordinator v4: for each key, the leader of its `__consumer_offsets` partition.
    pub(super) fn find_coordinator(&mut self, r: &FindCoordinatorRequest, v: i16, corr: i32) -> Result<Reply, Failure> {
        let coordinators = r
            .coordinator_keys
            .iter()
            .map(|key| {
                let c = Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(WireBrokerId(-1));
                if r.key_type != KEY_TYPE_GROUP {
                    let m = format!("key_type {} is not served (only 0, a group)", r.key_type);
                    return c.with_error_code(INVALID_REQUEST).with_error_message(Some(s(&m)));
                }
                match self.coordinator_of(key) {
                    Ok((id, host, port)) => c
                        .with_node_id(WireBrokerId(id))
                        .with_host(s(&host))
                        .with_port(i32::from(port)),
                    Err(error) => c.with_error_code(error).with_host(s("")).with_port(-1),
                }
            })
            .collect();
        let resp = FindCoordinatorResponse::default().with_coordinators(coordinators);
        respond(ApiKey::FindCoordinator, v, corr, &resp)
    }

    /// The broker (id, host, port) leading the group's `__consumer_offsets` partition, else
    /// COORDINATOR_NOT_AVAILABLE (asking for the topic's creation when it is missing).
    fn coordinator_of(&mut self, group_id: &str) -> Result<(i32, String, u16), i16> {
        let n = self.config.offsets_topic_num_partitions;
        let Some(topic) = self.image.topic(OFFSETS_TOPIC) else {
            self.groups.want_offsets_topic();
            return Err(err::COORDINATOR_NOT_AVAILABLE);
        };
        let part = topic
            .partitions
            .get(&partition_for(group_id, n))
            .ok_or(err::COORDINATOR_NOT_AVAILABLE)?;
        let b = self
            .image
            .brokers
            .get(&part.leader)
            .filter(|b| !b.fenced)
            .ok_or(err::COORDINATOR_NOT_AVAILABLE)?;
        Ok((b.id, b.host.clone(), b.port))
    }

    pub(super) fn join_group(
        &mut self,
        disk: &mut dyn Disk,
        w: Waiter,
        client_id: String,
        r: JoinGroupRequest,
        now_ms: i64,
    ) -> Result<Reply, Failure> {
        let req = group::JoinGroupRequest {
            group_id: r.group_id.0.to_string(),
            member_id: r.member_id.to_string(),
            client_id,
            client_host: String::new(),
            session_timeout_ms: r.session_timeout_ms,
            rebalance_timeout_ms: r.rebalance_timeout_ms,
            protocol_type: r.protocol_type.to_string(),
            protocols: r
                .protocols
                .iter()
                .map(|p| (p.name.to_string(), p.metadata.to_vec()))
                .collect(),
            require_known_member_id: true,
        };
        self.group_call(disk, w, now_ms, |c, id, rng| c.join_group(id, req, now_ms, rng))
    }

    pub(super) fn sync_group(
        &mut self,
        disk: &mut dyn Disk,
        w: Waiter,
        r: SyncGroupRequest,
        now_ms: i64,
    ) -> Result<Reply, Failure> {
        let req = group::SyncGroupRequest {
            group_id: r.group_id.0.to_string(),
            generation_id: r.generation_id,
            member_id: r.member_id.to_string(),
            protocol_type: r.protocol_type.as_ref().map(|x| x.to_string()),
            protocol_name: r.protocol_name.as_ref().map(|x| x.to_string()),
            assignments: r
                .assignments
                .iter()
                .map(|a| (a.member_id.to_string(), a.assignment.to_vec()))
                .collect(),
        };
        self.group_call(disk, w, now_ms, |c, id, _| c.sync_group(id, req, now_ms))
    }

    pub(super) fn heartbeat(
        &mut self,
        disk: &mut dyn Disk,
        w: Waiter,
        r: HeartbeatRequest,
        now_ms: i64,
    ) -> Result<Reply, Failure> {
        let (g, m) = (r.group_id.0.to_string(), r.member_id.to_string());
        self.group_call(disk, w, now_ms, |c, id, _| {
            c.heartbeat(id, &g, r.generation_id, &m, now_ms)
        })
    }

    pub(super) fn leave_group(
        &mut self,
        disk: &mut dyn Disk,
        w: Waiter,
        r: LeaveGroupRequest,
        now_ms: i64,
    ) -> Result<Reply, Failure> {
        let g = r.group_id.0.to_string();
        let members: Vec<String> = r.members.iter().map(|m| m.member_id.to_string()).collect();
        self.group_call(disk, w, now_ms, |c, id, _| c.leave_group(id, &g, &members, now_ms))
    }

    pub(super) fn offset_commit(
        &mut self,
        disk: &mut dyn Disk,
        w: Waiter,
        r: OffsetCommitRequest,
        now_ms: i64,
    ) -> Result<Reply, Failure> {
        let offsets = r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| group::CommitOffset {
                    tp: TopicPartition::new(t.name.0.to_string(), p.partition_index),
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_deref().unwrap_or("").to_string(),
                })
            })
            .collect();
        let req = group::OffsetCommitRequest {
            group_id: r.group_id.0.to_string(),
            generation_id: r.generation_id_or_member_epoch,
            member_id: r.member_id.to_string(),
            offsets,
        };
        self.group_call(disk, w, now_ms, |c, id, _| c.offset_commit(id, req, now_ms))
    }

    /// OffsetFetch v8: answered at once from the coordinator's committed offsets, per group.
    pub(super) fn offset_fetch(&self, r: &OffsetFetchRequest, v: i16, corr: i32) -> Result<Reply, Failure> {
        let groups = r
            .groups
            .iter()
            .map(|g| {
                let wanted: Option<Vec<TopicPartition>> = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .flat_map(|t| {
                            let name = t.name.0.to_string();
                            t.partition_indexes
                                .iter()
                                .map(move |p| TopicPartition::new(name.clone(), *p))
                        })
                        .collect()
                });
                let fetched = self.groups.coordinator.fetch_offsets(&g.group_id, wanted.as_deref());
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(fetched.error_code)
                    .with_topics(fetched_topics(&fetched.offsets))
            })
            .collect();
        respond(
            ApiKey::OffsetFetch,
            v,
            corr,
            &OffsetFetchResponse::default().with_groups(groups),
        )
    }

    /// DescribeGroups v5: NOT_COORDINATOR for groups led elsewhere; an unknown group is `Dead`, as Kafka
    /// answers.
    pub(super) fn describe_groups(&self, r: &DescribeGroupsRequest, v: i16, corr: i32) -> Result<Reply, Failure> {
        let c = &self.groups.coordinator;
        let groups = r
            .groups
            .iter()
            .map(|g| {
                let d = DescribedGroup::default().with_group_id(g.clone());
                if !c.is_coordinator_for(g) {
                    return d.with_error_code(err::NOT_COORDINATOR);
                }
                let Some(desc) = c.describe(g) else {
                    return d.with_group_state(s(GroupState::Dead.name()));
                };
                let members = desc
                    .members
                    .iter()
                    .map(|m| {
                        DescribedGroupMember::default()
                            .with_member_id(s(&m.member_id))
                            .with_client_id(s(&m.client_id))
                            .with_client_host(s(&m.client_host))
                            .with_member_metadata(Bytes::from(m.metadata.clone()))
                            .with_member_assignment(Bytes::from(m.assignment.clone()))
                    })
                    .collect();
                d.with_group_state(s(desc.state.name()))
                    .with_protocol_type(s(&desc.protocol_type))
                    .with_protocol_data(s(&desc.protocol_name))
                    .with_members(members)
            })
            .collect();
        let resp = DescribeGroupsResponse::default().with_groups(groups);
        respond(ApiKey::DescribeGroups, v, corr, &resp)
    }

    /// ListGroups v4: the groups this broker coordinates, filtered by state names (KIP-518).
    pub(super) fn list_groups(&self, r: &ListGroupsRequest, v: i16, corr: i32) -> Result<Reply, Failure> {
        let groups = self
            .groups
            .coordinator
            .describe_all()
            .into_iter()
            .filter(|d| {
                r.states_filter.is_empty() || r.states_filter.iter().any(|f| f.eq_ignore_ascii_case(d.state.name()))
            })
            .map(|d| {
                ListedGroup::default()
                    .with_group_id(GroupId(s(&d.group_id)))
                    .with_protocol_type(s(&d.protocol_type))
                    .with_group_state(s(d.state.name()))
            })
            .collect();
        let resp = ListGroupsResponse::default()
            .with_error_code(code::NONE)
            .with_groups(groups);
        respond(ApiKey::ListGroups, v, corr, &resp)
    }
}

fn fetched_topics(offsets: &[group::FetchedOffset]) -> Vec<OffsetFetchResponseTopics> {
    let mut topics: Vec<OffsetFetchResponseTopics> = Vec::new();
    for o in offsets {
        let p = OffsetFetchResponsePartitions::default()
            .with_partition_index(o.tp.partition)
            .with_committed_offset(o.offset)
            .with_committed_leader_epoch(o.leader_epoch)
            .with_metadata(Some(s(&o.metadata)))
            .with_error_code(o.error_code);
        match topics.iter_mut().find(|t| t.name.0.as_str() == o.tp.topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                OffsetFetchResponseTopics::default()
                    .with_name(TopicName(s(&o.tp.topic)))
                    .with_partitions(vec![p]),
            ),
        }
    }
    topics
}

/// Encodes the coordinator's answer to the request `w` waits on.
pub(super) fn encode_group_response(w: &Waiter, response: Response) -> Result<Reply, EncodeError> {
    let (v, corr) = (w.version, w.correlation_id);
    let key = match &response {
        Response::JoinGroup(_) => ApiKey::JoinGroup,
        Response::SyncGroup(_) => ApiKey::SyncGroup,
        Response::Heartbeat { .. } => ApiKey::Heartbeat,
        Response::LeaveGroup(_) => ApiKey::LeaveGroup,
        Response::OffsetCommit { .. } => ApiKey::OffsetCommit,
        Response::OffsetFetch(_) => ApiKey::OffsetFetch,
    };
    if key != w.key {
        return Err(EncodeError {
            api: w.key as i16,
            version: v,
            reason: format!("the coordinator answered a {:?} request with a {key:?} response", w.key),
        });
    }
    let body = match response {
        Response::JoinGroup(r) => {
            let members = r
                .members
                .iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(s(&m.member_id))
                        .with_metadata(Bytes::from(m.metadata.clone()))
                })
                .collect();
            let body = JoinGroupResponse::default()
                .with_error_code(r.error_code)
                .with_generation_id(r.generation_id)
                .with_protocol_type(r.protocol_type.as_deref().map(s))
                .with_protocol_name(r.protocol_name.as_deref().map(s))
                .with_leader(s(&r.leader))
                .with_member_id(s(&r.member_id))
                .with_members(members);
            encode_response(ApiKey::JoinGroup, v, corr, &body)
        }
        Response::SyncGroup(r) => {
            let body = SyncGroupResponse::default()
                .with_error_code(r.error_code)
                .with_protocol_type(r.protocol_type.as_deref().map(s))
                .with_protocol_name(r.protocol_name.as_deref().map(s))
                .with_assignment(Bytes::from(r.assignment));
            encode_response(ApiKey::SyncGroup, v, corr, &body)
        }
        Response::Heartbeat { error_code } => encode_response(
            ApiKey::Heartbeat,
            v,
            corr,
            &HeartbeatResponse::default().with_error_code(error_code),
        ),
        Response::LeaveGroup(r) => {
            let members = r
                .members
                .iter()
                .map(|(m, c)| MemberResponse::default().with_member_id(s(m)).with_error_code(*c))
                .collect();
            let body = LeaveGroupResponse::default()
                .with_error_code(r.error_code)
                .with_members(members);
            encode_response(ApiKey::LeaveGroup, v, corr, &body)
        }
        Response::OffsetCommit { partitions } => {
            let mut topics: Vec<OffsetCommitResponseTopic> = Vec::new();
            for (tp, c) in partitions {
                let p = OffsetCommitResponsePartition::default()
                    .with_partition_index(tp.partition)
                    .with_error_code(c);
                match topics.iter_mut().find(|t| t.name.0.as_str() == tp.topic) {
                    Some(t) => t.partitions.push(p),
                    None => topics.push(
                        OffsetCommitResponseTopic::default()
                            .with_name(TopicName(s(&tp.topic)))
                            .with_partitions(vec![p]),
                    ),
                }
            }
            encode_response(
                ApiKey::OffsetCommit,
                v,
                corr,
                &OffsetCommitResponse::default().with_topics(topics),
            )
        }
        Response::OffsetFetch(r) => {
            // Answered at once by `offset_fetch`; the coordinator's own path is encoded for completeness.
            let group = OffsetFetchResponseGroup::default()
                .with_error_code(r.error_code)
                .with_topics(fetched_topics(&r.offsets));
            encode_response(
                ApiKey::OffsetFetch,
                v,
                corr,
                &OffsetFetchResponse::default().with_groups(vec![group]),
            )
        }
    }?;
    Ok(Reply::Respond(body))
}
