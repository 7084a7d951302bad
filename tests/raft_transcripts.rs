//! Transcript tests of the KRaft core in the spirit of etcd-raft's `datadriven` files: each file in
//! `tests/testdata/raft/` is a list of blocks `command` / `----` / expected output / blank line.
//! A mismatch prints a diff; `REWRITE=1 cargo test --release --test raft_transcripts` regenerates them.
//!
//! Commands: `nodes N [seed]`, `tick ID|all MS`, `campaign ID`, `resign ID`, `deliver [ID]` (one round:
//! the messages queued now, FIFO, optionally only those to ID), `stabilize` (deliver until nothing is in
//! flight), `propose ID DATA`, `crash ID` (restart; unflushed writes lost), `hold ID` / `release ID` (the
//! node's disk is slow: Readys are written but not flushed, advanced or sent), `partition 1 | 2 3`,
//! `heal`, `status`. Output: delivered messages (`x` marks one a partition dropped), then the status of
//! every node whose status changed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use gregor::raft::cluster::Cluster;

struct Harness {
    cluster: Option<Cluster>,
    shown: BTreeMap<i32, String>,
}

fn status(c: &Cluster, id: i32) -> String {
    let n = c.node(id);
    let opt = |v: Option<i32>| v.map_or("-".to_string(), |x| x.to_string());
    let hw = n.high_watermark().map_or("-".to_string(), |h| h.to_string());
    let log: Vec<String> = n.log().entries().iter().map(|e| e.to_string()).collect();
    format!(
        "{id}: {:?} epoch={} leader={} voted={} hw={hw} leo={} flushed={} log=[{}]",
        n.role(),
        n.epoch(),
        opt(n.leader()),
        opt(n.voted_for()),
        n.log().log_end_offset(),
        n.flushed_end(),
        log.join(" ")
    )
}

impl Harness {
    fn c(&mut self) -> &mut Cluster {
        self.cluster.as_mut().expect("`nodes N` comes first")
    }

    fn changed(&mut self, all: bool, out: &mut Vec<String>) {
        let c = self.cluster.as_ref().expect("`nodes N` comes first");
        for id in c.ids() {
            let s = status(c, id);
            if all || self.shown.get(&id) != Some(&s) {
                out.push(s.clone());
            }
            self.shown.insert(id, s);
        }
    }

    fn deliver_round(&mut self, only: Option<i32>, out: &mut Vec<String>) {
        let c = self.c();
        let count = c.network.len();
        let mut skipped = 0;
        for _ in 0..count {
            let m = c.network[skipped].clone();
            if only.is_some_and(|id| id != m.to) {
                skipped += 1;
                continue;
            }
            let reached = c.deliver(skipped, false);
            out.push(format!(
                "{}{}->{} {}",
                if reached { "" } else { "x " },
                m.from,
                m.to,
                m.msg
            ));
        }
    }

    fn run(&mut self, line: &str) -> Vec<String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let arg = |i: usize| -> i32 { words[i].parse().unwrap_or_else(|_| panic!("bad number in `{line}`")) };
        let mut out = vec![];
        match words[0] {
            "nodes" => {
                let seed = words.get(2).map_or(0, |s| s.parse().expect("seed"));
                self.cluster = Some(Cluster::new(arg(1) as usize, seed));
                self.shown.clear();
            }
            "tick" => {
                let ms: i64 = words[2].parse().expect("ms");
                let ids = if words[1] == "all" {
                    self.c().ids()
                } else {
                    vec![arg(1)]
                };
                for id in ids {
                    self.c().tick(id, ms);
                }
            }
            "campaign" => self.c().campaign(arg(1)),
            "resign" => self.c().resign(arg(1)),
            "deliver" => self.deliver_round(words.get(1).map(|_| arg(1)), &mut out),
            "stabilize" => {
                for _ in 0..1000 {
                    if self.c().network.is_empty() {
                        break;
                    }
                    self.deliver_round(None, &mut out);
                }
                assert!(self.c().network.is_empty(), "stabilize did not settle");
            }
            "propose" => {
                let r = self.c().propose(arg(1), words[2].as_bytes().to_vec());
                out.push(match r {
                    Ok(offset) => format!("offset={offset}"),
                    Err(e) => format!("error: {e}"),
                });
            }
            "crash" => self.c().crash(arg(1)),
            "hold" => self.c().set_hold(arg(1), true),
            "release" => self.c().set_hold(arg(1), false),
            "partition" => {
                let groups: Vec<BTreeSet<i32>> = line["partition".len()..]
                    .split('|')
                    .map(|g| g.split_whitespace().map(|x| x.parse().expect("node id")).collect())
                    .collect();
                self.c().partition = Some(groups);
            }
            "heal" => self.c().partition = None,
            "status" => {
                self.changed(true, &mut out);
                return out;
            }
            other => panic!("unknown command `{other}`"),
        }
        self.changed(false, &mut out);
        if out.is_empty() {
            out.push("ok".to_string());
        }
        out
    }
}

struct Block {
    comments: Vec<String>,
    command: String,
    expected: Vec<String>,
}

fn parse(text: &str) -> Vec<Block> {
    let mut blocks = vec![];
    let mut lines = text.lines().peekable();
    let mut comments = vec![];
    while let Some(line) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with('#') {
            comments.push(line.to_string());
            continue;
        }
        assert_eq!(lines.next(), Some("----"), "`{line}` must be followed by ----");
        let mut expected = vec![];
        while let Some(l) = lines.peek() {
            if l.trim().is_empty() {
                break;
            }
            expected.push(lines.next().unwrap_or_default().to_string());
        }
        blocks.push(Block {
            comments: std::mem::take(&mut comments),
            command: line.to_string(),
            expected,
        });
    }
    blocks
}

fn run_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let blocks = parse(&text);
    let mut h = Harness {
        cluster: None,
        shown: BTreeMap::new(),
    };
    let mut rewritten = String::new();
    let mut failures = vec![];
    for b in &blocks {
        let got = h.run(&b.command);
        for c in &b.comments {
            rewritten.push_str(c);
            rewritten.push('\n');
        }
        rewritten.push_str(&format!("{}\n----\n{}\n\n", b.command, got.join("\n")));
        if got != b.expected {
            let mut diff = format!("{}: `{}`\n", path.display(), b.command);
            for l in &b.expected {
                if !got.contains(l) {
                    diff.push_str(&format!("- {l}\n"));
                }
            }
            for l in &got {
                if !b.expected.contains(l) {
                    diff.push_str(&format!("+ {l}\n"));
                }
            }
            failures.push(diff);
        }
    }
    if std::env::var("REWRITE").is_ok_and(|v| v == "1") {
        std::fs::write(path, rewritten.trim_end().to_string() + "\n").map_err(|e| e.to_string())?;
        return Ok(());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

#[test]
fn raft_transcripts_match() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/raft");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.retain(|p| p.extension().is_some_and(|x| x == "txt"));
    files.sort();
    assert!(files.len() >= 7, "expected the transcript files, found {files:?}");
    let failures: Vec<String> = files.iter().filter_map(|f| run_file(f).err()).collect();
    assert!(
        failures.is_empty(),
        "transcripts differ (REWRITE=1 regenerates):\n{}",
        failures.join("\n")
    );
}
