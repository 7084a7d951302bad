//! DeleteTopics and CreatePartitions on the broker listener. With a controller quorum the node shell
//! forwards both to the active controller (KIP-590) before they reach the core; a broker serving a static
//! image has nobody to change its metadata, so it refuses them per topic. The refusal builders are shared
//! with the shell (forwarding that found no controller) and the controller (NOT_CONTROLLER on a standby).

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreatePartitionsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{respond, Broker, Failure, Reply};
use crate::protocol::errors::ResponseError;

/// Every topic of `req` refused with `error`; the message names the topic.
pub fn delete_topics_refused(req: &DeleteTopicsRequest, error: ResponseError, why: &str) -> DeleteTopicsResponse {
    let responses = req
        .topics
        .iter()
        .map(|t| {
            let what = match &t.name {
                Some(n) => format!("topic {}", n.0.as_str()),
                None => format!("topic id {}", t.topic_id),
            };
            DeletableTopicResult::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(format!("{what}: {why}"))))
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Every topic of `req` refused with `error`; the message names the topic.
pub fn create_partitions_refused(
    req: &CreatePartitionsRequest,
    error: ResponseError,
    why: &str,
) -> CreatePartitionsResponse {
    let results = req
        .topics
        .iter()
        .map(|t| {
            let msg = format!("topic {}: {why}", t.name.0.as_str());
            CreatePartitionsTopicResult::default()
                .with_name(t.name.clone())
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(msg)))
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

const NO_QUORUM: &str = "this broker serves a static metadata image; topic changes need the controller quorum";

impl Broker {
    pub(super) fn delete_topics(&self, req: &DeleteTopicsRequest, version: i16, corr: i32) -> Result<Reply, Failure> {
        let resp = delete_topics_refused(req, ResponseError::InvalidRequest, NO_QUORUM);
        respond(ApiKey::DeleteTopics, version, corr, &resp)
    }

    pub(super) fn create_partitions(
        &self,
        req: &CreatePartitionsRequest,
        version: i16,
        corr: i32,
    ) -> Result<Reply, Failure> {
        let resp = create_partitions_refused(req, ResponseError::InvalidRequest, NO_QUORUM);
        respond(ApiKey::CreatePartitions, version, corr, &resp)
    }
}
