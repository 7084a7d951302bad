//! A consumer-group member's workload: subscribes to its topics under group management, polls in a loop and
//! commits what it polled, recording every step in the history (ARCHITECTURE §6): `subscribe`, `join` (ok with
//! member id and generation), `sync` (ok with the assignment), `poll` (one op per partition with its records),
//! `commit` (invoke, then ok / fail / info per partition, with the generation it carried), `offset-fetch`,
//! `reset` and `revoke`.
//!
//! With `enable.auto.commit=false` the member commits every position (what poll returned, KAFKA-2942) at the
//! top of its loop once `commit_interval_ms` passed since its last commit *started*. So a member paused past
//! `session.timeout.ms` commits first thing after it resumes, with the generation it had: the coordinator
//! must reject it (ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID).
//!
//! Each member runs on its own node; a crash kills it, a restart runs it again from the start (a new member
//! that resumes from the group's committed offsets).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::client::consumer::{code_name, Completion, ConsumerEvent, KafkaConsumer};
use crate::history::{OpBody, OpType, ReadRecord, StateObserver};
use crate::sim::recorder::Recorder;
use crate::types::TopicPartition;

/// One group member's workload.
#[derive(Debug, Clone)]
pub struct ConsumerWorkload {
    /// The process name in the history (its node's name).
    pub name: String,
    pub group_id: String,
    pub topics: Vec<String>,
    /// The consumer's config by Kafka's names (`enable.auto.commit`, `session.timeout.ms`, ...).
    pub client_config: BTreeMap<String, String>,
    pub bootstrap: Vec<String>,
    /// Stop polling at this simulated time (µs since the run started), then leave the group.
    pub stop_at_us: u64,
    /// With `enable.auto.commit=false`: commit this often (ms).
    pub commit_interval_ms: u64,
    /// How long one `poll` waits for records (ms).
    pub poll_timeout_ms: u64,
    /// How long the member sleeps after each poll (ms): its processing time.
    pub poll_pause_ms: u64,
}

/// The mark of a consumer whose fetch position fell outside the leader's log (OFFSET_OUT_OF_RANGE: below
/// the log start after retention, or above the end) and was reset by `auto.offset.reset`.
pub const CONSUMER_OFFSET_OUT_OF_RANGE_MARK: &str = "consumer-reset-after-offset-out-of-range";

/// Runs the member until `stop_at_us`, then leaves the group.
pub async fn run(w: ConsumerWorkload, rec: Recorder) {
    let mut props = w.client_config.clone();
    props.insert("group.id".into(), w.group_id.clone());
    props.entry("client.id".into()).or_insert(w.name.clone());
    let auto_commit = props.get("enable.auto.commit").is_none_or(|v| v == "true");
    let observer = {
        let (rec, name) = (rec.clone(), w.name.clone());
        Box::new(move |e: ConsumerEvent| record_event(&rec, &name, e))
    };
    let mut consumer = match KafkaConsumer::new(w.bootstrap.clone(), &props, observer) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{}: bad consumer config: {e}", w.name);
            return;
        }
    };
    let topics: BTreeSet<String> = w.topics.iter().cloned().collect();
    rec.op(
        &w.name,
        OpType::Invoke,
        OpBody::Subscribe {
            topics: w.topics.clone(),
        },
        None,
    );
    let subscribed = consumer.subscribe(topics);
    let (t, e) = match subscribed {
        Ok(()) => (OpType::Ok, None),
        Err(e) => (OpType::Fail, Some(e.to_string())),
    };
    rec.op(
        &w.name,
        t,
        OpBody::Subscribe {
            topics: w.topics.clone(),
        },
        e,
    );
    let mut last_commit_start_us = rec.now_us();
    while rec.now_us() < w.stop_at_us {
        if !auto_commit && rec.now_us() >= last_commit_start_us + w.commit_interval_ms * 1000 {
            last_commit_start_us = rec.now_us();
            consumer.commit_sync().await;
        }
        let before: BTreeMap<TopicPartition, i64> = consumer
            .assignment()
            .into_iter()
            .filter_map(|tp| Some((tp.clone(), consumer.position(&tp)?.offset)))
            .collect();
        let records = consumer.poll(Duration::from_millis(w.poll_timeout_ms)).await;
        record_polls(&rec, &w.name, &before, records);
        if w.poll_pause_ms > 0 {
            crate::rt::sleep(Duration::from_millis(w.poll_pause_ms)).await;
        }
    }
    if !auto_commit {
        consumer.commit_sync().await;
    }
    consumer.close().await;
}

fn record_polls(
    rec: &Recorder,
    name: &str,
    before: &BTreeMap<TopicPartition, i64>,
    records: Vec<crate::consumer::ConsumerRecord>,
) {
    let mut by_tp: BTreeMap<TopicPartition, Vec<ReadRecord>> = BTreeMap::new();
    for r in records {
        by_tp
            .entry(r.tp.clone())
            .or_default()
            .push(ReadRecord::decoded(r.offset, r.value.as_deref(), &r.headers));
    }
    for (tp, records) in by_tp {
        let first = records.first().map_or(-1, |r| r.offset);
        let body = OpBody::Poll {
            topic: tp.topic.clone(),
            partition: tp.partition,
            fetch_offset: before.get(&tp).copied().unwrap_or(first),
            records,
        };
        rec.op(name, OpType::Ok, body, None);
    }
}

fn policy(timestamp: i64) -> String {
    if timestamp == -2 { "earliest" } else { "latest" }.to_string()
}

/// One consumer event as history ops.
fn record_event(rec: &Recorder, name: &str, e: ConsumerEvent) {
    match e {
        ConsumerEvent::JoinInvoked { group_id } => rec.op(name, OpType::Invoke, join(group_id, None, None), None),
        ConsumerEvent::Joined {
            group_id,
            member_id,
            generation_id,
        } => rec.op(
            name,
            OpType::Ok,
            join(group_id, Some(member_id), Some(generation_id)),
            None,
        ),
        ConsumerEvent::JoinFailed { group_id, error } => {
            rec.op(name, OpType::Fail, join(group_id, None, None), Some(error))
        }
        ConsumerEvent::Synced {
            group_id,
            member_id,
            generation_id,
            assignment,
        } => rec.op(
            name,
            OpType::Ok,
            OpBody::Sync {
                group: group_id,
                generation: generation_id,
                member_id,
                assignment,
            },
            None,
        ),
        ConsumerEvent::Revoked {
            group_id,
            partitions,
            lost,
        } => rec.op(
            name,
            OpType::Ok,
            OpBody::Revoke {
                group: group_id,
                partitions,
            },
            lost.then(|| "lost: the member fell out of the group".to_string()),
        ),
        ConsumerEvent::CommitInvoked { request } => {
            for o in &request.offsets {
                rec.op(name, OpType::Invoke, commit(&request, o), None);
            }
        }
        ConsumerEvent::CommitDone { request, results } => {
            for o in &request.offsets {
                let done = results.iter().find(|(tp, _)| *tp == o.tp).map(|(_, c)| c.clone());
                let (t, error) = match done {
                    Some(Completion::Ok) => (OpType::Ok, None),
                    Some(Completion::Fail(code)) => (OpType::Fail, Some(code_name(code))),
                    Some(Completion::Info(why)) => (OpType::Info, Some(why)),
                    None => (OpType::Info, Some("no answer for this partition".to_string())),
                };
                rec.op(name, t, commit(&request, o), error);
            }
        }
        ConsumerEvent::OffsetFetched { group_id, tp, offset } => rec.op(
            name,
            OpType::Ok,
            OpBody::OffsetFetch {
                group: group_id,
                topic: tp.topic,
                partition: tp.partition,
                offset: (offset >= 0).then_some(offset),
            },
            None,
        ),
        ConsumerEvent::OffsetOutOfRange { .. } => rec.mark(CONSUMER_OFFSET_OUT_OF_RANGE_MARK),
        ConsumerEvent::ResetInvoked { tp, timestamp } => {
            rec.op(name, OpType::Invoke, reset(&tp, timestamp, None), None)
        }
        ConsumerEvent::ResetDone { tp, timestamp, offset } => {
            let t = if offset.is_some() { OpType::Ok } else { OpType::Fail };
            rec.op(name, t, reset(&tp, timestamp, offset), None)
        }
        ConsumerEvent::TruncationDetected {
            tp,
            position,
            reset_offset,
        } => {
            rec.mark(crate::consumer::CONSUMER_DETECTED_TRUNCATION_MARK);
            // KIP-320 moved the position back: a `reset` the poll checkers restart at. Without an offset,
            // auto.offset.reset's own `reset` ops follow.
            if let Some(offset) = reset_offset {
                let body = OpBody::Reset {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    policy: "truncation".into(),
                    offset: Some(offset),
                };
                let why = format!("leader's log ends at {offset} below position {position}");
                rec.op(name, OpType::Invoke, body.clone(), None);
                rec.op(name, OpType::Ok, body, Some(why));
            }
        }
    }
}

fn join(group: String, member_id: Option<String>, generation: Option<i32>) -> OpBody {
    OpBody::Join {
        group,
        member_id,
        generation,
    }
}

fn commit(request: &crate::group::OffsetCommitRequest, o: &crate::group::CommitOffset) -> OpBody {
    OpBody::Commit {
        group: request.group_id.clone(),
        topic: o.tp.topic.clone(),
        partition: o.tp.partition,
        offset: o.offset,
        generation: request.generation_id,
    }
}

fn reset(tp: &TopicPartition, timestamp: i64, offset: Option<i64>) -> OpBody {
    OpBody::Reset {
        topic: tp.topic.clone(),
        partition: tp.partition,
        policy: policy(timestamp),
        offset,
    }
}
