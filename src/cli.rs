//! L6: the command line (ARCHITECTURE §7; scripts and CI rely on it).
//!
//! ```text
//! gregor run SCENARIO --seed N [--json] [--history FILE]   exit 0 pass, 1 violated, 2 bad input
//! gregor sweep SCENARIO... --seeds A..B [--jobs J] [--shard I/N] [--json]
//!                                                          exit 0 all pass, 1 some failed, 2 bad input
//! gregor report [--out DIR] [--seeds N] [--jobs J] [--shard I/N] [--name NAME]   exit 0 once written
//! gregor report merge DIR... [--out DIR]                   one report from several shards' results.json
//! gregor bench [SCENARIO] [--seed N]                       speed and memory (release build)
//! gregor replay SCENARIO --seed N [--trace FILE] [--dump-disks DIR] [--dump-at SECONDS]
//!                                                          a run with its trace and its disks as files
//! gregor shrink SCENARIO --seed N [--class CLASS] [--out FILE] [--max-runs R]
//!                                                          the smallest scenario still showing the class
//! ```
//! `run`, `sweep` and `replay` take `--set SECTION.KEY=VALUE` (repeatable): see `scenario/overrides.rs`.

pub mod replay;
pub mod report;
pub mod shrink;
mod sweep;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::runner::{self, RunError, RunOptions};
use crate::scenario::Scenario;

#[derive(Parser, Debug)]
#[command(
    name = "gregor",
    version,
    about = "A deterministic simulation testbed for a Kafka-style event streaming system"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one seed of a scenario and check what must hold.
    Run {
        /// The scenario file (scenarios/*.toml).
        scenario: PathBuf,
        /// The seed: the same seed gives the same run, byte for byte, for one build and scenario text.
        #[arg(long)]
        seed: u64,
        /// End stdout with one JSON object summarizing the run.
        #[arg(long)]
        json: bool,
        /// Write the history (JSONL) to FILE and the state trace to FILE.states.jsonl.
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        /// Override one config key of the scenario (repeatable): producers.config.KEY=V, topics.config.KEY=V,
        /// cluster.broker_config.KEY=V, cluster.controller_config.KEY=V (Kafka's config names).
        #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
        sets: Vec<String>,
        /// Stop the simulation at the first broken online invariant (log-bounds, hw-regress, raft-leaders,
        /// ...): the history ends at that event, and only the state-trace invariants are checked.
        #[arg(long)]
        halt_on_violation: bool,
    },
    /// Run many seeds of one or more scenarios, one process per seed, and summarize.
    Sweep {
        /// Scenario files.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Seeds to run, both ends included: A..B.
        #[arg(long)]
        seeds: String,
        /// Child processes at a time (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Run only the I-th of N interleaved shares of the runs (1 <= I <= N).
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// End stdout with one JSON object holding every run's summary (`runs`).
        #[arg(long)]
        json: bool,
        /// Override one config key of every scenario (repeatable), as `run --set`.
        #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Run one seed again with its full trace written to files, and (--dump-disks) every node's simulated
    /// disk written out as real files in Kafka's layout. Exit codes as `run`.
    Replay {
        /// The scenario file.
        scenario: PathBuf,
        #[arg(long)]
        seed: u64,
        /// Write the history (JSONL) to FILE and the state trace to FILE.states.jsonl
        /// (default: NAME-seed-N.history.jsonl in the current folder).
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Write every node's disk to DIR/<node>/kafka-logs/ (DIR must be new or empty): what a process
        /// would read (unsynced writes included), durable lengths in DIR/<node>/disk-state.jsonl.
        #[arg(long, value_name = "DIR")]
        dump_disks: Option<PathBuf>,
        /// Dump the disks as they were at this simulated time (seconds since the run started, the history's
        /// clock) instead of at the end.
        #[arg(long, visible_alias = "at", value_name = "SECONDS")]
        dump_at: Option<f64>,
        /// Stop at the first broken online invariant, as `run --halt-on-violation`: the trace ends there and
        /// `--dump-disks` (without `--dump-at`) writes the disks as they were at that event.
        #[arg(long)]
        halt_on_violation: bool,
        /// End stdout with the run's JSON summary.
        #[arg(long)]
        json: bool,
        /// Override one config key of the scenario (repeatable), as `run --set`.
        #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Shrink a failing seed: remove and shorten faults, shorten the safety phase and trim the workload while
    /// the same anomaly class still appears with the same seed; print the smallest scenario as TOML.
    Shrink {
        /// The scenario file (a [swarm] is first written out as this seed's explicit faults).
        scenario: PathBuf,
        #[arg(long)]
        seed: u64,
        /// The class to keep (default: the first class with unexplained anomalies, else `vacuous` for a
        /// missed must_hit mark). A class the configuration allows may be named too.
        #[arg(long)]
        class: Option<String>,
        /// Also write the shrunk scenario to FILE.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Stop after this many runs (each candidate is one child process).
        #[arg(long, default_value_t = 60)]
        max_runs: usize,
    },
    /// Run the durability matrix (fault scenarios x acks x min.insync.replicas) and write a report.
    Report(report::ReportArgs),
    /// Measure the simulator's speed and memory on a scenario (build with --release).
    Bench {
        #[arg(default_value = "scenarios/smoke.toml")]
        scenario: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Run the seed this many times and report the median.
        #[arg(long, default_value_t = 5)]
        runs: u32,
    },
}

/// Parses the arguments and runs; the exit code follows ARCHITECTURE §7.
pub fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of stdout goes away (`gregor bench | head`), instead
    // of panicking on a broken pipe. SAFETY: restoring a signal's default disposition at startup, before any
    // thread exists, has no other effect.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    init_logging();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap prints help and version to stdout with success; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Run {
            scenario,
            seed,
            json,
            history,
            sets,
            halt_on_violation,
        } => {
            let opts = RunOptions {
                announce: true,
                halt_on_violation,
                ..RunOptions::default()
            };
            cmd_run(&scenario, &sets, seed, json, history.as_deref(), opts)
        }
        Command::Sweep {
            scenarios,
            seeds,
            jobs,
            shard,
            json,
            sets,
        } => sweep::cmd_sweep(&scenarios, &sets, &seeds, jobs, shard.as_deref(), json),
        Command::Replay {
            scenario,
            seed,
            trace,
            dump_disks,
            dump_at,
            halt_on_violation,
            json,
            sets,
        } => replay::cmd_replay(replay::ReplayArgs {
            halt_on_violation,
            scenario: &scenario,
            sets: &sets,
            seed,
            trace: trace.as_deref(),
            dump_disks: dump_disks.as_deref(),
            dump_at_s: dump_at,
            json,
        }),
        Command::Shrink {
            scenario,
            seed,
            class,
            out,
            max_runs,
        } => shrink::cmd_shrink(shrink::ShrinkArgs {
            scenario: &scenario,
            seed,
            class: class.as_deref(),
            out: out.as_deref(),
            max_runs,
        }),
        Command::Report(args) => report::cmd_report(args),
        Command::Bench { scenario, seed, runs } => cmd_bench(&scenario, seed, runs),
    }
}

fn load(path: &std::path::Path) -> Result<Scenario, ExitCode> {
    load_with(path, &[])
}

/// Loads a scenario with `--set` overrides; bad input prints why and becomes exit 2.
fn load_with(path: &std::path::Path, sets: &[String]) -> Result<Scenario, ExitCode> {
    let bad = |e: String| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    };
    let overrides = parse_sets(sets).map_err(bad)?;
    Scenario::load_with(path, &overrides).map_err(|e| bad(e.to_string()))
}

/// Parses every `--set`; the first bad one is the error.
pub(crate) fn parse_sets(sets: &[String]) -> Result<Vec<crate::scenario::Override>, String> {
    sets.iter().map(|s| crate::scenario::parse_override(s)).collect()
}

fn run_error(e: RunError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

fn cmd_run(
    path: &std::path::Path,
    sets: &[String],
    seed: u64,
    json: bool,
    history: Option<&std::path::Path>,
    opts: RunOptions,
) -> ExitCode {
    let s = match load_with(path, sets) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let outcome = match runner::run(&s, seed, opts) {
        Ok(o) => o,
        Err(e) => return run_error(e),
    };
    if let Some(file) = history {
        let states = PathBuf::from(format!("{}.states.jsonl", file.display()));
        let written = std::fs::write(file, outcome.history.ops_jsonl())
            .and_then(|()| std::fs::write(&states, outcome.history.states_jsonl()));
        if let Err(e) = written {
            eprintln!("error: cannot write the history to {}: {e}", file.display());
            return ExitCode::from(2);
        }
    }
    print!("{}", outcome.summary.render());
    if json {
        match serde_json::to_string(&outcome.summary) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("error: cannot serialize the summary: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let passed = outcome.summary.verdict == "pass";
    // The process exits next: freeing the history op by op would only cost time (a sweep runs this per seed).
    std::mem::forget(outcome);
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn cmd_bench(path: &std::path::Path, seed: u64, runs: u32) -> ExitCode {
    let s = match load(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build simulates ~10x slower; benchmark with `cargo run --release -- bench`");
    }
    // The same seed, `runs` times: the median wall time, and a determinism check for free.
    // Keep only the summaries: the peak RSS reported is then one run's.
    let mut outcomes = vec![];
    let mut records = 0;
    for _ in 0..runs.max(1) {
        match runner::run(&s, seed, RunOptions::default()) {
            Ok(o) => {
                records = o
                    .history
                    .ops
                    .iter()
                    .filter(|o| {
                        matches!(o.body, crate::history::OpBody::Send { .. })
                            && o.op_type == crate::history::OpType::Invoke
                    })
                    .count();
                outcomes.push(o.summary);
            }
            Err(e) => return run_error(e),
        }
    }
    let hashes: std::collections::BTreeSet<String> = outcomes.iter().map(|o| o.history_hash.clone()).collect();
    outcomes.sort_by(|a, b| a.safety_wall_seconds.total_cmp(&b.safety_wall_seconds));
    let r = &outcomes[outcomes.len() / 2];
    let wall = r.safety_wall_seconds.max(1e-9);
    let walls: Vec<String> = outcomes
        .iter()
        .map(|o| format!("{:.3}", o.safety_wall_seconds))
        .collect();
    println!(
        "bench {} seed {seed} ({}), median of {} runs (safety wall s: {})",
        r.scenario,
        r.verdict,
        outcomes.len(),
        walls.join(" ")
    );
    println!(
        "  safety phase: {:.1} simulated s in {:.3} wall s = {:.0}x real time",
        r.safety_sim_seconds,
        r.safety_wall_seconds,
        r.safety_sim_seconds / wall
    );
    println!(
        "  records sent: {records} = {:.0} records per wall second",
        records as f64 / wall
    );
    println!(
        "  network messages: {} = {:.0} per wall second, {:.2} wall us per message",
        r.safety_messages,
        r.safety_messages as f64 / wall,
        wall * 1e6 / (r.safety_messages.max(1) as f64)
    );
    println!(
        "  whole run: {:.1} simulated s in {:.3} wall s ({} messages)",
        r.sim_seconds, r.wall_seconds, r.messages
    );
    println!(
        "  peak RSS: {}",
        peak_rss().map_or("unknown".to_string(), |kb| format!("{:.1} MB", kb as f64 / 1024.0))
    );
    if hashes.len() != 1 {
        eprintln!(
            "error: the same seed gave {} different histories: non-determinism",
            hashes.len()
        );
        return ExitCode::from(1);
    }
    println!(
        "  deterministic: {} runs, one history {}",
        outcomes.len(),
        r.history_hash
    );
    ExitCode::SUCCESS
}

/// Peak resident set size in KiB (Linux `VmHWM`).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Log lines carry simulated time and the node's name; `RUST_LOG` filters them (default: warnings).
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(SimTime)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Prints the simulated time inside a simulation.
struct SimTime;

impl tracing_subscriber::fmt::time::FormatTime for SimTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        #[cfg(madsim)]
        if let Some(t) = madsim::time::TimeHandle::try_current() {
            return write!(w, "{:>10.6}s", t.elapsed().as_secs_f64());
        }
        write!(w, "{:>11}", "-")
    }
}
