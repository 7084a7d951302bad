//! The consumer protocol's bytes inside JoinGroup metadata and SyncGroup assignments
//! (`ConsumerProtocolSubscription` v2: topics, userData, ownedPartitions, generationId;
//! `ConsumerProtocolAssignment` v1: assignedPartitions, userData), each prefixed by its int16 version.
//! Decoded with bounded reads: a member's metadata is untrusted input to the leader.

use std::collections::{BTreeMap, BTreeSet};

use crate::group::records::{Reader, RecordError, Writer};
use crate::group::MemberSubscription;
use crate::types::TopicPartition;

const SUBSCRIPTION_VERSION: i16 = 2;
const ASSIGNMENT_VERSION: i16 = 1;

fn write_partitions(w: &mut Writer, partitions: &[TopicPartition]) {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    w.i32(by_topic.len() as i32);
    for (topic, parts) in by_topic {
        w.string(topic).i32(parts.len() as i32);
        for p in parts {
            w.i32(p);
        }
    }
}

fn read_partitions(r: &mut Reader) -> Result<Vec<TopicPartition>, RecordError> {
    let mut out = vec![];
    for _ in 0..r.count("topic partitions", 6)? {
        let topic = r.string()?;
        for _ in 0..r.count("partitions", 4)? {
            out.push(TopicPartition::new(topic.clone(), r.i32()?));
        }
    }
    Ok(out)
}

pub fn encode_subscription(s: &MemberSubscription) -> Vec<u8> {
    let mut w = Writer::default();
    w.i16(SUBSCRIPTION_VERSION).i32(s.topics.len() as i32);
    for t in &s.topics {
        w.string(t);
    }
    w.nullable_bytes(None);
    write_partitions(&mut w, &s.owned_partitions);
    w.i32(s.generation_id);
    w.0
}

/// Versions 0 to 2 (later versions start with the same fields; their extra fields are ignored).
pub fn decode_subscription(bytes: &[u8]) -> Result<MemberSubscription, RecordError> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if version < 0 {
        return Err(RecordError::UnknownVersion {
            what: "ConsumerProtocolSubscription",
            version,
        });
    }
    let mut topics = BTreeSet::new();
    for _ in 0..r.count("topics", 2)? {
        topics.insert(r.string()?);
    }
    r.nullable_bytes()?;
    let owned_partitions = if version >= 1 { read_partitions(&mut r)? } else { vec![] };
    let generation_id = if version >= 2 { r.i32()? } else { -1 };
    Ok(MemberSubscription {
        topics,
        owned_partitions,
        generation_id,
    })
}

pub fn encode_assignment(partitions: &[TopicPartition]) -> Vec<u8> {
    let mut w = Writer::default();
    w.i16(ASSIGNMENT_VERSION);
    write_partitions(&mut w, partitions);
    w.nullable_bytes(None);
    w.0
}

/// An empty byte string is an empty assignment (what the coordinator gives a member the leader left out).
pub fn decode_assignment(bytes: &[u8]) -> Result<Vec<TopicPartition>, RecordError> {
    if bytes.is_empty() {
        return Ok(vec![]);
    }
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if version < 0 {
        return Err(RecordError::UnknownVersion {
            what: "ConsumerProtocolAssignment",
            version,
        });
    }
    let mut out = read_partitions(&mut r)?;
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_and_assignment_round_trip_and_reject_truncation() {
        let s = MemberSubscription {
            topics: ["a".to_string(), "b".to_string()].into(),
            owned_partitions: vec![TopicPartition::new("a", 1), TopicPartition::new("b", 0)],
            generation_id: 4,
        };
        let bytes = encode_subscription(&s);
        assert_eq!(decode_subscription(&bytes), Ok(s));
        for cut in 1..bytes.len() {
            assert!(decode_subscription(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let parts = vec![TopicPartition::new("a", 0), TopicPartition::new("a", 2)];
        assert_eq!(decode_assignment(&encode_assignment(&parts)), Ok(parts));
        assert_eq!(decode_assignment(&[]), Ok(vec![]));
        let mut huge = encode_assignment(&[]);
        huge[2..6].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_assignment(&huge).is_err());
    }
}
