//! Bounded decoding of the responses the client reads.
//!
//! kafka-protocol trusts the counts it reads: an array's count goes straight into `Vec::with_capacity`, so a
//! few bad bytes can ask for hundreds of gigabytes and abort the process (FIELD-NOTES, kafka-protocol
//! pitfall 1). Before a body reaches kafka-protocol's decoder it is walked here against the wire shape of
//! its version: every count and length must fit in the bytes that remain, and every known tagged field
//! must fill exactly its declared size. Only the (flexible) versions the client negotiates are described;
//! any other version is refused.

mod controller;
mod groups;

use kafka_protocol::messages::{
    ApiVersionsResponse, CreateTopicsResponse, FetchResponse, InitProducerIdResponse, ListOffsetsResponse,
    MetadataResponse, OffsetForLeaderEpochResponse, ProduceResponse,
};

/// Why a body does not have the shape of its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("body ends at byte {at} while reading {what}")]
    Truncated { what: &'static str, at: usize },
    #[error("{what} of {count} at byte {at} cannot fit in the {remaining} bytes that remain")]
    CountTooLarge {
        what: &'static str,
        count: u64,
        remaining: usize,
        at: usize,
    },
    #[error("varint at byte {at} is longer than 5 bytes")]
    VarintTooLong { at: usize },
    #[error("tagged field {tag} at byte {at} declares {size} bytes but its value takes {used}")]
    TagSize {
        tag: u32,
        size: usize,
        used: usize,
        at: usize,
    },
    #[error("{left} trailing bytes after the body")]
    Trailing { left: usize },
    #[error("no bounded decoder for version {version} of this message")]
    UnsupportedVersion { version: i16 },
}

/// A read position over a body; every read is checked against what remains.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), ShapeError> {
        if n > self.remaining() {
            return Err(ShapeError::Truncated { what, at: self.pos });
        }
        self.pos += n;
        Ok(())
    }

    pub fn i8(&mut self) -> Result<(), ShapeError> {
        self.skip(1, "int8")
    }
    pub fn i16(&mut self) -> Result<i16, ShapeError> {
        let at = self.pos;
        self.skip(2, "int16")?;
        Ok(i16::from_be_bytes([self.buf[at], self.buf[at + 1]]))
    }
    pub fn i32(&mut self) -> Result<(), ShapeError> {
        self.skip(4, "int32")
    }
    pub fn i64(&mut self) -> Result<(), ShapeError> {
        self.skip(8, "int64")
    }
    pub fn uuid(&mut self) -> Result<(), ShapeError> {
        self.skip(16, "uuid")
    }
    pub fn bool(&mut self) -> Result<(), ShapeError> {
        self.skip(1, "boolean")
    }

    pub fn uvarint(&mut self) -> Result<u32, ShapeError> {
        let at = self.pos;
        let mut value: u32 = 0;
        for i in 0..5 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(ShapeError::Truncated { what: "varint", at });
            };
            self.pos += 1;
            value |= ((b & 0x7f) as u32) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ShapeError::VarintTooLong { at })
    }

    /// A compact (nullable) string or bytes: varint length + 1, then the bytes.
    pub fn compact_bytes(&mut self, what: &'static str) -> Result<(), ShapeError> {
        let at = self.pos;
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(());
        }
        let len = (n - 1) as usize;
        if len > self.remaining() {
            return Err(ShapeError::CountTooLarge {
                what,
                count: len as u64,
                remaining: self.remaining(),
                at,
            });
        }
        self.skip(len, what)
    }

    pub fn string(&mut self) -> Result<(), ShapeError> {
        self.compact_bytes("string")
    }

    /// A compact (nullable) array whose elements take at least `min_element_bytes` each.
    pub fn array(
        &mut self,
        what: &'static str,
        min_element_bytes: usize,
        mut element: impl FnMut(&mut Self) -> Result<(), ShapeError>,
    ) -> Result<(), ShapeError> {
        let at = self.pos;
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(());
        }
        let count = (n - 1) as u64;
        if count.saturating_mul(min_element_bytes.max(1) as u64) > self.remaining() as u64 {
            return Err(ShapeError::CountTooLarge {
                what,
                count,
                remaining: self.remaining(),
                at,
            });
        }
        for _ in 0..count {
            element(self)?;
        }
        Ok(())
    }

    /// A tagged-field section. `known(tag, cursor)` walks a tag it knows and returns true, or returns false
    /// to skip it; a known tag must fill exactly its declared size.
    pub fn tags(
        &mut self,
        mut known: impl FnMut(u32, &mut Cursor<'a>) -> Result<bool, ShapeError>,
    ) -> Result<(), ShapeError> {
        let at = self.pos;
        let count = self.uvarint()?;
        if count as usize > self.remaining() {
            return Err(ShapeError::CountTooLarge {
                what: "tagged fields",
                count: count as u64,
                remaining: self.remaining(),
                at,
            });
        }
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size_at = self.pos;
            let size = self.uvarint()? as usize;
            if size > self.remaining() {
                return Err(ShapeError::CountTooLarge {
                    what: "tagged field",
                    count: size as u64,
                    remaining: self.remaining(),
                    at: size_at,
                });
            }
            let start = self.pos;
            let mut inner = Cursor {
                buf: &self.buf[..start + size],
                pos: start,
            };
            if known(tag, &mut inner)? && inner.remaining() != 0 {
                return Err(ShapeError::TagSize {
                    tag,
                    size,
                    used: inner.pos - start,
                    at: start,
                });
            }
            self.pos = start + size;
        }
        Ok(())
    }

    /// Tagged fields of a struct that knows none.
    pub fn no_tags(&mut self) -> Result<(), ShapeError> {
        self.tags(|_, _| Ok(false))
    }

    pub fn finish(&self) -> Result<(), ShapeError> {
        match self.remaining() {
            0 => Ok(()),
            left => Err(ShapeError::Trailing { left }),
        }
    }
}

/// A response body whose shape can be checked before kafka-protocol decodes it.
pub trait BoundedShape {
    /// Walks one body of `version`; Ok means kafka-protocol's decoder allocates no more than the body's size
    /// times a small factor.
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError>;
}

fn need(ok: bool, version: i16) -> Result<(), ShapeError> {
    if ok {
        Ok(())
    } else {
        Err(ShapeError::UnsupportedVersion { version })
    }
}

/// Response header v1 (flexible): correlation id, tagged fields.
pub fn check_response_header(c: &mut Cursor<'_>, header_version: i16) -> Result<(), ShapeError> {
    c.i32()?;
    if header_version >= 1 {
        c.no_tags()?;
    }
    Ok(())
}

impl BoundedShape for ApiVersionsResponse {
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need((3..=4).contains(&version), version)?;
        c.i16()?;
        c.array("api_keys", 7, |c| {
            c.i16()?;
            c.i16()?;
            c.i16()?;
            c.no_tags()
        })?;
        c.i32()?;
        let feature = |c: &mut Cursor<'_>| {
            c.string()?;
            c.i16()?;
            c.i16()?;
            c.no_tags()
        };
        c.tags(|tag, c| match tag {
            0 => c.array("supported_features", 6, feature).map(|_| true),
            1 => c.i64().map(|_| true),
            2 => c.array("finalized_features", 6, feature).map(|_| true),
            3 => c.bool().map(|_| true),
            _ => Ok(false),
        })
    }
}

impl BoundedShape for MetadataResponse {
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need((10..=13).contains(&version), version)?;
        c.i32()?;
        c.array("brokers", 11, |c| {
            c.i32()?;
            c.string()?;
            c.i32()?;
            c.string()?;
            c.no_tags()
        })?;
        c.string()?;
        c.i32()?;
        c.array("topics", 24, |c| metadata_topic(c, version))?;
        if version <= 10 {
            c.i32()?;
        }
        if version >= 13 {
            c.i16()?;
        }
        c.no_tags()
    }
}

fn metadata_topic(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
    c.i16()?;
    c.string()?;
    if version >= 10 {
        c.uuid()?;
    }
    c.bool()?;
    c.array("partitions", 18, |c| {
        c.i16()?;
        c.i32()?;
        c.i32()?;
        c.i32()?;
        c.array("replica_nodes", 4, Cursor::i32)?;
        c.array("isr_nodes", 4, Cursor::i32)?;
        c.array("offline_replicas", 4, Cursor::i32)?;
        c.no_tags()
    })?;
    c.i32()?;
    c.no_tags()
}

impl BoundedShape for CreateTopicsResponse {
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need((7..=7).contains(&version), version)?;
        c.i32()?;
        c.array("topics", 28, |c| {
            c.string()?;
            c.uuid()?;
            c.i16()?;
            c.string()?;
            c.i32()?;
            c.i16()?;
            c.array("configs", 6, |c| {
                c.string()?;
                c.string()?;
                c.bool()?;
                c.i8()?;
                c.bool()?;
                c.no_tags()
            })?;
            c.tags(|tag, c| match tag {
                0 => c.i16().map(|_| true),
                _ => Ok(false),
            })
        })?;
        c.no_tags()
    }
}

impl BoundedShape for ProduceResponse {
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need((9..=12).contains(&version), version)?;
        c.array("responses", 3, |c| {
            c.string()?;
            c.array("partition_responses", 32, |c| produce_partition(c, version))?;
            c.no_tags()
        })?;
        c.i32()?;
        c.tags(|tag, c| match tag {
            0 if version >= 10 => c
                .array("node_endpoints", 11, |c| {
                    c.i32()?;
                    c.string()?;
                    c.i32()?;
                    c.string()?;
                    c.no_tags()
                })
                .map(|_| true),
            _ => Ok(false),
        })
    }
}

fn produce_partition(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
    c.i32()?;
    c.i16()?;
    c.i64()?;
    c.i64()?;
    c.i64()?;
    c.array("record_errors", 6, |c| {
        c.i32()?;
        c.string()?;
        c.no_tags()
    })?;
    c.string()?;
    c.tags(|tag, c| match tag {
        0 if version >= 10 => leader_id_and_epoch(c).map(|_| true),
        _ => Ok(false),
    })
}

fn leader_id_and_epoch(c: &mut Cursor<'_>) -> Result<(), ShapeError> {
    c.i32()?;
    c.i32()?;
    c.no_tags()
}

impl BoundedShape for FetchResponse {
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 12, version)?;
        c.i32()?;
        c.i16()?;
        c.i32()?;
        c.array("responses", 3, |c| {
            c.string()?;
            c.array("partitions", 37, fetch_partition)?;
            c.no_tags()
        })?;
        c.no_tags()
    }
}

fn fetch_partition(c: &mut Cursor<'_>) -> Result<(), ShapeError> {
    c.i32()?;
    c.i16()?;
    c.i64()?;
    c.i64()?;
    c.i64()?;
    c.array("aborted_transactions", 17, |c| {
        c.i64()?;
        c.i64()?;
        c.no_tags()
    })?;
    c.i32()?;
    c.compact_bytes("records")?;
    c.tags(|tag, c| match tag {
        0 => {
            c.i32()?;
            c.i64()?;
            c.no_tags().map(|_| true)
        }
        1 => leader_id_and_epoch(c).map(|_| true),
        2 => {
            c.i64()?;
            c.i32()?;
            c.no_tags().map(|_| true)
        }
        _ => Ok(false),
    })
}

impl BoundedShape for ListOffsetsResponse {
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need((6..=10).contains(&version), version)?;
        c.i32()?;
        c.array("topics", 2, |c| {
            c.string()?;
            c.array("partitions", 27, |c| {
                c.i32()?;
                c.i16()?;
                c.i64()?;
                c.i64()?;
                c.i32()?;
                c.no_tags()
            })?;
            c.no_tags()
        })?;
        c.no_tags()
    }
}

impl BoundedShape for OffsetForLeaderEpochResponse {
    /// v4 (flexible): throttle_time_ms, topics [topic, partitions [error_code, partition, leader_epoch,
    /// end_offset]].
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need(version == 4, version)?;
        c.i32()?;
        c.array("topics", 3, |c| {
            c.string()?;
            c.array("partitions", 19, |c| {
                c.i16()?;
                c.i32()?;
                c.i32()?;
                c.i64()?;
                c.no_tags()
            })?;
            c.no_tags()
        })?;
        c.no_tags()
    }
}

impl BoundedShape for InitProducerIdResponse {
    /// v2+ (flexible): throttle_time_ms, error_code, producer_id, producer_epoch; v6 adds the ongoing
    /// transaction's producer id and epoch (KIP-939).
    fn check_shape(c: &mut Cursor<'_>, version: i16) -> Result<(), ShapeError> {
        need((2..=6).contains(&version), version)?;
        c.i32()?;
        c.i16()?;
        c.i64()?;
        c.i16()?;
        if version >= 6 {
            c.i64()?;
            c.i16()?;
        }
        c.no_tags()
    }
}

/// Checks a whole body: its shape, and no trailing bytes.
pub fn check_body<T: BoundedShape>(body: &[u8], version: i16) -> Result<(), ShapeError> {
    let mut c = Cursor::new(body);
    T::check_shape(&mut c, version)?;
    c.finish()
}
