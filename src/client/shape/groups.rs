//! Bounded shapes of the group coordinator's responses, at the versions the consumer speaks (all flexible):
//! FindCoordinator v4, JoinGroup v7, SyncGroup v5, Heartbeat v4, LeaveGroup v4, OffsetCommit v8,
//! OffsetFetch v8, DescribeGroups v5, ListGroups v4 (Kafka's JSON message schemas).

use kafka_protocol::messages::{
    DescribeGroupsResponse, FindCoordinatorResponse, HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse,
    ListGroupsResponse, OffsetCommitResponse, OffsetFetchResponse, SyncGroupResponse,
};

use super::{need, BoundedShape, Cursor, ShapeError};

impl BoundedShape for FindCoordinatorResponse {
    /// v4: throttle_time_ms, coordinators [key, node_id, host, port, error_code, error_message].
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 4, version)?;
        c.i32()?;
        c.array("coordinators", 14, |c| {
            c.string()?;
            c.i32()?;
            c.string()?;
            c.i32()?;
            c.i16()?;
            c.string()?;
            c.no_tags()
        })?;
        c.no_tags()
    }
}

impl BoundedShape for JoinGroupResponse {
    /// v7: throttle, error_code, generation_id, protocol_type, protocol_name, leader, member_id,
    /// members [member_id, group_instance_id, metadata].
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 7, version)?;
        c.i32()?;
        c.i16()?;
        c.i32()?;
        c.string()?;
        c.string()?;
        c.string()?;
        c.string()?;
        c.array("members", 4, |c| {
            c.string()?;
            c.string()?;
            c.compact_bytes("metadata")?;
            c.no_tags()
        })?;
        c.no_tags()
    }
}

impl BoundedShape for SyncGroupResponse {
    /// v5: throttle, error_code, protocol_type, protocol_name, assignment.
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 5, version)?;
        c.i32()?;
        c.i16()?;
        c.string()?;
        c.string()?;
        c.compact_bytes("assignment")?;
        c.no_tags()
    }
}

impl BoundedShape for HeartbeatResponse {
    /// v4: throttle, error_code.
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 4, version)?;
        c.i32()?;
        c.i16()?;
        c.no_tags()
    }
}

impl BoundedShape for LeaveGroupResponse {
    /// v4: throttle, error_code, members [member_id, group_instance_id, error_code].
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 4, version)?;
        c.i32()?;
        c.i16()?;
        c.array("members", 5, |c| {
            c.string()?;
            c.string()?;
            c.i16()?;
            c.no_tags()
        })?;
        c.no_tags()
    }
}

impl BoundedShape for OffsetCommitResponse {
    /// v8: throttle, topics [name, partitions [partition_index, error_code]].
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 8, version)?;
        c.i32()?;
        c.array("topics", 3, |c| {
            c.string()?;
            c.array("partitions", 7, |c| {
                c.i32()?;
                c.i16()?;
                c.no_tags()
            })?;
            c.no_tags()
        })?;
        c.no_tags()
    }
}

impl BoundedShape for OffsetFetchResponse {
    /// v8: throttle, groups [group_id, topics [name, partitions [partition_index, committed_offset,
    /// committed_leader_epoch, metadata, error_code]], error_code].
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 8, version)?;
        c.i32()?;
        c.array("groups", 5, |c| {
            c.string()?;
            c.array("topics", 3, |c| {
                c.string()?;
                c.array("partitions", 20, |c| {
                    c.i32()?;
                    c.i64()?;
                    c.i32()?;
                    c.string()?;
                    c.i16()?;
                    c.no_tags()
                })?;
                c.no_tags()
            })?;
            c.i16()?;
            c.no_tags()
        })?;
        c.no_tags()
    }
}

impl BoundedShape for DescribeGroupsResponse {
    /// v5: throttle, groups [error_code, group_id, group_state, protocol_type, protocol_data, members
    /// [member_id, group_instance_id, client_id, client_host, member_metadata, member_assignment],
    /// authorized_operations].
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 5, version)?;
        c.i32()?;
        c.array("groups", 13, |c| {
            c.i16()?;
            c.string()?;
            c.string()?;
            c.string()?;
            c.string()?;
            c.array("members", 7, |c| {
                c.string()?;
                c.string()?;
                c.string()?;
                c.string()?;
                c.compact_bytes("member_metadata")?;
                c.compact_bytes("member_assignment")?;
                c.no_tags()
            })?;
            c.i32()?;
            c.no_tags()
        })?;
        c.no_tags()
    }
}

impl BoundedShape for ListGroupsResponse {
    /// v4: throttle, error_code, groups [group_id, protocol_type, group_state].
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 4, version)?;
        c.i32()?;
        c.i16()?;
        c.array("groups", 4, |c| {
            c.string()?;
            c.string()?;
            c.string()?;
            c.no_tags()
        })?;
        c.no_tags()
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
    };
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::super::check_body;
    use super::*;

    fn encoded<T: Encodable>(m: &T, version: i16) -> Vec<u8> {
        let mut b = BytesMut::new();
        m.encode(&mut b, version).expect("encodes");
        b.to_vec()
    }

    #[test]
    fn encoded_group_responses_pass_and_a_truncated_one_is_refused() {
        let join = JoinGroupResponse::default()
            .with_generation_id(3)
            .with_member_id(StrBytes::from_static_str("m-1"))
            .with_members(vec![
                JoinGroupResponseMember::default().with_metadata(bytes::Bytes::from_static(b"meta"))
            ]);
        let body = encoded(&join, 7);
        assert_eq!(check_body::<JoinGroupResponse>(&body, 7), Ok(()));
        assert!(check_body::<JoinGroupResponse>(&body[..body.len() - 2], 7).is_err());
        let fetch = OffsetFetchResponse::default().with_groups(vec![OffsetFetchResponseGroup::default()
            .with_topics(vec![OffsetFetchResponseTopics::default().with_partitions(vec![
                OffsetFetchResponsePartitions::default().with_committed_offset(42),
            ])])]);
        assert_eq!(check_body::<OffsetFetchResponse>(&encoded(&fetch, 8), 8), Ok(()));
        assert_eq!(
            check_body::<HeartbeatResponse>(&encoded(&HeartbeatResponse::default(), 4), 4),
            Ok(())
        );
        assert_eq!(
            check_body::<HeartbeatResponse>(&[0; 7], 3),
            Err(ShapeError::UnsupportedVersion { version: 3 })
        );
    }
}
