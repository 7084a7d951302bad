//! `CooperativeStickyAssignor` (KIP-429) over Kafka's `AbstractStickyAssignor`: members keep the partitions
//! they own as far as balance allows, and a partition that moves to a new owner is withheld for one
//! rebalance (`CooperativeStickyAssignor.adjustAssignment`) so its old owner revokes it first.
//!
//! When all members subscribe to the same topics this is Kafka's `constrainedAssign` step by step. When
//! subscriptions differ, Kafka's `generalAssign` searches for a balanced reassignment; ours is simpler:
//! keep owned partitions, give each unassigned one (most constrained first) to its least-loaded eligible
//! member, then move partitions one at a time from a member to an eligible one with at least two fewer.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::assignor::{GroupAssignment, MemberSubscription};
use crate::types::TopicPartition;

pub(super) fn cooperative_sticky(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &BTreeMap<String, MemberSubscription>,
) -> GroupAssignment {
    if members.is_empty() {
        return GroupAssignment::new();
    }
    let owned = valid_owned_partitions(partitions_per_topic, members);
    let first = members.values().next().map(|s| &s.topics);
    let mut assignment = if members.values().all(|s| Some(&s.topics) == first) {
        constrained_assign(partitions_per_topic, members, &owned)
    } else {
        general_assign(partitions_per_topic, members, &owned)
    };
    adjust_assignment(members, &mut assignment);
    assignment
}

/// Every partition of the topics `topics` that exists, sorted.
fn partitions_of<'a>(
    partitions_per_topic: &BTreeMap<String, i32>,
    topics: impl IntoIterator<Item = &'a String>,
) -> Vec<TopicPartition> {
    let topics: BTreeSet<&String> = topics.into_iter().collect();
    let mut out = vec![];
    for topic in topics {
        let count = partitions_per_topic.get(topic).copied().unwrap_or(0);
        out.extend((0..count).map(|p| TopicPartition::new(topic.clone(), p)));
    }
    out
}

/// Owned partitions the assignor trusts: claims of the members of the highest generation only, for
/// partitions that exist and that the member still subscribes to; a partition two such members claim is
/// trusted to neither (`partitionsWithMultiplePreviousOwners`).
fn valid_owned_partitions(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &BTreeMap<String, MemberSubscription>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let max_generation = members.values().map(|s| s.generation_id).max().unwrap_or(-1);
    let mut claims: BTreeMap<&TopicPartition, Vec<&String>> = BTreeMap::new();
    for (m, s) in members.iter().filter(|(_, s)| s.generation_id == max_generation) {
        for tp in &s.owned_partitions {
            let exists = partitions_per_topic
                .get(&tp.topic)
                .is_some_and(|&n| (0..n).contains(&tp.partition));
            if exists && s.topics.contains(&tp.topic) {
                claims.entry(tp).or_default().push(m);
            }
        }
    }
    let mut owned: BTreeMap<String, Vec<TopicPartition>> = members.keys().map(|m| (m.clone(), vec![])).collect();
    for (tp, claimants) in claims {
        if let [only] = claimants.as_slice() {
            owned.get_mut(*only).expect("member listed").push(tp.clone());
        }
    }
    owned
}

/// `AbstractStickyAssignor.constrainedAssign`: quotas `min = P / N`, `max = ceil(P / N)`, at most `P % N`
/// members at `max`; owners keep up to their quota (members in id order), then unassigned partitions fill the
/// members under `min` round-robin, then members at `min` up to `max`.
fn constrained_assign(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &BTreeMap<String, MemberSubscription>,
    owned: &BTreeMap<String, Vec<TopicPartition>>,
) -> GroupAssignment {
    let topics = &members.values().next().expect("members not empty").topics;
    let all = partitions_of(partitions_per_topic, topics);
    let n = members.len();
    let (min_quota, max_quota) = (all.len() / n, all.len().div_ceil(n));
    let expected_over_min = all.len() % n;
    let mut over_min = 0;
    let mut assignment = GroupAssignment::new();
    let mut under_min = VecDeque::new();
    let mut exactly_min = VecDeque::new();
    for m in members.keys() {
        let own = &owned[m];
        let keep = if own.len() < min_quota {
            under_min.push_back(m.clone());
            own.len()
        } else if own.len() >= max_quota && over_min < expected_over_min {
            over_min += 1;
            max_quota
        } else {
            if min_quota != max_quota {
                exactly_min.push_back(m.clone());
            }
            min_quota
        };
        assignment.insert(m.clone(), own[..keep].to_vec());
    }
    if over_min == expected_over_min {
        exactly_min.clear();
    }
    let assigned: BTreeSet<&TopicPartition> = assignment.values().flatten().collect();
    let unassigned: Vec<TopicPartition> = all.iter().filter(|tp| !assigned.contains(tp)).cloned().collect();
    for tp in unassigned {
        if let Some(m) = under_min.pop_front() {
            let parts = assignment.get_mut(&m).expect("member listed");
            parts.push(tp);
            if parts.len() < min_quota {
                under_min.push_back(m);
            } else if min_quota != max_quota {
                exactly_min.push_back(m);
            }
        } else if over_min < expected_over_min {
            let m = exactly_min
                .pop_front()
                .expect("a member at min quota is left while some may reach max");
            assignment.get_mut(&m).expect("member listed").push(tp);
            over_min += 1;
        } else {
            panic!("partition {tp} left over: min_quota={min_quota} max_quota={max_quota} members={n}");
        }
    }
    assignment
}

/// Subscriptions differ: keep owned partitions, place unassigned ones, then even the load out.
fn general_assign(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &BTreeMap<String, MemberSubscription>,
    owned: &BTreeMap<String, Vec<TopicPartition>>,
) -> GroupAssignment {
    let mut assignment: GroupAssignment = owned.clone();
    let eligible = |tp: &TopicPartition| -> Vec<&String> {
        members
            .iter()
            .filter(|(_, s)| s.topics.contains(&tp.topic))
            .map(|(m, _)| m)
            .collect()
    };
    let assigned: BTreeSet<TopicPartition> = assignment.values().flatten().cloned().collect();
    let mut unassigned: Vec<TopicPartition> =
        partitions_of(partitions_per_topic, members.values().flat_map(|s| &s.topics))
            .into_iter()
            .filter(|tp| !assigned.contains(tp))
            .collect();
    // The most constrained partitions first, as Kafka's `sortPartitions` does.
    unassigned.sort_by_key(|tp| (eligible(tp).len(), tp.clone()));
    for tp in unassigned {
        let Some(m) = eligible(&tp).into_iter().min_by_key(|m| (assignment[*m].len(), *m)) else {
            continue;
        };
        assignment.get_mut(m).expect("member listed").push(tp);
    }
    while let Some((from, index, to)) = one_balancing_move(members, &assignment) {
        let tp = assignment.get_mut(&from).expect("member listed").remove(index);
        assignment.get_mut(&to).expect("member listed").push(tp);
    }
    assignment
}

/// A partition of a most-loaded member that an eligible member with at least two fewer can take.
fn one_balancing_move(
    members: &BTreeMap<String, MemberSubscription>,
    assignment: &GroupAssignment,
) -> Option<(String, usize, String)> {
    let mut by_load: Vec<(&String, usize)> = assignment.iter().map(|(m, p)| (m, p.len())).collect();
    by_load.sort_by_key(|(m, n)| (std::cmp::Reverse(*n), *m));
    for (from, from_len) in &by_load {
        for (index, tp) in assignment[*from].iter().enumerate() {
            let to = members
                .iter()
                .filter(|(m, s)| m != from && s.topics.contains(&tp.topic))
                .map(|(m, _)| (assignment[m].len(), m))
                .min();
            if let Some((to_len, to)) = to {
                if to_len + 2 <= *from_len {
                    return Some(((*from).clone(), index, to.clone()));
                }
            }
        }
    }
    None
}

/// `CooperativeStickyAssignor.adjustAssignment`: a partition that some other member claims to own is withheld
/// from its new owner this round. (We withhold on any claim, not only trusted ones, so a partition is never
/// handed out while a member may still hold it.)
fn adjust_assignment(members: &BTreeMap<String, MemberSubscription>, assignment: &mut GroupAssignment) {
    let mut claimed_by: BTreeMap<&TopicPartition, BTreeSet<&String>> = BTreeMap::new();
    for (m, s) in members {
        for tp in &s.owned_partitions {
            claimed_by.entry(tp).or_default().insert(m);
        }
    }
    for (m, parts) in assignment.iter_mut() {
        parts.retain(|tp| claimed_by.get(tp).is_none_or(|owners| owners.iter().all(|o| *o == m)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::Assignor;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn member(topics: &[&str], owned: &[TopicPartition], generation_id: i32) -> MemberSubscription {
        MemberSubscription {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned_partitions: owned.to_vec(),
            generation_id,
        }
    }

    #[test]
    fn cooperative_sticky_keeps_owned_partitions_and_withholds_moving_ones_for_one_round() {
        let ppt = BTreeMap::from([("t".to_string(), 4)]);
        let all: Vec<_> = (0..4).map(|p| tp("t", p)).collect();
        // C1 owned everything; C2 joins: two partitions move, but only after C1 revokes them.
        let m = BTreeMap::from([
            ("C1".to_string(), member(&["t"], &all, 1)),
            ("C2".to_string(), member(&["t"], &[], -1)),
        ]);
        let a1 = Assignor::CooperativeSticky.assign(&ppt, &m);
        assert_eq!(a1["C1"], vec![tp("t", 0), tp("t", 1)]);
        assert_eq!(a1["C2"], Vec::<TopicPartition>::new(), "moving partitions are withheld");
        // The follow-up rebalance, C1 owning only what it kept.
        let m2 = BTreeMap::from([
            ("C1".to_string(), member(&["t"], &a1["C1"], 2)),
            ("C2".to_string(), member(&["t"], &[], 2)),
        ]);
        let a2 = Assignor::CooperativeSticky.assign(&ppt, &m2);
        assert_eq!(a2["C1"], vec![tp("t", 0), tp("t", 1)]);
        assert_eq!(a2["C2"], vec![tp("t", 2), tp("t", 3)]);
    }

    #[test]
    fn cooperative_sticky_trusts_only_the_highest_generation_and_no_double_claims() {
        let ppt = BTreeMap::from([("t".to_string(), 2)]);
        let m = BTreeMap::from([
            ("A".to_string(), member(&["t"], &[tp("t", 0)], 3)),
            ("B".to_string(), member(&["t"], &[tp("t", 0), tp("t", 1)], 2)),
        ]);
        let owned = valid_owned_partitions(&ppt, &m);
        assert_eq!(owned["A"], vec![tp("t", 0)]);
        assert!(owned["B"].is_empty(), "a stale generation's claims are ignored");
        let m = BTreeMap::from([
            ("A".to_string(), member(&["t"], &[tp("t", 0)], 3)),
            ("B".to_string(), member(&["t"], &[tp("t", 0)], 3)),
        ]);
        let owned = valid_owned_partitions(&ppt, &m);
        assert!(
            owned.values().all(Vec::is_empty),
            "a doubly claimed partition is owned by nobody"
        );
    }

    #[test]
    fn cooperative_sticky_balances_members_with_different_subscriptions() {
        let ppt = BTreeMap::from([("a".to_string(), 3), ("b".to_string(), 3)]);
        let m = BTreeMap::from([
            ("C1".to_string(), member(&["a", "b"], &[], -1)),
            ("C2".to_string(), member(&["b"], &[], -1)),
        ]);
        let out = Assignor::CooperativeSticky.assign(&ppt, &m);
        assert_eq!(out["C1"].len(), 3);
        assert_eq!(out["C2"], vec![tp("b", 0), tp("b", 1), tp("b", 2)]);
    }
}
