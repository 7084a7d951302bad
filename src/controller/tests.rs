use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use super::*;
use crate::metadata::NO_LEADER;

/// An active controller whose results are "committed" at once: records replayed at the next offset, and the
/// encoded entries kept, so a recovering controller can replay the same log.
pub(super) struct Harness {
    pub(super) c: Controller,
    offset: i64,
    pub(super) log: Vec<(i64, Vec<u8>)>,
    now_ms: i64,
    pub(super) rng: ChaCha8Rng,
    epochs: BTreeMap<BrokerId, i64>,
}

impl Harness {
    pub(super) fn new(config: ControllerConfig) -> Self {
        Harness {
            c: Controller::new(config, ControllerState::default(), 0),
            offset: -1,
            log: vec![],
            now_ms: 0,
            rng: ChaCha8Rng::seed_from_u64(7),
            epochs: BTreeMap::new(),
        }
    }

    pub(super) fn commit<T>(&mut self, r: ControllerResult<T>) -> T {
        if !r.records.is_empty() {
            self.offset += 1;
            self.c.replay_all(self.offset, &r.records).unwrap();
            self.log.push((self.offset, encode_records(&r.records)));
        }
        r.response
    }

    fn register(&mut self, id: BrokerId, incarnation: u128) -> BrokerRegistrationReply {
        let req = BrokerRegistrationRequest {
            broker_id: id,
            incarnation_id: Uuid::from_u128(incarnation),
            host: format!("broker-{id}"),
            port: 9092,
            rack: None,
        };
        let r = self.c.register_broker(req, self.now_ms);
        let reply = self.commit(r);
        if reply.error.is_none() {
            self.epochs.insert(id, reply.broker_epoch);
        }
        reply
    }

    fn heartbeat_with(&mut self, id: BrokerId, want_fence: bool, want_shut_down: bool) -> BrokerHeartbeatReply {
        let req = BrokerHeartbeatRequest {
            broker_id: id,
            broker_epoch: self.epochs[&id],
            current_metadata_offset: self.offset,
            want_fence,
            want_shut_down,
        };
        let r = self.c.heartbeat(req, self.now_ms);
        self.commit(r)
    }

    fn heartbeat(&mut self, id: BrokerId) -> BrokerHeartbeatReply {
        self.heartbeat_with(id, false, false)
    }

    /// Registers and unfences brokers `ids`.
    pub(super) fn live_brokers(&mut self, ids: &[BrokerId]) {
        for id in ids {
            assert_eq!(self.register(*id, *id as u128).error, None);
        }
        for id in ids {
            assert!(!self.heartbeat(*id).is_fenced, "broker {id} unfenced once caught up");
        }
    }

    fn tick(&mut self, advance_ms: i64) {
        self.now_ms += advance_ms;
        let r = self.c.tick(self.now_ms);
        self.commit(r);
    }

    pub(super) fn create(
        &mut self,
        name: &str,
        partitions: i32,
        rf: i16,
        configs: &[(&str, &str)],
    ) -> CreatableTopicResult {
        let topic = CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            configs: configs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        let req = CreateTopicsRequest {
            topics: vec![topic],
            validate_only: false,
        };
        let r = self.c.create_topics(req, self.now_ms, &mut self.rng);
        self.commit(r).topics.remove(0)
    }

    pub(super) fn partition(&self, name: &str, p: i32) -> (Uuid, PartitionRegistration) {
        let id = self.c.state().topic_ids[name];
        (id, self.c.state().partition(id, p).unwrap().clone())
    }

    /// The leader of `name`-`p` proposes `isr` with the current epochs.
    fn alter(&mut self, name: &str, p: i32, isr: &[BrokerId]) -> AlterPartitionResult {
        let (topic_id, part) = self.partition(name, p);
        self.alter_with(topic_id, p, part.leader, part.leader_epoch, part.partition_epoch, isr)
    }

    fn alter_with(
        &mut self,
        topic_id: Uuid,
        partition: i32,
        leader: BrokerId,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: &[BrokerId],
    ) -> AlterPartitionResult {
        let new_isr = isr
            .iter()
            .map(|b| IsrMember {
                broker_id: *b,
                broker_epoch: -1,
            })
            .collect();
        let req = AlterPartitionRequest {
            broker_id: leader,
            broker_epoch: self.epochs[&leader],
            partitions: vec![AlterPartitionData {
                topic_id,
                partition,
                leader_epoch,
                partition_epoch,
                new_isr,
            }],
        };
        let r = self.c.alter_partition(req);
        let mut reply = self.commit(r);
        assert_eq!(reply.error, None);
        reply.partitions.remove(0)
    }

    /// Heartbeats every live broker but `silent`, then advances past the session timeout and ticks.
    fn silence(&mut self, silent: &[BrokerId]) {
        for _ in 0..3 {
            self.now_ms += 4000;
            let ids: Vec<BrokerId> = self.epochs.keys().copied().filter(|b| !silent.contains(b)).collect();
            for id in ids {
                self.heartbeat(id);
            }
            let r = self.c.tick(self.now_ms);
            self.commit(r);
        }
    }
}

fn harness() -> Harness {
    Harness::new(ControllerConfig::new(100, "cluster"))
}

#[test]
fn a_broker_registers_fenced_and_is_unfenced_once_caught_up() {
    let mut h = harness();
    let reply = h.register(1, 1);
    assert_eq!(reply.error, None);
    assert!(h.c.state().brokers[&1].fenced, "a new registration is fenced (KIP-631)");
    let behind = BrokerHeartbeatRequest {
        broker_id: 1,
        broker_epoch: reply.broker_epoch,
        current_metadata_offset: h.offset - 1,
        want_fence: false,
        want_shut_down: false,
    };
    let r = h.c.heartbeat(behind, 0);
    assert!(r.records.is_empty(), "{:?}", r.records);
    assert!(!r.response.is_caught_up && r.response.is_fenced);
    let caught_up = h.heartbeat(1);
    assert!(caught_up.is_caught_up && !caught_up.is_fenced);
    assert!(!h.c.state().brokers[&1].fenced);
    assert!(!h.c.image().brokers[&1].fenced);
}

#[test]
fn a_restarted_broker_is_refused_while_its_old_session_lives() {
    let mut h = harness();
    h.live_brokers(&[1]);
    h.now_ms += 8000;
    let refused = h.register(1, 99);
    assert_eq!(refused.error, Some(ResponseError::DuplicateBrokerRegistration));
    assert_eq!(
        h.c.state().brokers[&1].incarnation_id,
        Uuid::from_u128(1),
        "nothing recorded"
    );
    h.now_ms += 1001; // 9001 ms since the last heartbeat: the session is gone
    let accepted = h.register(1, 99);
    assert_eq!(accepted.error, None);
    let reg = &h.c.state().brokers[&1];
    assert!(reg.fenced && reg.incarnation_id == Uuid::from_u128(99));
    assert!(accepted.broker_epoch > 1, "a new epoch: {}", accepted.broker_epoch);
}

#[test]
fn the_same_incarnation_may_register_again_and_gets_a_new_epoch() {
    let mut h = harness();
    let first = h.register(1, 5);
    h.heartbeat(1);
    let again = h.register(1, 5);
    assert_eq!(again.error, None);
    assert!(again.broker_epoch > first.broker_epoch);
    assert!(h.c.state().brokers[&1].fenced);
}

#[test]
fn a_heartbeat_with_a_stale_broker_epoch_is_rejected() {
    let mut h = harness();
    h.live_brokers(&[1]);
    let req = BrokerHeartbeatRequest {
        broker_id: 1,
        broker_epoch: h.epochs[&1] - 1,
        current_metadata_offset: h.offset,
        want_fence: false,
        want_shut_down: false,
    };
    let r = h.c.heartbeat(req.clone(), 0);
    assert_eq!(r.response.error, Some(ResponseError::StaleBrokerEpoch));
    assert!(r.records.is_empty());
    let unknown = BrokerHeartbeatRequest { broker_id: 7, ..req };
    assert_eq!(
        h.c.heartbeat(unknown, 0).response.error,
        Some(ResponseError::BrokerIdNotRegistered)
    );
}

#[test]
fn a_silent_broker_is_fenced_after_the_session_timeout_and_unfenced_when_it_returns() {
    let mut h = harness();
    h.live_brokers(&[1, 2]);
    h.tick(9000);
    assert!(
        !h.c.state().brokers[&1].fenced,
        "9000 ms is still inside broker.session.timeout.ms"
    );
    h.heartbeat(2);
    h.tick(1);
    assert!(h.c.state().brokers[&1].fenced);
    assert!(!h.c.state().brokers[&2].fenced);
    assert!(
        !h.heartbeat(1).is_fenced,
        "a fenced broker that heartbeats again, caught up, is unfenced"
    );
}

#[test]
fn fencing_the_leader_elects_a_new_one_from_the_isr_with_a_bumped_epoch() {
    let mut h = harness();
    h.live_brokers(&[1, 2, 3]);
    assert_eq!(h.create("t", 1, 3, &[]).error, None);
    let (_, before) = h.partition("t", 0);
    assert_eq!(before.isr, before.replicas);
    h.silence(&[before.leader]);
    let (_, after) = h.partition("t", 0);
    assert_ne!(after.leader, before.leader);
    assert!(before.isr.contains(&after.leader));
    assert_eq!(
        after.leader, before.replicas[1],
        "the first live ISR member in replica order"
    );
    assert_eq!(after.leader_epoch, before.leader_epoch + 1);
    assert_eq!(after.partition_epoch, before.partition_epoch + 1);
    assert!(
        !after.isr.contains(&before.leader),
        "the fenced broker left the ISR: {:?}",
        after.isr
    );
}

#[test]
fn the_last_isr_member_is_never_removed() {
    let mut h = harness();
    h.live_brokers(&[1, 2]);
    h.create("t", 1, 2, &[]);
    let (_, part) = h.partition("t", 0);
    let (leader, follower) = (part.leader, part.replicas[1]);
    assert_eq!(h.alter("t", 0, &[leader]).error, None);
    h.silence(&[leader]);
    let (_, p) = h.partition("t", 0);
    assert_eq!(p.isr, vec![leader], "the ISR keeps its last member");
    assert_eq!(p.leader, NO_LEADER, "the follower is out of sync: no clean leader");
    assert!(!h.c.state().brokers[&follower].fenced);
    h.heartbeat(leader);
    let (_, p) = h.partition("t", 0);
    assert_eq!(p.leader, leader, "the last ISR member leads again once unfenced");
    assert_eq!(p.leader_epoch, part.leader_epoch + 2);
}

#[test]
fn unclean_election_picks_a_live_out_of_sync_replica_only_when_enabled() {
    for enabled in [false, true] {
        let mut h = harness();
        h.live_brokers(&[1, 2]);
        let value = if enabled { "true" } else { "false" };
        h.create("t", 1, 2, &[(UNCLEAN_LEADER_ELECTION_ENABLE, value)]);
        let (_, part) = h.partition("t", 0);
        let (leader, follower) = (part.leader, part.replicas[1]);
        h.alter("t", 0, &[leader]);
        h.silence(&[leader]);
        let (_, p) = h.partition("t", 0);
        let unclean = h
            .log
            .iter()
            .flat_map(|(_, d)| decode_records(d).unwrap())
            .any(|r| matches!(r, Record::PartitionChange { unclean: true, .. }));
        if enabled {
            assert_eq!((p.leader, p.isr.clone()), (follower, vec![follower]));
            assert!(unclean, "the record marks the election unclean");
        } else {
            assert_eq!((p.leader, p.isr.clone()), (NO_LEADER, vec![leader]));
            assert!(!unclean);
        }
    }
}

#[test]
fn the_controller_default_allows_unclean_election_for_topics_that_do_not_set_it() {
    let mut config = ControllerConfig::new(100, "c");
    config.unclean_leader_election_enable = true;
    let mut h = Harness::new(config);
    h.live_brokers(&[1, 2]);
    h.create("t", 1, 2, &[]);
    let (_, part) = h.partition("t", 0);
    h.alter("t", 0, &[part.leader]);
    h.silence(&[part.leader]);
    assert_eq!(h.partition("t", 0).1.leader, part.replicas[1]);
}

#[test]
fn controlled_shutdown_moves_leadership_away_before_the_broker_may_stop() {
    let mut h = harness();
    h.live_brokers(&[1, 2, 3]);
    h.create("t", 3, 3, &[]);
    let leader = h.partition("t", 0).1.leader;
    let first = h.heartbeat_with(leader, false, true);
    assert!(first.in_controlled_shutdown && !first.should_shut_down, "{first:?}");
    for p in 0..3 {
        let part = h.partition("t", p).1;
        assert_ne!(part.leader, leader, "partition {p} led by the broker shutting down");
        assert!(!part.isr.contains(&leader), "partition {p}: {:?}", part.isr);
    }
    let not_yet = h.heartbeat_with(leader, false, true);
    assert!(
        !not_yet.should_shut_down,
        "the other brokers have not seen the new leaders yet"
    );
    for b in [1, 2, 3].into_iter().filter(|b| *b != leader) {
        h.heartbeat(b);
    }
    let done = h.heartbeat_with(leader, false, true);
    assert!(done.should_shut_down && done.is_fenced, "{done:?}");
    let r = h.alter("t", 0, &[h.partition("t", 0).1.leader, leader]);
    assert_eq!(r.error, Some(ResponseError::IneligibleReplica));
}

#[test]
fn a_broker_leading_nothing_may_shut_down_at_once() {
    let mut h = harness();
    h.live_brokers(&[1]);
    let reply = h.heartbeat_with(1, false, true);
    assert!(reply.should_shut_down && reply.is_fenced, "{reply:?}");
}

#[test]
fn create_topics_validates_names_partitions_and_replication_factor() {
    let mut h = harness();
    h.live_brokers(&[1, 2]);
    assert_eq!(h.create("ok", -1, -1, &[]).num_partitions, 1, "num.partitions default");
    assert_eq!(h.create("ok", 1, 1, &[]).error, Some(ResponseError::TopicAlreadyExists));
    for bad in ["", ".", "..", "a/b", &"x".repeat(250)] {
        assert_eq!(
            h.create(bad, 1, 1, &[]).error,
            Some(ResponseError::InvalidTopicException),
            "{bad:?}"
        );
    }
    assert_eq!(h.create("p", 0, 1, &[]).error, Some(ResponseError::InvalidPartitions));
    assert_eq!(
        h.create("r", 1, 3, &[]).error,
        Some(ResponseError::InvalidReplicationFactor)
    );
    assert_eq!(
        h.create("r", 1, 0, &[]).error,
        Some(ResponseError::InvalidReplicationFactor)
    );
    let bad_config = [(UNCLEAN_LEADER_ELECTION_ENABLE, "maybe")];
    assert_eq!(
        h.create("c", 1, 1, &bad_config).error,
        Some(ResponseError::InvalidConfig)
    );
    assert_eq!(h.c.state().topics.len(), 1, "only the valid topic exists");
}

#[test]
fn replication_factor_counts_only_unfenced_brokers() {
    let mut h = harness();
    h.live_brokers(&[1, 2]);
    h.register(3, 3); // fenced until it heartbeats
    assert_eq!(
        h.create("t", 1, 3, &[]).error,
        Some(ResponseError::InvalidReplicationFactor)
    );
    h.heartbeat(3);
    assert_eq!(h.create("t", 1, 3, &[]).error, None);
}

#[test]
fn replicas_are_spread_round_robin_over_unfenced_brokers() {
    let mut h = harness();
    h.live_brokers(&[1, 2, 3, 4]);
    let created = h.create("t", 8, 3, &[]);
    assert_eq!(created.error, None);
    assert!(!created.topic_id.is_nil());
    let mut leaders = BTreeMap::<BrokerId, usize>::new();
    for p in 0..8 {
        let part = h.partition("t", p).1;
        let mut distinct = part.replicas.clone();
        distinct.dedup();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "{:?}", part.replicas);
        assert_eq!(part.leader, part.replicas[0], "leader = first replica");
        assert_eq!(part.isr, part.replicas);
        assert_eq!((part.leader_epoch, part.partition_epoch), (0, 0));
        *leaders.entry(part.leader).or_default() += 1;
    }
    assert_eq!(
        leaders.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2, 2],
        "{leaders:?}"
    );
}

#[test]
fn alter_partition_with_a_stale_epoch_is_rejected() {
    let mut h = harness();
    h.live_brokers(&[1, 2, 3]);
    h.create("t", 1, 3, &[]);
    let (id, part) = h.partition("t", 0);
    let shrunk = [part.leader, part.replicas[1]];
    let stale_leader = h.alter_with(id, 0, part.leader, part.leader_epoch - 1, part.partition_epoch, &shrunk);
    assert_eq!(stale_leader.error, Some(ResponseError::FencedLeaderEpoch));
    let stale_version = h.alter_with(id, 0, part.leader, part.leader_epoch, part.partition_epoch + 1, &shrunk);
    assert_eq!(stale_version.error, Some(ResponseError::InvalidUpdateVersion));
    assert_eq!(h.partition("t", 0).1, part, "nothing changed");
    let ok = h.alter("t", 0, &shrunk);
    assert_eq!(ok.error, None);
    assert_eq!(
        (ok.isr.clone(), ok.partition_epoch, ok.leader_epoch),
        (shrunk.to_vec(), 1, 0)
    );
    let replayed = h.alter_with(id, 0, part.leader, 0, 0, &part.isr);
    assert_eq!(
        replayed.error,
        Some(ResponseError::InvalidUpdateVersion),
        "the old version is now stale"
    );
    assert_eq!(
        replayed.partition_epoch, 1,
        "the response tells the leader the current version"
    );
}

#[test]
fn alter_partition_refuses_malformed_isrs_and_non_leaders() {
    let mut h = harness();
    h.live_brokers(&[1, 2, 3]);
    h.create("t", 1, 2, &[]);
    let (id, part) = h.partition("t", 0);
    let outsider = [1, 2, 3].into_iter().find(|b| !part.replicas.contains(b)).unwrap();
    let follower = part.replicas[1];
    let (le, pe) = (part.leader_epoch, part.partition_epoch);
    for isr in [
        vec![],
        vec![part.leader, part.leader],
        vec![part.leader, outsider],
        vec![follower],
    ] {
        let r = h.alter_with(id, 0, part.leader, le, pe, &isr);
        assert_eq!(r.error, Some(ResponseError::InvalidRequest), "{isr:?}");
    }
    let from_follower = h.alter_with(id, 0, follower, le, pe, &[follower]);
    assert_eq!(from_follower.error, Some(ResponseError::InvalidRequest));
    let unknown = h.alter_with(Uuid::from_u128(1), 0, part.leader, le, pe, &[part.leader]);
    assert_eq!(unknown.error, Some(ResponseError::UnknownTopicId));
}

#[test]
fn alter_partition_refuses_fenced_or_shutting_down_replicas() {
    let mut h = harness();
    h.live_brokers(&[1, 2]);
    h.create("t", 1, 2, &[]);
    let part = h.partition("t", 0).1;
    let (leader, follower) = (part.leader, part.replicas[1]);
    h.alter("t", 0, &[leader]);
    h.heartbeat_with(follower, true, false); // want_fence
    assert!(h.c.state().brokers[&follower].fenced);
    assert_eq!(
        h.alter("t", 0, &[leader, follower]).error,
        Some(ResponseError::IneligibleReplica)
    );
    h.heartbeat(follower);
    assert_eq!(h.alter("t", 0, &[leader, follower]).error, None);
    let (id, p) = h.partition("t", 0);
    let wrong_epoch = AlterPartitionRequest {
        broker_id: leader,
        broker_epoch: h.epochs[&leader],
        partitions: vec![AlterPartitionData {
            topic_id: id,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr: vec![
                IsrMember {
                    broker_id: leader,
                    broker_epoch: -1,
                },
                IsrMember {
                    broker_id: follower,
                    broker_epoch: h.epochs[&follower] + 100,
                },
            ],
        }],
    };
    let r = h.c.alter_partition(wrong_epoch);
    assert_eq!(
        r.response.partitions[0].error,
        Some(ResponseError::IneligibleReplica),
        "KIP-903"
    );
    let stale_sender = AlterPartitionRequest {
        broker_id: leader,
        broker_epoch: -5,
        partitions: vec![],
    };
    assert_eq!(
        h.c.alter_partition(stale_sender).response.error,
        Some(ResponseError::StaleBrokerEpoch)
    );
}

#[test]
fn a_new_incarnation_after_its_session_expired_takes_the_old_one_out_of_leadership() {
    let mut h = harness();
    h.live_brokers(&[1, 2]);
    h.create("t", 1, 2, &[]);
    let part = h.partition("t", 0).1;
    h.now_ms += 10_000;
    h.heartbeat(part.replicas[1]);
    assert_eq!(
        h.register(part.leader, 77).error,
        None,
        "session expired, not yet fenced by a tick"
    );
    let p = h.partition("t", 0).1;
    assert_eq!(
        p.leader, part.replicas[1],
        "the restarted broker comes back as a follower"
    );
    assert_eq!(p.leader_epoch, part.leader_epoch + 1);
}

#[test]
fn the_image_shows_brokers_topics_partitions_and_configs() {
    let mut h = harness();
    h.live_brokers(&[1, 2]);
    h.register(3, 3);
    h.create("t", 2, 2, &[("min.insync.replicas", "2")]);
    let img = h.c.image();
    assert_eq!((img.cluster_id.as_str(), img.controller_id), ("cluster", 100));
    assert_eq!(img.live_brokers(), vec![1, 2]);
    assert!(img.brokers[&3].fenced);
    assert_eq!(img.brokers[&1].host, "broker-1");
    let topic = img.topic("t").unwrap();
    assert_eq!(topic.topic_id, h.c.state().topic_ids["t"]);
    assert_eq!(topic.configs["min.insync.replicas"], "2");
    let p1 = img.partition(&crate::types::TopicPartition::new("t", 1)).unwrap();
    assert_eq!(p1.replicas, h.partition("t", 1).1.replicas);
}

#[test]
fn a_recovering_controller_replaying_the_log_reaches_the_same_state() {
    let mut h = harness();
    h.live_brokers(&[1, 2, 3]);
    h.create("t", 3, 3, &[]);
    h.silence(&[2]);
    let mut recovered = ControllerState::default();
    for (offset, data) in &h.log {
        for r in decode_records(data).unwrap() {
            recovered.replay(*offset, &r).unwrap();
        }
    }
    assert_eq!(&recovered, h.c.state());
    let again = Controller::new(h.c.config().clone(), recovered, h.now_ms);
    assert_eq!(again.image(), h.c.image());
    assert!(
        again.has_valid_session(1, h.now_ms),
        "a new active controller starts every session"
    );
}

#[test]
fn replay_refuses_records_that_do_not_fit_and_leaves_the_state_unchanged() {
    let mut s = ControllerState::default();
    let fence = Record::FenceBroker { id: 4, epoch: 1 };
    assert!(matches!(s.replay(0, &fence), Err(ReplayError::UnknownBroker { .. })));
    let change = Record::PartitionChange {
        topic_id: Uuid::from_u128(3),
        partition: 0,
        isr: None,
        leader: Some(1),
        unclean: false,
    };
    assert!(matches!(s.replay(0, &change), Err(ReplayError::UnknownTopic { .. })));
    assert_eq!(s, ControllerState::default());
}

#[test]
fn producer_id_blocks_do_not_overlap() {
    let mut h = harness();
    h.live_brokers(&[1, 2]);
    let req = |b: BrokerId, h: &Harness| AllocateProducerIdsRequest {
        broker_id: b,
        broker_epoch: h.epochs[&b],
    };
    let r = h.c.allocate_producer_ids(req(1, &h));
    let a = h.commit(r);
    let r = h.c.allocate_producer_ids(req(2, &h));
    let b = h.commit(r);
    assert_eq!((a.producer_id_start, b.producer_id_start), (0, PRODUCER_ID_BLOCK_SIZE));
    let stale = AllocateProducerIdsRequest {
        broker_id: 1,
        broker_epoch: 0,
    };
    assert_eq!(
        h.c.allocate_producer_ids(stale).response.error,
        Some(ResponseError::StaleBrokerEpoch)
    );
}
