//! The metadata image a broker serves from (KRaft's `MetadataImage`): brokers, topics with their KIP-516
//! topic ids, and per partition the replicas, ISR, leader, leader epoch and partition epoch (KIP-497).
//! Fed statically by the runner for now; the controller quorum becomes its source later.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::types::{BrokerId, LeaderEpoch, PartitionEpoch, TopicPartition};

/// `leader` of a partition without one (Kafka's `LeaderConstants.NO_LEADER`).
pub const NO_LEADER: BrokerId = -1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub id: BrokerId,
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub rack: Option<String>,
    /// A fenced broker (KIP-841) is registered but not live: it leads nothing and counts for no new replica.
    #[serde(default)]
    pub fenced: bool,
    /// The broker epoch of its current registration (KIP-903; -1 in a static image).
    #[serde(default = "unknown_epoch")]
    pub epoch: i64,
    /// In controlled shutdown (KIP-841): neither a new leader nor a new ISR member.
    #[serde(default)]
    pub in_controlled_shutdown: bool,
}

fn unknown_epoch() -> i64 {
    -1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionImage {
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub leader: BrokerId,
    pub leader_epoch: LeaderEpoch,
    pub partition_epoch: PartitionEpoch,
}

impl PartitionImage {
    /// A partition whose only replica, ISR member and leader is `broker`, at epoch 0.
    pub fn sole_replica(broker: BrokerId) -> PartitionImage {
        PartitionImage {
            replicas: vec![broker],
            isr: vec![broker],
            leader: broker,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub topic_id: Uuid,
    pub partitions: BTreeMap<i32, PartitionImage>,
    /// Topic-level configs by Kafka's names (`segment.bytes`, `min.insync.replicas`, ...), as KRaft keeps
    /// them in ConfigRecords; unset keys take the broker's defaults.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MetadataImage {
    #[serde(default)]
    pub cluster_id: String,
    /// The active controller's id, or -1 while the image is static.
    #[serde(default = "no_controller")]
    pub controller_id: BrokerId,
    pub brokers: BTreeMap<BrokerId, BrokerInfo>,
    /// By topic name.
    pub topics: BTreeMap<String, TopicImage>,
}

fn no_controller() -> BrokerId {
    -1
}

impl MetadataImage {
    /// Brokers `ids`, unfenced, each at `10.0.0.{id}:9092` (the simulator's addresses), with no controller
    /// known and no topics: what brokers started without a quorum serve from.
    pub fn unfenced(cluster_id: &str, ids: &[BrokerId]) -> MetadataImage {
        let info = |id| BrokerInfo {
            id,
            host: format!("10.0.0.{id}"),
            port: 9092,
            rack: None,
            fenced: false,
            epoch: -1,
            in_controlled_shutdown: false,
        };
        MetadataImage {
            cluster_id: cluster_id.into(),
            controller_id: -1,
            brokers: ids.iter().map(|&id| (id, info(id))).collect(),
            ..Default::default()
        }
    }

    /// Adds topic `name` (id `topic_id`) of `partitions` partitions, each with `broker` as its only replica
    /// and leader, at leader epoch 0.
    pub fn with_local_topic(mut self, name: &str, topic_id: u128, partitions: i32, broker: BrokerId) -> MetadataImage {
        let part = PartitionImage::sole_replica(broker);
        let topic = TopicImage {
            topic_id: Uuid::from_u128(topic_id),
            partitions: (0..partitions).map(|p| (p, part.clone())).collect(),
            configs: BTreeMap::new(),
        };
        self.topics.insert(name.into(), topic);
        self
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<(&String, &TopicImage)> {
        self.topics.iter().find(|(_, t)| t.topic_id == id)
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<&PartitionImage> {
        self.topics.get(&tp.topic)?.partitions.get(&tp.partition)
    }

    /// Unfenced brokers, by id.
    /// What this image says, as a line of the metadata trace (`node`, `incarnation` and `offset` filled in
    /// by the caller; the observer stamps the time).
    pub fn trace(&self, node: &str, incarnation: u32, offset: i64) -> crate::history::MetadataState {
        let partitions = self
            .topics
            .iter()
            .flat_map(|(name, t)| {
                t.partitions.iter().map(move |(p, part)| {
                    let leadership = crate::history::Leadership {
                        leader: part.leader,
                        leader_epoch: part.leader_epoch,
                        isr: part.isr.clone(),
                    };
                    (format!("{name}-{p}"), leadership)
                })
            })
            .collect();
        crate::history::MetadataState {
            time_us: 0,
            node: node.to_string(),
            incarnation,
            offset,
            fenced: self.brokers.values().filter(|b| b.fenced).map(|b| b.id).collect(),
            brokers: self.brokers.keys().copied().collect(),
            partitions,
        }
    }

    pub fn live_brokers(&self) -> Vec<BrokerId> {
        self.brokers.values().filter(|b| !b.fenced).map(|b| b.id).collect()
    }

    /// Every partition `broker` is a replica of, in order.
    pub fn partitions_of(&self, broker: BrokerId) -> Vec<(TopicPartition, Uuid, &PartitionImage)> {
        let mut out = Vec::new();
        for (name, topic) in &self.topics {
            for (p, part) in &topic.partitions {
                if part.replicas.contains(&broker) {
                    out.push((TopicPartition::new(name.clone(), *p), topic.topic_id, part));
                }
            }
        }
        out
    }

    /// What the controller does when `broker` comes back (the runner calls it for a restart): every
    /// partition it leads gets a new leader epoch and partition epoch.
    pub fn bump_leader_epochs_of(&mut self, broker: BrokerId) {
        for topic in self.topics.values_mut() {
            for part in topic.partitions.values_mut() {
                if part.leader == broker {
                    part.leader_epoch += 1;
                    part.partition_epoch += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> MetadataImage {
        MetadataImage::unfenced("c", &[1]).with_local_topic("orders", 7, 1, 1)
    }

    #[test]
    fn image_round_trips_through_json_with_the_topic_id_as_a_string() {
        let img = image();
        let json = serde_json::to_string(&img).unwrap();
        assert!(json.contains("00000000-0000-0000-0000-000000000007"), "{json}");
        assert_eq!(serde_json::from_str::<MetadataImage>(&json).unwrap(), img);
    }

    #[test]
    fn a_restart_bumps_the_leader_epochs_of_the_partitions_the_broker_leads() {
        let mut img = image();
        img.bump_leader_epochs_of(1);
        let p = img.partition(&TopicPartition::new("orders", 0)).unwrap();
        assert_eq!((p.leader_epoch, p.partition_epoch), (1, 1));
        img.bump_leader_epochs_of(2);
        assert_eq!(
            img.partition(&TopicPartition::new("orders", 0)).unwrap().leader_epoch,
            1
        );
        assert_eq!(img.partitions_of(1).len(), 1);
        assert_eq!(img.live_brokers(), vec![1]);
    }
}
