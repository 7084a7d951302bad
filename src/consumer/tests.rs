//! The consumer core against the group coordinator core, with a pure shell in between: members join,
//! sync, heartbeat, consume and commit; one partition never has two owners.

use std::collections::{BTreeMap, BTreeSet};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::group::{self, Assignor, GroupConfig, GroupCoordinator, Response};
use crate::types::TopicPartition;

const LOG_END: i64 = 40;

enum Pending {
    Join(usize),
    Sync(usize),
    Heartbeat(usize),
    Leave,
    Fetch(usize, Vec<TopicPartition>),
    Commit(usize, u64),
}

struct World {
    coord: GroupCoordinator,
    consumers: Vec<Consumer>,
    rng: ChaCha8Rng,
    now_ms: i64,
    pending: BTreeMap<u64, Pending>,
    next_request: u64,
    events: Vec<(usize, RebalanceEvent)>,
    read: Vec<BTreeMap<TopicPartition, Vec<i64>>>,
    commit_results: Vec<(usize, Vec<(TopicPartition, i16)>)>,
    /// Consumers whose `poll` the application does not call (paused process).
    paused: BTreeSet<usize>,
}

fn config(name: &str, assignor: Assignor) -> ConsumerConfig {
    ConsumerConfig {
        client_id: name.into(),
        group_id: Some("g".into()),
        auto_offset_reset: AutoOffsetReset::Earliest,
        max_poll_records: 7,
        session_timeout_ms: 10_000,
        max_poll_interval_ms: 60_000,
        assignors: vec![assignor],
        ..ConsumerConfig::default()
    }
}

impl World {
    fn new(n: usize, assignor: Assignor) -> Self {
        let cfg = GroupConfig {
            offsets_topic_num_partitions: 1,
            ..GroupConfig::default()
        };
        let mut w = Self {
            coord: GroupCoordinator::load(cfg, &[0], &[], 0),
            consumers: vec![],
            rng: ChaCha8Rng::seed_from_u64(7),
            now_ms: 0,
            pending: BTreeMap::new(),
            next_request: 0,
            events: vec![],
            read: vec![],
            commit_results: vec![],
            paused: BTreeSet::new(),
        };
        for i in 0..n {
            w.add_consumer(&format!("c{i}"), assignor);
        }
        w
    }

    fn add_consumer(&mut self, name: &str, assignor: Assignor) {
        let mut c = Consumer::new(config(name, assignor), self.now_ms);
        c.subscribe(BTreeSet::from(["t".to_string()])).expect("group.id set");
        self.consumers.push(c);
        self.read.push(BTreeMap::new());
    }

    fn request(&mut self, p: Pending) -> u64 {
        self.next_request += 1;
        self.pending.insert(self.next_request, p);
        self.next_request
    }

    fn route(&mut self, i: usize, effects: Vec<Effect>) {
        for e in effects {
            let now = self.now_ms;
            match e {
                Effect::FindCoordinator { .. } => self.consumers[i].on_coordinator(true, now),
                Effect::JoinGroup(req) => {
                    let id = self.request(Pending::Join(i));
                    self.coord.join_group(id, req, now, &mut self.rng);
                }
                Effect::SyncGroup(req) => {
                    let id = self.request(Pending::Sync(i));
                    self.coord.sync_group(id, req, now);
                }
                Effect::Heartbeat {
                    group_id,
                    generation_id,
                    member_id,
                } => {
                    let id = self.request(Pending::Heartbeat(i));
                    self.coord.heartbeat(id, &group_id, generation_id, &member_id, now);
                }
                Effect::LeaveGroup { group_id, member_id } => {
                    let id = self.request(Pending::Leave);
                    self.coord.leave_group(id, &group_id, &[member_id], now);
                }
                Effect::OffsetFetch { group_id, partitions } => {
                    let id = self.request(Pending::Fetch(i, partitions.clone()));
                    self.coord.offset_fetch(id, &group_id, Some(&partitions));
                }
                Effect::OffsetCommit { commit_id, request } => {
                    let id = self.request(Pending::Commit(i, commit_id));
                    self.coord.offset_commit(id, request, now);
                }
                Effect::ListOffsets { tp, timestamp } => {
                    let offset = if timestamp == -2 { 0 } else { LOG_END };
                    self.consumers[i].on_list_offsets(&tp, timestamp, Ok((offset, 0)));
                }
                Effect::OffsetsForLeaderEpoch { tp, position, .. } => {
                    // One leader, epoch 0 throughout: nothing is ever truncated.
                    self.consumers[i].on_epoch_end_offset(&tp, position, Ok((0, LOG_END)));
                }
                Effect::TruncationDetected { tp, truncation } => {
                    panic!("{tp}: no leader ever changes here, yet {truncation:?}")
                }
                Effect::Fetch { tp, position } => {
                    let end = (position.offset + 5).min(LOG_END);
                    let records = (position.offset..end)
                        .map(|o| ConsumerRecord {
                            tp: tp.clone(),
                            offset: o,
                            leader_epoch: 0,
                            timestamp_ms: 0,
                            key: None,
                            value: None,
                            headers: vec![],
                        })
                        .collect();
                    let result = FetchResult::Records {
                        records,
                        high_watermark: LOG_END,
                        next_fetch_offset: end,
                    };
                    self.consumers[i].on_fetch(&tp, position.offset, result);
                }
                Effect::Metadata { .. } => self.consumers[i].on_metadata(&BTreeMap::from([("t".to_string(), 6)])),
                Effect::Rebalance(ev) => self.events.push((i, ev)),
                Effect::CommitDone { partitions, .. } => self.commit_results.push((i, partitions)),
                Effect::WakeAt { .. } => {}
            }
        }
        self.route_coordinator();
    }

    fn route_coordinator(&mut self) {
        loop {
            let effects = self.coord.poll();
            if effects.is_empty() {
                return;
            }
            for e in effects {
                match e {
                    group::Effect::Append { write_id, .. } => self.coord.on_append(write_id, 0, self.now_ms),
                    group::Effect::Respond { request_id, response } => self.answer(request_id, response),
                }
            }
        }
    }

    fn answer(&mut self, request_id: u64, response: Response) {
        let Some(p) = self.pending.remove(&request_id) else {
            return;
        };
        let now = self.now_ms;
        match (p, response) {
            (Pending::Join(i), Response::JoinGroup(r)) => self.consumers[i].on_join(&r, now),
            (Pending::Sync(i), Response::SyncGroup(r)) => self.consumers[i].on_sync(&r, now),
            (Pending::Heartbeat(i), Response::Heartbeat { error_code }) => {
                self.consumers[i].on_heartbeat(error_code, now)
            }
            (Pending::Fetch(i, parts), Response::OffsetFetch(r)) => self.consumers[i].on_offset_fetch(&r, &parts),
            (Pending::Commit(i, id), Response::OffsetCommit { partitions }) => {
                self.consumers[i].on_commit(id, partitions, now)
            }
            (Pending::Leave, Response::LeaveGroup(_)) => {}
            (_, r) => panic!("unexpected answer {r:?}"),
        }
    }

    fn step(&mut self, ms: i64) {
        self.now_ms += ms;
        for i in 0..self.consumers.len() {
            if self.paused.contains(&i) {
                self.consumers[i].tick(self.now_ms);
            } else if let Ok(records) = self.consumers[i].poll(self.now_ms) {
                for r in records {
                    self.read[i].entry(r.tp.clone()).or_default().push(r.offset);
                }
            }
            let effects = self.consumers[i].effects();
            self.route(i, effects);
            self.check_one_owner();
        }
        self.coord.tick(self.now_ms);
        self.route_coordinator();
        self.check_one_owner();
    }

    fn check_one_owner(&self) {
        let mut owners: BTreeMap<TopicPartition, usize> = BTreeMap::new();
        for (i, c) in self.consumers.iter().enumerate() {
            for tp in c.assignment() {
                if let Some(j) = owners.insert(tp.clone(), i) {
                    panic!("{tp} owned by consumers {j} and {i} at {} ms", self.now_ms);
                }
            }
        }
    }

    fn owned_partitions(&self) -> usize {
        self.consumers.iter().map(|c| c.assignment().len()).sum()
    }
}

fn converge_and_consume(assignor: Assignor) -> World {
    let mut w = World::new(3, assignor);
    for _ in 0..300 {
        w.step(100);
    }
    assert_eq!(w.owned_partitions(), 6, "every partition owned once the group settles");
    for c in &w.consumers {
        assert_eq!(c.member().state, MemberState::Stable);
        assert_eq!(c.assignment().len(), 2, "balanced");
    }
    w
}

#[test]
fn three_eager_members_split_six_partitions_and_read_each_from_the_start() {
    let w = converge_and_consume(Assignor::Range);
    let mut all: BTreeMap<TopicPartition, BTreeSet<i64>> = BTreeMap::new();
    for read in &w.read {
        for (tp, offsets) in read {
            assert!(
                offsets.windows(2).all(|p| p[0] < p[1]),
                "{tp} polled in offset order: {offsets:?}"
            );
            all.entry(tp.clone()).or_default().extend(offsets);
        }
    }
    assert_eq!(all.len(), 6);
    assert!(
        all.values().all(|o| o.len() == LOG_END as usize),
        "every record read once the group settles"
    );
}

#[test]
fn cooperative_members_join_one_by_one_without_two_owners_of_a_partition() {
    let mut w = World::new(1, Assignor::CooperativeSticky);
    for _ in 0..100 {
        w.step(100);
    }
    assert_eq!(w.consumers[0].assignment().len(), 6);
    w.add_consumer("c1", Assignor::CooperativeSticky);
    for _ in 0..150 {
        w.step(100);
    }
    assert_eq!(w.owned_partitions(), 6);
    assert_eq!(w.consumers[0].assignment().len(), 3, "only what balance needs moved");
    let revoked: Vec<_> = w
        .events
        .iter()
        .filter_map(|(i, e)| match e {
            RebalanceEvent::Revoked { partitions, .. } if *i == 0 => Some(partitions.len()),
            _ => None,
        })
        .collect();
    assert_eq!(
        revoked,
        vec![3],
        "the first member revoked exactly three partitions, once"
    );
}

#[test]
fn a_member_that_stops_polling_leaves_and_its_partitions_move() {
    let mut w = converge_and_consume(Assignor::Range);
    w.paused.insert(2);
    for _ in 0..700 {
        w.step(100);
    }
    assert!(
        w.consumers[2].assignment().is_empty(),
        "max.poll.interval.ms passed: it left the group"
    );
    assert_eq!(w.consumers[0].assignment().len() + w.consumers[1].assignment().len(), 6);
    assert!(w
        .events
        .iter()
        .any(|(i, e)| *i == 2 && matches!(e, RebalanceEvent::Lost { .. })));
}

#[test]
fn auto_commit_commits_only_what_poll_returned() {
    let mut w = converge_and_consume(Assignor::Range);
    for _ in 0..60 {
        w.step(100);
    }
    let view = w.coord.view("g").expect("group");
    for (tp, committed) in &view.offsets {
        let read_up_to = w
            .read
            .iter()
            .filter_map(|r| r.get(tp))
            .flat_map(|o| o.iter().copied())
            .max()
            .unwrap_or(-1);
        assert!(
            committed.offset <= read_up_to + 1,
            "{tp}: committed {} but read up to {read_up_to}",
            committed.offset
        );
    }
    assert!(
        view.offsets.values().any(|o| o.offset == LOG_END),
        "auto-commit reached the end"
    );
    assert!(
        w.commit_results.iter().all(|(_, ps)| ps.iter().all(|(_, c)| *c == 0)),
        "{:?}",
        w.commit_results
    );
}

#[test]
fn subscribe_without_group_id_is_refused_and_assign_resets_by_policy() {
    let mut c = Consumer::new(ConsumerConfig::default(), 0);
    assert_eq!(
        c.subscribe(BTreeSet::from(["t".to_string()])),
        Err(ConsumerError::NoGroupId)
    );
    let tp = TopicPartition::new("t", 0);
    c.assign(std::slice::from_ref(&tp));
    c.poll(0).expect("no error");
    let effects = c.effects();
    assert!(
        effects.contains(&Effect::ListOffsets {
            tp: tp.clone(),
            timestamp: -1
        }),
        "latest by default: {effects:?}"
    );
    let mut none = Consumer::new(
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::None,
            ..ConsumerConfig::default()
        },
        0,
    );
    none.assign(std::slice::from_ref(&tp));
    assert_eq!(
        none.poll(0),
        Err(ConsumerError::NoOffsetForPartition {
            partitions: vec![tp.clone()]
        })
    );
    none.seek(&tp, 3).expect("assigned");
    assert_eq!(none.poll(1), Ok(vec![]));
    assert_eq!(
        none.seek(&TopicPartition::new("x", 0), 1),
        Err(ConsumerError::NotAssigned {
            tp: TopicPartition::new("x", 0)
        })
    );
}
