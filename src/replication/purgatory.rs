//! The acks=all produce purgatory (Kafka's `DelayedProduce`): a produce whose batches are in the leader's
//! log waits until the high watermark passes each partition's last offset, or until its `timeout_ms`.

use std::collections::BTreeMap;

use crate::protocol::errors::code;
use crate::types::{LeaderEpoch, TopicPartition};

/// One partition's state for a waiting produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStatus {
    Waiting,
    /// Finished with this error code (`NONE`, `NOT_ENOUGH_REPLICAS_AFTER_APPEND`, `NOT_LEADER_OR_FOLLOWER`).
    Done(i16),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct PartitionWait {
    /// The offset after the produce's last record: done once the high watermark reaches it.
    required_offset: i64,
    /// The leader epoch the batch was appended in: another epoch means leadership moved meanwhile.
    leader_epoch: LeaderEpoch,
    outcome: Option<i16>,
}

/// A produce waiting in the purgatory, with what the caller needs to answer it (`payload`).
#[derive(Clone, Debug)]
pub struct DelayedProduce<P> {
    pub payload: P,
    pub deadline_ms: i64,
    partitions: BTreeMap<TopicPartition, PartitionWait>,
}

/// acks=all produces by key (a connection: one request in flight per connection).
#[derive(Clone, Debug)]
pub struct AcksPurgatory<K: Ord + Copy, P> {
    waiting: BTreeMap<K, DelayedProduce<P>>,
}

impl<K: Ord + Copy, P> Default for AcksPurgatory<K, P> {
    fn default() -> Self {
        Self {
            waiting: BTreeMap::new(),
        }
    }
}

/// A completed produce: its payload and each waiting partition's error code.
pub type Completed<K, P> = (K, P, BTreeMap<TopicPartition, i16>);

impl<K: Ord + Copy, P> AcksPurgatory<K, P> {
    /// Parks a produce whose `waits` are (partition, required offset, leader epoch of the append).
    pub fn park(&mut self, key: K, payload: P, deadline_ms: i64, waits: Vec<(TopicPartition, i64, LeaderEpoch)>) {
        let partitions = waits
            .into_iter()
            .map(|(tp, required_offset, leader_epoch)| {
                let w = PartitionWait {
                    required_offset,
                    leader_epoch,
                    outcome: None,
                };
                (tp, w)
            })
            .collect();
        let d = DelayedProduce {
            payload,
            deadline_ms,
            partitions,
        };
        self.waiting.insert(key, d);
    }

    /// Checks every waiting partition with `status(tp, required_offset, leader_epoch)`; a produce completes
    /// when all of its partitions are done, or at its deadline (the rest get `REQUEST_TIMED_OUT`).
    pub fn poll(
        &mut self,
        now_ms: i64,
        mut status: impl FnMut(&TopicPartition, i64, LeaderEpoch) -> WaitStatus,
    ) -> Vec<Completed<K, P>> {
        let mut done_keys = Vec::new();
        for (key, d) in &mut self.waiting {
            for (tp, w) in d.partitions.iter_mut().filter(|(_, w)| w.outcome.is_none()) {
                if let WaitStatus::Done(c) = status(tp, w.required_offset, w.leader_epoch) {
                    w.outcome = Some(c);
                }
            }
            let all_done = d.partitions.values().all(|w| w.outcome.is_some());
            if all_done || now_ms >= d.deadline_ms {
                done_keys.push(*key);
            }
        }
        let mut out = Vec::with_capacity(done_keys.len());
        for key in done_keys {
            let Some(d) = self.waiting.remove(&key) else { continue };
            let codes = d
                .partitions
                .into_iter()
                .map(|(tp, w)| (tp, w.outcome.unwrap_or(code::REQUEST_TIMED_OUT)))
                .collect();
            out.push((key, d.payload, codes));
        }
        out
    }

    pub fn cancel(&mut self, key: K) {
        self.waiting.remove(&key);
    }

    pub fn next_deadline(&self) -> Option<i64> {
        self.waiting.values().map(|d| d.deadline_ms).min()
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}
