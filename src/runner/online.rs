//! The online invariants (ARCHITECTURE §6): the checker's state-trace monitors, run by the recorder after
//! every replica, Raft and metadata event as it happens, so a run knows the moment an invariant broke and
//! `--halt-on-violation` can stop the simulation there (with the disks as they were at that moment).

use crate::checker::invariants::{lines, StateMonitor};
use crate::history::{MetadataState, RaftState, ReplicaState};
use crate::sim::recorder::OnlineCheck;

#[derive(Default)]
pub struct OnlineInvariants(StateMonitor);

impl OnlineCheck for OnlineInvariants {
    fn replica(&mut self, s: &ReplicaState) -> Vec<String> {
        lines(self.0.replica.observe(s))
    }

    fn raft(&mut self, s: &RaftState) -> Vec<String> {
        lines(self.0.raft.observe(s))
    }

    fn metadata(&mut self, s: &MetadataState) -> Vec<String> {
        lines(self.0.metadata.observe(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader_report(hw: i64, time_us: u64) -> ReplicaState {
        ReplicaState {
            time_us,
            node: "broker-1".into(),
            incarnation: 0,
            topic: "t".into(),
            partition: 0,
            leader: 1,
            leader_epoch: 3,
            isr: vec![1],
            log_start_offset: 0,
            log_end_offset: 10,
            high_watermark: hw,
        }
    }

    #[test]
    fn a_high_watermark_that_drops_within_a_tenure_is_reported_at_the_event_that_drops_it() {
        let mut online = OnlineInvariants::default();
        assert!(online.replica(&leader_report(5, 1)).is_empty());
        assert!(online.replica(&leader_report(7, 2)).is_empty());
        let broken = online.replica(&leader_report(6, 3));
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert!(broken[0].starts_with("hw-regress t-0: "), "{}", broken[0]);
        assert!(online.replica(&leader_report(8, 4)).is_empty());
    }

    #[test]
    fn a_report_outside_its_log_bounds_breaks_log_bounds_at_once() {
        let mut online = OnlineInvariants::default();
        let mut s = leader_report(5, 1);
        s.log_start_offset = 6;
        let broken = online.replica(&s);
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert!(broken[0].starts_with("log-bounds t-0: "), "{}", broken[0]);
    }
}
