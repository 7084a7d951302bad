//! `gregor sweep SCENARIO... --seeds A..B [--jobs J] [--shard I/N] [--json]`: many seeds of many scenarios,
//! one process per seed (ARCHITECTURE §4: a seed found inside a multi-seed batch may not replay alone), J at
//! a time. Each child is `gregor run SCENARIO --seed N --json`; its last stdout line is its summary.
//!
//! Prints a table per scenario (pass, fail, in and out of contract, each mark's share of seeds against
//! `expect.sweep_must_hit`), then every failing seed with its repro line (seed, commit, scenario hash).
//! Exit 0 when every run passed and every `sweep_must_hit` share was reached, 1 otherwise, 2 on bad input.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::scenario::Scenario;

/// An inclusive seed range `A..B`.
pub fn parse_seeds(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("--seeds {s:?}: expected A..B (both ends included), e.g. 1..100"))?;
    let num = |x: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|_| format!("--seeds {s:?}: {x:?} is not a seed (a non-negative integer)"))
    };
    let (a, b) = (num(a)?, num(b)?);
    if a > b {
        return Err(format!("--seeds {s:?}: the range is empty ({a} > {b})"));
    }
    Ok((a, b))
}

/// `--shard I/N`: this process runs the I-th of N interleaved shares of the runs (1 <= I <= N).
pub fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard {s:?}: expected I/N, e.g. 1/4"))?;
    let num = |x: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|_| format!("--shard {s:?}: {x:?} is not a number"))
    };
    let (i, n) = (num(i)?, num(n)?);
    if n == 0 || i == 0 || i > n {
        return Err(format!("--shard {s:?}: need 1 <= I <= N"));
    }
    Ok((i, n))
}

pub(crate) struct Job {
    pub scenario: PathBuf,
    /// `--set` overrides passed to the child.
    pub sets: Vec<String>,
    pub seed: u64,
}

/// One child's result: its summary, or why there is none.
pub(crate) struct Outcome {
    pub scenario: PathBuf,
    pub seed: u64,
    pub summary: Result<Value, String>,
}

pub fn cmd_sweep(
    scenarios: &[PathBuf],
    sets: &[String],
    seeds: &str,
    jobs: Option<usize>,
    shard: Option<&str>,
    json_out: bool,
) -> ExitCode {
    let bad = |e: String| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    };
    let (a, b) = match parse_seeds(seeds) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let (shard_i, shard_n) = match shard.map(parse_shard).transpose() {
        Ok(s) => s.unwrap_or((1, 1)),
        Err(e) => return bad(e),
    };
    if scenarios.is_empty() {
        return bad("sweep needs at least one scenario file".into());
    }
    let overrides = match super::parse_sets(sets) {
        Ok(o) => o,
        Err(e) => return bad(e),
    };
    let mut loaded = BTreeMap::new();
    for path in scenarios {
        match Scenario::load_with(path, &overrides) {
            Ok(s) => {
                loaded.insert(path.clone(), s);
            }
            Err(e) => return bad(e.to_string()),
        }
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return bad(format!("cannot find this executable to run the seeds: {e}")),
    };
    let all: Vec<Job> = scenarios
        .iter()
        .flat_map(|p| {
            (a..=b).map(move |seed| Job {
                scenario: p.clone(),
                sets: sets.to_vec(),
                seed,
            })
        })
        .collect();
    let mine: VecDeque<Job> = all
        .into_iter()
        .enumerate()
        .filter(|(k, _)| (*k as u64) % shard_n == shard_i - 1)
        .map(|(_, j)| j)
        .collect();
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let outcomes = run_all(&exe, mine, jobs);
    let (table, failed) = report(&loaded, &outcomes);
    print!("{table}");
    if json_out {
        let runs: Vec<Value> = outcomes
            .iter()
            .map(|o| match &o.summary {
                Ok(v) => v.clone(),
                Err(e) => json!({
                    "scenario": o.scenario.display().to_string(),
                    "seed": o.seed,
                    "verdict": "error",
                    "error": e,
                }),
            })
            .collect();
        println!(
            "{}",
            json!({ "runs": runs, "seeds": [a, b], "shard": [shard_i, shard_n] })
        );
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs every job, `jobs` child processes at a time, with a progress bar on stderr; results in job order.
pub(crate) fn run_all(exe: &Path, jobs_todo: VecDeque<Job>, jobs: usize) -> Vec<Outcome> {
    let total = jobs_todo.len();
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {elapsed} elapsed, eta {eta} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let queue = Arc::new(Mutex::new(jobs_todo.into_iter().enumerate().collect::<VecDeque<_>>()));
    let results = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let workers: Vec<_> = (0..jobs.min(total.max(1)))
        .map(|_| {
            let (queue, results, bar, exe) = (queue.clone(), results.clone(), bar.clone(), exe.to_path_buf());
            std::thread::spawn(move || loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                let Some((k, job)) = next else { return };
                let summary = run_one(&exe, &job);
                if summary.as_ref().map_or(true, |v| v["verdict"] != "pass") {
                    bar.set_message(format!("(failing: {} seed {})", job.scenario.display(), job.seed));
                }
                let outcome = Outcome {
                    scenario: job.scenario,
                    seed: job.seed,
                    summary,
                };
                results.lock().unwrap_or_else(|p| p.into_inner()).push((k, outcome));
                bar.inc(1);
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    bar.finish_and_clear();
    let mut results = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    results.sort_by_key(|(k, _)| *k);
    results.into_iter().map(|(_, o)| o).collect()
}

pub(crate) fn run_one(exe: &Path, job: &Job) -> Result<Value, String> {
    let out = Command::new(exe)
        .arg("run")
        .arg(&job.scenario)
        .args(["--seed", &job.seed.to_string(), "--json"])
        .args(job.sets.iter().flat_map(|s| ["--set", s.as_str()]))
        // Its log goes nowhere, so none is made: with every span and event off, tracing costs nothing
        // (about 5% of a run's CPU time otherwise, the node and task spans madsim enters on every poll).
        // The history is the same either way.
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start `{} run`: {e}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| l.starts_with('{'));
    match (out.status.code(), last) {
        (Some(0 | 1), Some(line)) => {
            serde_json::from_str(line).map_err(|e| format!("the run's JSON summary does not parse: {e}"))
        }
        (code, _) => Err(format!(
            "the run ended without a summary (exit {}): rerun `gregor run {} --seed {}{}`",
            code.map_or("by a signal".to_string(), |c| c.to_string()),
            job.scenario.display(),
            job.seed,
            job.sets.iter().map(|s| format!(" --set {s}")).collect::<String>()
        )),
    }
}

/// The per-scenario table and failing seeds; `true` when anything failed.
fn report(scenarios: &BTreeMap<PathBuf, Scenario>, outcomes: &[Outcome]) -> (String, bool) {
    let mut text = String::new();
    let mut failed = false;
    for (path, s) in scenarios {
        let runs: Vec<&Outcome> = outcomes.iter().filter(|o| &o.scenario == path).collect();
        if runs.is_empty() {
            continue;
        }
        let ok: Vec<&Value> = runs.iter().filter_map(|o| o.summary.as_ref().ok()).collect();
        let pass = ok.iter().filter(|v| v["verdict"] == "pass").count();
        let in_contract = ok.iter().filter(|v| v["in_contract"] == true).count();
        let errors = runs.len() - ok.len();
        text.push_str(&format!(
            "{} ({}): {} runs, {pass} pass, {} fail, {errors} without a summary; {in_contract} in contract, {} out\n",
            s.name(),
            path.display(),
            runs.len(),
            ok.len() - pass,
            ok.len() - in_contract
        ));
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for v in &ok {
            if let Some(marks) = v["marks"].as_object() {
                for (m, n) in marks {
                    if n.as_u64().unwrap_or(0) > 0 {
                        *seen.entry(m.clone()).or_default() += 1;
                    }
                }
            }
        }
        let want: BTreeMap<String, f64> = s
            .file
            .expect
            .sweep_must_hit
            .iter()
            .map(|(k, v)| (k.get_ref().clone(), *v.get_ref()))
            .collect();
        let names: std::collections::BTreeSet<&String> = seen.keys().chain(want.keys()).collect();
        for m in names {
            let share = seen.get(m).copied().unwrap_or(0) as f64 / ok.len().max(1) as f64;
            let line = match want.get(m) {
                Some(need) if share + 1e-9 < *need => {
                    failed = true;
                    format!(
                        "  MISSED {m}: hit in {:.0}% of seeds, sweep_must_hit {:.0}%\n",
                        share * 100.0,
                        need * 100.0
                    )
                }
                Some(need) => format!(
                    "  mark {m}: {:.0}% of seeds (sweep_must_hit {:.0}%)\n",
                    share * 100.0,
                    need * 100.0
                ),
                None => format!("  mark {m}: {:.0}% of seeds\n", share * 100.0),
            };
            text.push_str(&line);
        }
        for o in &runs {
            match &o.summary {
                Ok(v) if v["verdict"] == "pass" => {}
                Ok(v) => {
                    failed = true;
                    text.push_str(&format!(
                        "  FAIL seed {}: {} (commit {}, scenario {})\n",
                        o.seed,
                        v["repro"].as_str().unwrap_or("?"),
                        v["commit"].as_str().unwrap_or("?"),
                        v["scenario_hash"].as_str().unwrap_or("?")
                    ));
                }
                Err(e) => {
                    failed = true;
                    text.push_str(&format!("  ERROR seed {}: {e}\n", o.seed));
                }
            }
        }
    }
    (text, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_include_both_ends_and_bad_ones_say_why() {
        assert_eq!(parse_seeds("1..100"), Ok((1, 100)));
        assert_eq!(parse_seeds("7..7"), Ok((7, 7)));
        assert!(parse_seeds("5..1").unwrap_err().contains("empty"));
        assert!(parse_seeds("1-5").unwrap_err().contains("A..B"));
        assert!(parse_seeds("a..5").unwrap_err().contains("\"a\""));
    }

    #[test]
    fn shards_are_one_based_and_bounded() {
        assert_eq!(parse_shard("1/4"), Ok((1, 4)));
        assert_eq!(parse_shard("4/4"), Ok((4, 4)));
        assert!(parse_shard("0/4").is_err());
        assert!(parse_shard("5/4").is_err());
        assert!(parse_shard("1/0").is_err());
        assert!(parse_shard("x").is_err());
    }
}
