//! The contract monitor (ARCHITECTURE §6): reads the fault timeline and says where the run left the
//! promise the configuration makes. Today (one replica per partition) every power loss of a broker and every
//! bit flip at rest in a partition's log hits at least `min.insync.replicas` of its replicas, so each is a
//! breach; windows (from a replica's loss until it is back in the ISR) and unclean elections arrive with
//! replication. Process crashes, any number of them, never take a partition out of contract (the page cache
//! survives).

use crate::history::{FaultPhase, History, OpBody};
use crate::scenario::Scenario;

/// Each breach, described: "power loss of broker-1 at 4.210s hit 1 of 1 replicas of orders-0
/// (min.insync.replicas=1)".
pub fn breaches(s: &Scenario, h: &History) -> Vec<String> {
    let mut out = vec![];
    for op in &h.ops {
        let OpBody::Fault {
            kind,
            phase: FaultPhase::Start,
            detail,
            ..
        } = &op.body
        else {
            continue;
        };
        if kind == "disk_bitflip" && !detail.contains_key("skipped") {
            let node = detail.get("node").and_then(|n| n.as_str()).unwrap_or("?");
            let path = detail.get("path").and_then(|n| n.as_str()).unwrap_or("?");
            let tp = path.split('/').next().unwrap_or("?");
            // One replica per partition today: corrupting it hits at least min.insync.replicas (>= 1).
            out.push(format!(
                "bit flip at rest on {node} ({path}) at {:.3}s hit the only replica of {tp}",
                op.time_us as f64 / 1e6
            ));
            continue;
        }
        if kind != "power_loss" || detail.contains_key("skipped") {
            continue;
        }
        let node = detail.get("node").and_then(|n| n.as_str()).unwrap_or("?");
        if node.starts_with("controller-") {
            // A controller holds no partition replica; the metadata log is judged by the Raft invariants.
            continue;
        }
        // One broker holds every replica today, so a power loss of it hits all of each partition's replicas.
        for t in &s.file.topics {
            let rf = *t.replication_factor.get_ref();
            let min_isr: u32 = s
                .topic_configs
                .get(t.name.get_ref())
                .and_then(|c| c.get("min.insync.replicas"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            if rf >= min_isr {
                out.push(format!(
                    "power loss of {node} at {:.3}s hit {rf} of {rf} replicas of every partition of {} (min.insync.replicas={min_isr})",
                    op.time_us as f64 / 1e6,
                    t.name.get_ref()
                ));
            }
        }
    }
    out
}
