//! The APIs and versions each listener advertises, and bounded parsing of a request frame: header, then
//! body, each validated by [`super::bounded`] against [`super::schemas`] before `kafka-protocol` decodes it.
//!
//! Version ranges are kept narrow (one schema per layout); flexible versions (KIP-482) use request header
//! v2 and response header v1, except ApiVersions whose response header is always v0.
//!
//! Two listeners, as in KRaft: the broker listener (clients and follower replicas) and the controller
//! listener (`controller.listener.names`: voters, brokers registering and heartbeating, and admin clients
//! per KIP-919). An API a listener does not advertise is refused like an unknown key: Kafka closes the
//! connection. Versions chosen for the controller APIs (all flexible, so every request gregor sends or
//! reads uses header v2 and compact encodings):
//! - Vote v0: flexible from v0 and free of KIP-853's directory ids and KIP-996's pre-vote.
//! - BeginQuorumEpoch v1 and EndQuorumEpoch v1: their v0 is not flexible; v1 is, at the cost of KIP-853's
//!   voter/candidate directory ids (nil when unknown) and leader endpoints (which tell a follower where the
//!   new leader listens).
//! - BrokerRegistration v3–4 (one layout): KIP-966's previous broker epoch lets the controller tell a clean
//!   restart from an unclean one; log dirs (KIP-858) may stay empty.
//! - BrokerHeartbeat v0–1 (one layout; v1 adds the tagged offline log dirs).
//! - AlterPartition v2: topics by id, the new ISR as broker ids (v3 adds KIP-903's broker epochs).
//! - AllocateProducerIds v0 (the only version, KIP-730).
//! - Fetch v12 and CreateTopics v7: the broker listener's layouts.
//!
//! The broker listener adds InitProducerId v3–5 (one layout: producer id and epoch for KIP-360 bumps), and
//! the classic group APIs at one flexible version each: FindCoordinator v4 (KIP-699 batched keys),
//! JoinGroup v7, SyncGroup v5 (protocol type and name, KIP-559), Heartbeat v4, LeaveGroup v4 (KIP-345 member
//! batches), OffsetCommit v8, OffsetFetch v8 (KIP-709 batched groups), DescribeGroups v5, ListGroups v4
//! (KIP-518 states filter), DeleteRecords v2 (flexible; KIP-107), and OffsetForLeaderEpoch v4 (flexible;
//! consumers validate their position after a leader change with it, KIP-320).
//!
//! Both listeners add DeleteTopics v6 (flexible; topics by name or id, KIP-516) and CreatePartitions v2–3
//! (flexible, one layout): a broker forwards them to the active controller (KIP-590), which answers them
//! itself on its own listener (KIP-919).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    AllocateProducerIdsRequest, AlterPartitionRequest, ApiKey, ApiVersionsRequest, ApiVersionsResponse,
    BeginQuorumEpochRequest, BrokerHeartbeatRequest, BrokerRegistrationRequest, CreatePartitionsRequest,
    CreateTopicsRequest, DeleteRecordsRequest, DeleteTopicsRequest, DescribeGroupsRequest, EndQuorumEpochRequest,
    FetchRequest, FindCoordinatorRequest, HeartbeatRequest, InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest,
    ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest, OffsetFetchRequest,
    OffsetForLeaderEpochRequest, ProduceRequest, RequestHeader, ResponseHeader, SyncGroupRequest, VoteRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::bounded::{field, validate, Kind, Schema};
use super::errors::{code, EncodeError, RequestError};
pub use super::schemas::request_schema;

/// One advertised API: its key and the versions we accept (both ends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
    /// The first flexible version (KIP-482) of this API.
    pub first_flexible: i16,
}

const fn range(key: ApiKey, min: i16, max: i16, first_flexible: i16) -> ApiRange {
    ApiRange {
        key,
        min,
        max,
        first_flexible,
    }
}

/// What ApiVersions answers on the broker listener. Each range is narrow on purpose: one bounded schema
/// per distinct layout.
pub const ADVERTISED: &[ApiRange] = &[
    range(ApiKey::Produce, 9, 11, 9),
    range(ApiKey::Fetch, 12, 12, 12),
    range(ApiKey::ListOffsets, 6, 7, 6),
    range(ApiKey::Metadata, 12, 13, 9),
    range(ApiKey::ApiVersions, 0, 4, 3),
    range(ApiKey::CreateTopics, 7, 7, 5),
    range(ApiKey::InitProducerId, 3, 5, 2),
    range(ApiKey::FindCoordinator, 4, 4, 3),
    range(ApiKey::JoinGroup, 7, 7, 6),
    range(ApiKey::SyncGroup, 5, 5, 4),
    range(ApiKey::Heartbeat, 4, 4, 4),
    range(ApiKey::LeaveGroup, 4, 4, 4),
    range(ApiKey::OffsetCommit, 8, 8, 8),
    range(ApiKey::OffsetFetch, 8, 8, 6),
    range(ApiKey::DescribeGroups, 5, 5, 5),
    range(ApiKey::ListGroups, 4, 4, 3),
    range(ApiKey::DeleteRecords, 2, 2, 2),
    range(ApiKey::OffsetForLeaderEpoch, 4, 4, 4),
    // Forwarded to the active controller (KIP-590).
    range(ApiKey::DeleteTopics, 6, 6, 4),
    range(ApiKey::CreatePartitions, 2, 3, 2),
];

/// What ApiVersions answers on the controller listener (see the module doc for why these versions).
pub const CONTROLLER_ADVERTISED: &[ApiRange] = &[
    range(ApiKey::Fetch, 12, 12, 12),
    range(ApiKey::ApiVersions, 0, 4, 3),
    range(ApiKey::CreateTopics, 7, 7, 5),
    range(ApiKey::Vote, 0, 0, 0),
    range(ApiKey::BeginQuorumEpoch, 1, 1, 1),
    range(ApiKey::EndQuorumEpoch, 1, 1, 1),
    range(ApiKey::AlterPartition, 2, 2, 0),
    range(ApiKey::BrokerRegistration, 3, 4, 0),
    range(ApiKey::BrokerHeartbeat, 0, 1, 0),
    range(ApiKey::AllocateProducerIds, 0, 0, 0),
    range(ApiKey::DeleteTopics, 6, 6, 4),
    range(ApiKey::CreatePartitions, 2, 3, 2),
];

/// Which listener a connection arrived on; each advertises its own APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Listener {
    /// Clients and follower replicas (Kafka's `listeners` minus the controller's).
    Broker,
    /// KRaft voters, registering brokers and KIP-919 admin clients (`controller.listener.names`).
    Controller,
}

impl Listener {
    pub const ALL: [Listener; 2] = [Listener::Broker, Listener::Controller];

    /// The APIs and versions this listener serves.
    pub fn advertised(self) -> &'static [ApiRange] {
        match self {
            Listener::Broker => ADVERTISED,
            Listener::Controller => CONTROLLER_ADVERTISED,
        }
    }
}

/// The advertised range of `key` on the broker listener, if it serves that API.
pub fn advertised(key: i16) -> Option<&'static ApiRange> {
    advertised_on(Listener::Broker, key)
}

/// The advertised range of `key` on `listener`, if it serves that API.
pub fn advertised_on(listener: Listener, key: i16) -> Option<&'static ApiRange> {
    listener.advertised().iter().find(|r| r.key as i16 == key)
}

/// A decoded request body, one variant per API some listener serves.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    ApiVersions(ApiVersionsRequest),
    /// ApiVersions at a version we do not know: answered with UNSUPPORTED_VERSION and our ranges at v0
    /// (KIP-511); the body is not parsed.
    ApiVersionsUnsupported,
    Metadata(MetadataRequest),
    CreateTopics(CreateTopicsRequest),
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    InitProducerId(InitProducerIdRequest),
    FindCoordinator(FindCoordinatorRequest),
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    DescribeGroups(DescribeGroupsRequest),
    ListGroups(ListGroupsRequest),
    DeleteRecords(DeleteRecordsRequest),
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    Vote(VoteRequest),
    BeginQuorumEpoch(BeginQuorumEpochRequest),
    EndQuorumEpoch(EndQuorumEpochRequest),
    BrokerRegistration(BrokerRegistrationRequest),
    BrokerHeartbeat(BrokerHeartbeatRequest),
    AlterPartition(AlterPartitionRequest),
    AllocateProducerIds(AllocateProducerIdsRequest),
    DeleteTopics(DeleteTopicsRequest),
    CreatePartitions(CreatePartitionsRequest),
}

/// A request whose header and body passed the bounded validation and decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRequest {
    pub header: RequestHeader,
    pub body: Request,
}

impl ParsedRequest {
    pub fn api_key(&self) -> i16 {
        self.header.request_api_key
    }
    pub fn api_version(&self) -> i16 {
        self.header.request_api_version
    }
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
}

/// Parses one request frame (the bytes after the 4-byte size) that arrived on the broker listener.
pub fn parse_request(frame: &[u8]) -> Result<ParsedRequest, RequestError> {
    parse_request_on(Listener::Broker, frame)
}

/// Parses one request frame (the bytes after the 4-byte size) that arrived on `listener`: header, then
/// body, both bounded. An API the listener does not advertise is `UnknownApiKey`.
pub fn parse_request_on(listener: Listener, frame: &[u8]) -> Result<ParsedRequest, RequestError> {
    let malformed = |api, version, at_byte, what: String| RequestError::Malformed {
        api,
        version,
        at_byte,
        what,
    };
    if frame.len() < 8 {
        let api = if frame.len() >= 2 {
            i16::from_be_bytes([frame[0], frame[1]])
        } else {
            -1
        };
        return Err(malformed(
            api,
            -1,
            0,
            format!("request header needs 8 bytes, frame has {}", frame.len()),
        ));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let range = advertised_on(listener, key).ok_or(RequestError::UnknownApiKey { key })?;
    let supported = (range.min..=range.max).contains(&version);
    if !supported && range.key != ApiKey::ApiVersions {
        return Err(RequestError::UnsupportedVersion { key, version });
    }
    let header_version = range.key.request_header_version(version);
    let header_len = validate_header(frame, header_version).map_err(|v| malformed(key, version, v.0, v.1))?;
    let mut header_bytes = Bytes::copy_from_slice(&frame[..header_len]);
    let header = RequestHeader::decode(&mut header_bytes, header_version)
        .map_err(|e| malformed(key, version, 0, format!("request header: {e}")))?;
    if !supported {
        return Ok(ParsedRequest {
            header,
            body: Request::ApiVersionsUnsupported,
        });
    }
    let body = &frame[header_len..];
    let flexible = version >= range.first_flexible;
    let schema = request_schema(range.key, version);
    let used =
        validate(body, &schema, flexible).map_err(|v| malformed(key, version, header_len + v.at_byte, v.what))?;
    if used != body.len() {
        let what = format!("{} trailing bytes after the body", body.len() - used);
        return Err(malformed(key, version, header_len + used, what));
    }
    let body = decode_body(range.key, version, body).map_err(|e| malformed(key, version, header_len, e))?;
    Ok(ParsedRequest { header, body })
}

/// Validates request header v1/v2 (key, version, correlation id, nullable client id as an int16 string even
/// in v2, then tagged fields in v2); returns its length.
fn validate_header(frame: &[u8], header_version: i16) -> Result<usize, (usize, String)> {
    let fixed = Schema::new(vec![
        field("request_api_key", Kind::Int16),
        field("request_api_version", Kind::Int16),
        field("correlation_id", Kind::Int32),
        field("client_id", Kind::NullableString),
    ]);
    let mut len = validate(frame, &fixed, false).map_err(|v| (v.at_byte, format!("header {}", v.what)))?;
    if header_version >= 2 {
        let tags = validate(&frame[len..], &Schema::default(), true)
            .map_err(|v| (len + v.at_byte, format!("header tagged fields {}", v.what)))?;
        len += tags;
    }
    Ok(len)
}

fn decode_body(key: ApiKey, version: i16, body: &[u8]) -> Result<Request, String> {
    fn de<R: Decodable>(buf: &mut Bytes, version: i16, wrap: fn(R) -> Request) -> Result<Request, String> {
        R::decode(buf, version).map(wrap).map_err(|e| format!("decode: {e}"))
    }
    let buf = &mut Bytes::copy_from_slice(body);
    match key {
        ApiKey::ApiVersions => de(buf, version, Request::ApiVersions),
        ApiKey::Metadata => de(buf, version, Request::Metadata),
        ApiKey::CreateTopics => de(buf, version, Request::CreateTopics),
        ApiKey::Produce => de(buf, version, Request::Produce),
        ApiKey::Fetch => de(buf, version, Request::Fetch),
        ApiKey::ListOffsets => de(buf, version, Request::ListOffsets),
        ApiKey::InitProducerId => de(buf, version, Request::InitProducerId),
        ApiKey::FindCoordinator => de(buf, version, Request::FindCoordinator),
        ApiKey::JoinGroup => de(buf, version, Request::JoinGroup),
        ApiKey::SyncGroup => de(buf, version, Request::SyncGroup),
        ApiKey::Heartbeat => de(buf, version, Request::Heartbeat),
        ApiKey::LeaveGroup => de(buf, version, Request::LeaveGroup),
        ApiKey::OffsetCommit => de(buf, version, Request::OffsetCommit),
        ApiKey::OffsetFetch => de(buf, version, Request::OffsetFetch),
        ApiKey::DescribeGroups => de(buf, version, Request::DescribeGroups),
        ApiKey::ListGroups => de(buf, version, Request::ListGroups),
        ApiKey::DeleteRecords => de(buf, version, Request::DeleteRecords),
        ApiKey::OffsetForLeaderEpoch => de(buf, version, Request::OffsetForLeaderEpoch),
        ApiKey::Vote => de(buf, version, Request::Vote),
        ApiKey::BeginQuorumEpoch => de(buf, version, Request::BeginQuorumEpoch),
        ApiKey::EndQuorumEpoch => de(buf, version, Request::EndQuorumEpoch),
        ApiKey::BrokerRegistration => de(buf, version, Request::BrokerRegistration),
        ApiKey::BrokerHeartbeat => de(buf, version, Request::BrokerHeartbeat),
        ApiKey::AlterPartition => de(buf, version, Request::AlterPartition),
        ApiKey::AllocateProducerIds => de(buf, version, Request::AllocateProducerIds),
        ApiKey::DeleteTopics => de(buf, version, Request::DeleteTopics),
        ApiKey::CreatePartitions => de(buf, version, Request::CreatePartitions),
        other => Err(format!("no decoder for {other:?}")),
    }
}

/// Encodes a response frame body (without the 4-byte size): the response header (v0, or v1 in flexible
/// versions; ApiVersions always v0) then the body at `version`.
pub fn encode_response<R: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Vec<u8>, EncodeError> {
    let fail = |reason: String| EncodeError {
        api: key as i16,
        version,
        reason,
    };
    let mut buf = BytesMut::new();
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(&mut buf, key.response_header_version(version))
        .map_err(|e| fail(e.to_string()))?;
    body.encode(&mut buf, version).map_err(|e| fail(e.to_string()))?;
    Ok(buf.to_vec())
}

/// The broker listener's ApiVersions response: its advertised ranges, with `error_code`.
pub fn api_versions_response(error_code: i16) -> ApiVersionsResponse {
    api_versions_response_on(Listener::Broker, error_code)
}

/// `listener`'s ApiVersions response: its advertised ranges, with `error_code`.
pub fn api_versions_response_on(listener: Listener, error_code: i16) -> ApiVersionsResponse {
    let keys = listener
        .advertised()
        .iter()
        .map(|r| {
            kafka_protocol::messages::api_versions_response::ApiVersion::default()
                .with_api_key(r.key as i16)
                .with_min_version(r.min)
                .with_max_version(r.max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(keys)
}

/// The broker listener's answer to an ApiVersions version it does not know; see
/// [`unsupported_api_versions_response_on`].
pub fn unsupported_api_versions_response(correlation_id: i32) -> Result<Vec<u8>, EncodeError> {
    unsupported_api_versions_response_on(Listener::Broker, correlation_id)
}

/// The answer to an ApiVersions request at a version we do not know (KIP-511): UNSUPPORTED_VERSION plus our
/// ApiVersions range only (as Kafka's `ApiVersionsRequest.getErrorResponse`), encoded at v0 so any client
/// can read it and retry at a version it shares with us.
pub fn unsupported_api_versions_response_on(listener: Listener, correlation_id: i32) -> Result<Vec<u8>, EncodeError> {
    let mut resp = api_versions_response_on(listener, code::UNSUPPORTED_VERSION);
    resp.api_keys.retain(|k| k.api_key == ApiKey::ApiVersions as i16);
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &resp)
}

/// Encodes a request frame body (header + body, without the size) as a client would; for tests and clients.
pub fn encode_request<R: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    body: &R,
) -> Result<Vec<u8>, EncodeError> {
    let fail = |reason: String| EncodeError {
        api: key as i16,
        version,
        reason,
    };
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(kafka_protocol::protocol::StrBytes::from_string(
            client_id.to_string(),
        )));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .map_err(|e| fail(e.to_string()))?;
    body.encode(&mut buf, version).map_err(|e| fail(e.to_string()))?;
    Ok(buf.to_vec())
}

#[cfg(test)]
mod tests;
