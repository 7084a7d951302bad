//! InitProducerId for idempotent producers (Kafka's `TransactionCoordinator.handleInitProducerId` with a
//! null transactional id, over `RPCProducerIdManager`, KIP-98, KIP-730).
//!
//! The controller hands out producer ids in blocks (KIP-730's AllocateProducerIds gives 1000 at a time);
//! the node shell asks for one when [`Broker::wants_producer_ids`] says so and passes what it gets to
//! [`Broker::grant_producer_ids`]. As Kafka's `RPCProducerIdManager`, the broker wants the next block once
//! 90% of the current one is used, so a block is usually there before the current one runs out. With no id
//! left the answer is `COORDINATOR_LOAD_IN_PROGRESS`, which the client retries.
//!
//! Transactions are not modelled: a request with a transactional id is `INVALID_REQUEST` (an empty one is
//! that in Kafka too). An idempotent producer sends a null transactional id; note that kafka-protocol's
//! `InitProducerIdRequest::default()` holds `Some("")`, as Java's generated default does.

use std::collections::VecDeque;

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{respond, Broker, Failure, Reply};
use crate::protocol::errors::code;

/// Kafka's `RPCProducerIdManager.PID_PREFETCH_THRESHOLD`: the share of a block used before the next one is
/// requested, in percent.
const PREFETCH_THRESHOLD_PERCENT: i64 = 90;

/// One block of producer ids: `[first, first + count)`, handed out from `next` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProducerIdBlock {
    first: i64,
    count: i64,
    next: i64,
}

impl ProducerIdBlock {
    fn remaining(&self) -> i64 {
        self.first + self.count - self.next
    }
}

/// The broker's producer id blocks: the current one first, a prefetched one behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ProducerIdManager {
    blocks: VecDeque<ProducerIdBlock>,
}

impl ProducerIdManager {
    /// Adds a block; an empty or negative one (a controller bug) is ignored.
    pub(super) fn grant(&mut self, first: i64, count: i64) -> bool {
        if first < 0 || count <= 0 || first.checked_add(count).is_none() {
            return false;
        }
        self.blocks.push_back(ProducerIdBlock {
            first,
            count,
            next: first,
        });
        true
    }

    /// No block is queued behind the current one, and the current one is missing or 90% used.
    pub(super) fn wants_more(&self) -> bool {
        let live: Vec<&ProducerIdBlock> = self.blocks.iter().filter(|b| b.remaining() > 0).collect();
        match live.as_slice() {
            [] => true,
            [only] => (only.next - only.first) * 100 >= only.count * PREFETCH_THRESHOLD_PERCENT,
            _ => false,
        }
    }

    /// The next producer id, if any block has one left.
    pub(super) fn next_id(&mut self) -> Option<i64> {
        while self.blocks.front().is_some_and(|b| b.remaining() <= 0) {
            self.blocks.pop_front();
        }
        let block = self.blocks.front_mut()?;
        let id = block.next;
        block.next += 1;
        Some(id)
    }
}

impl Broker {
    /// Adds a block of producer ids `[first_producer_id, first_producer_id + count)` (the controller's
    /// AllocateProducerIds answer, KIP-730). An empty or negative block is ignored.
    pub fn grant_producer_ids(&mut self, first_producer_id: i64, count: i64) {
        self.producer_ids.grant(first_producer_id, count);
    }

    /// Whether the shell should ask the controller for a block: none left, or the current one 90% used and
    /// none queued behind it (Kafka's `RPCProducerIdManager` prefetch).
    pub fn wants_producer_ids(&self) -> bool {
        self.producer_ids.wants_more()
    }

    /// InitProducerId: a new producer id with epoch 0 for an idempotent producer (its old id and epoch, sent
    /// from v3 on by KIP-360, are ignored, as Kafka does without a transactional id).
    pub(super) fn init_producer_id(
        &mut self,
        req: &InitProducerIdRequest,
        version: i16,
        corr: i32,
    ) -> Result<Reply, Failure> {
        let answer = |error_code: i16, producer_id: i64, producer_epoch: i16| {
            InitProducerIdResponse::default()
                .with_error_code(error_code)
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(producer_epoch)
        };
        let resp = if let Some(id) = &req.transactional_id {
            // The response has no message field: say it in the broker's log.
            tracing::info!(
                node_id = self.config.node_id,
                "InitProducerId with transactional.id `{}` refused: transactions are not modelled",
                id.0
            );
            answer(code::INVALID_REQUEST, -1, -1)
        } else {
            match self.producer_ids.next_id() {
                Some(id) => answer(code::NONE, id, 0),
                None => answer(code::COORDINATOR_LOAD_IN_PROGRESS, -1, -1),
            }
        };
        respond(ApiKey::InitProducerId, version, corr, &resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_in_order_from_the_current_block_then_the_next() {
        let mut m = ProducerIdManager::default();
        assert!(m.grant(1000, 2));
        assert!(m.grant(5000, 1000));
        assert_eq!(m.next_id(), Some(1000));
        assert_eq!(m.next_id(), Some(1001));
        assert_eq!(m.next_id(), Some(5000));
    }

    #[test]
    fn more_is_wanted_with_no_block_and_once_ninety_percent_of_the_only_block_is_used() {
        let mut m = ProducerIdManager::default();
        assert!(m.wants_more());
        m.grant(0, 10);
        for _ in 0..8 {
            assert!(!m.wants_more());
            m.next_id();
        }
        assert!(!m.wants_more(), "8 of 10 used");
        m.next_id();
        assert!(m.wants_more(), "9 of 10 used");
        m.grant(10, 10);
        assert!(!m.wants_more(), "a block is queued");
        m.next_id();
        m.next_id();
        assert!(!m.wants_more(), "the second block is fresh");
        assert_eq!(m.next_id(), Some(11));
    }

    #[test]
    fn an_exhausted_manager_has_no_id_and_bad_grants_are_ignored() {
        let mut m = ProducerIdManager::default();
        assert!(!m.grant(-1, 10));
        assert!(!m.grant(5, 0));
        assert!(!m.grant(i64::MAX, 2));
        assert_eq!(m.next_id(), None);
        m.grant(7, 1);
        assert_eq!(m.next_id(), Some(7));
        assert_eq!(m.next_id(), None);
        assert!(m.wants_more());
    }
}
