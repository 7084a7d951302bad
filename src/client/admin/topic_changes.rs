//! `KafkaAdmin::delete_topics` (DeleteTopics v6, topics by name) and `KafkaAdmin::create_partitions`
//! (CreatePartitions v2–3) to any broker, which forwards them to the active controller (KIP-590). Per topic,
//! NOT_CONTROLLER and REQUEST_TIMED_OUT are retried until `default.api.timeout.ms`; any other error comes
//! back at once, naming the topic. As in Kafka, a DeleteTopics retried after a timeout may answer
//! UNKNOWN_TOPIC_OR_PARTITION for a topic the first attempt deleted.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{CreatePartitionsRequest, DeleteTopicsRequest};
use kafka_protocol::protocol::Request;
use kafka_protocol::ResponseError;

use super::{now_ms, AdminError, KafkaAdmin};
use crate::client::shape::BoundedShape;
use crate::client::{topic_name, KafkaErrorCode};

/// One topic's answer: name, error code, error message.
type Answer = (String, i16, Option<String>);

fn retriable_change(code: KafkaErrorCode) -> bool {
    matches!(code, ResponseError::NotController | ResponseError::RequestTimedOut)
}

impl KafkaAdmin {
    /// Kafka's `deleteTopics`: one result per topic name. The brokers delete the replicas' logs once the
    /// controller's RemoveTopic record reaches them; the name may be reused at once (with a new topic id).
    pub async fn delete_topics(&mut self, names: &[&str]) -> BTreeMap<String, Result<(), AdminError>> {
        let timeout_ms = self.client.config().request_timeout_ms as i32;
        let build = |pending: &[String]| {
            let topics = pending
                .iter()
                .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                .collect();
            DeleteTopicsRequest::default()
                .with_topics(topics)
                .with_timeout_ms(timeout_ms)
        };
        let answers = |r: &<DeleteTopicsRequest as Request>::Response| -> Vec<Answer> {
            r.responses
                .iter()
                .map(|t| {
                    let name = t.name.as_ref().map_or_else(String::new, |n| n.0.to_string());
                    (name, t.error_code, t.error_message.as_ref().map(|m| m.to_string()))
                })
                .collect()
        };
        let error = |topic, code, message| AdminError::DeleteTopic { topic, code, message };
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        self.change_topics(names, build, answers, error).await
    }

    /// Kafka's `createPartitions`: grows each topic to its new partition count (`{topic: count}`); one
    /// result per topic. Producers see the new partitions once their metadata refreshes.
    pub async fn create_partitions(
        &mut self,
        counts: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Result<(), AdminError>> {
        let timeout_ms = self.client.config().request_timeout_ms as i32;
        let build = |pending: &[String]| {
            let topics = pending
                .iter()
                .map(|n| {
                    CreatePartitionsTopic::default()
                        .with_name(topic_name(n))
                        .with_count(counts[n])
                        .with_assignments(None)
                })
                .collect();
            CreatePartitionsRequest::default()
                .with_topics(topics)
                .with_timeout_ms(timeout_ms)
        };
        let answers = |r: &<CreatePartitionsRequest as Request>::Response| -> Vec<Answer> {
            r.results
                .iter()
                .map(|t| {
                    let message = t.error_message.as_ref().map(|m| m.to_string());
                    (t.name.0.to_string(), t.error_code, message)
                })
                .collect()
        };
        let error = |topic, code, message| AdminError::CreatePartitions { topic, code, message };
        let names: Vec<String> = counts.keys().cloned().collect();
        self.change_topics(names, build, answers, error).await
    }

    /// Sends `build(pending)` to any broker until every topic has a final answer or the API timeout passes.
    async fn change_topics<Req>(
        &mut self,
        names: Vec<String>,
        build: impl Fn(&[String]) -> Req,
        answers: impl Fn(&Req::Response) -> Vec<Answer>,
        error: impl Fn(String, KafkaErrorCode, String) -> AdminError,
    ) -> BTreeMap<String, Result<(), AdminError>>
    where
        Req: Request,
        Req::Response: BoundedShape,
    {
        let deadline = self.deadline();
        let mut results = BTreeMap::new();
        let mut pending = names;
        while !pending.is_empty() {
            let mut retry = vec![];
            match self.client.request_any(&build(&pending)).await {
                Ok((_, resp)) => {
                    let answers = answers(&resp);
                    for name in pending.drain(..) {
                        let answer = answers.iter().find(|a| a.0 == name);
                        let code = answer.map(|a| ResponseError::try_from_code(a.1));
                        match code {
                            Some(None) => {
                                self.client.metadata.invalidate(&name);
                                results.insert(name, Ok(()));
                            }
                            Some(Some(code)) if retriable_change(code) && now_ms() < deadline => retry.push(name),
                            _ => {
                                let code = code.flatten().unwrap_or(ResponseError::UnknownServerError);
                                let message = answer
                                    .and_then(|a| a.2.clone())
                                    .unwrap_or_else(|| "no answer for the topic".into());
                                results.insert(name.clone(), Err(error(name, code, message)));
                            }
                        }
                    }
                }
                Err(e) if super::retriable_client(&e) && now_ms() < deadline => retry = std::mem::take(&mut pending),
                Err(e) => {
                    for name in pending.drain(..) {
                        let what = format!("changing topic {name}");
                        let err = AdminError::Client {
                            what,
                            source: e.clone(),
                        };
                        results.insert(name, Err(err));
                    }
                }
            }
            pending = retry;
            if !pending.is_empty() && !Self::backoff(deadline).await {
                for name in pending.drain(..) {
                    let message = "default.api.timeout.ms passed".to_string();
                    results.insert(name.clone(), Err(error(name, ResponseError::RequestTimedOut, message)));
                }
            }
        }
        results
    }
}
