//! The KRaft metadata state machine (KIP-631), pure (layer L1): Kafka's `QuorumController` split as Kafka
//! splits it — request handlers return [`ControllerResult`] `{ records, response }` and never change the
//! replicated [`ControllerState`]; only [`Controller::replay`] (or [`ControllerState::replay`]) does.
//!
//! How the shell drives it (an active controller and a recovering one share one path):
//! 1. a request arrives: call the handler with `now_ms`; it returns records and a response;
//! 2. encode the records ([`encode_records`]) as ONE Raft entry (an atomic batch), propose it, and replay
//!    the records at once at that entry's offset — Kafka's active controller applies its own records before
//!    they commit (its timeline data structures), so the next request sees them;
//! 3. send the response once the entry commits. A controller that loses leadership drops its state and
//!    rebuilds it by replaying the committed log (decode with [`decode_records`]).
//!
//! The one piece of state that is not replicated is the session table (Kafka's `BrokerHeartbeatManager`):
//! when each broker was last heard from and the metadata offset it reported. It lives only in the active
//! controller; a new active controller starts every registered broker's session at its activation.
//!
//! Files: `records` (the record types), `state` (replay, image), `election` (PartitionChangeBuilder),
//! `cluster` (BrokerRegistration, BrokerHeartbeat, session fencing), `replication` (CreateTopics,
//! AlterPartition, AllocateProducerIds), `topics` (DeleteTopics, CreatePartitions).

mod cluster;
mod election;
pub mod records;
mod replication;
pub mod state;
#[cfg(test)]
mod tests;
mod topics;
#[cfg(test)]
mod topics_tests;

use std::collections::BTreeMap;

use crate::metadata::MetadataImage;
pub use crate::protocol::errors::ResponseError;
use crate::types::BrokerId;
pub use cluster::{BrokerHeartbeatReply, BrokerHeartbeatRequest, BrokerRegistrationReply, BrokerRegistrationRequest};
pub use records::{decode_records, encode_records, Record, RecordDecodeError};
pub use replication::{
    AllocateProducerIdsReply, AllocateProducerIdsRequest, AlterPartitionData, AlterPartitionReply,
    AlterPartitionRequest, AlterPartitionResult, CreatableTopic, CreatableTopicResult, CreateTopicsReply,
    CreateTopicsRequest, IsrMember, PRODUCER_ID_BLOCK_SIZE,
};
pub use state::{BrokerRegistration, ControllerState, PartitionRegistration, ReplayError, TopicState};
pub use topics::{
    CreatePartitionsRequest, CreatePartitionsTopic, CreatePartitionsTopicResult, DeletableTopic, DeletableTopicResult,
    DELETE_TOPIC_ENABLE,
};

/// The topic config (and controller default) that allows electing a leader from outside the ISR.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

/// The controller's settings, by Kafka's config keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerConfig {
    /// `node.id` of this controller (the image's `controller_id`).
    pub node_id: BrokerId,
    pub cluster_id: String,
    /// `broker.session.timeout.ms` (9000): a broker not heard from for longer is fenced.
    pub broker_session_timeout_ms: i64,
    /// `unclean.leader.election.enable` (false), for topics that do not set it.
    pub unclean_leader_election_enable: bool,
    /// `num.partitions` (1), for CreateTopics with `num_partitions` -1.
    pub num_partitions: i32,
    /// `default.replication.factor` (1), for CreateTopics with `replication_factor` -1.
    pub default_replication_factor: i16,
    /// `delete.topic.enable` (true): DeleteTopics is refused with TOPIC_DELETION_DISABLED when false.
    pub delete_topic_enable: bool,
}

impl ControllerConfig {
    /// Kafka's defaults.
    pub fn new(node_id: BrokerId, cluster_id: impl Into<String>) -> Self {
        ControllerConfig {
            node_id,
            cluster_id: cluster_id.into(),
            broker_session_timeout_ms: 9000,
            unclean_leader_election_enable: false,
            num_partitions: 1,
            default_replication_factor: 1,
            delete_topic_enable: true,
        }
    }
}

impl ControllerConfig {
    /// Sets one setting by Kafka's name (a scenario's `cluster.controller_config`); says why a key or value
    /// is refused.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let int = |v: &str| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| format!("{key} = {v:?}: not an integer"))
        };
        match key {
            "broker.session.timeout.ms" => {
                let ms = int(value)?;
                if ms < 1 {
                    return Err(format!("{key} = {ms}: must be positive"));
                }
                self.broker_session_timeout_ms = ms;
            }
            UNCLEAN_LEADER_ELECTION_ENABLE => {
                self.unclean_leader_election_enable = match value.trim() {
                    "true" => true,
                    "false" => false,
                    other => return Err(format!("{key} = {other:?}: must be true or false")),
                }
            }
            DELETE_TOPIC_ENABLE => {
                self.delete_topic_enable = match value.trim() {
                    "true" => true,
                    "false" => false,
                    other => return Err(format!("{key} = {other:?}: must be true or false")),
                }
            }
            "num.partitions" => {
                let n = int(value)?;
                self.num_partitions = i32::try_from(n)
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or(format!("{key} = {n}: must be 1 or more"))?;
            }
            "default.replication.factor" => {
                let n = int(value)?;
                self.default_replication_factor = i16::try_from(n)
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or(format!("{key} = {n}: must be 1 or more"))?;
            }
            other => return Err(format!("unknown controller config `{other}`")),
        }
        Ok(())
    }
}

/// What a handler returns: records to propose as one Raft entry, and the response to send once committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerResult<T> {
    pub records: Vec<Record>,
    pub response: T,
}

/// What the active controller knows of a broker's session (soft state, not replicated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokerSession {
    pub last_contact_ms: i64,
    /// The metadata offset the broker last reported (-1 before its first heartbeat).
    pub metadata_offset: i64,
}

/// The active controller: the replicated state plus the session table.
#[derive(Clone, Debug)]
pub struct Controller {
    config: ControllerConfig,
    state: ControllerState,
    sessions: BTreeMap<BrokerId, BrokerSession>,
    /// The latest `now_ms` a handler was given (sessions of brokers first seen in a replay start there).
    now_ms: i64,
}

impl Controller {
    /// Becomes the active controller over `state` (replayed from the committed log) at `now_ms`: every
    /// registered broker's session starts now, as Kafka's new active controller does.
    pub fn new(config: ControllerConfig, state: ControllerState, now_ms: i64) -> Self {
        let sessions = state
            .brokers
            .keys()
            .map(|id| {
                let session = BrokerSession {
                    last_contact_ms: now_ms,
                    metadata_offset: -1,
                };
                (*id, session)
            })
            .collect();
        Controller {
            config,
            state,
            sessions,
            now_ms,
        }
    }

    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    pub fn state(&self) -> &ControllerState {
        &self.state
    }

    pub fn session(&self, broker: BrokerId) -> Option<&BrokerSession> {
        self.sessions.get(&broker)
    }

    /// Applies one record of the Raft entry at `offset`. The only way the replicated state changes.
    pub fn replay(&mut self, offset: i64, record: &Record) -> Result<(), ReplayError> {
        self.state.replay(offset, record)?;
        if let Record::RegisterBroker { broker_id, .. } = record {
            let now_ms = self.now_ms;
            self.sessions.entry(*broker_id).or_insert(BrokerSession {
                last_contact_ms: now_ms,
                metadata_offset: -1,
            });
        }
        Ok(())
    }

    /// Replays every record of one Raft entry.
    pub fn replay_all(&mut self, offset: i64, records: &[Record]) -> Result<(), ReplayError> {
        records.iter().try_for_each(|r| self.replay(offset, r))
    }

    /// The image brokers serve from: brokers (with their fenced flag), topics, partitions, configs.
    pub fn image(&self) -> MetadataImage {
        self.state.image(&self.config.cluster_id, self.config.node_id)
    }

    fn observe_now(&mut self, now_ms: i64) {
        self.now_ms = self.now_ms.max(now_ms);
    }
}
