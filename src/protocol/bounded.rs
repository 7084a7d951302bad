//! Bounded validation of untrusted request bytes, before `kafka-protocol` decodes them.
//!
//! `kafka-protocol` 0.18 preallocates arrays and byte strings from the lengths it reads: a 4-byte Metadata
//! body `7f ff ff ff` makes it ask for 154 GB and abort the process (FIELD-NOTES). So every request body is
//! first walked here against a small schema of exactly the version we advertise (taken from Kafka's
//! `clients/src/main/resources/common/message/*.json`): every array count and string/bytes length is checked
//! against the bytes that remain, and every element is walked, so what `decode` later allocates is bounded
//! by the frame's size (itself capped by `socket.request.max.bytes`).

use std::fmt;

/// The wire type of one field (Kafka's message-spec types).
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Int8,
    Int16,
    Int32,
    Int64,
    Uint16,
    /// A zig-zag varint (int32).
    Varint,
    Uuid,
    Bool,
    Float64,
    String,
    NullableString,
    Bytes,
    NullableBytes,
    /// A record set: nullable bytes whose contents the log validates (CRC, lengths) later.
    Records,
    /// An array (int32 count, or compact varint count + 1 in flexible versions).
    Array {
        elem: Box<Kind>,
        nullable: bool,
    },
    Struct(Schema),
}

/// One named field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
}

/// A struct: its fields in order and, in flexible versions, the tagged fields it knows (others are skipped).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schema {
    pub fields: Vec<Field>,
    pub tagged: Vec<(u32, Field)>,
}

impl Schema {
    pub fn new(fields: Vec<Field>) -> Self {
        Self {
            fields,
            tagged: Vec::new(),
        }
    }

    pub fn with_tagged(mut self, tag: u32, field: Field) -> Self {
        self.tagged.push((tag, field));
        self
    }
}

pub fn field(name: &'static str, kind: Kind) -> Field {
    Field { name, kind }
}

pub fn array_of(elem: Kind) -> Kind {
    Kind::Array {
        elem: Box::new(elem),
        nullable: false,
    }
}

pub fn array_of_structs(fields: Vec<Field>) -> Kind {
    array_of(Kind::Struct(Schema::new(fields)))
}

/// Where and why a body failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Byte offset inside the validated buffer.
    pub at_byte: usize,
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.at_byte, self.what)
    }
}

/// Walks `buf` against `schema`; returns the number of bytes the struct occupies.
/// `flexible` selects compact lengths and tagged-field sections (KIP-482).
pub fn validate(buf: &[u8], schema: &Schema, flexible: bool) -> Result<usize, Violation> {
    let mut walker = Walker {
        buf,
        pos: 0,
        flexible,
        path: Vec::new(),
    };
    walker.walk_struct(schema)?;
    Ok(walker.pos)
}

struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
    flexible: bool,
    path: Vec<&'static str>,
}

impl<'a> Walker<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn fail<T>(&self, at_byte: usize, what: impl fmt::Display) -> Result<T, Violation> {
        Err(Violation {
            at_byte,
            what: format!("{}: {what}", self.path.join(".")),
        })
    }

    fn skip(&mut self, n: usize, what: &str) -> Result<(), Violation> {
        if n > self.remaining() {
            return self.fail(self.pos, format!("{what} needs {n} bytes, {} remain", self.remaining()));
        }
        self.pos += n;
        Ok(())
    }

    fn int(&mut self, n: usize) -> Result<i64, Violation> {
        let at = self.pos;
        self.skip(n, "integer")?;
        Ok(self.buf[at..at + n]
            .iter()
            .fold(0i64, |acc, b| (acc << 8) | i64::from(*b)))
    }

    fn unsigned_varint(&mut self) -> Result<u32, Violation> {
        let at = self.pos;
        let mut value: u32 = 0;
        for i in 0..5 {
            let Some(&b) = self.buf.get(self.pos) else {
                return self.fail(at, "varint runs past the end");
            };
            self.pos += 1;
            if i == 4 && b > 0x0f {
                return self.fail(at, "varint longer than 32 bits");
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        self.fail(at, "varint longer than 5 bytes")
    }

    /// A length: int16/int32 (−1 = null) or compact varint (0 = null). `None` for null.
    fn length(&mut self, classic_bytes: usize) -> Result<Option<usize>, Violation> {
        let at = self.pos;
        let n: i64 = if self.flexible {
            i64::from(self.unsigned_varint()?) - 1
        } else if classic_bytes == 2 {
            i64::from(self.int(2)? as u16 as i16)
        } else {
            i64::from(self.int(4)? as u32 as i32)
        };
        match n {
            -1 => Ok(None),
            n if n < 0 => self.fail(at, format!("negative length {n}")),
            n => Ok(Some(n as usize)),
        }
    }

    fn sized(&mut self, classic_bytes: usize, nullable: bool, what: &str) -> Result<(), Violation> {
        let at = self.pos;
        match self.length(classic_bytes)? {
            None if nullable => Ok(()),
            None => self.fail(at, format!("null {what} where it is not nullable")),
            Some(n) if n > self.remaining() => self.fail(
                at,
                format!("{what} length {n} exceeds the {} bytes remaining", self.remaining()),
            ),
            Some(n) => self.skip(n, what),
        }
    }

    fn walk_struct(&mut self, schema: &Schema) -> Result<(), Violation> {
        for f in &schema.fields {
            self.path.push(f.name);
            self.walk(&f.kind)?;
            self.path.pop();
        }
        if self.flexible {
            self.walk_tagged(schema)?;
        }
        Ok(())
    }

    fn walk_tagged(&mut self, schema: &Schema) -> Result<(), Violation> {
        let at = self.pos;
        let count = self.unsigned_varint()? as usize;
        // Each tagged field takes at least 2 bytes (tag, size).
        if count > self.remaining() / 2 {
            return self.fail(at, format!("{count} tagged fields in {} bytes", self.remaining()));
        }
        let mut last_tag: Option<u32> = None;
        for _ in 0..count {
            let tag_at = self.pos;
            let tag = self.unsigned_varint()?;
            if last_tag.is_some_and(|last| tag <= last) {
                return self.fail(tag_at, format!("tag {tag} out of order"));
            }
            last_tag = Some(tag);
            let size = self.unsigned_varint()? as usize;
            if size > self.remaining() {
                return self.fail(
                    tag_at,
                    format!("tag {tag} size {size} exceeds {} bytes", self.remaining()),
                );
            }
            match schema.tagged.iter().find(|(t, _)| *t == tag) {
                Some((_, f)) => self.walk_known_tag(f, size)?,
                None => self.pos += size,
            }
        }
        Ok(())
    }

    fn walk_known_tag(&mut self, f: &Field, size: usize) -> Result<(), Violation> {
        let start = self.pos;
        let inner = &self.buf[..start + size];
        let mut sub = Walker {
            buf: inner,
            pos: start,
            flexible: self.flexible,
            path: self.path.clone(),
        };
        sub.path.push(f.name);
        sub.walk(&f.kind)?;
        if sub.pos != start + size {
            return self.fail(
                start,
                format!("tagged field {} used {} of {size} bytes", f.name, sub.pos - start),
            );
        }
        self.pos = start + size;
        Ok(())
    }

    fn walk(&mut self, kind: &Kind) -> Result<(), Violation> {
        match kind {
            Kind::Int8 | Kind::Bool => self.skip(1, "int8"),
            Kind::Int16 | Kind::Uint16 => self.skip(2, "int16"),
            Kind::Int32 => self.skip(4, "int32"),
            Kind::Int64 | Kind::Float64 => self.skip(8, "int64"),
            Kind::Uuid => self.skip(16, "uuid"),
            Kind::Varint => self.unsigned_varint().map(|_| ()),
            Kind::String => self.sized(2, false, "string"),
            Kind::NullableString => self.sized(2, true, "string"),
            Kind::Bytes => self.sized(4, false, "bytes"),
            Kind::NullableBytes | Kind::Records => self.sized(4, true, "bytes"),
            Kind::Array { elem, nullable } => self.walk_array(elem, *nullable),
            Kind::Struct(schema) => self.walk_struct(schema),
        }
    }

    fn walk_array(&mut self, elem: &Kind, nullable: bool) -> Result<(), Violation> {
        let at = self.pos;
        let count = match self.length(4)? {
            None if nullable => return Ok(()),
            None => return self.fail(at, "null array where it is not nullable"),
            Some(n) => n,
        };
        let min = min_size(elem, self.flexible).max(1);
        if count > self.remaining() / min {
            return self.fail(
                at,
                format!(
                    "array count {count} exceeds the {} bytes remaining ({min} bytes an element at least)",
                    self.remaining()
                ),
            );
        }
        for _ in 0..count {
            self.walk(elem)?;
        }
        Ok(())
    }
}

/// The fewest bytes a value of `kind` can take on the wire.
pub fn min_size(kind: &Kind, flexible: bool) -> usize {
    let len_bytes = |classic: usize| if flexible { 1 } else { classic };
    match kind {
        Kind::Int8 | Kind::Bool | Kind::Varint => 1,
        Kind::Int16 | Kind::Uint16 => 2,
        Kind::Int32 => 4,
        Kind::Int64 | Kind::Float64 => 8,
        Kind::Uuid => 16,
        Kind::String | Kind::NullableString => len_bytes(2),
        Kind::Bytes | Kind::NullableBytes | Kind::Records | Kind::Array { .. } => len_bytes(4),
        Kind::Struct(s) => s.fields.iter().map(|f| min_size(&f.kind, flexible)).sum::<usize>() + usize::from(flexible),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics_schema() -> Schema {
        Schema::new(vec![field(
            "topics",
            array_of_structs(vec![field("name", Kind::String)]),
        )])
    }

    #[test]
    fn a_huge_array_count_is_refused_before_any_element_is_walked() {
        let v = validate(&[0x7f, 0xff, 0xff, 0xff], &topics_schema(), false).unwrap_err();
        assert_eq!(v.at_byte, 0);
        assert!(v.what.contains("array count 2147483647"), "{v}");
        let v = validate(&[0xff, 0xff, 0xff, 0xff, 0x07], &topics_schema(), true).unwrap_err();
        assert!(v.what.contains("array count"), "{v}");
    }

    #[test]
    fn strings_and_tagged_fields_are_checked_against_the_remaining_bytes() {
        // one topic, name length 5 but only 2 bytes follow
        let v = validate(&[0, 0, 0, 1, 0, 5, b'a', b'b'], &topics_schema(), false).unwrap_err();
        assert_eq!(v.at_byte, 4);
        assert!(v.what.contains("topics.name"), "{v}");
        // flexible: one topic "ab", topic tags: none, top tags: one tag of size 9 with 1 byte left
        let v = validate(&[2, 3, b'a', b'b', 0, 1, 7, 9, 0], &topics_schema(), true).unwrap_err();
        assert!(v.what.contains("tag 7 size 9"), "{v}");
        assert_eq!(
            validate(&[2, 3, b'a', b'b', 0, 1, 7, 1, 0], &topics_schema(), true),
            Ok(9)
        );
    }

    #[test]
    fn known_tagged_fields_are_walked_inside_their_declared_size() {
        let schema = Schema::new(vec![]).with_tagged(0, field("cluster_id", Kind::NullableString));
        assert_eq!(validate(&[1, 0, 3, 3, b'a', b'b'], &schema, true), Ok(6));
        // the string claims 5 bytes inside a 3-byte tagged field
        assert!(validate(&[1, 0, 3, 6, b'a', b'b', 0, 0, 0, 0], &schema, true).is_err());
        // the field uses less than its declared size
        assert!(validate(&[1, 0, 3, 0, 0, 0], &schema, true).is_err());
    }

    #[test]
    fn overlong_varints_are_malformed() {
        let schema = Schema::new(vec![field("v", Kind::Varint)]);
        assert!(validate(&[0xff, 0xff, 0xff, 0xff, 0x7f], &schema, false).is_err());
        assert!(validate(&[0x80], &schema, false).is_err());
        assert_eq!(validate(&[0xff, 0xff, 0xff, 0xff, 0x0f], &schema, false), Ok(5));
    }
}
