//! Idempotent produce and InitProducerId through the broker core.

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use super::tests::{broker, call, decode, produce, produce_codes, Fx};
use super::{Reply, DUPLICATE_BATCH_MARK};
use crate::protocol::batch::BatchBuilder;
use crate::protocol::errors::code;
use crate::types::TopicPartition;

fn idempotent(pid: i64, epoch: i16, seq: i32, values: &[&[u8]]) -> Vec<u8> {
    let mut b = BatchBuilder::new(5).producer(pid, epoch, seq);
    for v in values {
        b.push(5, None, Some(v), &[]);
    }
    b.build()
}

fn send(b: &mut Fx, records: Vec<u8>) -> Vec<(i16, i64)> {
    produce_codes(call(b, ApiKey::Produce, 11, &produce(0, records, -1), 10))
}

fn log_end_offset(b: &Fx) -> i64 {
    let tp = TopicPartition::new("orders", 0);
    b.broker.logs().get(&tp).expect("log").log_end_offset()
}

#[test]
fn a_duplicate_batch_answers_none_with_its_original_offset_and_counts_a_mark() {
    let mut b = broker(&[1]);
    assert_eq!(send(&mut b, idempotent(7, 0, 0, &[b"a", b"b"])), vec![(0, 0)]);
    assert_eq!(send(&mut b, idempotent(7, 0, 2, &[b"c"])), vec![(0, 2)]);
    assert!(b.broker.take_marks().is_empty(), "no duplicate yet");
    assert_eq!(send(&mut b, idempotent(7, 0, 0, &[b"a", b"b"])), vec![(0, 0)]);
    assert_eq!(send(&mut b, idempotent(7, 0, 2, &[b"c"])), vec![(0, 2)]);
    assert_eq!(log_end_offset(&b), 3, "retries are not appended");
    assert_eq!(b.broker.take_marks(), vec![DUPLICATE_BATCH_MARK, DUPLICATE_BATCH_MARK]);
    assert!(b.broker.take_marks().is_empty(), "drained");
}

#[test]
fn a_gap_is_out_of_order_sequence_and_an_old_epoch_is_invalid_producer_epoch() {
    let mut b = broker(&[1]);
    send(&mut b, idempotent(7, 0, 0, &[b"a"]));
    assert_eq!(
        send(&mut b, idempotent(7, 0, 5, &[b"x"])),
        vec![(code::OUT_OF_ORDER_SEQUENCE_NUMBER, -1)]
    );
    assert_eq!(send(&mut b, idempotent(7, 1, 0, &[b"b"])), vec![(0, 1)]);
    assert_eq!(
        send(&mut b, idempotent(7, 0, 1, &[b"y"])),
        vec![(code::INVALID_PRODUCER_EPOCH, -1)]
    );
    assert_eq!(log_end_offset(&b), 2);
    assert!(b.broker.take_marks().is_empty());
}

fn init(b: &mut Fx, req: &InitProducerIdRequest) -> (i16, i64, i16) {
    let reply = b
        .broker
        .init_producer_id(req, 4, 11)
        .map_err(|_| "failure")
        .expect("a reply");
    assert!(matches!(reply, Reply::Respond(_)));
    let resp: InitProducerIdResponse = decode(ApiKey::InitProducerId, 4, reply);
    (resp.error_code, resp.producer_id.0, resp.producer_epoch)
}

#[test]
fn init_producer_id_hands_out_ids_from_granted_blocks_with_epoch_zero() {
    let mut b = broker(&[1]);
    // kafka-protocol's default transactional id is Some(""), as Java's: an idempotent producer sends null.
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    assert!(b.broker.wants_producer_ids());
    assert_eq!(init(&mut b, &req), (code::COORDINATOR_LOAD_IN_PROGRESS, -1, -1));
    b.broker.grant_producer_ids(1000, 1000);
    assert!(!b.broker.wants_producer_ids());
    assert_eq!(init(&mut b, &req), (code::NONE, 1000, 0));
    // A KIP-360 re-init with the old id and epoch gets a new id too (no transactional id).
    let again = req.clone().with_producer_id(1000.into()).with_producer_epoch(0);
    assert_eq!(init(&mut b, &again), (code::NONE, 1001, 0));
    for _ in 0..898 {
        init(&mut b, &req);
    }
    assert!(
        b.broker.wants_producer_ids(),
        "900 of 1000 used: prefetch the next block"
    );
}

#[test]
fn init_producer_id_with_a_transactional_id_is_an_invalid_request() {
    let mut b = broker(&[1]);
    b.broker.grant_producer_ids(0, 10);
    for txn in ["orders-txn", ""] {
        let req = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_string(txn.into()))));
        assert_eq!(init(&mut b, &req), (code::INVALID_REQUEST, -1, -1));
    }
    let plain = InitProducerIdRequest::default().with_transactional_id(None);
    assert_eq!(init(&mut b, &plain), (code::NONE, 0, 0), "no id was spent");
}
