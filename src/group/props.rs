//! Property tests of the assignors and the coordinator (explicit case counts; seconds in release).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::assignor::{Assignor, GroupAssignment, MemberSubscription};
use super::coordinator::*;
use super::coordinator_tests::Harness;
use super::partition_for;
use crate::types::TopicPartition;

fn all_partitions(ppt: &BTreeMap<String, i32>, topics: &BTreeSet<String>) -> BTreeSet<TopicPartition> {
    topics
        .iter()
        .flat_map(|t| (0..ppt.get(t).copied().unwrap_or(0)).map(move |p| TopicPartition::new(t.clone(), p)))
        .collect()
}

/// Every subscribed partition owned by exactly one member, and only by a subscriber of its topic.
fn assert_exactly_one_owner(
    ppt: &BTreeMap<String, i32>,
    members: &BTreeMap<String, MemberSubscription>,
    a: &GroupAssignment,
) {
    let mut seen = BTreeSet::new();
    for (m, parts) in a {
        for tp in parts {
            assert!(
                members[m].topics.contains(&tp.topic),
                "{m} got {tp} without subscribing"
            );
            assert!(seen.insert(tp.clone()), "{tp} assigned twice: {a:?}");
        }
    }
    let subscribed: BTreeSet<String> = members.values().flat_map(|s| s.topics.clone()).collect();
    assert_eq!(
        seen,
        all_partitions(ppt, &subscribed),
        "every subscribed partition assigned"
    );
}

fn topics_strategy() -> impl Strategy<Value = BTreeMap<String, i32>> {
    proptest::collection::vec(0..9i32, 1..4).prop_map(|counts| {
        counts
            .into_iter()
            .enumerate()
            .map(|(i, n)| (format!("t{i}"), n))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn eager_assignors_give_every_partition_exactly_one_owner(
        ppt in topics_strategy(),
        subs in proptest::collection::vec(proptest::collection::btree_set(0..3usize, 1..4), 1..6),
    ) {
        let members: BTreeMap<String, MemberSubscription> = subs
            .iter()
            .enumerate()
            .map(|(i, ts)| {
                let topics = ts.iter().map(|t| format!("t{t}")).filter(|t| ppt.contains_key(t)).collect();
                (format!("m{i}"), MemberSubscription { topics, owned_partitions: vec![], generation_id: -1 })
            })
            .collect();
        for assignor in [Assignor::Range, Assignor::RoundRobin, Assignor::CooperativeSticky] {
            let a = assignor.assign(&ppt, &members);
            assert_exactly_one_owner(&ppt, &members, &a);
        }
    }

    /// Same subscriptions: the two rebalances of a membership change never hand a partition to a member
    /// while another holds it, revoke exactly what balance needs, and end with one owner per partition.
    #[test]
    fn cooperative_sticky_moves_only_what_balance_needs_and_never_doubles_an_owner(
        partitions in 1..20i32,
        previous in 1..5usize,
        owner_of in proptest::collection::vec(0..6usize, 20),
        leaving in proptest::collection::btree_set(0..5usize, 0..3),
        joining in 0..3usize,
    ) {
        let ppt = BTreeMap::from([("t".to_string(), partitions)]);
        let topics = BTreeSet::from(["t".to_string()]);
        // The previous generation: members m0..m{previous}, each partition owned by one or by nobody.
        let mut owned: BTreeMap<String, Vec<TopicPartition>> = (0..previous).map(|i| (format!("m{i}"), vec![])).collect();
        for p in 0..partitions {
            let o = owner_of[p as usize];
            if o < previous {
                owned.get_mut(&format!("m{o}")).expect("member").push(TopicPartition::new("t", p));
            }
        }
        let mut members: BTreeMap<String, MemberSubscription> = BTreeMap::new();
        for (m, parts) in &owned {
            let i: usize = m[1..].parse().expect("index");
            if !leaving.contains(&i) {
                members.insert(m.clone(), MemberSubscription { topics: topics.clone(), owned_partitions: parts.clone(), generation_id: 1 });
            }
        }
        for j in 0..joining {
            members.insert(format!("n{j}"), MemberSubscription { topics: topics.clone(), owned_partitions: vec![], generation_id: -1 });
        }
        prop_assume!(!members.is_empty());
        let n = members.len();
        let (min_quota, max_quota) = (partitions as usize / n, (partitions as usize).div_ceil(n));
        let expected_at_max = partitions as usize % n;

        let a1 = Assignor::CooperativeSticky.assign(&ppt, &members);
        // Gains only partitions nobody else holds now; revokes only what the quotas force.
        let holders: BTreeMap<&TopicPartition, &String> =
            members.iter().flat_map(|(m, s)| s.owned_partitions.iter().map(move |tp| (tp, m))).collect();
        let mut revoked = 0;
        for (m, parts) in &a1 {
            for tp in parts {
                assert!(holders.get(tp).is_none_or(|h| *h == m), "{tp} given to {m} while {:?} holds it", holders.get(tp));
            }
            revoked += members[m].owned_partitions.iter().filter(|tp| !parts.contains(tp)).count();
        }
        let mut over: Vec<usize> = members.values().map(|s| s.owned_partitions.len()).filter(|&c| c > min_quota).collect();
        over.sort_unstable_by(|a, b| b.cmp(a));
        let needed: usize = over
            .iter()
            .enumerate()
            .map(|(i, &c)| c - if i < expected_at_max { max_quota } else { min_quota })
            .sum();
        prop_assert_eq!(revoked, needed, "revoked exactly what balance needs");

        // The follow-up rebalance: members own what they kept.
        let members2: BTreeMap<String, MemberSubscription> = a1
            .iter()
            .map(|(m, parts)| (m.clone(), MemberSubscription { topics: topics.clone(), owned_partitions: parts.clone(), generation_id: 2 }))
            .collect();
        let a2 = Assignor::CooperativeSticky.assign(&ppt, &members2);
        for (m, parts) in &a2 {
            assert!(a1[m].iter().all(|tp| parts.contains(tp)), "{m} revoked again in the second rebalance");
        }
        assert_exactly_one_owner(&ppt, &members2, &a2);
        let counts: BTreeSet<usize> = a2.values().map(Vec::len).collect();
        assert!(counts.iter().all(|&c| c == min_quota || c == max_quota), "balanced: {counts:?}");
    }

    /// Different subscriptions: every round hands out only partitions nobody else holds, and within a few
    /// rounds every partition has exactly one owner.
    #[test]
    fn cooperative_sticky_with_different_subscriptions_converges_without_double_owners(
        ppt in topics_strategy(),
        subs in proptest::collection::vec(proptest::collection::btree_set(0..3usize, 1..4), 1..5),
        seed_owner in proptest::collection::vec(0..5usize, 30),
    ) {
        let mut members: BTreeMap<String, MemberSubscription> = subs
            .iter()
            .enumerate()
            .map(|(i, ts)| {
                let topics = ts.iter().map(|t| format!("t{t}")).filter(|t| ppt.contains_key(t)).collect();
                (format!("m{i}"), MemberSubscription { topics, owned_partitions: vec![], generation_id: 1 })
            })
            .collect();
        // A consistent starting point: each partition held by at most one subscriber.
        let all: Vec<TopicPartition> = all_partitions(&ppt, &members.values().flat_map(|s| s.topics.clone()).collect()).into_iter().collect();
        for (k, tp) in all.iter().enumerate() {
            let m = format!("m{}", seed_owner[k % seed_owner.len()]);
            if let Some(s) = members.get_mut(&m).filter(|s| s.topics.contains(&tp.topic)) {
                s.owned_partitions.push(tp.clone());
            }
        }
        let mut settled = false;
        for round in 0..6 {
            let a = Assignor::CooperativeSticky.assign(&ppt, &members);
            let holders: BTreeMap<&TopicPartition, &String> =
                members.iter().flat_map(|(m, s)| s.owned_partitions.iter().map(move |tp| (tp, m))).collect();
            for (m, parts) in &a {
                for tp in parts {
                    assert!(holders.get(tp).is_none_or(|h| *h == m), "round {round}: {tp} to {m} while held");
                }
            }
            let total: usize = a.values().map(Vec::len).sum();
            if total == all.len() {
                assert_exactly_one_owner(&ppt, &members, &a);
                settled = true;
                break;
            }
            for (m, parts) in a {
                let s = members.get_mut(&m).expect("member");
                s.owned_partitions = parts;
                s.generation_id = round + 2;
            }
        }
        prop_assert!(settled, "not settled in 6 rebalances");
    }
}

#[derive(Clone, Debug)]
enum Op {
    Join(usize),
    Sync(usize),
    Heartbeat(usize),
    Leave(usize),
    Commit(usize, i64),
    SimpleCommit(i64),
    Advance(i64),
    FailNextAppend,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..4usize).prop_map(Op::Join),
        3 => (0..4usize).prop_map(Op::Sync),
        2 => (0..4usize).prop_map(Op::Heartbeat),
        1 => (0..4usize).prop_map(Op::Leave),
        3 => (0..4usize, 0..100i64).prop_map(|(m, o)| Op::Commit(m, o)),
        1 => (0..100i64).prop_map(Op::SimpleCommit),
        2 => prop_oneof![Just(500i64), Just(3_000), Just(11_000), Just(31_000)].prop_map(Op::Advance),
        1 => Just(Op::FailNextAppend),
    ]
}

/// A client's view of its membership, from the answers it got.
#[derive(Clone, Debug, Default)]
struct Client {
    member_id: String,
    generation_id: i32,
    join_members: Vec<String>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn coordinator_generations_only_grow_stale_commits_fail_and_a_loaded_coordinator_matches(
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let mut h = Harness::new(99);
        let mut clients = vec![Client { generation_id: -1, ..Client::default() }; 4];
        let mut generation_max = 0;
        let mut fail_next = false;
        for op in ops {
            let coordinator_generation = h.c.view("group-1").map_or(0, |v| v.generation_id);
            match op {
                Op::Join(i) => {
                    let id = h.join(&clients[i].member_id.clone(), &[("range", &[i as u8])]);
                    h.drain();
                    let _ = id;
                }
                Op::Sync(i) if clients[i].generation_id >= 0 => {
                    let assignments: Vec<(String, Vec<u8>)> = clients[i].join_members.iter().map(|m| (m.clone(), m.as_bytes()[..2].to_vec())).collect();
                    let refs: Vec<(&str, &[u8])> = assignments.iter().map(|(m, a)| (m.as_str(), a.as_slice())).collect();
                    h.sync(&clients[i].member_id.clone(), clients[i].generation_id, &refs);
                }
                Op::Sync(_) => {}
                Op::Heartbeat(i) => {
                    let code = h.heartbeat(&clients[i].member_id.clone(), clients[i].generation_id);
                    if code == err::NONE {
                        prop_assert_eq!(clients[i].generation_id, coordinator_generation);
                    }
                }
                Op::Leave(i) => {
                    let id = h.next_request + 1000;
                    h.c.leave_group(id, "group-1", &[clients[i].member_id.clone()], h.now_ms);
                }
                Op::Commit(i, offset) => {
                    let in_group = h.c.view("group-1").is_some_and(|v| v.members.contains_key(&clients[i].member_id));
                    // Kafka lets a generation -1 commit create a group that does not exist, whatever the member id.
                    let simple = clients[i].generation_id < 0;
                    let state = h.c.group_state("group-1");
                    h.hold_appends = fail_next;
                    let log_len = h.log.len();
                    let id = h.commit(&clients[i].member_id.clone(), clients[i].generation_id, offset);
                    h.drain();
                    if fail_next {
                        for w in std::mem::take(&mut h.held) {
                            h.c.on_append(w, err::NOT_ENOUGH_REPLICAS, h.now_ms);
                        }
                        // The failed write never reached the log.
                        h.log.truncate(log_len);
                        h.hold_appends = false;
                        fail_next = false;
                    }
                    if let Some(codes) = h.commit_codes(id) {
                        if codes.contains(&err::NONE) && simple {
                            prop_assert!(matches!(state, None | Some(GroupState::Empty)), "simple commit into {state:?}");
                        } else if codes.contains(&err::NONE) {
                            prop_assert!(in_group, "a commit from a non-member landed");
                            prop_assert_eq!(clients[i].generation_id, coordinator_generation, "a stale generation's commit landed");
                        }
                    }
                }
                Op::SimpleCommit(offset) => {
                    let state = h.c.group_state("group-1");
                    let id = h.commit("", -1, offset);
                    if h.commit_codes(id).is_some_and(|c| c.contains(&err::NONE)) {
                        prop_assert!(matches!(state, None | Some(GroupState::Empty)), "simple commit into {state:?}");
                    }
                }
                Op::Advance(ms) => h.advance(ms),
                Op::FailNextAppend => fail_next = true,
            }
            // Update clients from every new answer.
            h.drain();
            for (_, r) in std::mem::take(&mut h.responses) {
                if let Response::JoinGroup(j) = r {
                    let c = clients.iter_mut().find(|c| c.member_id == j.member_id || c.member_id.is_empty());
                    if let Some(c) = c {
                        if j.error_code == err::MEMBER_ID_REQUIRED || j.error_code == err::NONE {
                            c.member_id = j.member_id.clone();
                        }
                        if j.error_code == err::NONE {
                            c.generation_id = j.generation_id;
                            c.join_members = j.members.iter().map(|m| m.member_id.clone()).collect();
                        }
                    }
                }
            }
            let g = h.c.view("group-1").map_or(0, |v| v.generation_id);
            prop_assert!(g >= generation_max, "generation went from {generation_max} to {g}");
            generation_max = g;
        }
        // Failover: a coordinator that loads the log sees what the live one made durable.
        if let Some(view) = h.c.view("group-1") {
            let mut successor = GroupCoordinator::new(h.c.config().clone());
            successor.load_partition(partition_for("group-1", 4), &h.log, h.now_ms);
            let loaded = successor.view("group-1");
            let loaded_offsets = loaded.as_ref().map(|v| v.offsets.clone()).unwrap_or_default();
            prop_assert_eq!(&loaded_offsets, &view.offsets, "committed offsets survive failover");
            // A group that never completed a join phase has no metadata record (only pending members).
            if matches!(view.state, GroupState::Stable | GroupState::Empty) && view.generation_id > 0 {
                prop_assert_eq!(loaded, Some(view));
            }
        }
    }
}
