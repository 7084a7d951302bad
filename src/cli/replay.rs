//! `gregor replay SCENARIO --seed N [--trace FILE] [--dump-disks DIR] [--dump-at SECONDS]`: one seed again,
//! with its full trace written to files and, on request, every node's simulated disk written out as real
//! files in Kafka's layout, so a failing seed's logs can be read with ordinary tools (`kafka-dump-log.sh
//! --files .../00000000000000000000.log --print-data-log`, `xxd`).
//!
//! The dump (ARCHITECTURE §5's disk model) holds what a process would read at that moment: each file's
//! current contents, the page cache's unsynced writes included. What the disk holds durably is listed
//! beside it, per node, in `disk-state.jsonl` (current and durable length, unsynced operations, whether the
//! directory entry itself is durable), so a reader sees what a power loss at that moment could take.
//!
//! Layout: `DIR/manifest.json`, and per node `DIR/<node>/kafka-logs/<path on its disk>` (brokers and
//! controllers alike: in KRaft `metadata.log.dir` defaults to the first of `log.dirs`) plus
//! `DIR/<node>/disk-state.jsonl`. A preallocated index file keeps its length but is written sparse.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use crate::runner::{self, DiskDump, NodeDisk, RunOptions};

/// The log dir's name inside each node's folder of a dump (Kafka's default `log.dirs=/tmp/kafka-logs`).
pub const LOG_DIR: &str = "kafka-logs";

/// What `replay` was asked to do.
pub struct ReplayArgs<'a> {
    pub scenario: &'a Path,
    pub sets: &'a [String],
    pub seed: u64,
    pub trace: Option<&'a Path>,
    pub dump_disks: Option<&'a Path>,
    pub dump_at_s: Option<f64>,
    pub halt_on_violation: bool,
    pub json: bool,
}

pub fn cmd_replay(args: ReplayArgs<'_>) -> ExitCode {
    match replay(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn replay(args: &ReplayArgs<'_>) -> Result<ExitCode, String> {
    let overrides = super::parse_sets(args.sets)?;
    let s = crate::scenario::Scenario::load_with(args.scenario, &overrides).map_err(|e| e.to_string())?;
    let dump = match (args.dump_disks, args.dump_at_s) {
        (None, Some(_)) => return Err("--dump-at needs --dump-disks DIR".into()),
        (None, None) => None,
        (Some(dir), at) => {
            prepare_dump_dir(dir)?;
            Some(match at {
                None => DiskDump::AtEnd,
                Some(t) if t.is_finite() && t >= 0.0 => DiskDump::AtUs((t * 1e6).round() as u64),
                Some(t) => return Err(format!("--dump-at {t}: a simulated time in seconds, 0 or more")),
            })
        }
    };
    let trace = args
        .trace
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("{}-seed-{}.history.jsonl", s.name(), args.seed)));
    let opts = RunOptions {
        announce: true,
        dump_disks: dump,
        halt_on_violation: args.halt_on_violation,
    };
    let outcome = runner::run(&s, args.seed, opts).map_err(|e| e.to_string())?;
    let states = PathBuf::from(format!("{}.states.jsonl", trace.display()));
    std::fs::write(&trace, outcome.history.ops_jsonl())
        .and_then(|()| std::fs::write(&states, outcome.history.states_jsonl()))
        .map_err(|e| format!("cannot write the trace to {}: {e}", trace.display()))?;
    print!("{}", outcome.summary.render());
    println!(
        "  trace: history {} and state trace {}",
        trace.display(),
        states.display()
    );
    if let (Some(dir), Some(dump)) = (args.dump_disks, dump) {
        let at = match dump {
            DiskDump::AtEnd => None,
            DiskDump::AtUs(us) => Some(us as f64 / 1e6),
        };
        if outcome.disks.is_empty() {
            return Err(format!(
                "--dump-at {}: the run ended at {:.3} simulated s, before that time; nothing dumped",
                at.unwrap_or(0.0),
                outcome.summary.sim_seconds
            ));
        }
        let files = write_dump(dir, &outcome.disks, &outcome.summary, at)?;
        let when = at.map_or("at the end of the run".to_string(), |t| format!("at {t} simulated s"));
        println!(
            "  disks: {files} files of {} nodes {when} in {}",
            outcome.disks.len(),
            dir.display()
        );
    }
    if args.json {
        let line = serde_json::to_string(&outcome.summary).map_err(|e| format!("cannot serialize the summary: {e}"))?;
        println!("{line}");
    }
    Ok(if outcome.summary.verdict == "pass" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Creates the dump folder (it must be new or empty, so no older dump mixes in) and proves it writable
/// before the run starts.
fn prepare_dump_dir(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    std::fs::create_dir_all(dir).map_err(|e| format!("--dump-disks {shown}: cannot create the folder: {e}"))?;
    let mut entries = std::fs::read_dir(dir).map_err(|e| format!("--dump-disks {shown}: cannot read it: {e}"))?;
    if entries.next().is_some() {
        return Err(format!(
            "--dump-disks {shown}: the folder is not empty; name a new one (an older dump must not mix in)"
        ));
    }
    let probe = dir.join(".gregor-write-probe");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| format!("--dump-disks {shown}: not writable: {e}"))
}

/// Writes every node's disk under `dir`; returns how many files were written.
pub fn write_dump(
    dir: &Path,
    disks: &[NodeDisk],
    summary: &runner::RunSummary,
    at_s: Option<f64>,
) -> Result<usize, String> {
    let mut nodes = serde_json::Map::new();
    let mut count = 0;
    for nd in disks {
        let root = dir.join(&nd.node).join(LOG_DIR);
        std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let states = nd.disk.file_states();
        let mut state_lines = String::new();
        for st in &states {
            let contents = nd.disk.read_file(&st.path).unwrap_or_default();
            write_sparse(&root.join(&st.path), &contents)?;
            state_lines.push_str(
                &json!({
                    "path": st.path,
                    "len": st.len,
                    "durable_len": st.durable_len,
                    "pending_ops": st.pending_ops,
                    "durably_linked": st.durably_linked,
                })
                .to_string(),
            );
            state_lines.push('\n');
            count += 1;
        }
        let state_file = dir.join(&nd.node).join("disk-state.jsonl");
        std::fs::write(&state_file, state_lines).map_err(|e| format!("cannot write {}: {e}", state_file.display()))?;
        let paths: Vec<&str> = states.iter().map(|s| s.path.as_str()).collect();
        nodes.insert(nd.node.clone(), json!(paths));
    }
    let manifest = json!({
        "scenario": summary.scenario,
        "seed": summary.seed,
        "commit": summary.commit,
        "scenario_hash": summary.scenario_hash,
        "at_s": at_s,
        "log_dir": LOG_DIR,
        "contents": "current (what a process reads, unsynced writes included); durable lengths in <node>/disk-state.jsonl",
        "nodes": nodes,
    });
    let path = dir.join("manifest.json");
    std::fs::write(&path, format!("{manifest:#}\n")).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(count)
}

/// Writes `contents` to `path`; trailing zeros (a preallocated index) become a hole of the same length.
fn write_sparse(path: &Path, contents: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let data_len = contents.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let mut file = std::fs::File::create(path).map_err(fail)?;
    file.write_all(&contents[..data_len]).map_err(fail)?;
    file.set_len(contents.len() as u64).map_err(fail)
}
