//! L4: the simulated world: node naming, seeds, the simulated disk, the recorder, and reading replica logs
//! straight off simulated disks (the checkers' view of the final state and of a power loss's frontier).

pub mod disk;
pub mod faults;
pub mod logscan;
pub mod recorder;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// A random stream derived from the run seed and a fixed component name, so that what one component draws
/// does not move when another component's code changes (ARCHITECTURE §4).
pub fn stream(seed: u64, component: &str) -> ChaCha8Rng {
    ChaCha8Rng::from_seed(derive(seed, component))
}

/// A u64 seed derived from the run seed and a component name.
pub fn derive_seed(seed: u64, component: &str) -> u64 {
    let d = derive(seed, component);
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

fn derive(seed: u64, component: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(component.as_bytes());
    h.finalize().into()
}

/// The name of broker `id` (1-based), as scenarios and the history call it.
pub fn broker_name(id: i32) -> String {
    format!("broker-{id}")
}

/// Broker `id`'s IP address.
pub fn broker_ip(id: i32) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 1, id as u8))
}

/// A client node's IP address (`n` counts from 1).
pub fn client_ip(n: u32) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 2, n as u8))
}

/// The Kafka listener port of every broker.
pub const BROKER_PORT: u16 = 9092;

/// The controller listener port (Kafka's `CONTROLLER` listener, 9093 by convention).
pub const CONTROLLER_PORT: u16 = 9093;

/// Controller node ids start here (`node.id` is one namespace for brokers and controllers in KRaft).
pub const CONTROLLER_ID_BASE: i32 = 3000;

/// The name of controller `n` (1-based).
pub fn controller_name(n: i32) -> String {
    format!("controller-{n}")
}

/// Controller `n`'s `node.id` (3001, 3002, ...).
pub fn controller_id(n: i32) -> i32 {
    CONTROLLER_ID_BASE + n
}

/// Controller `n`'s IP address.
pub fn controller_ip(n: i32) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, n as u8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_depend_on_seed_and_component_only() {
        assert_eq!(stream(7, "faults").random::<u64>(), stream(7, "faults").random::<u64>());
        assert_ne!(stream(7, "faults").random::<u64>(), stream(8, "faults").random::<u64>());
        assert_ne!(
            stream(7, "faults").random::<u64>(),
            stream(7, "workload").random::<u64>()
        );
    }
}
