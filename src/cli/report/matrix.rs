//! The durability matrix: which scenarios are fault scenarios, and which cells (acks x min.insync.replicas)
//! mean something for each. Discovered from the scenario files, not listed by hand.

use std::path::{Path, PathBuf};

use crate::scenario::{parse_override, Scenario};

/// Why unclean-election cells are not in the matrix (ARCHITECTURE §6 needs the runner to see them).
pub const UNCLEAN_LEFT_OUT: &str = "unclean.leader.election.enable=true cells are left out: the controller can \
elect an out-of-sync replica, but the runner does not yet record unclean elections in the history and the \
contract monitor does not yet take a partition out of contract for one, so such cells would be misjudged.";

/// One cell of the matrix: a scenario under one configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub scenario: String,
    pub file: PathBuf,
    /// `0`, `1` or `all`.
    pub acks: String,
    pub min_insync_replicas: u32,
    pub replication_factor: u32,
    /// The `--set` overrides that make this cell.
    pub sets: Vec<String>,
}

/// A fault scenario worth a durability cell: replicated data (a topic with replication factor >= 2 on
/// several brokers), a producer, and faults (a fixed plan or a swarm).
pub fn is_fault_scenario(s: &Scenario) -> bool {
    let f = &s.file;
    *f.cluster.brokers.get_ref() >= 2
        && f.topics.iter().any(|t| *t.replication_factor.get_ref() >= 2)
        && !f.producers.is_empty()
        && (!f.faults.is_empty() || f.swarm.is_some())
}

/// The scenario files of a folder, sorted by name.
pub fn scenario_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The replication factor and `min.insync.replicas` of the first producer's topic.
fn produced_topic(s: &Scenario) -> (u32, u32) {
    let topic = s
        .file
        .producers
        .first()
        .map(|p| p.topic.get_ref().clone())
        .unwrap_or_default();
    let rf = s
        .file
        .topics
        .iter()
        .find(|t| t.name.get_ref() == &topic)
        .map_or(1, |t| *t.replication_factor.get_ref());
    let min_isr = s
        .topic_configs
        .get(&topic)
        .and_then(|c| c.get("min.insync.replicas"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    (rf, min_isr)
}

/// Whether a producer of the file sets `enable.idempotence` to true itself (KIP-679 then refuses acks != all).
fn idempotence_set_explicitly(s: &Scenario) -> bool {
    s.file.producers.iter().any(|p| {
        crate::scenario::producer_config(p)
            .get("enable.idempotence")
            .is_some_and(|v| v == "true")
    })
}

/// The cells of one fault scenario: acks=0 and acks=1 at the file's `min.insync.replicas` (it does not
/// apply to them), acks=all at `min.insync.replicas` 1 and 2 where the replication factor allows.
pub fn cells_of(file: &Path, s: &Scenario) -> Vec<Cell> {
    let (rf, file_min_isr) = produced_topic(s);
    let mut out = vec![];
    let cell = |acks: &str, min_isr: u32, mut sets: Vec<String>| {
        sets.insert(0, format!("producers.config.acks={acks}"));
        Cell {
            scenario: s.name().to_string(),
            file: file.to_path_buf(),
            acks: acks.to_string(),
            min_insync_replicas: min_isr,
            replication_factor: rf,
            sets,
        }
    };
    for acks in ["0", "1"] {
        let sets = if idempotence_set_explicitly(s) {
            // Kafka's default for acks != all is a non-idempotent producer (KIP-679).
            vec!["producers.config.enable.idempotence=false".to_string()]
        } else {
            vec![]
        };
        out.push(cell(acks, file_min_isr, sets));
    }
    for min_isr in [1, 2].into_iter().filter(|m| *m <= rf) {
        out.push(cell(
            "all",
            min_isr,
            vec![format!("topics.config.min.insync.replicas={min_isr}")],
        ));
    }
    out
}

/// The whole matrix from the files given: cells, and what was left out and why.
pub fn matrix(files: &[PathBuf]) -> (Vec<Cell>, Vec<String>) {
    let mut cells = vec![];
    let mut left_out = vec![UNCLEAN_LEFT_OUT.to_string()];
    for file in files {
        let s = match Scenario::load(file) {
            Ok(s) => s,
            Err(e) => {
                left_out.push(format!("{}: does not load ({e})", file.display()));
                continue;
            }
        };
        if !is_fault_scenario(&s) {
            continue;
        }
        for c in cells_of(file, &s) {
            match check_cell(&c) {
                Ok(()) => cells.push(c),
                Err(e) => left_out.push(format!(
                    "{} acks={} min.insync.replicas={}: {e}",
                    c.scenario, c.acks, c.min_insync_replicas
                )),
            }
        }
    }
    (cells, left_out)
}

/// Loads the cell's scenario with its overrides: the configuration must be valid.
fn check_cell(c: &Cell) -> Result<(), String> {
    let overrides = c
        .sets
        .iter()
        .map(|s| parse_override(s))
        .collect::<Result<Vec<_>, _>>()?;
    Scenario::load_with(&c.file, &overrides)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(path: &str) -> Scenario {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/");
        Scenario::load(Path::new(&format!("{dir}{path}"))).unwrap()
    }

    #[test]
    fn a_replicated_fault_scenario_gets_acks_0_1_and_all_at_min_isr_1_and_2() {
        let s = scenario("scenarios/leader-crash-acks-all.toml");
        assert!(is_fault_scenario(&s));
        let cells = cells_of(Path::new("x.toml"), &s);
        let shape: Vec<(&str, u32)> = cells.iter().map(|c| (c.acks.as_str(), c.min_insync_replicas)).collect();
        assert_eq!(shape, [("0", 2), ("1", 2), ("all", 1), ("all", 2)]);
        assert!(cells[0].sets.contains(&"producers.config.acks=0".to_string()));
        assert!(cells[2]
            .sets
            .contains(&"topics.config.min.insync.replicas=1".to_string()));
    }

    #[test]
    fn single_broker_and_fault_free_scenarios_are_not_in_the_matrix() {
        assert!(!is_fault_scenario(&scenario("scenarios/smoke.toml")));
        assert!(!is_fault_scenario(&scenario("scenarios/one-broker-crash.toml")));
    }
}
