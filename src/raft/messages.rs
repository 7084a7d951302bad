//! KRaft's RPCs (KIP-595) as plain data: Vote, BeginQuorumEpoch, EndQuorumEpoch and the pull-based Fetch.
//! The node shell maps them to the Kafka wire messages (`VoteRequest` v0–2 ...) of `kafka-protocol`.
//! `correlation_id` is the request header's correlation id: a follower accepts only the response to its
//! latest Fetch (TCP plus correlation ids give Kafka the same).

use std::fmt;

use super::log::{Entry, OffsetAndEpoch};

/// The Kafka error codes the quorum RPCs use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaftError {
    None,
    /// The request's epoch is older than the receiver's (`FENCED_LEADER_EPOCH`, 74).
    FencedLeaderEpoch,
    /// The request's epoch is newer than the receiver's (`UNKNOWN_LEADER_EPOCH`, 75).
    UnknownLeaderEpoch,
    /// The receiver is not the leader of that epoch (`NOT_LEADER_OR_FOLLOWER`, 6).
    NotLeaderOrFollower,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteRequest {
    pub candidate_epoch: i32,
    pub candidate_id: i32,
    /// Epoch of the candidate's last entry (KIP-595 `LastOffsetEpoch`).
    pub last_offset_epoch: i32,
    /// The candidate's log end offset (KIP-595 `LastOffset`).
    pub last_offset: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteResponse {
    pub error_code: RaftError,
    pub leader_id: Option<i32>,
    pub leader_epoch: i32,
    pub vote_granted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BeginQuorumEpochRequest {
    pub leader_id: i32,
    pub leader_epoch: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndQuorumEpochRequest {
    pub leader_id: i32,
    pub leader_epoch: i32,
    /// Voters ordered by how far their logs reached: the first should campaign first.
    pub preferred_successors: Vec<i32>,
}

/// The response of BeginQuorumEpoch and EndQuorumEpoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumEpochResponse {
    pub error_code: RaftError,
    pub leader_id: Option<i32>,
    pub leader_epoch: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRequest {
    pub correlation_id: u64,
    pub replica_id: i32,
    /// The fetcher's epoch (`CurrentLeaderEpoch`), for fencing.
    pub current_leader_epoch: i32,
    /// The fetcher's (flushed) log end offset.
    pub fetch_offset: u64,
    /// Epoch of the entry before `fetch_offset`.
    pub last_fetched_epoch: i32,
    pub max_wait_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchResponse {
    pub correlation_id: u64,
    pub error_code: RaftError,
    pub leader_id: Option<i32>,
    pub leader_epoch: i32,
    pub high_watermark: Option<u64>,
    pub diverging_epoch: Option<OffsetAndEpoch>,
    pub records: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Vote(VoteRequest),
    VoteResponse(VoteResponse),
    BeginQuorumEpoch(BeginQuorumEpochRequest),
    BeginQuorumEpochResponse(QuorumEpochResponse),
    EndQuorumEpoch(EndQuorumEpochRequest),
    EndQuorumEpochResponse(QuorumEpochResponse),
    Fetch(FetchRequest),
    FetchResponse(FetchResponse),
}

fn leader(id: Option<i32>) -> String {
    id.map_or("-".to_string(), |l| l.to_string())
}

fn err(e: RaftError) -> String {
    match e {
        RaftError::None => String::new(),
        other => format!(" {other:?}"),
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Vote(r) => write!(
                f,
                "Vote epoch={} candidate={} last={}@{}",
                r.candidate_epoch, r.candidate_id, r.last_offset_epoch, r.last_offset
            ),
            Message::VoteResponse(r) => write!(
                f,
                "VoteResponse{} epoch={} leader={} granted={}",
                err(r.error_code),
                r.leader_epoch,
                leader(r.leader_id),
                r.vote_granted
            ),
            Message::BeginQuorumEpoch(r) => {
                write!(f, "BeginQuorumEpoch epoch={} leader={}", r.leader_epoch, r.leader_id)
            }
            Message::BeginQuorumEpochResponse(r) => {
                write!(
                    f,
                    "BeginQuorumEpochResponse{} epoch={} leader={}",
                    err(r.error_code),
                    r.leader_epoch,
                    leader(r.leader_id)
                )
            }
            Message::EndQuorumEpoch(r) => write!(
                f,
                "EndQuorumEpoch epoch={} leader={} successors={:?}",
                r.leader_epoch, r.leader_id, r.preferred_successors
            ),
            Message::EndQuorumEpochResponse(r) => {
                write!(
                    f,
                    "EndQuorumEpochResponse{} epoch={} leader={}",
                    err(r.error_code),
                    r.leader_epoch,
                    leader(r.leader_id)
                )
            }
            Message::Fetch(r) => write!(
                f,
                "Fetch epoch={} offset={} last_epoch={}",
                r.current_leader_epoch, r.fetch_offset, r.last_fetched_epoch
            ),
            Message::FetchResponse(r) => fmt_fetch_response(r, f),
        }
    }
}

fn fmt_fetch_response(r: &FetchResponse, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let hw = r.high_watermark.map_or("-".to_string(), |h| h.to_string());
    write!(
        f,
        "FetchResponse{} epoch={} leader={} hw={hw}",
        err(r.error_code),
        r.leader_epoch,
        leader(r.leader_id)
    )?;
    if let Some(d) = r.diverging_epoch {
        write!(f, " diverging={}@{}", d.epoch, d.end_offset)?;
    }
    if !r.records.is_empty() {
        let records: Vec<String> = r.records.iter().map(|e| e.to_string()).collect();
        write!(f, " records=[{}]", records.join(" "))?;
    }
    Ok(())
}
