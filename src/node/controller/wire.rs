//! KRaft's quorum RPCs between the core's plain messages ([`crate::raft::Message`]) and their Kafka wire
//! form (kafka-protocol): Vote v0, BeginQuorumEpoch v0, EndQuorumEpoch v0 and Fetch v12 of the
//! `__cluster_metadata` partition (KIP-595). Each request names one topic with one partition; anything else
//! is refused with a message saying what was wrong.
//!
//! Raft entries travel as record batches (one entry per batch, `partitionLeaderEpoch` = the entry's epoch,
//! one record whose value is the entry's data), which is also how the node stores them in `src/log`.

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, PartitionData as FetchPartitionData,
};
use kafka_protocol::messages::{
    begin_quorum_epoch_request as bqe_req, begin_quorum_epoch_response as bqe_resp,
    end_quorum_epoch_request as eqe_req, end_quorum_epoch_response as eqe_resp, vote_request as vote_req,
    vote_response as vote_resp, BeginQuorumEpochRequest, BeginQuorumEpochResponse, BrokerId, EndQuorumEpochRequest,
    EndQuorumEpochResponse, FetchRequest, FetchResponse, TopicName, VoteRequest, VoteResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::protocol::batch::{batches, decode_records, set_base_offset, BatchBuilder};
use crate::protocol::errors::code;
use crate::raft::{self, Entry, OffsetAndEpoch, RaftError};

/// The metadata log's topic (Kafka's `__cluster_metadata`, partition 0).
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// The replica id an observer (a broker) puts in its metadata Fetch is its broker id; voters use theirs.
pub const METADATA_PARTITION: i32 = 0;

fn topic_name() -> TopicName {
    TopicName(StrBytes::from_static_str(METADATA_TOPIC))
}

fn cluster(cluster_id: &str) -> Option<StrBytes> {
    Some(StrBytes::from_string(cluster_id.to_string()))
}

pub fn error_code(e: RaftError) -> i16 {
    match e {
        RaftError::None => code::NONE,
        RaftError::FencedLeaderEpoch => code::FENCED_LEADER_EPOCH,
        RaftError::UnknownLeaderEpoch => code::UNKNOWN_LEADER_EPOCH,
        RaftError::NotLeaderOrFollower => code::NOT_LEADER_OR_FOLLOWER,
    }
}

pub fn raft_error(c: i16) -> Result<RaftError, String> {
    match c {
        code::NONE => Ok(RaftError::None),
        code::FENCED_LEADER_EPOCH => Ok(RaftError::FencedLeaderEpoch),
        code::UNKNOWN_LEADER_EPOCH => Ok(RaftError::UnknownLeaderEpoch),
        code::NOT_LEADER_OR_FOLLOWER => Ok(RaftError::NotLeaderOrFollower),
        other => Err(format!("error code {other} ({})", code_name(other))),
    }
}

/// Kafka's name of an error code.
pub fn code_name(c: i16) -> String {
    crate::protocol::errors::ResponseError::try_from_code(c).map_or_else(|| format!("code {c}"), |e| format!("{e:?}"))
}

fn leader_id(id: Option<i32>) -> BrokerId {
    BrokerId(id.unwrap_or(-1))
}

fn from_leader_id(id: BrokerId) -> Option<i32> {
    (id.0 >= 0).then_some(id.0)
}

/// The single partition of a quorum request or response, or why there is not exactly one.
fn only<'a, T>(what: &str, topics: impl IntoIterator<Item = (&'a TopicName, &'a [T])>) -> Result<&'a T, String> {
    let topics: Vec<_> = topics.into_iter().collect();
    let [(name, partitions)] = topics[..] else {
        return Err(format!("{what} names {} topics, expected 1", topics.len()));
    };
    if name.0.as_str() != METADATA_TOPIC {
        return Err(format!(
            "{what} names topic {:?}, expected {METADATA_TOPIC}",
            name.0.as_str()
        ));
    }
    match partitions {
        [p] => Ok(p),
        ps => Err(format!("{what} names {} partitions, expected 1", ps.len())),
    }
}

fn offset(o: i64, what: &str) -> Result<u64, String> {
    u64::try_from(o).map_err(|_| format!("{what} {o} is negative"))
}

// ---- Vote ----

pub fn vote_request(r: &raft::VoteRequest, cluster_id: &str) -> VoteRequest {
    let p = vote_req::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_replica_epoch(r.candidate_epoch)
        .with_replica_id(BrokerId(r.candidate_id))
        .with_last_offset_epoch(r.last_offset_epoch)
        .with_last_offset(r.last_offset as i64);
    let t = vote_req::TopicData::default()
        .with_topic_name(topic_name())
        .with_partitions(vec![p]);
    VoteRequest::default()
        .with_cluster_id(cluster(cluster_id))
        .with_topics(vec![t])
}

pub fn from_vote_request(r: &VoteRequest) -> Result<raft::VoteRequest, String> {
    let p = only("Vote", r.topics.iter().map(|t| (&t.topic_name, &t.partitions[..])))?;
    Ok(raft::VoteRequest {
        candidate_epoch: p.replica_epoch,
        candidate_id: p.replica_id.0,
        last_offset_epoch: p.last_offset_epoch,
        last_offset: offset(p.last_offset, "Vote last_offset")?,
    })
}

pub fn vote_response(r: &raft::VoteResponse) -> VoteResponse {
    let p = vote_resp::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_error_code(error_code(r.error_code))
        .with_leader_id(leader_id(r.leader_id))
        .with_leader_epoch(r.leader_epoch)
        .with_vote_granted(r.vote_granted);
    let t = vote_resp::TopicData::default()
        .with_topic_name(topic_name())
        .with_partitions(vec![p]);
    VoteResponse::default().with_topics(vec![t])
}

pub fn from_vote_response(r: &VoteResponse) -> Result<raft::VoteResponse, String> {
    top_level("VoteResponse", r.error_code)?;
    let p = only(
        "VoteResponse",
        r.topics.iter().map(|t| (&t.topic_name, &t.partitions[..])),
    )?;
    Ok(raft::VoteResponse {
        error_code: raft_error(p.error_code)?,
        leader_id: from_leader_id(p.leader_id),
        leader_epoch: p.leader_epoch,
        vote_granted: p.vote_granted,
    })
}

fn top_level(what: &str, c: i16) -> Result<(), String> {
    if c == code::NONE {
        Ok(())
    } else {
        Err(format!("{what} top-level error {c} ({})", code_name(c)))
    }
}

// ---- BeginQuorumEpoch ----

pub fn begin_quorum_epoch_request(r: &raft::BeginQuorumEpochRequest, cluster_id: &str) -> BeginQuorumEpochRequest {
    let p = bqe_req::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_leader_id(BrokerId(r.leader_id))
        .with_leader_epoch(r.leader_epoch);
    let t = bqe_req::TopicData::default()
        .with_topic_name(topic_name())
        .with_partitions(vec![p]);
    BeginQuorumEpochRequest::default()
        .with_cluster_id(cluster(cluster_id))
        .with_topics(vec![t])
}

pub fn from_begin_quorum_epoch_request(r: &BeginQuorumEpochRequest) -> Result<raft::BeginQuorumEpochRequest, String> {
    let p = only(
        "BeginQuorumEpoch",
        r.topics.iter().map(|t| (&t.topic_name, &t.partitions[..])),
    )?;
    Ok(raft::BeginQuorumEpochRequest {
        leader_id: p.leader_id.0,
        leader_epoch: p.leader_epoch,
    })
}

pub fn begin_quorum_epoch_response(r: &raft::QuorumEpochResponse) -> BeginQuorumEpochResponse {
    let p = bqe_resp::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_error_code(error_code(r.error_code))
        .with_leader_id(leader_id(r.leader_id))
        .with_leader_epoch(r.leader_epoch);
    let t = bqe_resp::TopicData::default()
        .with_topic_name(topic_name())
        .with_partitions(vec![p]);
    BeginQuorumEpochResponse::default().with_topics(vec![t])
}

pub fn from_begin_quorum_epoch_response(r: &BeginQuorumEpochResponse) -> Result<raft::QuorumEpochResponse, String> {
    top_level("BeginQuorumEpochResponse", r.error_code)?;
    let p = only(
        "BeginQuorumEpochResponse",
        r.topics.iter().map(|t| (&t.topic_name, &t.partitions[..])),
    )?;
    Ok(raft::QuorumEpochResponse {
        error_code: raft_error(p.error_code)?,
        leader_id: from_leader_id(p.leader_id),
        leader_epoch: p.leader_epoch,
    })
}

// ---- EndQuorumEpoch ----

pub fn end_quorum_epoch_request(r: &raft::EndQuorumEpochRequest, cluster_id: &str) -> EndQuorumEpochRequest {
    let p = eqe_req::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_leader_id(BrokerId(r.leader_id))
        .with_leader_epoch(r.leader_epoch)
        .with_preferred_successors(r.preferred_successors.clone());
    let t = eqe_req::TopicData::default()
        .with_topic_name(topic_name())
        .with_partitions(vec![p]);
    EndQuorumEpochRequest::default()
        .with_cluster_id(cluster(cluster_id))
        .with_topics(vec![t])
}

pub fn from_end_quorum_epoch_request(r: &EndQuorumEpochRequest) -> Result<raft::EndQuorumEpochRequest, String> {
    let p = only(
        "EndQuorumEpoch",
        r.topics.iter().map(|t| (&t.topic_name, &t.partitions[..])),
    )?;
    Ok(raft::EndQuorumEpochRequest {
        leader_id: p.leader_id.0,
        leader_epoch: p.leader_epoch,
        preferred_successors: p.preferred_successors.clone(),
    })
}

pub fn end_quorum_epoch_response(r: &raft::QuorumEpochResponse) -> EndQuorumEpochResponse {
    let p = eqe_resp::PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_error_code(error_code(r.error_code))
        .with_leader_id(leader_id(r.leader_id))
        .with_leader_epoch(r.leader_epoch);
    let t = eqe_resp::TopicData::default()
        .with_topic_name(topic_name())
        .with_partitions(vec![p]);
    EndQuorumEpochResponse::default().with_topics(vec![t])
}

pub fn from_end_quorum_epoch_response(r: &EndQuorumEpochResponse) -> Result<raft::QuorumEpochResponse, String> {
    top_level("EndQuorumEpochResponse", r.error_code)?;
    let p = only(
        "EndQuorumEpochResponse",
        r.topics.iter().map(|t| (&t.topic_name, &t.partitions[..])),
    )?;
    Ok(raft::QuorumEpochResponse {
        error_code: raft_error(p.error_code)?,
        leader_id: from_leader_id(p.leader_id),
        leader_epoch: p.leader_epoch,
    })
}

// ---- Fetch of __cluster_metadata ----

/// A metadata Fetch: from a voter (the core's request) or from an observer broker (`replica_id` its id).
pub fn fetch_request(r: &raft::FetchRequest, cluster_id: &str) -> FetchRequest {
    let p = FetchPartition::default()
        .with_partition(METADATA_PARTITION)
        .with_current_leader_epoch(r.current_leader_epoch)
        .with_fetch_offset(r.fetch_offset as i64)
        .with_last_fetched_epoch(r.last_fetched_epoch)
        .with_log_start_offset(0)
        .with_partition_max_bytes(1 << 20);
    let t = FetchTopic::default().with_topic(topic_name()).with_partitions(vec![p]);
    FetchRequest::default()
        .with_replica_id(BrokerId(r.replica_id))
        .with_max_wait_ms(r.max_wait_ms.clamp(0, i32::MAX as i64) as i32)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![t])
        .with_cluster_id(cluster(cluster_id))
}

/// The core's view of a metadata Fetch; `correlation_id` is the shell's (it only has to come back).
pub fn from_fetch_request(r: &FetchRequest, correlation_id: u64) -> Result<raft::FetchRequest, String> {
    let p = only("Fetch", r.topics.iter().map(|t| (&t.topic, &t.partitions[..])))?;
    Ok(raft::FetchRequest {
        correlation_id,
        replica_id: r.replica_id.0,
        current_leader_epoch: p.current_leader_epoch,
        fetch_offset: offset(p.fetch_offset, "Fetch fetch_offset")?,
        last_fetched_epoch: p.last_fetched_epoch,
        max_wait_ms: i64::from(r.max_wait_ms),
    })
}

pub fn fetch_response(r: &raft::FetchResponse) -> FetchResponse {
    let mut p = FetchPartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_error_code(error_code(r.error_code))
        .with_high_watermark(r.high_watermark.map_or(-1, |h| h as i64))
        .with_current_leader(
            LeaderIdAndEpoch::default()
                .with_leader_id(leader_id(r.leader_id))
                .with_leader_epoch(r.leader_epoch),
        )
        .with_records(Some(Bytes::from(entries_to_batches(&r.records))));
    if let Some(d) = r.diverging_epoch {
        p = p.with_diverging_epoch(
            EpochEndOffset::default()
                .with_epoch(d.epoch)
                .with_end_offset(d.end_offset as i64),
        );
    }
    let t = FetchableTopicResponse::default()
        .with_topic(topic_name())
        .with_partitions(vec![p]);
    FetchResponse::default().with_responses(vec![t])
}

pub fn from_fetch_response(r: &FetchResponse, correlation_id: u64) -> Result<raft::FetchResponse, String> {
    top_level("FetchResponse", r.error_code)?;
    let p = only(
        "FetchResponse",
        r.responses.iter().map(|t| (&t.topic, &t.partitions[..])),
    )?;
    let diverging_epoch = if p.diverging_epoch.epoch >= 0 {
        Some(OffsetAndEpoch {
            epoch: p.diverging_epoch.epoch,
            end_offset: offset(p.diverging_epoch.end_offset, "diverging end_offset")?,
        })
    } else {
        None
    };
    Ok(raft::FetchResponse {
        correlation_id,
        error_code: raft_error(p.error_code)?,
        leader_id: from_leader_id(p.current_leader.leader_id),
        leader_epoch: p.current_leader.leader_epoch,
        high_watermark: (p.high_watermark >= 0).then_some(p.high_watermark as u64),
        diverging_epoch,
        records: batches_to_entries(p.records.as_deref().unwrap_or_default())?,
    })
}

// ---- entries as record batches ----

/// One record batch per entry: base offset and partition leader epoch from the entry, the data as the value.
pub fn entry_to_batch(e: &Entry) -> Vec<u8> {
    let mut b = BatchBuilder::new(0).partition_leader_epoch(e.epoch);
    b.push(0, None, Some(&e.data), &[]);
    let mut bytes = b.build();
    set_base_offset(&mut bytes, e.offset as i64);
    bytes
}

pub fn entries_to_batches(entries: &[Entry]) -> Vec<u8> {
    entries.iter().flat_map(entry_to_batch).collect()
}

/// Entries from record batches (CRC checked); a partial batch at the end is an error, as is any batch that
/// does not hold exactly one record.
pub fn batches_to_entries(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let mut out = vec![];
    let mut iter = batches(bytes);
    for item in iter.by_ref() {
        let (h, batch) = item.map_err(|e| format!("metadata records: {e}"))?;
        crate::protocol::batch::validate_batch(batch)
            .map_err(|e| format!("metadata batch at {}: {e}", h.base_offset))?;
        let records = decode_records(batch).map_err(|e| format!("metadata batch at {}: {e}", h.base_offset))?;
        let [record] = &records[..] else {
            return Err(format!(
                "metadata batch at {} holds {} records, expected 1",
                h.base_offset,
                records.len()
            ));
        };
        out.push(Entry {
            epoch: h.partition_leader_epoch,
            offset: offset(h.base_offset, "metadata batch base offset")?,
            data: record.value.clone().unwrap_or_default(),
        });
    }
    if iter.has_remainder() {
        return Err(format!(
            "metadata records: {} bytes of a partial batch",
            bytes.len() - iter.position()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_quorum_message_survives_its_wire_form() {
        let vote = raft::VoteRequest {
            candidate_epoch: 4,
            candidate_id: 2,
            last_offset_epoch: 3,
            last_offset: 17,
        };
        assert_eq!(from_vote_request(&vote_request(&vote, "c")).unwrap(), vote);
        let vr = raft::VoteResponse {
            error_code: RaftError::FencedLeaderEpoch,
            leader_id: None,
            leader_epoch: 5,
            vote_granted: false,
        };
        assert_eq!(from_vote_response(&vote_response(&vr)).unwrap(), vr);
        let b = raft::BeginQuorumEpochRequest {
            leader_id: 1,
            leader_epoch: 6,
        };
        assert_eq!(
            from_begin_quorum_epoch_request(&begin_quorum_epoch_request(&b, "c")).unwrap(),
            b
        );
        let q = raft::QuorumEpochResponse {
            error_code: RaftError::None,
            leader_id: Some(1),
            leader_epoch: 6,
        };
        assert_eq!(
            from_begin_quorum_epoch_response(&begin_quorum_epoch_response(&q)).unwrap(),
            q
        );
        assert_eq!(
            from_end_quorum_epoch_response(&end_quorum_epoch_response(&q)).unwrap(),
            q
        );
        let e = raft::EndQuorumEpochRequest {
            leader_id: 3,
            leader_epoch: 7,
            preferred_successors: vec![2, 1],
        };
        assert_eq!(
            from_end_quorum_epoch_request(&end_quorum_epoch_request(&e, "c")).unwrap(),
            e
        );
        let f = raft::FetchRequest {
            correlation_id: 9,
            replica_id: 2,
            current_leader_epoch: 7,
            fetch_offset: 40,
            last_fetched_epoch: 6,
            max_wait_ms: 500,
        };
        assert_eq!(from_fetch_request(&fetch_request(&f, "c"), 9).unwrap(), f);
        let fr = raft::FetchResponse {
            correlation_id: 9,
            error_code: RaftError::None,
            leader_id: Some(3),
            leader_epoch: 7,
            high_watermark: Some(41),
            diverging_epoch: Some(OffsetAndEpoch {
                epoch: 5,
                end_offset: 30,
            }),
            records: vec![
                Entry {
                    epoch: 7,
                    offset: 40,
                    data: vec![],
                },
                Entry {
                    epoch: 7,
                    offset: 41,
                    data: b"[{}]".to_vec(),
                },
            ],
        };
        assert_eq!(from_fetch_response(&fetch_response(&fr), 9).unwrap(), fr);
    }

    #[test]
    fn a_request_for_another_topic_or_two_partitions_is_refused_by_name() {
        let mut r = vote_request(
            &raft::VoteRequest {
                candidate_epoch: 1,
                candidate_id: 1,
                last_offset_epoch: 0,
                last_offset: 0,
            },
            "c",
        );
        r.topics[0].topic_name = TopicName(StrBytes::from_static_str("orders"));
        assert!(from_vote_request(&r).unwrap_err().contains("orders"));
        r.topics[0].topic_name = topic_name();
        let p = r.topics[0].partitions[0].clone();
        r.topics[0].partitions.push(p);
        assert!(from_vote_request(&r).unwrap_err().contains("2 partitions"));
        r.topics.clear();
        assert!(from_vote_request(&r).unwrap_err().contains("0 topics"));
    }

    #[test]
    fn corrupt_or_partial_metadata_batches_are_errors_not_entries() {
        let entries = vec![Entry {
            epoch: 2,
            offset: 5,
            data: b"x".to_vec(),
        }];
        let mut bytes = entries_to_batches(&entries);
        assert_eq!(batches_to_entries(&bytes).unwrap(), entries);
        assert!(batches_to_entries(&bytes[..bytes.len() - 1])
            .unwrap_err()
            .contains("partial"));
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(batches_to_entries(&bytes).is_err());
    }
}
