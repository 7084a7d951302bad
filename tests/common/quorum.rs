//! A 3-controller KRaft quorum on the simulated network, for the end-to-end tests that run brokers beside
//! it by hand (`#[path = "common/quorum.rs"] mod quorum;`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use gregor::controller::ControllerConfig;
use gregor::node::controller::{run_controller, ControllerNodeConfig};
use gregor::sim::disk::{SimDisk, SimDiskConfig};
use gregor::sim::{controller_id, controller_ip, CONTROLLER_PORT};

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
