//! The records of `__consumer_offsets` (kafka-protocol does not ship their schemas, FIELD-NOTES), in Kafka's
//! own binary layout (`OffsetCommitKey`/`OffsetCommitValue`, `GroupMetadataKey`/`GroupMetadataValue` of
//! `group-coordinator/src/main/resources/common/message`): a key is an int16 version then the fields; a
//! value likewise; a tombstone (null value) deletes. Strings are int16-length, bytes int32-length, arrays
//! int32-count (these versions are not flexible). Decoding checks every length against what remains.

use thiserror::Error;

use crate::types::TopicPartition;

/// OffsetCommitKey versions 0 and 1; GroupMetadataKey version 2.
const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// OffsetCommitValue v3: offset, leaderEpoch, metadata, commitTimestamp (KIP-320).
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// GroupMetadataValue v3: with `groupInstanceId` per member (KIP-345).
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    /// The leader epoch of the last consumed record (KIP-320); -1 if unknown.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's protocol (its JoinGroup metadata).
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadata>,
}

/// One record of `__consumer_offsets`; `None` values are tombstones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupRecord {
    OffsetCommit {
        group_id: String,
        tp: TopicPartition,
        value: Option<OffsetCommitValue>,
    },
    GroupMetadata {
        group_id: String,
        value: Option<GroupMetadataValue>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    #[error("__consumer_offsets record truncated: wanted {wanted} bytes at {at}, {len} in all")]
    Truncated { at: usize, wanted: usize, len: usize },
    #[error("__consumer_offsets {what} has unknown version {version}")]
    UnknownVersion { what: &'static str, version: i16 },
    #[error("__consumer_offsets {what}: negative length {length} at {at}")]
    NegativeLength { what: &'static str, length: i32, at: usize },
    #[error("__consumer_offsets record: string at {at} is not UTF-8")]
    NotUtf8 { at: usize },
    #[error("__consumer_offsets record: {extra} bytes after the last field")]
    TrailingBytes { extra: usize },
}

impl GroupRecord {
    pub fn group_id(&self) -> &str {
        match self {
            GroupRecord::OffsetCommit { group_id, .. } | GroupRecord::GroupMetadata { group_id, .. } => group_id,
        }
    }

    /// The record's key and value bytes (`None`: a tombstone).
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        let mut key = Writer::default();
        match self {
            GroupRecord::OffsetCommit { group_id, tp, value } => {
                key.i16(OFFSET_COMMIT_KEY_VERSION)
                    .string(group_id)
                    .string(&tp.topic)
                    .i32(tp.partition);
                (key.0, value.as_ref().map(encode_offset_commit_value))
            }
            GroupRecord::GroupMetadata { group_id, value } => {
                key.i16(GROUP_METADATA_KEY_VERSION).string(group_id);
                (key.0, value.as_ref().map(encode_group_metadata_value))
            }
        }
    }

    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Self, RecordError> {
        let mut r = Reader::new(key);
        let record = match r.i16()? {
            0 | 1 => {
                let group_id = r.string()?;
                let tp = TopicPartition::new(r.string()?, r.i32()?);
                let value = value.map(decode_offset_commit_value).transpose()?;
                GroupRecord::OffsetCommit { group_id, tp, value }
            }
            2 => {
                let group_id = r.string()?;
                let value = value.map(decode_group_metadata_value).transpose()?;
                GroupRecord::GroupMetadata { group_id, value }
            }
            version => return Err(RecordError::UnknownVersion { what: "key", version }),
        };
        r.finish()?;
        Ok(record)
    }
}

fn encode_offset_commit_value(v: &OffsetCommitValue) -> Vec<u8> {
    let mut w = Writer::default();
    w.i16(OFFSET_COMMIT_VALUE_VERSION)
        .i64(v.offset)
        .i32(v.leader_epoch)
        .string(&v.metadata)
        .i64(v.commit_timestamp_ms);
    w.0
}

fn decode_offset_commit_value(bytes: &[u8]) -> Result<OffsetCommitValue, RecordError> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if version != OFFSET_COMMIT_VALUE_VERSION {
        return Err(RecordError::UnknownVersion {
            what: "OffsetCommitValue",
            version,
        });
    }
    let v = OffsetCommitValue {
        offset: r.i64()?,
        leader_epoch: r.i32()?,
        metadata: r.string()?,
        commit_timestamp_ms: r.i64()?,
    };
    r.finish()?;
    Ok(v)
}

fn encode_group_metadata_value(v: &GroupMetadataValue) -> Vec<u8> {
    let mut w = Writer::default();
    w.i16(GROUP_METADATA_VALUE_VERSION)
        .string(&v.protocol_type)
        .i32(v.generation_id)
        .nullable_string(v.protocol_name.as_deref())
        .nullable_string(v.leader_id.as_deref())
        .i64(v.current_state_timestamp_ms)
        .i32(v.members.len() as i32);
    for m in &v.members {
        w.string(&m.member_id)
            .nullable_string(m.group_instance_id.as_deref())
            .string(&m.client_id)
            .string(&m.client_host)
            .i32(m.rebalance_timeout_ms)
            .i32(m.session_timeout_ms)
            .bytes(&m.subscription)
            .bytes(&m.assignment);
    }
    w.0
}

fn decode_group_metadata_value(bytes: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if version != GROUP_METADATA_VALUE_VERSION {
        return Err(RecordError::UnknownVersion {
            what: "GroupMetadataValue",
            version,
        });
    }
    let protocol_type = r.string()?;
    let generation_id = r.i32()?;
    let protocol_name = r.nullable_string()?;
    let leader_id = r.nullable_string()?;
    let current_state_timestamp_ms = r.i64()?;
    // Each member takes at least 2+2+2+2+4+4+4+4 bytes: bound the count before allocating.
    let count = r.count("members", 24)?;
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        members.push(MemberMetadata {
            member_id: r.string()?,
            group_instance_id: r.nullable_string()?,
            client_id: r.string()?,
            client_host: r.string()?,
            rebalance_timeout_ms: r.i32()?,
            session_timeout_ms: r.i32()?,
            subscription: r.bytes()?,
            assignment: r.bytes()?,
        });
    }
    r.finish()?;
    Ok(GroupMetadataValue {
        protocol_type,
        generation_id,
        protocol_name,
        leader_id,
        current_state_timestamp_ms,
        members,
    })
}

/// Big-endian writer of Kafka's non-flexible types.
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn i16(&mut self, v: i16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn string(&mut self, s: &str) -> &mut Self {
        let len = i16::try_from(s.len()).unwrap_or_else(|_| panic!("string of {} bytes exceeds int16", s.len()));
        self.i16(len);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    pub(crate) fn nullable_string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.string(s),
            None => self.i16(-1),
        }
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.i32(b.len() as i32);
        self.0.extend_from_slice(b);
        self
    }
    pub(crate) fn nullable_bytes(&mut self, b: Option<&[u8]>) -> &mut Self {
        match b {
            Some(b) => self.bytes(b),
            None => self.i32(-1),
        }
    }
}

/// Bounded big-endian reader: every length is checked against the bytes that remain.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, at: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.buf.len() - self.at < n {
            return Err(RecordError::Truncated {
                at: self.at,
                wanted: n,
                len: self.buf.len(),
            });
        }
        let out = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    pub(crate) fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    pub(crate) fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    pub(crate) fn nullable_string(&mut self) -> Result<Option<String>, RecordError> {
        let at = self.at;
        let len = self.i16()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(RecordError::NegativeLength {
                what: "string",
                length: len as i32,
                at,
            });
        }
        let raw = self.take(len as usize)?;
        String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|_| RecordError::NotUtf8 { at })
    }

    pub(crate) fn string(&mut self) -> Result<String, RecordError> {
        let at = self.at;
        self.nullable_string()?.ok_or(RecordError::NegativeLength {
            what: "string",
            length: -1,
            at,
        })
    }

    pub(crate) fn nullable_bytes(&mut self) -> Result<Option<Vec<u8>>, RecordError> {
        let at = self.at;
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(RecordError::NegativeLength {
                what: "bytes",
                length: len,
                at,
            });
        }
        Ok(Some(self.take(len as usize)?.to_vec()))
    }

    pub(crate) fn bytes(&mut self) -> Result<Vec<u8>, RecordError> {
        let at = self.at;
        self.nullable_bytes()?.ok_or(RecordError::NegativeLength {
            what: "bytes",
            length: -1,
            at,
        })
    }

    /// An array count, checked against the remaining bytes at `min_element_bytes` per element.
    pub(crate) fn count(&mut self, what: &'static str, min_element_bytes: usize) -> Result<usize, RecordError> {
        let at = self.at;
        let n = self.i32()?;
        if n < 0 {
            return Err(RecordError::NegativeLength { what, length: n, at });
        }
        let wanted = n as usize * min_element_bytes;
        if wanted > self.buf.len() - self.at {
            return Err(RecordError::Truncated {
                at: self.at,
                wanted,
                len: self.buf.len(),
            });
        }
        Ok(n as usize)
    }

    pub(crate) fn finish(&self) -> Result<(), RecordError> {
        match self.buf.len() - self.at {
            0 => Ok(()),
            extra => Err(RecordError::TrailingBytes { extra }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_group() -> GroupRecord {
        GroupRecord::GroupMetadata {
            group_id: "g".into(),
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation_id: 7,
                protocol_name: Some("range".into()),
                leader_id: Some("c-1".into()),
                current_state_timestamp_ms: 1234,
                members: vec![MemberMetadata {
                    member_id: "c-1".into(),
                    group_instance_id: None,
                    client_id: "c".into(),
                    client_host: "/10.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: vec![0, 1, 2],
                    assignment: vec![],
                }],
            }),
        }
    }

    #[test]
    fn offset_commit_record_has_kafkas_v1_key_and_v3_value_layout() {
        let r = GroupRecord::OffsetCommit {
            group_id: "g".into(),
            tp: TopicPartition::new("t", 2),
            value: Some(OffsetCommitValue {
                offset: 5,
                leader_epoch: 1,
                metadata: String::new(),
                commit_timestamp_ms: 9,
            }),
        };
        let (key, value) = r.encode();
        assert_eq!(key, vec![0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 2]);
        let value = value.expect("not a tombstone");
        assert_eq!(&value[..2], &[0, 3]);
        assert_eq!(value.len(), 2 + 8 + 4 + 2 + 8);
        assert_eq!(GroupRecord::decode(&key, Some(&value)), Ok(r));
    }

    #[test]
    fn group_metadata_and_tombstones_round_trip() {
        let g = sample_group();
        let (key, value) = g.encode();
        assert_eq!(GroupRecord::decode(&key, value.as_deref()), Ok(g));
        let t = GroupRecord::GroupMetadata {
            group_id: "g".into(),
            value: None,
        };
        let (key, value) = t.encode();
        assert_eq!(value, None);
        assert_eq!(GroupRecord::decode(&key, None), Ok(t));
    }

    #[test]
    fn decoding_a_truncated_or_inflated_record_is_an_error_not_a_panic() {
        let (key, value) = sample_group().encode();
        let value = value.expect("value");
        for cut in 0..value.len() {
            assert!(GroupRecord::decode(&key, Some(&value[..cut])).is_err(), "cut at {cut}");
        }
        let mut huge = value.clone();
        // The members count sits after version, protocol type, generation, protocol, leader, timestamp.
        let at = 2 + 2 + 8 + 4 + 2 + 5 + 2 + 3 + 8;
        huge[at..at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            GroupRecord::decode(&key, Some(&huge)),
            Err(RecordError::Truncated { .. })
        ));
        assert_eq!(
            GroupRecord::decode(&[0, 9], None),
            Err(RecordError::UnknownVersion {
                what: "key",
                version: 9
            })
        );
    }
}
