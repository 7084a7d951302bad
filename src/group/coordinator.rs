//! The group coordinator (Kafka's classic `GroupCoordinator` + `GroupMetadata`), pure.
//!
//! States (`GroupState`), as Kafka's doc table has them:
//!
//! | from | to | when |
//! |---|---|---|
//! | Empty | PreparingRebalance | a member joins (the first join waits `group.initial.rebalance.delay.ms`) |
//! | PreparingRebalance | CompletingRebalance | every member rejoined, or the rebalance timeout passed |
//! | PreparingRebalance | Empty | the join phase ended with no members |
//! | CompletingRebalance | Stable | the leader's SyncGroup assignment is stored in `__consumer_offsets` |
//! | CompletingRebalance, Stable | PreparingRebalance | a member joins, leaves, changes metadata or expires |
//! | any | Dead | the coordinator unloads the group's `__consumer_offsets` partition |
//!
//! The shell calls one handler per request with an opaque `request_id`, carries out the [`Effect`]s
//! ([`Effect::Append`] to the group's `__consumer_offsets` partition, then [`GroupCoordinator::on_append`]
//! with its outcome; [`Effect::Respond`] answers a request, perhaps much later: JoinGroup waits for the join
//! phase, SyncGroup for the leader), and calls [`GroupCoordinator::tick`] by
//! [`GroupCoordinator::next_deadline_ms`]. Offsets change only by [`GroupCoordinator::replay`] of records that
//! landed, so a coordinator that takes over ([`GroupCoordinator::load_partition`]) sees what its predecessor
//! made durable.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;

use super::partition_for;
use super::records::{GroupRecord, OffsetCommitValue};
use crate::types::TopicPartition;

use super::state::{Group, Member};

/// Kafka's error codes the coordinator answers with (`Errors.java`).
pub mod err {
    use crate::protocol::errors::ResponseError as E;
    pub const NONE: i16 = 0;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = E::CoordinatorNotAvailable.code();
    pub const NOT_COORDINATOR: i16 = E::NotCoordinator.code();
    pub const ILLEGAL_GENERATION: i16 = E::IllegalGeneration.code();
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = E::InconsistentGroupProtocol.code();
    pub const INVALID_GROUP_ID: i16 = E::InvalidGroupId.code();
    pub const UNKNOWN_MEMBER_ID: i16 = E::UnknownMemberId.code();
    pub const INVALID_SESSION_TIMEOUT: i16 = E::InvalidSessionTimeout.code();
    pub const REBALANCE_IN_PROGRESS: i16 = E::RebalanceInProgress.code();
    pub const INVALID_COMMIT_OFFSET_SIZE: i16 = E::InvalidCommitOffsetSize.code();
    pub const OFFSET_METADATA_TOO_LARGE: i16 = E::OffsetMetadataTooLarge.code();
    pub const MEMBER_ID_REQUIRED: i16 = E::MemberIdRequired.code();
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = E::UnknownTopicOrPartition.code();
    pub const NOT_ENOUGH_REPLICAS: i16 = E::NotEnoughReplicas.code();
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = E::NotEnoughReplicasAfterAppend.code();
    pub const REQUEST_TIMED_OUT: i16 = E::RequestTimedOut.code();
    pub const NOT_LEADER_OR_FOLLOWER: i16 = E::NotLeaderOrFollower.code();
    pub const KAFKA_STORAGE_ERROR: i16 = E::KafkaStorageError.code();
    pub const MESSAGE_TOO_LARGE: i16 = E::MessageTooLarge.code();
    pub const RECORD_LIST_TOO_LARGE: i16 = E::RecordListTooLarge.code();
}

/// Broker configuration of the coordinator (Kafka's names and defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_num_partitions: i32,
    /// `group.min.session.timeout.ms`.
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub group_max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            offsets_topic_num_partitions: super::OFFSETS_TOPIC_NUM_PARTITIONS_DEFAULT,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 3_000,
            offset_metadata_max_bytes: 4096,
        }
    }
}

/// Kafka's `GroupCoordinator.NewMemberJoinTimeoutMs`: a new member that never rejoins is dropped after this.
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinGroupRequest {
    pub group_id: String,
    /// Empty on a member's first join.
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    /// `max.poll.interval.ms` for the Java consumer (JoinGroup v1+).
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (protocol name, member metadata), in the member's order of preference.
    pub protocols: Vec<(String, Vec<u8>)>,
    /// JoinGroup v4+ (KIP-394): a first join gets MEMBER_ID_REQUIRED and its id, and joins again with it.
    pub require_known_member_id: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinMember {
    pub member_id: String,
    pub metadata: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinGroupResponse {
    pub error_code: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Every member and its metadata for the chosen protocol, for the leader only.
    pub members: Vec<JoinMember>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncGroupRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// From the leader: every member's assignment.
    pub assignments: Vec<(String, Vec<u8>)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncGroupResponse {
    pub error_code: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaveGroupResponse {
    pub error_code: i16,
    pub members: Vec<(String, i16)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitOffset {
    pub tp: TopicPartition,
    /// The next offset to read.
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetCommitRequest {
    pub group_id: String,
    /// -1 with an empty member id: a simple commit by a consumer that uses `assign` (allowed for an Empty group).
    pub generation_id: i32,
    pub member_id: String,
    pub offsets: Vec<CommitOffset>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedOffset {
    pub tp: TopicPartition,
    /// -1: nothing committed.
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub error_code: i16,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetFetchResponse {
    pub error_code: i16,
    pub offsets: Vec<FetchedOffset>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat { error_code: i16 },
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit { partitions: Vec<(TopicPartition, i16)> },
    OffsetFetch(OffsetFetchResponse),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Respond {
        request_id: u64,
        response: Response,
    },
    /// Append these records (acks=all) to `__consumer_offsets` partition `partition`, then report the outcome
    /// with [`GroupCoordinator::on_append`].
    Append {
        write_id: u64,
        partition: i32,
        records: Vec<GroupRecord>,
    },
}

/// What a write in flight completes.
#[derive(Clone, Debug)]
enum PendingWrite {
    Commit {
        request_id: u64,
        records: Vec<GroupRecord>,
        /// Partitions refused before the write (OFFSET_METADATA_TOO_LARGE), answered with the rest.
        rejected: Vec<(TopicPartition, i16)>,
    },
    /// The leader's assignment of `generation_id`.
    Assignment {
        group_id: String,
        generation_id: i32,
        assignments: BTreeMap<String, Vec<u8>>,
    },
    /// Group metadata with nothing waiting for it (an emptied group).
    Metadata,
    /// Offset tombstones of deleted partitions: replayed once they land, nobody answered.
    Tombstones { records: Vec<GroupRecord> },
}

/// A group as a checker or a test compares it: what survives a coordinator failover once no rebalance is
/// in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    pub state: GroupState,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    pub members: BTreeMap<String, Vec<u8>>,
    pub offsets: BTreeMap<TopicPartition, OffsetCommitValue>,
}

/// The coordinator of the groups whose `__consumer_offsets` partitions this broker leads.
#[derive(Clone, Debug)]
pub struct GroupCoordinator {
    pub(crate) config: GroupConfig,
    pub(crate) partitions: BTreeSet<i32>,
    pub(crate) groups: BTreeMap<String, Group>,
    writes: BTreeMap<u64, PendingWrite>,
    next_write_id: u64,
    pub(crate) outbox: Vec<Effect>,
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            partitions: BTreeSet::new(),
            groups: BTreeMap::new(),
            writes: BTreeMap::new(),
            next_write_id: 0,
            outbox: vec![],
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Effects produced since the last call, in order.
    pub fn poll(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.outbox)
    }

    /// Becomes coordinator of `partition` (this broker now leads it): rebuilds its groups from the records
    /// the partition holds, in log order. Members get a fresh session from `now_ms`, as Kafka does on load.
    pub fn load_partition(&mut self, partition: i32, records: &[GroupRecord], now_ms: i64) {
        self.partitions.insert(partition);
        for r in records {
            if partition_for(r.group_id(), self.config.offsets_topic_num_partitions) == partition {
                self.replay(r, now_ms);
            }
        }
    }

    /// Stops coordinating `partition` (leadership moved): its groups go Dead, and requests waiting in them
    /// are answered NOT_COORDINATOR.
    pub fn unload_partition(&mut self, partition: i32) {
        self.partitions.remove(&partition);
        let n = self.config.offsets_topic_num_partitions;
        let gone: Vec<String> = self
            .groups
            .keys()
            .filter(|g| partition_for(g, n) == partition)
            .cloned()
            .collect();
        for group_id in gone {
            let mut group = self.groups.remove(&group_id).expect("listed");
            group.state = GroupState::Dead;
            for m in group.members.values_mut() {
                self.fail_waiting(m, err::NOT_COORDINATOR);
            }
        }
        self.writes.retain(|_, w| match w {
            PendingWrite::Assignment { group_id, .. } => partition_for(group_id, n) != partition,
            _ => true,
        });
    }

    /// A new coordinator built from `records` of the partitions it leads.
    pub fn load(config: GroupConfig, partitions: &[i32], records: &[GroupRecord], now_ms: i64) -> Self {
        let mut c = Self::new(config);
        for &p in partitions {
            c.load_partition(p, records, now_ms);
        }
        c
    }

    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.get(group_id).map(|g| g.state)
    }

    pub fn view(&self, group_id: &str) -> Option<GroupView> {
        self.groups.get(group_id).map(Group::view)
    }

    pub fn group_ids(&self) -> impl Iterator<Item = &String> {
        self.groups.keys()
    }

    /// Whether this coordinator serves `group_id` now (else the answer is NOT_COORDINATOR).
    pub fn is_coordinator_for(&self, group_id: &str) -> bool {
        self.partitions
            .contains(&partition_for(group_id, self.config.offsets_topic_num_partitions))
    }

    /// Applies one record of `__consumer_offsets` (a landed write, or a load after failover).
    pub fn replay(&mut self, record: &GroupRecord, now_ms: i64) {
        match record {
            GroupRecord::OffsetCommit { group_id, tp, value } => {
                let group = self
                    .groups
                    .entry(group_id.clone())
                    .or_insert_with(|| Group::new(group_id, now_ms));
                match value {
                    Some(v) => {
                        group.offsets.insert(tp.clone(), v.clone());
                    }
                    None => {
                        group.offsets.remove(tp);
                    }
                }
            }
            GroupRecord::GroupMetadata { group_id, value: None } => {
                self.groups.remove(group_id);
            }
            GroupRecord::GroupMetadata {
                group_id,
                value: Some(v),
            } => {
                let group = self
                    .groups
                    .entry(group_id.clone())
                    .or_insert_with(|| Group::new(group_id, now_ms));
                group.load_metadata(v, now_ms);
            }
        }
    }

    pub(crate) fn append(&mut self, group_id: &str, records: Vec<GroupRecord>, pending: PendingWriteKind) {
        self.next_write_id += 1;
        let write_id = self.next_write_id;
        let partition = partition_for(group_id, self.config.offsets_topic_num_partitions);
        let write = match pending {
            PendingWriteKind::Commit { request_id, rejected } => PendingWrite::Commit {
                request_id,
                records: records.clone(),
                rejected,
            },
            PendingWriteKind::Assignment {
                generation_id,
                assignments,
            } => PendingWrite::Assignment {
                group_id: group_id.to_string(),
                generation_id,
                assignments,
            },
            PendingWriteKind::Metadata => PendingWrite::Metadata,
            PendingWriteKind::Tombstones => PendingWrite::Tombstones {
                records: records.clone(),
            },
        };
        self.writes.insert(write_id, write);
        self.outbox.push(Effect::Append {
            write_id,
            partition,
            records,
        });
    }

    /// The outcome of an [`Effect::Append`] (`error_code` 0: replicated).
    pub fn on_append(&mut self, write_id: u64, error_code: i16, now_ms: i64) {
        let Some(write) = self.writes.remove(&write_id) else {
            return;
        };
        match write {
            PendingWrite::Commit {
                request_id,
                records,
                rejected,
            } => {
                let code = commit_error_for_append_error(error_code);
                if code == err::NONE {
                    for r in &records {
                        self.replay(r, now_ms);
                    }
                }
                let mut partitions: Vec<(TopicPartition, i16)> = records
                    .iter()
                    .filter_map(|r| match r {
                        GroupRecord::OffsetCommit { tp, .. } => Some((tp.clone(), code)),
                        GroupRecord::GroupMetadata { .. } => None,
                    })
                    .collect();
                partitions.extend(rejected);
                partitions.sort();
                self.respond(request_id, Response::OffsetCommit { partitions });
            }
            PendingWrite::Assignment {
                group_id,
                generation_id,
                assignments,
            } => {
                self.on_assignment_stored(&group_id, generation_id, assignments, error_code, now_ms);
            }
            PendingWrite::Metadata => {}
            PendingWrite::Tombstones { records } => {
                if error_code == err::NONE {
                    for r in &records {
                        self.replay(r, now_ms);
                    }
                }
            }
        }
    }

    /// The (group, partition) pairs of offset commits appended but not yet landed.
    pub(crate) fn pending_commit_offsets(&self) -> BTreeSet<(String, TopicPartition)> {
        self.writes
            .values()
            .filter_map(|w| match w {
                PendingWrite::Commit { records, .. } => Some(records),
                _ => None,
            })
            .flatten()
            .filter_map(|r| match r {
                GroupRecord::OffsetCommit { group_id, tp, .. } => Some((group_id.clone(), tp.clone())),
                GroupRecord::GroupMetadata { .. } => None,
            })
            .collect()
    }

    pub(crate) fn respond(&mut self, request_id: u64, response: Response) {
        self.outbox.push(Effect::Respond { request_id, response });
    }

    /// Answers whatever the member waits for (a join or a sync) with `error_code`.
    pub(crate) fn fail_waiting(&mut self, m: &mut Member, error_code: i16) {
        if let Some(request_id) = m.join_request.take() {
            let r = JoinGroupResponse {
                error_code,
                generation_id: -1,
                member_id: m.member_id.clone(),
                ..Default::default()
            };
            self.respond(request_id, Response::JoinGroup(r));
        }
        if let Some(request_id) = m.sync_request.take() {
            let r = SyncGroupResponse {
                error_code,
                ..Default::default()
            };
            self.respond(request_id, Response::SyncGroup(r));
        }
    }

    /// A member id as Kafka makes it: `clientId-UUID`.
    pub(crate) fn new_member_id(client_id: &str, rng: &mut impl Rng) -> String {
        let uuid = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
        format!("{client_id}-{uuid}")
    }

    /// The earliest time `tick` has work to do.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.groups.values().filter_map(Group::next_deadline_ms).min()
    }
}

pub(crate) enum PendingWriteKind {
    Commit {
        request_id: u64,
        rejected: Vec<(TopicPartition, i16)>,
    },
    Assignment {
        generation_id: i32,
        assignments: BTreeMap<String, Vec<u8>>,
    },
    Metadata,
    Tombstones,
}

/// `GroupMetadataManager.storeOffsets`: how a failed append of offsets is reported to the committer.
pub(crate) fn commit_error_for_append_error(code: i16) -> i16 {
    match code {
        err::UNKNOWN_TOPIC_OR_PARTITION
        | err::NOT_ENOUGH_REPLICAS
        | err::NOT_ENOUGH_REPLICAS_AFTER_APPEND
        | err::REQUEST_TIMED_OUT => err::COORDINATOR_NOT_AVAILABLE,
        err::NOT_LEADER_OR_FOLLOWER | err::KAFKA_STORAGE_ERROR => err::NOT_COORDINATOR,
        err::MESSAGE_TOO_LARGE | err::RECORD_LIST_TOO_LARGE => err::INVALID_COMMIT_OFFSET_SIZE,
        other => other,
    }
}

/// One member as DescribeGroups shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    /// The member's metadata for the group's chosen protocol.
    pub metadata: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// One group as DescribeGroups and ListGroups show it (Kafka's `GroupSummary`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_name: String,
    pub members: Vec<MemberDescription>,
}

impl GroupState {
    /// Kafka's state names (`GroupState.toString`), as DescribeGroups and ListGroups answer them.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

impl GroupCoordinator {
    /// DescribeGroups' view of a group this coordinator holds.
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let g = self.groups.get(group_id)?;
        let protocol_name = g.protocol_name.clone().unwrap_or_default();
        let members = g
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: m.metadata_for(&protocol_name),
                assignment: m.assignment.clone(),
            })
            .collect();
        Some(GroupDescription {
            group_id: g.group_id.clone(),
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_name,
            members,
        })
    }

    /// Every group this coordinator holds, in group id order (ListGroups).
    pub fn describe_all(&self) -> Vec<GroupDescription> {
        self.groups.keys().filter_map(|g| self.describe(g)).collect()
    }
}
