//! A 3-controller KRaft quorum on the simulated network, for the end-to-end tests that run brokers beside
//! it by hand (`#[path = "common/quorum.rs"] mod quorum;`), and what those tests share: 3 brokers
//! following the quorum, client nodes, and an admin that creates a topic and waits for its leaders.
// Each test binary uses only some of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use uuid::Uuid;

use gregor::broker::{BrokerConfig, MetadataImage};
use gregor::client::admin::{AdminError, NewTopic};
use gregor::client::KafkaAdmin;
use gregor::controller::ControllerConfig;
use gregor::node::broker::{run_broker, BrokerNodeConfig, ControllerLinkConfig};
use gregor::node::controller::{run_controller, ControllerNodeConfig};
use gregor::rt;
use gregor::sim::disk::{SimDisk, SimDiskConfig};
use gregor::sim::{broker_ip, controller_id, controller_ip, BROKER_PORT, CONTROLLER_PORT};

/// The quorum's voters, by node id (`controller.quorum.voters`).
pub fn voters() -> BTreeMap<i32, SocketAddr> {
    (1..=3)
        .map(|n| (controller_id(n), SocketAddr::new(controller_ip(n), CONTROLLER_PORT)))
        .collect()
}

/// Starts `controller-1` … `controller-3`, each with its own simulated disk.
pub fn start_controllers(handle: &madsim::runtime::Handle) {
    for n in 1..=3 {
        let id = controller_id(n);
        let cfg = ControllerNodeConfig {
            node_id: id,
            voters: voters(),
            listen_addr: SocketAddr::from(([0, 0, 0, 0], CONTROLLER_PORT)),
            controller: ControllerConfig::new(id, "gregor"),
            raft: gregor::raft::RaftConfig::new(id, voters().keys().copied().collect()),
            seed: 100 + n as u64,
            observer: None,
            node_name: format!("controller-{n}"),
            incarnation: 0,
        };
        let disk = SimDisk::new(&cfg.node_name, n as u64, SimDiskConfig::default());
        handle
            .create_node()
            .name(format!("controller-{n}"))
            .ip(controller_ip(n))
            .init(move || {
                let (cfg, disk) = (cfg.clone(), disk.clone());
                async move {
                    run_controller(cfg, Box::new(disk)).await;
                }
            })
            .build();
    }
}

/// Starts the quorum and `broker-1` … `broker-3` following it, each broker with its own simulated disk that
/// survives restarts and a fresh incarnation id at every start (as Kafka draws one at each startup);
/// `configure` adjusts every broker's config. Returns each broker's node name and disk.
pub fn start_cluster(configure: fn(&mut BrokerConfig)) -> Vec<(String, SimDisk)> {
    let handle = madsim::runtime::Handle::current();
    start_controllers(&handle);
    let mut out = vec![];
    for id in 1..=3 {
        let name = format!("broker-{id}");
        let disk = SimDisk::new(&name, 10 + id as u64, SimDiskConfig::default());
        let node_disk = disk.clone();
        let starts = Arc::new(AtomicU64::new(0));
        let node_name = name.clone();
        handle
            .create_node()
            .name(&name)
            .ip(broker_ip(id))
            .init(move || {
                let incarnation = starts.fetch_add(1, Ordering::Relaxed);
                let mut config = BrokerConfig::new(id);
                configure(&mut config);
                let mut cfg = BrokerNodeConfig::new(config, MetadataImage::default(), 200 + id as u64);
                cfg.node_name = node_name.clone();
                cfg.incarnation = incarnation as u32;
                cfg.controllers = Some(ControllerLinkConfig {
                    controllers: voters(),
                    cluster_id: "gregor".into(),
                    advertised_host: broker_ip(id).to_string(),
                    advertised_port: BROKER_PORT,
                    incarnation_id: Uuid::from_u64_pair(id as u64, incarnation),
                });
                let disk = node_disk.clone();
                async move {
                    run_broker(cfg, Box::new(disk)).await;
                }
            })
            .build();
        out.push((name, disk));
    }
    out
}

/// The brokers' listeners, `host:port`.
pub fn bootstrap() -> Vec<String> {
    (1..=3).map(|id| format!("{}:{BROKER_PORT}", broker_ip(id))).collect()
}

/// A client node at 10.0.2.`n`.
pub fn client_node(name: &str, n: u8) -> madsim::runtime::NodeHandle {
    madsim::runtime::Handle::current()
        .create_node()
        .name(name)
        .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 2, n)))
        .build()
}

/// Creates `topic` with replication factor 3 (retrying until the brokers registered and were unfenced),
/// then waits until every partition has a leader; returns its topic id.
pub async fn create_and_wait(admin: &mut KafkaAdmin, topic: &str, partitions: i32) -> Uuid {
    let mut id = Uuid::nil();
    for _ in 0..100 {
        match admin.create_topic(&NewTopic::new(topic, partitions, 3)).await {
            Ok(created) => {
                id = created.topic_id;
                break;
            }
            Err(AdminError::CreateTopic {
                code: ResponseError::InvalidReplicationFactor,
                ..
            }) => rt::sleep(Duration::from_millis(500)).await,
            Err(e) => panic!("{e}"),
        }
    }
    wait_for_leaders(admin, topic, partitions).await;
    id
}

/// Waits until `topic` has `partitions` partitions, each with a leader.
pub async fn wait_for_leaders(admin: &mut KafkaAdmin, topic: &str, partitions: i32) {
    for _ in 0..100 {
        if let Ok(d) = admin.describe_topics(&[topic]).await {
            let t = &d[topic];
            if t.partitions.len() == partitions as usize && t.partitions.iter().all(|p| p.leader.is_some()) {
                return;
            }
        }
        rt::sleep(Duration::from_millis(200)).await;
    }
    panic!("{topic} never had {partitions} partitions with leaders");
}
