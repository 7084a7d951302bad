//! Fetch with long poll (Kafka's `ReplicaManager.fetchMessages` and the fetch purgatory's `DelayedFetch`):
//! a fetch that finds fewer than `min_bytes` waits until data arrives or `max_wait_ms` passes.

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, BrokerId as WireBrokerId, FetchRequest, FetchResponse};

use super::{partition_error, respond, Broker, ConnId, Failure, Reply};
use crate::log::Disk;
use crate::protocol::errors::code;
use crate::types::TopicPartition;

/// A fetch waiting in the purgatory for its connection.
#[derive(Debug, Clone)]
pub(super) struct ParkedFetch {
    request: FetchRequest,
    version: i16,
    correlation_id: i32,
    deadline_ms: i64,
}

/// What a follower's fetch asks of one partition.
#[derive(Debug, Clone, Copy)]
struct ReplicaFetch {
    replica_id: i32,
    current_leader_epoch: i32,
    fetch_offset: i64,
    last_fetched_epoch: i32,
}

/// One pass over a fetch's partitions.
struct FetchPass {
    response: FetchResponse,
    bytes: usize,
    /// A partition answered with an error: Kafka completes the fetch at once.
    any_error: bool,
}

impl Broker {
    pub(super) fn fetch(
        &mut self,
        disk: &mut dyn Disk,
        conn_id: ConnId,
        request: FetchRequest,
        version: i16,
        corr: i32,
        now_ms: i64,
    ) -> Result<Reply, Failure> {
        let pass = self.fetch_pass(disk, &request, now_ms)?;
        let wants_more = pass.bytes < request.min_bytes.max(0) as usize;
        if wants_more && request.max_wait_ms > 0 && !pass.any_error && !request.topics.is_empty() {
            let deadline_ms = now_ms.saturating_add(i64::from(request.max_wait_ms));
            let parked = ParkedFetch {
                request,
                version,
                correlation_id: corr,
                deadline_ms,
            };
            self.parked.insert(conn_id, parked);
            return Ok(Reply::ParkFetch { deadline_ms });
        }
        respond(ApiKey::Fetch, version, corr, &pass.response)
    }

    /// Completes the parked fetches that now have `min_bytes`, or reached their deadline.
    pub fn poll_parked(&mut self, disk: &mut dyn Disk, now_ms: i64) -> Vec<(ConnId, Reply)> {
        let mut done = Vec::new();
        let ids: Vec<ConnId> = self.parked.keys().copied().collect();
        for conn_id in ids {
            if self.offline.is_some() {
                break;
            }
            // Out of the map while it is evaluated (no copy of the request); put back if it keeps waiting.
            let Some(parked) = self.parked.remove(&conn_id) else {
                continue;
            };
            let waiting = now_ms < parked.deadline_ms && parked.request.min_bytes > 0;
            if waiting && self.parked_fetch_idle(&parked.request, now_ms) {
                self.parked.insert(conn_id, parked);
                continue;
            }
            let outcome = self.fetch_pass(disk, &parked.request, now_ms).and_then(|pass| {
                let enough = pass.bytes >= parked.request.min_bytes.max(0) as usize;
                if enough || pass.any_error || now_ms >= parked.deadline_ms {
                    respond(ApiKey::Fetch, parked.version, parked.correlation_id, &pass.response).map(Some)
                } else {
                    Ok(None)
                }
            });
            match outcome {
                Ok(None) => {
                    self.parked.insert(conn_id, parked);
                }
                Ok(Some(reply)) => done.push((conn_id, reply)),
                Err(failure) => done.push((conn_id, self.settle(Err(failure)))),
            }
        }
        if self.offline.is_none() {
            for (conn_id, outcome) in self.poll_acks(now_ms) {
                done.push((conn_id, self.settle(outcome)));
            }
        }
        if self.offline.is_none() {
            if let Err(failure) = self.tick_groups(disk, now_ms) {
                self.settle(Err(failure));
            }
            done.extend(self.take_group_answers());
        }
        done
    }

    /// The earliest deadline among parked fetches and produces, the group coordinator's timers and its
    /// appends waiting for the ISR.
    pub fn next_parked_deadline(&self) -> Option<i64> {
        let fetches = self.parked.values().map(|p| p.deadline_ms).min();
        [fetches, self.acks.next_deadline(), self.next_group_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Forgets a parked fetch or produce (its connection closed).
    pub fn cancel_parked(&mut self, conn_id: ConnId) {
        self.parked.remove(&conn_id);
        self.acks.cancel(conn_id);
        self.cancel_group_requests(conn_id);
    }

    pub fn parked_count(&self) -> usize {
        self.parked.len() + self.acks.len()
    }

    /// Kafka's `DelayedFetch.tryComplete` checks offsets, not data: whether a full pass over a parked fetch
    /// would surely find no bytes and no error — every partition still led, in range, without divergence,
    /// and fetched at its end (the log end for a follower, the high watermark for a consumer). A follower
    /// fetching at the log end has its fetch state updated as a full pass would (the pass repeats it
    /// idempotently). Any doubt answers `false`, and the caller runs the full pass.
    fn parked_fetch_idle(&mut self, req: &FetchRequest, now_ms: i64) -> bool {
        let replica_id = req.replica_id.0;
        for t in &req.topics {
            for p in &t.partitions {
                let tp = TopicPartition::new(t.topic.0.to_string(), p.partition);
                if self.led_partition(&tp, p.current_leader_epoch).is_err() {
                    return false;
                }
                let Some(log) = self.logs.get(&tp) else { return false };
                let (log_start, leo) = (log.log_start_offset(), log.log_end_offset());
                if p.fetch_offset < log_start {
                    return false;
                }
                if replica_id < 0 {
                    if p.fetch_offset != self.high_watermark(&tp) || p.fetch_offset > leo {
                        return false;
                    }
                    continue;
                }
                let leader_end = log.end_offset_for_epoch(p.last_fetched_epoch);
                let divergence = crate::replication::diverging_epoch(p.last_fetched_epoch, p.fetch_offset, leader_end);
                if p.fetch_offset != leo || divergence.is_some() {
                    return false;
                }
                let Some(l) = self.leader_state_mut(&tp) else {
                    return false;
                };
                if l.update_follower_fetch(replica_id, p.fetch_offset, now_ms).is_none() {
                    return false;
                }
            }
        }
        true
    }

    fn fetch_pass(&mut self, disk: &mut dyn Disk, req: &FetchRequest, now_ms: i64) -> Result<FetchPass, Failure> {
        let replica_id = req.replica_id.0;
        let mut remaining = req.max_bytes.max(0) as usize;
        let mut bytes = 0usize;
        let mut any_error = false;
        let mut responses = Vec::new();
        for t in &req.topics {
            let mut partitions = Vec::new();
            for p in &t.partitions {
                let tp = TopicPartition::new(t.topic.0.to_string(), p.partition);
                let limit = remaining.min(p.partition_max_bytes.max(0) as usize);
                // KIP-74: the first batch of the first partition with data comes back even above the limits.
                let data = if replica_id >= 0 {
                    let at = ReplicaFetch {
                        replica_id,
                        current_leader_epoch: p.current_leader_epoch,
                        fetch_offset: p.fetch_offset,
                        last_fetched_epoch: p.last_fetched_epoch,
                    };
                    self.replica_fetch_partition(disk, &tp, at, limit, bytes == 0, now_ms)?
                } else {
                    self.fetch_partition(disk, &tp, p.current_leader_epoch, p.fetch_offset, limit, bytes == 0)?
                };
                // A divergence answers at once, as an error does.
                any_error |= data.error_code != code::NONE || data.diverging_epoch.epoch >= 0;
                let n = data.records.as_ref().map_or(0, |r| r.len());
                bytes += n;
                remaining = remaining.saturating_sub(n);
                partitions.push(data);
            }
            responses.push(
                FetchableTopicResponse::default()
                    .with_topic(t.topic.clone())
                    .with_partitions(partitions),
            );
        }
        let response = FetchResponse::default().with_session_id(0).with_responses(responses);
        Ok(FetchPass {
            response,
            bytes,
            any_error,
        })
    }

    /// A follower's fetch (Kafka's `Partition.fetchRecords` from a follower): leader epoch checks, the
    /// divergence check on `last_fetched_epoch` (then no records and no state update), else the follower's
    /// state is updated with its fetch offset and records are read up to the log end.
    fn replica_fetch_partition(
        &mut self,
        disk: &mut dyn Disk,
        tp: &TopicPartition,
        at: ReplicaFetch,
        max_bytes: usize,
        min_one_batch: bool,
        now_ms: i64,
    ) -> Result<PartitionData, Failure> {
        let data = PartitionData::default()
            .with_partition_index(tp.partition)
            .with_preferred_read_replica(WireBrokerId(-1))
            .with_aborted_transactions(Some(Vec::new()));
        let refused = |error| {
            Ok(data
                .clone()
                .with_error_code(error)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1))
        };
        if let Err(error) = self.led_partition(tp, at.current_leader_epoch) {
            return refused(error);
        }
        let Some(log) = self.logs.get_mut(tp) else {
            return refused(code::UNKNOWN_TOPIC_OR_PARTITION);
        };
        let (log_start, leo) = (log.log_start_offset(), log.log_end_offset());
        // Kafka's `Partition.fetchRecords` checks the follower's last fetched epoch before it reads: a
        // follower whose log runs past the leader's end (an unreplicated tail from an older epoch) learns
        // where to truncate from `diverging_epoch`, not OFFSET_OUT_OF_RANGE, which would leave it stuck.
        let leader_end = log.end_offset_for_epoch(at.last_fetched_epoch);
        let divergence = crate::replication::diverging_epoch(at.last_fetched_epoch, at.fetch_offset, leader_end);
        if at.fetch_offset < log_start || (at.fetch_offset > leo && divergence.is_none()) {
            return Ok(data
                .with_error_code(code::OFFSET_OUT_OF_RANGE)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(log_start));
        }
        let read = match divergence {
            Some(_) => None,
            None => Some(log.read(disk, at.fetch_offset, max_bytes, None, min_one_batch)),
        };
        if divergence.is_none() {
            let Some(l) = self.leader_state_mut(tp) else {
                return refused(code::NOT_LEADER_OR_FOLLOWER);
            };
            if l.update_follower_fetch(at.replica_id, at.fetch_offset, now_ms)
                .is_none()
            {
                return refused(code::NOT_LEADER_OR_FOLLOWER);
            }
        }
        let high_watermark = self.high_watermark(tp);
        let data = data
            .with_high_watermark(high_watermark)
            .with_last_stable_offset(high_watermark)
            .with_log_start_offset(log_start);
        match (divergence, read) {
            (Some(d), _) => {
                let epoch = kafka_protocol::messages::fetch_response::EpochEndOffset::default()
                    .with_epoch(d.leader_epoch)
                    .with_end_offset(d.end_offset);
                Ok(data.with_diverging_epoch(epoch).with_records(Some(Bytes::new())))
            }
            (None, Some(Ok(read))) => Ok(data.with_records(Some(Bytes::from(read.records)))),
            (None, Some(Err(e))) => Ok(data.with_error_code(partition_error(&e)?)),
            (None, None) => Ok(data.with_records(Some(Bytes::new()))),
        }
    }

    fn fetch_partition(
        &mut self,
        disk: &mut dyn Disk,
        tp: &TopicPartition,
        current_leader_epoch: i32,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<PartitionData, Failure> {
        let data = PartitionData::default()
            .with_partition_index(tp.partition)
            .with_preferred_read_replica(WireBrokerId(-1))
            .with_aborted_transactions(Some(Vec::new()));
        if let Err(error) = self.led_partition(tp, current_leader_epoch) {
            return Ok(data
                .with_error_code(error)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1));
        }
        let high_watermark = self.high_watermark(tp);
        let Some(log) = self.logs.get_mut(tp) else {
            return Ok(data.with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION));
        };
        let data = data
            .with_high_watermark(high_watermark)
            .with_last_stable_offset(high_watermark)
            .with_log_start_offset(log.log_start_offset());
        if fetch_offset > high_watermark && fetch_offset <= log.log_end_offset() {
            return Ok(data.with_records(Some(Bytes::new())));
        }
        match log.read(disk, fetch_offset, max_bytes, Some(high_watermark), min_one_batch) {
            Ok(read) => Ok(data.with_records(Some(Bytes::from(read.records)))),
            Err(e) => Ok(data.with_error_code(partition_error(&e)?)),
        }
    }
}
