//! The replicated metadata state. It changes ONLY through [`ControllerState::replay`], so the active
//! controller (which replays its own records) and a controller recovering from the log share one path.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::records::Record;
use crate::metadata::{BrokerInfo, MetadataImage, PartitionImage, TopicImage};
use crate::types::{BrokerId, LeaderEpoch, PartitionEpoch};

/// A broker's registration (Kafka's `BrokerRegistration`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub id: BrokerId,
    pub incarnation_id: Uuid,
    pub epoch: i64,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    pub fenced: bool,
    /// Controlled shutdown begun (KIP-841): not eligible as leader or new ISR member.
    pub in_controlled_shutdown: bool,
    /// Offset of the RegisterBroker record: the broker is unfenced once its metadata reaches it (KIP-631).
    pub registration_offset: i64,
    /// Offset of the BrokerShutdown record, -1 if none: the broker may stop once every active broker's
    /// metadata reached it (Kafka's `controlledShutdownOffset`), so they know the new leaders.
    pub controlled_shutdown_offset: i64,
}

impl BrokerRegistration {
    /// Unfenced and not shutting down: may lead and join ISRs.
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }
}

/// One partition (Kafka's `PartitionRegistration`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionRegistration {
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub leader: BrokerId,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicState {
    pub name: String,
    pub partitions: BTreeMap<i32, PartitionRegistration>,
}

/// A record that does not fit the state it is replayed on (a bug or a foreign log); the state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("record at offset {offset} names broker {broker_id}, which is not registered")]
    UnknownBroker { offset: i64, broker_id: BrokerId },
    #[error("record at offset {offset} names topic id {topic_id}, which does not exist")]
    UnknownTopic { offset: i64, topic_id: Uuid },
    #[error("record at offset {offset} names partition {partition} of topic id {topic_id}, which does not exist")]
    UnknownPartition {
        offset: i64,
        topic_id: Uuid,
        partition: i32,
    },
    #[error("record at offset {offset} creates topic {name}, which exists")]
    DuplicateTopic { offset: i64, name: String },
    #[error("record at offset {offset} is not after the last replayed offset {last}")]
    OffsetNotIncreasing { offset: i64, last: i64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerState {
    pub brokers: BTreeMap<BrokerId, BrokerRegistration>,
    pub topics: BTreeMap<Uuid, TopicState>,
    pub topic_ids: BTreeMap<String, Uuid>,
    /// Topic configs by topic name (ConfigRecord).
    pub configs: BTreeMap<String, BTreeMap<String, String>>,
    /// The broker epoch the next registration gets (a counter: epochs only grow).
    pub next_broker_epoch: i64,
    /// The first producer id not handed out yet.
    pub next_producer_id: i64,
    /// Offset of the last replayed record's Raft entry, -1 before any.
    pub last_offset: i64,
}

impl Default for ControllerState {
    fn default() -> Self {
        ControllerState {
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            topic_ids: BTreeMap::new(),
            configs: BTreeMap::new(),
            next_broker_epoch: 1,
            next_producer_id: 0,
            last_offset: -1,
        }
    }
}

impl ControllerState {
    /// Applies one record found at `offset` (its Raft entry's offset; one entry may hold several records,
    /// so equal offsets are allowed, decreasing ones are not).
    pub fn replay(&mut self, offset: i64, record: &Record) -> Result<(), ReplayError> {
        if offset < self.last_offset {
            let last = self.last_offset;
            return Err(ReplayError::OffsetNotIncreasing { offset, last });
        }
        match record {
            Record::RegisterBroker {
                broker_id,
                incarnation_id,
                broker_epoch,
                host,
                port,
                rack,
            } => {
                let reg = BrokerRegistration {
                    id: *broker_id,
                    incarnation_id: *incarnation_id,
                    epoch: *broker_epoch,
                    host: host.clone(),
                    port: *port,
                    rack: rack.clone(),
                    fenced: true,
                    in_controlled_shutdown: false,
                    registration_offset: offset,
                    controlled_shutdown_offset: -1,
                };
                self.brokers.insert(*broker_id, reg);
                self.next_broker_epoch = self.next_broker_epoch.max(broker_epoch + 1);
            }
            Record::FenceBroker { id, .. } => self.broker_mut(offset, *id)?.fenced = true,
            Record::UnfenceBroker { id, .. } => self.broker_mut(offset, *id)?.fenced = false,
            Record::BrokerShutdown { id, .. } => {
                let broker = self.broker_mut(offset, *id)?;
                broker.in_controlled_shutdown = true;
                broker.controlled_shutdown_offset = offset;
            }
            Record::Topic { name, topic_id } => self.replay_topic(offset, name, *topic_id)?,
            Record::RemoveTopic { topic_id } => {
                let topic = self.topics.remove(topic_id).ok_or(ReplayError::UnknownTopic {
                    offset,
                    topic_id: *topic_id,
                })?;
                self.topic_ids.remove(&topic.name);
                // Kafka's ConfigurationControlManager drops the topic's configs with it.
                self.configs.remove(&topic.name);
            }
            Record::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
            } => {
                let topic = self.topic_mut(offset, *topic_id)?;
                let reg = PartitionRegistration {
                    replicas: replicas.clone(),
                    isr: isr.clone(),
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    partition_epoch: *partition_epoch,
                };
                topic.partitions.insert(*partition, reg);
            }
            Record::PartitionChange {
                topic_id,
                partition,
                isr,
                leader,
                ..
            } => {
                let part = self.partition_mut(offset, *topic_id, *partition)?;
                if let Some(isr) = isr {
                    part.isr = isr.clone();
                }
                if let Some(leader) = leader {
                    part.leader = *leader;
                    part.leader_epoch += 1;
                }
                part.partition_epoch += 1;
            }
            Record::Config { topic, key, value } => {
                let configs = self.configs.entry(topic.clone()).or_default();
                match value {
                    Some(v) => configs.insert(key.clone(), v.clone()),
                    None => configs.remove(key),
                };
            }
            Record::ProducerIds { next_producer_id, .. } => {
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
            }
        }
        self.last_offset = offset;
        Ok(())
    }

    fn replay_topic(&mut self, offset: i64, name: &str, topic_id: Uuid) -> Result<(), ReplayError> {
        if self.topic_ids.contains_key(name) || self.topics.contains_key(&topic_id) {
            let name = name.to_string();
            return Err(ReplayError::DuplicateTopic { offset, name });
        }
        self.topic_ids.insert(name.to_string(), topic_id);
        let topic = TopicState {
            name: name.to_string(),
            partitions: BTreeMap::new(),
        };
        self.topics.insert(topic_id, topic);
        Ok(())
    }

    fn broker_mut(&mut self, offset: i64, broker_id: BrokerId) -> Result<&mut BrokerRegistration, ReplayError> {
        self.brokers
            .get_mut(&broker_id)
            .ok_or(ReplayError::UnknownBroker { offset, broker_id })
    }

    fn topic_mut(&mut self, offset: i64, topic_id: Uuid) -> Result<&mut TopicState, ReplayError> {
        self.topics
            .get_mut(&topic_id)
            .ok_or(ReplayError::UnknownTopic { offset, topic_id })
    }

    fn partition_mut(
        &mut self,
        offset: i64,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<&mut PartitionRegistration, ReplayError> {
        self.topic_mut(offset, topic_id)?
            .partitions
            .get_mut(&partition)
            .ok_or(ReplayError::UnknownPartition {
                offset,
                topic_id,
                partition,
            })
    }

    /// Registered, unfenced and not in controlled shutdown.
    pub fn is_active(&self, broker: BrokerId) -> bool {
        self.brokers.get(&broker).is_some_and(|b| b.is_active())
    }

    /// Active brokers by id: the ones new replicas go to.
    pub fn active_brokers(&self) -> Vec<BrokerId> {
        self.brokers.values().filter(|b| b.is_active()).map(|b| b.id).collect()
    }

    pub fn partition(&self, topic_id: Uuid, partition: i32) -> Option<&PartitionRegistration> {
        self.topics.get(&topic_id)?.partitions.get(&partition)
    }

    /// Every partition, as (topic id, index, registration), in order.
    pub fn partitions(&self) -> impl Iterator<Item = (Uuid, i32, &PartitionRegistration)> {
        self.topics
            .iter()
            .flat_map(|(id, t)| t.partitions.iter().map(move |(p, part)| (*id, *p, part)))
    }

    /// Whether `broker` leads any partition (controlled shutdown waits for none).
    pub fn leads_any(&self, broker: BrokerId) -> bool {
        self.partitions().any(|(_, _, p)| p.leader == broker)
    }

    /// A topic config, by the topic's name.
    pub fn topic_config(&self, topic: &str, key: &str) -> Option<&str> {
        self.configs.get(topic)?.get(key).map(String::as_str)
    }

    /// The image a broker serves from (`crate::metadata::MetadataImage`).
    pub fn image(&self, cluster_id: &str, controller_id: BrokerId) -> MetadataImage {
        let brokers = self.brokers.values().map(|b| (b.id, broker_info(b))).collect();
        let topics = self
            .topics
            .iter()
            .map(|(id, t)| (t.name.clone(), self.topic_image(*id, t)))
            .collect();
        MetadataImage {
            cluster_id: cluster_id.to_string(),
            controller_id,
            brokers,
            topics,
        }
    }

    fn topic_image(&self, topic_id: Uuid, topic: &TopicState) -> TopicImage {
        let partitions = topic
            .partitions
            .iter()
            .map(|(p, part)| {
                let image = PartitionImage {
                    replicas: part.replicas.clone(),
                    isr: part.isr.clone(),
                    leader: part.leader,
                    leader_epoch: part.leader_epoch,
                    partition_epoch: part.partition_epoch,
                };
                (*p, image)
            })
            .collect();
        TopicImage {
            topic_id,
            partitions,
            configs: self.configs.get(&topic.name).cloned().unwrap_or_default(),
        }
    }
}

fn broker_info(b: &BrokerRegistration) -> BrokerInfo {
    BrokerInfo {
        id: b.id,
        host: b.host.clone(),
        port: b.port,
        rack: b.rack.clone(),
        fenced: b.fenced,
        epoch: b.epoch,
        in_controlled_shutdown: b.in_controlled_shutdown,
    }
}
