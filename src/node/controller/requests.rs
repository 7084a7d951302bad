//! The controller's broker-facing APIs between Kafka's wire form (kafka-protocol) and the controller core's
//! requests and replies: BrokerRegistration, BrokerHeartbeat, CreateTopics (KIP-919: admin clients may ask
//! the controller directly), AlterPartition v2 (topics by id) and AllocateProducerIds (KIP-730).

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{
    alter_partition_response as ap_resp, AllocateProducerIdsRequest, AllocateProducerIdsResponse,
    AlterPartitionRequest, AlterPartitionResponse, BrokerHeartbeatRequest, BrokerHeartbeatResponse, BrokerId,
    BrokerRegistrationRequest, BrokerRegistrationResponse, CreateTopicsRequest, CreateTopicsResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;

use crate::controller::{self, ResponseError};

fn code(e: Option<ResponseError>) -> i16 {
    e.map_or(0, |e| e.code())
}

pub fn registration(r: &BrokerRegistrationRequest) -> Result<controller::BrokerRegistrationRequest, String> {
    let Some(listener) = r.listeners.first() else {
        return Err(format!(
            "BrokerRegistration of broker {} names no listener",
            r.broker_id.0
        ));
    };
    Ok(controller::BrokerRegistrationRequest {
        broker_id: r.broker_id.0,
        incarnation_id: r.incarnation_id,
        host: listener.host.to_string(),
        port: listener.port,
        rack: r.rack.as_ref().map(|s| s.to_string()),
    })
}

pub fn registration_response(r: &controller::BrokerRegistrationReply) -> BrokerRegistrationResponse {
    BrokerRegistrationResponse::default()
        .with_error_code(code(r.error))
        .with_broker_epoch(r.broker_epoch)
}

pub fn heartbeat(r: &BrokerHeartbeatRequest) -> controller::BrokerHeartbeatRequest {
    controller::BrokerHeartbeatRequest {
        broker_id: r.broker_id.0,
        broker_epoch: r.broker_epoch,
        current_metadata_offset: r.current_metadata_offset,
        want_fence: r.want_fence,
        want_shut_down: r.want_shut_down,
    }
}

pub fn heartbeat_response(r: &controller::BrokerHeartbeatReply) -> BrokerHeartbeatResponse {
    BrokerHeartbeatResponse::default()
        .with_error_code(code(r.error))
        .with_is_caught_up(r.is_caught_up)
        .with_is_fenced(r.is_fenced)
        .with_should_shut_down(r.should_shut_down)
}

pub fn create_topics(r: &CreateTopicsRequest) -> controller::CreateTopicsRequest {
    let topics = r
        .topics
        .iter()
        .map(|t| controller::CreatableTopic {
            name: t.name.0.to_string(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            configs: t
                .configs
                .iter()
                .filter_map(|c| c.value.as_ref().map(|v| (c.name.to_string(), v.to_string())))
                .collect(),
        })
        .collect();
    controller::CreateTopicsRequest {
        topics,
        validate_only: r.validate_only,
    }
}

pub fn create_topics_response(r: &controller::CreateTopicsReply) -> CreateTopicsResponse {
    let topics = r
        .topics
        .iter()
        .map(|t| {
            let result = CreatableTopicResult::default()
                .with_name(kafka_protocol::messages::TopicName(StrBytes::from_string(
                    t.name.clone(),
                )))
                .with_topic_id(t.topic_id)
                .with_error_code(code(t.error))
                .with_error_message(t.error_message.clone().map(StrBytes::from_string))
                .with_num_partitions(t.num_partitions)
                .with_replication_factor(t.replication_factor);
            if t.error.is_none() {
                result.with_configs(Some(vec![]))
            } else {
                result
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

/// A CreateTopics answer that refuses every topic with `error` (NOT_CONTROLLER on a standby controller).
pub fn create_topics_refused(r: &CreateTopicsRequest, error: ResponseError) -> CreateTopicsResponse {
    let topics = r
        .topics
        .iter()
        .map(|t| {
            CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_error_code(error.code())
                .with_num_partitions(-1)
                .with_replication_factor(-1)
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

pub fn alter_partition(r: &AlterPartitionRequest) -> controller::AlterPartitionRequest {
    let partitions = r
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| controller::AlterPartitionData {
                topic_id: t.topic_id,
                partition: p.partition_index,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                new_isr: p
                    .new_isr_with_epochs
                    .iter()
                    .map(|m| controller::IsrMember {
                        broker_id: m.broker_id.0,
                        broker_epoch: m.broker_epoch,
                    })
                    .chain(p.new_isr.iter().map(|b| controller::IsrMember {
                        broker_id: b.0,
                        broker_epoch: -1,
                    }))
                    .collect(),
            })
        })
        .collect();
    controller::AlterPartitionRequest {
        broker_id: r.broker_id.0,
        broker_epoch: r.broker_epoch,
        partitions,
    }
}

pub fn alter_partition_response(r: &controller::AlterPartitionReply) -> AlterPartitionResponse {
    let mut topics: Vec<ap_resp::TopicData> = vec![];
    for p in &r.partitions {
        let data = ap_resp::PartitionData::default()
            .with_partition_index(p.partition)
            .with_error_code(code(p.error))
            .with_leader_id(BrokerId(p.leader))
            .with_leader_epoch(p.leader_epoch)
            .with_isr(p.isr.iter().map(|b| BrokerId(*b)).collect())
            .with_partition_epoch(p.partition_epoch);
        match topics.iter_mut().find(|t| t.topic_id == p.topic_id) {
            Some(t) => t.partitions.push(data),
            None => topics.push(
                ap_resp::TopicData::default()
                    .with_topic_id(p.topic_id)
                    .with_partitions(vec![data]),
            ),
        }
    }
    AlterPartitionResponse::default()
        .with_error_code(code(r.error))
        .with_topics(topics)
}

pub fn allocate_producer_ids(r: &AllocateProducerIdsRequest) -> controller::AllocateProducerIdsRequest {
    controller::AllocateProducerIdsRequest {
        broker_id: r.broker_id.0,
        broker_epoch: r.broker_epoch,
    }
}

pub fn allocate_producer_ids_response(r: &controller::AllocateProducerIdsReply) -> AllocateProducerIdsResponse {
    AllocateProducerIdsResponse::default()
        .with_error_code(code(r.error))
        .with_producer_id_start(ProducerId(r.producer_id_start))
        .with_producer_id_len(r.producer_id_len.clamp(0, i32::MAX as i64) as i32)
}

/// DeleteTopics v6: each topic by name, or by id when the name is null (KIP-516).
pub fn delete_topics(r: &kafka_protocol::messages::DeleteTopicsRequest) -> Vec<controller::DeletableTopic> {
    r.topics
        .iter()
        .map(|t| controller::DeletableTopic {
            name: t.name.as_ref().map(|n| n.0.to_string()),
            topic_id: t.topic_id,
        })
        .collect()
}

pub fn delete_topics_response(
    results: &[controller::DeletableTopicResult],
) -> kafka_protocol::messages::DeleteTopicsResponse {
    use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
    let responses = results
        .iter()
        .map(|t| {
            DeletableTopicResult::default()
                .with_name(
                    t.name
                        .clone()
                        .map(|n| kafka_protocol::messages::TopicName(StrBytes::from_string(n))),
                )
                .with_topic_id(t.topic_id)
                .with_error_code(code(t.error))
                .with_error_message(t.error_message.clone().map(StrBytes::from_string))
        })
        .collect();
    kafka_protocol::messages::DeleteTopicsResponse::default().with_responses(responses)
}

/// CreatePartitions v2–3: new counts, with optional manual assignments of the new partitions.
pub fn create_partitions(r: &kafka_protocol::messages::CreatePartitionsRequest) -> controller::CreatePartitionsRequest {
    let topics = r
        .topics
        .iter()
        .map(|t| controller::CreatePartitionsTopic {
            name: t.name.0.to_string(),
            count: t.count,
            // A null or empty list: the controller places the new partitions.
            assignments: t
                .assignments
                .as_ref()
                .filter(|a| !a.is_empty())
                .map(|a| a.iter().map(|a| a.broker_ids.iter().map(|b| b.0).collect()).collect()),
        })
        .collect();
    controller::CreatePartitionsRequest {
        topics,
        validate_only: r.validate_only,
    }
}

pub fn create_partitions_response(
    results: &[controller::CreatePartitionsTopicResult],
) -> kafka_protocol::messages::CreatePartitionsResponse {
    use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
    let results = results
        .iter()
        .map(|t| {
            CreatePartitionsTopicResult::default()
                .with_name(kafka_protocol::messages::TopicName(StrBytes::from_string(
                    t.name.clone(),
                )))
                .with_error_code(code(t.error))
                .with_error_message(t.error_message.clone().map(StrBytes::from_string))
        })
        .collect();
    kafka_protocol::messages::CreatePartitionsResponse::default().with_results(results)
}
