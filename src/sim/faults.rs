//! Faults that act inside a node, reaching it through hooks the lower layers define: dropped responses and
//! reset connections (madsim's TCP never loses data, so these are our own, and they are what make clients
//! retry requests that did take effect).

use std::sync::{Arc, Mutex};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::node::broker::{ResponseAction, ResponseFaults};

/// What the switch did, for coverage marks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseFaultCounts {
    pub dropped: u64,
    pub reset: u64,
    pub produce_dropped: u64,
    pub produce_reset: u64,
}

struct State {
    drop_rate: f64,
    reset_rate: f64,
    rng: ChaCha8Rng,
    counts: ResponseFaultCounts,
}

/// One broker's response faults, set by the nemesis; decisions come from the switch's own seeded stream.
#[derive(Clone)]
pub struct ResponseFaultSwitch(Arc<Mutex<State>>);

impl ResponseFaultSwitch {
    pub fn new(seed: u64) -> Self {
        let state = State {
            drop_rate: 0.0,
            reset_rate: 0.0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            counts: Default::default(),
        };
        ResponseFaultSwitch(Arc::new(Mutex::new(state)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops each response with probability `rate` (0 turns it off).
    pub fn set_drop_rate(&self, rate: f64) {
        self.lock().drop_rate = rate;
    }

    /// Resets the connection instead of each response with probability `rate` (0 turns it off).
    pub fn set_reset_rate(&self, rate: f64) {
        self.lock().reset_rate = rate;
    }

    pub fn counts(&self) -> ResponseFaultCounts {
        self.lock().counts
    }
}

impl ResponseFaults for ResponseFaultSwitch {
    fn on_response(&self, api_key: i16) -> ResponseAction {
        let mut s = self.lock();
        if s.drop_rate <= 0.0 && s.reset_rate <= 0.0 {
            return ResponseAction::Deliver;
        }
        let x: f64 = s.rng.random();
        let produce = api_key == 0;
        if x < s.drop_rate {
            s.counts.dropped += 1;
            s.counts.produce_dropped += produce as u64;
            ResponseAction::Drop
        } else if x < s.drop_rate + s.reset_rate {
            s.counts.reset += 1;
            s.counts.produce_reset += produce as u64;
            ResponseAction::Reset
        } else {
            ResponseAction::Deliver
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_delivers_when_off_and_draws_deterministically_when_on() {
        let a = ResponseFaultSwitch::new(9);
        assert_eq!(a.on_response(0), ResponseAction::Deliver);
        a.set_drop_rate(0.5);
        let b = ResponseFaultSwitch::new(9);
        b.set_drop_rate(0.5);
        let xs: Vec<_> = (0..50).map(|_| a.on_response(0)).collect();
        let ys: Vec<_> = (0..50).map(|_| b.on_response(0)).collect();
        assert_eq!(xs, ys);
        assert!(xs.contains(&ResponseAction::Drop) && xs.contains(&ResponseAction::Deliver));
        assert_eq!(a.counts().dropped, a.counts().produce_dropped);
        a.set_drop_rate(0.0);
        a.set_reset_rate(1.0);
        assert_eq!(a.on_response(1), ResponseAction::Reset);
        assert_eq!(a.counts().reset, 1);
        assert_eq!(a.counts().produce_reset, 0);
    }
}
