//! One seed's timeline from its history and state trace (pure: the caller reads the files): fault windows,
//! acknowledged records that ended lost over time, leaders per partition, log end offset and high watermark
//! per replica of the partition that lost the most.

use std::collections::{BTreeMap, BTreeSet};

use super::results::{FaultWindow, Timeline};
use crate::history::{FaultPhase, Op, OpBody, OpType, ReplicaState};

/// At most this many points per replica series (thinned evenly, the last kept).
const MAX_POINTS: usize = 400;

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

/// Fault windows: each start paired with the next end of the same kind and target (instant faults and
/// faults still open at the end last until `end_s`).
pub fn fault_windows(ops: &[Op], end_s: f64) -> Vec<FaultWindow> {
    let mut open: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    let mut out: Vec<FaultWindow> = vec![];
    for op in ops {
        let OpBody::Fault {
            kind, target, phase, ..
        } = &op.body
        else {
            continue;
        };
        let key = (kind.clone(), target.clone());
        match phase {
            FaultPhase::Start => {
                open.entry(key).or_default().push(out.len());
                out.push(FaultWindow {
                    kind: kind.clone(),
                    target: target.clone(),
                    start_s: secs(op.time_us),
                    end_s,
                });
            }
            FaultPhase::End => {
                if let Some(i) = open.get_mut(&key).and_then(|v| (!v.is_empty()).then(|| v.remove(0))) {
                    out[i].end_s = secs(op.time_us);
                }
            }
        }
    }
    out
}

/// Acknowledged records never read by anyone: lost-write when at or below the highest offset read of their
/// partition, else unseen (ARCHITECTURE §6). Returns (ack time s, partition, is lost-write), by ack time.
pub fn lost_acks(ops: &[Op]) -> Vec<(f64, String, bool)> {
    let mut read: BTreeSet<&str> = BTreeSet::new();
    let mut top: BTreeMap<String, i64> = BTreeMap::new();
    for op in ops {
        if let OpBody::Poll {
            topic,
            partition,
            records,
            ..
        } = &op.body
        {
            for r in records {
                read.insert(r.value.as_str());
                let t = top.entry(format!("{topic}-{partition}")).or_insert(-1);
                *t = (*t).max(r.offset);
            }
        }
    }
    let mut out = vec![];
    for op in ops.iter().filter(|o| o.op_type == OpType::Ok) {
        let OpBody::Send {
            topic,
            partition,
            value,
            offset,
            ..
        } = &op.body
        else {
            continue;
        };
        if read.contains(value.as_str()) {
            continue;
        }
        let tp = format!("{topic}-{partition}");
        let below = offset.is_some_and(|o| o <= top.get(&tp).copied().unwrap_or(-1));
        out.push((secs(op.time_us), tp, below));
    }
    out
}

/// Leaders per partition, as the leaders themselves report (a broker's own row where it is the leader).
fn leaders(states: &[ReplicaState]) -> BTreeMap<String, Vec<[f64; 2]>> {
    let mut out: BTreeMap<String, Vec<[f64; 2]>> = BTreeMap::new();
    for s in states {
        let own = broker_id(&s.node) == Some(s.leader);
        if !own {
            continue;
        }
        let series = out.entry(format!("{}-{}", s.topic, s.partition)).or_default();
        if series.last().is_none_or(|p| p[1] != s.leader as f64) {
            series.push([secs(s.time_us), s.leader as f64]);
        }
    }
    out
}

fn broker_id(node: &str) -> Option<i32> {
    node.strip_prefix("broker-")?.parse().ok()
}

/// Each replica's (s, log end offset, high watermark) of one partition at each change, thinned.
fn replicas(states: &[ReplicaState], tp: &str) -> BTreeMap<String, Vec<[f64; 3]>> {
    let mut out: BTreeMap<String, Vec<[f64; 3]>> = BTreeMap::new();
    for s in states.iter().filter(|s| format!("{}-{}", s.topic, s.partition) == tp) {
        let series = out.entry(s.node.clone()).or_default();
        let point = [secs(s.time_us), s.log_end_offset as f64, s.high_watermark as f64];
        if series.last().is_none_or(|p| p[1] != point[1] || p[2] != point[2]) {
            series.push(point);
        }
    }
    for series in out.values_mut() {
        thin(series);
    }
    out
}

fn thin<T: Copy>(series: &mut Vec<T>) {
    if series.len() <= MAX_POINTS {
        return;
    }
    let step = series.len() as f64 / MAX_POINTS as f64;
    let last = series[series.len() - 1];
    let mut kept: Vec<T> = (0..MAX_POINTS).map(|i| series[(i as f64 * step) as usize]).collect();
    kept.push(last);
    *series = kept;
}

/// The timeline of one run. `head` carries the scenario, cell, seed, repro and why; the rest is filled here.
pub fn build(head: Timeline, ops: &[Op], states: &[ReplicaState]) -> Timeline {
    let end_s = ops.last().map_or(0.0, |o| secs(o.time_us));
    let lost = lost_acks(ops);
    let mut loss = vec![[0.0, 0.0, 0.0]];
    let (mut lw, mut un) = (0.0, 0.0);
    for (t, _, below) in &lost {
        if *below {
            lw += 1.0;
        } else {
            un += 1.0;
        }
        loss.push([*t, lw, un]);
    }
    loss.push([end_s, lw, un]);
    thin(&mut loss);
    let mut per_tp: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, tp, _) in &lost {
        *per_tp.entry(tp.as_str()).or_default() += 1;
    }
    let partition = per_tp
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(tp, _)| tp.to_string())
        .or_else(|| states.first().map(|s| format!("{}-{}", s.topic, s.partition)))
        .unwrap_or_default();
    Timeline {
        faults: fault_windows(ops, end_s),
        acked: ops
            .iter()
            .filter(|o| o.op_type == OpType::Ok && matches!(o.body, OpBody::Send { .. }))
            .count() as u64,
        loss,
        leaders: leaders(states),
        replicas: replicas(states, &partition),
        partition,
        end_s,
        ..head
    }
}

/// Parses the JSONL lines that are a `T` (the history mixes ops of kinds the timeline does not need, some
/// of which it cannot read as `T`); an empty result is an error.
pub fn parse_jsonl<T: serde::de::DeserializeOwned>(text: &str) -> Result<Vec<T>, String> {
    let parsed: Vec<T> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    if parsed.is_empty() && !text.trim().is_empty() {
        return Err("no line of the file could be read".into());
    }
    Ok(parsed)
}
