//! Request body schemas, one per advertised layout, for the bounded walk of [`super::bounded`]. Each is
//! Kafka's message JSON (`clients/src/main/resources/common/message/*Request.json`) reduced to the fields
//! whose `versions` include the advertised ones, checked against kafka-protocol 0.18's generated encoders.

use kafka_protocol::messages::ApiKey;

use super::bounded::{array_of, array_of_structs, field, Field, Kind, Schema};

/// The request body schema of `key` at an advertised `version` (on either listener). Panics for an API no
/// listener advertises: callers check [`super::api::advertised_on`] first.
pub fn request_schema(key: ApiKey, version: i16) -> Schema {
    match key {
        ApiKey::ApiVersions if version >= 3 => Schema::new(vec![
            field("client_software_name", Kind::String),
            field("client_software_version", Kind::String),
        ]),
        ApiKey::ApiVersions => Schema::default(),
        ApiKey::Metadata => metadata_schema(),
        ApiKey::CreateTopics => create_topics_schema(),
        ApiKey::Produce => produce_schema(),
        ApiKey::Fetch => fetch_schema(),
        ApiKey::ListOffsets => list_offsets_schema(),
        ApiKey::InitProducerId => init_producer_id_schema(),
        ApiKey::FindCoordinator
        | ApiKey::JoinGroup
        | ApiKey::SyncGroup
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::OffsetCommit
        | ApiKey::OffsetFetch
        | ApiKey::DescribeGroups
        | ApiKey::ListGroups => super::group_schemas::group_schema(key),
        ApiKey::DeleteRecords => delete_records_schema(),
        ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch_schema(),
        ApiKey::Vote => vote_schema(),
        ApiKey::BeginQuorumEpoch => begin_quorum_epoch_schema(),
        ApiKey::EndQuorumEpoch => end_quorum_epoch_schema(),
        ApiKey::BrokerRegistration => broker_registration_schema(),
        ApiKey::BrokerHeartbeat => broker_heartbeat_schema(version),
        ApiKey::AlterPartition => alter_partition_schema(),
        ApiKey::AllocateProducerIds => allocate_producer_ids_schema(),
        ApiKey::DeleteTopics => delete_topics_schema(),
        ApiKey::CreatePartitions => create_partitions_schema(),
        other => panic!("no request schema for {other:?} v{version}: it is not advertised"),
    }
}

fn nullable_array_of_structs(fields: Vec<Field>) -> Kind {
    Kind::Array {
        elem: Box::new(Kind::Struct(Schema::new(fields))),
        nullable: true,
    }
}

/// MetadataRequest v12–13 (same layout).
fn metadata_schema() -> Schema {
    let topic = vec![field("topic_id", Kind::Uuid), field("name", Kind::NullableString)];
    Schema::new(vec![
        field("topics", nullable_array_of_structs(topic)),
        field("allow_auto_topic_creation", Kind::Bool),
        field("include_topic_authorized_operations", Kind::Bool),
    ])
}

/// CreateTopicsRequest v7.
fn create_topics_schema() -> Schema {
    let assignment = vec![
        field("partition_index", Kind::Int32),
        field("broker_ids", array_of(Kind::Int32)),
    ];
    let config = vec![field("name", Kind::String), field("value", Kind::NullableString)];
    let topic = vec![
        field("name", Kind::String),
        field("num_partitions", Kind::Int32),
        field("replication_factor", Kind::Int16),
        field("assignments", array_of_structs(assignment)),
        field("configs", array_of_structs(config)),
    ];
    Schema::new(vec![
        field("topics", array_of_structs(topic)),
        field("timeout_ms", Kind::Int32),
        field("validate_only", Kind::Bool),
    ])
}

/// ProduceRequest v9–11 (same layout; topics by name).
fn produce_schema() -> Schema {
    let partition = vec![field("index", Kind::Int32), field("records", Kind::Records)];
    let topic = vec![
        field("name", Kind::String),
        field("partition_data", array_of_structs(partition)),
    ];
    Schema::new(vec![
        field("transactional_id", Kind::NullableString),
        field("acks", Kind::Int16),
        field("timeout_ms", Kind::Int32),
        field("topic_data", array_of_structs(topic)),
    ])
}

/// FetchRequest v12 (topics by name; tagged ClusterId, KIP-595). The same layout serves clients and
/// follower replicas on the broker listener and KRaft voters fetching `__cluster_metadata` on the
/// controller listener.
fn fetch_schema() -> Schema {
    let partition = vec![
        field("partition", Kind::Int32),
        field("current_leader_epoch", Kind::Int32),
        field("fetch_offset", Kind::Int64),
        field("last_fetched_epoch", Kind::Int32),
        field("log_start_offset", Kind::Int64),
        field("partition_max_bytes", Kind::Int32),
    ];
    let topic = vec![
        field("topic", Kind::String),
        field("partitions", array_of_structs(partition)),
    ];
    let forgotten = vec![field("topic", Kind::String), field("partitions", array_of(Kind::Int32))];
    Schema::new(vec![
        field("replica_id", Kind::Int32),
        field("max_wait_ms", Kind::Int32),
        field("min_bytes", Kind::Int32),
        field("max_bytes", Kind::Int32),
        field("isolation_level", Kind::Int8),
        field("session_id", Kind::Int32),
        field("session_epoch", Kind::Int32),
        field("topics", array_of_structs(topic)),
        field("forgotten_topics_data", array_of_structs(forgotten)),
        field("rack_id", Kind::String),
    ])
    .with_tagged(0, field("cluster_id", Kind::NullableString))
}

/// ListOffsetsRequest v6–7 (same layout).
fn list_offsets_schema() -> Schema {
    let partition = vec![
        field("partition_index", Kind::Int32),
        field("current_leader_epoch", Kind::Int32),
        field("timestamp", Kind::Int64),
    ];
    let topic = vec![
        field("name", Kind::String),
        field("partitions", array_of_structs(partition)),
    ];
    Schema::new(vec![
        field("replica_id", Kind::Int32),
        field("isolation_level", Kind::Int8),
        field("topics", array_of_structs(topic)),
    ])
}

/// OffsetForLeaderEpochRequest v4 (flexible; KIP-320's consumer position validation).
fn offset_for_leader_epoch_schema() -> Schema {
    let partition = vec![
        field("partition", Kind::Int32),
        field("current_leader_epoch", Kind::Int32),
        field("leader_epoch", Kind::Int32),
    ];
    let topic = vec![
        field("topic", Kind::String),
        field("partitions", array_of_structs(partition)),
    ];
    Schema::new(vec![
        field("replica_id", Kind::Int32),
        field("topics", array_of_structs(topic)),
    ])
}

/// DeleteRecordsRequest v2 (flexible).
fn delete_records_schema() -> Schema {
    let partition = vec![field("partition_index", Kind::Int32), field("offset", Kind::Int64)];
    let topic = vec![
        field("name", Kind::String),
        field("partitions", array_of_structs(partition)),
    ];
    Schema::new(vec![
        field("topics", array_of_structs(topic)),
        field("timeout_ms", Kind::Int32),
    ])
}

/// DeleteTopicsRequest v6 (flexible; each topic by nullable name or by id, KIP-516).
fn delete_topics_schema() -> Schema {
    let topic = vec![field("name", Kind::NullableString), field("topic_id", Kind::Uuid)];
    Schema::new(vec![
        field("topics", array_of_structs(topic)),
        field("timeout_ms", Kind::Int32),
    ])
}

/// CreatePartitionsRequest v2–3 (same layout; the assignments of the new partitions are nullable).
fn create_partitions_schema() -> Schema {
    let assignment = vec![field("broker_ids", array_of(Kind::Int32))];
    let topic = vec![
        field("name", Kind::String),
        field("count", Kind::Int32),
        field("assignments", nullable_array_of_structs(assignment)),
    ];
    Schema::new(vec![
        field("topics", array_of_structs(topic)),
        field("timeout_ms", Kind::Int32),
        field("validate_only", Kind::Bool),
    ])
}

/// InitProducerIdRequest v3–5 (same layout; KIP-360 producer id/epoch for bumping).
fn init_producer_id_schema() -> Schema {
    Schema::new(vec![
        field("transactional_id", Kind::NullableString),
        field("transaction_timeout_ms", Kind::Int32),
        field("producer_id", Kind::Int64),
        field("producer_epoch", Kind::Int16),
    ])
}

/// VoteRequest v0 (KIP-595; no KIP-853 directory ids, no KIP-996 pre-vote).
fn vote_schema() -> Schema {
    let partition = vec![
        field("partition_index", Kind::Int32),
        field("replica_epoch", Kind::Int32),
        field("replica_id", Kind::Int32),
        field("last_offset_epoch", Kind::Int32),
        field("last_offset", Kind::Int64),
    ];
    Schema::new(vec![
        field("cluster_id", Kind::NullableString),
        field("topics", quorum_topics(partition)),
    ])
}

/// `topics: [topic_name, partitions: [...]]`, the shape every KRaft quorum API shares.
fn quorum_topics(partition: Vec<Field>) -> Kind {
    array_of_structs(vec![
        field("topic_name", Kind::String),
        field("partitions", array_of_structs(partition)),
    ])
}

/// KIP-853's `leader_endpoints: [name, host, port]`.
fn leader_endpoints() -> Field {
    let endpoint = vec![
        field("name", Kind::String),
        field("host", Kind::String),
        field("port", Kind::Uint16),
    ];
    field("leader_endpoints", array_of_structs(endpoint))
}

/// BeginQuorumEpochRequest v1 (the first flexible version; adds KIP-853's voter id/directory id and
/// leader endpoints).
fn begin_quorum_epoch_schema() -> Schema {
    let partition = vec![
        field("partition_index", Kind::Int32),
        field("voter_directory_id", Kind::Uuid),
        field("leader_id", Kind::Int32),
        field("leader_epoch", Kind::Int32),
    ];
    Schema::new(vec![
        field("cluster_id", Kind::NullableString),
        field("voter_id", Kind::Int32),
        field("topics", quorum_topics(partition)),
        leader_endpoints(),
    ])
}

/// EndQuorumEpochRequest v1 (the first flexible version; preferred candidates with directory ids and
/// leader endpoints, KIP-853).
fn end_quorum_epoch_schema() -> Schema {
    let candidate = vec![
        field("candidate_id", Kind::Int32),
        field("candidate_directory_id", Kind::Uuid),
    ];
    let partition = vec![
        field("partition_index", Kind::Int32),
        field("leader_id", Kind::Int32),
        field("leader_epoch", Kind::Int32),
        field("preferred_candidates", array_of_structs(candidate)),
    ];
    Schema::new(vec![
        field("cluster_id", Kind::NullableString),
        field("topics", quorum_topics(partition)),
        leader_endpoints(),
    ])
}

/// BrokerRegistrationRequest v3–4 (same layout: KIP-858 log dirs, KIP-966 previous broker epoch).
fn broker_registration_schema() -> Schema {
    let listener = vec![
        field("name", Kind::String),
        field("host", Kind::String),
        field("port", Kind::Uint16),
        field("security_protocol", Kind::Int16),
    ];
    let feature = vec![
        field("name", Kind::String),
        field("min_supported_version", Kind::Int16),
        field("max_supported_version", Kind::Int16),
    ];
    Schema::new(vec![
        field("broker_id", Kind::Int32),
        field("cluster_id", Kind::String),
        field("incarnation_id", Kind::Uuid),
        field("listeners", array_of_structs(listener)),
        field("features", array_of_structs(feature)),
        field("rack", Kind::NullableString),
        field("is_migrating_zk_broker", Kind::Bool),
        field("log_dirs", array_of(Kind::Uuid)),
        field("previous_broker_epoch", Kind::Int64),
    ])
}

/// BrokerHeartbeatRequest v0–1 (v1 adds the tagged offline log dirs, KIP-858).
fn broker_heartbeat_schema(version: i16) -> Schema {
    let schema = Schema::new(vec![
        field("broker_id", Kind::Int32),
        field("broker_epoch", Kind::Int64),
        field("current_metadata_offset", Kind::Int64),
        field("want_fence", Kind::Bool),
        field("want_shut_down", Kind::Bool),
    ]);
    if version >= 1 {
        schema.with_tagged(0, field("offline_log_dirs", array_of(Kind::Uuid)))
    } else {
        schema
    }
}

/// AlterPartitionRequest v2 (topics by id; the new ISR as broker ids, before KIP-903's broker epochs).
fn alter_partition_schema() -> Schema {
    let partition = vec![
        field("partition_index", Kind::Int32),
        field("leader_epoch", Kind::Int32),
        field("new_isr", array_of(Kind::Int32)),
        field("leader_recovery_state", Kind::Int8),
        field("partition_epoch", Kind::Int32),
    ];
    let topic = vec![
        field("topic_id", Kind::Uuid),
        field("partitions", array_of_structs(partition)),
    ];
    Schema::new(vec![
        field("broker_id", Kind::Int32),
        field("broker_epoch", Kind::Int64),
        field("topics", array_of_structs(topic)),
    ])
}

/// AllocateProducerIdsRequest v0 (KIP-730).
fn allocate_producer_ids_schema() -> Schema {
    Schema::new(vec![
        field("broker_id", Kind::Int32),
        field("broker_epoch", Kind::Int64),
    ])
}
