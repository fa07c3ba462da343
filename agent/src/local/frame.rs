//! Local frames: a u32 big-endian length, then that many bytes of RON text. Pure: bytes in,
//! messages out; the daemon and the blocking client do the reading and writing.
//!
//! A declared length over the cap is refused as soon as the 4-byte prefix has arrived, so a
//! caller can never make the daemon buffer more than one capped frame.

use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroize;

/// Length prefix, bytes.
pub const LEN_PREFIX: usize = 4;
/// Largest request frame the daemon accepts (16 KiB). Why: the largest valid request is an
/// authenticate with a 1024-byte password and 255-byte names, well under 2 KiB of RON; the
/// cap bounds what any local caller can make the daemon hold.
pub const MAX_REQUEST_FRAME: usize = 16 * 1024;
/// Largest response frame the client accepts (1 MiB). Why: a status report lists every
/// server (up to `config::MAX_SERVERS` = 1024, ~200 bytes each); the daemon is trusted, the
/// cap only stops a broken peer from exhausting the CLI's memory.
pub const MAX_RESPONSE_FRAME: usize = 1024 * 1024;
/// Longest parse-error detail kept in a [`FrameError`] (200 bytes): enough to say where the
/// RON went wrong without echoing a caller's garbage back at length.
pub const MAX_ERROR_DETAIL: usize = 200;

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {len} is over the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("empty frame")]
    Empty,
    #[error("frame is not UTF-8 text")]
    NotUtf8,
    #[error("frame is not a valid message: {0}")]
    BadRon(String),
}

/// A frame holding `msg`, refused if longer than `max` bytes of RON.
pub fn encode<T: Serialize>(msg: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let text = ron::to_string(msg).map_err(|e| FrameError::BadRon(detail(&e.to_string())))?;
    let len = text.len();
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let prefix = u32::try_from(len).map_err(|_| FrameError::TooLarge { len, max })?;
    let mut out = Vec::with_capacity(LEN_PREFIX + len);
    out.extend_from_slice(&prefix.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    Ok(out)
}

/// The message in a frame body (the bytes after the prefix).
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    if body.is_empty() {
        return Err(FrameError::Empty);
    }
    let text = std::str::from_utf8(body).map_err(|_| FrameError::NotUtf8)?;
    ron::from_str(text).map_err(|e| FrameError::BadRon(detail(&e.to_string())))
}

/// The length a 4-byte prefix declares, checked against `max`.
pub fn declared_len(prefix: [u8; LEN_PREFIX], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

fn detail(text: &str) -> String {
    let mut end = text.len().min(MAX_ERROR_DETAIL);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Bytes received on a stream, cut into frames.
#[derive(Debug)]
pub struct FrameBuf {
    buf: Vec<u8>,
    max: usize,
}

impl FrameBuf {
    /// An empty buffer for frames of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameBuf {
            buf: Vec::new(),
            max,
        }
    }

    /// Appends received bytes. Frames carry passwords, so a buffer that must grow is copied
    /// into a larger one and the old one wiped, never left to the allocator as it was.
    pub fn push(&mut self, bytes: &[u8]) {
        let needed = self.buf.len().saturating_add(bytes.len());
        if needed > self.buf.capacity() {
            let mut grown = Vec::with_capacity(needed.max(self.buf.capacity().saturating_mul(2)));
            grown.extend_from_slice(&self.buf);
            self.buf.zeroize();
            self.buf = grown;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held (a partial frame, or frames not taken yet).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The next complete message, `Ok(None)` if more bytes are needed. After an error the
    /// stream is out of step and must be dropped.
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        let Some(prefix) = self.buf.first_chunk::<LEN_PREFIX>() else {
            return Ok(None);
        };
        let len = declared_len(*prefix, self.max)?;
        let Some(body) = self.buf.get(LEN_PREFIX..LEN_PREFIX + len) else {
            return Ok(None);
        };
        let msg = decode_body(body);
        if let Some(taken) = self.buf.get_mut(..LEN_PREFIX + len) {
            taken.zeroize();
        }
        self.buf.drain(..LEN_PREFIX + len);
        msg.map(Some)
    }
}

impl Drop for FrameBuf {
    fn drop(&mut self) {
        // Vec's zeroize wipes the whole capacity, including bytes left behind by drains.
        self.buf.zeroize();
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
