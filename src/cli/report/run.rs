//! The report's processes: one child `gregor run CELL --seed N --json` per seed, J at a time (sweep's pool
//! and progress bar), then one more run of a representative seed with `--history` for its timeline.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use super::matrix::{self, Cell};
use super::render::write_report;
use super::results::{GroupTimeline, Results, RunRecord, Timeline};
use super::{groups, timeline};
use crate::cli::sweep::{parse_shard, run_all, Job};
use crate::history::{Op, ReplicaState};

/// Runs the default report aims at: about 5 minutes on 2 cores in a release build (the session-5 sample
/// made 456 runs in 186 s on 2 cores: ~0.8 core-seconds a run).
pub const DEFAULT_RUN_BUDGET: u64 = 480;

/// Seeds per cell the default never goes below, however many cells the library has.
pub const MIN_DEFAULT_SEEDS: u64 = 3;

/// Measured core-seconds per run, for the plan's estimate.
const CORE_SECONDS_PER_RUN: f64 = 0.8;

/// The default seeds per cell: the run budget shared among the cells (rounded down), at least the floor.
pub fn default_seeds(cells: usize) -> u64 {
    (DEFAULT_RUN_BUDGET / cells.max(1) as u64).max(MIN_DEFAULT_SEEDS)
}

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub merge: Option<ReportCommand>,
    /// The report folder itself (default: reports/NAME).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seeds per cell (seeds 1..=N). Default: a budget of 480 runs (about 5 minutes on 2 cores) shared among
    /// the cells, at least 3.
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Only the fault scenarios whose name contains one of these (repeatable: `--only leader-crash`).
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,
    /// Child processes at a time (default: the number of cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only the I-th of N interleaved shares of the runs (1 <= I <= N); merge the shards' folders after.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// The report's name, and its folder under reports/.
    #[arg(long, default_value = "latest")]
    pub name: String,
    /// The scenario library to draw fault scenarios from.
    #[arg(long, value_name = "DIR", default_value = "scenarios")]
    pub scenarios: PathBuf,
}

#[derive(clap::Subcommand, Debug)]
pub enum ReportCommand {
    /// Combine the results.json of several report folders (shards) into one report.
    Merge {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The merged report's folder (default: reports/NAME).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[arg(long, default_value = "merged")]
        name: String,
    },
}

fn bad(e: String) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(format!(
            "--name {name:?}: a folder name under reports/ (no slashes, not hidden)"
        ));
    }
    Ok(())
}

pub fn cmd_report(args: ReportArgs) -> ExitCode {
    if let Some(ReportCommand::Merge { dirs, out, name }) = args.merge {
        return cmd_merge(&dirs, out, &name);
    }
    if args.seeds == Some(0) {
        return bad("--seeds 0: need at least one seed per cell".into());
    }
    if args.jobs == Some(0) {
        return bad("--jobs 0: need at least one child process at a time".into());
    }
    if let Err(e) = check_name(&args.name) {
        return bad(e);
    }
    let (shard_i, shard_n) = match args.shard.as_deref().map(parse_shard).transpose() {
        Ok(s) => s.unwrap_or((1, 1)),
        Err(e) => return bad(e),
    };
    let files = match matrix::scenario_files(&args.scenarios) {
        Ok(f) => f,
        Err(e) => return bad(format!("--scenarios {}: {e}", args.scenarios.display())),
    };
    let (mut cells, left_out) = matrix::matrix(&files);
    if !args.only.is_empty() {
        cells.retain(|c| args.only.iter().any(|o| c.scenario.contains(o.as_str())));
        if cells.is_empty() {
            return bad(format!(
                "--only {}: no fault scenario of {} matches",
                args.only.join(", "),
                args.scenarios.display()
            ));
        }
    }
    if cells.is_empty() {
        return bad(format!("no fault scenario in {}", args.scenarios.display()));
    }
    let seeds = args.seeds.unwrap_or_else(|| default_seeds(cells.len()));
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return bad(format!("cannot find this executable to run the seeds: {e}")),
    };
    let out_dir = args.out.unwrap_or_else(|| Path::new("reports").join(&args.name));
    let mut command = format!("gregor report --seeds {seeds}");
    for o in &args.only {
        command.push_str(&format!(" --only {o}"));
    }
    if let Some(s) = &args.shard {
        command.push_str(&format!(" --shard {s}"));
    }
    let start = crate::rt::wall_clock();
    let mine = jobs_of(&cells, seeds, shard_i, shard_n);
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    eprintln!(
        "{}",
        plan(
            &cells,
            seeds,
            args.seeds.is_none(),
            mine.len(),
            jobs,
            (shard_i, shard_n)
        )
    );
    let records = run_matrix(&exe, mine, jobs);
    let wall = (crate::rt::wall_clock() - start).as_secs_f64();
    let timelines = representative(&records)
        .and_then(|(r, why)| {
            timeline_of(&exe, r, why)
                .map_err(|e| eprintln!("warning: no timeline: {e}"))
                .ok()
        })
        .into_iter()
        .collect();
    let group_timelines = group_timelines(&exe, &cells, &records);
    let results = Results {
        name: args.name.clone(),
        commits: records
            .iter()
            .map(|r| r.commit.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        command,
        seeds_per_cell: seeds,
        shards: vec![[shard_i, shard_n]],
        shard_wall_seconds: vec![wall],
        left_out,
        runs: records,
        timelines,
        group_timelines,
    };
    finish(&out_dir, &results)
}

fn finish(out_dir: &Path, results: &Results) -> ExitCode {
    match write_report(out_dir, results) {
        Ok(files) => {
            let cells = super::aggregate::cells(&results.runs);
            for c in &cells {
                println!(
                    "{:<28} {:<44} {:<12} {}",
                    c.scenario,
                    c.config(),
                    c.judgement(),
                    c.measured()
                );
            }
            println!(
                "report written: {} ({} files, {} runs)",
                out_dir.join("index.html").display(),
                files.len(),
                results.runs.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => bad(e),
    }
}

/// What the report is about to run, printed before it starts.
pub fn plan(cells: &[Cell], seeds: u64, default: bool, runs: usize, jobs: usize, shard: (u64, u64)) -> String {
    let scenarios: BTreeSet<&str> = cells.iter().map(|c| c.scenario.as_str()).collect();
    let unclean = cells.iter().filter(|c| c.unclean_leader_election).count();
    let why = if default {
        format!(
            " (default: a budget of {DEFAULT_RUN_BUDGET} runs over {} cells, at least {MIN_DEFAULT_SEEDS}; --seeds N to choose)",
            cells.len()
        )
    } else {
        String::new()
    };
    let estimate_s = runs as f64 * CORE_SECONDS_PER_RUN / jobs.max(1) as f64;
    format!(
        "report plan: {} fault scenarios, {} cells ({unclean} with unclean.leader.election.enable=true) x {seeds} seeds{why}\n\
         report plan: {runs} runs in shard {}/{}, {jobs} at a time: about {:.0} minutes at ~{CORE_SECONDS_PER_RUN} core-seconds a run",
        scenarios.len(),
        cells.len(),
        shard.0,
        shard.1,
        (estimate_s / 60.0).max(1.0)
    )
}

/// This shard's runs: every cell x seed, interleaved by index as `sweep --shard` does.
fn jobs_of(cells: &[Cell], seeds: u64, shard_i: u64, shard_n: u64) -> Vec<(Cell, u64)> {
    cells
        .iter()
        .flat_map(|c| (1..=seeds).map(move |seed| (c.clone(), seed)))
        .enumerate()
        .filter(|(k, _)| (*k as u64) % shard_n == shard_i - 1)
        .map(|(_, j)| j)
        .collect()
}

fn run_matrix(exe: &Path, mine: Vec<(Cell, u64)>, jobs: usize) -> Vec<RunRecord> {
    let queue: VecDeque<Job> = mine
        .iter()
        .map(|(c, seed)| Job {
            scenario: c.file.clone(),
            sets: c.sets.clone(),
            seed: *seed,
        })
        .collect();
    let outcomes = run_all(exe, queue, jobs.max(1));
    mine.into_iter()
        .zip(outcomes)
        .map(|((c, seed), o)| {
            let mut r = RunRecord {
                scenario: c.scenario.clone(),
                scenario_file: c.file.display().to_string(),
                acks: c.acks.clone(),
                min_insync_replicas: c.min_insync_replicas,
                replication_factor: c.replication_factor,
                unclean_leader_election: c.unclean_leader_election,
                sets: c.sets.clone(),
                seed,
                repro: format!(
                    "cargo run --release -- run {} --seed {seed}{}",
                    c.file.display(),
                    c.sets.iter().map(|s| format!(" --set {s}")).collect::<String>()
                ),
                ..RunRecord::default()
            };
            r.fill(&o.summary);
            r
        })
        .collect()
}

/// The seed to draw over time: a failing run of a cell that promises no loss, else any failing run, else the
/// run that lost the most acknowledged records.
pub fn representative(runs: &[RunRecord]) -> Option<(&RunRecord, String)> {
    let failing = |r: &&RunRecord| r.verdict == "fail";
    if let Some(r) = runs.iter().filter(failing).find(|r| r.acks == "all" && r.in_contract) {
        return Some((r, "a failing in-contract run of an acks=all cell".into()));
    }
    if let Some(r) = runs.iter().find(failing) {
        return Some((r, "the first failing run".into()));
    }
    runs.iter()
        .filter(|r| r.lost_acked > 0)
        .max_by_key(|r| r.lost_acked)
        .map(|r| {
            (
                r,
                "no run failed; the run that lost the most acknowledged records".into(),
            )
        })
}

/// Runs the seed again with `--history` and reads its history and state trace.
fn history_of(exe: &Path, r: &RunRecord) -> Result<(Vec<Op>, Vec<ReplicaState>), String> {
    let dir = std::env::temp_dir().join(format!(
        "gregor-report-{}-{}-{}",
        std::process::id(),
        r.scenario,
        r.seed
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let history = dir.join("history.jsonl");
    let status = Command::new(exe)
        .arg("run")
        .arg(&r.scenario_file)
        .args(["--seed", &r.seed.to_string(), "--history"])
        .arg(&history)
        .args(r.sets.iter().flat_map(|s| ["--set", s.as_str()]))
        .env("RUST_LOG", "off") // its log goes nowhere (see `sweep::run_one`)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot start `{} run`: {e}", exe.display()))?;
    if !matches!(status.code(), Some(0 | 1)) {
        return Err(format!("`{}` exited with {status}", r.repro));
    }
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let ops = timeline::parse_jsonl(&read(&history)?)?;
    let states = timeline::parse_jsonl(&read(&PathBuf::from(format!("{}.states.jsonl", history.display())))?)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((ops, states))
}

/// Runs the seed again with `--history` and draws its timeline.
fn timeline_of(exe: &Path, r: &RunRecord, why: String) -> Result<Timeline, String> {
    let (ops, states) = history_of(exe, r)?;
    let head = Timeline {
        scenario: r.scenario.clone(),
        acks: r.acks.clone(),
        min_insync_replicas: r.min_insync_replicas,
        seed: r.seed,
        repro: r.repro.clone(),
        why,
        ..Timeline::default()
    };
    Ok(timeline::build(head, &ops, &states))
}

/// The seed to draw a group scenario's lag from: its first failing run, else the first run of its acks=all
/// cell at the highest `min.insync.replicas` with the file's election setting.
pub fn group_representative<'a>(runs: &'a [RunRecord], scenario: &str) -> Option<(&'a RunRecord, String)> {
    let mine: Vec<&RunRecord> = runs.iter().filter(|r| r.scenario == scenario).collect();
    if let Some(r) = mine.iter().find(|r| r.verdict == "fail") {
        return Some((r, "its first failing run".into()));
    }
    mine.iter()
        .filter(|r| r.acks == "all" && !r.unclean_leader_election)
        .max_by_key(|r| (r.min_insync_replicas, std::cmp::Reverse(r.seed)))
        .or(mine.first())
        .map(|r| (*r, "no run failed; the first seed of its acks=all cell".into()))
}

/// One group timeline per scenario with `[[consumer_groups]]` that ran in this shard.
fn group_timelines(exe: &Path, cells: &[Cell], runs: &[RunRecord]) -> Vec<GroupTimeline> {
    let scenarios: BTreeSet<&str> = cells
        .iter()
        .filter(|c| c.consumer_groups)
        .map(|c| c.scenario.as_str())
        .collect();
    let mut out = vec![];
    for s in scenarios {
        let Some((r, why)) = group_representative(runs, s) else {
            continue;
        };
        match history_of(exe, r) {
            Ok((ops, states)) => {
                let head = GroupTimeline {
                    scenario: r.scenario.clone(),
                    acks: r.acks.clone(),
                    min_insync_replicas: r.min_insync_replicas,
                    seed: r.seed,
                    repro: r.repro.clone(),
                    why,
                    ..GroupTimeline::default()
                };
                out.push(groups::build(head, &ops, &states));
            }
            Err(e) => eprintln!("warning: no group timeline for {s}: {e}"),
        }
    }
    out
}

/// `gregor report merge DIR... [--out DIR]`: one report from several folders' results.json.
fn cmd_merge(dirs: &[PathBuf], out: Option<PathBuf>, name: &str) -> ExitCode {
    if let Err(e) = check_name(name) {
        return bad(e);
    }
    let mut parts = vec![];
    for d in dirs {
        let file = d.join("results.json");
        let parsed = std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Results>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(r) => parts.push(r),
            Err(e) => return bad(format!("{}: {e}", file.display())),
        }
    }
    let merged = merge(name, dirs, parts);
    let out_dir = out.unwrap_or_else(|| Path::new("reports").join(name));
    finish(&out_dir, &merged)
}

/// Combines shards: runs deduplicated by cell and seed, the first timeline, every shard's wall time.
pub fn merge(name: &str, dirs: &[PathBuf], parts: Vec<Results>) -> Results {
    let mut m = Results {
        name: name.to_string(),
        command: format!(
            "gregor report merge {}",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        ..Results::default()
    };
    let mut seen = BTreeSet::new();
    for p in parts {
        m.seeds_per_cell = m.seeds_per_cell.max(p.seeds_per_cell);
        m.shards.extend(p.shards);
        m.shard_wall_seconds.extend(p.shard_wall_seconds);
        for c in p.commits {
            if !m.commits.contains(&c) {
                m.commits.push(c);
            }
        }
        for l in p.left_out {
            if !m.left_out.contains(&l) {
                m.left_out.push(l);
            }
        }
        for r in p.runs {
            if seen.insert((super::aggregate::key_of(&r), r.seed)) {
                m.runs.push(r);
            }
        }
        if m.timelines.is_empty() {
            m.timelines = p.timelines;
        }
        for g in p.group_timelines {
            if !m.group_timelines.iter().any(|h| h.scenario == g.scenario) {
                m.group_timelines.push(g);
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_seeds_share_the_run_budget_among_the_cells_with_a_floor() {
        assert_eq!(default_seeds(96), 5);
        assert_eq!(default_seeds(10), 48);
        assert_eq!(default_seeds(400), MIN_DEFAULT_SEEDS);
        assert_eq!(default_seeds(0), DEFAULT_RUN_BUDGET);
    }

    #[test]
    fn the_plan_names_cells_seeds_runs_and_why_the_default() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"));
        let (cells, _) = matrix::matrix(&matrix::scenario_files(dir).unwrap());
        let seeds = default_seeds(cells.len());
        let p = plan(&cells, seeds, true, cells.len() * seeds as usize, 2, (1, 1));
        assert!(p.contains(&format!("{} cells", cells.len())), "{p}");
        assert!(
            p.contains(&format!("x {seeds} seeds (default: a budget of 480 runs")),
            "{p}"
        );
        let runs = cells.len() * seeds as usize;
        let minutes = runs as f64 * CORE_SECONDS_PER_RUN / 2.0 / 60.0;
        assert!(p.contains(&format!("about {minutes:.0} minutes")), "{p}");
        assert!(
            (1.0..=6.0).contains(&minutes),
            "the default should take about 5 minutes or less: {p}"
        );
    }

    #[test]
    fn a_group_scenario_draws_its_failing_run_else_its_acks_all_cell() {
        let run = |acks: &str, isr, seed, verdict: &str| RunRecord {
            scenario: "g".into(),
            acks: acks.into(),
            min_insync_replicas: isr,
            seed,
            verdict: verdict.into(),
            ..RunRecord::default()
        };
        let runs = vec![
            run("1", 2, 1, "pass"),
            run("all", 1, 1, "pass"),
            run("all", 2, 2, "pass"),
            run("all", 2, 1, "pass"),
        ];
        let (r, _) = group_representative(&runs, "g").unwrap();
        assert_eq!((r.acks.as_str(), r.min_insync_replicas, r.seed), ("all", 2, 1));
        let mut runs = runs;
        runs.push(run("0", 2, 3, "fail"));
        assert_eq!(group_representative(&runs, "g").unwrap().0.seed, 3);
        assert!(group_representative(&runs, "other").is_none());
    }
}
