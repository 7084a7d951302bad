use uuid::Uuid;

use super::tests::Harness;
use super::*;

fn by_name(name: &str) -> DeletableTopic {
    DeletableTopic {
        name: Some(name.into()),
        topic_id: Uuid::nil(),
    }
}

fn grow(h: &mut Harness, name: &str, count: i32) -> CreatePartitionsTopicResult {
    let req = CreatePartitionsRequest {
        topics: vec![CreatePartitionsTopic {
            name: name.into(),
            count,
            assignments: None,
        }],
        validate_only: false,
    };
    let r = h.c.create_partitions(req, &mut h.rng);
    h.commit(r).remove(0)
}

fn cluster() -> Harness {
    let mut h = Harness::new(ControllerConfig::new(0, "c"));
    h.live_brokers(&[1, 2, 3]);
    h
}

#[test]
fn delete_topics_writes_a_remove_topic_record_that_drops_partitions_and_configs() {
    let mut h = cluster();
    let created = h.create("t", 3, 2, &[("min.insync.replicas", "2")]);
    let r = h.c.delete_topics(&[by_name("t")]);
    assert_eq!(
        r.records,
        vec![Record::RemoveTopic {
            topic_id: created.topic_id
        }]
    );
    let results = h.commit(r);
    assert_eq!(results[0].error, None);
    assert_eq!(results[0].topic_id, created.topic_id);
    let state = h.c.state();
    assert!(!state.topic_ids.contains_key("t"));
    assert!(!state.topics.contains_key(&created.topic_id));
    assert_eq!(state.topic_config("t", "min.insync.replicas"), None);
    assert!(h.c.image().topic("t").is_none());
    assert_eq!(state.partitions().count(), 0);
}

#[test]
fn a_recreated_topic_gets_a_new_id_and_none_of_the_old_configs() {
    let mut h = cluster();
    let old = h.create("t", 1, 1, &[("retention.ms", "5")]);
    h.commit(h.c.delete_topics(&[by_name("t")]));
    let new = h.create("t", 2, 1, &[]);
    assert_eq!(new.error, None);
    assert_ne!(new.topic_id, old.topic_id);
    assert_eq!(h.c.state().topic_config("t", "retention.ms"), None);
    assert_eq!(h.c.image().topic("t").unwrap().partitions.len(), 2);
}

#[test]
fn deleting_an_unknown_topic_names_it_and_writes_nothing() {
    let mut h = cluster();
    h.create("t", 1, 1, &[]);
    let unknown_id = Uuid::from_u128(42);
    let r = h.c.delete_topics(&[
        by_name("nope"),
        DeletableTopic {
            name: None,
            topic_id: unknown_id,
        },
        by_name("t"),
        by_name("t"),
    ]);
    assert_eq!(r.records.len(), 1, "t deleted once: {:?}", r.records);
    let res = r.response;
    assert_eq!(res[0].error, Some(ResponseError::UnknownTopicOrPartition));
    assert!(res[0].error_message.as_deref().unwrap().contains("nope"));
    assert_eq!(res[1].error, Some(ResponseError::UnknownTopicId));
    assert_eq!(res[2].error, None);
    assert_eq!(res[3].error, Some(ResponseError::UnknownTopicOrPartition));
}

#[test]
fn delete_by_id_finds_the_name_and_internal_topics_and_disabled_deletion_are_refused() {
    let mut h = cluster();
    let t = h.create("t", 1, 1, &[]);
    h.create("__consumer_offsets", 1, 1, &[]);
    let res = h.commit(h.c.delete_topics(&[
        DeletableTopic {
            name: None,
            topic_id: t.topic_id,
        },
        by_name("__consumer_offsets"),
    ]));
    assert_eq!(res[0].name.as_deref(), Some("t"));
    assert_eq!(res[0].error, None);
    assert_eq!(res[1].error, Some(ResponseError::InvalidRequest));
    assert!(h.c.state().topic_ids.contains_key("__consumer_offsets"));

    let mut config = ControllerConfig::new(0, "c");
    config.set(DELETE_TOPIC_ENABLE, "false").unwrap();
    let mut h = Harness::new(config);
    h.live_brokers(&[1]);
    h.create("t", 1, 1, &[]);
    let r = h.c.delete_topics(&[by_name("t")]);
    assert!(r.records.is_empty());
    assert_eq!(r.response[0].error, Some(ResponseError::TopicDeletionDisabled));
}

#[test]
fn create_partitions_adds_partitions_with_the_topics_replication_factor() {
    let mut h = cluster();
    let t = h.create("t", 3, 2, &[]);
    let res = grow(&mut h, "t", 6);
    assert_eq!(res.error, None, "{res:?}");
    let topic = &h.c.state().topics[&t.topic_id];
    assert_eq!(
        topic.partitions.keys().copied().collect::<Vec<_>>(),
        (0..6).collect::<Vec<_>>()
    );
    for p in 3..6 {
        let (_, part) = h.partition("t", p);
        assert_eq!(part.replicas.len(), 2, "partition {p}: {part:?}");
        assert_eq!(part.isr, part.replicas);
        assert_eq!(part.leader, part.replicas[0]);
        assert_eq!((part.leader_epoch, part.partition_epoch), (0, 0));
    }
    assert_eq!(h.c.image().topic("t").unwrap().partitions.len(), 6);
}

#[test]
fn create_partitions_refuses_shrinking_unknown_topics_and_bad_assignments() {
    let mut h = cluster();
    h.create("t", 3, 2, &[]);
    let same = grow(&mut h, "t", 3);
    assert_eq!(same.error, Some(ResponseError::InvalidPartitions));
    assert!(same.error_message.unwrap().contains("topic t has 3 partitions"));
    assert_eq!(grow(&mut h, "t", 2).error, Some(ResponseError::InvalidPartitions));
    assert_eq!(grow(&mut h, "u", 4).error, Some(ResponseError::UnknownTopicOrPartition));
    let req = CreatePartitionsRequest {
        topics: vec![CreatePartitionsTopic {
            name: "t".into(),
            count: 5,
            assignments: Some(vec![vec![1, 2], vec![3, 3]]),
        }],
        validate_only: false,
    };
    let r = h.c.create_partitions(req.clone(), &mut h.rng);
    assert!(r.records.is_empty());
    assert_eq!(r.response[0].error, Some(ResponseError::InvalidReplicaAssignment));
    let mut ok = req;
    ok.topics[0].assignments = Some(vec![vec![1, 2], vec![3, 1]]);
    let r = h.c.create_partitions(ok, &mut h.rng);
    assert_eq!(h.commit(r)[0].error, None);
    assert_eq!(h.partition("t", 4).1.replicas, vec![3, 1]);
}

#[test]
fn a_recovering_controller_replays_deletes_and_new_partitions_to_the_same_state() {
    let mut h = cluster();
    h.create("a", 1, 1, &[]);
    h.create("b", 2, 3, &[]);
    grow(&mut h, "b", 4);
    h.commit(h.c.delete_topics(&[by_name("a")]));
    h.create("a", 1, 1, &[]);
    let mut replayed = ControllerState::default();
    for (offset, data) in &h.log {
        for r in decode_records(data).unwrap() {
            replayed.replay(*offset, &r).unwrap();
        }
    }
    assert_eq!(&replayed, h.c.state());
    let removed = Record::RemoveTopic {
        topic_id: Uuid::from_u128(1),
    };
    assert!(matches!(
        replayed.replay(replayed.last_offset + 1, &removed),
        Err(ReplayError::UnknownTopic { .. })
    ));
}
