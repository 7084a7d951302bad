//! Transcript-style tests of the coordinator: each error path of Kafka's classic group protocol.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::coordinator::*;
use super::records::GroupRecord;
use super::{partition_for, GroupView};
use crate::types::TopicPartition;

const G: &str = "group-1";

/// A coordinator of every `__consumer_offsets` partition, whose appends land at once unless held.
pub(super) struct Harness {
    pub c: GroupCoordinator,
    pub rng: ChaCha8Rng,
    pub now_ms: i64,
    pub log: Vec<GroupRecord>,
    pub next_request: u64,
    pub hold_appends: bool,
    pub held: Vec<u64>,
    pub responses: Vec<(u64, Response)>,
}

impl Harness {
    pub fn new(seed: u64) -> Self {
        let config = GroupConfig {
            offsets_topic_num_partitions: 4,
            ..GroupConfig::default()
        };
        let partitions: Vec<i32> = (0..config.offsets_topic_num_partitions).collect();
        Self {
            c: GroupCoordinator::load(config, &partitions, &[], 0),
            rng: ChaCha8Rng::seed_from_u64(seed),
            now_ms: 0,
            log: vec![],
            next_request: 0,
            hold_appends: false,
            held: vec![],
            responses: vec![],
        }
    }

    /// Carries out effects until none are left; returns the responses produced.
    pub fn drain(&mut self) -> Vec<(u64, Response)> {
        let mut out = vec![];
        loop {
            let effects = self.c.poll();
            if effects.is_empty() {
                break;
            }
            for e in effects {
                match e {
                    Effect::Respond { request_id, response } => out.push((request_id, response)),
                    Effect::Append {
                        write_id,
                        partition,
                        records,
                    } => {
                        for r in &records {
                            assert_eq!(
                                partition,
                                partition_for(r.group_id(), 4),
                                "record in its group's partition"
                            );
                        }
                        if self.hold_appends {
                            self.held.push(write_id);
                            self.log.extend(records);
                        } else {
                            self.log.extend(records);
                            self.c.on_append(write_id, err::NONE, self.now_ms);
                        }
                    }
                }
            }
        }
        self.responses.extend(out.clone());
        out
    }

    fn request(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    pub fn join(&mut self, member_id: &str, protocols: &[(&str, &[u8])]) -> u64 {
        let id = self.request();
        let req = JoinGroupRequest {
            group_id: G.into(),
            member_id: member_id.into(),
            client_id: "c".into(),
            client_host: "/10.0.0.9".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: protocols.iter().map(|(n, m)| (n.to_string(), m.to_vec())).collect(),
            require_known_member_id: true,
        };
        self.c.join_group(id, req, self.now_ms, &mut self.rng);
        id
    }

    pub fn sync(&mut self, member_id: &str, generation_id: i32, assignments: &[(&str, &[u8])]) -> u64 {
        let id = self.request();
        let req = SyncGroupRequest {
            group_id: G.into(),
            generation_id,
            member_id: member_id.into(),
            protocol_type: Some("consumer".into()),
            protocol_name: None,
            assignments: assignments.iter().map(|(m, a)| (m.to_string(), a.to_vec())).collect(),
        };
        self.c.sync_group(id, req, self.now_ms);
        id
    }

    pub fn commit(&mut self, member_id: &str, generation_id: i32, offset: i64) -> u64 {
        let id = self.request();
        let req = OffsetCommitRequest {
            group_id: G.into(),
            generation_id,
            member_id: member_id.into(),
            offsets: vec![CommitOffset {
                tp: TopicPartition::new("t", 0),
                offset,
                leader_epoch: 0,
                metadata: String::new(),
            }],
        };
        self.c.offset_commit(id, req, self.now_ms);
        id
    }

    pub fn heartbeat(&mut self, member_id: &str, generation_id: i32) -> i16 {
        let id = self.request();
        self.c.heartbeat(id, G, generation_id, member_id, self.now_ms);
        match self.answer(id) {
            Some(Response::Heartbeat { error_code }) => error_code,
            other => panic!("heartbeat answered {other:?}"),
        }
    }

    pub fn advance(&mut self, ms: i64) {
        self.now_ms += ms;
        self.c.tick(self.now_ms);
        self.drain();
    }

    pub fn answer(&mut self, request_id: u64) -> Option<Response> {
        self.drain();
        self.responses
            .iter()
            .find(|(id, _)| *id == request_id)
            .map(|(_, r)| r.clone())
    }

    pub fn join_answer(&mut self, request_id: u64) -> Option<JoinGroupResponse> {
        match self.answer(request_id)? {
            Response::JoinGroup(r) => Some(r),
            other => panic!("join answered {other:?}"),
        }
    }

    pub fn sync_answer(&mut self, request_id: u64) -> Option<SyncGroupResponse> {
        match self.answer(request_id)? {
            Response::SyncGroup(r) => Some(r),
            other => panic!("sync answered {other:?}"),
        }
    }

    pub fn commit_codes(&mut self, request_id: u64) -> Option<Vec<i16>> {
        match self.answer(request_id)? {
            Response::OffsetCommit { partitions } => Some(partitions.into_iter().map(|(_, c)| c).collect()),
            other => panic!("commit answered {other:?}"),
        }
    }

    /// A member id from MEMBER_ID_REQUIRED, then its real join.
    pub fn join_new(&mut self) -> (String, u64) {
        let first = self.join("", &[("range", b"m")]);
        let r = self.join_answer(first).expect("answered at once");
        assert_eq!(r.error_code, err::MEMBER_ID_REQUIRED);
        let id = r.member_id;
        let second = self.join(&id, &[("range", b"m")]);
        (id, second)
    }

    pub fn view(&self) -> GroupView {
        self.c.view(G).expect("group exists")
    }
}

/// One member joins, waits out the initial delay, syncs: generation 1, Stable.
fn stable_group_of_one(h: &mut Harness) -> String {
    let (a, join) = h.join_new();
    assert_eq!(
        h.join_answer(join),
        None,
        "the first join waits group.initial.rebalance.delay.ms"
    );
    h.advance(3_000);
    let r = h.join_answer(join).expect("join phase over");
    assert_eq!(
        (r.error_code, r.generation_id, r.leader.as_str()),
        (err::NONE, 1, a.as_str())
    );
    assert_eq!(r.members.len(), 1, "the leader sees every member");
    let sync = h.sync(&a, 1, &[(&a, b"A")]);
    assert_eq!(h.sync_answer(sync).expect("stored").assignment, b"A".to_vec());
    assert_eq!(h.c.group_state(G), Some(GroupState::Stable));
    a
}

#[test]
fn first_join_without_member_id_gets_member_id_required_and_an_id_kip_394() {
    let mut h = Harness::new(1);
    let id = h.join("", &[("range", b"")]);
    let r = h.join_answer(id).expect("answered");
    assert_eq!(r.error_code, err::MEMBER_ID_REQUIRED);
    assert!(r.member_id.starts_with("c-"), "clientId-UUID: {}", r.member_id);
    assert_eq!(
        h.c.group_state(G),
        Some(GroupState::Empty),
        "a pending member does not start a rebalance"
    );
}

#[test]
fn pending_member_that_never_rejoins_expires_after_its_session_timeout() {
    let mut h = Harness::new(2);
    let id = h.join("", &[("range", b"")]);
    let member = h.join_answer(id).expect("answered").member_id;
    h.advance(10_001);
    let again = h.join(&member, &[("range", b"")]);
    assert_eq!(
        h.join_answer(again).expect("answered").error_code,
        err::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn initial_rebalance_delay_extends_while_new_members_keep_arriving() {
    let mut h = Harness::new(3);
    let (_a, ja) = h.join_new();
    h.advance(2_000);
    let (_b, jb) = h.join_new();
    h.advance(1_000);
    assert_eq!(
        h.join_answer(ja),
        None,
        "b arrived during the delay: it extends by another delay"
    );
    h.advance(3_000);
    let (ra, rb) = (h.join_answer(ja).expect("done"), h.join_answer(jb).expect("done"));
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    assert_eq!(
        ra.members.len() + rb.members.len(),
        2,
        "only the leader gets the member list"
    );
}

#[test]
fn join_with_a_session_timeout_outside_the_brokers_bounds_is_invalid_session_timeout() {
    let mut h = Harness::new(4);
    let id = h.request();
    let req = JoinGroupRequest {
        group_id: G.into(),
        session_timeout_ms: 1_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), vec![])],
        ..Default::default()
    };
    h.c.join_group(id, req, 0, &mut h.rng);
    assert_eq!(
        h.join_answer(id).expect("answered").error_code,
        err::INVALID_SESSION_TIMEOUT
    );
}

#[test]
fn join_with_no_protocol_in_common_is_inconsistent_group_protocol() {
    let mut h = Harness::new(5);
    stable_group_of_one(&mut h);
    let id = h.join("", &[("roundrobin", b"")]);
    assert_eq!(
        h.join_answer(id).expect("answered").error_code,
        err::INCONSISTENT_GROUP_PROTOCOL
    );
}

#[test]
fn join_with_an_unknown_member_id_is_unknown_member_id() {
    let mut h = Harness::new(6);
    stable_group_of_one(&mut h);
    let id = h.join("c-nobody", &[("range", b"m")]);
    assert_eq!(h.join_answer(id).expect("answered").error_code, err::UNKNOWN_MEMBER_ID);
}

#[test]
fn heartbeat_during_a_rebalance_is_rebalance_in_progress_and_a_new_generation_follows() {
    let mut h = Harness::new(7);
    let a = stable_group_of_one(&mut h);
    assert_eq!(h.heartbeat(&a, 1), err::NONE);
    let (_b, jb) = h.join_new();
    assert_eq!(h.c.group_state(G), Some(GroupState::PreparingRebalance));
    assert_eq!(h.heartbeat(&a, 1), err::REBALANCE_IN_PROGRESS);
    let ja = h.join(&a, &[("range", b"m")]);
    let ra = h.join_answer(ja).expect("everyone rejoined: the join phase ends early");
    assert_eq!(ra.generation_id, 2);
    assert_eq!(h.join_answer(jb).expect("answered").generation_id, 2);
    assert_eq!(h.heartbeat(&a, 1), err::ILLEGAL_GENERATION);
    assert_eq!(h.heartbeat(&a, 2), err::NONE, "CompletingRebalance accepts heartbeats");
    assert_eq!(h.heartbeat("c-nobody", 2), err::UNKNOWN_MEMBER_ID);
}

#[test]
fn follower_sync_waits_for_the_leaders_assignment() {
    let mut h = Harness::new(8);
    let a = stable_group_of_one(&mut h);
    let (b, jb) = h.join_new();
    let ja = h.join(&a, &[("range", b"m")]);
    let gen = h.join_answer(ja).expect("done").generation_id;
    assert!(h.join_answer(jb).is_some());
    let sb = h.sync(&b, gen, &[]);
    assert_eq!(h.sync_answer(sb), None, "the follower waits");
    assert_eq!(h.commit_codes(h.next_request), None);
    let commit = h.commit(&b, gen, 5);
    assert_eq!(
        h.commit_codes(commit),
        Some(vec![err::REBALANCE_IN_PROGRESS]),
        "no commits before sync"
    );
    let sa = h.sync(&a, gen, &[(&a, b"A"), (&b, b"B")]);
    assert_eq!(h.sync_answer(sb).expect("now").assignment, b"B".to_vec());
    assert_eq!(h.sync_answer(sa).expect("now").assignment, b"A".to_vec());
    assert_eq!(h.view().members.len(), 2);
}

#[test]
fn sync_with_a_stale_generation_is_illegal_generation_and_during_prepare_is_rebalance_in_progress() {
    let mut h = Harness::new(9);
    let a = stable_group_of_one(&mut h);
    let s = h.sync(&a, 0, &[]);
    assert_eq!(h.sync_answer(s).expect("answered").error_code, err::ILLEGAL_GENERATION);
    let s = h.sync("c-nobody", 1, &[]);
    assert_eq!(h.sync_answer(s).expect("answered").error_code, err::UNKNOWN_MEMBER_ID);
    h.join_new();
    let s = h.sync(&a, 1, &[]);
    assert_eq!(
        h.sync_answer(s).expect("answered").error_code,
        err::REBALANCE_IN_PROGRESS
    );
}

#[test]
fn member_silent_past_session_timeout_is_removed_and_its_commit_is_refused() {
    let mut h = Harness::new(10);
    let a = stable_group_of_one(&mut h);
    let (b, jb) = h.join_new();
    let ja = h.join(&a, &[("range", b"m")]);
    h.drain();
    let gen = h.join_answer(ja).expect("done").generation_id;
    assert!(h.join_answer(jb).is_some());
    h.sync(&a, gen, &[(&a, b"A"), (&b, b"B")]);
    h.sync(&b, gen, &[]);
    h.drain();
    // b pauses; a keeps heartbeating.
    for _ in 0..4 {
        h.advance(3_000);
        assert_ne!(h.heartbeat(&a, h.view().generation_id), err::UNKNOWN_MEMBER_ID);
    }
    assert!(!h.view().members.contains_key(&b), "b expired");
    let commit = h.commit(&b, gen, 7);
    assert_eq!(h.commit_codes(commit), Some(vec![err::UNKNOWN_MEMBER_ID]));
    assert!(h.view().offsets.is_empty(), "the stale commit never landed");
}

#[test]
fn commit_from_an_old_generation_is_illegal_generation() {
    let mut h = Harness::new(11);
    let a = stable_group_of_one(&mut h);
    let ok = h.commit(&a, 1, 3);
    assert_eq!(h.commit_codes(ok), Some(vec![err::NONE]));
    assert_eq!(h.view().offsets[&TopicPartition::new("t", 0)].offset, 3);
    let (_b, _) = h.join_new();
    let ja = h.join(&a, &[("range", b"m")]);
    assert_eq!(h.join_answer(ja).expect("done").generation_id, 2);
    let stale = h.commit(&a, 1, 9);
    assert_eq!(h.commit_codes(stale), Some(vec![err::ILLEGAL_GENERATION]));
    assert_eq!(h.view().offsets[&TopicPartition::new("t", 0)].offset, 3);
}

#[test]
fn simple_commit_with_generation_minus_one_is_allowed_only_for_an_empty_group() {
    let mut h = Harness::new(12);
    let c = h.commit("", -1, 4);
    assert_eq!(h.commit_codes(c), Some(vec![err::NONE]), "no group yet: created Empty");
    assert_eq!(h.c.group_state(G), Some(GroupState::Empty));
    let c = h.commit("", 5, 4);
    assert_eq!(h.commit_codes(c), Some(vec![err::UNKNOWN_MEMBER_ID]));
    stable_group_of_one(&mut h);
    let c = h.commit("", -1, 8);
    assert_eq!(
        h.commit_codes(c),
        Some(vec![err::UNKNOWN_MEMBER_ID]),
        "a group with members"
    );
    let mut fresh = Harness::new(13);
    let c = fresh.commit("c-x", 3, 1);
    assert_eq!(
        fresh.commit_codes(c),
        Some(vec![err::ILLEGAL_GENERATION]),
        "unknown group, real generation"
    );
}

#[test]
fn commit_is_answered_only_when_its_records_land_and_a_failed_append_changes_nothing() {
    let mut h = Harness::new(14);
    let a = stable_group_of_one(&mut h);
    h.hold_appends = true;
    let c = h.commit(&a, 1, 6);
    assert_eq!(h.commit_codes(c), None);
    let fetched = h.c.fetch_offsets(G, Some(&[TopicPartition::new("t", 0)]));
    assert_eq!(fetched.offsets[0].offset, -1, "not visible before it lands");
    let write = h.held.pop().expect("one write");
    h.c.on_append(write, err::NOT_ENOUGH_REPLICAS, h.now_ms);
    assert_eq!(h.commit_codes(c), Some(vec![err::COORDINATOR_NOT_AVAILABLE]));
    assert!(h.view().offsets.is_empty());
    let c2 = h.commit(&a, 1, 6);
    h.drain();
    let write = h.held.pop().expect("one write");
    h.c.on_append(write, err::NONE, h.now_ms);
    assert_eq!(h.commit_codes(c2), Some(vec![err::NONE]));
    assert_eq!(h.c.fetch_offsets(G, None).offsets[0].offset, 6);
}

#[test]
fn offset_metadata_over_the_limit_is_offset_metadata_too_large() {
    let mut h = Harness::new(15);
    let id = h.request();
    let mk = |p: i32, metadata: String| CommitOffset {
        tp: TopicPartition::new("t", p),
        offset: 1,
        leader_epoch: -1,
        metadata,
    };
    let req = OffsetCommitRequest {
        group_id: G.into(),
        generation_id: -1,
        member_id: String::new(),
        offsets: vec![mk(0, "x".repeat(5000)), mk(1, String::new())],
    };
    h.c.offset_commit(id, req, 0);
    assert_eq!(
        h.commit_codes(id),
        Some(vec![err::OFFSET_METADATA_TOO_LARGE, err::NONE])
    );
}

#[test]
fn leave_group_rebalances_and_unknown_members_get_unknown_member_id() {
    let mut h = Harness::new(16);
    let a = stable_group_of_one(&mut h);
    let id = h.request();
    h.c.leave_group(id, G, &[a.clone(), "c-nobody".into()], h.now_ms);
    match h.answer(id) {
        Some(Response::LeaveGroup(r)) => {
            assert_eq!(
                r.members,
                vec![(a, err::NONE), ("c-nobody".to_string(), err::UNKNOWN_MEMBER_ID)]
            );
        }
        other => panic!("{other:?}"),
    }
    let v = h.view();
    assert_eq!(
        (v.state, v.generation_id),
        (GroupState::Empty, 2),
        "the last member left: Empty, next generation"
    );
}

#[test]
fn a_member_that_never_rejoins_is_dropped_when_the_rebalance_timeout_passes() {
    let mut h = Harness::new(17);
    let a = stable_group_of_one(&mut h);
    let (b, jb) = h.join_new();
    // a keeps heartbeating (REBALANCE_IN_PROGRESS) but never rejoins.
    for _ in 0..9 {
        h.advance(3_000);
        assert_eq!(h.heartbeat(&a, 1), err::REBALANCE_IN_PROGRESS);
    }
    h.advance(2_999);
    assert_eq!(h.join_answer(jb), None);
    h.advance(1);
    let r = h.join_answer(jb).expect("rebalance.timeout.ms passed");
    assert_eq!(
        (r.generation_id, r.leader.clone()),
        (2, b.clone()),
        "a was dropped, b leads"
    );
    assert!(!h.view().members.contains_key(&a));
}

#[test]
fn members_that_never_sync_are_dropped_after_the_rebalance_timeout() {
    let mut h = Harness::new(18);
    let (a, ja) = h.join_new();
    h.advance(3_000);
    assert!(h.join_answer(ja).is_some());
    h.advance(30_000);
    assert!(!h.view().members.contains_key(&a));
}

#[test]
fn a_loaded_coordinator_has_the_groups_and_offsets_its_predecessor_stored() {
    let mut h = Harness::new(19);
    let a = stable_group_of_one(&mut h);
    let c = h.commit(&a, 1, 42);
    assert_eq!(h.commit_codes(c), Some(vec![err::NONE]));
    let partition = partition_for(G, 4);
    let mut successor = GroupCoordinator::new(h.c.config().clone());
    successor.load_partition(partition, &h.log, h.now_ms);
    assert_eq!(successor.view(G), Some(h.view()));
    // And it serves the member on: a heartbeat of generation 1 is fine.
    successor.heartbeat(1, G, 1, &a, h.now_ms);
    assert_eq!(
        successor.poll(),
        vec![Effect::Respond {
            request_id: 1,
            response: Response::Heartbeat { error_code: err::NONE }
        }]
    );
}

#[test]
fn unloading_a_partition_answers_waiting_requests_not_coordinator() {
    let mut h = Harness::new(20);
    let (_a, ja) = h.join_new();
    h.c.unload_partition(partition_for(G, 4));
    let r = h.join_answer(ja).expect("answered");
    assert_eq!(r.error_code, err::NOT_COORDINATOR);
    let again = h.join("", &[("range", b"")]);
    assert_eq!(h.join_answer(again).expect("answered").error_code, err::NOT_COORDINATOR);
}

fn deleted(topic: &str) -> std::collections::BTreeSet<TopicPartition> {
    (0..2).map(|p| TopicPartition::new(topic, p)).collect()
}

#[test]
fn deleting_a_topic_tombstones_its_committed_offsets_and_a_successor_reads_them_gone() {
    let mut h = Harness::new(21);
    let a = stable_group_of_one(&mut h);
    let c = h.commit(&a, 1, 42);
    assert_eq!(h.commit_codes(c), Some(vec![err::NONE]));
    assert_eq!(h.c.on_partitions_deleted(&deleted("other")), 0, "no offsets of other");
    assert!(h.c.poll().is_empty());
    assert_eq!(h.c.on_partitions_deleted(&deleted("t")), 1);
    h.drain();
    let tombstone = GroupRecord::OffsetCommit {
        group_id: G.into(),
        tp: TopicPartition::new("t", 0),
        value: None,
    };
    assert_eq!(h.log.last(), Some(&tombstone));
    let fetched = h.c.fetch_offsets(G, Some(&[TopicPartition::new("t", 0)]));
    assert_eq!(fetched.offsets[0].offset, -1);
    assert!(h.view().offsets.is_empty());
    assert_eq!(h.c.group_state(G), Some(GroupState::Stable), "the group itself stays");
    let mut successor = GroupCoordinator::new(h.c.config().clone());
    successor.load_partition(partition_for(G, 4), &h.log, h.now_ms);
    assert_eq!(successor.view(G).expect("group").offsets, Default::default());
}

#[test]
fn offsets_of_a_deleted_topic_stay_until_the_tombstones_land_and_a_failed_append_keeps_them() {
    let mut h = Harness::new(22);
    let a = stable_group_of_one(&mut h);
    let c = h.commit(&a, 1, 7);
    assert_eq!(h.commit_codes(c), Some(vec![err::NONE]));
    h.hold_appends = true;
    assert_eq!(h.c.on_partitions_deleted(&deleted("t")), 1);
    h.drain();
    assert_eq!(h.view().offsets.len(), 1, "not gone before the tombstone lands");
    let write = h.held.pop().expect("the tombstone write");
    h.c.on_append(write, err::NOT_ENOUGH_REPLICAS, h.now_ms);
    assert_eq!(h.view().offsets.len(), 1, "a failed tombstone append changes nothing");
    assert_eq!(h.c.on_partitions_deleted(&deleted("t")), 1);
    h.drain();
    let write = h.held.pop().expect("the tombstone write");
    h.c.on_append(write, err::NONE, h.now_ms);
    assert!(h.view().offsets.is_empty());
}

#[test]
fn a_commit_in_flight_for_a_deleted_partition_is_tombstoned_after_it() {
    let mut h = Harness::new(23);
    let a = stable_group_of_one(&mut h);
    h.hold_appends = true;
    let c = h.commit(&a, 1, 9);
    h.drain();
    assert_eq!(h.c.on_partitions_deleted(&deleted("t")), 1, "the offset in flight");
    h.drain();
    let (tombstones, commit) = (h.held.pop().unwrap(), h.held.pop().unwrap());
    h.c.on_append(commit, err::NONE, h.now_ms);
    assert_eq!(h.commit_codes(c), Some(vec![err::NONE]));
    h.c.on_append(tombstones, err::NONE, h.now_ms);
    assert!(h.view().offsets.is_empty(), "{:?}", h.view().offsets);
    let mut successor = GroupCoordinator::new(h.c.config().clone());
    successor.load_partition(partition_for(G, 4), &h.log, h.now_ms);
    assert_eq!(successor.view(G).expect("group").offsets, Default::default());
}

#[test]
fn a_coordinator_tombstones_only_the_groups_it_serves() {
    let mut h = Harness::new(24);
    let a = stable_group_of_one(&mut h);
    let c = h.commit(&a, 1, 5);
    assert_eq!(h.commit_codes(c), Some(vec![err::NONE]));
    let mut other = GroupCoordinator::new(h.c.config().clone());
    let p = partition_for(G, 4);
    other.load_partition((p + 1) % 4, &h.log, h.now_ms);
    assert_eq!(other.on_partitions_deleted(&deleted("t")), 0);
    assert!(other.poll().is_empty());
}
