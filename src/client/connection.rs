//! One client connection to one broker: Kafka framing, request/response headers, correlation ids,
//! ApiVersions negotiation, and Kafka NetworkClient's rule that a timed-out request closes its connection.
//!
//! A connection carries one request at a time (the broker handles one request per connection at a time
//! anyway), so the response that comes back must carry the correlation id just sent. When a request times
//! out (`request.timeout.ms`) the socket is dropped: a late response can then never be taken for the answer
//! to a newer request. The next request opens a new socket and negotiates versions again.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use super::error::ClientError;
use super::shape::{check_body, check_response_header, BoundedShape, Cursor};
use crate::rt::{self, TcpStream};

/// The API versions this client speaks (inclusive ranges); it uses the highest one the broker (or
/// controller) also advertises. All are flexible versions (KIP-482), which [`super::shape`] describes. The
/// controller APIs are spoken to a controller listener (`protocol::api::CONTROLLER_ADVERTISED`), by voters,
/// brokers and admin clients alike.
pub const CLIENT_API_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::ApiVersions, 3, 3),
    (ApiKey::Metadata, 12, 12),
    (ApiKey::CreateTopics, 7, 7),
    (ApiKey::Produce, 9, 11),
    (ApiKey::Fetch, 12, 12),
    (ApiKey::ListOffsets, 7, 8),
    // KRaft, controller listener only.
    (ApiKey::Vote, 0, 0),
    (ApiKey::BeginQuorumEpoch, 1, 1),
    (ApiKey::EndQuorumEpoch, 1, 1),
    (ApiKey::BrokerRegistration, 3, 4),
    (ApiKey::BrokerHeartbeat, 0, 1),
    (ApiKey::AlterPartition, 2, 2),
    (ApiKey::AllocateProducerIds, 0, 0),
    // The idempotent producer's id (KIP-98); v4 and v5 share one wire shape, v6 adds 2PC fields (KIP-939).
    (ApiKey::InitProducerId, 4, 5),
    // The group coordinator (classic protocol), as the consumer speaks it.
    (ApiKey::FindCoordinator, 4, 4),
    (ApiKey::JoinGroup, 7, 7),
    (ApiKey::SyncGroup, 5, 5),
    (ApiKey::Heartbeat, 4, 4),
    (ApiKey::LeaveGroup, 4, 4),
    (ApiKey::OffsetCommit, 8, 8),
    (ApiKey::OffsetFetch, 8, 8),
    (ApiKey::DescribeGroups, 5, 5),
    (ApiKey::ListGroups, 4, 4),
    // KIP-320: a consumer validates its position after a leader change.
    (ApiKey::OffsetForLeaderEpoch, 4, 4),
    // Topic changes, forwarded by brokers to the active controller (KIP-590).
    (ApiKey::DeleteTopics, 6, 6),
    (ApiKey::CreatePartitions, 2, 3),
];

/// Kafka's default `socket.request.max.bytes`, used here as the largest response frame accepted.
pub const MAX_RESPONSE_BYTES_DEFAULT: usize = crate::protocol::frame::SOCKET_REQUEST_MAX_BYTES;

/// Error code 35 (`UNSUPPORTED_VERSION`): the broker's answer to an ApiVersions version it lacks (KIP-511).
const UNSUPPORTED_VERSION_CODE: i16 = 35;

/// How a connection identifies itself and what it accepts.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Kafka's `client.id`.
    pub client_id: String,
    /// The largest response frame accepted, in bytes.
    pub max_response_bytes: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            client_id: "gregor".to_string(),
            max_response_bytes: MAX_RESPONSE_BYTES_DEFAULT,
        }
    }
}

/// A connection to one broker address; reconnects (and renegotiates versions) on the next request after a
/// failure.
pub struct Connection {
    addr: String,
    config: ConnectionConfig,
    stream: Option<TcpStream>,
    next_correlation_id: i32,
    /// Per API key: the broker's advertised range, from the last ApiVersions exchange.
    broker_versions: BTreeMap<i16, (i16, i16)>,
    connections_opened: u64,
}

impl Connection {
    /// Opens a connection and negotiates API versions; `timeout` bounds the whole handshake.
    pub async fn connect(
        addr: impl Into<String>,
        config: ConnectionConfig,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let mut conn = Self::new_closed(addr, config);
        conn.ensure_connected(timeout).await?;
        Ok(conn)
    }

    /// A connection that will connect on its first request.
    pub fn new_closed(addr: impl Into<String>, config: ConnectionConfig) -> Self {
        Self {
            addr: addr.into(),
            config,
            stream: None,
            next_correlation_id: 0,
            broker_versions: BTreeMap::new(),
            connections_opened: 0,
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// How many TCP connections this `Connection` has opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.connections_opened
    }

    /// Drops the socket; the next request reconnects.
    pub fn close(&mut self) {
        self.stream = None;
    }

    /// The broker's advertised range for `api`, from the current connection's ApiVersions exchange.
    pub fn broker_versions(&self, api: ApiKey) -> Option<(i16, i16)> {
        self.broker_versions.get(&(api as i16)).copied()
    }

    /// The highest version of `api` both sides support (requires a negotiated connection).
    pub fn negotiated_version(&self, api: ApiKey) -> Result<i16, ClientError> {
        negotiate(&self.addr, api, self.broker_versions(api))
    }

    /// Sends `req` at the highest version both sides support and waits up to `timeout` for its response.
    pub async fn request_negotiated<Req>(&mut self, req: &Req, timeout: Duration) -> Result<Req::Response, ClientError>
    where
        Req: Request,
        Req::Response: BoundedShape,
    {
        self.ensure_connected(timeout).await?;
        let version = self.negotiated_version(api_key_of::<Req>())?;
        self.request(version, req, timeout).await
    }

    /// Sends `req` at `version` and waits up to `timeout` (`request.timeout.ms`) for its response. On a
    /// timeout, a broken connection or an undecodable response the connection is closed.
    pub async fn request<Req>(
        &mut self,
        version: i16,
        req: &Req,
        timeout: Duration,
    ) -> Result<Req::Response, ClientError>
    where
        Req: Request,
        Req::Response: BoundedShape,
    {
        self.ensure_connected(timeout).await?;
        self.check_version(api_key_of::<Req>(), version)?;
        let frame = self.round_trip(version, req, true, timeout).await?;
        let frame = frame.expect("round_trip with a response expected returns a frame");
        let correlation_id = self.next_correlation_id.wrapping_sub(1);
        let result = decode_response::<Req>(&self.addr, correlation_id, version, frame);
        if result.is_err() {
            self.close();
        }
        result
    }

    /// Sends `req` at the negotiated version without waiting for a response (Produce with acks=0).
    pub async fn send_no_response_negotiated<Req: Request>(
        &mut self,
        req: &Req,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        self.ensure_connected(timeout).await?;
        let version = self.negotiated_version(api_key_of::<Req>())?;
        self.send_no_response(version, req, timeout).await
    }

    /// Sends `req` without waiting for a response (Produce with acks=0: the broker sends none).
    pub async fn send_no_response<Req: Request>(
        &mut self,
        version: i16,
        req: &Req,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        self.ensure_connected(timeout).await?;
        self.check_version(api_key_of::<Req>(), version)?;
        self.round_trip(version, req, false, timeout).await.map(|_| ())
    }

    fn check_version(&self, api: ApiKey, version: i16) -> Result<(), ClientError> {
        let negotiated = self.negotiated_version(api)?;
        let (client_min, _) = client_range(api).unwrap_or((negotiated, negotiated));
        let broker_min = self.broker_versions(api).map_or(client_min, |(min, _)| min);
        if version < client_min.max(broker_min) || version > negotiated {
            return Err(ClientError::UnsupportedVersion {
                addr: self.addr.clone(),
                api,
                client_min: version,
                client_max: version,
                broker: self.broker_versions(api),
            });
        }
        Ok(())
    }

    /// Opens the socket and runs the ApiVersions handshake, if not connected.
    async fn ensure_connected(&mut self, timeout: Duration) -> Result<(), ClientError> {
        if self.stream.is_some() {
            return Ok(());
        }
        let stream = match rt::timeout(timeout, TcpStream::connect(self.addr.as_str())).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                return Err(ClientError::Connect {
                    addr: self.addr.clone(),
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                return Err(ClientError::Connect {
                    addr: self.addr.clone(),
                    reason: "connect timed out".into(),
                })
            }
        };
        self.stream = Some(stream);
        self.connections_opened += 1;
        self.broker_versions.clear();
        match self.api_versions_handshake(timeout).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.close();
                Err(e)
            }
        }
    }

    async fn api_versions_handshake(&mut self, timeout: Duration) -> Result<(), ClientError> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("gregor"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let version = 3;
        let frame = self.round_trip(version, &req, true, timeout).await?;
        let frame = frame.expect("round_trip with a response expected returns a frame");
        let correlation_id = self.next_correlation_id.wrapping_sub(1);
        if api_versions_refused(&frame) {
            return Err(ClientError::UnsupportedVersion {
                addr: self.addr.clone(),
                api: ApiKey::ApiVersions,
                client_min: version,
                client_max: version,
                broker: None,
            });
        }
        let resp = decode_response::<ApiVersionsRequest>(&self.addr, correlation_id, version, frame)?;
        super::error::check_code(resp.error_code, || format!("ApiVersions to {}", self.addr))?;
        self.broker_versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        self.negotiated_version(ApiKey::ApiVersions).map(|_| ())
    }

    /// Writes one request frame and, if `expect_response`, reads one response frame, all within `timeout`.
    /// Any failure drops the socket.
    async fn round_trip<Req: Request>(
        &mut self,
        version: i16,
        req: &Req,
        expect_response: bool,
        timeout: Duration,
    ) -> Result<Option<Bytes>, ClientError> {
        let api = api_key_of::<Req>();
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let body = encode_request(&self.config.client_id, correlation_id, version, req)?;
        let max = self.config.max_response_bytes;
        let Some(mut stream) = self.stream.take() else {
            return Err(ClientError::Disconnected {
                addr: self.addr.clone(),
                api,
                reason: "not connected".into(),
            });
        };
        let exchange = async {
            rt::write_frame(&mut stream, &body).await.map_err(|e| e.to_string())?;
            if !expect_response {
                return Ok(None);
            }
            match rt::read_frame(&mut stream, max).await {
                Ok(Some(frame)) => Ok(Some(Bytes::from(frame))),
                Ok(None) => Err("connection closed by the broker".to_string()),
                Err(e) => Err(e.to_string()),
            }
        };
        match rt::timeout(timeout, exchange).await {
            Ok(Ok(frame)) => {
                self.stream = Some(stream);
                Ok(frame)
            }
            Ok(Err(reason)) => Err(ClientError::Disconnected {
                addr: self.addr.clone(),
                api,
                reason,
            }),
            Err(_) => Err(ClientError::Timeout {
                addr: self.addr.clone(),
                api,
                timeout_ms: timeout.as_millis() as u64,
            }),
        }
    }
}

fn api_key_of<Req: Request>() -> ApiKey {
    ApiKey::try_from(Req::KEY).unwrap_or_else(|()| panic!("kafka-protocol request with unknown API key {}", Req::KEY))
}

fn client_range(api: ApiKey) -> Option<(i16, i16)> {
    CLIENT_API_VERSIONS
        .iter()
        .find(|(k, _, _)| *k == api)
        .map(|&(_, min, max)| (min, max))
}

/// The highest version of `api` in both the client's range and the broker's advertised one.
pub fn negotiate(addr: &str, api: ApiKey, broker: Option<(i16, i16)>) -> Result<i16, ClientError> {
    let (client_min, client_max) = client_range(api).unwrap_or_else(|| panic!("client does not speak {api:?}"));
    let unsupported = || ClientError::UnsupportedVersion {
        addr: addr.to_string(),
        api,
        client_min,
        client_max,
        broker,
    };
    let (broker_min, broker_max) = broker.ok_or_else(unsupported)?;
    let version = client_max.min(broker_max);
    if version < client_min.max(broker_min) {
        return Err(unsupported());
    }
    Ok(version)
}

/// A request frame body: header (v1 or v2 per the API's flexible versions) then the request.
pub fn encode_request<Req: Request>(
    client_id: &str,
    correlation_id: i32,
    version: i16,
    req: &Req,
) -> Result<Vec<u8>, ClientError> {
    let api = api_key_of::<Req>();
    let header = RequestHeader::default()
        .with_request_api_key(Req::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let encode_err = |e: &dyn std::fmt::Display| ClientError::Encode {
        api,
        version,
        reason: e.to_string(),
    };
    let header_version = api.request_header_version(version);
    let size = header.compute_size(header_version).map_err(|e| encode_err(&e))?
        + req.compute_size(version).map_err(|e| encode_err(&e))?;
    let mut buf = BytesMut::with_capacity(size);
    header.encode(&mut buf, header_version).map_err(|e| encode_err(&e))?;
    req.encode(&mut buf, version).map_err(|e| encode_err(&e))?;
    Ok(Vec::from(buf))
}

/// Decodes a response frame for `Req`: header (correlation id checked), then the body, whose shape is
/// checked first so that no count in it can make the decoder allocate more than the frame's size allows.
pub fn decode_response<Req>(
    addr: &str,
    expected_correlation_id: i32,
    version: i16,
    frame: Bytes,
) -> Result<Req::Response, ClientError>
where
    Req: Request,
    Req::Response: BoundedShape,
{
    let api = api_key_of::<Req>();
    let decode_err = |reason: String| ClientError::Decode {
        addr: addr.to_string(),
        api,
        version,
        reason,
    };
    let header_version = <Req::Response as HeaderVersion>::header_version(version);
    let mut cursor = Cursor::new(&frame);
    check_response_header(&mut cursor, header_version).map_err(|e| decode_err(format!("response header: {e}")))?;
    let header_len = cursor.position();
    let mut header_bytes = frame.slice(..header_len);
    let header = ResponseHeader::decode(&mut header_bytes, header_version).map_err(|e| decode_err(e.to_string()))?;
    if header.correlation_id != expected_correlation_id {
        return Err(ClientError::CorrelationMismatch {
            addr: addr.to_string(),
            api,
            expected: expected_correlation_id,
            got: header.correlation_id,
        });
    }
    let mut body = frame.slice(header_len..);
    check_body::<Req::Response>(&body, version).map_err(|e| decode_err(e.to_string()))?;
    // The shape check bounds every allocation; a panic inside the decoder is still caught as a decode error.
    let decoded = catch_unwind(AssertUnwindSafe(|| Req::Response::decode(&mut body, version)))
        .map_err(|_| decode_err("kafka-protocol decoder panicked".to_string()))?;
    decoded.map_err(|e| decode_err(e.to_string()))
}

/// Whether an ApiVersions response frame (header v0) carries error 35, which a broker sends encoded at v0
/// with its own supported range (KIP-511).
fn api_versions_refused(frame: &[u8]) -> bool {
    frame.len() >= 6 && i16::from_be_bytes([frame[4], frame[5]]) == UNSUPPORTED_VERSION_CODE
}

#[cfg(test)]
mod tests;
