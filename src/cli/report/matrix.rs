//! The durability matrix: which scenarios are fault scenarios, and which cells (acks x min.insync.replicas x
//! unclean.leader.election.enable) mean something for each. Discovered from the scenario files, not listed
//! by hand.

use std::path::{Path, PathBuf};

use crate::scenario::{parse_override, unclean_election_enabled, Scenario};

/// Where unclean-election cells are, and where not.
pub const UNCLEAN_CELLS: &str = "unclean.leader.election.enable=true cells (acks=all, min.insync.replicas 1 \
and 2) are added to the scenarios whose faults can take a partition's leader down (a crash, power loss or \
shutdown aimed at a leader or an ISR, or at every broker) and that leave the setting off; a scenario that turns \
it on runs with it on in every cell. acks=0 and acks=1 promise nothing the setting changes. The checker infers \
unclean elections from the controllers' metadata and takes the partition out of contract from that moment.";

/// The controller setting `unclean.leader.election.enable`, as a `--set`.
const UNCLEAN_SET: &str = "cluster.controller_config.unclean.leader.election.enable";

/// Fault kinds that take a node down.
const NODE_DOWN: &[&str] = &["crash", "power_loss", "shutdown"];

/// One cell of the matrix: a scenario under one configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub scenario: String,
    pub file: PathBuf,
    /// `0`, `1` or `all`.
    pub acks: String,
    pub min_insync_replicas: u32,
    pub replication_factor: u32,
    /// `unclean.leader.election.enable` as the cell runs it.
    pub unclean_leader_election: bool,
    /// Whether the scenario has `[[consumer_groups]]` (the report draws their lag).
    pub consumer_groups: bool,
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

/// Whether the faults can leave a partition without a live ISR member while another replica lives, so
/// that `unclean.leader.election.enable` decides what happens: a node-down fault aimed at a partition's
/// leader or ISR, or node-down faults aimed at every broker one by one.
pub fn leader_can_die(s: &Scenario) -> bool {
    let down = |f: &&crate::scenario::FaultEntry| NODE_DOWN.contains(&f.kind.get_ref().as_str());
    let aimed = s.file.faults.iter().filter(down).any(|f| {
        let t = f.target.get_ref();
        t.starts_with("leader:") || t.starts_with("isr-but-one:")
    });
    let brokers = *s.file.cluster.brokers.get_ref() as usize;
    let hit: std::collections::BTreeSet<&str> = s
        .file
        .faults
        .iter()
        .filter(down)
        .filter_map(|f| f.target.get_ref().strip_prefix("node:broker-"))
        .collect();
    aimed || (brokers >= 2 && hit.len() >= brokers)
}

/// The cells of one fault scenario: acks=0 and acks=1 at the file's `min.insync.replicas` (it does not
/// apply to them), acks=all at `min.insync.replicas` 1 and 2 where the replication factor allows, all at the
/// file's `unclean.leader.election.enable`; where the file leaves it off and the faults can take a leader
/// down ([`leader_can_die`]), acks=all at `min.insync.replicas` 1 and 2 once more with it on.
pub fn cells_of(file: &Path, s: &Scenario) -> Vec<Cell> {
    let (rf, file_min_isr) = produced_topic(s);
    let file_unclean = unclean_election_enabled(&s.file);
    let mut out = vec![];
    let cell = |acks: &str, min_isr: u32, unclean: bool, mut sets: Vec<String>| {
        sets.insert(0, format!("producers.config.acks={acks}"));
        if unclean != file_unclean {
            sets.push(format!("{UNCLEAN_SET}={unclean}"));
        }
        Cell {
            scenario: s.name().to_string(),
            file: file.to_path_buf(),
            acks: acks.to_string(),
            min_insync_replicas: min_isr,
            replication_factor: rf,
            unclean_leader_election: unclean,
            consumer_groups: !s.file.consumer_groups.is_empty(),
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
        out.push(cell(acks, file_min_isr, file_unclean, sets));
    }
    let flip = !file_unclean && leader_can_die(s);
    for unclean in [file_unclean].into_iter().chain(flip.then_some(true)) {
        for min_isr in [1, 2].into_iter().filter(|m| *m <= rf) {
            out.push(cell(
                "all",
                min_isr,
                unclean,
                vec![format!("topics.config.min.insync.replicas={min_isr}")],
            ));
        }
    }
    out
}

/// The whole matrix from the files given: cells, and what was left out and why.
pub fn matrix(files: &[PathBuf]) -> (Vec<Cell>, Vec<String>) {
    let mut cells = vec![];
    let mut left_out = vec![UNCLEAN_CELLS.to_string()];
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
                    "{} acks={} min.insync.replicas={} unclean.leader.election.enable={}: {e}",
                    c.scenario, c.acks, c.min_insync_replicas, c.unclean_leader_election
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
        let shape: Vec<(&str, u32, bool)> = cells
            .iter()
            .map(|c| (c.acks.as_str(), c.min_insync_replicas, c.unclean_leader_election))
            .collect();
        assert_eq!(
            shape,
            [
                ("0", 2, false),
                ("1", 2, false),
                ("all", 1, false),
                ("all", 2, false),
                ("all", 1, true),
                ("all", 2, true)
            ]
        );
        assert!(cells[0].sets.contains(&"producers.config.acks=0".to_string()));
        assert!(cells[2]
            .sets
            .contains(&"topics.config.min.insync.replicas=1".to_string()));
        assert!(!cells[2].sets.iter().any(|s| s.contains("unclean")));
        assert!(cells[4]
            .sets
            .contains(&"cluster.controller_config.unclean.leader.election.enable=true".to_string()));
    }

    #[test]
    fn a_scenario_that_turns_unclean_election_on_keeps_it_on_in_every_cell_without_a_second_set() {
        let s = scenario("scenarios/isr-shrink-leader-crash-unclean.toml");
        let cells = cells_of(Path::new("x.toml"), &s);
        assert_eq!(cells.len(), 4);
        assert!(cells.iter().all(|c| c.unclean_leader_election));
        assert!(cells.iter().all(|c| !c.sets.iter().any(|s| s.contains("unclean"))));
    }

    #[test]
    fn unclean_cells_only_where_the_faults_can_take_a_leader_down() {
        assert!(leader_can_die(&scenario(
            "scenarios/isr-shrink-leader-crash-clean.toml"
        )));
        assert!(leader_can_die(&scenario("scenarios/all-brokers-crash-acks-all.toml")));
        assert!(!leader_can_die(&scenario("scenarios/broker-fencing.toml")));
        assert!(!leader_can_die(&scenario("scenarios/flapping-swizzle.toml")));
        let cells = cells_of(Path::new("x.toml"), &scenario("scenarios/broker-fencing.toml"));
        assert!(cells.iter().all(|c| !c.unclean_leader_election));
    }

    #[test]
    fn every_unclean_cell_of_the_library_loads_with_its_overrides() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"));
        let (cells, left_out) = matrix(&scenario_files(dir).unwrap());
        assert_eq!(left_out.len(), 1, "{left_out:?}");
        assert!(cells.iter().filter(|c| c.unclean_leader_election).count() >= 10);
    }

    #[test]
    fn single_broker_and_fault_free_scenarios_are_not_in_the_matrix() {
        assert!(!is_fault_scenario(&scenario("scenarios/smoke.toml")));
        assert!(!is_fault_scenario(&scenario("scenarios/one-broker-crash.toml")));
    }
}
