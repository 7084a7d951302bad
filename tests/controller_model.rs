//! Model test of the metadata state machine: random sequences of broker registrations (restarts with new
//! incarnations), heartbeats (caught up or lagging, stale epochs, want_fence, controlled shutdown), ticks
//! with time advancing, CreateTopics, AlterPartition (valid or with stale epochs) and controller failovers.
//! Every result's records are replayed by the active controller and, encoded and decoded, by a second
//! `ControllerState` that must stay equal (the replay path is deterministic). After every step: no partition
//! is led by a fenced or shut-down broker; leader ∈ ISR ⊆ replicas unless leaderless; an ISR is never empty;
//! leader and partition epochs never decrease; with unclean election off, a new leader comes from the
//! previous ISR and no record is marked unclean.

use std::collections::BTreeMap;

use gregor::broker::NO_LEADER;
use gregor::controller::{
    decode_records, encode_records, AlterPartitionData, AlterPartitionRequest, BrokerHeartbeatRequest,
    BrokerRegistrationRequest, Controller, ControllerConfig, ControllerState, CreatableTopic, CreateTopicsRequest,
    IsrMember, Record, ResponseError, UNCLEAN_LEADER_ELECTION_ENABLE,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

const BROKERS: i32 = 4;
const TOPICS: [&str; 3] = ["a", "b", "c"];

#[derive(Clone, Debug)]
enum Op {
    Register {
        broker: i32,
        restart: bool,
    },
    Heartbeat {
        broker: i32,
        lagging: bool,
        stale: bool,
        want_fence: bool,
        want_shut_down: bool,
    },
    Tick {
        advance_ms: i64,
    },
    CreateTopic {
        topic: usize,
        partitions: i32,
        rf: i16,
        unclean: Option<bool>,
    },
    Alter {
        topic: usize,
        partition: i32,
        members: u8,
        stale: u8,
    },
    Failover,
}

fn op() -> impl Strategy<Value = Op> {
    let broker = 1..=BROKERS;
    prop_oneof![
        3 => (broker.clone(), any::<bool>()).prop_map(|(broker, restart)| Op::Register { broker, restart }),
        10 => (broker, 0..8u8, 0..20u8).prop_map(|(broker, flags, shut)| Op::Heartbeat {
            broker,
            lagging: flags & 1 == 1,
            stale: flags == 2,
            want_fence: flags == 4,
            want_shut_down: shut == 0,
        }),
        4 => (0i64..7000).prop_map(|advance_ms| Op::Tick { advance_ms }),
        2 => (0..TOPICS.len(), 1..4i32, 1..4i16, prop::option::of(any::<bool>()))
            .prop_map(|(topic, partitions, rf, unclean)| Op::CreateTopic { topic, partitions, rf, unclean }),
        8 => (0..TOPICS.len(), 0..3i32, any::<u8>(), 0..6u8)
            .prop_map(|(topic, partition, members, stale)| Op::Alter { topic, partition, members, stale }),
        1 => Just(Op::Failover),
    ]
}

/// Interesting states reached (stateright's Sometimes).
#[derive(Default, Debug)]
struct Marks {
    leader_changes: usize,
    leaderless: usize,
    unclean_elections: usize,
    shutdowns_completed: usize,
    duplicate_registrations: usize,
    isr_expansions: usize,
}

struct World {
    config: ControllerConfig,
    active: Controller,
    follower: ControllerState,
    offset: i64,
    now_ms: i64,
    rng: ChaCha8Rng,
    incarnations: BTreeMap<i32, u128>,
    next_incarnation: u128,
    epochs: BTreeMap<i32, i64>,
    marks: Marks,
}

impl World {
    fn new(seed: u64) -> Self {
        let config = ControllerConfig::new(100, "model");
        World {
            active: Controller::new(config.clone(), ControllerState::default(), 0),
            config,
            follower: ControllerState::default(),
            offset: -1,
            now_ms: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            incarnations: BTreeMap::new(),
            next_incarnation: 1,
            epochs: BTreeMap::new(),
            marks: Marks::default(),
        }
    }

    /// Commits one result's records as one Raft entry and checks the invariants against the state before.
    fn commit(&mut self, records: Vec<Record>) {
        if records.is_empty() {
            return;
        }
        let before = self.active.state().clone();
        self.offset += 1;
        self.active
            .replay_all(self.offset, &records)
            .expect("the active controller replays its records");
        for r in decode_records(&encode_records(&records)).expect("records decode") {
            self.follower
                .replay(self.offset, &r)
                .expect("the follower replays the log");
        }
        assert_eq!(self.active.state(), &self.follower, "replay is deterministic");
        check_records(&before, &records, &mut self.marks);
        check_state(&before, self.active.state(), &mut self.marks);
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Register { broker, restart } => self.register(*broker, *restart),
            Op::Heartbeat {
                broker,
                lagging,
                stale,
                want_fence,
                want_shut_down,
            } => self.heartbeat(*broker, *lagging, *stale, *want_fence, *want_shut_down),
            Op::Tick { advance_ms } => {
                self.now_ms += advance_ms;
                let r = self.active.tick(self.now_ms);
                self.commit(r.records);
            }
            Op::CreateTopic {
                topic,
                partitions,
                rf,
                unclean,
            } => self.create(*topic, *partitions, *rf, *unclean),
            Op::Alter {
                topic,
                partition,
                members,
                stale,
            } => self.alter(*topic, *partition, *members, *stale),
            Op::Failover => {
                self.active = Controller::new(self.config.clone(), self.follower.clone(), self.now_ms);
            }
        }
    }

    fn register(&mut self, broker: i32, restart: bool) {
        if restart || !self.incarnations.contains_key(&broker) {
            self.incarnations.insert(broker, self.next_incarnation);
            self.next_incarnation += 1;
        }
        let req = BrokerRegistrationRequest {
            broker_id: broker,
            incarnation_id: Uuid::from_u128(self.incarnations[&broker]),
            host: format!("broker-{broker}"),
            port: 9092,
            rack: None,
        };
        let live_session = self.active.has_valid_session(broker, self.now_ms);
        let old = self.active.state().brokers.get(&broker).map(|r| r.incarnation_id);
        let r = self.active.register_broker(req.clone(), self.now_ms);
        let refused = live_session && old.is_some_and(|i| i != req.incarnation_id);
        if refused {
            assert_eq!(r.response.error, Some(ResponseError::DuplicateBrokerRegistration));
            assert!(r.records.is_empty());
            self.marks.duplicate_registrations += 1;
            return;
        }
        assert_eq!(r.response.error, None, "{req:?}");
        self.epochs.insert(broker, r.response.broker_epoch);
        self.commit(r.records);
        let reg = &self.active.state().brokers[&broker];
        assert!(reg.fenced && reg.epoch == self.epochs[&broker], "{reg:?}");
    }

    fn heartbeat(&mut self, broker: i32, lagging: bool, stale: bool, want_fence: bool, want_shut_down: bool) {
        let Some(epoch) = self.epochs.get(&broker).copied() else {
            return;
        };
        let registration_offset = self.active.state().brokers[&broker].registration_offset;
        let req = BrokerHeartbeatRequest {
            broker_id: broker,
            broker_epoch: if stale { epoch - 1 } else { epoch },
            current_metadata_offset: if lagging { registration_offset - 1 } else { self.offset },
            want_fence,
            want_shut_down,
        };
        let r = self.active.heartbeat(req, self.now_ms);
        if stale {
            assert_eq!(r.response.error, Some(ResponseError::StaleBrokerEpoch));
            assert!(r.records.is_empty());
            return;
        }
        assert_eq!(r.response.error, None);
        let should_shut_down = r.response.should_shut_down;
        self.commit(r.records);
        if should_shut_down {
            let reg = &self.active.state().brokers[&broker];
            assert!(reg.fenced, "a broker told to shut down is fenced: {reg:?}");
            let led: Vec<_> = self
                .active
                .state()
                .partitions()
                .filter(|(_, _, p)| p.leader == broker)
                .collect();
            assert!(led.is_empty(), "broker {broker} told to shut down still leads {led:?}");
            self.marks.shutdowns_completed += 1;
        }
    }

    fn create(&mut self, topic: usize, partitions: i32, rf: i16, unclean: Option<bool>) {
        let configs = unclean
            .map(|u| (UNCLEAN_LEADER_ELECTION_ENABLE.to_string(), u.to_string()))
            .into_iter()
            .collect();
        let topic = CreatableTopic {
            name: TOPICS[topic].to_string(),
            num_partitions: partitions,
            replication_factor: rf,
            configs,
        };
        let active = self.active.state().active_brokers().len();
        let exists = self.active.state().topic_ids.contains_key(&topic.name);
        let req = CreateTopicsRequest {
            topics: vec![topic],
            validate_only: false,
        };
        let r = self.active.create_topics(req, self.now_ms, &mut self.rng);
        let expected = if exists {
            Some(ResponseError::TopicAlreadyExists)
        } else if rf as usize > active {
            Some(ResponseError::InvalidReplicationFactor)
        } else {
            None
        };
        assert_eq!(r.response.topics[0].error, expected);
        assert_eq!(r.records.is_empty(), expected.is_some());
        self.commit(r.records);
    }

    /// The leader proposes an ISR of itself plus the replicas picked by `members`; `stale` 1 sends an old
    /// leader epoch, 2 an old partition epoch.
    fn alter(&mut self, topic: usize, partition: i32, members: u8, stale: u8) {
        let state = self.active.state();
        let Some(topic_id) = state.topic_ids.get(TOPICS[topic]).copied() else {
            return;
        };
        let Some(part) = state.partition(topic_id, partition).cloned() else {
            return;
        };
        if part.leader == NO_LEADER {
            return;
        }
        let mut isr = vec![part.leader];
        for (i, b) in part.replicas.iter().enumerate() {
            if members & (1 << i) != 0 && *b != part.leader {
                isr.push(*b);
            }
        }
        let new_isr = isr
            .iter()
            .map(|b| IsrMember {
                broker_id: *b,
                broker_epoch: -1,
            })
            .collect();
        let data = AlterPartitionData {
            topic_id,
            partition,
            leader_epoch: part.leader_epoch - i32::from(stale == 1),
            partition_epoch: part.partition_epoch - i32::from(stale == 2),
            new_isr,
        };
        let req = AlterPartitionRequest {
            broker_id: part.leader,
            broker_epoch: state.brokers[&part.leader].epoch,
            partitions: vec![data],
        };
        let all_active = isr.iter().all(|b| state.is_active(*b));
        let r = self.active.alter_partition(req);
        let result = &r.response.partitions[0];
        let expected = match stale {
            1 => Some(ResponseError::FencedLeaderEpoch),
            2 => Some(ResponseError::InvalidUpdateVersion),
            _ if !all_active => Some(ResponseError::IneligibleReplica),
            _ => None,
        };
        assert_eq!(result.error, expected, "{isr:?} {part:?}");
        if expected.is_some() {
            assert!(r.records.is_empty());
        } else if isr.len() > part.isr.len() {
            self.marks.isr_expansions += 1;
        }
        self.commit(r.records);
    }
}

/// Record-level checks: unclean elections only where enabled, and they reset the ISR to the new leader.
fn check_records(before: &ControllerState, records: &[Record], marks: &mut Marks) {
    for r in records {
        if let Record::PartitionChange {
            topic_id,
            isr,
            leader,
            unclean: true,
            ..
        } = r
        {
            let name = &before.topics[topic_id].name;
            assert_eq!(
                before.topic_config(name, UNCLEAN_LEADER_ELECTION_ENABLE),
                Some("true"),
                "unclean election in topic {name} without unclean.leader.election.enable"
            );
            let leader = leader.expect("an unclean election names a leader");
            assert_eq!(isr.as_deref(), Some(&[leader][..]), "{r:?}");
            marks.unclean_elections += 1;
        }
    }
}

fn check_state(before: &ControllerState, after: &ControllerState, marks: &mut Marks) {
    for (topic_id, p, part) in after.partitions() {
        let at = format!("{topic_id}-{p}: {part:?}");
        assert!(!part.isr.is_empty(), "empty ISR at {at}");
        assert!(
            part.isr.iter().all(|b| part.replicas.contains(b)),
            "ISR ⊄ replicas at {at}"
        );
        let mut isr = part.isr.clone();
        isr.sort_unstable();
        isr.dedup();
        assert_eq!(isr.len(), part.isr.len(), "ISR repeats a broker at {at}");
        if part.leader == NO_LEADER {
            marks.leaderless += 1;
        } else {
            assert!(part.isr.contains(&part.leader), "leader ∉ ISR at {at}");
            let reg = &after.brokers[&part.leader];
            assert!(!reg.fenced, "led by a fenced broker at {at}");
            assert!(!reg.in_controlled_shutdown, "led by a broker shutting down at {at}");
        }
        let Some(old) = before.partition(topic_id, p) else {
            continue;
        };
        assert!(
            part.leader_epoch >= old.leader_epoch,
            "leader epoch went back at {at} from {old:?}"
        );
        assert!(
            part.partition_epoch >= old.partition_epoch,
            "partition epoch went back at {at} from {old:?}"
        );
        if part.leader != old.leader {
            assert!(
                part.leader_epoch > old.leader_epoch,
                "new leader, same epoch at {at} from {old:?}"
            );
            marks.leader_changes += 1;
        }
        let name = &after.topics[&topic_id].name;
        let unclean = after.topic_config(name, UNCLEAN_LEADER_ELECTION_ENABLE) == Some("true");
        if !unclean && part.leader != NO_LEADER && part.leader != old.leader {
            assert!(
                old.isr.contains(&part.leader),
                "clean leader outside the previous ISR at {at} from {old:?}"
            );
        }
    }
}

fn run(seed: u64, ops: &[Op]) -> Marks {
    let mut world = World::new(seed);
    for op in ops {
        world.step(op);
    }
    world.marks
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_metadata_state_machine_keeps_kafkas_invariants(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..120)) {
        run(seed, &ops);
    }
}

/// The model is not vacuous: over fixed seeds it reaches leader changes, leaderless partitions, unclean
/// elections, completed controlled shutdowns, refused duplicate registrations and ISR expansions.
#[test]
fn the_model_reaches_the_interesting_states() {
    let mut runner = TestRunner::deterministic();
    let strategy = (any::<u64>(), prop::collection::vec(op(), 60..120));
    let mut total = Marks::default();
    for _ in 0..200 {
        let (seed, ops) = strategy.new_tree(&mut runner).expect("a value").current();
        let m = run(seed, &ops);
        total.leader_changes += m.leader_changes;
        total.leaderless += m.leaderless;
        total.unclean_elections += m.unclean_elections;
        total.shutdowns_completed += m.shutdowns_completed;
        total.duplicate_registrations += m.duplicate_registrations;
        total.isr_expansions += m.isr_expansions;
    }
    assert!(total.leader_changes > 0, "{total:?}");
    assert!(total.leaderless > 0, "{total:?}");
    assert!(total.unclean_elections > 0, "{total:?}");
    assert!(total.shutdowns_completed > 0, "{total:?}");
    assert!(total.duplicate_registrations > 0, "{total:?}");
    assert!(total.isr_expansions > 0, "{total:?}");
}
