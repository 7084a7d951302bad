//! Kafka framing: a 4-byte big-endian size, then that many bytes (request or response header + body).
//!
//! Pure: the async reading and writing lives in [`crate::rt`]. A frame whose declared size exceeds the limit
//! (`socket.request.max.bytes`, default 100 MiB) is refused before anything is allocated for it.

use bytes::{Buf, Bytes, BytesMut};

/// Kafka's `socket.request.max.bytes` default.
pub const SOCKET_REQUEST_MAX_BYTES: usize = 104_857_600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds the limit of {max} bytes (socket.request.max.bytes)")]
    TooLarge { size: i64, max: usize },
    #[error("frame with negative size {size}")]
    NegativeSize { size: i32 },
}

/// Splits one whole frame off the front of `buf`, if one is there; the size prefix is checked first.
pub fn split_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    check_size(size, max)?;
    let size = size as usize;
    if buf.len() < 4 + size {
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size).freeze()))
}

/// Validates a frame's declared size against `max`.
pub fn check_size(size: i32, max: usize) -> Result<usize, FrameError> {
    if size < 0 {
        return Err(FrameError::NegativeSize { size });
    }
    if size as usize > max {
        return Err(FrameError::TooLarge { size: size as i64, max });
    }
    Ok(size as usize)
}

/// Prefixes `body` with its 4-byte size.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_frame_waits_for_a_whole_frame_and_refuses_oversized_ones() {
        let mut buf = BytesMut::from(&frame(b"hello")[..7]);
        assert_eq!(split_frame(&mut buf, 100), Ok(None));
        buf.extend_from_slice(b"lo");
        assert_eq!(split_frame(&mut buf, 100), Ok(Some(Bytes::from_static(b"hello"))));
        assert!(buf.is_empty());
        let mut big = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        assert!(matches!(split_frame(&mut big, 100), Err(FrameError::TooLarge { .. })));
        let mut neg = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            split_frame(&mut neg, 100),
            Err(FrameError::NegativeSize { .. })
        ));
    }
}
