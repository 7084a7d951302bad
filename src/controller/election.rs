//! Leader election and ISR changes for one partition (Kafka's `PartitionChangeBuilder`), and the scratch
//! state a handler builds its records on, so that later records of one result see the earlier ones.

use uuid::Uuid;

use super::records::Record;
use super::state::{ControllerState, PartitionRegistration};
use crate::metadata::NO_LEADER;
use crate::types::BrokerId;

/// The records of one result, each replayed on a scratch copy of the state as it is pushed.
pub(crate) struct RecordBuilder {
    pub scratch: ControllerState,
    pub records: Vec<Record>,
    /// The controller's `unclean.leader.election.enable`, for topics that do not set it.
    pub unclean_default: bool,
}

impl RecordBuilder {
    pub fn new(state: &ControllerState, unclean_default: bool) -> Self {
        RecordBuilder {
            scratch: state.clone(),
            records: Vec::new(),
            unclean_default,
        }
    }

    pub fn push(&mut self, record: Record) {
        let offset = self.scratch.last_offset + 1;
        if let Err(e) = self.scratch.replay(offset, &record) {
            panic!("the controller built a record its own state refuses: {record:?}: {e}");
        }
        self.records.push(record);
    }

    /// Elects leaders (and sets ISRs) for the given partitions, removing `remove` from their ISRs where
    /// another member remains. An ISR is never emptied: the last member stays and the partition goes
    /// leaderless instead (Kafka's `generateLeaderAndIsrUpdates`).
    pub fn change_partitions(&mut self, partitions: Vec<(Uuid, i32)>, remove: Option<BrokerId>) {
        for (topic_id, partition) in partitions {
            let Some(part) = self.scratch.partition(topic_id, partition) else {
                continue;
            };
            let target_isr = part.isr.iter().copied().filter(|b| Some(*b) != remove).collect();
            let unclean_allowed = unclean_election_enabled(&self.scratch, topic_id, self.unclean_default);
            if let Some(record) = partition_change(&self.scratch, topic_id, partition, target_isr, unclean_allowed) {
                self.push(record);
            }
        }
    }
}

/// Whether `unclean.leader.election.enable` holds for the topic: its own config, else `default`.
pub(crate) fn unclean_election_enabled(state: &ControllerState, topic_id: Uuid, default: bool) -> bool {
    let Some(topic) = state.topics.get(&topic_id) else {
        return default;
    };
    match state.topic_config(&topic.name, super::UNCLEAN_LEADER_ELECTION_ENABLE) {
        Some(v) => v.eq_ignore_ascii_case("true"),
        None => default,
    }
}

/// The record that moves `part` to `target_isr` with a leader among its active members, or None when nothing
/// changes. Leader choice, as Kafka's `electLeader`: the current leader if still in the target ISR and
/// active; else the first replica (in replica order) that is; else, with `unclean_allowed`, the first active
/// replica, with the ISR reset to it alone (an unclean election: data may be lost); else no leader.
pub(crate) fn partition_change(
    state: &ControllerState,
    topic_id: Uuid,
    partition: i32,
    target_isr: Vec<BrokerId>,
    unclean_allowed: bool,
) -> Option<Record> {
    let part = state.partition(topic_id, partition)?;
    let isr = if target_isr.is_empty() {
        part.isr.clone()
    } else {
        target_isr
    };
    let (leader, unclean) = elect_leader(state, part, &isr, unclean_allowed);
    let isr = if unclean { vec![leader] } else { isr };
    let new_isr = (isr != part.isr).then_some(isr);
    let new_leader = (leader != part.leader).then_some(leader);
    if new_isr.is_none() && new_leader.is_none() {
        return None;
    }
    Some(Record::PartitionChange {
        topic_id,
        partition,
        isr: new_isr,
        leader: new_leader,
        unclean,
    })
}

fn elect_leader(
    state: &ControllerState,
    part: &PartitionRegistration,
    isr: &[BrokerId],
    unclean_allowed: bool,
) -> (BrokerId, bool) {
    let eligible = |b: &BrokerId| isr.contains(b) && state.is_active(*b);
    if part.leader != NO_LEADER && eligible(&part.leader) {
        return (part.leader, false);
    }
    if let Some(b) = part.replicas.iter().find(|b| eligible(b)) {
        return (*b, false);
    }
    if unclean_allowed {
        if let Some(b) = part.replicas.iter().find(|b| state.is_active(**b)) {
            return (*b, true);
        }
    }
    (NO_LEADER, false)
}

/// Partitions whose ISR holds `broker` (or that it leads), in order.
pub(crate) fn partitions_with_broker_in_isr(state: &ControllerState, broker: BrokerId) -> Vec<(Uuid, i32)> {
    state
        .partitions()
        .filter(|(_, _, p)| p.isr.contains(&broker) || p.leader == broker)
        .map(|(t, p, _)| (t, p))
        .collect()
}

/// Partitions without a leader, in order.
pub(crate) fn partitions_without_leader(state: &ControllerState) -> Vec<(Uuid, i32)> {
    state
        .partitions()
        .filter(|(_, _, p)| p.leader == NO_LEADER)
        .map(|(t, p, _)| (t, p))
        .collect()
}
