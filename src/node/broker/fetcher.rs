//! The replica fetchers (Kafka's `ReplicaFetcherManager` and one `ReplicaFetcherThread` per leader broker):
//! each asks its leader with Fetch v12 (`replica_id` = this broker, `replica.fetch.wait.max.ms` long polls,
//! `replica.fetch.min.bytes`), hands the answer to the broker core and awaits the disk time it spent. What
//! to fetch, and what the answer does, are the core's decisions (`Broker::replica_fetch_plans`,
//! `Broker::apply_replica_fetch`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tracing::{debug, error};

use super::Node;
use crate::client::connection::{Connection, ConnectionConfig};
use crate::rt;
use crate::types::BrokerId;

/// How often the manager looks for leaders without a fetcher, and an idle fetcher for work.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// The back-off after a failed fetch (Kafka's `replica.fetch.backoff.ms`, 1000; shorter here).
const FETCH_BACKOFF: Duration = Duration::from_millis(200);
/// Added to `replica.fetch.wait.max.ms` for the request timeout of a long poll.
const FETCH_TIMEOUT_SLACK: Duration = Duration::from_millis(2000);

/// Starts a fetcher for every leader this broker follows, as leaders appear.
pub(super) async fn fetcher_manager(node: Node) {
    let mut running: BTreeSet<BrokerId> = BTreeSet::new();
    loop {
        let leaders: Vec<BrokerId> = node
            .lock()
            .broker
            .replica_fetch_plans()
            .into_iter()
            .map(|p| p.leader)
            .collect();
        for leader in leaders {
            if running.insert(leader) {
                rt::spawn(fetch_from(node.clone(), leader));
            }
        }
        rt::sleep(IDLE_POLL).await;
    }
}

/// One leader's fetcher: fetch, apply, repeat.
async fn fetch_from(node: Node, leader: BrokerId) {
    let (me, wait_ms) = {
        let s = node.lock();
        (s.broker.node_id(), s.broker.config().replica_fetch_wait_max_ms)
    };
    let timeout = Duration::from_millis(wait_ms.max(0) as u64) + FETCH_TIMEOUT_SLACK;
    let mut conns: BTreeMap<String, Connection> = BTreeMap::new();
    loop {
        let planned = {
            let s = node.lock();
            let plan = s.broker.replica_fetch_plans().into_iter().find(|p| p.leader == leader);
            plan.map(|p| {
                let req = s.broker.replica_fetch_request(&p);
                (p, req)
            })
        };
        let Some((plan, req)) = planned else {
            rt::sleep(IDLE_POLL).await;
            continue;
        };
        let addr = format!("{}:{}", plan.host, plan.port);
        let conn = conns.entry(addr.clone()).or_insert_with(|| {
            let config = ConnectionConfig {
                client_id: format!("replica-fetcher-{me}-{leader}"),
                ..ConnectionConfig::default()
            };
            Connection::new_closed(addr.clone(), config)
        });
        let resp = match conn.request_negotiated(&req, timeout).await {
            Ok(r) => r,
            Err(e) => {
                debug!(broker = me, leader, "replica fetch failed: {e}");
                rt::sleep(FETCH_BACKOFF).await;
                continue;
            }
        };
        let now = node.clock.now_ms();
        let (result, elapsed, errors) = {
            let mut guard = node.lock();
            let s = &mut *guard;
            let result = s.broker.apply_replica_fetch(s.disk.as_mut(), &plan, &resp, now);
            node.report_states(&mut s.broker);
            let marks = s.broker.take_marks();
            if let Some(super::Observer(o)) = &node.observer {
                marks.into_iter().for_each(|m| o.mark(m));
            }
            let errors = resp
                .responses
                .iter()
                .flat_map(|t| t.partitions.iter())
                .any(|p| p.error_code != 0);
            (result, s.disk.take_elapsed(), errors)
        };
        rt::sleep_for(elapsed).await;
        node.wake.notify_one();
        if let Err(reason) = result {
            error!(broker = me, "replica fetch hit a storage failure: {reason}");
            node.fatal.notify_one();
            return;
        }
        if errors {
            // NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, ...: wait for newer metadata.
            rt::sleep(FETCH_BACKOFF).await;
        }
    }
}
