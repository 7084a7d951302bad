//! L3: [`KafkaAdmin`], Kafka's `Admin` client as an async facade over [`Client`]: create topics
//! (CreateTopics v7 to any broker, which forwards it to the active controller, KIP-590; likewise delete topics
//! and create partitions, in `topic_changes`), describe topics and
//! the cluster (Metadata v12), list offsets (ListOffsets at each partition's leader: earliest, latest, max
//! timestamp, by timestamp), list groups (ListGroups v4 to every broker: each lists the groups it
//! coordinates) and describe groups (FindCoordinator v4, then DescribeGroups v5 at the coordinator).
//!
//! Like Kafka's admin client, each call retries what is retriable (a timeout, a disconnect, NOT_CONTROLLER,
//! NOT_LEADER_OR_FOLLOWER, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, an unknown topic right after its
//! creation...) until `default.api.timeout.ms` (60 s) passes; what is not retriable comes back at once as an
//! [`AdminError`] naming the topic, partition or group. A CreateTopics retried after a timeout may answer
//! TOPIC_ALREADY_EXISTS for a topic the first attempt created, as Kafka's does.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{
    CreateTopicsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, ListGroupsRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{
    topic_name, BrokerAddress, Client, ClientConfig, ClientError, KafkaErrorCode, ListedOffset, OffsetSpec,
    PartitionMetadata,
};
use crate::rt;

mod topic_changes;
use crate::types::{BrokerId, LeaderEpoch, TopicPartition};

/// Kafka's `default.api.timeout.ms`.
pub const DEFAULT_API_TIMEOUT_MS: i64 = 60_000;
/// Kafka's `retry.backoff.ms`.
const RETRY_BACKOFF_MS: u64 = 100;

/// What an admin call could not do, naming the topic, partition or group.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdminError {
    /// The controller refused to create the topic (TOPIC_ALREADY_EXISTS, INVALID_REPLICATION_FACTOR,
    /// INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS, INVALID_CONFIG, ...).
    #[error("creating topic {topic}: {code} (Kafka error code {}): {message}", code.code())]
    CreateTopic {
        topic: String,
        code: KafkaErrorCode,
        message: String,
    },
    /// The controller refused to delete the topic (UNKNOWN_TOPIC_OR_PARTITION, TOPIC_DELETION_DISABLED, ...).
    #[error("deleting topic {topic}: {code} (Kafka error code {}): {message}", code.code())]
    DeleteTopic {
        topic: String,
        code: KafkaErrorCode,
        message: String,
    },
    /// The controller refused to add partitions (INVALID_PARTITIONS, UNKNOWN_TOPIC_OR_PARTITION, ...).
    #[error("adding partitions to topic {topic}: {code} (Kafka error code {}): {message}", code.code())]
    CreatePartitions {
        topic: String,
        code: KafkaErrorCode,
        message: String,
    },
    /// Metadata answered an error for the topic (UNKNOWN_TOPIC_OR_PARTITION once retries ran out).
    #[error("describing topic {topic}: {code} (Kafka error code {})", code.code())]
    DescribeTopic { topic: String, code: KafkaErrorCode },
    #[error("listing offsets of {tp}: {code} (Kafka error code {})", code.code())]
    ListOffsets { tp: TopicPartition, code: KafkaErrorCode },
    /// FindCoordinator or DescribeGroups answered an error for the group.
    #[error("group {group}: {code} (Kafka error code {})", code.code())]
    Group { group: String, code: KafkaErrorCode },
    /// A broker answered ListGroups with an error.
    #[error("listing groups at broker {broker}: {code} (Kafka error code {})", code.code())]
    ListGroups { broker: BrokerId, code: KafkaErrorCode },
    /// The call failed on the wire and retries ran out (`default.api.timeout.ms`).
    #[error("{what}: {source}")]
    Client {
        what: String,
        #[source]
        source: ClientError,
    },
}

/// A topic to create (Kafka's `NewTopic`): -1 partitions or replication factor take the broker defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// Topic configs by Kafka's names (`min.insync.replicas`, `retention.ms`, ...).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    pub fn new(name: impl Into<String>, num_partitions: i32, replication_factor: i16) -> Self {
        Self {
            name: name.into(),
            num_partitions,
            replication_factor,
            configs: BTreeMap::new(),
        }
    }
}

/// What CreateTopics answered for a created topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedTopic {
    pub topic_id: Uuid,
    pub num_partitions: i32,
    pub replication_factor: i16,
}

/// One partition as describeTopics shows it (Kafka's `TopicPartitionInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: i32,
    /// `None`: no leader right now.
    pub leader: Option<BrokerId>,
    pub leader_epoch: LeaderEpoch,
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
}

/// Kafka's `TopicDescription`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    pub topic_id: Uuid,
    pub is_internal: bool,
    /// In partition order.
    pub partitions: Vec<PartitionInfo>,
}

/// Kafka's `DescribeClusterResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    pub cluster_id: Option<String>,
    /// -1 when unknown.
    pub controller_id: BrokerId,
    /// The brokers serving clients (fenced brokers are left out by the brokers' Metadata).
    pub brokers: BTreeMap<BrokerId, BrokerAddress>,
}

/// Kafka's `GroupListing`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    /// Kafka's state name (`Stable`, `Empty`, `PreparingRebalance`, ...).
    pub state: String,
}

/// One member as describeConsumerGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    /// The member's partitions, decoded from the consumer protocol's assignment (empty otherwise).
    pub assignment: Vec<TopicPartition>,
}

/// Kafka's `ConsumerGroupDescription`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    /// The assignor the group chose (`range`, `cooperative-sticky`, ...).
    pub protocol: String,
    pub members: Vec<MemberDescription>,
    /// The coordinator that answered.
    pub coordinator: BrokerId,
}

/// Kafka's `Admin`, driven by its caller.
pub struct KafkaAdmin {
    client: Client,
    api_timeout_ms: i64,
}

/// Wall-clock milliseconds (simulated in madsim).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

/// Whether an error code means "try again" for an admin call (Kafka's `RetriableException`s).
fn retriable(code: KafkaErrorCode) -> bool {
    matches!(
        code,
        ResponseError::NotController
            | ResponseError::RequestTimedOut
            | ResponseError::NotLeaderOrFollower
            | ResponseError::LeaderNotAvailable
            | ResponseError::UnknownTopicOrPartition
            | ResponseError::FencedLeaderEpoch
            | ResponseError::UnknownLeaderEpoch
            | ResponseError::NotCoordinator
            | ResponseError::CoordinatorNotAvailable
            | ResponseError::CoordinatorLoadInProgress
            | ResponseError::KafkaStorageError
    )
}

/// Whether a client error is worth retrying (transport trouble or a retriable code).
fn retriable_client(e: &ClientError) -> bool {
    match e {
        ClientError::Kafka { code, .. } => retriable(*code),
        ClientError::Timeout { .. }
        | ClientError::Disconnected { .. }
        | ClientError::Connect { .. }
        | ClientError::NoLeader { .. } => true,
        _ => false,
    }
}

impl KafkaAdmin {
    /// An admin client that bootstraps from `bootstrap`; `props` by Kafka's names (`client.id`,
    /// `request.timeout.ms`, `default.api.timeout.ms`).
    pub fn new(bootstrap: Vec<String>, props: &BTreeMap<String, String>) -> Self {
        let config = ClientConfig::from_properties(props).unwrap_or_default();
        let api_timeout_ms = props
            .get("default.api.timeout.ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_API_TIMEOUT_MS);
        Self {
            client: Client::new(bootstrap, config),
            api_timeout_ms,
        }
    }

    /// The underlying client (its metadata cache and connections).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn deadline(&self) -> i64 {
        now_ms().saturating_add(self.api_timeout_ms)
    }

    /// Sleeps `retry.backoff.ms` and says whether time is left before `deadline`.
    async fn backoff(deadline: i64) -> bool {
        rt::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
        now_ms() < deadline
    }

    /// Creates one topic and returns what the controller made of it.
    pub async fn create_topic(&mut self, topic: &NewTopic) -> Result<CreatedTopic, AdminError> {
        let mut out = self.create_topics(std::slice::from_ref(topic)).await;
        out.remove(&topic.name).unwrap_or_else(|| {
            Err(AdminError::CreateTopic {
                topic: topic.name.clone(),
                code: ResponseError::UnknownServerError,
                message: "no answer for the topic".into(),
            })
        })
    }

    /// Kafka's `createTopics`: one result per topic name.
    pub async fn create_topics(&mut self, topics: &[NewTopic]) -> BTreeMap<String, Result<CreatedTopic, AdminError>> {
        let deadline = self.deadline();
        let mut results = BTreeMap::new();
        let mut pending: Vec<NewTopic> = topics.to_vec();
        while !pending.is_empty() {
            let req = create_topics_request(&pending, self.client.config().request_timeout_ms);
            let mut retry = vec![];
            match self.client.request_any(&req).await {
                Ok((_, resp)) => {
                    for t in pending.drain(..) {
                        let answer = resp.topics.iter().find(|r| r.name.0.as_str() == t.name);
                        let code = answer.and_then(|a| ResponseError::try_from_code(a.error_code));
                        match (answer, code) {
                            (Some(a), None) => {
                                self.client.metadata.invalidate(&t.name);
                                let created = CreatedTopic {
                                    topic_id: a.topic_id,
                                    num_partitions: a.num_partitions,
                                    replication_factor: a.replication_factor,
                                };
                                results.insert(t.name.clone(), Ok(created));
                            }
                            (Some(_), Some(code)) if retriable(code) && now_ms() < deadline => retry.push(t),
                            (a, code) => {
                                let message = a
                                    .and_then(|a| a.error_message.as_ref())
                                    .map_or_else(String::new, |m| m.to_string());
                                let err = AdminError::CreateTopic {
                                    topic: t.name.clone(),
                                    code: code.unwrap_or(ResponseError::UnknownServerError),
                                    message,
                                };
                                results.insert(t.name.clone(), Err(err));
                            }
                        }
                    }
                }
                Err(e) if retriable_client(&e) && now_ms() < deadline => retry = std::mem::take(&mut pending),
                Err(e) => {
                    for t in pending.drain(..) {
                        let what = format!("creating topic {}", t.name);
                        results.insert(
                            t.name.clone(),
                            Err(AdminError::Client {
                                what,
                                source: e.clone(),
                            }),
                        );
                    }
                }
            }
            pending = retry;
            if !pending.is_empty() && !Self::backoff(deadline).await {
                for t in pending.drain(..) {
                    let err = AdminError::CreateTopic {
                        topic: t.name.clone(),
                        code: ResponseError::RequestTimedOut,
                        message: "default.api.timeout.ms passed".into(),
                    };
                    results.insert(t.name.clone(), Err(err));
                }
            }
        }
        results
    }

    /// Kafka's `describeTopics`: every named topic, waiting (within `default.api.timeout.ms`) for topics the
    /// brokers do not know yet (a topic just created reaches them through the metadata log).
    pub async fn describe_topics(&mut self, names: &[&str]) -> Result<BTreeMap<String, TopicDescription>, AdminError> {
        let deadline = self.deadline();
        loop {
            let what = || format!("describing topics {names:?}");
            let fresh = match self.client.metadata(Some(names)).await {
                Ok(m) => m,
                Err(e) if retriable_client(&e) && Self::backoff(deadline).await => continue,
                Err(e) => {
                    return Err(AdminError::Client {
                        what: what(),
                        source: e,
                    })
                }
            };
            let mut out = BTreeMap::new();
            let mut failed = None;
            for name in names {
                let Some(t) = fresh.topics.get(*name) else {
                    failed = Some((name.to_string(), ResponseError::UnknownTopicOrPartition));
                    break;
                };
                if let Some(code) = t.error {
                    failed = Some((name.to_string(), code));
                    break;
                }
                let partitions = t.partitions.iter().map(|(p, m)| partition_info(*p, m)).collect();
                let d = TopicDescription {
                    name: name.to_string(),
                    topic_id: t.topic_id,
                    is_internal: t.is_internal,
                    partitions,
                };
                out.insert(name.to_string(), d);
            }
            match failed {
                None => return Ok(out),
                Some((_, code)) if retriable(code) && Self::backoff(deadline).await => continue,
                Some((topic, code)) => return Err(AdminError::DescribeTopic { topic, code }),
            }
        }
    }

    /// Kafka's `describeCluster` (over Metadata with no topics, as Kafka's admin did before KIP-919's
    /// DescribeCluster).
    pub async fn describe_cluster(&mut self) -> Result<ClusterDescription, AdminError> {
        let deadline = self.deadline();
        loop {
            match self.client.metadata(Some(&[])).await {
                Ok(m) => {
                    return Ok(ClusterDescription {
                        cluster_id: m.cluster_id,
                        controller_id: m.controller_id,
                        brokers: m.brokers,
                    })
                }
                Err(e) if retriable_client(&e) && Self::backoff(deadline).await => {}
                Err(e) => {
                    let what = "describing the cluster".to_string();
                    return Err(AdminError::Client { what, source: e });
                }
            }
        }
    }

    /// Kafka's `listOffsets`: each partition asked at its leader.
    pub async fn list_offsets(
        &mut self,
        specs: &[(TopicPartition, OffsetSpec)],
    ) -> Result<BTreeMap<TopicPartition, ListedOffset>, AdminError> {
        let deadline = self.deadline();
        let mut out = BTreeMap::new();
        for (tp, spec) in specs {
            loop {
                match self.client.list_offsets_info(tp, *spec).await {
                    Ok(l) => {
                        out.insert(tp.clone(), l);
                        break;
                    }
                    Err(e) if retriable_client(&e) && Self::backoff(deadline).await => {}
                    Err(ClientError::Kafka { code, .. }) => {
                        return Err(AdminError::ListOffsets { tp: tp.clone(), code })
                    }
                    Err(e) => {
                        let what = format!("listing offsets of {tp}");
                        return Err(AdminError::Client { what, source: e });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Kafka's `listGroups` (`listConsumerGroups`): ListGroups at every broker, merged by group id.
    pub async fn list_groups(&mut self) -> Result<Vec<GroupListing>, AdminError> {
        let cluster = self.describe_cluster().await?;
        let deadline = self.deadline();
        let mut out = BTreeSet::new();
        for (id, broker) in &cluster.brokers {
            let addr = broker.addr();
            loop {
                let timeout = self.client.config().request_timeout();
                match self
                    .client
                    .request_at(&addr, &ListGroupsRequest::default(), timeout)
                    .await
                {
                    Ok(resp) => match ResponseError::try_from_code(resp.error_code) {
                        None => {
                            out.extend(resp.groups.iter().map(|g| GroupListing {
                                group_id: g.group_id.0.to_string(),
                                protocol_type: g.protocol_type.to_string(),
                                state: g.group_state.to_string(),
                            }));
                            break;
                        }
                        Some(code) if retriable(code) && Self::backoff(deadline).await => {}
                        Some(code) => return Err(AdminError::ListGroups { broker: *id, code }),
                    },
                    Err(e) if retriable_client(&e) && Self::backoff(deadline).await => {}
                    Err(e) => {
                        let what = format!("listing groups at broker {id} ({addr})");
                        return Err(AdminError::Client { what, source: e });
                    }
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Kafka's `describeConsumerGroups`: each group at its coordinator. A group nobody ever joined is
    /// described `Dead` with no members, as Kafka does.
    pub async fn describe_groups(&mut self, groups: &[&str]) -> Result<BTreeMap<String, GroupDescription>, AdminError> {
        let mut out = BTreeMap::new();
        for group in groups {
            out.insert(group.to_string(), self.describe_group(group).await?);
        }
        Ok(out)
    }

    async fn describe_group(&mut self, group: &str) -> Result<GroupDescription, AdminError> {
        let deadline = self.deadline();
        loop {
            let (id, addr) = match self.find_coordinator(group).await {
                Ok(found) => found,
                Err(AdminError::Group { code, .. }) if retriable(code) && Self::backoff(deadline).await => continue,
                Err(AdminError::Client { source, .. })
                    if retriable_client(&source) && Self::backoff(deadline).await =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
            let timeout = self.client.config().request_timeout();
            let resp = match self.client.request_at(&addr, &req, timeout).await {
                Ok(r) => r,
                Err(e) if retriable_client(&e) && Self::backoff(deadline).await => continue,
                Err(e) => {
                    let what = format!("describing group {group} at broker {id}");
                    return Err(AdminError::Client { what, source: e });
                }
            };
            let Some(d) = resp.groups.iter().find(|d| d.group_id.0.as_str() == group) else {
                let what = format!("describing group {group} at broker {id}");
                let source = ClientError::MissingInResponse {
                    addr,
                    api: kafka_protocol::messages::ApiKey::DescribeGroups,
                    what: format!("group {group}"),
                };
                return Err(AdminError::Client { what, source });
            };
            match ResponseError::try_from_code(d.error_code) {
                None => return Ok(group_description(d, id)),
                Some(code) if retriable(code) && Self::backoff(deadline).await => {}
                Some(code) => {
                    return Err(AdminError::Group {
                        group: group.to_string(),
                        code,
                    })
                }
            }
        }
    }

    /// FindCoordinator v4 for `group`: the coordinator's id and address.
    async fn find_coordinator(&mut self, group: &str) -> Result<(BrokerId, String), AdminError> {
        let req = FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![s(group)]);
        let (_, resp) = self.client.request_any(&req).await.map_err(|e| AdminError::Client {
            what: format!("finding the coordinator of group {group}"),
            source: e,
        })?;
        let c = resp.coordinators.iter().find(|c| c.key.as_str() == group);
        let code = match c {
            Some(c) if c.error_code == 0 && c.node_id.0 >= 0 => {
                return Ok((c.node_id.0, format!("{}:{}", c.host.as_str(), c.port)));
            }
            Some(c) => ResponseError::try_from_code(c.error_code).unwrap_or(ResponseError::CoordinatorNotAvailable),
            None => ResponseError::CoordinatorNotAvailable,
        };
        Err(AdminError::Group {
            group: group.to_string(),
            code,
        })
    }
}

fn create_topics_request(topics: &[NewTopic], request_timeout_ms: u64) -> CreateTopicsRequest {
    let topics = topics
        .iter()
        .map(|t| {
            let configs = t
                .configs
                .iter()
                .map(|(k, v)| CreatableTopicConfig::default().with_name(s(k)).with_value(Some(s(v))))
                .collect();
            CreatableTopic::default()
                .with_name(topic_name(&t.name))
                .with_num_partitions(t.num_partitions)
                .with_replication_factor(t.replication_factor)
                .with_configs(configs)
        })
        .collect();
    CreateTopicsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(request_timeout_ms.min(i32::MAX as u64) as i32)
}

fn partition_info(partition: i32, m: &PartitionMetadata) -> PartitionInfo {
    PartitionInfo {
        partition,
        leader: (m.leader_id >= 0).then_some(m.leader_id),
        leader_epoch: m.leader_epoch,
        replicas: m.replicas.clone(),
        isr: m.isr.clone(),
    }
}

fn group_description(
    d: &kafka_protocol::messages::describe_groups_response::DescribedGroup,
    coordinator: BrokerId,
) -> GroupDescription {
    let consumer = d.protocol_type.as_str() == "consumer";
    let members = d
        .members
        .iter()
        .map(|m| MemberDescription {
            member_id: m.member_id.to_string(),
            client_id: m.client_id.to_string(),
            client_host: m.client_host.to_string(),
            assignment: if consumer {
                crate::consumer::decode_assignment(&m.member_assignment).unwrap_or_default()
            } else {
                vec![]
            },
        })
        .collect();
    GroupDescription {
        group_id: d.group_id.0.to_string(),
        state: d.group_state.to_string(),
        protocol_type: d.protocol_type.to_string(),
        protocol: d.protocol_data.to_string(),
        members,
        coordinator,
    }
}
