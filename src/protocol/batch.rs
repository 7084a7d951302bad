//! Kafka record batches, magic v2 (KIP-98): our own bounded parser and builder.
//!
//! Layout (big-endian; FIELD-NOTES): baseOffset i64 @0, batchLength i32 @8 (bytes after this field),
//! partitionLeaderEpoch i32 @12, magic i8 @16, crc u32 @17 (CRC-32C of bytes 21..end), attributes i16 @21,
//! lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35, producerId i64 @43,
//! producerEpoch i16 @51, baseSequence i32 @53, recordsCount i32 @57, records @61.
//! baseOffset and partitionLeaderEpoch sit outside the CRC, so a broker assigns them in place.
//!
//! Nothing here trusts its input: every length is checked against the bytes that remain before anything is
//! allocated for it, and bad input is a [`BatchError`] naming the byte, never a panic.

/// Size of the batch header (Kafka's `RECORD_BATCH_OVERHEAD`).
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// baseOffset + batchLength (Kafka's `LOG_OVERHEAD`).
pub const LOG_OVERHEAD: usize = 12;
/// The only magic this crate speaks.
pub const MAGIC_V2: i8 = 2;
/// `partitionLeaderEpoch` of a batch no leader has stamped yet.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;

const CRC_START: usize = 21;
const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;
/// Attribute bit 6 (KIP-534): baseTimestamp holds the delete horizon the log cleaner set.
pub const ATTR_DELETE_HORIZON: i16 = 0x40;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("truncated at byte {at}: need {needed} bytes, {available} available")]
    Truncated { at: usize, needed: usize, available: usize },
    #[error("bad magic {magic} at byte 16 (expected 2)")]
    BadMagic { magic: i8 },
    #[error("CRC-32C mismatch: header says {expected:#010x}, bytes 21..{end} give {actual:#010x}")]
    CrcMismatch { expected: u32, actual: u32, end: usize },
    #[error("invalid length {length} at byte {at}: {reason}")]
    InvalidLength {
        at: usize,
        length: i64,
        reason: &'static str,
    },
    #[error("invalid varint at byte {at}")]
    InvalidVarint { at: usize },
    #[error("compression codec {codec} is not supported")]
    UnsupportedCompression { codec: u8 },
    #[error("invalid record count at byte 57: recordsCount={records_count} lastOffsetDelta={last_offset_delta}")]
    InvalidCount { records_count: i32, last_offset_delta: i32 },
    #[error("invalid record at byte {at}: {reason}")]
    InvalidRecord { at: usize, reason: String },
}

/// The 61-byte header of a v2 batch, by Kafka's field names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

/// Kafka's `TimestampType` of a batch (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

impl BatchHeader {
    /// Parses the header at the start of `buf` (the records need not be there). Checks that there are 61
    /// bytes, that batchLength covers the header, and the magic.
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < RECORD_BATCH_OVERHEAD {
            return Err(BatchError::Truncated {
                at: 0,
                needed: RECORD_BATCH_OVERHEAD,
                available: buf.len(),
            });
        }
        let batch_length = be_i32(buf, 8);
        if (batch_length as i64) < (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i64 {
            return Err(BatchError::InvalidLength {
                at: 8,
                length: batch_length as i64,
                reason: "batchLength smaller than the 49 header bytes after it",
            });
        }
        let magic = buf[16] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::BadMagic { magic });
        }
        Ok(Self {
            base_offset: be_i64(buf, 0),
            batch_length,
            partition_leader_epoch: be_i32(buf, 12),
            magic,
            crc: u32::from_be_bytes(buf[17..21].try_into().expect("4 bytes")),
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        })
    }

    /// The offset of the batch's last record (`baseOffset + lastOffsetDelta`).
    pub fn last_offset(&self) -> i64 {
        self.base_offset.saturating_add(self.last_offset_delta as i64)
    }

    /// The offset after the batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// Bytes the whole batch occupies: 12 + batchLength.
    pub fn total_size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    /// The compression codec (attribute bits 0–2): 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes & ATTR_COMPRESSION_MASK) as u8
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// KIP-534's delete horizon: after it, the log cleaner removes this batch's tombstones.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & ATTR_DELETE_HORIZON != 0).then_some(self.base_timestamp)
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & ATTR_LOG_APPEND_TIME != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
}

/// Validates the one batch `buf` holds exactly: header, length, magic, counts, CRC-32C over bytes 21..end.
pub fn validate_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(buf)?;
    let total = header.total_size();
    if buf.len() < total {
        return Err(BatchError::Truncated {
            at: 0,
            needed: total,
            available: buf.len(),
        });
    }
    if buf.len() > total {
        return Err(BatchError::InvalidLength {
            at: 8,
            length: header.batch_length as i64,
            reason: "bytes remain after the batch",
        });
    }
    let (count, delta) = (header.records_count, header.last_offset_delta);
    if count < 0 || delta < 0 || (delta as i64) < count as i64 - 1 {
        return Err(BatchError::InvalidCount {
            records_count: count,
            last_offset_delta: delta,
        });
    }
    let actual = crc32c::crc32c(&buf[CRC_START..total]);
    if actual != header.crc {
        return Err(BatchError::CrcMismatch {
            expected: header.crc,
            actual,
            end: total,
        });
    }
    Ok(header)
}

/// Sets baseOffset in place (outside the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    assert!(
        batch.len() >= RECORD_BATCH_OVERHEAD,
        "batch of {} bytes has no header",
        batch.len()
    );
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Sets partitionLeaderEpoch in place (outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    assert!(
        batch.len() >= RECORD_BATCH_OVERHEAD,
        "batch of {} bytes has no header",
        batch.len()
    );
    batch[12..16].copy_from_slice(&epoch.to_be_bytes());
}

/// Iterates concatenated batches. Yields each header with its exact bytes (the CRC is not checked: call
/// [`validate_batch`]); stops cleanly at a partial trailing batch, and after the first malformed header.
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

pub fn batches(buf: &[u8]) -> BatchIter<'_> {
    BatchIter {
        buf,
        pos: 0,
        failed: false,
    }
}

impl BatchIter<'_> {
    /// Bytes of whole batches yielded so far (where the next batch would start).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether bytes remain after the last whole batch (a partial batch, or garbage after an error).
    pub fn has_remainder(&self) -> bool {
        self.pos < self.buf.len()
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(BatchHeader, &'a [u8]), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = &self.buf[self.pos..];
        if rest.len() < LOG_OVERHEAD {
            return None;
        }
        let length = be_i32(rest, 8);
        if (length as i64) < (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i64 {
            self.failed = true;
            return Some(Err(BatchError::InvalidLength {
                at: self.pos + 8,
                length: length as i64,
                reason: "batchLength smaller than the 49 header bytes after it",
            }));
        }
        let total = LOG_OVERHEAD + length as usize;
        if rest.len() < total {
            return None;
        }
        match BatchHeader::parse(rest) {
            Ok(header) => {
                self.pos += total;
                Some(Ok((header, &rest[..total])))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// One record of a batch, offsets and timestamps made absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A bounded reader over a byte slice; positions are reported relative to the batch start.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn at(&self) -> usize {
        self.base + self.pos
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BatchError> {
        if n > self.remaining() {
            return Err(BatchError::Truncated {
                at: self.at(),
                needed: n,
                available: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn unsigned_varint(&mut self, max_bytes: usize) -> Result<u64, BatchError> {
        let start = self.at();
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let byte = *self.take(1)?.first().expect("one byte");
            value |= ((byte & 0x7f) as u64) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(BatchError::InvalidVarint { at: start })
    }

    /// A zig-zag varint of at most 5 bytes that fits an i32.
    fn varint(&mut self) -> Result<i32, BatchError> {
        let start = self.at();
        let raw = self.unsigned_varint(5)?;
        let raw = u32::try_from(raw).map_err(|_| BatchError::InvalidVarint { at: start })?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// A zig-zag varlong of at most 10 bytes.
    fn varlong(&mut self) -> Result<i64, BatchError> {
        let raw = self.unsigned_varint(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A varint length then that many bytes; -1 is null.
    fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, BatchError> {
        let at = self.at();
        let len = self.varint()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || len as usize > self.remaining() {
            return Err(BatchError::InvalidLength {
                at,
                length: len as i64,
                reason: "field length negative or past the record's end",
            });
        }
        self.take(len as usize).map(Some)
    }
}

/// Decodes every record of one uncompressed batch (the CRC is checked first).
pub fn decode_records(batch: &[u8]) -> Result<Vec<Record>, BatchError> {
    let header = validate_batch(batch)?;
    if header.compression() != 0 {
        return Err(BatchError::UnsupportedCompression {
            codec: header.compression(),
        });
    }
    let mut reader = Reader {
        buf: &batch[RECORD_BATCH_OVERHEAD..],
        pos: 0,
        base: RECORD_BATCH_OVERHEAD,
    };
    let mut records = Vec::new();
    for _ in 0..header.records_count {
        let at = reader.at();
        let len = reader.varint()?;
        if len < 0 || len as usize > reader.remaining() {
            return Err(BatchError::InvalidLength {
                at,
                length: len as i64,
                reason: "record length negative or past the batch's end",
            });
        }
        let body_at = reader.at();
        let body = reader.take(len as usize)?;
        let mut body = Reader {
            buf: body,
            pos: 0,
            base: body_at,
        };
        records.push(decode_record(&mut body, &header)?);
        if body.remaining() != 0 {
            return Err(BatchError::InvalidRecord {
                at: body.at(),
                reason: format!("{} bytes left over inside the record", body.remaining()),
            });
        }
    }
    if reader.remaining() != 0 {
        return Err(BatchError::InvalidRecord {
            at: reader.at(),
            reason: format!(
                "{} bytes after recordsCount={} records",
                reader.remaining(),
                header.records_count
            ),
        });
    }
    Ok(records)
}

fn decode_record(r: &mut Reader<'_>, header: &BatchHeader) -> Result<Record, BatchError> {
    let _attributes = r.take(1)?;
    let timestamp_delta = r.varlong()?;
    let offset_at = r.at();
    let offset_delta = r.varint()?;
    if offset_delta < 0 || offset_delta > header.last_offset_delta {
        return Err(BatchError::InvalidRecord {
            at: offset_at,
            reason: format!("offsetDelta {offset_delta} outside 0..={}", header.last_offset_delta),
        });
    }
    let key = r.nullable_bytes()?.map(<[u8]>::to_vec);
    let value = r.nullable_bytes()?.map(<[u8]>::to_vec);
    let count_at = r.at();
    let header_count = r.varint()?;
    // Each header takes at least two bytes (key length, value length).
    if header_count < 0 || header_count as usize > r.remaining() / 2 {
        return Err(BatchError::InvalidLength {
            at: count_at,
            length: header_count as i64,
            reason: "header count negative or more than the record's bytes can hold",
        });
    }
    let mut headers = Vec::with_capacity(header_count as usize);
    for _ in 0..header_count {
        let key_at = r.at();
        let key = r.nullable_bytes()?.ok_or_else(|| BatchError::InvalidRecord {
            at: key_at,
            reason: "null header key".to_string(),
        })?;
        let key = std::str::from_utf8(key).map_err(|_| BatchError::InvalidRecord {
            at: key_at,
            reason: "header key is not UTF-8".to_string(),
        })?;
        let value = r.nullable_bytes()?.map(<[u8]>::to_vec);
        headers.push((key.to_string(), value));
    }
    let timestamp = match header.timestamp_type() {
        TimestampType::LogAppendTime => header.max_timestamp,
        TimestampType::CreateTime => header.base_timestamp.wrapping_add(timestamp_delta),
    };
    Ok(Record {
        offset: header.base_offset.saturating_add(offset_delta as i64),
        timestamp,
        key,
        value,
        headers,
    })
}

fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_unsigned_varint(out, ((value << 1) ^ (value >> 31)) as u32 as u64);
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    put_unsigned_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_unsigned_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_nullable_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, i32::try_from(b.len()).expect("field under 2 GiB"));
            out.extend_from_slice(b);
        }
    }
}

/// Rewrites a batch keeping only `records` (some of its own, in offset order), as Kafka's log cleaner does
/// (`MemoryRecords.filterTo` → `buildRetainedRecordsInto`): baseOffset and lastOffsetDelta stay (so the
/// batch's next offset stays), as do the producer fields, the leader epoch and maxTimestamp; the records keep
/// their offsets; with `delete_horizon_ms` the attribute bit 6 is set and baseTimestamp becomes the horizon
/// (record timestamps re-based on it, KIP-534). No records left gives Kafka's empty batch header
/// (`writeEmptyHeader`, kept for an idempotent producer's last batch).
pub fn filtered_batch(original: &BatchHeader, records: &[Record], delete_horizon_ms: Option<i64>) -> Vec<u8> {
    let base_timestamp = delete_horizon_ms.unwrap_or(if records.is_empty() {
        original.max_timestamp
    } else {
        original.base_timestamp
    });
    let mut attributes = original.attributes;
    if delete_horizon_ms.is_some() {
        attributes |= ATTR_DELETE_HORIZON;
    }
    let mut body = Vec::new();
    for r in records {
        let offset_delta = r.offset - original.base_offset;
        assert!(
            (0..=original.last_offset_delta as i64).contains(&offset_delta),
            "record {} outside batch {}..={}",
            r.offset,
            original.base_offset,
            original.last_offset()
        );
        let mut rec = vec![0u8];
        put_varlong(&mut rec, r.timestamp.wrapping_sub(base_timestamp));
        put_varint(&mut rec, offset_delta as i32);
        put_nullable_bytes(&mut rec, r.key.as_deref());
        put_nullable_bytes(&mut rec, r.value.as_deref());
        put_varint(
            &mut rec,
            i32::try_from(r.headers.len()).expect("header count under 2^31"),
        );
        for (k, v) in &r.headers {
            put_nullable_bytes(&mut rec, Some(k.as_bytes()));
            put_nullable_bytes(&mut rec, v.as_deref());
        }
        put_varint(&mut body, i32::try_from(rec.len()).expect("record under 2 GiB"));
        body.extend_from_slice(&rec);
    }
    let mut out = Vec::with_capacity(RECORD_BATCH_OVERHEAD + body.len());
    let batch_length = i32::try_from(RECORD_BATCH_OVERHEAD + body.len() - LOG_OVERHEAD).expect("batch under 2 GiB");
    out.extend_from_slice(&original.base_offset.to_be_bytes());
    out.extend_from_slice(&batch_length.to_be_bytes());
    out.extend_from_slice(&original.partition_leader_epoch.to_be_bytes());
    out.push(MAGIC_V2 as u8);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&original.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&base_timestamp.to_be_bytes());
    out.extend_from_slice(&original.max_timestamp.to_be_bytes());
    out.extend_from_slice(&original.producer_id.to_be_bytes());
    out.extend_from_slice(&original.producer_epoch.to_be_bytes());
    out.extend_from_slice(&original.base_sequence.to_be_bytes());
    out.extend_from_slice(&(records.len() as i32).to_be_bytes());
    out.extend_from_slice(&body);
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Builds one uncompressed v2 batch, as a producer's `MemoryRecordsBuilder` does.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    partition_leader_epoch: i32,
    attributes: i16,
    count: i32,
    records: Vec<u8>,
}

impl BatchBuilder {
    /// An empty batch; producer id, epoch and base sequence are -1 (no idempotence).
    pub fn new(base_timestamp: i64) -> Self {
        Self {
            base_timestamp,
            max_timestamp: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            attributes: 0,
            count: 0,
            records: Vec::new(),
        }
    }

    /// Idempotent producer fields (KIP-98).
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    pub fn transactional(mut self, transactional: bool) -> Self {
        self.attributes = (self.attributes & !ATTR_TRANSACTIONAL) | if transactional { ATTR_TRANSACTIONAL } else { 0 };
        self
    }

    /// Appends a record at the next offset delta.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) {
        let mut body = Vec::new();
        body.push(0u8); // record attributes (unused)
        put_varlong(&mut body, timestamp.wrapping_sub(self.base_timestamp));
        put_varint(&mut body, self.count);
        put_nullable_bytes(&mut body, key);
        put_nullable_bytes(&mut body, value);
        put_varint(
            &mut body,
            i32::try_from(headers.len()).expect("header count under 2^31"),
        );
        for (k, v) in headers {
            put_nullable_bytes(&mut body, Some(k.as_bytes()));
            put_nullable_bytes(&mut body, *v);
        }
        put_varint(
            &mut self.records,
            i32::try_from(body.len()).expect("record under 2 GiB"),
        );
        self.records.extend_from_slice(&body);
        self.max_timestamp = if self.count == 0 {
            timestamp
        } else {
            self.max_timestamp.max(timestamp)
        };
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the batch [`BatchBuilder::build`] would return.
    pub fn size_bytes(&self) -> usize {
        RECORD_BATCH_OVERHEAD + self.records.len()
    }

    /// The batch bytes: baseOffset 0, CRC filled.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_bytes());
        let batch_length = i32::try_from(self.size_bytes() - LOG_OVERHEAD).expect("batch under 2 GiB");
        out.extend_from_slice(&0i64.to_be_bytes());
        out.extend_from_slice(&batch_length.to_be_bytes());
        out.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out.push(MAGIC_V2 as u8);
        out.extend_from_slice(&0u32.to_be_bytes()); // CRC, filled below
        out.extend_from_slice(&self.attributes.to_be_bytes());
        out.extend_from_slice(&(self.count - 1).max(0).to_be_bytes());
        out.extend_from_slice(&self.base_timestamp.to_be_bytes());
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.records);
        let crc = crc32c::crc32c(&out[CRC_START..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn two_record_batch() -> Vec<u8> {
        let mut b = BatchBuilder::new(1_000).producer(7, 1, 42);
        b.push(
            1_000,
            Some(b"k1"),
            Some(b"v1"),
            &[("h", Some(b"a")), ("h", None), ("h", Some(b"b"))],
        );
        b.push(1_005, None, None, &[]);
        b.build()
    }

    #[test]
    fn built_batch_round_trips_through_header_and_records() {
        let bytes = two_record_batch();
        let h = validate_batch(&bytes).expect("valid");
        assert_eq!(h.total_size(), bytes.len());
        assert_eq!((h.base_offset, h.records_count, h.last_offset_delta), (0, 2, 1));
        assert_eq!((h.base_timestamp, h.max_timestamp), (1_000, 1_005));
        assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (7, 1, 42));
        assert_eq!(h.partition_leader_epoch, NO_PARTITION_LEADER_EPOCH);
        assert_eq!(
            (h.compression(), h.is_control(), h.is_transactional()),
            (0, false, false)
        );
        assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
        let records = decode_records(&bytes).expect("decodes");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(records[0].value.as_deref(), Some(&b"v1"[..]));
        assert_eq!((records[1].offset, records[1].timestamp), (1, 1_005));
        assert_eq!((records[1].key.clone(), records[1].value.clone()), (None, None));
    }

    #[test]
    fn headers_keep_order_and_repeated_keys() {
        let records = decode_records(&two_record_batch()).expect("decodes");
        let expected = vec![
            ("h".to_string(), Some(b"a".to_vec())),
            ("h".to_string(), None),
            ("h".to_string(), Some(b"b".to_vec())),
        ];
        assert_eq!(records[0].headers, expected);
        assert!(records[1].headers.is_empty());
    }

    #[test]
    fn base_offset_and_leader_epoch_are_set_outside_the_crc() {
        let mut bytes = two_record_batch();
        set_base_offset(&mut bytes, 1_234);
        set_partition_leader_epoch(&mut bytes, 9);
        let h = validate_batch(&bytes).expect("still valid");
        assert_eq!(
            (h.base_offset, h.partition_leader_epoch, h.last_offset()),
            (1_234, 9, 1_235)
        );
        let records = decode_records(&bytes).expect("decodes");
        assert_eq!(records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![1_234, 1_235]);
    }

    #[test]
    fn crc_catches_a_flipped_bit_in_every_covered_byte() {
        let bytes = two_record_batch();
        for i in CRC_START..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            match validate_batch(&bad) {
                Err(BatchError::CrcMismatch { .. })
                | Err(BatchError::InvalidCount { .. })
                | Err(BatchError::BadMagic { .. }) => {}
                other => panic!("flip at byte {i} gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_truncated_batch_is_an_error_not_a_panic() {
        let bytes = two_record_batch();
        for cut in 0..bytes.len() {
            assert!(validate_batch(&bytes[..cut]).is_err(), "cut at {cut}");
            assert!(decode_records(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(
            matches!(validate_batch(&bytes[..70]), Err(BatchError::Truncated { needed, .. }) if needed == bytes.len())
        );
    }

    #[test]
    fn bad_magic_is_named() {
        let mut bytes = two_record_batch();
        bytes[16] = 1;
        assert_eq!(validate_batch(&bytes), Err(BatchError::BadMagic { magic: 1 }));
    }

    #[test]
    fn compressed_batches_are_refused_by_decode_records() {
        let mut bytes = two_record_batch();
        bytes[22] |= 1; // gzip
        let crc = crc32c::crc32c(&bytes[CRC_START..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(validate_batch(&bytes).is_ok());
        assert_eq!(
            decode_records(&bytes),
            Err(BatchError::UnsupportedCompression { codec: 1 })
        );
    }

    #[test]
    fn batch_iter_yields_whole_batches_and_stops_at_a_partial_one() {
        let one = two_record_batch();
        let mut buf = one.clone();
        buf.extend_from_slice(&one);
        buf.extend_from_slice(&one[..30]);
        let mut it = batches(&buf);
        let mut n = 0;
        for item in &mut it {
            let (h, bytes) = item.expect("whole batch");
            assert_eq!(bytes.len(), h.total_size());
            n += 1;
        }
        assert_eq!(n, 2);
        assert_eq!(it.position(), 2 * one.len());
        assert!(it.has_remainder());
    }

    #[test]
    fn batch_iter_reports_a_bad_length_once() {
        let mut buf = two_record_batch();
        buf[8..12].copy_from_slice(&3i32.to_be_bytes());
        let items: Vec<_> = batches(&buf).collect();
        assert_eq!(items.len(), 1);
        assert!(matches!(
            items[0],
            Err(BatchError::InvalidLength { at: 8, length: 3, .. })
        ));
    }

    #[test]
    fn varints_round_trip_at_their_edges() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut r = Reader {
                buf: &out,
                pos: 0,
                base: 0,
            };
            assert_eq!(r.varint(), Ok(v));
        }
        for v in [0, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            let mut r = Reader {
                buf: &out,
                pos: 0,
                base: 0,
            };
            assert_eq!(r.varlong(), Ok(v));
        }
        let mut r = Reader {
            buf: &[0xff; 6],
            pos: 0,
            base: 0,
        };
        assert_eq!(r.varint(), Err(BatchError::InvalidVarint { at: 0 }));
    }

    #[test]
    fn empty_builder_builds_a_valid_empty_batch() {
        let b = BatchBuilder::new(5);
        assert!(b.is_empty());
        let bytes = b.build();
        assert_eq!(bytes.len(), RECORD_BATCH_OVERHEAD);
        assert_eq!(decode_records(&bytes), Ok(vec![]));
    }

    /// Re-signs a mutated batch so decoding reaches the records instead of stopping at the CRC.
    fn resign(bytes: &mut [u8]) {
        if bytes.len() >= RECORD_BATCH_OVERHEAD {
            let crc = crc32c::crc32c(&bytes[CRC_START..]);
            bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = validate_batch(&bytes);
            let _ = decode_records(&bytes);
            let _ = batches(&bytes).count();
            let _ = BatchHeader::parse(&bytes);
        }

        #[test]
        fn mutated_resigned_batches_never_panic(idx in 61usize..200, val in any::<u8>(), cut in 61usize..200) {
            let mut bytes = two_record_batch();
            let i = idx % bytes.len();
            bytes[i] = val;
            let cut = cut.min(bytes.len());
            let mut bytes = bytes[..cut].to_vec();
            let len = (bytes.len() - LOG_OVERHEAD) as i32;
            bytes[8..12].copy_from_slice(&len.to_be_bytes());
            resign(&mut bytes);
            let _ = decode_records(&bytes);
        }

        #[test]
        fn built_batches_round_trip(recs in proptest::collection::vec(
            (any::<i32>(), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
             proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
             proptest::collection::vec(("[a-c]{0,3}", proptest::option::of(proptest::collection::vec(any::<u8>(), 0..5))), 0..4)),
            1..8)) {
            let mut b = BatchBuilder::new(10_000);
            for (ts, k, v, hs) in &recs {
                let hs: Vec<(&str, Option<&[u8]>)> = hs.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
                b.push(10_000 + *ts as i64, k.as_deref(), v.as_deref(), &hs);
            }
            let bytes = b.build();
            prop_assert_eq!(bytes.len(), b.size_bytes());
            let decoded = decode_records(&bytes).expect("round trip");
            prop_assert_eq!(decoded.len(), recs.len());
            for (i, (r, (ts, k, v, hs))) in decoded.iter().zip(&recs).enumerate() {
                prop_assert_eq!(r.offset, i as i64);
                prop_assert_eq!(r.timestamp, 10_000 + *ts as i64);
                prop_assert_eq!(&r.key, k);
                prop_assert_eq!(&r.value, v);
                prop_assert_eq!(&r.headers, hs);
            }
        }
    }
}
