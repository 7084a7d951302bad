//! Our metadata records (the `__cluster_metadata` log's content), modelled on KRaft's RegisterBrokerRecord,
//! FenceBrokerRecord, UnfenceBrokerRecord, BrokerRegistrationChangeRecord, TopicRecord, PartitionRecord,
//! PartitionChangeRecord, RemoveTopicRecord, ConfigRecord and ProducerIdsRecord (KIP-631). kafka-protocol does not ship them,
//! so they are our own, encoded as JSON: one Raft entry's `data` is one JSON array of records, an atomic
//! batch (what one controller request produced).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::types::{BrokerId, LeaderEpoch, PartitionEpoch};

/// One metadata record. Replaying the same records in the same order gives the same `ControllerState`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Record {
    /// A broker (re)registered (BrokerRegistration); it starts fenced (KIP-631).
    RegisterBroker {
        broker_id: BrokerId,
        incarnation_id: Uuid,
        broker_epoch: i64,
        host: String,
        port: u16,
        rack: Option<String>,
    },
    /// The broker lost its session or asked to be fenced: it leads nothing and joins no ISR.
    FenceBroker {
        id: BrokerId,
        epoch: i64,
    },
    /// The broker caught up with the metadata log (KIP-631) and is live again.
    UnfenceBroker {
        id: BrokerId,
        epoch: i64,
    },
    /// Controlled shutdown begun (BrokerRegistrationChangeRecord.inControlledShutdown, KIP-841).
    BrokerShutdown {
        id: BrokerId,
        epoch: i64,
    },
    Topic {
        name: String,
        topic_id: Uuid,
    },
    /// The topic is deleted (KRaft's RemoveTopicRecord, written for DeleteTopics): its partitions and its
    /// configs go with it; brokers delete their replicas' logs. A topic created later under the same name
    /// gets a new topic id (KIP-516).
    RemoveTopic {
        topic_id: Uuid,
    },
    Partition {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<BrokerId>,
        isr: Vec<BrokerId>,
        leader: BrokerId,
        leader_epoch: LeaderEpoch,
        partition_epoch: PartitionEpoch,
    },
    /// A change of one partition. Replay bumps `partition_epoch` always, and `leader_epoch` when `leader`
    /// is set, as Kafka's `PartitionRegistration.merge` does.
    PartitionChange {
        topic_id: Uuid,
        partition: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        isr: Option<Vec<BrokerId>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        leader: Option<BrokerId>,
        /// The leader was elected from outside the ISR (`unclean.leader.election.enable`): data may be lost.
        #[serde(default, skip_serializing_if = "is_false")]
        unclean: bool,
    },
    /// A topic config set (`value` Some) or removed (None), as KRaft's ConfigRecord for resource type TOPIC.
    Config {
        topic: String,
        key: String,
        value: Option<String>,
    },
    /// A block of producer ids handed to a broker (ProducerIdsRecord): ids below `next_producer_id` are used.
    ProducerIds {
        broker_id: BrokerId,
        broker_epoch: i64,
        next_producer_id: i64,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, thiserror::Error)]
#[error("metadata records at raft entry data of {len} bytes do not decode: {reason}")]
pub struct RecordDecodeError {
    pub len: usize,
    pub reason: String,
}

/// One Raft entry's `data`: the records of one controller result, as a JSON array.
pub fn encode_records(records: &[Record]) -> Vec<u8> {
    serde_json::to_vec(records).expect("records are plain data and always serialize")
}

pub fn decode_records(data: &[u8]) -> Result<Vec<Record>, RecordDecodeError> {
    serde_json::from_slice(data).map_err(|e| RecordDecodeError {
        len: data.len(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_records_round_trips_through_its_raft_entry_data() {
        let batch = vec![
            Record::RegisterBroker {
                broker_id: 1,
                incarnation_id: Uuid::from_u128(9),
                broker_epoch: 4,
                host: "broker-1".into(),
                port: 9092,
                rack: None,
            },
            Record::PartitionChange {
                topic_id: Uuid::from_u128(7),
                partition: 0,
                isr: Some(vec![1]),
                leader: None,
                unclean: true,
            },
            Record::Config {
                topic: "t".into(),
                key: "min.insync.replicas".into(),
                value: None,
            },
        ];
        let data = encode_records(&batch);
        assert_eq!(decode_records(&data).unwrap(), batch);
        let text = String::from_utf8(data).unwrap();
        assert!(text.contains("00000000-0000-0000-0000-000000000007"), "{text}");
        assert!(decode_records(b"[{\"type\":\"Nope\"}]").is_err());
        assert!(decode_records(b"").is_err());
    }
}
