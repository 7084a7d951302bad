//! Brokers: BrokerRegistration, BrokerHeartbeat and session fencing (Kafka's `ClusterControlManager`,
//! `BrokerHeartbeatManager` and the broker half of `ReplicationControlManager`; KIP-631, KIP-841).

use uuid::Uuid;

use super::election::{partitions_with_broker_in_isr, partitions_without_leader, RecordBuilder};
use super::records::Record;
use super::{BrokerSession, Controller, ControllerResult, ResponseError};
use crate::types::BrokerId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistrationRequest {
    pub broker_id: BrokerId,
    /// A new process of the broker has a new incarnation id; a retry of one process keeps it.
    pub incarnation_id: Uuid,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistrationReply {
    pub error: Option<ResponseError>,
    /// The new broker epoch (-1 on error).
    pub broker_epoch: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerHeartbeatRequest {
    pub broker_id: BrokerId,
    pub broker_epoch: i64,
    /// The offset of the metadata log the broker has applied.
    pub current_metadata_offset: i64,
    pub want_fence: bool,
    pub want_shut_down: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerHeartbeatReply {
    pub error: Option<ResponseError>,
    /// The broker's metadata reached its registration record (KIP-631).
    pub is_caught_up: bool,
    pub is_fenced: bool,
    pub in_controlled_shutdown: bool,
    /// Controlled shutdown is complete: the broker may stop.
    pub should_shut_down: bool,
}

impl BrokerHeartbeatReply {
    fn error(e: ResponseError) -> Self {
        BrokerHeartbeatReply {
            error: Some(e),
            is_caught_up: false,
            is_fenced: true,
            in_controlled_shutdown: false,
            should_shut_down: false,
        }
    }
}

impl Controller {
    /// Whether `broker`'s registration holds a live session: unfenced and heard from within
    /// `broker.session.timeout.ms` (Kafka's `BrokerHeartbeatManager.hasValidSession`).
    pub fn has_valid_session(&self, broker: BrokerId, now_ms: i64) -> bool {
        let Some(reg) = self.state.brokers.get(&broker) else {
            return false;
        };
        let Some(session) = self.sessions.get(&broker) else {
            return false;
        };
        !reg.fenced && now_ms <= session.last_contact_ms + self.config.broker_session_timeout_ms
    }

    /// BrokerRegistration. A new incarnation is refused with DUPLICATE_BROKER_REGISTRATION while the old
    /// registration's session lives, so a restarted broker comes back only once it was fenced. Otherwise the
    /// broker gets a new epoch and registers fenced; partitions the old registration led or was in the ISR
    /// of are changed as for a fenced broker (Kafka's `handleBrokerUncleanShutdown`).
    pub fn register_broker(
        &mut self,
        req: BrokerRegistrationRequest,
        now_ms: i64,
    ) -> ControllerResult<BrokerRegistrationReply> {
        self.observe_now(now_ms);
        if let Some(old) = self.state.brokers.get(&req.broker_id) {
            if old.incarnation_id != req.incarnation_id && self.has_valid_session(req.broker_id, now_ms) {
                let response = BrokerRegistrationReply {
                    error: Some(ResponseError::DuplicateBrokerRegistration),
                    broker_epoch: -1,
                };
                return ControllerResult {
                    records: vec![],
                    response,
                };
            }
        }
        let broker_epoch = self.state.next_broker_epoch;
        let mut b = RecordBuilder::new(&self.state, self.config.unclean_leader_election_enable);
        b.push(Record::RegisterBroker {
            broker_id: req.broker_id,
            incarnation_id: req.incarnation_id,
            broker_epoch,
            host: req.host,
            port: req.port,
            rack: req.rack,
        });
        let partitions = partitions_with_broker_in_isr(&b.scratch, req.broker_id);
        b.change_partitions(partitions, Some(req.broker_id));
        self.touch(req.broker_id, now_ms, -1);
        let response = BrokerRegistrationReply {
            error: None,
            broker_epoch,
        };
        ControllerResult {
            records: b.records,
            response,
        }
    }

    fn touch(&mut self, broker: BrokerId, now_ms: i64, metadata_offset: i64) {
        let session = BrokerSession {
            last_contact_ms: now_ms,
            metadata_offset,
        };
        self.sessions.insert(broker, session);
    }

    /// BrokerHeartbeat: refreshes the session and moves the broker between Kafka's states
    /// (`BrokerHeartbeatManager.calculateNextBrokerState`): FENCED → UNFENCED once caught up;
    /// UNFENCED → FENCED on `want_fence`; UNFENCED → CONTROLLED_SHUTDOWN on `want_shut_down` (leadership
    /// moves away at once, the broker leaves every ISR where others remain); → SHUTDOWN_NOW (fenced,
    /// `should_shut_down`) once it leads nothing and every active broker's metadata reached the record
    /// that began the controlled shutdown.
    pub fn heartbeat(&mut self, req: BrokerHeartbeatRequest, now_ms: i64) -> ControllerResult<BrokerHeartbeatReply> {
        self.observe_now(now_ms);
        let Some(reg) = self.state.brokers.get(&req.broker_id).cloned() else {
            let response = BrokerHeartbeatReply::error(ResponseError::BrokerIdNotRegistered);
            return ControllerResult {
                records: vec![],
                response,
            };
        };
        if reg.epoch != req.broker_epoch {
            let response = BrokerHeartbeatReply::error(ResponseError::StaleBrokerEpoch);
            return ControllerResult {
                records: vec![],
                response,
            };
        }
        let (id, epoch) = (reg.id, reg.epoch);
        let is_caught_up = req.current_metadata_offset >= reg.registration_offset;
        self.touch(id, now_ms, req.current_metadata_offset);
        let mut b = RecordBuilder::new(&self.state, self.config.unclean_leader_election_enable);
        let should_shut_down = if reg.fenced {
            if !req.want_fence && !req.want_shut_down && !reg.in_controlled_shutdown && is_caught_up {
                b.push(Record::UnfenceBroker { id, epoch });
                b.change_partitions(partitions_without_leader(&b.scratch), None);
            }
            req.want_shut_down
        } else if req.want_shut_down {
            self.controlled_shutdown(&mut b, id, epoch)
        } else if req.want_fence {
            fence(&mut b, id, epoch);
            false
        } else {
            false
        };
        let after = &b.scratch.brokers[&id];
        let response = BrokerHeartbeatReply {
            error: None,
            is_caught_up,
            is_fenced: after.fenced,
            in_controlled_shutdown: after.in_controlled_shutdown,
            should_shut_down,
        };
        ControllerResult {
            records: b.records,
            response,
        }
    }

    /// An unfenced broker that wants to shut down; returns whether it may stop now.
    fn controlled_shutdown(&self, b: &mut RecordBuilder, id: BrokerId, epoch: i64) -> bool {
        let reg = &self.state.brokers[&id];
        if !reg.in_controlled_shutdown {
            b.push(Record::BrokerShutdown { id, epoch });
            let partitions = partitions_with_broker_in_isr(&b.scratch, id);
            b.change_partitions(partitions, Some(id));
            if self.state.leads_any(id) {
                return false; // stays in CONTROLLED_SHUTDOWN until the others learn the new leaders
            }
        } else if self.state.leads_any(id) || !self.all_active_reached(reg.controlled_shutdown_offset) {
            return false;
        }
        fence(b, id, epoch);
        true
    }

    /// Every active broker reported a metadata offset at or past `offset` (Kafka's `lowestActiveOffset`).
    fn all_active_reached(&self, offset: i64) -> bool {
        self.state
            .brokers
            .values()
            .filter(|r| !r.fenced)
            .all(|r| self.sessions.get(&r.id).is_some_and(|s| s.metadata_offset >= offset))
    }

    /// Fences every unfenced broker not heard from for `broker.session.timeout.ms`, electing new leaders for
    /// what they led; then elects leaders for leaderless partitions that can have one (an ISR member is
    /// active, or `unclean.leader.election.enable` and some replica is).
    pub fn tick(&mut self, now_ms: i64) -> ControllerResult<()> {
        self.observe_now(now_ms);
        let mut b = RecordBuilder::new(&self.state, self.config.unclean_leader_election_enable);
        let expired: Vec<(BrokerId, i64)> = self
            .state
            .brokers
            .values()
            .filter(|r| !r.fenced && !self.has_valid_session(r.id, now_ms))
            .map(|r| (r.id, r.epoch))
            .collect();
        for (id, epoch) in expired {
            fence(&mut b, id, epoch);
        }
        b.change_partitions(partitions_without_leader(&b.scratch), None);
        ControllerResult {
            records: b.records,
            response: (),
        }
    }
}

/// Fences `id` and takes it out of leadership and of every ISR where another member remains.
fn fence(b: &mut RecordBuilder, id: BrokerId, epoch: i64) {
    if b.scratch.brokers.get(&id).is_some_and(|r| !r.fenced) {
        b.push(Record::FenceBroker { id, epoch });
    }
    let partitions = partitions_with_broker_in_isr(&b.scratch, id);
    b.change_partitions(partitions, Some(id));
}
