//! Bounded shapes of the controller listener's responses (KRaft quorum, broker lifecycle, producer id
//! blocks), at the versions `protocol::api::CONTROLLER_ADVERTISED` serves. Fetch v12 (the
//! `__cluster_metadata` fetch, with its tagged diverging epoch, current leader and snapshot id) and
//! CreateTopics v7 use the broker listener's shapes.

use kafka_protocol::messages::{
    AllocateProducerIdsResponse, AlterPartitionResponse, BeginQuorumEpochResponse, BrokerHeartbeatResponse,
    BrokerRegistrationResponse, CreatePartitionsResponse, DeleteTopicsResponse, EndQuorumEpochResponse, VoteResponse,
};

use super::{need, BoundedShape, Cursor, ShapeError};

/// `topics: [topic_name, partitions: [...]]`, as every quorum response carries them.
fn quorum_topics(
    c: &mut Cursor<'_>,
    min_partition_bytes: usize,
    partition: impl Fn(&mut Cursor<'_>) -> Result<(), ShapeError> + Copy,
) -> Result<(), ShapeError> {
    c.array("topics", 3, |c| {
        c.string()?;
        c.array("partitions", min_partition_bytes, partition)?;
        c.no_tags()
    })
}

/// partition_index, error_code, leader_id, leader_epoch (BeginQuorumEpoch and EndQuorumEpoch).
fn quorum_partition(c: &mut Cursor<'_>) -> Result<(), ShapeError> {
    c.i32()?;
    c.i16()?;
    c.i32()?;
    c.i32()?;
    c.no_tags()
}

/// Tagged field 0 of the quorum responses from v1 (KIP-853): `node_endpoints: [node_id, host, port]`.
fn node_endpoints_tag(tag: u32, c: &mut Cursor<'_>) -> Result<bool, ShapeError> {
    match tag {
        0 => c
            .array("node_endpoints", 8, |c| {
                c.i32()?;
                c.string()?;
                c.i16()?;
                c.no_tags()
            })
            .map(|_| true),
        _ => Ok(false),
    }
}

impl BoundedShape for VoteResponse {
    /// v0: error_code, topics [topic_name, partitions [partition_index, error_code, leader_id,
    /// leader_epoch, vote_granted]].
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 0, version)?;
        c.i16()?;
        quorum_topics(c, 16, |c| {
            c.i32()?;
            c.i16()?;
            c.i32()?;
            c.i32()?;
            c.bool()?;
            c.no_tags()
        })?;
        c.no_tags()
    }
}

impl BoundedShape for BeginQuorumEpochResponse {
    /// v1: error_code, topics [topic_name, partitions [partition_index, error_code, leader_id,
    /// leader_epoch]], tagged node_endpoints.
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 1, version)?;
        c.i16()?;
        quorum_topics(c, 15, quorum_partition)?;
        c.tags(node_endpoints_tag)
    }
}

impl BoundedShape for EndQuorumEpochResponse {
    /// v1: the same layout as BeginQuorumEpochResponse v1.
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 1, version)?;
        c.i16()?;
        quorum_topics(c, 15, quorum_partition)?;
        c.tags(node_endpoints_tag)
    }
}

impl BoundedShape for BrokerRegistrationResponse {
    /// v0–4 (one layout): throttle_time_ms, error_code, broker_epoch.
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need((0..=4).contains(&version), version)?;
        c.i32()?;
        c.i16()?;
        c.i64()?;
        c.no_tags()
    }
}

impl BoundedShape for BrokerHeartbeatResponse {
    /// v0–1 (one layout): throttle_time_ms, error_code, is_caught_up, is_fenced, should_shut_down.
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need((0..=1).contains(&version), version)?;
        c.i32()?;
        c.i16()?;
        c.bool()?;
        c.bool()?;
        c.bool()?;
        c.no_tags()
    }
}

impl BoundedShape for AlterPartitionResponse {
    /// v2–3 (one layout): throttle_time_ms, error_code, topics [topic_id, partitions [partition_index,
    /// error_code, leader_id, leader_epoch, isr, leader_recovery_state, partition_epoch]].
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need((2..=3).contains(&version), version)?;
        c.i32()?;
        c.i16()?;
        c.array("topics", 18, |c| {
            c.uuid()?;
            c.array("partitions", 21, |c| {
                c.i32()?;
                c.i16()?;
                c.i32()?;
                c.i32()?;
                c.array("isr", 4, Cursor::i32)?;
                c.i8()?;
                c.i32()?;
                c.no_tags()
            })?;
            c.no_tags()
        })?;
        c.no_tags()
    }
}

impl BoundedShape for AllocateProducerIdsResponse {
    /// v0: throttle_time_ms, error_code, producer_id_start, producer_id_len.
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 0, version)?;
        c.i32()?;
        c.i16()?;
        c.i64()?;
        c.i32()?;
        c.no_tags()
    }
}

impl BoundedShape for DeleteTopicsResponse {
    /// v6: throttle_time_ms, responses: [name (nullable), topic_id, error_code, error_message (nullable)].
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 6, version)?;
        c.i32()?;
        c.array("responses", 21, |c| {
            c.string()?;
            c.uuid()?;
            c.i16()?;
            c.string()?;
            c.no_tags()
        })?;
        c.no_tags()
    }
}

impl BoundedShape for CreatePartitionsResponse {
    /// v2–3: throttle_time_ms, results: [name, error_code, error_message (nullable)].
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need((2..=3).contains(&version), version)?;
        c.i32()?;
        c.array("results", 5, |c| {
            c.string()?;
            c.i16()?;
            c.string()?;
            c.no_tags()
        })?;
        c.no_tags()
    }
}

#[cfg(test)]
mod tests;
