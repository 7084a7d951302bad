//! The simulation of one run inside madsim (built only with `--cfg madsim`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle, Runtime};
use uuid::Uuid;

use super::{producer_name, DiskDump, NodeDisk, RunError, RunOptions, SimOutput};
use crate::broker::BrokerConfig;
use crate::checker::{FinalState, ReplicaLog};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::online::OnlineInvariants;
use crate::client::connection::{Connection, ConnectionConfig};
use crate::client::{Client, ClientConfig, ClientError, OffsetSpec};
use crate::controller::ControllerConfig;
use crate::history::{OpBody, OpType, ReadRecord};
use crate::metadata::{BrokerInfo, MetadataImage, PartitionImage, TopicImage};
use crate::node::broker::{
    run_broker, BrokerExit, BrokerNodeConfig, ControllerLinkConfig, NodeClock, Observer, ResponseHook,
};
use crate::node::controller::{run_controller, ControllerNodeConfig};
use crate::rt;
use crate::scenario::{FaultKind, FaultParams, FaultSpec, Scenario, Swarm, Target, TimeSpec};
use crate::sim::disk::{SimDisk, SimDiskConfig};
use crate::sim::faults::ResponseFaultSwitch;
use crate::sim::recorder::Recorder;
use crate::sim::{
    self, broker_ip, broker_name, client_ip, controller_id, controller_ip, controller_name, derive_seed, logscan,
    BROKER_PORT, CONTROLLER_PORT,
};
use crate::types::TopicPartition;
use crate::workload::consumer::{self, ConsumerWorkload};
use crate::workload::producer::{self, ProducerWorkload};

mod nemesis;

use nemesis::Pending;

/// A fault of the plan with its times drawn.
#[derive(Debug, Clone)]
struct PlannedFault {
    at_us: u64,
    spec: FaultSpec,
    restart_after_us: Option<u64>,
    /// For lasting faults: when they are undone, after `at_us`.
    duration_us: Option<u64>,
    /// The `[[faults]]` entry it comes from (`None`: drawn by the swarm).
    origin: Option<usize>,
}

/// The plan a seed draws, every time resolved (`gregor shrink` writes it out as explicit faults).
pub(super) fn drawn_faults(s: &Scenario, seed: u64) -> Vec<(Option<usize>, FaultSpec)> {
    draw_plan(s, seed).0.into_iter().map(|p| (p.origin, p.spec)).collect()
}

/// Draws every seeded value of the plan, before the simulation starts.
fn draw_plan(s: &Scenario, seed: u64) -> (Vec<PlannedFault>, BTreeMap<String, f64>) {
    use rand::Rng;
    let mut rng = sim::stream(seed, "fault-plan");
    let mut drawn = BTreeMap::new();
    let mut plan = vec![];
    for (i, f) in s.faults.iter().enumerate() {
        let at = f.at_s.resolve(rng.random::<f64>());
        let restart = f.restart_after_s.map(|r| r.resolve(rng.random::<f64>()));
        let duration = f.duration_s.map(|d| d.resolve(rng.random::<f64>()));
        drawn.insert(format!("faults[{i}].at_s"), round_ms(at));
        if let Some(r) = restart {
            drawn.insert(format!("faults[{i}].restart_after_s"), round_ms(r));
        }
        if let Some(d) = duration {
            drawn.insert(format!("faults[{i}].duration_s"), round_ms(d));
        }
        plan.push(PlannedFault {
            at_us: (at * 1e6) as u64,
            spec: FaultSpec {
                at_s: TimeSpec::At(at),
                restart_after_s: restart.map(TimeSpec::At),
                duration_s: duration.map(TimeSpec::At),
                ..f.clone()
            },
            restart_after_us: restart.map(|r| (r * 1e6) as u64),
            duration_us: duration.map(|d| (d * 1e6) as u64),
            origin: Some(i),
        });
    }
    if let Some(swarm) = &s.file.swarm {
        draw_swarm(s, swarm, seed, &mut plan, &mut drawn);
    }
    plan.sort_by_key(|p| p.at_us);
    (plan, drawn)
}

/// Swarm testing: this seed's fault rate, then each fault's time, kind and parameters, from the scenario's
/// ranges. Its own stream, so the fixed plan's draws do not move.
fn draw_swarm(s: &Scenario, swarm: &Swarm, seed: u64, plan: &mut Vec<PlannedFault>, drawn: &mut BTreeMap<String, f64>) {
    use rand::Rng;
    let mut rng = sim::stream(seed, "swarm");
    let within = |rng: &mut rand_chacha::ChaCha8Rng, [lo, hi]: [f64; 2]| lo + (hi - lo) * rng.random::<f64>();
    let kinds = crate::scenario::swarm_kinds(swarm);
    let safety_s = *s.file.phases.safety_s.get_ref();
    let per_minute = within(&mut rng, *swarm.faults_per_minute.get_ref());
    let expected = per_minute * safety_s / 60.0;
    let count = expected.floor() as usize + usize::from(rng.random::<f64>() < expected.fract());
    drawn.insert("swarm.faults_per_minute".into(), round_ms(per_minute));
    drawn.insert("swarm.faults".into(), count as f64);
    for i in 0..count {
        let at = rng.random::<f64>() * safety_s * 0.9;
        let kind = kinds[rng.random_range(0..kinds.len())];
        let mut params = FaultParams::default();
        let (mut restart, mut duration) = (None, None);
        if kind.stops_the_node() {
            restart = Some(within(&mut rng, *swarm.restart_after_s.get_ref()));
        } else if !kind.is_instant() {
            duration = Some(within(&mut rng, *swarm.duration_s.get_ref()));
        }
        match kind {
            FaultKind::PacketLoss => params.rate = within(&mut rng, *swarm.packet_loss.get_ref()),
            FaultKind::DropResponse | FaultKind::ConnReset | FaultKind::DiskEio => {
                params.rate = within(&mut rng, *swarm.rate.get_ref())
            }
            FaultKind::Latency => {
                let [lo, hi] = *swarm.latency_ms.get_ref();
                let a = within(&mut rng, [lo, hi]);
                params.latency_ms = (a, within(&mut rng, [a, hi]));
            }
            FaultKind::DiskSlow => {
                let [lo, hi] = *swarm.factor.get_ref();
                params.factor = rng.random_range(lo..=hi);
            }
            FaultKind::ClockSkew => {
                let [lo, hi] = *swarm.skew_ms.get_ref();
                let sign = if rng.random::<bool>() { 1 } else { -1 };
                params.skew_ms = sign * rng.random_range(lo..=hi);
            }
            _ => {}
        }
        drawn.insert(format!("swarm[{i}].at_s"), round_ms(at));
        drawn.insert(format!("swarm[{i}].kind#{}", kind.name()), 1.0);
        if let Some(r) = restart {
            drawn.insert(format!("swarm[{i}].restart_after_s"), round_ms(r));
        }
        if let Some(d) = duration {
            drawn.insert(format!("swarm[{i}].duration_s"), round_ms(d));
        }
        let spec = FaultSpec {
            at_s: TimeSpec::At(at),
            kind,
            target: Target::RandomBroker,
            restart_after_s: restart.map(TimeSpec::At),
            duration_s: duration.map(TimeSpec::At),
            params,
        };
        plan.push(PlannedFault {
            at_us: (at * 1e6) as u64,
            spec,
            restart_after_us: restart.map(|r| (r * 1e6) as u64),
            duration_us: duration.map(|d| (d * 1e6) as u64),
            origin: None,
        });
    }
}

fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// Runs the simulation on a fresh OS thread (outside any simulation, where threads are fine): std seeds its
/// `HashMap` keys once per thread, at the first `RandomState`, and madsim can make them deterministic only
/// if its runtime is that first one. On the CLI's thread, argument parsing and logging got there first.
///
/// `then` runs on the same thread once the runtime is dropped, so what it allocates can reuse the simulation's
/// freed memory (the allocator keeps a heap per thread).
pub(super) fn simulate<T: Send>(
    s: &Scenario,
    seed: u64,
    opts: RunOptions,
    then: impl FnOnce(SimOutput) -> T + Send,
) -> Result<T, RunError> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name(format!("gregor-seed-{seed}"))
            .stack_size(64 << 20)
            .spawn_scoped(scope, move || simulate_here(s, seed, opts).map(then))
            .map_err(|e| RunError::Setup(format!("cannot start the simulation thread: {e}")))?
            .join()
            .map_err(|_| RunError::Setup("the simulation panicked (see the message above)".into()))?
    })
}

fn simulate_here(s: &Scenario, seed: u64, opts: RunOptions) -> Result<SimOutput, RunError> {
    let (plan, drawn) = draw_plan(s, seed);
    if opts.announce {
        eprintln!("gregor run {} --seed {seed} (scenario {})", s.path, &s.hash[..12]);
        for (k, v) in &drawn {
            eprintln!("  drawn {k} = {v}");
        }
    }
    let mut config = madsim::Config::default();
    let [lo, hi] = *s.file.network.latency_ms.get_ref();
    let lo = Duration::from_secs_f64(lo / 1e3);
    let hi = Duration::from_secs_f64(hi / 1e3).max(lo + Duration::from_micros(1));
    config.net.send_latency = lo..hi;
    let rt = Runtime::with_seed_and_config(seed, config);
    // The world (and its recorder's clock) must be made inside the simulation: outside it, `Instant::now`
    // is the real clock.
    let scenario = s.clone();
    let dump = opts.dump_disks;
    let mut out = rt.block_on(async move {
        let mut world = World::new(scenario, seed, plan);
        world.dump = dump;
        world.run(opts.halt_on_violation).await
    });
    out.drawn = drawn;
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    Broker,
    Controller,
}

/// One Kafka process of the cluster (broker or controller) and what the runner keeps about it.
struct NodeSlot {
    kind: NodeKind,
    /// `node.id` (brokers 1..N, controllers 3001..).
    id: i32,
    name: String,
    node: NodeHandle,
    disk: SimDisk,
    image: Arc<Mutex<MetadataImage>>,
    incarnation: Arc<AtomicU32>,
    responses: ResponseFaultSwitch,
    clock: NodeClock,
    /// Why the broker's last incarnation stopped by itself, if it did.
    last_exit: Arc<Mutex<Option<BrokerExit>>>,
    up: bool,
}

/// What the phases measured, kept when a halt cuts them short.
#[derive(Default)]
struct Phases {
    final_state: FinalState,
    safety_sim_seconds: f64,
    safety_wall_seconds: f64,
    safety_messages: u64,
}

struct World {
    s: Scenario,
    seed: u64,
    plan: Vec<PlannedFault>,
    rec: Recorder,
    nodes: Vec<NodeSlot>,
    marks: BTreeMap<String, u64>,
    /// Fault ends and restarts due, by simulated µs.
    pending: BTreeMap<u64, Vec<Pending>>,
    /// Lasting faults in force: (index in the plan, node id), undone at their end or at heal.
    active: Vec<(usize, i32)>,
    /// The workload's client nodes (swizzle clogs them too).
    clients: Vec<madsim::task::NodeId>,
    /// Each partition's replicas (from the static image, or from the quorum once the topics exist).
    assignment: BTreeMap<TopicPartition, Vec<i32>>,
    /// Topics created during the safety phase: (`create_at_s`, request).
    late_topics: Vec<(f64, CreatableTopic)>,
    /// Links a `halves` or `ring` partition clogged, by fault, restored at its end.
    cut_links: BTreeMap<usize, Vec<(madsim::task::NodeId, madsim::task::NodeId)>>,
    /// Workload client nodes by name (`client:NAME` targets).
    client_nodes: BTreeMap<String, madsim::task::NodeId>,
    /// Crashed client nodes, restarted later or at heal.
    clients_down: std::collections::BTreeSet<String>,
    /// Lasting faults on clients in force: (index in the plan, client name).
    active_clients: Vec<(usize, String)>,
    /// Copy every node's disk (`gregor replay --dump-disks`).
    dump: Option<DiskDump>,
    /// The runner's own helper nodes (probes, admin, drain), stopped with the others at the end.
    helpers: Mutex<Vec<madsim::task::NodeId>>,
}

impl World {
    fn new(s: Scenario, seed: u64, plan: Vec<PlannedFault>) -> World {
        let rec = Recorder::new();
        // Each record sent is an invoke and a completion, and moves some replica's log end or high watermark
        // about twice (measured on the leader-crash scenarios); reads and faults add a little.
        let safety_s = *s.file.phases.safety_s.get_ref();
        let records: f64 = s
            .file
            .producers
            .iter()
            .map(|p| *p.records_per_s.get_ref() * safety_s)
            .sum();
        rec.reserve((2.1 * records) as usize + 4096, (2.5 * records) as usize + 4096);
        World {
            s,
            seed,
            plan,
            rec,
            nodes: vec![],
            marks: BTreeMap::new(),
            pending: BTreeMap::new(),
            active: vec![],
            clients: vec![],
            assignment: BTreeMap::new(),
            late_topics: vec![],
            cut_links: BTreeMap::new(),
            client_nodes: BTreeMap::new(),
            clients_down: Default::default(),
            active_clients: vec![],
            dump: None,
            helpers: Mutex::new(vec![]),
        }
    }

    fn has_quorum(&self) -> bool {
        *self.s.file.cluster.controllers.get_ref() > 0
    }

    fn brokers(&self) -> impl Iterator<Item = &NodeSlot> {
        self.nodes.iter().filter(|n| n.kind == NodeKind::Broker)
    }

    /// `controller.quorum.voters`: id and controller listener address of every controller.
    fn voters(&self) -> BTreeMap<i32, std::net::SocketAddr> {
        (1..=*self.s.file.cluster.controllers.get_ref() as i32)
            .map(|n| {
                (
                    controller_id(n),
                    std::net::SocketAddr::new(controller_ip(n), CONTROLLER_PORT),
                )
            })
            .collect()
    }

    fn start_controllers(&mut self) {
        let handle = Handle::current();
        let (controller, raft) = crate::scenario::controller_settings(&self.s.file.cluster);
        let voters = self.voters();
        for n in 1..=*self.s.file.cluster.controllers.get_ref() as i32 {
            let id = controller_id(n);
            let name = controller_name(n);
            let disk = SimDisk::new(
                &name,
                derive_seed(self.seed, &format!("disk/{name}")),
                SimDiskConfig::default(),
            );
            let incarnation = Arc::new(AtomicU32::new(0));
            let last_exit: Arc<Mutex<Option<BrokerExit>>> = Arc::new(Mutex::new(None));
            let core_seed = derive_seed(self.seed, &format!("controller-core/{name}"));
            let cfg = ControllerNodeConfig {
                node_id: id,
                voters: voters.clone(),
                listen_addr: std::net::SocketAddr::from(([0, 0, 0, 0], CONTROLLER_PORT)),
                controller: ControllerConfig {
                    node_id: id,
                    ..controller.clone()
                },
                raft: crate::raft::RaftConfig {
                    node_id: id,
                    voters: voters.keys().copied().collect(),
                    ..raft.clone()
                },
                seed: core_seed,
                observer: Some(Observer(Arc::new(self.rec.clone()))),
                node_name: name.clone(),
                incarnation: 0,
            };
            let node = {
                let (disk, incarnation) = (disk.clone(), incarnation.clone());
                handle
                    .create_node()
                    .name(&name)
                    .ip(controller_ip(n))
                    .init(move || {
                        let mut cfg = cfg.clone();
                        let inc = incarnation.load(Ordering::Relaxed);
                        cfg.incarnation = inc;
                        cfg.seed = derive_seed(cfg.seed, &format!("incarnation/{inc}"));
                        let disk = disk.clone();
                        async move {
                            let exit = run_controller(cfg, Box::new(disk)).await;
                            tracing::warn!("controller {id} stopped: {exit:?}");
                        }
                    })
                    .build()
            };
            self.nodes.push(NodeSlot {
                kind: NodeKind::Controller,
                id,
                name,
                node,
                disk,
                image: Arc::new(Mutex::new(MetadataImage::default())),
                incarnation,
                responses: ResponseFaultSwitch::new(derive_seed(self.seed, &format!("responses/controller-{n}"))),
                clock: NodeClock::default(),
                last_exit,
                up: true,
            });
        }
    }

    fn image(&self) -> MetadataImage {
        let brokers = *self.s.file.cluster.brokers.get_ref() as i32;
        let mut rng = sim::stream(self.seed, "topic-ids");
        let mut image = MetadataImage {
            cluster_id: "gregor".into(),
            controller_id: -1,
            ..MetadataImage::default()
        };
        for id in 1..=brokers {
            let info = BrokerInfo {
                id,
                host: broker_ip(id).to_string(),
                port: BROKER_PORT,
                rack: None,
                fenced: false,
                epoch: -1,
                in_controlled_shutdown: false,
            };
            image.brokers.insert(id, info);
        }
        for t in &self.s.file.topics {
            use rand::Rng;
            let topic_id = Uuid::from_bytes(rng.random());
            let rf = *t.replication_factor.get_ref() as i32;
            let partitions = (0..*t.partitions.get_ref() as i32)
                .map(|p| {
                    let replicas: Vec<i32> = (0..rf).map(|r| (p + r) % brokers + 1).collect();
                    let leader = replicas[0];
                    (
                        p,
                        PartitionImage {
                            isr: replicas.clone(),
                            replicas,
                            leader,
                            leader_epoch: 0,
                            partition_epoch: 0,
                        },
                    )
                })
                .collect();
            let configs = self.s.topic_configs.get(t.name.get_ref()).cloned().unwrap_or_default();
            image.topics.insert(
                t.name.get_ref().clone(),
                TopicImage {
                    topic_id,
                    partitions,
                    configs,
                },
            );
        }
        image
    }

    fn topic_partitions(&self) -> Vec<TopicPartition> {
        self.s
            .file
            .topics
            .iter()
            .flat_map(|t| {
                (0..*t.partitions.get_ref() as i32).map(move |p| TopicPartition::new(t.name.get_ref().clone(), p))
            })
            .collect()
    }

    fn start_brokers(&mut self) {
        let handle = Handle::current();
        let image = if self.has_quorum() {
            MetadataImage {
                cluster_id: "gregor".into(),
                ..MetadataImage::default()
            }
        } else {
            let image = self.image();
            self.assignment = image_assignment(&image);
            image
        };
        let voters = self.voters();
        let has_quorum = self.has_quorum();
        let seed = self.seed;
        let broker_config = crate::scenario::broker_config(&self.s.file.cluster);
        for id in 1..=*self.s.file.cluster.brokers.get_ref() as i32 {
            let name = broker_name(id);
            let disk = SimDisk::new(
                &name,
                derive_seed(self.seed, &format!("disk/{name}")),
                SimDiskConfig::default(),
            );
            let image = Arc::new(Mutex::new(image.clone()));
            let responses = ResponseFaultSwitch::new(derive_seed(self.seed, &format!("responses/{name}")));
            let last_exit: Arc<Mutex<Option<BrokerExit>>> = Arc::new(Mutex::new(None));
            let clock = NodeClock::default();
            let incarnation = Arc::new(AtomicU32::new(0));
            let mut map: BTreeMap<String, toml::Value> = broker_config
                .iter()
                .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())))
                .collect();
            map.insert("node.id".into(), toml::Value::Integer(id as i64));
            let mut config = match BrokerConfig::from_map(&map) {
                Ok(c) => c,
                Err(e) => panic!("broker config was validated with the scenario, yet: {e}"),
            };
            for (bug, on) in &self.s.file.bugs {
                if *on.get_ref() {
                    // The validator refused unknown switches.
                    config.bugs.set(bug.get_ref());
                }
            }
            let core_seed = derive_seed(self.seed, &format!("broker-core/{name}"));
            let node = {
                let (disk, image, rec, incarnation, name) = (
                    disk.clone(),
                    image.clone(),
                    self.rec.clone(),
                    incarnation.clone(),
                    name.clone(),
                );
                let hook = ResponseHook(Arc::new(responses.clone()));
                let node_clock = clock.clone();
                let voters = voters.clone();
                let last_exit = last_exit.clone();
                handle
                    .create_node()
                    .name(&name)
                    .ip(broker_ip(id))
                    .init(move || {
                        let image = image.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        let mut cfg = BrokerNodeConfig::new(config.clone(), image, core_seed);
                        cfg.observer = Some(Observer(Arc::new(rec.clone())));
                        cfg.node_name = name.clone();
                        cfg.incarnation = incarnation.load(Ordering::Relaxed);
                        cfg.response_faults = Some(hook.clone());
                        cfg.clock = node_clock.clone();
                        if has_quorum {
                            let inc = cfg.incarnation;
                            let incarnation_id = Uuid::from_u64_pair(
                                derive_seed(seed, &format!("incarnation-id/{name}")),
                                u64::from(inc),
                            );
                            cfg.controllers = Some(ControllerLinkConfig {
                                controllers: voters.clone(),
                                cluster_id: "gregor".into(),
                                advertised_host: broker_ip(id).to_string(),
                                advertised_port: BROKER_PORT,
                                incarnation_id,
                            });
                        }
                        let (disk, last_exit) = (disk.clone(), last_exit.clone());
                        async move {
                            let exit = run_broker(cfg, Box::new(disk)).await;
                            tracing::warn!("broker {id} stopped: {exit:?}");
                            *last_exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(exit);
                        }
                    })
                    .build()
            };
            self.nodes.push(NodeSlot {
                kind: NodeKind::Broker,
                id,
                name,
                node,
                disk,
                image,
                incarnation,
                responses,
                clock,
                last_exit,
                up: true,
            });
        }
    }

    async fn run(mut self, halt_on_violation: bool) -> SimOutput {
        let net = NetSim::current();
        self.rec.check_online(Box::new(OnlineInvariants::default()));
        let rec = self.rec.clone();
        let mut p = Phases::default();
        // The first broken online invariant ends the run there when asked: the disks and the trace stay as
        // they were at that event.
        let halted = tokio::select! {
            biased;
            () = rec.violated(), if halt_on_violation => true,
            () = self.phases(&mut p) => false,
        };
        // The moment of the event that broke the invariant (the wake-up may come a tick later).
        let halted_at_us = halted.then(|| self.rec.violations().first().map_or(0, |v| v.time_us));
        if halted {
            self.rec
                .op("runner", OpType::Info, OpBody::Phase { name: "halted".into() }, None);
        }
        let final_state = p.final_state;
        let counts: Vec<_> = self.brokers().map(|b| b.responses.counts()).collect();
        for c in counts {
            if c.produce_dropped > 0 {
                *self.marks.entry("produce-response-dropped".into()).or_default() += c.produce_dropped;
            }
            if c.produce_reset > 0 {
                *self
                    .marks
                    .entry("connection-reset-instead-of-produce-response".into())
                    .or_default() += c.produce_reset;
            }
        }
        for (mark, n) in self.rec.take_marks() {
            *self.marks.entry(mark).or_default() += n;
        }
        let sim_seconds = self.rec.now_us() as f64 / 1e6;
        let online_violations = self.rec.violations();
        let history = self.rec.take();
        let disks = self.dumped_disks();
        for (mark, n) in metadata_marks(&history.metadata_states) {
            *self.marks.entry(mark.into()).or_default() += n;
        }
        let messages = net.stat().msg_count;
        self.stop_every_node().await;
        SimOutput {
            disks,
            history,
            final_state,
            marks: self.marks,
            drawn: BTreeMap::new(),
            sim_seconds,
            safety_sim_seconds: p.safety_sim_seconds,
            safety_wall_seconds: p.safety_wall_seconds,
            messages,
            safety_messages: p.safety_messages,
            online_violations,
            halted_at_us,
        }
    }

    /// Setup, safety, heal, liveness and drain, in order.
    async fn phases(&mut self, p: &mut Phases) {
        if self.has_quorum() {
            self.start_controllers();
        }
        self.start_brokers();
        self.arm_disk_dump();
        let net = NetSim::current();
        if self.has_quorum() {
            self.create_topics().await;
        } else {
            self.wait_until_serving().await;
        }
        let safety_start_us = self.rec.now_us();
        let safety_wall = rt::wall_clock();
        let safety_msgs = net.stat().msg_count;
        self.rec
            .op("runner", OpType::Info, OpBody::Phase { name: "safety".into() }, None);
        let safety_end_us = safety_start_us + (*self.s.file.phases.safety_s.get_ref() * 1e6) as u64;
        let producers = self.start_producers(safety_start_us, safety_end_us);
        self.start_consumers(safety_end_us);
        let late_topics = self.start_late_topics(safety_start_us);
        self.nemesis(safety_start_us, safety_end_us).await;
        for p in producers {
            let _ = p.await;
        }
        if let Some(t) = late_topics {
            let created = t.await.unwrap_or_default();
            if !created.is_empty() {
                *self.marks.entry("topic-created-during-the-run".into()).or_default() += 1;
            }
            self.assignment.extend(created);
        }
        p.safety_wall_seconds = (rt::wall_clock() - safety_wall).as_secs_f64();
        p.safety_sim_seconds = (self.rec.now_us() - safety_start_us) as f64 / 1e6;
        p.safety_messages = net.stat().msg_count - safety_msgs;

        self.rec
            .op("runner", OpType::Info, OpBody::Phase { name: "heal".into() }, None);
        self.heal();
        rt::sleep(Duration::from_secs_f64(*self.s.file.phases.heal_s.get_ref())).await;

        self.rec.op(
            "runner",
            OpType::Info,
            OpBody::Phase {
                name: "liveness".into(),
            },
            None,
        );
        p.final_state.liveness_failures = self.liveness().await;
        if self.s.file.phases.drain {
            self.rec
                .op("runner", OpType::Info, OpBody::Phase { name: "drain".into() }, None);
            let drain_failures = self.drain().await;
            p.final_state.liveness_failures.extend(drain_failures);
            p.final_state.replica_logs = self.replica_logs();
        }
    }

    /// Arms a copy of every node's disk at the dump time (`--dump-at`): taken inside the simulation at that
    /// time, without a task or a timer of its own, so the run stays the same.
    fn arm_disk_dump(&self) {
        let Some(DiskDump::AtUs(at_us)) = self.dump else { return };
        let at = rt::Instant::now() + Duration::from_micros(at_us.saturating_sub(self.rec.now_us()));
        for n in &self.nodes {
            n.disk.snapshot_at(at);
        }
    }

    /// The disk copies the run was asked for: brokers, then controllers. At a time past the run's end there
    /// are none.
    fn dumped_disks(&self) -> Vec<NodeDisk> {
        let Some(dump) = self.dump else { return vec![] };
        let mut out = vec![];
        for n in self
            .brokers()
            .chain(self.nodes.iter().filter(|n| n.kind == NodeKind::Controller))
        {
            let disk = match dump {
                DiskDump::AtEnd => Some(n.disk.snapshot()),
                DiskDump::AtUs(at_us) => {
                    // Due now if the time has come: the access below takes it.
                    let taken = n.disk.disarm_snapshot();
                    taken.or_else(|| (at_us <= self.rec.now_us()).then(|| n.disk.snapshot()))
                }
            };
            if let Some(disk) = disk {
                out.push(NodeDisk {
                    node: n.name.clone(),
                    disk,
                });
            }
        }
        out
    }

    /// A helper node (liveness probe, drain) with its own IP.
    fn helper_node(&self, name: &str, n: u32) -> NodeHandle {
        let node = Handle::current()
            .create_node()
            .name(name)
            .ip(client_ip(100 + n))
            .build();
        self.helpers.lock().unwrap().push(node.id());
        node
    }

    /// Kills every node and lets the runtime drop their tasks. madsim leaks a task still waiting when the
    /// runtime is dropped (its `TaskInfo` holds the task's own waker), and with it what the task holds: a
    /// broker's disk and logs. Killed first, they are freed here, and the checker reuses that memory instead
    /// of the kernel's fresh pages. Called once the history is taken, so it changes nothing in it.
    async fn stop_every_node(&self) {
        let handle = Handle::current();
        let helpers = self.helpers.lock().unwrap().clone();
        let ids = self
            .nodes
            .iter()
            .map(|n| n.node.id())
            .chain(self.clients.iter().copied());
        for id in ids.chain(helpers) {
            handle.kill(id);
        }
        rt::sleep(Duration::from_millis(1)).await;
    }

    fn bootstrap(&self) -> Vec<String> {
        self.brokers()
            .map(|b| format!("{}:{BROKER_PORT}", broker_ip(b.id)))
            .collect()
    }

    /// Waits until every broker answers Metadata (log recovery done), at most 30 simulated seconds.
    async fn wait_until_serving(&self) {
        let node = self.helper_node("ready-probe", 1);
        let bootstrap = self.bootstrap();
        let task = node.spawn(async move {
            let mut client = Client::new(bootstrap, ClientConfig::default());
            for _ in 0..300 {
                if client.metadata(None).await.is_ok() {
                    return;
                }
                rt::sleep(Duration::from_millis(100)).await;
            }
        });
        let _ = task.await;
    }

    fn start_producers(&mut self, start_us: u64, end_us: u64) -> Vec<madsim::task::JoinHandle<()>> {
        let handle = Handle::current();
        let mut out = vec![];
        for (i, p) in self.s.file.producers.iter().enumerate() {
            let name = producer_name(&self.s, i);
            let cfg = crate::scenario::producer_config(p);
            let topic = self
                .s
                .file
                .topics
                .iter()
                .find(|t| t.name.get_ref() == p.topic.get_ref());
            let partitions = topic.map_or(1, |t| *t.partitions.get_ref() as i32);
            let acks = match cfg.get("acks").map(String::as_str) {
                Some("0") => 0,
                Some("1") => 1,
                _ => -1,
            };
            // Every producer key (Kafka's names) reaches the producer core's config.
            let client_config: BTreeMap<String, String> = cfg.clone();
            let w = ProducerWorkload {
                name: name.clone(),
                topic: p.topic.get_ref().clone(),
                partitions,
                records_per_s: *p.records_per_s.get_ref(),
                key_space: *p.key_space.get_ref(),
                tombstone_rate: *p.tombstone_rate.get_ref(),
                records: p.records.as_ref().map(|r| *r.get_ref()),
                start_at_us: start_us,
                stop_at_us: end_us,
                acks,
                linger_ms: cfg.get("linger.ms").and_then(|v| v.parse().ok()).unwrap_or(5),
                batch_size: cfg.get("batch.size").and_then(|v| v.parse().ok()).unwrap_or(16_384),
                client_config,
                bootstrap: self.bootstrap(),
                seed: derive_seed(self.seed, &format!("workload/{name}")),
            };
            let node = handle.create_node().name(&name).ip(client_ip(i as u32 + 1)).build();
            self.clients.push(node.id());
            self.client_nodes.insert(name.clone(), node.id());
            out.push(node.spawn(producer::run(w, self.rec.clone())));
        }
        out
    }

    /// One node per consumer group member (`GROUP-N`), its workload the node's init: a crash kills it, a
    /// restart runs it again as a new member. Members poll until the safety phase ends, then leave.
    fn start_consumers(&mut self, end_us: u64) {
        let handle = Handle::current();
        let mut ip = 50;
        for g in self.s.file.consumer_groups.clone() {
            let config = crate::scenario::consumer_config(&g);
            for name in crate::scenario::consumer_names(&g) {
                ip += 1;
                let w = ConsumerWorkload {
                    name: name.clone(),
                    group_id: g.group_id.get_ref().clone(),
                    topics: g.topics.iter().map(|t| t.get_ref().clone()).collect(),
                    client_config: config.clone(),
                    bootstrap: self.bootstrap(),
                    stop_at_us: end_us,
                    commit_interval_ms: *g.commit_interval_ms.get_ref(),
                    poll_timeout_ms: 100,
                    poll_pause_ms: *g.poll_pause_ms.get_ref(),
                };
                let rec = self.rec.clone();
                let node = handle
                    .create_node()
                    .name(&name)
                    .ip(client_ip(ip))
                    .init(move || consumer::run(w.clone(), rec.clone()))
                    .build();
                self.clients.push(node.id());
                self.client_nodes.insert(name, node.id());
            }
        }
    }

    /// The CreateTopics entry of each scenario topic (configs by Kafka's names), by name.
    fn creatable_topics(&self) -> Vec<(String, Option<f64>, CreatableTopic)> {
        self.s
            .file
            .topics
            .iter()
            .map(|t| {
                let name = t.name.get_ref().clone();
                let configs = self
                    .s
                    .topic_configs
                    .get(&name)
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.clone()))
                            .with_value(Some(StrBytes::from_string(v.clone())))
                    })
                    .collect();
                let topic = CreatableTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name.clone())))
                    .with_num_partitions(*t.partitions.get_ref() as i32)
                    .with_replication_factor(*t.replication_factor.get_ref() as i16)
                    .with_configs(configs);
                (name, t.create_at_s.as_ref().map(|a| *a.get_ref()), topic)
            })
            .collect()
    }

    /// With a quorum: creates the topics meant to exist before the run through the controllers (KIP-919: an
    /// admin client may ask them directly), then waits until every broker's metadata has a leader for each of
    /// their partitions. Gives up after 60 simulated seconds each (the liveness phase then reports it).
    async fn create_topics(&mut self) {
        let node = self.helper_node("admin", 1);
        let controllers: Vec<String> = self.voters().values().map(|a| a.to_string()).collect();
        let (now, later): (Vec<_>, Vec<_>) = self.creatable_topics().into_iter().partition(|(_, at, _)| at.is_none());
        let names: Vec<String> = now.iter().map(|(n, _, _)| n.clone()).collect();
        let topics: Vec<CreatableTopic> = now.into_iter().map(|(_, _, t)| t).collect();
        let bootstrap = self.bootstrap();
        let tps: Vec<TopicPartition> = self
            .topic_partitions()
            .into_iter()
            .filter(|tp| names.contains(&tp.topic))
            .collect();
        let task = node.spawn(async move {
            if let Err(e) = create_via_controllers(&controllers, topics).await {
                tracing::warn!("{e}");
            }
            let mut assignment = BTreeMap::new();
            for addr in bootstrap {
                assignment.extend(replicas_once_led(vec![addr], &tps).await);
            }
            assignment
        });
        self.assignment = task.await.unwrap_or_default();
        self.late_topics = later.into_iter().map(|(_, at, t)| (at.unwrap_or(0.0), t)).collect();
    }

    /// Creates the topics with `create_at_s` at their time in the safety phase, through the controllers, and
    /// learns their replicas. Runs beside the nemesis.
    fn start_late_topics(
        &mut self,
        start_us: u64,
    ) -> Option<madsim::task::JoinHandle<BTreeMap<TopicPartition, Vec<i32>>>> {
        if self.late_topics.is_empty() {
            return None;
        }
        let node = self.helper_node("admin-late", 4);
        let controllers: Vec<String> = self.voters().values().map(|a| a.to_string()).collect();
        let late = std::mem::take(&mut self.late_topics);
        let bootstrap = self.bootstrap();
        let rec = self.rec.clone();
        Some(node.spawn(async move {
            let mut assignment = BTreeMap::new();
            for (at_s, topic) in late {
                let due_us = start_us + (at_s * 1e6) as u64;
                let now = rec.now_us();
                if due_us > now {
                    rt::sleep(Duration::from_micros(due_us - now)).await;
                }
                let name = topic.name.0.to_string();
                let partitions: Vec<TopicPartition> = (0..topic.num_partitions)
                    .map(|p| TopicPartition::new(name.clone(), p))
                    .collect();
                if let Err(e) = create_via_controllers(&controllers, vec![topic]).await {
                    tracing::warn!("{e}");
                    continue;
                }
                assignment.extend(replicas_once_led(bootstrap.clone(), &partitions).await);
            }
            assignment
        }))
    }

    /// Demands that every partition takes a produce by the liveness deadline; says why not otherwise.
    async fn liveness(&self) -> Vec<String> {
        let node = self.helper_node("probe", 2);
        let bootstrap = self.bootstrap();
        let tps = self.topic_partitions();
        let rec = self.rec.clone();
        let deadline_us = rec.now_us() + (*self.s.file.phases.liveness_deadline_s.get_ref() * 1e6) as u64;
        let task = node.spawn(async move {
            let mut failures = vec![];
            let mut client = Client::new(bootstrap, ClientConfig::default());
            for tp in tps {
                let mut attempt = 0;
                let mut last_error = String::from("no attempt");
                loop {
                    if rec.now_us() >= deadline_us {
                        failures.push(format!(
                            "partition {tp}: no produce succeeded by the liveness deadline (last error: {last_error})"
                        ));
                        break;
                    }
                    let value = format!("probe-{tp}-{attempt}");
                    attempt += 1;
                    let body = |offset| OpBody::Send {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        key: "probe".into(),
                        value: value.clone(),
                        offset,
                        tombstone: false,
                    };
                    rec.op("probe", OpType::Invoke, body(None), None);
                    let batch =
                        crate::client::keyed_batch(&[(b"probe", value.as_bytes())], (rec.now_us() / 1000) as i64);
                    match client.produce(&tp, batch, 1, 5_000).await {
                        Ok(o) => {
                            rec.op("probe", OpType::Ok, body(o.base_offset), None);
                            break;
                        }
                        Err(e) => {
                            let t = if e.is_indefinite() { OpType::Info } else { OpType::Fail };
                            last_error = e.to_string();
                            rec.op("probe", t, body(None), Some(last_error.clone()));
                            rt::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            }
            failures
        });
        task.await
            .unwrap_or_else(|_| vec!["the liveness probe task died".into()])
    }

    /// Reads every partition back from its leader, from the log start to the high watermark, recording each
    /// fetch as a poll.
    async fn drain(&self) -> Vec<String> {
        let node = self.helper_node("drain", 3);
        let bootstrap = self.bootstrap();
        let tps = self.topic_partitions();
        let rec = self.rec.clone();
        let task = node.spawn(async move {
            let mut client = Client::new(bootstrap, ClientConfig::default());
            let mut failures = vec![];
            for tp in tps {
                failures.extend(drain_partition(&mut client, &tp, &rec).await);
            }
            failures
        });
        task.await.unwrap_or_else(|_| vec!["the drain task died".into()])
    }

    /// Every replica's log, read straight off its disk.
    fn replica_logs(&self) -> Vec<ReplicaLog> {
        let mut out = vec![];
        for b in self.brokers() {
            let hosted = self
                .assignment
                .iter()
                .filter(|(_, r)| r.contains(&b.id))
                .map(|(tp, _)| tp);
            for tp in hosted {
                let records = logscan::served_records(&b.disk, &tp.dir_name());
                let high_watermark = records.last().map_or(0, |r| r.offset + 1);
                let log_start_offset = logscan::log_start_offset(&b.disk, &tp.dir_name());
                out.push(ReplicaLog {
                    node: b.name.clone(),
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    high_watermark,
                    log_start_offset,
                    records,
                    batches: logscan::batch_digests(&b.disk, &tp.dir_name()),
                });
            }
        }
        out
    }
}

/// Marks read off the controllers' metadata trace, each change counted once (at the first offset that shows
/// it): live brokers fenced, fenced ones unfenced again (not a broker's first unfencing after it
/// registered), partition leaders changed.
fn metadata_marks(states: &[crate::history::MetadataState]) -> BTreeMap<&'static str, u64> {
    let mut by_offset = BTreeMap::new();
    for s in states.iter().filter(|s| s.node.starts_with("controller-")) {
        by_offset.entry(s.offset).or_insert(s);
    }
    let mut marks = BTreeMap::new();
    let mut prev: Option<&crate::history::MetadataState> = None;
    let mut ever_fenced_while_live = std::collections::BTreeSet::new();
    for s in by_offset.values() {
        if let Some(p) = prev {
            let was_live = |b: &i32| p.brokers.contains(b) && !p.fenced.contains(b);
            let newly_fenced: Vec<i32> = s.fenced.iter().copied().filter(|b| was_live(b)).collect();
            let fenced = newly_fenced.len() as u64;
            let unfenced = p
                .fenced
                .iter()
                .filter(|b| !s.fenced.contains(b) && ever_fenced_while_live.contains(*b))
                .count() as u64;
            ever_fenced_while_live.extend(newly_fenced);
            let changed = s
                .partitions
                .iter()
                .filter(|(tp, l)| p.partitions.get(*tp).is_some_and(|o| o.leader != l.leader))
                .count() as u64;
            // ISR changes as the controllers committed them (AlterPartition, fencing, elections); read here
            // rather than where the leader learns its AlterPartition answer, which races with the metadata
            // log bringing the same change first.
            let isr_change = |grew: bool| {
                s.partitions
                    .iter()
                    .filter(|(tp, l)| {
                        p.partitions.get(*tp).is_some_and(|o| {
                            let (before, after) = (o.isr.len(), l.isr.len());
                            if grew {
                                after > before
                            } else {
                                after < before
                            }
                        })
                    })
                    .count() as u64
            };
            for (mark, n) in [
                ("broker-fenced", fenced),
                ("fenced-broker-unfenced-again", unfenced),
                ("partition-leader-changed", changed),
                ("isr-shrunk", isr_change(false)),
                ("isr-expanded", isr_change(true)),
            ] {
                if n > 0 {
                    *marks.entry(mark).or_default() += n;
                }
            }
        }
        prev = Some(s);
    }
    let unclean = crate::checker::contract::unclean_elections(states).len() as u64;
    if unclean > 0 {
        marks.insert("unclean-leader-elected", unclean);
    }
    marks
}

/// Sends CreateTopics to the controllers in turn until every topic exists (TOPIC_ALREADY_EXISTS counts: a
/// retried request may have committed), at most 60 simulated seconds.
async fn create_via_controllers(controllers: &[String], topics: Vec<CreatableTopic>) -> Result<(), String> {
    use crate::protocol::errors::{code, ResponseError};
    let mut conns: Vec<Connection> = controllers
        .iter()
        .map(|a| Connection::new_closed(a.clone(), ConnectionConfig::default()))
        .collect();
    let mut pending = topics;
    let mut turn = 0;
    let mut last = String::from("no answer");
    for _ in 0..600 {
        if pending.is_empty() {
            return Ok(());
        }
        let req = CreateTopicsRequest::default()
            .with_topics(pending.clone())
            .with_timeout_ms(5000);
        let n = conns.len();
        match conns[turn % n].request_negotiated(&req, Duration::from_secs(2)).await {
            Ok(resp) => {
                let done = |c: i16| c == code::NONE || c == code::TOPIC_ALREADY_EXISTS;
                let created: Vec<_> = resp
                    .topics
                    .iter()
                    .filter(|t| done(t.error_code))
                    .map(|t| t.name.clone())
                    .collect();
                pending.retain(|t| !created.contains(&t.name));
                if let Some(t) = resp.topics.iter().find(|t| !done(t.error_code)) {
                    last = format!("{}: error {}", t.name.0, t.error_code);
                }
                if resp
                    .topics
                    .iter()
                    .any(|t| t.error_code == ResponseError::NotController.code())
                {
                    turn += 1;
                }
            }
            Err(e) => {
                last = e.to_string();
                turn += 1;
            }
        }
        if !pending.is_empty() {
            rt::sleep(Duration::from_millis(100)).await;
        }
    }
    let names: Vec<_> = pending.iter().map(|t| t.name.0.to_string()).collect();
    Err(format!("topics {names:?} not created in 60 s (last: {last})"))
}

/// Asks `bootstrap` for metadata every 100 ms, for at most 60 simulated seconds, until every one of
/// `partitions` has a leader; returns their replicas (empty if they never all had one).
async fn replicas_once_led(
    bootstrap: Vec<String>,
    partitions: &[TopicPartition],
) -> BTreeMap<TopicPartition, Vec<i32>> {
    let mut client = Client::new(bootstrap, ClientConfig::default());
    for _ in 0..600 {
        if let Ok(m) = client.metadata(None).await {
            let led = |tp: &TopicPartition| m.partition(tp).is_some_and(|p| p.leader_id >= 0);
            if partitions.iter().all(led) {
                return partitions
                    .iter()
                    .filter_map(|tp| m.partition(tp).map(|p| (tp.clone(), p.replicas.clone())))
                    .collect();
            }
        }
        rt::sleep(Duration::from_millis(100)).await;
    }
    BTreeMap::new()
}

/// Each partition's replicas in a static image.
fn image_assignment(image: &MetadataImage) -> BTreeMap<TopicPartition, Vec<i32>> {
    image
        .topics
        .iter()
        .flat_map(|(name, t)| {
            t.partitions
                .iter()
                .map(move |(p, part)| (TopicPartition::new(name.clone(), *p), part.replicas.clone()))
        })
        .collect()
}

/// Drains one partition, retrying errors for up to 30 simulated seconds; says why if it could not read to the
/// end (a drain that falls short is a liveness failure, never silently a shorter read).
async fn drain_partition(client: &mut Client, tp: &TopicPartition, rec: &Recorder) -> Option<String> {
    let give_up_us = rec.now_us() + 30_000_000;
    let mut offset = None;
    let mut end = None;
    let mut last_error = String::from("no answer");
    let mut empty_reads = 0;
    while rec.now_us() < give_up_us {
        if offset.is_none() {
            offset = client.list_offsets(tp, OffsetSpec::Earliest).await.ok();
        }
        if end.is_none() {
            end = client.list_offsets(tp, OffsetSpec::Latest).await.ok();
        }
        let (Some(from), Some(to)) = (offset, end) else {
            rt::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if from >= to {
            return None;
        }
        let body = |records: Vec<ReadRecord>| OpBody::Poll {
            topic: tp.topic.clone(),
            partition: tp.partition,
            fetch_offset: from,
            records,
        };
        rec.op("drain", OpType::Invoke, body(vec![]), None);
        match client.fetch(tp, from, 1 << 20, 100, 1).await {
            Ok(f) => {
                let records: Vec<ReadRecord> = f
                    .records
                    .iter()
                    .map(|r| ReadRecord::decoded(r.offset, r.value.as_deref(), &r.headers))
                    .collect();
                rec.op("drain", OpType::Ok, body(records), None);
                offset = Some(f.next_fetch_offset.max(from));
                if f.next_fetch_offset <= from {
                    empty_reads += 1;
                    last_error = format!("{empty_reads} reads at offset {from} returned nothing");
                    rt::sleep(Duration::from_millis(100)).await;
                }
            }
            Err(ClientError::CorruptBatch { offset: at, reason, .. }) => {
                // Reported, never read as data; skip one offset at a time past the corrupt batch (its own
                // length and offsets cannot be trusted).
                rec.op(
                    "drain",
                    OpType::Fail,
                    body(vec![]),
                    Some(format!("corrupt batch at offset {at}: {reason}")),
                );
                let body = OpBody::CorruptRead {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset: from,
                    reason,
                };
                rec.op("drain", OpType::Info, body, None);
                offset = Some(from + 1);
            }
            Err(e) => {
                last_error = e.to_string();
                rec.op("drain", OpType::Fail, body(vec![]), Some(last_error.clone()));
                rt::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let at = offset.map_or("its start".to_string(), |o| format!("offset {o}"));
    let to = end.map_or("its end".to_string(), |e| format!("the high watermark {e}"));
    Some(format!(
        "partition {tp}: the drain could not read from {at} to {to} in 30 s (last: {last_error})"
    ))
}
