//! Request body schemas of the classic group APIs on the broker listener, one flexible version each (see
//! `api.rs`), from Kafka's `*Request.json` reduced to the fields of that version and checked against
//! kafka-protocol 0.18's generated encoders.

use kafka_protocol::messages::ApiKey;

use super::bounded::{array_of, array_of_structs, field, Kind, Schema};

/// The schema of a group API at its one advertised version. Panics for any other key (callers dispatch).
pub(super) fn group_schema(key: ApiKey) -> Schema {
    match key {
        // FindCoordinatorRequest v4: KIP-699 batched coordinator keys.
        ApiKey::FindCoordinator => Schema::new(vec![
            field("key_type", Kind::Int8),
            field("coordinator_keys", array_of(Kind::String)),
        ]),
        // JoinGroupRequest v7 (no reason before v8).
        ApiKey::JoinGroup => {
            let protocol = vec![field("name", Kind::String), field("metadata", Kind::Bytes)];
            Schema::new(vec![
                field("group_id", Kind::String),
                field("session_timeout_ms", Kind::Int32),
                field("rebalance_timeout_ms", Kind::Int32),
                field("member_id", Kind::String),
                field("group_instance_id", Kind::NullableString),
                field("protocol_type", Kind::String),
                field("protocols", array_of_structs(protocol)),
            ])
        }
        // SyncGroupRequest v5: protocol type and name (KIP-559).
        ApiKey::SyncGroup => {
            let assignment = vec![field("member_id", Kind::String), field("assignment", Kind::Bytes)];
            Schema::new(vec![
                field("group_id", Kind::String),
                field("generation_id", Kind::Int32),
                field("member_id", Kind::String),
                field("group_instance_id", Kind::NullableString),
                field("protocol_type", Kind::NullableString),
                field("protocol_name", Kind::NullableString),
                field("assignments", array_of_structs(assignment)),
            ])
        }
        // HeartbeatRequest v4.
        ApiKey::Heartbeat => Schema::new(vec![
            field("group_id", Kind::String),
            field("generation_id", Kind::Int32),
            field("member_id", Kind::String),
            field("group_instance_id", Kind::NullableString),
        ]),
        // LeaveGroupRequest v4: a batch of members (KIP-345), no reason before v5.
        ApiKey::LeaveGroup => {
            let member = vec![
                field("member_id", Kind::String),
                field("group_instance_id", Kind::NullableString),
            ];
            Schema::new(vec![
                field("group_id", Kind::String),
                field("members", array_of_structs(member)),
            ])
        }
        // OffsetCommitRequest v8.
        ApiKey::OffsetCommit => {
            let partition = vec![
                field("partition_index", Kind::Int32),
                field("committed_offset", Kind::Int64),
                field("committed_leader_epoch", Kind::Int32),
                field("committed_metadata", Kind::NullableString),
            ];
            let topic = vec![
                field("name", Kind::String),
                field("partitions", array_of_structs(partition)),
            ];
            Schema::new(vec![
                field("group_id", Kind::String),
                field("generation_id_or_member_epoch", Kind::Int32),
                field("member_id", Kind::String),
                field("group_instance_id", Kind::NullableString),
                field("topics", array_of_structs(topic)),
            ])
        }
        // OffsetFetchRequest v8: batched groups (KIP-709); a null topic list asks for every partition.
        ApiKey::OffsetFetch => {
            let topic = vec![
                field("name", Kind::String),
                field("partition_indexes", array_of(Kind::Int32)),
            ];
            let group = vec![
                field("group_id", Kind::String),
                field(
                    "topics",
                    Kind::Array {
                        elem: Box::new(Kind::Struct(Schema::new(topic))),
                        nullable: true,
                    },
                ),
            ];
            Schema::new(vec![
                field("groups", array_of_structs(group)),
                field("require_stable", Kind::Bool),
            ])
        }
        // DescribeGroupsRequest v5.
        ApiKey::DescribeGroups => Schema::new(vec![
            field("groups", array_of(Kind::String)),
            field("include_authorized_operations", Kind::Bool),
        ]),
        // ListGroupsRequest v4: the states filter (KIP-518).
        ApiKey::ListGroups => Schema::new(vec![field("states_filter", array_of(Kind::String))]),
        other => panic!("{other:?} is not a group API"),
    }
}
