//! The layer rule of ARCHITECTURE §2, kept honest by reading the sources: the pure cores never name a
//! runtime, a clock, a global RNG or the filesystem, and never await; each layer imports only layers before it.

use std::path::{Path, PathBuf};

fn sources(dir: &str) -> Vec<PathBuf> {
    let mut out = vec![];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    if root.is_file() {
        return vec![root];
    }
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Lines of code (comments dropped) containing any of `needles`.
fn hits(dir: &str, needles: &[&str], whole_paths: bool) -> Vec<String> {
    let mut out = vec![];
    for file in sources(dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for n in needles {
                if if whole_paths {
                    contains_path(code, n)
                } else {
                    code.contains(n)
                } {
                    out.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
                }
            }
        }
    }
    out
}

/// Whether `code` names `needle` as a whole path (so `crate::cli` does not match `crate::client`).
fn contains_path(code: &str, needle: &str) -> bool {
    code.match_indices(needle).any(|(i, _)| {
        let next = code[i + needle.len()..].chars().next();
        !needle.ends_with(|c: char| c.is_alphanumeric() || c == '_')
            || !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

const IMPURE: &[&str] = &[
    "madsim",
    "tokio",
    "rt::",
    "Instant::now",
    "SystemTime::now",
    "thread_rng",
    "std::fs",
    ".await",
    "async fn",
    "static mut",
];

#[test]
fn the_pure_cores_name_no_runtime_clock_global_rng_or_filesystem() {
    for core in [
        "log",
        "producer",
        "replication",
        "broker",
        "raft",
        "controller",
        "group",
        "consumer",
    ] {
        assert!(!sources(core).is_empty(), "src/{core} exists");
        let found = hits(core, IMPURE, false);
        assert!(
            found.is_empty(),
            "src/{core} must stay pure (ARCHITECTURE §2):\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn a_layer_name_matches_whole_paths_only() {
    assert!(contains_path("use crate::cli::Args;", "crate::cli"));
    assert!(!contains_path("use crate::client::Client;", "crate::cli"));
    assert!(contains_path("x.await", ".await"));
}

#[test]
fn each_layer_imports_only_the_layers_before_it() {
    let layers: &[(&str, &[&str])] = &[
        (
            "types.rs",
            &[
                "crate::protocol",
                "crate::history",
                "crate::log",
                "crate::broker",
                "crate::node",
                "crate::client",
                "crate::sim",
                "crate::runner",
                "crate::checker",
            ],
        ),
        (
            "protocol",
            &[
                "crate::log",
                "crate::broker",
                "crate::node",
                "crate::client",
                "crate::sim",
                "crate::runner",
                "crate::scenario",
            ],
        ),
        (
            "history.rs",
            &[
                "crate::log",
                "crate::broker",
                "crate::node",
                "crate::client",
                "crate::sim",
                "crate::runner",
                "crate::scenario",
            ],
        ),
        (
            "log",
            &[
                "crate::broker",
                "crate::node",
                "crate::client",
                "crate::sim",
                "crate::workload",
                "crate::runner",
                "crate::scenario",
                "crate::checker",
            ],
        ),
        (
            "metadata.rs",
            &[
                "crate::log",
                "crate::broker",
                "crate::node",
                "crate::client",
                "crate::sim",
                "crate::runner",
            ],
        ),
        (
            "raft",
            &[
                "crate::broker",
                "crate::controller",
                "crate::node",
                "crate::client",
                "crate::sim",
                "crate::runner",
            ],
        ),
        (
            "controller",
            &[
                "crate::broker",
                "crate::node",
                "crate::client",
                "crate::sim",
                "crate::runner",
            ],
        ),
        (
            "producer",
            &[
                "crate::broker",
                "crate::node",
                "crate::client",
                "crate::sim",
                "crate::runner",
                "crate::scenario",
            ],
        ),
        (
            "group",
            &[
                "crate::broker",
                "crate::consumer",
                "crate::node",
                "crate::client",
                "crate::sim",
                "crate::workload",
                "crate::runner",
                "crate::scenario",
                "crate::checker",
            ],
        ),
        (
            "consumer",
            &[
                "crate::broker",
                "crate::node",
                "crate::client",
                "crate::sim",
                "crate::workload",
                "crate::runner",
                "crate::scenario",
                "crate::checker",
            ],
        ),
        (
            "replication",
            &[
                "crate::broker",
                "crate::controller",
                "crate::node",
                "crate::client",
                "crate::sim",
                "crate::runner",
                "crate::scenario",
            ],
        ),
        (
            "broker",
            &[
                "crate::node",
                "crate::client",
                "crate::sim",
                "crate::workload",
                "crate::runner",
                "crate::scenario",
                "crate::checker",
            ],
        ),
        (
            "node",
            &[
                "crate::sim",
                "crate::workload",
                "crate::runner",
                "crate::scenario",
                "crate::checker",
                "crate::cli",
            ],
        ),
        (
            "client",
            &[
                "crate::sim",
                "crate::workload",
                "crate::runner",
                "crate::scenario",
                "crate::checker",
                "crate::cli",
            ],
        ),
        (
            "sim",
            &["crate::runner", "crate::scenario", "crate::checker", "crate::cli"],
        ),
        (
            "checker",
            &[
                "crate::log",
                "crate::broker",
                "crate::node",
                "crate::client",
                "crate::sim",
                "crate::workload",
                "crate::runner",
                "crate::scenario",
            ],
        ),
    ];
    for (layer, forbidden) in layers {
        let found = hits(layer, forbidden, true);
        assert!(
            found.is_empty(),
            "src/{layer} imports a later layer:\n{}",
            found.join("\n")
        );
    }
}
