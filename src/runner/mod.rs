//! L5: the runner: builds the cluster, runs the workload and the fault plan, heals, checks liveness,
//! drains, and hands everything to the checkers.

/// Coverage marks (stateright's Sometimes) a run can hit.
pub const MARKS: &[&str] = &[
    "broker-crashed-with-sends-in-flight",
    "broker-lost-power-with-sends-in-flight",
    "power-loss-lost-acked-records",
    "power-loss-kept-every-acked-record",
    "recovery-truncated-a-torn-batch",
];
