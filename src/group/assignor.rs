//! The consumer's partition assignors, run by the group leader (Kafka's `ConsumerPartitionAssignor`s):
//! [`Assignor::Range`] (`RangeAssignor`), [`Assignor::RoundRobin`] (`RoundRobinAssignor`) and
//! [`Assignor::CooperativeSticky`] (`CooperativeStickyAssignor`, KIP-429, over `AbstractStickyAssignor`).
//! Members are ordered by member id (we have no static members, so Kafka's `group.instance.id` ordering does
//! not apply) and topics by name, as Kafka does; rack-aware assignment (KIP-881) is not modelled.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::TopicPartition;

/// How members give partitions up on a rebalance (`ConsumerPartitionAssignor.RebalanceProtocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// Revoke everything before joining (range, round-robin).
    Eager,
    /// Keep what stays yours; revoke only what moves, then rejoin (KIP-429).
    Cooperative,
}

/// One member's subscription, as the leader decodes it from JoinGroup metadata
/// (`ConsumerProtocolSubscription`: topics, owned partitions v1+, generation v2+).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberSubscription {
    pub topics: BTreeSet<String>,
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation in which the member owned `owned_partitions` (-1: unknown, KIP-792).
    pub generation_id: i32,
}

/// Per member id, the partitions it is assigned, sorted.
pub type GroupAssignment = BTreeMap<String, Vec<TopicPartition>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Assignor {
    Range,
    RoundRobin,
    CooperativeSticky,
}

impl Assignor {
    /// The protocol name members put in JoinGroup (`partition.assignment.strategy`).
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Assignor::Range, Assignor::RoundRobin, Assignor::CooperativeSticky]
            .into_iter()
            .find(|a| a.name() == name)
    }

    pub fn rebalance_protocol(self) -> RebalanceProtocol {
        match self {
            Assignor::CooperativeSticky => RebalanceProtocol::Cooperative,
            _ => RebalanceProtocol::Eager,
        }
    }

    /// The assignment for every member (members without partitions get an empty list). `partitions_per_topic`
    /// holds the partition count of each topic the leader knows; subscribed topics it does not know get nothing.
    pub fn assign(
        self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> GroupAssignment {
        let mut out = match self {
            Assignor::Range => range(partitions_per_topic, members),
            Assignor::RoundRobin => round_robin(partitions_per_topic, members),
            Assignor::CooperativeSticky => super::sticky::cooperative_sticky(partitions_per_topic, members),
        };
        for parts in out.values_mut() {
            parts.sort();
        }
        out
    }
}

fn empty_assignment(members: &BTreeMap<String, MemberSubscription>) -> GroupAssignment {
    members.keys().map(|m| (m.clone(), vec![])).collect()
}

/// `RangeAssignor`: per topic, the subscribed members in order each take a contiguous range; the first
/// `partitions % members` take one extra.
fn range(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &BTreeMap<String, MemberSubscription>,
) -> GroupAssignment {
    let mut out = empty_assignment(members);
    for (topic, &count) in partitions_per_topic {
        let subscribed: Vec<&String> = members
            .iter()
            .filter(|(_, s)| s.topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if subscribed.is_empty() || count <= 0 {
            continue;
        }
        let n = subscribed.len() as i32;
        let per_member = count / n;
        let with_extra = count % n;
        for (i, member) in subscribed.into_iter().enumerate() {
            let i = i as i32;
            let start = per_member * i + i.min(with_extra);
            let length = per_member + if i + 1 > with_extra { 0 } else { 1 };
            let parts = out.get_mut(member).expect("member listed");
            parts.extend((start..start + length).map(|p| TopicPartition::new(topic.clone(), p)));
        }
    }
    out
}

/// `RoundRobinAssignor`: all subscribed partitions, topics sorted, dealt in turn over the members sorted by
/// id; a member not subscribed to a partition's topic is skipped (its turn passes, Kafka's
/// `CircularIterator`).
fn round_robin(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &BTreeMap<String, MemberSubscription>,
) -> GroupAssignment {
    let mut out = empty_assignment(members);
    let ids: Vec<&String> = members.keys().collect();
    if ids.is_empty() {
        return out;
    }
    let topics: BTreeSet<&String> = members.values().flat_map(|s| &s.topics).collect();
    let mut next = 0usize;
    for topic in topics {
        let count = partitions_per_topic.get(topic).copied().unwrap_or(0);
        for p in 0..count {
            // Some member subscribes to `topic`, so this loop ends within one turn of the circle.
            while !members[ids[next % ids.len()]].topics.contains(topic) {
                next += 1;
            }
            let member = ids[next % ids.len()];
            next += 1;
            out.get_mut(member)
                .expect("member listed")
                .push(TopicPartition::new(topic.clone(), p));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn subs(list: &[(&str, &[&str])]) -> BTreeMap<String, MemberSubscription> {
        list.iter()
            .map(|(m, topics)| {
                let s = MemberSubscription {
                    topics: topics.iter().map(|t| t.to_string()).collect(),
                    owned_partitions: vec![],
                    generation_id: -1,
                };
                (m.to_string(), s)
            })
            .collect()
    }

    fn counts(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn range_gives_the_first_members_one_extra_partition_per_topic() {
        // Kafka's RangeAssignor javadoc: C0, C1 on t0, t1 with 3 partitions each.
        let m = subs(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]);
        let a = Assignor::Range.assign(&counts(&[("t0", 3), ("t1", 3)]), &m);
        assert_eq!(a["C0"], vec![tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]);
        assert_eq!(a["C1"], vec![tp("t0", 2), tp("t1", 2)]);
    }

    #[test]
    fn round_robin_deals_all_partitions_in_member_order() {
        // Kafka's RoundRobinAssignor javadoc example 1.
        let m = subs(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]);
        let a = Assignor::RoundRobin.assign(&counts(&[("t0", 3), ("t1", 3)]), &m);
        assert_eq!(a["C0"], vec![tp("t0", 0), tp("t0", 2), tp("t1", 1)]);
        assert_eq!(a["C1"], vec![tp("t0", 1), tp("t1", 0), tp("t1", 2)]);
    }

    #[test]
    fn round_robin_skips_members_not_subscribed_to_the_topic() {
        // Kafka's RoundRobinAssignor javadoc example 2: C0 [t0], C1 [t0, t1], C2 [t0, t1, t2].
        let m = subs(&[("C0", &["t0"]), ("C1", &["t0", "t1"]), ("C2", &["t0", "t1", "t2"])]);
        let a = Assignor::RoundRobin.assign(&counts(&[("t0", 1), ("t1", 2), ("t2", 3)]), &m);
        assert_eq!(a["C0"], vec![tp("t0", 0)]);
        assert_eq!(a["C1"], vec![tp("t1", 0)]);
        assert_eq!(a["C2"], vec![tp("t1", 1), tp("t2", 0), tp("t2", 1), tp("t2", 2)]);
    }

    #[test]
    fn assignors_name_themselves_as_partition_assignment_strategy_does() {
        for a in [Assignor::Range, Assignor::RoundRobin, Assignor::CooperativeSticky] {
            assert_eq!(Assignor::from_name(a.name()), Some(a));
        }
        assert_eq!(Assignor::from_name("sticky"), None);
        assert_eq!(
            Assignor::CooperativeSticky.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        assert_eq!(Assignor::Range.rebalance_protocol(), RebalanceProtocol::Eager);
    }

    #[test]
    fn unknown_topics_and_no_members_assign_nothing() {
        let m = subs(&[("C0", &["missing"])]);
        for a in [Assignor::Range, Assignor::RoundRobin, Assignor::CooperativeSticky] {
            let out = a.assign(&counts(&[("t0", 2)]), &m);
            assert_eq!(out["C0"], Vec::<TopicPartition>::new(), "{a:?}");
            assert!(a.assign(&counts(&[("t0", 2)]), &BTreeMap::new()).is_empty());
        }
    }
}
