//! L0: the recorded history (Jepsen-style ops, one JSON object a line) and the state trace.
//!
//! A run records what clients invoked and what came back, with simulated time, plus every fault's start
//! and end. Checkers read only this (and the final state), never a node's internals.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::Hash;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::types::TopicPartition;

/// Jepsen's op types: an `invoke` is followed by its completion `ok`, `fail` (it did not happen) or `info`
/// (it may or may not have happened). Faults and phases are `info` events with no invoke.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// The record header a workload producer puts on a tombstone (a record with a null value, Kafka's
/// delete marker on a compacted topic): it carries the send's unique history value, so a read of the
/// tombstone names the send it came from as any other read does (headers round-trip byte-exact; the cleaner
/// keeps a tombstone's headers).
pub const TOMBSTONE_VALUE_HEADER: &str = "gregor.tombstone";

/// One record as a poll or a drain saw it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReadRecord {
    pub offset: i64,
    /// The value as text; for a tombstone, the history value its [`TOMBSTONE_VALUE_HEADER`] names (empty
    /// without one).
    pub value: String,
    /// The record's value was null (a tombstone), not an empty string.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tombstone: bool,
}

impl ReadRecord {
    /// A record as read: a non-null value as text, or a tombstone named by its [`TOMBSTONE_VALUE_HEADER`].
    pub fn decoded(offset: i64, value: Option<&[u8]>, headers: &[(String, Option<Vec<u8>>)]) -> ReadRecord {
        match value {
            Some(v) => ReadRecord {
                offset,
                value: String::from_utf8_lossy(v).into_owned(),
                tombstone: false,
            },
            None => {
                let named = headers
                    .iter()
                    .find(|(k, _)| k == TOMBSTONE_VALUE_HEADER)
                    .and_then(|(_, v)| v.as_deref());
                ReadRecord {
                    offset,
                    value: named
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default(),
                    tombstone: true,
                }
            }
        }
    }
}

/// What an op did. `f` names it as Jepsen does.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum OpBody {
    /// A producer's send of one record; `offset` is known on `ok`.
    Send {
        topic: String,
        partition: i32,
        key: String,
        value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<i64>,
        /// The record's value is null (a tombstone, deleting `key` on a compacted topic); `value` then only
        /// names the send (it travels in the [`TOMBSTONE_VALUE_HEADER`] header).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        tombstone: bool,
    },
    /// A read of one partition from `fetch_offset`: the records it returned, in order.
    Poll {
        topic: String,
        partition: i32,
        fetch_offset: i64,
        #[serde(default)]
        records: Vec<ReadRecord>,
    },
    /// A read that found a corrupt batch at `offset` (its CRC, `check.crcs`): nothing at that offset was
    /// returned as data.
    CorruptRead {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
    /// A fault's start or end. `detail` holds what the fault did (the node it hit, a power loss's durable
    /// frontier per partition, ...).
    Fault {
        kind: String,
        target: String,
        phase: FaultPhase,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        detail: BTreeMap<String, serde_json::Value>,
    },
    /// The runner entered a phase (safety, heal, liveness, drain).
    Phase { name: String },
    /// An OffsetCommit of one partition for a group: `offset` is the next offset to read (Kafka's committed
    /// offset), `generation` the member's generation id (-1 for a consumer outside group management).
    Commit {
        group: String,
        topic: String,
        partition: i32,
        offset: i64,
        generation: i32,
    },
    /// An OffsetFetch of one partition for a group: `offset` is known on `ok` (None: nothing committed, Kafka's -1).
    OffsetFetch {
        group: String,
        topic: String,
        partition: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<i64>,
    },
    /// A consumer's manual assignment (`assign`): the partitions it now reads.
    Assign {
        #[serde(default)]
        partitions: Vec<TopicPartition>,
    },
    /// A consumer's subscription (`subscribe`) to topics under group management.
    Subscribe {
        #[serde(default)]
        topics: Vec<String>,
    },
    /// A consumer moved its position on a partition (`seek`): its next fetch starts at `offset`.
    Seek { topic: String, partition: i32, offset: i64 },
    /// A consumer's position was reset by `auto.offset.reset` (`policy`: earliest, latest, none) after no
    /// committed offset or an out-of-range fetch; `offset` (known on `ok`) is where the position landed.
    Reset {
        topic: String,
        partition: i32,
        policy: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<i64>,
    },
    /// A JoinGroup: `member_id` and `generation` are known on `ok`.
    Join {
        group: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        generation: Option<i32>,
    },
    /// A SyncGroup: the member's assignment for `generation` (known on `ok`).
    Sync {
        group: String,
        generation: i32,
        member_id: String,
        #[serde(default)]
        assignment: Vec<TopicPartition>,
    },
    /// The member gave up partitions (onPartitionsRevoked / onPartitionsLost) before a rebalance.
    Revoke {
        group: String,
        #[serde(default)]
        partitions: Vec<TopicPartition>,
    },
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum FaultPhase {
    Start,
    End,
}

/// One line of the history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Op {
    pub index: u64,
    /// Simulated microseconds since the run started.
    pub time_us: u64,
    pub process: String,
    #[serde(rename = "type")]
    pub op_type: OpType,
    #[serde(flatten)]
    pub body: OpBody,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What identifies a record batch byte for byte: its offsets, the leader epoch stamped on it, its length and
/// its CRC (which covers every byte after the CRC field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
pub struct BatchDigest {
    pub base_offset: i64,
    pub last_offset: i64,
    pub partition_leader_epoch: i32,
    pub batch_length: i32,
    pub crc: u32,
}

/// One line of the state trace: a replica's view of one partition at a moment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReplicaState {
    pub time_us: u64,
    pub node: String,
    /// Bumped on every restart of the node: a tenure is (leader, leader epoch, incarnation).
    pub incarnation: u32,
    pub topic: String,
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
}

/// A KRaft voter's role, as it reports it (Kafka's `QuorumState`: Unattached, Voted, Candidate, Leader,
/// Resigned, Follower; Prospective is KIP-996's pre-vote).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum RaftRole {
    Unattached,
    Voted,
    Prospective,
    Candidate,
    Leader,
    Resigned,
    Follower,
}

/// One line of the Raft state trace: a controller's view of the metadata quorum at a moment. Fed by the
/// controller nodes (not yet recorded by the runner).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct RaftState {
    pub time_us: u64,
    pub node: String,
    /// Bumped on every restart of the node.
    pub incarnation: u32,
    pub role: RaftRole,
    pub epoch: i32,
    /// The leader this node knows for `epoch` (itself when `role` is leader), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<i32>,
    /// This node's Raft high watermark, if it knows one (a new leader has none until it commits an entry of
    /// its own epoch; KRaft does not persist it, so a restarted voter starts without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_watermark: Option<i64>,
}

/// Where nodes report their replicas' state as it changes (the simulator stamps the time and records it in
/// the state trace). Lower layers call it; `sim` implements it.
pub trait StateObserver: Send + Sync {
    /// `state.time_us` is ignored: the observer stamps the current simulated time.
    fn replica_state(&self, state: ReplicaState);
    /// A controller's Raft view changed (time stamped by the observer).
    fn raft_state(&self, _state: RaftState) {}
    /// A node applied metadata records (time stamped by the observer).
    fn metadata_state(&self, _state: MetadataState) {}
    /// A coverage mark a node hit (stateright's Sometimes), counted in the run summary.
    fn mark(&self, _mark: &'static str) {}
}

/// One partition's leadership as a node's metadata says it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Leadership {
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
}

/// One line of the metadata trace: what a node's applied metadata log says right after it applied records
/// up to `offset` — a controller's committed state, or a broker's image. Two nodes at one offset must agree.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct MetadataState {
    pub time_us: u64,
    pub node: String,
    pub incarnation: u32,
    /// The offset of the last metadata log entry applied.
    pub offset: i64,
    /// Registered brokers that are fenced (KIP-631).
    pub fenced: Vec<i32>,
    /// Registered brokers.
    pub brokers: Vec<i32>,
    /// By `topic-partition`.
    pub partitions: BTreeMap<String, Leadership>,
}

/// A run's record: the history and the state trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub ops: Vec<Op>,
    pub states: Vec<ReplicaState>,
    /// The Raft trace: each controller's role, epoch, leader and high watermark as they change.
    pub raft_states: Vec<RaftState>,
    /// The metadata trace: what each node's applied metadata says, after each batch it applied.
    pub metadata_states: Vec<MetadataState>,
}

impl History {
    /// Appends an op, numbering it.
    pub fn push(&mut self, time_us: u64, process: &str, op_type: OpType, body: OpBody, error: Option<String>) {
        let index = self.ops.len() as u64;
        self.ops.push(Op {
            index,
            time_us,
            process: process.to_string(),
            op_type,
            body,
            error,
        });
    }

    /// The history as JSONL.
    pub fn ops_jsonl(&self) -> String {
        to_jsonl(&self.ops)
    }

    /// The state trace as JSONL: replica states, then Raft states, then metadata states.
    pub fn states_jsonl(&self) -> String {
        let mut out = to_jsonl(&self.states);
        out.push_str(&to_jsonl(&self.raft_states));
        out.push_str(&to_jsonl(&self.metadata_states));
        out
    }

    /// SHA-256 of the history and the state trace, hex: equal for byte-identical runs. The ops and states are
    /// fed to the hasher field by field through their `Hash` impls (integers little-endian), not as JSON:
    /// formatting the JSON cost more than the rest of the checks.
    pub fn hash(&self) -> String {
        let mut h = ShaHasher::default();
        self.ops.hash(&mut h);
        self.states.hash(&mut h);
        self.raft_states.hash(&mut h);
        self.metadata_states.hash(&mut h);
        hex(&h.finalize())
    }

    /// Parses a history written by [`History::ops_jsonl`]; errors name the line.
    pub fn parse_ops(jsonl: &str) -> Result<Vec<Op>, String> {
        jsonl
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("history line {}: {e}", i + 1)))
            .collect()
    }
}

/// A `Hasher` feeding SHA-256 through std's `BufWriter` (derived `Hash` impls write a few bytes at a time).
/// Integers are written little-endian and lengths as u64, so the digest does not depend on the platform.
struct ShaHasher(std::io::BufWriter<Sha256>);

impl Default for ShaHasher {
    fn default() -> Self {
        ShaHasher(std::io::BufWriter::with_capacity(1 << 16, Sha256::new()))
    }
}

impl ShaHasher {
    fn finalize(self) -> [u8; 32] {
        let sha = self
            .0
            .into_inner()
            .unwrap_or_else(|e| panic!("the hasher never refuses bytes: {e}"));
        sha.finalize().into()
    }
}

macro_rules! le_writes {
    ($($name:ident: $t:ty),*) => {
        $(fn $name(&mut self, i: $t) {
            self.write(&i.to_le_bytes());
        })*
    };
}

impl std::hash::Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        std::io::Write::write_all(&mut self.0, bytes).expect("the hasher never refuses bytes");
    }

    le_writes!(write_u16: u16, write_u32: u32, write_u64: u64, write_i16: i16, write_i32: i32, write_i64: i64);

    fn write_usize(&mut self, i: usize) {
        self.write(&(i as u64).to_le_bytes());
    }

    fn write_isize(&mut self, i: isize) {
        self.write(&(i as i64).to_le_bytes());
    }

    /// Unused: the digest is read with `finalize`.
    fn finish(&self) -> u64 {
        0
    }
}

fn to_jsonl<T: Serialize>(items: &[T]) -> String {
    let mut out = String::new();
    for item in items {
        // Serializing our own plain data types cannot fail.
        out.push_str(&serde_json::to_string(item).expect("history items serialize"));
        out.push('\n');
    }
    out
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_through_jsonl_with_jepsen_field_names() {
        let mut h = History::default();
        h.push(
            5,
            "client-1",
            OpType::Invoke,
            OpBody::Send {
                topic: "t".into(),
                partition: 0,
                key: "k1".into(),
                value: "v1".into(),
                offset: None,
                tombstone: false,
            },
            None,
        );
        h.push(
            9,
            "client-1",
            OpType::Ok,
            OpBody::Send {
                topic: "t".into(),
                partition: 0,
                key: "k1".into(),
                value: "v1".into(),
                offset: Some(3),
                tombstone: false,
            },
            None,
        );
        let text = h.ops_jsonl();
        assert!(
            text.starts_with(r#"{"index":0,"time_us":5,"process":"client-1","type":"invoke","f":"send""#),
            "{text}"
        );
        assert_eq!(History::parse_ops(&text).unwrap(), h.ops);
        assert!(History::parse_ops("{nope").unwrap_err().contains("line 1"));
    }

    #[test]
    fn group_ops_have_jepsen_style_json_shapes() {
        let tp = || TopicPartition {
            topic: "t".into(),
            partition: 0,
        };
        let cases = [
            (
                OpBody::Commit {
                    group: "g".into(),
                    topic: "t".into(),
                    partition: 0,
                    offset: 5,
                    generation: 2,
                },
                r#"{"f":"commit","group":"g","topic":"t","partition":0,"offset":5,"generation":2}"#,
            ),
            (
                OpBody::OffsetFetch {
                    group: "g".into(),
                    topic: "t".into(),
                    partition: 0,
                    offset: Some(5),
                },
                r#"{"f":"offset-fetch","group":"g","topic":"t","partition":0,"offset":5}"#,
            ),
            (
                OpBody::Assign { partitions: vec![tp()] },
                r#"{"f":"assign","partitions":[{"topic":"t","partition":0}]}"#,
            ),
            (
                OpBody::Subscribe {
                    topics: vec!["t".into()],
                },
                r#"{"f":"subscribe","topics":["t"]}"#,
            ),
            (
                OpBody::Seek {
                    topic: "t".into(),
                    partition: 0,
                    offset: 3,
                },
                r#"{"f":"seek","topic":"t","partition":0,"offset":3}"#,
            ),
            (
                OpBody::Reset {
                    topic: "t".into(),
                    partition: 0,
                    policy: "earliest".into(),
                    offset: Some(0),
                },
                r#"{"f":"reset","topic":"t","partition":0,"policy":"earliest","offset":0}"#,
            ),
            (
                OpBody::Join {
                    group: "g".into(),
                    member_id: Some("m-1".into()),
                    generation: Some(2),
                },
                r#"{"f":"join","group":"g","member_id":"m-1","generation":2}"#,
            ),
            (
                OpBody::Sync {
                    group: "g".into(),
                    generation: 2,
                    member_id: "m-1".into(),
                    assignment: vec![tp()],
                },
                r#"{"f":"sync","group":"g","generation":2,"member_id":"m-1","assignment":[{"topic":"t","partition":0}]}"#,
            ),
            (
                OpBody::Revoke {
                    group: "g".into(),
                    partitions: vec![tp()],
                },
                r#"{"f":"revoke","group":"g","partitions":[{"topic":"t","partition":0}]}"#,
            ),
        ];
        for (body, json) in cases {
            assert_eq!(serde_json::to_string(&body).unwrap(), json);
            assert_eq!(serde_json::from_str::<OpBody>(json).unwrap(), body);
        }
    }

    #[test]
    fn raft_states_serialize_with_lowercase_roles() {
        let s = RaftState {
            time_us: 7,
            node: "controller-1".into(),
            incarnation: 0,
            role: RaftRole::Leader,
            epoch: 3,
            leader: Some(1),
            high_watermark: None,
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"time_us":7,"node":"controller-1","incarnation":0,"role":"leader","epoch":3,"leader":1}"#
        );
        assert_eq!(serde_json::from_str::<RaftState>(&json).unwrap(), s);
    }

    #[test]
    fn hash_changes_when_anything_changes() {
        let mut a = History::default();
        a.push(1, "p", OpType::Info, OpBody::Phase { name: "safety".into() }, None);
        let b = a.clone();
        assert_eq!(a.hash(), b.hash());
        a.push(2, "p", OpType::Info, OpBody::Phase { name: "heal".into() }, None);
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn hash_separates_ops_from_states_and_strings_from_each_other() {
        let state = |node: &str, topic: &str| ReplicaState {
            time_us: 0,
            node: node.into(),
            incarnation: 0,
            topic: topic.into(),
            partition: 0,
            leader: 1,
            leader_epoch: 0,
            isr: vec![1],
            log_start_offset: 0,
            log_end_offset: 0,
            high_watermark: 0,
        };
        let with = |states: Vec<ReplicaState>| History {
            states,
            ..History::default()
        };
        // Moving a byte from one string to its neighbour changes the digest (strings end with 0xff).
        assert_ne!(with(vec![state("ab", "c")]).hash(), with(vec![state("a", "bc")]).hash());
        // A state is not confused with a Raft state: each list is length-prefixed.
        assert_ne!(with(vec![state("a", "b")]).hash(), History::default().hash());
        // The digest of the empty history is fixed: it does not depend on the platform or the run.
        assert_eq!(
            History::default().hash(),
            hex(&Sha256::digest([0u8; 32])),
            "four empty lists, each a u64 length of 0"
        );
    }
}

#[cfg(test)]
mod tombstone_tests {
    use super::*;

    #[test]
    fn a_tombstone_read_is_told_apart_from_an_empty_value_and_names_its_send() {
        let header = vec![(TOMBSTONE_VALUE_HEADER.to_string(), Some(b"p-7".to_vec()))];
        let t = ReadRecord::decoded(3, None, &header);
        assert_eq!((t.value.as_str(), t.tombstone), ("p-7", true));
        let empty = ReadRecord::decoded(4, Some(b""), &[]);
        assert_eq!((empty.value.as_str(), empty.tombstone), ("", false));
        let anonymous = ReadRecord::decoded(5, None, &[]);
        assert_eq!((anonymous.value.as_str(), anonymous.tombstone), ("", true));
        assert_eq!(
            serde_json::to_string(&empty).expect("serializes"),
            r#"{"offset":4,"value":""}"#
        );
        assert_eq!(
            serde_json::to_string(&t).expect("serializes"),
            r#"{"offset":3,"value":"p-7","tombstone":true}"#
        );
    }

    #[test]
    fn a_send_without_a_tombstone_serializes_as_before_and_one_with_it_round_trips() {
        let send = |tombstone| OpBody::Send {
            topic: "t".into(),
            partition: 0,
            key: "k".into(),
            value: "v".into(),
            offset: Some(1),
            tombstone,
        };
        assert_eq!(
            serde_json::to_string(&send(false)).expect("serializes"),
            r#"{"f":"send","topic":"t","partition":0,"key":"k","value":"v","offset":1}"#
        );
        let json = serde_json::to_string(&send(true)).expect("serializes");
        assert!(json.ends_with(r#""offset":1,"tombstone":true}"#), "{json}");
        let back: OpBody = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, send(true));
    }
}
