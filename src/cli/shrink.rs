//! `gregor shrink SCENARIO --seed N [--class CLASS] [--out FILE] [--max-runs R]`: the smallest scenario that
//! still shows the same anomaly class with the same seed.
//!
//! 1. Run the seed; the class to keep is `--class`, or the first class with unexplained anomalies, or
//!    `vacuous` when the run only missed `must_hit` marks (then: one of those marks is still missed). With
//!    `--class`, a class the configuration allows (explained anomalies only) may be shrunk too: "shows the
//!    class" then counts explained anomalies, and the result may pass.
//! 2. Materialize the plan: every fault time the seed drew (ranges resolved) and, for a `[swarm]`, the
//!    faults this seed drew, written as explicit `[[faults]]` (`broker:random` targets: the broker is drawn
//!    from the fault's time, so it stays the same); the `[swarm]` table goes. If that rewrite does not show
//!    the class (it should), shrinking goes on from the file as written.
//! 3. Greedily, while the class still appears with the same seed: remove fault events; halve durations and
//!    restart delays; shorten the safety phase to just past the last fault; remove producers and consumer
//!    groups; halve record rates and record counts. Rounds repeat until nothing changes or `--max-runs`
//!    runs were spent.
//!
//! Every candidate runs in its own child process (`gregor run CANDIDATE --seed N --json`), as `sweep` does:
//! a seed replays only alone in a process. Prints the smallest scenario as TOML (loadable by `gregor run`)
//! and writes it to `--out`. Any code change moves a seed's schedule: a shrunk scenario reproduces for this
//! build. `--set` overrides are not supported: write them into the file first.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;
use toml::{Table, Value as Toml};

use super::sweep::{run_one, Job};
use crate::scenario::{FaultKind, FaultSpec, PartitionMode, Scenario, Target, TimeSpec};

/// What `shrink` was asked to do.
pub struct ShrinkArgs<'a> {
    pub scenario: &'a Path,
    pub seed: u64,
    pub class: Option<&'a str>,
    pub out: Option<&'a Path>,
    pub max_runs: usize,
}

/// The class a candidate must still show.
#[derive(Debug, Clone, PartialEq)]
enum Goal {
    /// Unexplained anomalies of this class (the run fails).
    Violation(String),
    /// Anomalies of this class, explained or not (`--class` naming a class the configuration allows).
    Occurrence(String),
    /// At least one of these `must_hit` marks missed.
    Vacuous(Vec<String>),
}

impl Goal {
    fn name(&self) -> &str {
        match self {
            Goal::Violation(c) | Goal::Occurrence(c) => c,
            Goal::Vacuous(_) => "vacuous",
        }
    }

    fn shown_by(&self, v: &Value) -> bool {
        let count = |field: &str, c: &str| v[field][c].as_u64().unwrap_or(0);
        match self {
            Goal::Violation(c) => count("anomalies", c) > 0,
            Goal::Occurrence(c) => count("anomalies", c) + count("explained", c) > 0,
            Goal::Vacuous(marks) => v["must_hit_missing"].as_array().is_some_and(|m| {
                m.iter()
                    .any(|x| x.as_str().is_some_and(|x| marks.iter().any(|k| k == x)))
            }),
        }
    }
}

pub fn cmd_shrink(args: ShrinkArgs<'_>) -> ExitCode {
    match shrink(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs candidates in child processes, within a budget.
struct Trials {
    exe: PathBuf,
    dir: PathBuf,
    seed: u64,
    runs: usize,
    max_runs: usize,
    goal: Option<Goal>,
    /// Candidates already tried (their TOML) and whether they showed the goal: a later round does not
    /// run them again.
    tried: std::collections::BTreeMap<String, bool>,
    /// The summary of the last candidate kept.
    kept: Option<Value>,
}

impl Trials {
    fn run_file(&mut self, path: &Path) -> Result<Value, String> {
        self.runs += 1;
        let job = Job {
            scenario: path.to_path_buf(),
            sets: vec![],
            seed: self.seed,
        };
        run_one(&self.exe, &job)
    }

    /// Whether `table` still shows the goal with the seed (false once the budget is spent).
    fn shows(&mut self, table: &Table, what: &str) -> bool {
        let Some(goal) = self.goal.clone() else { return false };
        let text = match toml::to_string(table) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("  {what}: cannot write the candidate ({e})");
                return false;
            }
        };
        if let Some(shown) = self.tried.get(&text) {
            return *shown;
        }
        if self.runs >= self.max_runs {
            return false;
        }
        let path = self.dir.join("candidate.toml");
        if let Err(e) = std::fs::write(&path, &text) {
            eprintln!("  {what}: cannot write {} ({e})", path.display());
            return false;
        }
        let summary = self.run_file(&path).ok().filter(|v| goal.shown_by(v));
        let shown = summary.is_some();
        if shown {
            self.kept = summary;
        }
        self.tried.insert(text, shown);
        eprintln!(
            "  run {}: {what}: {}",
            self.runs,
            if shown { "still shows it, kept" } else { "gone, undone" }
        );
        shown
    }

    fn spent(&self) -> bool {
        self.runs >= self.max_runs
    }
}

fn shrink(args: &ShrinkArgs<'_>) -> Result<(), String> {
    let shown = args.scenario.display().to_string();
    let text = std::fs::read_to_string(args.scenario).map_err(|e| format!("{shown}: cannot read it: {e}"))?;
    let scenario = Scenario::parse(&shown, &text).map_err(|e| e.to_string())?;
    let original: Table = toml::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable to run candidates: {e}"))?;
    let dir = std::env::temp_dir().join(format!("gregor-shrink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut trials = Trials {
        exe,
        dir: dir.clone(),
        seed: args.seed,
        runs: 0,
        max_runs: args.max_runs.max(1),
        goal: None,
        tried: Default::default(),
        kept: None,
    };
    let result = shrink_in(args, &scenario, original, &mut trials);
    let _ = std::fs::remove_dir_all(&dir);
    let (table, goal, before, summary) = result?;
    let after = faults_of(&table).len();
    let toml_text = render(args, &goal, &table, before, after, trials.runs, &summary)?;
    print!("{toml_text}");
    if let Some(out) = args.out {
        std::fs::write(out, &toml_text).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        eprintln!("shrunk scenario written to {}", out.display());
    }
    Ok(())
}

type Shrunk = (Table, Goal, usize, Value);

fn shrink_in(args: &ShrinkArgs<'_>, s: &Scenario, original: Table, trials: &mut Trials) -> Result<Shrunk, String> {
    eprintln!("gregor shrink {} --seed {}", s.path, args.seed);
    let first = trials.run_file(args.scenario)?;
    let goal = goal_of(&first, args.class, args.seed)?;
    eprintln!("  run 1: the seed shows {} ({goal:?})", goal.name());
    trials.goal = Some(goal.clone());
    let before = crate::runner::drawn_faults(s, args.seed)
        .map_err(|e| e.to_string())?
        .len();
    let mut base = original.clone();
    let materialized = materialize(s, args.seed, &original)?;
    if materialized != original {
        if trials.shows(&materialized, "the drawn fault plan written out as explicit [[faults]]") {
            base = materialized;
        } else {
            eprintln!("  note: the explicit plan does not reproduce; shrinking the file as written");
        }
    }
    for _round in 0..3 {
        let start = base.clone();
        remove_faults(&mut base, trials);
        shorten_faults(&mut base, trials);
        shorten_safety(&mut base, trials);
        trim_workload(&mut base, trials);
        if base == start || trials.spent() {
            break;
        }
    }
    if trials.spent() {
        eprintln!("  stopped at --max-runs {}", trials.max_runs);
    }
    // must_hit keeps the marks the last kept candidate hit; one more run checks the result (its verdict is
    // the one printed) and that the seed still reproduces alone.
    let kept = if base == original {
        &first
    } else {
        trials.kept.as_ref().unwrap_or(&first)
    };
    keep_hit_marks(&mut base, &goal, kept);
    let path = trials.dir.join("final.toml");
    std::fs::write(&path, toml::to_string(&base).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let summary = trials.run_file(&path)?;
    if !goal.shown_by(&summary) {
        return Err(format!(
            "the shrunk scenario no longer shows {} when run again: non-determinism (or a must_hit mark removed \
             changed the run)",
            goal.name()
        ));
    }
    Ok((base, goal, before, summary))
}

/// The class to keep, from the first run's summary.
fn goal_of(v: &Value, class: Option<&str>, seed: u64) -> Result<Goal, String> {
    let count = |field: &str, c: &str| v[field][c].as_u64().unwrap_or(0);
    let missing: Vec<String> = v["must_hit_missing"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        .unwrap_or_default();
    match class {
        Some("vacuous") if !missing.is_empty() => Ok(Goal::Vacuous(missing)),
        Some("vacuous") => Err(format!("seed {seed} hits every must_hit mark: it is not vacuous")),
        Some(c) if !crate::checker::CLASSES.contains(&c) => Err(format!(
            "--class {c}: not an anomaly class; one of vacuous, {}",
            crate::checker::CLASSES.join(", ")
        )),
        Some(c) if count("anomalies", c) > 0 => Ok(Goal::Violation(c.to_string())),
        Some(c) if count("explained", c) > 0 => Ok(Goal::Occurrence(c.to_string())),
        Some(c) => Err(format!("seed {seed} shows no {c} anomaly: nothing to shrink")),
        None => {
            if let Some(c) = crate::checker::CLASSES.iter().find(|c| count("anomalies", c) > 0) {
                return Ok(Goal::Violation(c.to_string()));
            }
            if !missing.is_empty() {
                return Ok(Goal::Vacuous(missing));
            }
            Err(format!(
                "seed {seed} passes: nothing to shrink (name a class the configuration allows with --class)"
            ))
        }
    }
}

/// The scenario (`original`, as TOML) with the seed's drawn plan as explicit `[[faults]]` and no `[swarm]`.
pub fn materialize(s: &Scenario, seed: u64, original: &Table) -> Result<Table, String> {
    let drawn = crate::runner::drawn_faults(s, seed).map_err(|e| e.to_string())?;
    let entries = faults_of(original);
    let mut faults = vec![];
    for (origin, spec) in &drawn {
        let entry = match origin.and_then(|i| entries.get(i)) {
            Some(Toml::Table(t)) => {
                let mut t = t.clone();
                set_times(&mut t, spec);
                t
            }
            _ => fault_table(spec),
        };
        faults.push(Toml::Table(entry));
    }
    let mut out = original.clone();
    out.remove("swarm");
    if faults.is_empty() {
        out.remove("faults");
    } else {
        out.insert("faults".into(), Toml::Array(faults));
    }
    Ok(out)
}

fn time_value(t: &TimeSpec) -> Toml {
    match t {
        TimeSpec::At(x) => Toml::Float(*x),
        TimeSpec::Range(lo, hi) => Toml::Array(vec![Toml::Float(*lo), Toml::Float(*hi)]),
    }
}

fn set_times(t: &mut Table, spec: &FaultSpec) {
    t.insert("at_s".into(), time_value(&spec.at_s));
    if let Some(r) = &spec.restart_after_s {
        t.insert("restart_after_s".into(), time_value(r));
    }
    if let Some(d) = &spec.duration_s {
        t.insert("duration_s".into(), time_value(d));
    }
}

/// A `[[faults]]` entry for a fault the swarm drew.
fn fault_table(spec: &FaultSpec) -> Table {
    let mut t = Table::new();
    t.insert("kind".into(), Toml::String(spec.kind.name().into()));
    let target = match &spec.target {
        Target::RandomBroker => "broker:random".to_string(),
        other => other.describe(),
    };
    t.insert("target".into(), Toml::String(target));
    set_times(&mut t, spec);
    let p = &spec.params;
    match spec.kind {
        FaultKind::PacketLoss | FaultKind::DropResponse | FaultKind::ConnReset | FaultKind::DiskEio => {
            t.insert("rate".into(), Toml::Float(p.rate));
        }
        FaultKind::Latency => {
            let (lo, hi) = p.latency_ms;
            t.insert("latency_ms".into(), Toml::Array(vec![Toml::Float(lo), Toml::Float(hi)]));
        }
        FaultKind::DiskSlow => {
            t.insert("factor".into(), Toml::Integer(i64::from(p.factor)));
        }
        FaultKind::ClockSkew => {
            t.insert("skew_ms".into(), Toml::Integer(p.skew_ms));
        }
        FaultKind::Partition if p.mode != PartitionMode::Isolate => {
            t.insert("mode".into(), Toml::String(p.mode.name().into()));
        }
        _ => {}
    }
    t
}

fn faults_of(t: &Table) -> Vec<Toml> {
    t.get("faults").and_then(Toml::as_array).cloned().unwrap_or_default()
}

fn number(v: Option<&Toml>) -> Option<f64> {
    match v? {
        Toml::Float(x) => Some(*x),
        Toml::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

/// Rounded to the millisecond (shrunk times read well).
fn ms(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What a fault entry says, for the progress lines.
fn describe(f: &Toml) -> String {
    let s = |k: &str| f.get(k).and_then(Toml::as_str).unwrap_or("?").to_string();
    let at = number(f.get("at_s")).map_or("?".into(), |x| format!("{}", ms(x)));
    format!("{} {} at {at} s", s("kind"), s("target"))
}

fn remove_faults(base: &mut Table, trials: &mut Trials) {
    let n = faults_of(base).len();
    for i in (0..n).rev() {
        let mut faults = faults_of(base);
        let gone = faults.remove(i);
        let mut cand = base.clone();
        if faults.is_empty() {
            cand.remove("faults");
        } else {
            cand.insert("faults".into(), Toml::Array(faults));
        }
        if trials.shows(&cand, &format!("remove fault {} ({})", i + 1, describe(&gone))) {
            *base = cand;
        }
    }
}

fn shorten_faults(base: &mut Table, trials: &mut Trials) {
    let n = faults_of(base).len();
    for i in 0..n {
        for key in ["duration_s", "restart_after_s"] {
            for _ in 0..3 {
                let faults = faults_of(base);
                let Some(v) = number(faults[i].get(key)) else { break };
                let half = ms(v / 2.0);
                if half < 0.1 {
                    break;
                }
                let mut faults = faults;
                if let Some(t) = faults[i].as_table_mut() {
                    t.insert(key.into(), Toml::Float(half));
                }
                let mut cand = base.clone();
                cand.insert("faults".into(), Toml::Array(faults));
                let what = format!(
                    "fault {} ({}): {key} {v} -> {half}",
                    i + 1,
                    describe(&faults_of(&cand)[i])
                );
                if !trials.shows(&cand, &what) {
                    break;
                }
                *base = cand;
            }
        }
    }
}

/// The end of the last fault (its time plus its duration or restart delay), and of late topic creations.
fn last_event_s(t: &Table) -> f64 {
    let faults = faults_of(t).into_iter().map(|f| {
        let at = number(f.get("at_s")).unwrap_or(0.0);
        at + number(f.get("duration_s"))
            .or_else(|| number(f.get("restart_after_s")))
            .unwrap_or(0.0)
    });
    let topics = t
        .get("topics")
        .and_then(Toml::as_array)
        .into_iter()
        .flatten()
        .filter_map(|topic| number(topic.get("create_at_s")));
    faults.chain(topics).fold(0.0, f64::max)
}

fn safety_s(t: &Table) -> Option<f64> {
    number(t.get("phases")?.get("safety_s"))
}

fn shorten_safety(base: &mut Table, trials: &mut Trials) {
    let Some(current) = safety_s(base) else { return };
    let floor = ((last_event_s(base) + 1.0) * 10.0).ceil() / 10.0;
    for target in [floor, ((floor + current) / 2.0).ceil()] {
        let now = safety_s(base).unwrap_or(current);
        if target + 0.5 > now {
            continue;
        }
        let mut cand = base.clone();
        if let Some(Toml::Table(p)) = cand.get_mut("phases") {
            p.insert("safety_s".into(), Toml::Float(target));
        }
        if trials.shows(&cand, &format!("phases.safety_s {now} -> {target}")) {
            *base = cand;
            return;
        }
    }
}

fn trim_workload(base: &mut Table, trials: &mut Trials) {
    for section in ["producers", "consumer_groups"] {
        let n = base.get(section).and_then(Toml::as_array).map_or(0, Vec::len);
        let keep_one = usize::from(section == "producers");
        for i in (0..n).rev() {
            let mut list = base.get(section).and_then(Toml::as_array).cloned().unwrap_or_default();
            if list.len() <= keep_one {
                break;
            }
            list.remove(i);
            let mut cand = base.clone();
            if list.is_empty() {
                cand.remove(section);
            } else {
                cand.insert(section.into(), Toml::Array(list));
            }
            if trials.shows(&cand, &format!("remove {section}[{i}]")) {
                *base = cand;
            }
        }
    }
    let n = base.get("producers").and_then(Toml::as_array).map_or(0, Vec::len);
    for i in 0..n {
        for (key, least) in [("records_per_s", 20.0), ("records", 100.0)] {
            for _ in 0..3 {
                let mut list = base
                    .get("producers")
                    .and_then(Toml::as_array)
                    .cloned()
                    .unwrap_or_default();
                let Some(v) = number(list[i].get(key)) else { break };
                let half = (v / 2.0).floor();
                if half < least {
                    break;
                }
                if let Some(t) = list[i].as_table_mut() {
                    let value = if key == "records" {
                        Toml::Integer(half as i64)
                    } else {
                        Toml::Float(half)
                    };
                    t.insert(key.into(), value);
                }
                let mut cand = base.clone();
                cand.insert("producers".into(), Toml::Array(list));
                if !trials.shows(&cand, &format!("producers[{i}].{key} {v} -> {half}")) {
                    break;
                }
                *base = cand;
            }
        }
    }
}

/// Unless the goal is a missed mark, `must_hit` keeps only the marks the shrunk run still hits, so the
/// scenario fails for its class and not for a mark whose fault was removed.
fn keep_hit_marks(base: &mut Table, goal: &Goal, summary: &Value) {
    if matches!(goal, Goal::Vacuous(_)) {
        return;
    }
    let Some(Toml::Table(expect)) = base.get_mut("expect") else {
        return;
    };
    let Some(Toml::Array(marks)) = expect.get_mut("must_hit") else {
        return;
    };
    marks.retain(|m| {
        m.as_str()
            .is_some_and(|m| summary["marks"][m].as_u64().unwrap_or(0) > 0)
    });
}

fn render(
    args: &ShrinkArgs<'_>,
    goal: &Goal,
    table: &Table,
    before: usize,
    after: usize,
    runs: usize,
    summary: &Value,
) -> Result<String, String> {
    let body = toml::to_string(table).map_err(|e| format!("cannot write the shrunk scenario: {e}"))?;
    let verdict = summary["verdict"].as_str().unwrap_or("?");
    Ok(format!(
        "# Shrunk by `gregor shrink {} --seed {}`: still shows {} with seed {} ({verdict}), {before} -> {after} \
         fault events, {runs} runs.\n# Reproduce: gregor run FILE --seed {} (same build: any code change moves a \
         seed's schedule).\n{body}",
        args.scenario.display(),
        args.seed,
        goal.name(),
        args.seed,
        args.seed,
    ))
}
