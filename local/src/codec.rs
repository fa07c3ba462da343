//! Bytes ↔ local messages (docs/AGENT.md, "The local protocol"). Pure; never panics on any
//! input. Both ends are bounded: a length prefix over the reader's cap is refused from the four
//! prefix bytes alone, every field has its limit, and trailing bytes are an error.
//!
//! ```text
//! frame = length:u32  body:[length]
//! body  = version:u8 (= 1)  kind:u8  fields
//! ```

use super::{LocalErrorKind, LocalRequest, LocalResponse, StatusReport, VERSION};
use gatehouse_common::types::{DenyReason, Method};
use gatehouse_common::wire::aging::{put_aging, read_aging};
use gatehouse_common::wire::identity::{
    put_gids, put_group, put_lookup, put_passwd, read_gids, read_group, read_lookup, read_passwd,
};
use gatehouse_common::wire::password_change::{put_outcome, read_outcome};
use gatehouse_common::wire::writer::put_string;
use gatehouse_common::wire::{
    DecodeError, EncodeError, Reader, MAX_HOST_LEN, MAX_PASSWORD_LEN, MAX_ROUTE_LEN, MAX_USER_LEN,
};
use zeroize::{Zeroize, Zeroizing};

/// Length prefix, bytes.
pub const LEN_PREFIX: usize = 4;
/// Largest request body the agent reads (4 KiB). Why: the largest valid request, a password
/// change with two 1024-byte passwords and a 255-byte name, is 2,311 bytes; the cap bounds
/// what any local program can make the agent hold.
pub const MAX_REQUEST_FRAME: usize = 4096;
/// Largest answer body a module reads (64 KiB). Why: the largest valid answer but a status is
/// a 1024-member group (34,858 bytes); a caller's memory stays bounded even with a broken peer.
pub const MAX_ANSWER_FRAME: usize = 64 * 1024;
/// Largest status answer body the CLI reads (1 MiB). Why: a status lists every configured
/// server (up to 1024, ~200 bytes each).
pub const MAX_STATUS_FRAME: usize = 1024 * 1024;
/// Longest `server` text in a decision and `message` in an error, bytes (256): a sentence.
/// The encoder cuts longer text on a character boundary rather than fail on a reply path.
pub const MAX_TEXT_LEN: usize = 256;

/// Request kinds (1, 2, lookups 3-7 as on the server wire, 8, 9 as on the server wire).
const REQ_AUTHORIZE: u8 = 1;
const REQ_AUTHENTICATE: u8 = 2;
const REQ_STATUS: u8 = 8;
const REQ_CHANGE_PASSWORD: u8 = 9;
/// Answer kinds.
const ANS_ALLOW: u8 = 1;
const ANS_DENY: u8 = 2;
const ANS_AUTH_OK: u8 = 3;
const ANS_AUTH_FAIL: u8 = 4;
const ANS_ERROR: u8 = 5;
const ANS_USER: u8 = 6;
const ANS_GROUP: u8 = 7;
const ANS_GROUPS: u8 = 8;
const ANS_NOT_FOUND: u8 = 9;
const ANS_STATUS: u8 = 10;
const ANS_PASSWORD_CHANGE: u8 = 11;
const ANS_AUTH_OK_AGING: u8 = 12;

/// Why bytes are not a valid local message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("frame length {len} is over the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("protocol version {0} is not spoken here (this build speaks version 1)")]
    Version(u8),
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("{0}")]
    Encode(#[from] EncodeError),
    #[error("status report is not valid RON")]
    BadStatus,
}

/// The frame carrying `request` (prefix included); refused if a field breaks its limit. The
/// frame may hold a password: it is wiped when dropped, and written into one allocation sized
/// for the largest request, so no copy is left behind by a growing buffer.
pub fn encode_request(request: &LocalRequest) -> Result<Zeroizing<Vec<u8>>, CodecError> {
    let mut frame = Zeroizing::new(Vec::with_capacity(LEN_PREFIX + MAX_REQUEST_FRAME));
    frame.extend_from_slice(&[0; LEN_PREFIX]);
    frame.push(VERSION);
    let body: &mut Vec<u8> = &mut frame;
    match request {
        LocalRequest::Authorize {
            method,
            from_host,
            from_user,
            to_user,
            to_host,
        } => {
            body.extend_from_slice(&[REQ_AUTHORIZE, method.code()]);
            put_string(body, "from_host", MAX_HOST_LEN, from_host)?;
            put_string(body, "from_user", MAX_USER_LEN, from_user)?;
            put_string(body, "to_user", MAX_USER_LEN, to_user)?;
            put_string(body, "to_host", MAX_HOST_LEN, to_host)?;
        }
        LocalRequest::Authenticate {
            user,
            password,
            host,
        } => {
            body.push(REQ_AUTHENTICATE);
            put_string(body, "user", MAX_USER_LEN, user)?;
            put_string(body, "password", MAX_PASSWORD_LEN, password)?;
            put_string(body, "host", MAX_HOST_LEN, host)?;
        }
        LocalRequest::ChangePassword {
            user,
            old_password,
            new_password,
        } => {
            body.push(REQ_CHANGE_PASSWORD);
            put_string(body, "user", MAX_USER_LEN, user)?;
            put_string(body, "old_password", MAX_PASSWORD_LEN, old_password)?;
            put_string(body, "new_password", MAX_PASSWORD_LEN, new_password)?;
        }
        LocalRequest::Lookup(lookup) => put_lookup(body, lookup)?,
        LocalRequest::Status => body.push(REQ_STATUS),
    }
    // Every request is far below 4 GiB (each field is capped above), so the cast cannot
    // truncate.
    let len = (frame.len() - LEN_PREFIX) as u32;
    if let Some(prefix) = frame.first_chunk_mut::<LEN_PREFIX>() {
        *prefix = len.to_be_bytes();
    }
    Ok(frame)
}

/// The request in a frame body.
pub fn decode_request(body: &[u8]) -> Result<LocalRequest, CodecError> {
    let mut r = versioned(body)?;
    let request = match r.u8()? {
        REQ_AUTHORIZE => {
            let code = r.u8()?;
            LocalRequest::Authorize {
                method: Method::from_code(code).ok_or(unknown("method", code))?,
                from_host: r.string("from_host", MAX_HOST_LEN)?,
                from_user: r.string("from_user", MAX_USER_LEN)?,
                to_user: r.string("to_user", MAX_USER_LEN)?,
                to_host: r.string("to_host", MAX_HOST_LEN)?,
            }
        }
        REQ_AUTHENTICATE => LocalRequest::Authenticate {
            user: r.string("user", MAX_USER_LEN)?,
            // One exact allocation, wiped when the request is dropped.
            password: Zeroizing::new(r.string("password", MAX_PASSWORD_LEN)?),
            host: r.string("host", MAX_HOST_LEN)?,
        },
        REQ_CHANGE_PASSWORD => LocalRequest::ChangePassword {
            user: r.string("user", MAX_USER_LEN)?,
            old_password: Zeroizing::new(r.string("old_password", MAX_PASSWORD_LEN)?),
            new_password: Zeroizing::new(r.string("new_password", MAX_PASSWORD_LEN)?),
        },
        REQ_STATUS => LocalRequest::Status,
        kind => match read_lookup(kind, &mut r)? {
            Some(lookup) => LocalRequest::Lookup(lookup.into_owned()),
            None => return Err(unknown("request kind", kind).into()),
        },
    };
    r.finish()?;
    Ok(request)
}

/// The frame carrying `response`. Never fails: text over [`MAX_TEXT_LEN`] is cut, and an
/// answer that still cannot be encoded becomes a `ServerError` the caller can read.
pub fn encode_response(response: &LocalResponse) -> Vec<u8> {
    let mut body = vec![VERSION];
    match put_response(&mut body, response) {
        Ok(()) => framed(body),
        Err(e) => {
            let fallback = LocalResponse::error(
                LocalErrorKind::ServerError,
                format!("the agent could not encode its answer: {e}"),
            );
            let mut body = vec![VERSION];
            // Cannot fail: an error answer's text is cut to its limit.
            let _ = put_response(&mut body, &fallback);
            framed(body)
        }
    }
}

fn put_response(body: &mut Vec<u8>, response: &LocalResponse) -> Result<(), CodecError> {
    match response {
        LocalResponse::Allow { route, server } => {
            body.push(ANS_ALLOW);
            put_string(body, "route", MAX_ROUTE_LEN, route)?;
            put_text(body, server);
        }
        LocalResponse::Deny { reason, server } => {
            body.extend_from_slice(&[ANS_DENY, reason.code()]);
            put_text(body, server);
        }
        LocalResponse::AuthOk { server } => {
            body.push(ANS_AUTH_OK);
            put_text(body, server);
        }
        LocalResponse::AuthFail { server } => {
            body.push(ANS_AUTH_FAIL);
            put_text(body, server);
        }
        LocalResponse::AuthOkAging { aging, server } => {
            body.push(ANS_AUTH_OK_AGING);
            put_aging(body, *aging);
            put_text(body, server);
        }
        LocalResponse::Error { kind, message } => {
            body.extend_from_slice(&[ANS_ERROR, kind.code()]);
            put_text(body, message);
        }
        LocalResponse::User(entry) => {
            body.push(ANS_USER);
            put_passwd(body, entry)?;
        }
        LocalResponse::Group(entry) => {
            body.push(ANS_GROUP);
            put_group(body, entry)?;
        }
        LocalResponse::Groups(gids) => {
            body.push(ANS_GROUPS);
            put_gids(body, gids)?;
        }
        LocalResponse::NotFound => body.push(ANS_NOT_FOUND),
        LocalResponse::PasswordChange(outcome) => {
            body.push(ANS_PASSWORD_CHANGE);
            put_outcome(body, outcome);
        }
        LocalResponse::Status(report) => {
            let text = ron::to_string(report).map_err(|_| CodecError::BadStatus)?;
            if text.len() > MAX_STATUS_FRAME - 6 {
                return Err(CodecError::TooLarge {
                    len: text.len(),
                    max: MAX_STATUS_FRAME - 6,
                });
            }
            body.push(ANS_STATUS);
            // Checked just above: fits in a u32.
            body.extend_from_slice(&(text.len() as u32).to_be_bytes());
            body.extend_from_slice(text.as_bytes());
        }
    }
    Ok(())
}

/// The answer in a frame body.
pub fn decode_response(body: &[u8]) -> Result<LocalResponse, CodecError> {
    let mut r = versioned(body)?;
    let response = match r.u8()? {
        ANS_ALLOW => LocalResponse::Allow {
            route: r.string("route", MAX_ROUTE_LEN)?,
            server: r.string("server", MAX_TEXT_LEN)?,
        },
        ANS_DENY => {
            let code = r.u8()?;
            LocalResponse::Deny {
                reason: DenyReason::from_code(code).ok_or(unknown("deny reason", code))?,
                server: r.string("server", MAX_TEXT_LEN)?,
            }
        }
        ANS_AUTH_OK => LocalResponse::AuthOk {
            server: r.string("server", MAX_TEXT_LEN)?,
        },
        ANS_AUTH_FAIL => LocalResponse::AuthFail {
            server: r.string("server", MAX_TEXT_LEN)?,
        },
        ANS_AUTH_OK_AGING => LocalResponse::AuthOkAging {
            aging: read_aging(&mut r)?,
            server: r.string("server", MAX_TEXT_LEN)?,
        },
        ANS_ERROR => {
            let code = r.u8()?;
            LocalResponse::Error {
                kind: LocalErrorKind::from_code(code).ok_or(unknown("error kind", code))?,
                message: r.string("message", MAX_TEXT_LEN)?,
            }
        }
        ANS_USER => LocalResponse::User(read_passwd(&mut r)?),
        ANS_GROUP => LocalResponse::Group(read_group(&mut r)?),
        ANS_GROUPS => LocalResponse::Groups(read_gids(&mut r)?),
        ANS_NOT_FOUND => LocalResponse::NotFound,
        ANS_PASSWORD_CHANGE => LocalResponse::PasswordChange(read_outcome(&mut r)?),
        ANS_STATUS => {
            let len = r.u32()? as usize;
            let text = std::str::from_utf8(r.bytes(len)?).map_err(|_| CodecError::BadStatus)?;
            let report: StatusReport = ron::from_str(text).map_err(|_| CodecError::BadStatus)?;
            LocalResponse::Status(Box::new(report))
        }
        kind => return Err(unknown("answer kind", kind).into()),
    };
    r.finish()?;
    Ok(response)
}

/// The body's version, checked; a reader positioned after it.
fn versioned(body: &[u8]) -> Result<Reader<'_>, CodecError> {
    let mut r = Reader::new(body);
    match r.u8()? {
        VERSION => Ok(r),
        other => Err(CodecError::Version(other)),
    }
}

/// The length a 4-byte prefix declares, checked against `max`.
pub fn declared_len(prefix: [u8; LEN_PREFIX], max: usize) -> Result<usize, CodecError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(CodecError::TooLarge { len, max });
    }
    Ok(len)
}

fn framed(body: Vec<u8>) -> Vec<u8> {
    // Every body is far below 4 GiB (checked limits above), so the cast cannot truncate.
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// `server` or `message` text, cut to [`MAX_TEXT_LEN`] on a character boundary.
fn put_text(body: &mut Vec<u8>, text: &str) {
    let mut end = text.len().min(MAX_TEXT_LEN);
    while !text.is_char_boundary(end) {
        end -= 1; // terminates: 0 is a boundary
    }
    // Cannot fail: within the limit.
    let _ = put_string(
        body,
        "text",
        MAX_TEXT_LEN,
        text.get(..end).unwrap_or_default(),
    );
}

fn unknown(field: &'static str, code: u8) -> DecodeError {
    DecodeError::UnknownCode {
        field,
        code: code.into(),
    }
}

/// Bytes received on a non-blocking stream, cut into frame bodies (the agent's side). Frames
/// carry passwords, so every byte it held is wiped: taken frames at once, the rest on drop,
/// and a buffer that must grow is copied into a larger one and the old one wiped, never left
/// to the allocator as it was.
#[derive(Debug)]
pub struct FrameBuf {
    buf: Vec<u8>,
    max: usize,
}

impl FrameBuf {
    /// An empty buffer for bodies of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameBuf {
            buf: Vec::new(),
            max,
        }
    }

    /// Appends received bytes.
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

    /// The next complete body, `Ok(None)` if more bytes are needed. An oversized prefix is an
    /// error as soon as its four bytes are in; the stream is then out of step and must be
    /// dropped.
    pub fn next_body(&mut self) -> Result<Option<Zeroizing<Vec<u8>>>, CodecError> {
        let Some(prefix) = self.buf.first_chunk::<LEN_PREFIX>() else {
            return Ok(None);
        };
        let len = declared_len(*prefix, self.max)?;
        let Some(taken) = self.buf.get_mut(..LEN_PREFIX + len) else {
            return Ok(None);
        };
        let body = Zeroizing::new(taken.get(LEN_PREFIX..).unwrap_or_default().to_vec());
        taken.zeroize();
        self.buf.drain(..LEN_PREFIX + len);
        Ok(Some(body))
    }
}

impl Drop for FrameBuf {
    fn drop(&mut self) {
        // Vec's zeroize wipes the whole capacity, including bytes left behind by drains.
        self.buf.zeroize();
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
