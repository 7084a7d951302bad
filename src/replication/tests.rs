//! The replication core's rules, as Kafka states them, and a model-based proptest of HW and ISR.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::protocol::errors::code;
use crate::types::TopicPartition;

const LAG: i64 = 30_000;

fn eligible_all(ids: &[i32]) -> BTreeMap<i32, ReplicaEligibility> {
    ids.iter()
        .map(|id| {
            let e = ReplicaEligibility {
                broker_epoch: 10 + i64::from(*id),
                fenced: false,
                in_controlled_shutdown: false,
            };
            (*id, e)
        })
        .collect()
}

/// Leader 1 of replicas [1, 2, 3], all in the ISR, at log end 0, time 0.
fn leader() -> LeaderState {
    let mut l = LeaderState::new(1, 5, 7, vec![1, 2, 3], vec![1, 2, 3], 0, 0, 0, LAG);
    l.set_eligibility(eligible_all(&[1, 2, 3]));
    l
}

fn commit(l: &mut LeaderState, now_ms: i64) {
    let p = l.take_proposal().expect("a proposal");
    let isr = p.isr.iter().map(|m| m.broker_id).collect();
    let outcome = AlterPartitionOutcome::Committed {
        leader_epoch: l.leader_epoch(),
        partition_epoch: l.partition_epoch() + 1,
        isr,
    };
    l.on_alter_partition(outcome, now_ms);
}

#[test]
fn the_high_watermark_is_the_minimum_log_end_offset_over_the_isr() {
    let mut l = leader();
    assert!(!l.on_leader_append(10, 1));
    assert_eq!(l.high_watermark(), 0);
    assert_eq!(l.update_follower_fetch(2, 10, 2), Some(false), "3 has not fetched yet");
    assert_eq!(l.update_follower_fetch(3, 6, 3), Some(true));
    assert_eq!(l.high_watermark(), 6);
    assert_eq!(l.update_follower_fetch(3, 10, 4), Some(true));
    assert_eq!(l.high_watermark(), 10);
    assert_eq!(l.update_follower_fetch(9, 10, 4), None, "9 is no replica");
}

#[test]
fn a_new_leader_waits_for_its_isr_before_moving_the_high_watermark() {
    let mut l = LeaderState::new(1, 6, 8, vec![1, 2, 3], vec![1, 2, 3], 20, 12, 100, LAG);
    l.set_eligibility(eligible_all(&[1, 2, 3]));
    assert_eq!(l.high_watermark(), 12, "carried over");
    assert_eq!(l.epoch_start_offset(), 20);
    l.update_follower_fetch(2, 20, 101);
    assert_eq!(l.high_watermark(), 12, "follower 3's end is unknown");
    l.update_follower_fetch(3, 15, 102);
    assert_eq!(l.high_watermark(), 15);
}

#[test]
fn a_lagging_follower_leaves_the_isr_only_after_replica_lag_time_max_ms_and_only_once_committed() {
    let mut l = leader();
    l.on_leader_append(10, 0);
    l.update_follower_fetch(2, 10, 1);
    l.update_follower_fetch(3, 4, 1);
    assert_eq!(l.high_watermark(), 4);
    assert!(!l.maybe_shrink_isr(LAG), "not yet lagging for longer than the lag time");
    assert!(l.maybe_shrink_isr(LAG + 1));
    assert_eq!(l.pending().map(|p| p.change.clone()), Some(IsrChange::Shrink(vec![3])));
    // A pending shrink does not count: the high watermark still waits for 3 (KIP-497).
    assert_eq!(l.maximal_isr(), vec![1, 2, 3]);
    l.maybe_increment_high_watermark(LAG + 2);
    assert_eq!(l.high_watermark(), 4);
    let p = l.take_proposal().unwrap();
    assert_eq!(
        p.isr,
        vec![
            IsrMember {
                broker_id: 1,
                broker_epoch: 11
            },
            IsrMember {
                broker_id: 2,
                broker_epoch: 12
            }
        ]
    );
    assert!(l.take_proposal().is_none(), "sent once");
    let moved = l.on_alter_partition(
        AlterPartitionOutcome::Committed {
            leader_epoch: 5,
            partition_epoch: 8,
            isr: vec![1, 2],
        },
        LAG + 3,
    );
    assert!(moved);
    assert_eq!((l.isr(), l.high_watermark(), l.partition_epoch()), (&[1, 2][..], 10, 8));
}

#[test]
fn a_follower_rejoins_only_with_the_high_watermark_and_the_epoch_start_offset_kafka_7128() {
    let mut l = LeaderState::new(1, 5, 7, vec![1, 2, 3], vec![1, 2], 30, 20, 0, LAG);
    l.set_eligibility(eligible_all(&[1, 2, 3]));
    l.update_follower_fetch(2, 30, 1);
    assert_eq!(l.high_watermark(), 30);
    l.on_leader_append(40, 2);
    l.update_follower_fetch(3, 25, 3);
    assert!(l.pending().is_none(), "below the high watermark");
    l.update_follower_fetch(2, 40, 3);
    l.update_follower_fetch(3, 35, 4);
    assert!(l.pending().is_none(), "35 < hw 40");
    l.update_follower_fetch(3, 40, 5);
    assert_eq!(l.pending().map(|p| p.change.clone()), Some(IsrChange::Expand(3)));
    assert_eq!(l.maximal_isr(), vec![1, 2, 3], "a pending addition counts at once");
    commit(&mut l, 6);
    assert_eq!(l.isr(), &[1, 2, 3]);
}

#[test]
fn a_follower_below_the_epoch_start_offset_does_not_join_even_at_the_high_watermark() {
    // HW 10, but this epoch began at 30: a follower at 20 has the HW yet lacks the epoch's start.
    let mut l = LeaderState::new(1, 5, 7, vec![1, 2], vec![1], 30, 10, 0, LAG);
    l.set_eligibility(eligible_all(&[1, 2]));
    l.update_follower_fetch(2, 20, 1);
    assert!(l.pending().is_none());
    l.update_follower_fetch(2, 30, 2);
    assert!(l.pending().is_some());
}

#[test]
fn a_fenced_or_shutting_down_follower_never_joins_kip_841() {
    for (fenced, shutdown) in [(true, false), (false, true)] {
        let mut l = LeaderState::new(1, 5, 7, vec![1, 2], vec![1], 0, 0, 0, LAG);
        let mut e = eligible_all(&[1, 2]);
        e.get_mut(&2).unwrap().fenced = fenced;
        e.get_mut(&2).unwrap().in_controlled_shutdown = shutdown;
        l.set_eligibility(e);
        l.update_follower_fetch(2, 0, 1);
        assert!(l.pending().is_none(), "fenced={fenced} shutdown={shutdown}");
    }
}

#[test]
fn a_rejected_proposal_is_dropped_and_a_failed_send_is_sent_again() {
    let mut l = leader();
    l.on_leader_append(5, 0);
    l.update_follower_fetch(2, 5, 1);
    assert!(l.maybe_shrink_isr(LAG + 10));
    assert!(l.take_proposal().is_some());
    l.proposal_unsent();
    assert!(l.take_proposal().is_some(), "sent again");
    l.on_alter_partition(AlterPartitionOutcome::Rejected(code::INVALID_REQUEST), LAG + 11);
    assert!(l.pending().is_none());
    assert_eq!(l.isr(), &[1, 2, 3]);
}

#[test]
fn acks_all_completes_at_the_high_watermark_and_reports_a_shrunk_isr() {
    let mut l = leader();
    l.on_leader_append(3, 0);
    assert_eq!(l.acks_all_status(3, 2), WaitStatus::Waiting);
    l.update_follower_fetch(2, 3, 1);
    l.update_follower_fetch(3, 3, 1);
    assert_eq!(l.acks_all_status(3, 2), WaitStatus::Done(code::NONE));
    assert_eq!(
        l.acks_all_status(3, 4),
        WaitStatus::Done(code::NOT_ENOUGH_REPLICAS_AFTER_APPEND)
    );
}

#[test]
fn the_purgatory_completes_when_every_partition_is_done_or_times_out() {
    let mut p: AcksPurgatory<u64, &str> = AcksPurgatory::default();
    let a = TopicPartition::new("t", 0);
    let b = TopicPartition::new("t", 1);
    p.park(1, "one", 100, vec![(a.clone(), 5, 0), (b.clone(), 9, 0)]);
    p.park(2, "two", 50, vec![(b.clone(), 9, 0)]);
    assert_eq!(p.next_deadline(), Some(50));
    let done = p.poll(10, |tp, _, _| {
        if *tp == a {
            WaitStatus::Done(0)
        } else {
            WaitStatus::Waiting
        }
    });
    assert!(done.is_empty());
    let done = p.poll(50, |_, _, _| WaitStatus::Waiting);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].2[&b], code::REQUEST_TIMED_OUT);
    let done = p.poll(60, |_, _, _| WaitStatus::Done(0));
    assert_eq!((done[0].0, done[0].1), (1, "one"));
    assert_eq!(done[0].2.values().copied().collect::<Vec<_>>(), vec![0, 0]);
    assert!(p.is_empty());
}

#[test]
fn the_leader_reports_divergence_only_for_a_fetch_past_its_epoch_end() {
    // Leader epochs: 3 ends at 50.
    assert_eq!(diverging_epoch(-1, 70, Some((3, 50))), None, "no epoch: no check");
    assert_eq!(diverging_epoch(3, 40, Some((3, 50))), None);
    let d = diverging_epoch(3, 70, Some((3, 50))).unwrap();
    assert_eq!((d.leader_epoch, d.end_offset), (3, 50));
    let d = diverging_epoch(4, 40, Some((3, 50))).unwrap();
    assert_eq!(d.leader_epoch, 3, "the leader never had epoch 4");
}

#[test]
fn the_follower_truncates_by_epoch_never_to_its_high_watermark_kip_101_kip_279() {
    let d = EpochEndOffset {
        leader_epoch: 3,
        end_offset: 50,
    };
    assert_eq!(truncation_offset(d, Some((3, 70)), 70), Some(50));
    assert_eq!(truncation_offset(d, Some((3, 40)), 40), Some(40), "nothing to cut");
    // The follower's epoch ≤ 3 is 2, ending at 45: cut there, then ask again with epoch 2 (KIP-279).
    assert_eq!(truncation_offset(d, Some((2, 45)), 70), Some(45));
    assert_eq!(truncation_offset(d, None, 70), Some(50));
    assert_eq!(truncation_offset(EpochEndOffset::UNDEFINED, Some((3, 70)), 70), None);
    assert_eq!(follower_high_watermark(90, 0, 70), 70);
    assert_eq!(follower_high_watermark(60, 0, 70), 60);
    // KAFKA-9491: below the log start (a full truncation, a checkpoint older than retention) it is the start.
    assert_eq!(follower_high_watermark(0, 576, 3377), 576);
    assert_eq!(follower_high_watermark(0, 8088, 8088), 8088);
}

#[derive(Clone, Debug)]
enum Op {
    Append(i64),
    /// Follower (2 or 3) fetches at a fraction (per mille) of the way from its end to the leader's.
    Fetch(i32, u16),
    Tick(i64),
    Shrink,
    Commit,
    Reject,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1i64..5).prop_map(Op::Append),
        (2i32..4, 0u16..=1000).prop_map(|(f, p)| Op::Fetch(f, p)),
        (1i64..20_000).prop_map(Op::Tick),
        Just(Op::Shrink),
        Just(Op::Commit),
        Just(Op::Reject),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Against a model of follower log ends: the high watermark never goes back, never passes the leader's
    /// log end, and every committed ISR member (any broker the controller may elect) holds it.
    #[test]
    fn the_high_watermark_is_monotonic_and_held_by_every_committed_isr_member(ops in prop::collection::vec(op(), 1..80)) {
        let mut l = leader();
        let mut now = 0i64;
        let mut leo = 0i64;
        let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
        let mut hw = l.high_watermark();
        for op in ops {
            match op {
                Op::Append(n) => { leo += n; l.on_leader_append(leo, now); }
                Op::Fetch(f, per_mille) => {
                    let from = *ends.get(&f).unwrap_or(&0);
                    let at = from + (leo - from) * i64::from(per_mille) / 1000;
                    ends.insert(f, at);
                    l.update_follower_fetch(f, at, now);
                }
                Op::Tick(dt) => { now += dt; l.maybe_increment_high_watermark(now); }
                Op::Shrink => { l.maybe_shrink_isr(now); }
                Op::Commit => if l.pending().is_some() { l.proposal_unsent(); commit(&mut l, now); },
                Op::Reject => if l.pending().is_some() {
                    l.on_alter_partition(AlterPartitionOutcome::Rejected(code::INELIGIBLE_REPLICA), now);
                },
            }
            prop_assert!(l.high_watermark() >= hw, "hw went back {} -> {}", hw, l.high_watermark());
            prop_assert!(l.high_watermark() <= leo);
            hw = l.high_watermark();
            for m in l.maximal_isr().iter().filter(|m| **m != 1) {
                let end = ends.get(m).copied().unwrap_or(0);
                prop_assert!(end >= hw, "ISR member {} at {} below hw {}", m, end, hw);
            }
            prop_assert!(l.isr().contains(&1), "the leader stays in its ISR");
        }
    }
}
