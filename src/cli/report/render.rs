//! Writes a report folder from `Results` alone: `results.json`, `report.md`, `index.html` (plots inline, opens
//! offline) and `plots/*.svg`.

use std::path::{Path, PathBuf};

use super::aggregate::{cells, latency_by_acks, CellStats};
use super::plots;
use super::results::Results;
use super::stats::count;

/// At most this many repro commands per failing cell.
const REPROS_PER_CELL: usize = 5;

/// The plots, by file name, with their captions.
fn draw(results: &Results, cells: &[CellStats]) -> Result<Vec<(String, String, String)>, String> {
    let mut out = vec![
        (
            "loss.svg".to_string(),
            "Runs that lost records, by fault scenario and configuration".to_string(),
            plots::loss_bars(cells)?,
        ),
        (
            "latency.svg".to_string(),
            "Produce latency p50/p99/max by acks".to_string(),
            plots::latency_bars(&latency_by_acks(&results.runs))?,
        ),
    ];
    if let Some(t) = results.timelines.first() {
        let what = format!(
            "{} acks={} min.insync.replicas={} seed {} ({})",
            t.scenario, t.acks, t.min_insync_replicas, t.seed, t.why
        );
        out.push((
            "loss-over-time.svg".to_string(),
            format!("Lost and unseen acknowledged records over simulated time: {what}"),
            plots::loss_over_time(t)?,
        ));
        out.push((
            "timeline.svg".to_string(),
            format!("Leaders, faults, log end offsets and high watermarks: {what}"),
            plots::timeline(t)?,
        ));
    }
    for g in &results.group_timelines {
        out.push((
            format!("groups-{}.svg", g.scenario),
            format!(
                "Consumer lag and rebalances over simulated time: {} acks={} min.insync.replicas={} seed {} ({})",
                g.scenario, g.acks, g.min_insync_replicas, g.seed, g.why
            ),
            plots::group_lag(g)?,
        ));
    }
    Ok(out)
}

/// Writes the whole report into `dir` (created); returns the files written.
pub fn write_report(dir: &Path, results: &Results) -> Result<Vec<PathBuf>, String> {
    let io = |p: &Path, e: std::io::Error| format!("cannot write {}: {e}", p.display());
    let plots_dir = dir.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(|e| io(&plots_dir, e))?;
    let cells = cells(&results.runs);
    let drawn = draw(results, &cells)?;
    let mut written = vec![];
    let mut put = |path: PathBuf, text: &str| -> Result<(), String> {
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        written.push(path);
        Ok(())
    };
    let json = serde_json::to_string_pretty(results).map_err(|e| format!("cannot serialize results: {e}"))?;
    put(dir.join("results.json"), &(json + "\n"))?;
    for (file, _, svg) in &drawn {
        put(plots_dir.join(file), svg)?;
    }
    put(dir.join("report.md"), &markdown(results, &cells, &drawn))?;
    put(dir.join("index.html"), &html(results, &cells, &drawn))?;
    Ok(written)
}

fn header_lines(r: &Results) -> Vec<String> {
    let wall: f64 = r.shard_wall_seconds.iter().sum();
    let shards: Vec<String> = r.shards.iter().map(|s| format!("{}/{}", s[0], s[1])).collect();
    vec![
        format!(
            "{} runs over {} cells ({} seeds per cell), commit {}.",
            count(r.runs.len() as u64),
            cells(&r.runs).len(),
            r.seeds_per_cell,
            r.commits.join(", ")
        ),
        format!(
            "Made by `{}` (shards {}) in {:.0} wall seconds of matrix.",
            r.command,
            shards.join(", "),
            wall
        ),
        "Each run is one seed in its own process; its expectations are derived from the cell's configuration \
         (ARCHITECTURE §6). Bounds are exact binomial at 95% confidence over in-contract runs; out-of-contract \
         runs (the fault went beyond what the configuration promises) are counted apart."
            .to_string(),
    ]
}

fn failing_lines(c: &CellStats) -> Vec<String> {
    c.failing
        .iter()
        .take(REPROS_PER_CELL)
        .map(|(seed, repro)| format!("seed {seed}: `{repro}`"))
        .chain(
            (c.failing.len() > REPROS_PER_CELL).then(|| format!("... and {} more", c.failing.len() - REPROS_PER_CELL)),
        )
        .collect()
}

const MISSED_NOTE: &str = "A run that misses one of its cell's must_hit marks did not reach the state it exists to \
test (marks the cell's configuration cannot reach are dropped first); it fails, and its durability numbers are \
weak evidence.";

fn missed_lines(cells: &[CellStats]) -> Vec<String> {
    cells
        .iter()
        .filter(|c| c.runs_missing_marks > 0)
        .map(|c| {
            format!(
                "{} {}: {} of {} runs missed {}",
                c.scenario,
                c.config(),
                c.runs_missing_marks,
                c.runs,
                {
                    let m: Vec<String> = c.missing_marks.iter().map(|(m, n)| format!("{m} ({n})")).collect();
                    m.join(", ")
                }
            )
        })
        .collect()
}

fn anchor(c: &CellStats) -> String {
    format!(
        "fail-{}-acks{}-isr{}{}",
        c.scenario,
        c.acks,
        c.min_insync_replicas,
        if c.unclean_leader_election { "-unclean" } else { "" }
    )
}

/// The pass / fail column: counts, and the `must_hit` marks runs missed.
fn pass_fail(c: &CellStats) -> String {
    let missed = c.marks_missed();
    if missed.is_empty() {
        format!("{} / {}", c.pass, c.fail + c.errors)
    } else {
        format!("{} / {} ({missed})", c.pass, c.fail + c.errors)
    }
}

fn markdown(r: &Results, cells: &[CellStats], drawn: &[(String, String, String)]) -> String {
    let mut md = format!("# Durability report: {}\n\n", r.name);
    for l in header_lines(r) {
        md.push_str(&format!("{l}\n"));
    }
    md.push_str("\n## Kafka's promise beside what was measured\n\n");
    md.push_str("| scenario | configuration | Kafka's promise | measured | verdict | pass / fail (missed must_hit marks) |\n|---|---|---|---|---|---|\n");
    for c in cells {
        let verdict = if c.failing.is_empty() {
            c.judgement().to_string()
        } else {
            format!("{} ([repro](#{}))", c.judgement(), anchor(c))
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            c.scenario,
            c.config(),
            c.promise(),
            c.measured(),
            verdict,
            pass_fail(c)
        ));
    }
    md.push_str("\n## Cells whose runs missed must_hit marks\n\n");
    md.push_str(&format!("{}\n", MISSED_NOTE));
    let missed = missed_lines(cells);
    if missed.is_empty() {
        md.push_str("\nNone.\n");
    } else {
        md.push('\n');
    }
    for l in missed {
        md.push_str(&format!("- {l}\n"));
    }
    md.push_str("\n## Plots\n\n");
    for (file, caption, _) in drawn {
        md.push_str(&format!("![{caption}](plots/{file})\n\n"));
    }
    md.push_str("## Produce latency by acks (simulated ms)\n\n| acks | runs | p50 (mean) | p99 (mean) | max |\n|---|---|---|---|---|\n");
    for (acks, n, l) in latency_by_acks(&r.runs) {
        md.push_str(&format!("| {acks} | {n} | {:.1} | {:.1} | {:.1} |\n", l[0], l[1], l[2]));
    }
    md.push_str("\nacks=0 sends are never acknowledged, so they have no latency.\n");
    md.push_str("\n## Failing runs and their repro commands\n\n");
    let failing: Vec<&CellStats> = cells.iter().filter(|c| !c.failing.is_empty()).collect();
    if failing.is_empty() {
        md.push_str("None.\n");
    }
    for c in failing {
        md.push_str(&format!(
            "<a id=\"{}\"></a>\n### {} {}\n\n",
            anchor(c),
            c.scenario,
            c.config()
        ));
        for l in failing_lines(c) {
            md.push_str(&format!("- {l}\n"));
        }
        md.push('\n');
    }
    md.push_str("## Left out\n\n");
    for l in &r.left_out {
        md.push_str(&format!("- {l}\n"));
    }
    md
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Inline code spans of markdown-ish text as HTML.
fn code(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in esc(s).split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{part}</code>"));
        } else {
            out.push_str(part);
        }
    }
    out
}

fn html(r: &Results, cells: &[CellStats], drawn: &[(String, String, String)]) -> String {
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Durability report: {0}</title>\n<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:4px 6px;vertical-align:top}}th{{background:#f3f3f3}}.BROKEN{{color:#c0392b;font-weight:bold}}.kept{{color:#27ae60}}code{{font-size:12px}}figure{{margin:1.5em 0}}</style></head><body>\n<h1>Durability report: {0}</h1>\n",
        esc(&r.name)
    );
    for l in header_lines(r) {
        h.push_str(&format!("<p>{}</p>\n", code(&l)));
    }
    h.push_str("<h2>Kafka's promise beside what was measured</h2>\n<table><tr><th>scenario</th><th>configuration</th><th>Kafka's promise</th><th>measured</th><th>verdict</th><th>pass / fail (missed must_hit marks)</th></tr>\n");
    for c in cells {
        let j = c.judgement();
        let verdict = if c.failing.is_empty() {
            format!("<span class=\"{}\">{j}</span>", j.replace(' ', "-"))
        } else {
            format!(
                "<span class=\"{}\">{j}</span> (<a href=\"#{}\">repro</a>)",
                j.replace(' ', "-"),
                anchor(c)
            )
        };
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{verdict}</td><td>{}</td></tr>\n",
            esc(&c.scenario),
            esc(&c.config()),
            esc(&c.promise()),
            esc(&c.measured()),
            esc(&pass_fail(c))
        ));
    }
    h.push_str(&format!(
        "</table>\n<h2>Cells whose runs missed must_hit marks</h2>\n<p>{}</p><ul>\n",
        esc(MISSED_NOTE)
    ));
    let missed = missed_lines(cells);
    if missed.is_empty() {
        h.push_str("<li>None.</li>\n");
    }
    for l in missed {
        h.push_str(&format!("<li>{}</li>\n", esc(&l)));
    }
    h.push_str("</ul>\n<h2>Plots</h2>\n");
    for (_, caption, svg) in drawn {
        let body = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
        h.push_str(&format!(
            "<figure>{body}<figcaption>{}</figcaption></figure>\n",
            esc(caption)
        ));
    }
    h.push_str("<h2>Failing runs and their repro commands</h2>\n");
    for c in cells.iter().filter(|c| !c.failing.is_empty()) {
        h.push_str(&format!(
            "<h3 id=\"{}\">{} {}</h3><ul>\n",
            anchor(c),
            esc(&c.scenario),
            esc(&c.config())
        ));
        for l in failing_lines(c) {
            h.push_str(&format!("<li>{}</li>\n", code(&l)));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2>Left out</h2><ul>\n");
    for l in &r.left_out {
        h.push_str(&format!("<li>{}</li>\n", code(l)));
    }
    h.push_str("</ul></body></html>\n");
    h
}
