//! The APIs and versions this broker advertises, their request schemas, and bounded parsing of a request
//! frame: header, then body, each validated by [`super::bounded`] before `kafka-protocol` decodes it.
//!
//! Version ranges are kept narrow (one schema or two per API); flexible versions (KIP-482) use request
//! header v2 and response header v1, except ApiVersions whose response header is always v0.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, FetchRequest, ListOffsetsRequest,
    MetadataRequest, ProduceRequest, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::bounded::{array_of, array_of_structs, field, validate, Kind, Schema};
use super::errors::{code, EncodeError, RequestError};

/// One advertised API: its key and the versions we accept (both ends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
    /// The first flexible version (KIP-482) of this API.
    pub first_flexible: i16,
}

/// What ApiVersions answers. Each range is narrow on purpose: one bounded schema per distinct layout.
pub const ADVERTISED: &[ApiRange] = &[
    ApiRange {
        key: ApiKey::Produce,
        min: 9,
        max: 11,
        first_flexible: 9,
    },
    ApiRange {
        key: ApiKey::Fetch,
        min: 12,
        max: 12,
        first_flexible: 12,
    },
    ApiRange {
        key: ApiKey::ListOffsets,
        min: 6,
        max: 7,
        first_flexible: 6,
    },
    ApiRange {
        key: ApiKey::Metadata,
        min: 12,
        max: 13,
        first_flexible: 9,
    },
    ApiRange {
        key: ApiKey::ApiVersions,
        min: 0,
        max: 4,
        first_flexible: 3,
    },
    ApiRange {
        key: ApiKey::CreateTopics,
        min: 7,
        max: 7,
        first_flexible: 5,
    },
];

/// The advertised range of `key`, if we serve that API.
pub fn advertised(key: i16) -> Option<&'static ApiRange> {
    ADVERTISED.iter().find(|r| r.key as i16 == key)
}

/// A decoded request body, one variant per API we serve.
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

/// Parses one request frame (the bytes after the 4-byte size): header, then body, both bounded.
pub fn parse_request(frame: &[u8]) -> Result<ParsedRequest, RequestError> {
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
    let range = advertised(key).ok_or(RequestError::UnknownApiKey { key })?;
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
    let mut buf = Bytes::copy_from_slice(body);
    let buf = &mut buf;
    let request = match key {
        ApiKey::ApiVersions => ApiVersionsRequest::decode(buf, version).map(Request::ApiVersions),
        ApiKey::Metadata => MetadataRequest::decode(buf, version).map(Request::Metadata),
        ApiKey::CreateTopics => CreateTopicsRequest::decode(buf, version).map(Request::CreateTopics),
        ApiKey::Produce => ProduceRequest::decode(buf, version).map(Request::Produce),
        ApiKey::Fetch => FetchRequest::decode(buf, version).map(Request::Fetch),
        ApiKey::ListOffsets => ListOffsetsRequest::decode(buf, version).map(Request::ListOffsets),
        other => return Err(format!("no decoder for {other:?}")),
    };
    request.map_err(|e| format!("decode: {e}"))
}

/// The request body schema of `key` at an advertised `version` (Kafka's message JSON, fields whose
/// `versions` include it). Panics for an API we do not advertise: callers check [`advertised`] first.
pub fn request_schema(key: ApiKey, version: i16) -> Schema {
    match key {
        ApiKey::ApiVersions if version >= 3 => Schema::new(vec![
            field("client_software_name", Kind::String),
            field("client_software_version", Kind::String),
        ]),
        ApiKey::ApiVersions => Schema::default(),
        ApiKey::Metadata => metadata_schema(),
        ApiKey::CreateTopics => create_topics_schema(),
        ApiKey::Produce => produce_schema(),
        ApiKey::Fetch => fetch_schema(),
        ApiKey::ListOffsets => list_offsets_schema(),
        other => panic!("no request schema for {other:?} v{version}: it is not advertised"),
    }
}

/// MetadataRequest v12–13 (same layout).
fn metadata_schema() -> Schema {
    let topic = Schema::new(vec![field("topic_id", Kind::Uuid), field("name", Kind::NullableString)]);
    Schema::new(vec![
        field(
            "topics",
            Kind::Array {
                elem: Box::new(Kind::Struct(topic)),
                nullable: true,
            },
        ),
        field("allow_auto_topic_creation", Kind::Bool),
        field("include_topic_authorized_operations", Kind::Bool),
    ])
}

/// CreateTopicsRequest v7.
fn create_topics_schema() -> Schema {
    let assignment = vec![
        field("partition_index", Kind::Int32),
        field("broker_ids", array_of(Kind::Int32)),
    ];
    let config = vec![field("name", Kind::String), field("value", Kind::NullableString)];
    let topic = vec![
        field("name", Kind::String),
        field("num_partitions", Kind::Int32),
        field("replication_factor", Kind::Int16),
        field("assignments", array_of_structs(assignment)),
        field("configs", array_of_structs(config)),
    ];
    Schema::new(vec![
        field("topics", array_of_structs(topic)),
        field("timeout_ms", Kind::Int32),
        field("validate_only", Kind::Bool),
    ])
}

/// ProduceRequest v9–11 (same layout; topics by name).
fn produce_schema() -> Schema {
    let partition = vec![field("index", Kind::Int32), field("records", Kind::Records)];
    let topic = vec![
        field("name", Kind::String),
        field("partition_data", array_of_structs(partition)),
    ];
    Schema::new(vec![
        field("transactional_id", Kind::NullableString),
        field("acks", Kind::Int16),
        field("timeout_ms", Kind::Int32),
        field("topic_data", array_of_structs(topic)),
    ])
}

/// FetchRequest v12 (topics by name; tagged ClusterId, KIP-595).
fn fetch_schema() -> Schema {
    let partition = vec![
        field("partition", Kind::Int32),
        field("current_leader_epoch", Kind::Int32),
        field("fetch_offset", Kind::Int64),
        field("last_fetched_epoch", Kind::Int32),
        field("log_start_offset", Kind::Int64),
        field("partition_max_bytes", Kind::Int32),
    ];
    let topic = vec![
        field("topic", Kind::String),
        field("partitions", array_of_structs(partition)),
    ];
    let forgotten = vec![field("topic", Kind::String), field("partitions", array_of(Kind::Int32))];
    Schema::new(vec![
        field("replica_id", Kind::Int32),
        field("max_wait_ms", Kind::Int32),
        field("min_bytes", Kind::Int32),
        field("max_bytes", Kind::Int32),
        field("isolation_level", Kind::Int8),
        field("session_id", Kind::Int32),
        field("session_epoch", Kind::Int32),
        field("topics", array_of_structs(topic)),
        field("forgotten_topics_data", array_of_structs(forgotten)),
        field("rack_id", Kind::String),
    ])
    .with_tagged(0, field("cluster_id", Kind::NullableString))
}

/// ListOffsetsRequest v6–7 (same layout).
fn list_offsets_schema() -> Schema {
    let partition = vec![
        field("partition_index", Kind::Int32),
        field("current_leader_epoch", Kind::Int32),
        field("timestamp", Kind::Int64),
    ];
    let topic = vec![
        field("name", Kind::String),
        field("partitions", array_of_structs(partition)),
    ];
    Schema::new(vec![
        field("replica_id", Kind::Int32),
        field("isolation_level", Kind::Int8),
        field("topics", array_of_structs(topic)),
    ])
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

/// Our ApiVersions response: the advertised ranges, with `error_code`.
pub fn api_versions_response(error_code: i16) -> ApiVersionsResponse {
    let keys = ADVERTISED
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

/// The answer to an ApiVersions request at a version we do not know (KIP-511): UNSUPPORTED_VERSION plus our
/// ApiVersions range only (as Kafka's `ApiVersionsRequest.getErrorResponse`), encoded at v0 so any client
/// can read it and retry at a version it shares with us.
pub fn unsupported_api_versions_response(correlation_id: i32) -> Result<Vec<u8>, EncodeError> {
    let mut resp = api_versions_response(code::UNSUPPORTED_VERSION);
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
mod tests {
    use kafka_protocol::messages::create_topics_request::CreatableTopicConfig;
    use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn name(s: &str) -> TopicName {
        TopicName(StrBytes::from_string(s.to_string()))
    }

    fn sample(key: ApiKey) -> Box<dyn Fn(i16) -> (Vec<u8>, Request)> {
        fn frame<R: Encodable + Clone>(key: ApiKey, v: i16, r: R, wrap: fn(R) -> Request) -> (Vec<u8>, Request) {
            (encode_request(key, v, 7, "client-1", &r).unwrap(), wrap(r))
        }
        match key {
            ApiKey::ApiVersions => Box::new(move |v| {
                let mut r = ApiVersionsRequest::default();
                if v >= 3 {
                    r = r
                        .with_client_software_name(StrBytes::from_static_str("gregor"))
                        .with_client_software_version(StrBytes::from_static_str("0.1"));
                }
                frame(key, v, r, Request::ApiVersions)
            }),
            ApiKey::Metadata => Box::new(move |v| {
                let t = MetadataRequestTopic::default().with_name(Some(name("orders")));
                let r = MetadataRequest::default()
                    .with_topics(Some(vec![t]))
                    .with_allow_auto_topic_creation(false);
                frame(key, v, r, Request::Metadata)
            }),
            ApiKey::CreateTopics => Box::new(move |v| {
                let a = CreatableReplicaAssignment::default().with_broker_ids(vec![BrokerId(1), BrokerId(2)]);
                let c = CreatableTopicConfig::default()
                    .with_name(StrBytes::from_static_str("segment.bytes"))
                    .with_value(Some(StrBytes::from_static_str("1024")));
                let t = CreatableTopic::default()
                    .with_name(name("orders"))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
                    .with_assignments(vec![a])
                    .with_configs(vec![c]);
                frame(
                    key,
                    v,
                    CreateTopicsRequest::default()
                        .with_topics(vec![t])
                        .with_timeout_ms(5000),
                    Request::CreateTopics,
                )
            }),
            ApiKey::Produce => Box::new(move |v| {
                let p = PartitionProduceData::default()
                    .with_index(3)
                    .with_records(Some(Bytes::from_static(b"0123456789")));
                let t = TopicProduceData::default()
                    .with_name(name("orders"))
                    .with_partition_data(vec![p]);
                let r = ProduceRequest::default()
                    .with_acks(1)
                    .with_timeout_ms(3000)
                    .with_topic_data(vec![t]);
                frame(key, v, r, Request::Produce)
            }),
            ApiKey::Fetch => Box::new(move |v| {
                let p = FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(42)
                    .with_partition_max_bytes(1 << 20);
                let t = FetchTopic::default()
                    .with_topic(name("orders"))
                    .with_partitions(vec![p]);
                let f = ForgottenTopic::default()
                    .with_topic(name("old"))
                    .with_partitions(vec![1, 2]);
                let r = FetchRequest::default()
                    .with_max_wait_ms(500)
                    .with_min_bytes(1)
                    .with_max_bytes(1 << 24)
                    .with_topics(vec![t])
                    .with_forgotten_topics_data(vec![f])
                    .with_rack_id(StrBytes::from_static_str("rack-a"))
                    .with_cluster_id(Some(StrBytes::from_static_str("cluster-x")));
                frame(key, v, r, Request::Fetch)
            }),
            ApiKey::ListOffsets => Box::new(move |v| {
                let p = ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1);
                let t = ListOffsetsTopic::default()
                    .with_name(name("orders"))
                    .with_partitions(vec![p]);
                frame(
                    key,
                    v,
                    ListOffsetsRequest::default().with_topics(vec![t]),
                    Request::ListOffsets,
                )
            }),
            other => panic!("no sample for {other:?}"),
        }
    }

    #[test]
    fn every_advertised_version_round_trips_through_the_bounded_parser() {
        for r in ADVERTISED {
            for v in r.min..=r.max {
                let (frame, expected) = sample(r.key)(v);
                let parsed = parse_request(&frame).unwrap_or_else(|e| panic!("{:?} v{v}: {e}", r.key));
                assert_eq!(parsed.body, expected, "{:?} v{v}", r.key);
                assert_eq!(parsed.correlation_id(), 7);
                assert_eq!(parsed.api_version(), v);
                assert_eq!(parsed.header.client_id.as_deref(), Some("client-1"));
            }
        }
    }

    #[test]
    fn advertised_ranges_lie_inside_what_kafka_protocol_knows() {
        for r in ADVERTISED {
            let known = r.key.valid_versions();
            assert!(
                known.min <= r.min && r.max <= known.max,
                "{:?} {r:?} vs {known:?}",
                r.key
            );
            assert_eq!(
                r.key.request_header_version(r.max),
                if r.max >= r.first_flexible { 2 } else { 1 }
            );
        }
    }

    #[test]
    fn every_truncation_of_a_valid_request_is_malformed() {
        for r in ADVERTISED {
            let (frame, _) = sample(r.key)(r.max);
            for len in 0..frame.len() {
                assert!(
                    matches!(parse_request(&frame[..len]), Err(RequestError::Malformed { .. })),
                    "{:?} cut at {len}",
                    r.key
                );
            }
        }
    }

    #[test]
    fn metadata_v12_body_7fffffff_is_malformed_not_an_abort() {
        let mut frame = encode_request(ApiKey::Metadata, 12, 1, "c", &MetadataRequest::default()).unwrap();
        let header_len = frame.len() - 4; // topics (1) + 2 bools + tags (1)
        frame.truncate(header_len);
        frame.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
        match parse_request(&frame) {
            Err(RequestError::Malformed {
                api: 3,
                version: 12,
                at_byte,
                what,
            }) => {
                assert_eq!(at_byte, header_len, "{what}");
                assert!(what.contains("topics"), "{what}");
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn unknown_keys_and_versions_are_refused_but_apiversions_is_answered() {
        let (mut frame, _) = sample(ApiKey::Produce)(9);
        frame[2..4].copy_from_slice(&8i16.to_be_bytes());
        assert_eq!(
            parse_request(&frame),
            Err(RequestError::UnsupportedVersion { key: 0, version: 8 })
        );
        frame[0..2].copy_from_slice(&1000i16.to_be_bytes());
        assert_eq!(parse_request(&frame), Err(RequestError::UnknownApiKey { key: 1000 }));
        let mut frame = encode_request(ApiKey::ApiVersions, 4, 5, "c", &ApiVersionsRequest::default()).unwrap();
        frame[2..4].copy_from_slice(&99i16.to_be_bytes());
        let parsed = parse_request(&frame).unwrap();
        assert_eq!(parsed.body, Request::ApiVersionsUnsupported);
        assert_eq!(parsed.correlation_id(), 5);
    }

    #[test]
    fn unsupported_api_versions_answer_is_error_35_with_our_apiversions_range_at_v0() {
        let body = unsupported_api_versions_response(9).unwrap();
        let mut buf = Bytes::from(body);
        let header = ResponseHeader::decode(&mut buf, 0).unwrap();
        assert_eq!(header.correlation_id, 9);
        let resp = ApiVersionsResponse::decode(&mut buf, 0).unwrap();
        assert_eq!(resp.error_code, 35);
        assert_eq!(resp.api_keys.len(), 1);
        let av = resp.api_keys.iter().find(|k| k.api_key == 18).unwrap();
        assert_eq!((av.min_version, av.max_version), (0, 4));
    }

    #[test]
    fn flexible_responses_carry_header_v1_and_apiversions_header_v0() {
        let meta = kafka_protocol::messages::MetadataResponse::default();
        let body = encode_response(ApiKey::Metadata, 12, 3, &meta).unwrap();
        assert_eq!(&body[..5], &[0, 0, 0, 3, 0]); // correlation id, empty tagged fields
        let av = encode_response(ApiKey::ApiVersions, 3, 3, &api_versions_response(0)).unwrap();
        let mut buf = Bytes::from(av);
        assert_eq!(ResponseHeader::decode(&mut buf, 0).unwrap().correlation_id, 3);
        assert_eq!(
            ApiVersionsResponse::decode(&mut buf, 3).unwrap().api_keys.len(),
            ADVERTISED.len()
        );
    }
}
