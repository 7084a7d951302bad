//! The admin client (`client::admin::KafkaAdmin`) and a group handing partitions over, end to end in the
//! simulator: 3 controllers, 3 brokers following the quorum. The admin creates a topic through a broker
//! (which forwards CreateTopics to the active controller, KIP-590), describes it and the cluster, lists
//! offsets after produces, lists and describes a group, and gets the controller's refusals as typed errors.
//! A group of two consumers shares a topic; one commits and leaves (LeaveGroup); the other takes over every
//! partition and resumes from the committed offsets, skipping nothing at or after them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_protocol::ResponseError;

use gregor::client::admin::{AdminError, NewTopic};
use gregor::client::{keyed_batch, KafkaAdmin, KafkaConsumer, OffsetSpec};
use gregor::rt;
use gregor::sim::{broker_ip, BROKER_PORT};
use gregor::types::{Offset, TopicPartition};

#[path = "common/quorum.rs"]
mod quorum;
use quorum::{bootstrap, client_node, create_and_wait};

/// The quorum and 3 brokers (`__consumer_offsets` with 3 partitions, no initial rebalance delay).
fn start_cluster() {
    quorum::start_cluster(|c| {
        c.offsets_topic_num_partitions = 3;
        c.group_initial_rebalance_delay_ms = 0;
    });
}

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Appends `values` as one acks=all batch stamped `timestamp_ms`, retrying while the leader settles.
async fn produce(admin: &mut KafkaAdmin, tp: &TopicPartition, values: &[String], timestamp_ms: i64) {
    let records: Vec<(&[u8], &[u8])> = values.iter().map(|v| (&b"k"[..], v.as_bytes())).collect();
    for _ in 0..50 {
        let batch = keyed_batch(&records, timestamp_ms);
        if admin.client().produce(tp, batch, -1, 5_000).await.is_ok() {
            return;
        }
        rt::sleep(Duration::from_millis(200)).await;
    }
    panic!("could not produce to {tp}");
}

#[madsim::test]
async fn admin_creates_describes_lists_offsets_and_refuses_bad_topics() {
    start_cluster();
    let node = client_node("admin", 1);
    node.spawn(async {
        rt::sleep(Duration::from_secs(2)).await;
        let mut admin = KafkaAdmin::new(bootstrap(), &props(&[("default.api.timeout.ms", "5000")]));
        create_and_wait(&mut admin, "orders", 3).await;

        let d = admin.describe_topics(&["orders"]).await.expect("describe");
        let orders = &d["orders"];
        assert!(!orders.topic_id.is_nil());
        assert!(!orders.is_internal);
        assert_eq!(orders.partitions.len(), 3);
        for p in &orders.partitions {
            let replicas: BTreeSet<i32> = p.replicas.iter().copied().collect();
            assert_eq!(replicas, BTreeSet::from([1, 2, 3]), "{p:?}");
            assert!(p.replicas.contains(&p.leader.unwrap()), "{p:?}");
            assert!(!p.isr.is_empty(), "{p:?}");
        }

        let cluster = admin.describe_cluster().await.expect("cluster");
        assert_eq!(cluster.cluster_id.as_deref(), Some("gregor"));
        assert_eq!(cluster.brokers.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(cluster.brokers[&2].addr(), format!("{}:{BROKER_PORT}", broker_ip(2)));

        // Two batches a second apart on partition 0, none elsewhere.
        let tp0 = TopicPartition::new("orders", 0);
        let t0 = now_ms();
        let first: Vec<String> = (0..5).map(|i| format!("a{i}")).collect();
        let second: Vec<String> = (0..5).map(|i| format!("b{i}")).collect();
        produce(&mut admin, &tp0, &first, t0).await;
        produce(&mut admin, &tp0, &second, t0 + 1000).await;
        let tp1 = TopicPartition::new("orders", 1);
        let asked = [
            (tp0.clone(), OffsetSpec::Earliest),
            (tp1.clone(), OffsetSpec::Latest),
        ];
        let listed = admin.list_offsets(&asked).await.expect("list offsets");
        assert_eq!(listed[&tp0].offset, 0);
        assert_eq!(listed[&tp1].offset, 0, "nothing written to partition 1");
        let latest = admin.list_offsets(&[(tp0.clone(), OffsetSpec::Latest)]).await.unwrap();
        assert_eq!(latest[&tp0].offset, 10, "the high watermark after two acks=all batches");
        assert!(latest[&tp0].leader_epoch >= 0);
        let by_time = admin
            .list_offsets(&[(tp0.clone(), OffsetSpec::ForTimestamp(t0 + 500))])
            .await
            .unwrap();
        assert_eq!(
            (by_time[&tp0].offset, by_time[&tp0].timestamp_ms),
            (5, t0 + 1000),
            "the first record at or after t0+500 ms opens the second batch"
        );
        let max = admin.list_offsets(&[(tp0.clone(), OffsetSpec::MaxTimestamp)]).await.unwrap();
        assert_eq!(max[&tp0].timestamp_ms, t0 + 1000);
        assert!((5..10).contains(&max[&tp0].offset), "{:?}", max[&tp0]);
        let past = admin
            .list_offsets(&[(tp0.clone(), OffsetSpec::ForTimestamp(t0 + 5000))])
            .await
            .unwrap();
        assert_eq!(past[&tp0].offset, -1, "no record that late");

        // Refusals, each naming its topic.
        let dup = admin.create_topic(&NewTopic::new("orders", 1, 1)).await.unwrap_err();
        assert!(
            matches!(&dup, AdminError::CreateTopic { topic, code: ResponseError::TopicAlreadyExists, .. } if topic == "orders"),
            "{dup}"
        );
        let rf = admin.create_topic(&NewTopic::new("wide", 1, 4)).await.unwrap_err();
        assert!(
            matches!(&rf, AdminError::CreateTopic { topic, code: ResponseError::InvalidReplicationFactor, .. } if topic == "wide"),
            "{rf}"
        );
        for bad in ["bad/name", "", "..", &"x".repeat(250)] {
            let e = admin.create_topic(&NewTopic::new(bad, 1, 1)).await.unwrap_err();
            assert!(
                matches!(&e, AdminError::CreateTopic { code: ResponseError::InvalidTopicException, .. }),
                "{bad:?}: {e}"
            );
        }
        let zero = admin.create_topic(&NewTopic::new("none", 0, 1)).await.unwrap_err();
        assert!(
            matches!(&zero, AdminError::CreateTopic { code: ResponseError::InvalidPartitions, .. }),
            "{zero}"
        );
        let many = admin
            .create_topics(&[NewTopic::new("audit", 2, 2), NewTopic::new("orders", 2, 2)])
            .await;
        assert!(many["audit"].is_ok(), "{:?}", many["audit"]);
        assert!(many["orders"].is_err(), "{:?}", many["orders"]);
        let missing = admin.describe_topics(&["nope"]).await.unwrap_err();
        assert!(
            matches!(&missing, AdminError::DescribeTopic { topic, code: ResponseError::UnknownTopicOrPartition } if topic == "nope"),
            "{missing}"
        );
        let audit = admin.describe_topics(&["audit"]).await.expect("audit");
        assert_eq!(audit["audit"].partitions.len(), 2);
        assert!(audit["audit"].partitions.iter().all(|p| p.replicas.len() == 2));
    })
    .await
    .unwrap();
}

/// What each member saw, shared between the member nodes and the test.
#[derive(Default)]
struct Shared {
    /// Member "a"'s committed offsets when it left.
    a_committed: BTreeMap<TopicPartition, Offset>,
    a_left: bool,
    /// Member "b"'s reads after "a" left, per partition.
    b_reads_after: BTreeMap<TopicPartition, Vec<Offset>>,
    b_final_assignment: Vec<TopicPartition>,
    /// The admin's view while both members were in the group.
    described_members: usize,
    described_partitions: BTreeSet<TopicPartition>,
    listed: Vec<(String, String, String)>,
}

/// Records per partition written before the members start, and as many again once "a" left.
const RECORDS_PER_PARTITION: i64 = 30;
const RECORDS_IN_THE_END: i64 = 2 * RECORDS_PER_PARTITION;

fn member(name: &str) -> KafkaConsumer {
    let p = props(&[
        ("group.id", "readers"),
        ("client.id", name),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
        ("max.poll.records", "4"),
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "1000"),
    ]);
    KafkaConsumer::new(bootstrap(), &p, Box::new(|_| {})).expect("consumer config")
}

#[madsim::test]
async fn a_member_that_leaves_hands_every_partition_over_with_nothing_skipped_after_its_commits() {
    start_cluster();
    let shared = Arc::new(Mutex::new(Shared::default()));
    let setup = client_node("admin", 1);
    let ready = setup
        .spawn(async {
            rt::sleep(Duration::from_secs(2)).await;
            let mut admin = KafkaAdmin::new(bootstrap(), &BTreeMap::new());
            create_and_wait(&mut admin, "orders", 3).await;
            for p in 0..3 {
                let tp = TopicPartition::new("orders", p);
                let values: Vec<String> = (0..RECORDS_PER_PARTITION).map(|i| format!("p{p}-{i}")).collect();
                produce(&mut admin, &tp, &values, now_ms()).await;
            }
        })
        .await;
    ready.unwrap();

    let a = {
        let shared = shared.clone();
        client_node("member-a", 2).spawn(async move {
            let mut c = member("a");
            c.subscribe(BTreeSet::from(["orders".to_string()])).unwrap();
            let mut polled = 0;
            let deadline = now_ms() + 60_000;
            // Read a little while sharing the topic with "b", then commit and leave.
            while now_ms() < deadline {
                let records = c.poll(Duration::from_millis(100)).await;
                let sharing = (1..3).contains(&c.assignment().len());
                polled = if sharing { polled + records.len() } else { 0 };
                let described = shared.lock().unwrap().described_members == 2;
                if sharing && polled >= 4 && described {
                    break;
                }
            }
            let results = c.commit_sync().await.expect("a commit");
            for (tp, done) in results {
                assert_eq!(done, gregor::client::consumer::Completion::Ok, "{tp}");
                let offset = c.position(&tp).unwrap().offset;
                shared.lock().unwrap().a_committed.insert(tp.clone(), offset);
            }
            c.close().await;
            shared.lock().unwrap().a_left = true;
        })
    };
    let b = {
        let shared = shared.clone();
        client_node("member-b", 3).spawn(async move {
            let mut c = member("b");
            c.subscribe(BTreeSet::from(["orders".to_string()])).unwrap();
            let deadline = now_ms() + 120_000;
            let all: BTreeSet<TopicPartition> = (0..3).map(|p| TopicPartition::new("orders", p)).collect();
            while now_ms() < deadline {
                let records = c.poll(Duration::from_millis(100)).await;
                {
                    let mut s = shared.lock().unwrap();
                    if !s.a_left {
                        continue;
                    }
                    for r in records {
                        s.b_reads_after.entry(r.tp.clone()).or_default().push(r.offset);
                    }
                }
                let owns_all = c.assignment().into_iter().collect::<BTreeSet<_>>() == all;
                let caught_up = all
                    .iter()
                    .all(|tp| c.position(tp).is_some_and(|p| p.offset >= RECORDS_IN_THE_END));
                if owns_all && caught_up {
                    break;
                }
            }
            shared.lock().unwrap().b_final_assignment = c.assignment();
            c.close().await;
        })
    };
    let watcher = {
        let shared = shared.clone();
        client_node("admin-2", 4).spawn(async move {
            let mut admin = KafkaAdmin::new(bootstrap(), &BTreeMap::new());
            for _ in 0..300 {
                let d = admin.describe_groups(&["readers"]).await.expect("describe group");
                let g = &d["readers"];
                if g.state == "Stable" && g.members.len() == 2 {
                    assert_eq!(g.protocol_type, "consumer");
                    assert!(!g.protocol.is_empty());
                    let listed = admin.list_groups().await.expect("list groups");
                    let mut s = shared.lock().unwrap();
                    s.described_members = 2;
                    s.described_partitions = g.members.iter().flat_map(|m| m.assignment.clone()).collect();
                    s.listed = listed
                        .into_iter()
                        .map(|l| (l.group_id, l.protocol_type, l.state))
                        .collect();
                    return;
                }
                rt::sleep(Duration::from_millis(100)).await;
            }
            panic!("the group never had two stable members");
        })
    };
    let more = {
        let shared = shared.clone();
        client_node("producer", 5).spawn(async move {
            while !shared.lock().unwrap().a_left {
                rt::sleep(Duration::from_millis(50)).await;
            }
            let mut admin = KafkaAdmin::new(bootstrap(), &BTreeMap::new());
            for p in 0..3 {
                let tp = TopicPartition::new("orders", p);
                let values: Vec<String> = (RECORDS_PER_PARTITION..RECORDS_IN_THE_END)
                    .map(|i| format!("p{p}-{i}"))
                    .collect();
                produce(&mut admin, &tp, &values, now_ms()).await;
            }
        })
    };
    watcher.await.unwrap();
    a.await.unwrap();
    more.await.unwrap();
    b.await.unwrap();

    let s = shared.lock().unwrap();
    assert_eq!(s.described_partitions.len(), 3, "{:?}", s.described_partitions);
    assert!(
        s.listed
            .contains(&("readers".into(), "consumer".into(), "Stable".into())),
        "{:?}",
        s.listed
    );
    assert_eq!(s.b_final_assignment.len(), 3, "b took over every partition");
    assert!(!s.a_committed.is_empty(), "a committed what it owned");
    for (tp, committed) in &s.a_committed {
        let reads: BTreeSet<Offset> = s.b_reads_after.get(tp).into_iter().flatten().copied().collect();
        let first = reads.iter().next().copied();
        assert_eq!(first, Some(*committed), "{tp}: b resumes at a's committed offset");
        let expected: BTreeSet<Offset> = (*committed..RECORDS_IN_THE_END).collect();
        assert!(
            expected.is_subset(&reads),
            "{tp}: b skipped {:?} after the committed offset {committed}",
            expected.difference(&reads).collect::<Vec<_>>()
        );
    }
}
