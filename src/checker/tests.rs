//! Every checker is fed a history with its anomaly and must catch it; legal Kafka behaviour must pass.

use std::collections::BTreeMap;

use super::*;
use crate::history::{FaultPhase, History, OpBody, OpType, ReadRecord};

struct H {
    h: History,
    producers: BTreeMap<String, ProducerFacts>,
    logs: Vec<ReplicaLog>,
}

impl H {
    fn new() -> H {
        let mut producers = BTreeMap::new();
        producers.insert(
            "p".to_string(),
            ProducerFacts {
                acks: 1,
                idempotence: false,
                retries: 0,
            },
        );
        H {
            h: History::default(),
            producers,
            logs: vec![],
        }
    }

    fn send(&mut self, t: u64, value: &str, ty: OpType, offset: Option<i64>) -> &mut Self {
        let body = |offset| OpBody::Send {
            topic: "t".into(),
            partition: 0,
            key: "k".into(),
            value: value.into(),
            offset,
        };
        self.h.push(t, "p", OpType::Invoke, body(None), None);
        self.h.push(t + 1, "p", ty, body(offset), None);
        self
    }

    fn poll(&mut self, t: u64, process: &str, from: i64, recs: &[(i64, &str)]) -> &mut Self {
        let records = recs
            .iter()
            .map(|(o, v)| ReadRecord {
                offset: *o,
                value: v.to_string(),
            })
            .collect();
        let body = OpBody::Poll {
            topic: "t".into(),
            partition: 0,
            fetch_offset: from,
            records,
        };
        self.h.push(t, process, OpType::Ok, body, None);
        self
    }

    fn power_loss(&mut self, t: u64, frontier: i64) -> &mut Self {
        let mut detail = BTreeMap::new();
        detail.insert("node".to_string(), serde_json::json!("broker-1"));
        detail.insert("frontier".to_string(), serde_json::json!({ "t-0": frontier }));
        let body = OpBody::Fault {
            kind: "power_loss".into(),
            target: "node:broker-1".into(),
            phase: FaultPhase::Start,
            detail,
        };
        self.h.push(t, "nemesis", OpType::Info, body, None);
        self
    }

    fn restart(&mut self, t: u64) -> &mut Self {
        let detail = BTreeMap::from([("node".to_string(), serde_json::json!("broker-1"))]);
        let body = OpBody::Fault {
            kind: "restart".into(),
            target: "node:broker-1".into(),
            phase: FaultPhase::End,
            detail,
        };
        self.h.push(t, "nemesis", OpType::Info, body, None);
        self
    }

    fn log(&mut self, recs: &[(i64, &str)]) -> &mut Self {
        let records: Vec<ReadRecord> = recs
            .iter()
            .map(|(o, v)| ReadRecord {
                offset: *o,
                value: v.to_string(),
            })
            .collect();
        let hw = records.last().map_or(0, |r| r.offset + 1);
        self.logs.push(ReplicaLog {
            node: "broker-1".into(),
            topic: "t".into(),
            partition: 0,
            high_watermark: hw,
            log_start_offset: 0,
            records,
        });
        self
    }

    fn check(&self) -> CheckReport {
        let final_state = FinalState {
            replica_logs: self.logs.clone(),
            liveness_failures: vec![],
        };
        check(&CheckInput {
            ops: &self.h.ops,
            states: &self.h.states,
            final_state: &final_state,
            producers: &self.producers,
        })
    }
}

fn violations(r: &CheckReport, class: &str) -> u64 {
    r.violations()[class]
}

#[test]
fn a_clean_history_passes_with_every_class_at_zero() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(5, "b", OpType::Ok, Some(1))
        .log(&[(0, "a"), (1, "b")])
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!(r.acked, 2);
    assert_eq!(r.violations().len(), CLASSES.len());
}

#[test]
fn an_acked_write_missing_below_the_highest_read_is_a_lost_write() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(5, "b", OpType::Ok, Some(1))
        .log(&[(1, "b")])
        .check();
    assert_eq!(violations(&r, "lost-write"), 1, "{:?}", r.anomalies);
    assert!(!r.passed());
}

#[test]
fn an_acked_write_never_read_above_every_read_is_unseen() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(5, "b", OpType::Ok, Some(1))
        .log(&[(0, "a")])
        .check();
    assert_eq!(violations(&r, "unseen"), 1, "{:?}", r.anomalies);
}

#[test]
fn a_loss_beyond_the_durable_frontier_of_a_later_power_loss_is_explained() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(5, "b", OpType::Ok, Some(1))
        .power_loss(10, 1)
        .send(20, "c", OpType::Ok, Some(1))
        .log(&[(0, "a"), (1, "c")])
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!(r.explained()["lost-write"], 1);
    assert!(r.allowed_reasons()["lost-write"].contains("durable frontier"));
}

#[test]
fn a_loss_inside_the_durable_frontier_is_not_explained() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(5, "b", OpType::Ok, Some(1))
        .power_loss(10, 2)
        .log(&[(0, "a")])
        .check();
    assert_eq!(violations(&r, "unseen"), 1, "{:?}", r.anomalies);
}

#[test]
fn a_loss_acked_after_the_restart_that_followed_a_power_loss_is_not_explained_by_it() {
    let r = H::new()
        .power_loss(1, 0)
        .restart(3)
        .send(5, "a", OpType::Ok, Some(0))
        .log(&[])
        .check();
    assert_eq!(violations(&r, "unseen"), 1, "{:?}", r.anomalies);
}

#[test]
fn an_ack_on_the_wire_at_the_power_loss_arriving_before_the_restart_is_explained() {
    // Appended and answered before the power loss; the answer arrived while the node was still down.
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .power_loss(2, 0)
        .restart(9)
        .log(&[])
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    let mut h = H::new();
    h.power_loss(1, 0);
    h.send(0, "a", OpType::Ok, Some(0));
    h.restart(9).log(&[]);
    assert!(h.check().passed(), "{:?}", h.check().anomalies);
}

#[test]
fn a_value_at_two_offsets_is_a_duplicate_unless_a_retrying_non_idempotent_producer_wrote_it() {
    let mut h = H::new();
    h.send(1, "a", OpType::Ok, Some(0)).log(&[(0, "a"), (1, "a")]);
    assert_eq!(violations(&h.check(), "duplicate"), 1);
    h.producers.get_mut("p").unwrap().retries = 5;
    let r = h.check();
    assert_eq!(violations(&r, "duplicate"), 0);
    assert_eq!(r.explained()["duplicate"], 1);
    h.producers.get_mut("p").unwrap().idempotence = true;
    assert_eq!(violations(&h.check(), "duplicate"), 1);
}

#[test]
fn two_values_at_one_offset_are_inconsistent_offsets() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Info, None)
        .poll(5, "c1", 0, &[(0, "a")])
        .log(&[(0, "b")])
        .check();
    assert_eq!(violations(&r, "inconsistent-offsets"), 1, "{:?}", r.anomalies);
}

#[test]
fn reading_a_failed_send_is_an_aborted_read_and_an_unsent_value_a_phantom() {
    let r = H::new()
        .send(1, "a", OpType::Fail, None)
        .log(&[(0, "a"), (1, "zzz")])
        .check();
    assert_eq!(violations(&r, "aborted-read"), 1);
    assert_eq!(violations(&r, "phantom-read"), 1);
}

#[test]
fn offsets_going_backwards_inside_a_poll_or_a_log_are_caught() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Ok, Some(1))
        .poll(5, "c1", 0, &[(1, "b"), (0, "a")])
        .log(&[(1, "b"), (0, "a")])
        .check();
    assert_eq!(violations(&r, "int-nonmonotonic-poll"), 1);
    assert_eq!(violations(&r, "nonmonotonic-log"), 1);
}

#[test]
fn polls_that_skip_or_go_back_are_caught() {
    let skip = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Ok, Some(1))
        .send(3, "c", OpType::Ok, Some(2))
        .poll(5, "c1", 0, &[(0, "a")])
        .poll(6, "c1", 1, &[(2, "c")])
        .log(&[(0, "a"), (1, "b"), (2, "c")])
        .check();
    assert_eq!(violations(&skip, "poll-skip"), 1, "{:?}", skip.anomalies);
    let seek = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Ok, Some(1))
        .poll(5, "c1", 0, &[(0, "a"), (1, "b")])
        .poll(6, "c1", 0, &[(0, "a")])
        .log(&[(0, "a"), (1, "b")])
        .check();
    // The second poll fetched from somewhere else (a seek): its sequence restarts and it is not judged.
    assert_eq!(violations(&seek, "nonmonotonic-poll"), 0, "{:?}", seek.anomalies);
    let back = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Ok, Some(1))
        .poll(5, "c1", 0, &[(0, "a"), (1, "b")])
        .poll(6, "c1", 2, &[(1, "b")])
        .log(&[(0, "a"), (1, "b")])
        .check();
    assert_eq!(violations(&back, "nonmonotonic-poll"), 1, "{:?}", back.anomalies);
}

#[test]
fn a_later_send_with_a_lower_offset_is_nonmonotonic_and_breaks_realtime_order() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(5))
        .send(10, "b", OpType::Ok, Some(3))
        .log(&[(3, "b"), (5, "a")])
        .check();
    assert_eq!(violations(&r, "nonmonotonic-send"), 1, "{:?}", r.anomalies);
    assert_eq!(violations(&r, "realtime-offset"), 1, "{:?}", r.anomalies);
}

#[test]
fn offset_reuse_after_a_power_loss_that_took_the_earlier_record_is_explained() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .power_loss(5, 0)
        .send(10, "b", OpType::Ok, Some(0))
        .log(&[(0, "b")])
        .check();
    assert!(r.passed(), "{:?}", r.anomalies);
    assert_eq!(r.explained()["realtime-offset"], 1);
}

#[test]
fn a_read_record_missing_from_every_final_log_is_read_then_lost() {
    let r = H::new()
        .send(1, "a", OpType::Ok, Some(0))
        .send(2, "b", OpType::Info, None)
        .poll(5, "c1", 0, &[(0, "a"), (1, "b")])
        .log(&[(0, "a")])
        .check();
    assert_eq!(violations(&r, "read-then-lost"), 1, "{:?}", r.anomalies);
}

#[test]
fn liveness_failures_are_reported() {
    let h = H::new();
    let final_state = FinalState {
        replica_logs: vec![],
        liveness_failures: vec!["partition t-0 has no leader".into()],
    };
    let r = check(&CheckInput {
        ops: &h.h.ops,
        states: &[],
        final_state: &final_state,
        producers: &h.producers,
    });
    assert_eq!(violations(&r, "liveness"), 1);
}
