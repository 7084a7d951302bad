//! The broker's group coordinator host (Kafka's `GroupCoordinator` wiring in `KafkaApis` and
//! `GroupMetadataManager`'s storage): owns a pure [`GroupCoordinator`] for the `__consumer_offsets`
//! partitions this broker leads, loads a partition from the local log when it becomes leader and unloads it
//! when it stops, appends the coordinator's records to the local leader log and completes them once the
//! high watermark covers them (acks=all, `offsets.commit.required.acks` -1), or fails them after
//! `offsets.commit.timeout.ms`. Requests the coordinator answers later (JoinGroup in a rebalance, SyncGroup
//! waiting for the leader, OffsetCommit waiting for the ISR) are parked ([`Reply::ParkGroup`]); their
//! replies come out of [`Broker::poll_parked`].

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::ApiKey;

use super::replica::Role;
use super::{partition_error, replica, Broker, ConnId, Failure, Reply};
use crate::group::{err, records::GroupRecord, GroupCoordinator, GroupState, Response, OFFSETS_TOPIC};
use crate::log::Disk;
use crate::protocol::batch::{batches, decode_records, BatchBuilder};
use crate::protocol::errors::code;
use crate::replication::AcksPurgatory;
use crate::types::{LeaderEpoch, TopicPartition};

/// The mark of an OffsetCommit refused with ILLEGAL_GENERATION or UNKNOWN_MEMBER_ID (a fenced member).
pub const STALE_COMMIT_REJECTED_MARK: &str = "stale-commit-rejected";
/// The mark of a coordinator that loaded a `__consumer_offsets` partition holding a committed offset.
pub const COORDINATOR_LOADED_OFFSETS_MARK: &str = "coordinator-loaded-offsets";
/// The mark of a coordinator appending offset tombstones for the partitions of a deleted topic.
pub const DELETED_TOPIC_OFFSETS_REMOVED_MARK: &str = "deleted-topic-offsets-removed";

/// Who waits for a coordinator request's answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Waiter {
    pub conn_id: ConnId,
    pub key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
}

/// The coordinator and what the broker keeps around it.
pub(super) struct Groups {
    pub coordinator: GroupCoordinator,
    next_request_id: u64,
    /// Requests the coordinator has not answered yet, by request id.
    waiting: BTreeMap<u64, Waiter>,
    /// Answers not yet handed to the shell, by request id.
    answered: BTreeMap<u64, (ConnId, Reply)>,
    /// The coordinator's appends waiting for the high watermark, by write id.
    writes: AcksPurgatory<u64, ()>,
    /// The `__consumer_offsets` partitions loaded, with the leader epoch they were loaded in.
    loaded: BTreeMap<i32, LeaderEpoch>,
    /// FindCoordinator found no `__consumer_offsets`: the shell should have it created.
    offsets_topic_wanted: bool,
}

impl Groups {
    pub fn new(config: crate::group::GroupConfig) -> Self {
        Self {
            coordinator: GroupCoordinator::new(config),
            next_request_id: 0,
            waiting: BTreeMap::new(),
            answered: BTreeMap::new(),
            writes: AcksPurgatory::default(),
            loaded: BTreeMap::new(),
            offsets_topic_wanted: false,
        }
    }

    /// Registers a request about to be handed to the coordinator; returns its request id.
    pub fn register(&mut self, waiter: Waiter) -> u64 {
        self.next_request_id += 1;
        self.waiting.insert(self.next_request_id, waiter);
        self.next_request_id
    }

    pub fn want_offsets_topic(&mut self) {
        self.offsets_topic_wanted = true;
    }
}

impl Broker {
    /// Runs `call` on the coordinator as request `waiter`, carries out the effects, and answers now or parks.
    pub(super) fn group_call(
        &mut self,
        disk: &mut dyn Disk,
        waiter: Waiter,
        now_ms: i64,
        call: impl FnOnce(&mut GroupCoordinator, u64, &mut rand_chacha::ChaCha8Rng),
    ) -> Result<Reply, Failure> {
        let request_id = self.groups.register(waiter);
        call(&mut self.groups.coordinator, request_id, &mut self.rng);
        self.pump_groups(disk, now_ms)?;
        Ok(match self.groups.answered.remove(&request_id) {
            Some((_, reply)) => reply,
            None => Reply::ParkGroup,
        })
    }

    /// Carries out the coordinator's effects until none are left: answers, appends, completed appends.
    pub(super) fn pump_groups(&mut self, disk: &mut dyn Disk, now_ms: i64) -> Result<(), Failure> {
        loop {
            let effects = self.groups.coordinator.poll();
            let completed = self.poll_group_writes(now_ms);
            if effects.is_empty() && completed.is_empty() {
                return Ok(());
            }
            for effect in effects {
                match effect {
                    crate::group::Effect::Respond { request_id, response } => self.group_answer(request_id, response),
                    crate::group::Effect::Append {
                        write_id,
                        partition,
                        records,
                    } => self.group_append(disk, write_id, partition, &records, now_ms)?,
                }
            }
            for (write_id, error_code) in completed {
                self.groups.coordinator.on_append(write_id, error_code, now_ms);
            }
        }
    }

    /// Answers the coordinator gave since the last call (for [`Broker::poll_parked`]).
    pub(super) fn take_group_answers(&mut self) -> Vec<(ConnId, Reply)> {
        std::mem::take(&mut self.groups.answered).into_values().collect()
    }

    /// Ticks the coordinator's timers and completes its appends (the shell calls `poll_parked` by
    /// [`Broker::next_parked_deadline`], which includes the coordinator's next deadline).
    pub(super) fn tick_groups(&mut self, disk: &mut dyn Disk, now_ms: i64) -> Result<(), Failure> {
        // A timer may set another one already due (an initial rebalance delay of 0 reschedules itself once,
        // as Kafka's `InitialDelayedJoin` does): tick until nothing is due, a bounded number of times.
        for _ in 0..16 {
            self.groups.coordinator.tick(now_ms);
            self.pump_groups(disk, now_ms)?;
            if self.groups.coordinator.next_deadline_ms().is_none_or(|d| d > now_ms) {
                break;
            }
        }
        Ok(())
    }

    /// The earliest time the coordinator or one of its appends needs a tick.
    pub(super) fn next_group_deadline(&self) -> Option<i64> {
        [
            self.groups.coordinator.next_deadline_ms(),
            self.groups.writes.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Forgets the coordinator requests of a closed connection (their late answers are dropped).
    pub(super) fn cancel_group_requests(&mut self, conn_id: ConnId) {
        self.groups.waiting.retain(|_, w| w.conn_id != conn_id);
        self.groups.answered.retain(|_, (c, _)| *c != conn_id);
    }

    /// Whether a FindCoordinator found `__consumer_offsets` missing since the last call: the shell asks the
    /// active controller to create it (or, with a static image, calls [`Broker::create_offsets_topic`]).
    pub fn take_offsets_topic_wanted(&mut self) -> bool {
        std::mem::take(&mut self.groups.offsets_topic_wanted)
    }

    fn group_answer(&mut self, request_id: u64, response: Response) {
        if let Response::OffsetCommit { partitions } = &response {
            let stale = partitions
                .iter()
                .any(|(_, c)| *c == err::ILLEGAL_GENERATION || *c == err::UNKNOWN_MEMBER_ID);
            if stale {
                self.marks.push(STALE_COMMIT_REJECTED_MARK);
            }
        }
        let Some(w) = self.groups.waiting.remove(&request_id) else {
            return; // its connection closed
        };
        let reply = super::group_apis::encode_group_response(&w, response).unwrap_or_else(|e| {
            tracing::error!(broker = self.config.node_id, "encoding a group response: {e}");
            Reply::Close(e.to_string())
        });
        self.groups.answered.insert(request_id, (w.conn_id, reply));
    }

    /// Appends a coordinator write to the local `__consumer_offsets` leader log and parks it for acks=all.
    fn group_append(
        &mut self,
        disk: &mut dyn Disk,
        write_id: u64,
        partition: i32,
        records: &[GroupRecord],
        now_ms: i64,
    ) -> Result<(), Failure> {
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
        let leader_epoch = match self.led_partition(&tp, -1) {
            Ok(part) => part.leader_epoch,
            Err(error) => {
                self.groups.coordinator.on_append(write_id, error, now_ms);
                return Ok(());
            }
        };
        let isr = self.known_isr(&tp).map_or(0, |i| i.len());
        if isr < self.min_insync_replicas(&tp) {
            self.groups
                .coordinator
                .on_append(write_id, code::NOT_ENOUGH_REPLICAS, now_ms);
            return Ok(());
        }
        let mut builder = BatchBuilder::new(now_ms);
        for r in records {
            let (key, value) = r.encode();
            builder.push(now_ms, Some(&key), value.as_deref(), &[]);
        }
        let mut batch = builder.build();
        let Some(log) = self.logs.get_mut(&tp) else {
            let error = code::UNKNOWN_TOPIC_OR_PARTITION;
            self.groups.coordinator.on_append(write_id, error, now_ms);
            return Ok(());
        };
        match log.append_as_leader(disk, &mut batch, leader_epoch, now_ms) {
            Ok(info) => {
                let leo = log.log_end_offset();
                if let Some(l) = self.leader_state_mut(&tp) {
                    l.on_leader_append(leo, now_ms);
                }
                let deadline_ms = now_ms.saturating_add(self.config.offsets_commit_timeout_ms);
                let waits = vec![(tp, info.last_offset + 1, leader_epoch)];
                self.groups.writes.park(write_id, (), deadline_ms, waits);
            }
            Err(e) => {
                let error = partition_error(&e)?;
                self.groups.coordinator.on_append(write_id, error, now_ms);
            }
        }
        Ok(())
    }

    /// The coordinator appends whose partitions reached the high watermark, failed, or timed out.
    fn poll_group_writes(&mut self, now_ms: i64) -> Vec<(u64, i16)> {
        let mut writes = std::mem::take(&mut self.groups.writes);
        let done = writes.poll(now_ms, |tp, required, epoch| self.acks_status(tp, required, epoch));
        self.groups.writes = writes;
        done.into_iter()
            .map(|(write_id, (), codes)| {
                let error = codes.values().copied().find(|c| *c != code::NONE).unwrap_or(code::NONE);
                (write_id, error)
            })
            .collect()
    }

    /// Loads the `__consumer_offsets` partitions this broker now leads and unloads those it no longer leads
    /// (Kafka's `onElection` / `onResignation`), after every change of roles.
    pub(super) fn sync_coordinator(&mut self, disk: &mut dyn Disk, now_ms: i64) -> Result<(), Failure> {
        let led: BTreeMap<i32, LeaderEpoch> = self
            .replicas
            .iter()
            .filter(|(tp, _)| tp.topic == OFFSETS_TOPIC)
            .filter_map(|(tp, role)| match role {
                Role::Leader(l) => Some((tp.partition, l.leader_epoch())),
                Role::Follower { .. } => None,
            })
            .collect();
        let gone: Vec<i32> = self
            .groups
            .loaded
            .iter()
            .filter(|(p, e)| led.get(p) != Some(e))
            .map(|(p, _)| *p)
            .collect();
        for p in gone {
            self.groups.coordinator.unload_partition(p);
            self.groups.loaded.remove(&p);
        }
        for (p, epoch) in led {
            if self.groups.loaded.contains_key(&p) {
                continue;
            }
            let records = self.read_group_records(disk, p)?;
            self.groups.coordinator.load_partition(p, &records, now_ms);
            self.groups.loaded.insert(p, epoch);
            let n = self.groups.coordinator.config().offsets_topic_num_partitions;
            let has_offsets = self
                .groups
                .coordinator
                .group_ids()
                .filter(|g| crate::group::partition_for(g, n) == p)
                .any(|g| self.groups.coordinator.view(g).is_some_and(|v| !v.offsets.is_empty()));
            if has_offsets {
                self.marks.push(COORDINATOR_LOADED_OFFSETS_MARK);
            }
        }
        self.pump_groups(disk, now_ms)
    }

    /// The group coordinator's side of a topic deletion (`BrokerMetadataPublisher` calls
    /// `groupCoordinator.onPartitionsDeleted` after the coordinator's elections and resignations): the
    /// groups this broker coordinates append tombstones for the deleted partitions' committed offsets.
    pub(super) fn on_partitions_deleted(
        &mut self,
        disk: &mut dyn Disk,
        deleted: &BTreeSet<TopicPartition>,
        now_ms: i64,
    ) -> Result<(), Failure> {
        if self.groups.coordinator.on_partitions_deleted(deleted) == 0 {
            return Ok(());
        }
        self.marks.push(DELETED_TOPIC_OFFSETS_REMOVED_MARK);
        self.pump_groups(disk, now_ms)
    }

    /// Every record of the local `__consumer_offsets` partition `partition`, in log order (records that do
    /// not decode are skipped, as Kafka's loader skips unknown keys).
    fn read_group_records(&mut self, disk: &mut dyn Disk, partition: i32) -> Result<Vec<GroupRecord>, Failure> {
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
        let node_id = self.config.node_id;
        let Some(log) = self.logs.get_mut(&tp) else {
            return Ok(vec![]);
        };
        let end = log.log_end_offset();
        let mut offset = log.log_start_offset();
        let mut out = Vec::new();
        while offset < end {
            let data = log
                .read(disk, offset, 1 << 20, None, true)
                .map_err(|e| replica::storage(&e))?;
            let before = offset;
            for batch in batches(&data.records) {
                let Ok((header, bytes)) = batch else { break };
                offset = offset.max(header.next_offset());
                let Ok(records) = decode_records(bytes) else {
                    tracing::warn!(
                        broker = node_id,
                        "{tp}: a batch at {} does not decode",
                        header.base_offset
                    );
                    continue;
                };
                for r in records.iter().filter(|r| r.offset >= before) {
                    let Some(key) = r.key.as_deref() else { continue };
                    match GroupRecord::decode(key, r.value.as_deref()) {
                        Ok(record) => out.push(record),
                        Err(e) => tracing::warn!(broker = node_id, "{tp}: record at {}: {e}", r.offset),
                    }
                }
            }
            if offset == before {
                break;
            }
        }
        Ok(out)
    }

    /// Creates `__consumer_offsets` the way a static image creates topics (one broker, no controller), with
    /// `offsets.topic.num.partitions` partitions and one replica each. `Err` is a storage failure.
    pub fn create_offsets_topic(&mut self, disk: &mut dyn Disk, now_ms: i64) -> Result<(), String> {
        if self.image.topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let t = self.offsets_topic_creatable(1);
        let created = self.create_topic(disk, &t, false, now_ms);
        let outcome = match created {
            Ok(Ok(_)) => self.sync_coordinator(disk, now_ms).map_err(|f| match f {
                Failure::Storage(r) => r,
                Failure::Encode(e) => e.to_string(),
            }),
            Ok(Err((error, message))) => Err(format!("creating {OFFSETS_TOPIC}: error {error}: {message}")),
            Err(Failure::Storage(r)) => {
                self.offline.get_or_insert_with(|| r.clone());
                Err(r)
            }
            Err(Failure::Encode(e)) => Err(e.to_string()),
        };
        outcome
    }

    /// The CreateTopics entry for `__consumer_offsets` (Kafka's `AutoTopicCreationManager` for internal
    /// topics: `offsets.topic.num.partitions`, the given replication factor, `cleanup.policy=compact`).
    pub fn offsets_topic_creatable(
        &self,
        replication_factor: i16,
    ) -> kafka_protocol::messages::create_topics_request::CreatableTopic {
        kafka_protocol::messages::create_topics_request::CreatableTopic::default()
            .with_name(kafka_protocol::messages::TopicName(
                kafka_protocol::protocol::StrBytes::from_static_str(OFFSETS_TOPIC),
            ))
            .with_num_partitions(self.config.offsets_topic_num_partitions)
            .with_replication_factor(replication_factor)
            .with_configs(vec![
                kafka_protocol::messages::create_topics_request::CreatableTopicConfig::default()
                    .with_name(kafka_protocol::protocol::StrBytes::from_static_str("cleanup.policy"))
                    .with_value(Some(kafka_protocol::protocol::StrBytes::from_static_str("compact"))),
            ])
    }

    /// The CreateTopics request the shell sends the active controller for `__consumer_offsets`
    /// (`offsets.topic.replication.factor` replicas: the controller refuses while fewer brokers are up).
    pub fn offsets_topic_request(&self) -> kafka_protocol::messages::CreateTopicsRequest {
        let t = self.offsets_topic_creatable(self.config.offsets_topic_replication_factor);
        kafka_protocol::messages::CreateTopicsRequest::default()
            .with_topics(vec![t])
            .with_timeout_ms(30_000)
    }

    /// The state of a group this broker coordinates (for tests and the state trace).
    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.coordinator.group_state(group_id)
    }

    /// The coordinator (read-only), for tests and observers.
    pub fn group_coordinator(&self) -> &GroupCoordinator {
        &self.groups.coordinator
    }
}
