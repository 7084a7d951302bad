//! The client's view of the cluster, from Metadata responses: brokers, and per topic the partitions with
//! their leader, leader epoch, replicas and ISR.

use std::collections::BTreeMap;

use kafka_protocol::messages::MetadataResponse;
use kafka_protocol::ResponseError;

use super::error::KafkaErrorCode;
use crate::types::{BrokerId, LeaderEpoch, TopicPartition};

/// Where a broker listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerAddress {
    /// `host:port`, as the client connects to it.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub error: Option<KafkaErrorCode>,
    /// -1 when the partition has no leader.
    pub leader_id: BrokerId,
    pub leader_epoch: LeaderEpoch,
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub offline_replicas: Vec<BrokerId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub error: Option<KafkaErrorCode>,
    pub topic_id: uuid::Uuid,
    pub is_internal: bool,
    pub partitions: BTreeMap<i32, PartitionMetadata>,
}

/// One Metadata response, or the client's cache merged from several.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    pub cluster_id: Option<String>,
    pub controller_id: BrokerId,
    pub brokers: BTreeMap<BrokerId, BrokerAddress>,
    pub topics: BTreeMap<String, TopicMetadata>,
}

impl ClusterMetadata {
    pub fn from_response(resp: &MetadataResponse) -> Self {
        let brokers = resp
            .brokers
            .iter()
            .map(|b| {
                let addr = BrokerAddress {
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.as_ref().map(|r| r.to_string()),
                };
                (b.node_id.0, addr)
            })
            .collect();
        let topics = resp
            .topics
            .iter()
            .filter_map(|t| {
                let name = t.name.as_ref()?.0.to_string();
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, partition_from(p)))
                    .collect();
                let topic = TopicMetadata {
                    error: ResponseError::try_from_code(t.error_code),
                    topic_id: t.topic_id,
                    is_internal: t.is_internal,
                    partitions,
                };
                Some((name, topic))
            })
            .collect();
        Self {
            cluster_id: resp.cluster_id.as_ref().map(|c| c.to_string()),
            controller_id: resp.controller_id.0,
            brokers,
            topics,
        }
    }

    /// Takes in a newer response: its broker list replaces ours, its topics replace ours.
    pub fn merge(&mut self, newer: &ClusterMetadata) {
        self.cluster_id = newer.cluster_id.clone();
        self.controller_id = newer.controller_id;
        self.brokers = newer.brokers.clone();
        for (name, topic) in &newer.topics {
            self.topics.insert(name.clone(), topic.clone());
        }
    }

    /// Forgets a topic, so that its next use asks for fresh metadata.
    pub fn invalidate(&mut self, topic: &str) {
        self.topics.remove(topic);
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<&PartitionMetadata> {
        self.topics.get(&tp.topic)?.partitions.get(&tp.partition)
    }

    /// The partition's leader and its address, if both are known.
    pub fn leader(&self, tp: &TopicPartition) -> Option<(BrokerId, &BrokerAddress)> {
        let p = self.partition(tp)?;
        if p.leader_id < 0 {
            return None;
        }
        Some((p.leader_id, self.brokers.get(&p.leader_id)?))
    }

    /// How many partitions a topic has, if known without error.
    pub fn partition_count(&self, topic: &str) -> Option<i32> {
        let t = self.topics.get(topic)?;
        if t.error.is_some() {
            return None;
        }
        i32::try_from(t.partitions.len()).ok()
    }
}

fn partition_from(p: &kafka_protocol::messages::metadata_response::MetadataResponsePartition) -> PartitionMetadata {
    let ids = |v: &[kafka_protocol::messages::BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    PartitionMetadata {
        error: ResponseError::try_from_code(p.error_code),
        leader_id: p.leader_id.0,
        leader_epoch: p.leader_epoch,
        replicas: ids(&p.replica_nodes),
        isr: ids(&p.isr_nodes),
        offline_replicas: ids(&p.offline_replicas),
    }
}
