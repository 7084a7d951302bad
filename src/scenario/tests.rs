use super::*;

const GOOD: &str = r#"
name = "t"
[cluster]
controllers = 0
brokers = 1
[[topics]]
name = "orders"
partitions = 3
[[producers]]
topic = "orders"
records_per_s = 1000
records = 100
config = { acks = "1" }
[phases]
safety_s = 10
[[faults]]
at_s = [1, 9]
kind = "crash"
target = "node:broker-1"
restart_after_s = 1
"#;

fn err(text: &str) -> ScenarioError {
    Scenario::parse("s.toml", text).expect_err("the scenario should be refused")
}

#[test]
fn a_good_scenario_loads_with_its_fault_plan_and_hash() {
    let s = Scenario::parse("s.toml", GOOD).unwrap();
    assert_eq!(s.name(), "t");
    assert_eq!(s.faults.len(), 1);
    assert_eq!(s.faults[0].at_s, TimeSpec::Range(1.0, 9.0));
    assert_eq!(s.faults[0].target, Target::Node("broker-1".into()));
    assert_eq!(s.hash.len(), 64);
}

#[test]
fn unknown_key_is_an_error_naming_key_file_line_and_column() {
    let e = err(&GOOD.replace("records = 100", "records = 100\nrecrods = 5"));
    assert_eq!((e.file.as_str(), e.line, e.column), ("s.toml", 13, 1), "{e}");
    assert!(e.message.contains("recrods"), "{e}");
    assert!(e.column >= 1);
}

#[test]
fn wrong_type_is_an_error_with_its_place() {
    let e = err(&GOOD.replace("partitions = 3", "partitions = \"three\""));
    assert_eq!(e.line, 8, "{e}");
}

#[test]
fn an_even_controller_count_says_the_quorum_needs_an_odd_number() {
    let e = err(&GOOD.replace("controllers = 0", "controllers = 2"));
    assert!(e.message.contains("odd number"), "{e}");
    assert_eq!(e.line, 4);
}

#[test]
fn replication_factor_above_the_broker_count_is_refused() {
    let e = err(&GOOD.replace("partitions = 3", "partitions = 3\nreplication_factor = 2"));
    assert!(e.message.contains("replication_factor = 2"), "{e}");
    assert_eq!(e.line, 9);
}

#[test]
fn unknown_kafka_config_keys_and_bad_values_are_refused() {
    let e = err(&GOOD.replace("acks = \"1\"", "acks = \"1\", \"linger.mss\" = 5"));
    assert!(e.message.contains("linger.mss"), "{e}");
    let e = err(&GOOD.replace("acks = \"1\"", "acks = \"2\""));
    assert!(e.message.contains("acks"), "{e}");
}

#[test]
fn faults_must_target_something_that_exists_and_fire_inside_the_safety_phase() {
    let e = err(&GOOD.replace("node:broker-1", "node:broker-7"));
    assert!(e.message.contains("broker-7"), "{e}");
    let e = err(&GOOD.replace("node:broker-1", "active-controller"));
    assert!(e.message.contains("no controller quorum"), "{e}");
    let e = err(&GOOD.replace("at_s = [1, 9]", "at_s = [1, 11]"));
    assert!(e.message.contains("at_s"), "{e}");
    let e = err(&GOOD.replace("kind = \"crash\"", "kind = \"explode\""));
    assert!(e.message.contains("unknown fault kind"), "{e}");
}

#[test]
fn a_too_short_liveness_deadline_is_refused() {
    let e = err(&GOOD.replace("safety_s = 10", "safety_s = 10\nliveness_deadline_s = 1"));
    assert!(e.message.contains("liveness_deadline_s"), "{e}");
}

#[test]
fn acks_all_is_accepted_with_idempotence_on_by_default_or_off() {
    Scenario::parse("s.toml", &GOOD.replace("acks = \"1\"", "acks = \"all\"")).unwrap();
    Scenario::parse(
        "s.toml",
        &GOOD.replace("acks = \"1\"", "acks = \"all\", \"enable.idempotence\" = false"),
    )
    .unwrap();
}

#[test]
fn producer_configs_the_producer_core_refuses_are_refused_at_validation_kip_679() {
    let e = err(&GOOD.replace("acks = \"1\"", "acks = \"1\", \"enable.idempotence\" = true"));
    assert!(e.message.contains("acks=1") && e.message.contains("idempotence"), "{e}");
    let e = err(&GOOD.replace(
        "acks = \"1\"",
        "acks = \"1\", \"delivery.timeout.ms\" = 100, \"request.timeout.ms\" = 3000",
    ));
    assert!(e.message.contains("delivery.timeout.ms=100"), "{e}");
    Scenario::parse(
        "s.toml",
        &GOOD.replace(
            "acks = \"1\"",
            "acks = \"1\", retries = 3, \"max.in.flight.requests.per.connection\" = 1, \"retry.backoff.ms\" = 50",
        ),
    )
    .unwrap();
}

#[test]
fn line_col_counts_from_one() {
    assert_eq!(line_col("ab\ncd", 0), (1, 1));
    assert_eq!(line_col("ab\ncd", 4), (2, 2));
}

#[test]
fn lasting_faults_need_a_duration_and_only_their_own_parameters() {
    let pause = GOOD
        .replace("kind = \"crash\"", "kind = \"pause\"")
        .replace("restart_after_s = 1", "duration_s = 2");
    let s = Scenario::parse("s.toml", &pause).unwrap();
    assert_eq!(s.faults[0].kind, FaultKind::Pause);
    assert_eq!(s.faults[0].duration_s, Some(TimeSpec::At(2.0)));
    let e = err(&GOOD.replace("kind = \"crash\"", "kind = \"pause\""));
    assert!(e.message.contains("restart_after_s does not apply"), "{e}");
    let e = err(&GOOD
        .replace("kind = \"crash\"", "kind = \"pause\"")
        .replace("restart_after_s = 1", ""));
    assert!(e.message.contains("needs duration_s"), "{e}");
    let e = err(&pause.replace("kind = \"pause\"", "kind = \"packet_loss\""));
    assert!(e.message.contains("needs rate"), "{e}");
    let e = err(&pause.replace("duration_s = 2", "duration_s = 2\nrate = 0.1"));
    assert!(e.message.contains("rate does not apply to `pause`"), "{e}");
    let e = err(&pause
        .replace("kind = \"pause\"", "kind = \"packet_loss\"")
        .replace("duration_s = 2", "duration_s = 2\nrate = 1.5"));
    assert!(e.message.contains("(0, 1]"), "{e}");
    let e = err(&pause.replace("kind = \"pause\"", "kind = \"disk_slow\""));
    assert!(e.message.contains("needs factor"), "{e}");
    let e = err(&GOOD.replace("kind = \"crash\"", "kind = \"swizzle\""));
    assert!(e.message.contains("restart_after_s does not apply"), "{e}");
}

const GROUP: &str = r#"
[[consumer_groups]]
group_id = "audit"
members = 2
topics = ["orders"]
config = { "enable.auto.commit" = false, "session.timeout.ms" = 6000 }
"#;

#[test]
fn consumer_groups_name_their_members_and_client_and_coordinator_targets_must_exist() {
    let text = format!("{GOOD}{GROUP}");
    let s = Scenario::parse("s.toml", &text).unwrap();
    assert_eq!(consumer_names(&s.file.consumer_groups[0]), vec!["audit-1", "audit-2"]);
    assert_eq!(
        consumer_config(&s.file.consumer_groups[0])["enable.auto.commit"],
        "false"
    );
    let targeted = |t: &str| format!("{}{GROUP}", GOOD.replace("node:broker-1", t));
    let s = Scenario::parse("s.toml", &targeted("client:audit-2")).unwrap();
    assert_eq!(s.faults[0].target, Target::Client("audit-2".into()));
    let s = Scenario::parse("s.toml", &targeted("client:client-1")).unwrap();
    assert_eq!(
        s.faults[0].target,
        Target::Client("client-1".into()),
        "the producer's node"
    );
    let s = Scenario::parse("s.toml", &targeted("coordinator:audit")).unwrap();
    assert_eq!(s.faults[0].target, Target::Coordinator("audit".into()));
    assert!(err(&targeted("client:audit-3")).message.contains("no such client"));
    assert!(err(&targeted("coordinator:other"))
        .message
        .contains("no [[consumer_groups]]"));
    let bad_key = format!("{GOOD}{}", GROUP.replace("session.timeout.ms", "session.timeout"));
    assert!(err(&bad_key)
        .message
        .contains("unknown or unsupported key `session.timeout`"));
    let bad_topic = format!("{GOOD}{}", GROUP.replace("[\"orders\"]", "[\"nope\"]"));
    assert!(err(&bad_topic).message.contains("not declared"));
}

#[test]
fn follower_and_isr_but_one_targets_need_a_replicated_partition_that_exists() {
    let replicated = GOOD
        .replace("brokers = 1", "brokers = 3")
        .replace("controllers = 0", "controllers = 1")
        .replace("partitions = 3", "partitions = 3\nreplication_factor = 3");
    for (target, want) in [
        (
            "follower:orders-2",
            Target::Follower(crate::types::TopicPartition::new("orders", 2)),
        ),
        (
            "isr-but-one:orders-0",
            Target::IsrButOne(crate::types::TopicPartition::new("orders", 0)),
        ),
    ] {
        let s = Scenario::parse("s.toml", &replicated.replace("node:broker-1", target)).unwrap();
        assert_eq!(s.faults[0].target, want);
        assert_eq!(s.faults[0].target.describe(), target);
    }
    let e = err(&replicated.replace("node:broker-1", "follower:orders-3"));
    assert!(e.message.contains("no such topic partition"), "{e}");
    let e = err(&GOOD.replace("node:broker-1", "isr-but-one:orders-0"));
    assert!(e.message.contains("replication factor 1"), "{e}");
    assert_eq!(e.line, 19, "{e}");
}

#[test]
fn a_producers_tombstone_rate_must_be_a_fraction_below_one() {
    let s = Scenario::parse(
        "s.toml",
        &GOOD.replace("records = 100", "records = 100\ntombstone_rate = 0.25"),
    )
    .expect("a fraction is fine");
    assert_eq!(*s.file.producers[0].tombstone_rate.get_ref(), 0.25);
    let e = err(&GOOD.replace("records = 100", "records = 100\ntombstone_rate = 1.0"));
    assert!(e.message.contains("tombstone_rate = 1"), "{e}");
    assert_eq!(e.line, 13, "{e}");
}
