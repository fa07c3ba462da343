//! The Gatehouse wire protocol: length-prefixed frames and the messages they carry. Pure: bytes
//! in, typed values or typed errors out; never panics on any input.
//!
//! - [`aging`]: a password's age after a correct password (shared with the local protocol).
//! - [`frame`]: the 4-byte big-endian length prefix and the frame cap.
//! - [`identity`]: identity lookups and answers (shared with the agent's local protocol).
//! - [`msg`]: handshake messages (plaintext) and session messages (sealed by `crypto::seal`).
//! - [`password_change`]: a user's own password change, shared with the replication link
//!   and the local protocol.
//! - [`probe`]: the UDP probe and its reply.
//! - [`reader`]: the bounds-checked reader every decoder uses.
//! - [`writer`]: string encoding helpers and [`EncodeError`].
//!
//! docs/PROTOCOL.md is the normative description; keep the two in step.

pub mod aging;
pub mod frame;
pub mod identity;
pub mod msg;
pub mod password_change;
pub mod probe;
pub mod reader;
#[cfg(test)]
pub(crate) mod strategies;
pub mod writer;

pub use frame::{
    decode_frame, encode_frame, FrameError, FRAME_HEADER_LEN, MAX_FRAME_LEN,
    MAX_HANDSHAKE_FRAME_LEN,
};
pub use msg::{
    AuthenticateRequest, AuthorizeRequest, ClientFinish, ClientHello, Goodbye, Handshake, Request,
    RequestView, Response, ServerHello, Session, SessionView, WireError, MAX_CIPHERS, MAX_HOST_LEN,
    MAX_MESSAGE_LEN, MAX_PASSWORD_LEN, MAX_ROUTE_LEN, MAX_USER_LEN, MAX_VERSIONS, NONCE_LEN,
    PROOF_LEN,
};
pub use password_change::{ChangeOutcome, ChangePasswordRequest};
pub use probe::{
    unix_ms, LoadReport, Probe, ProbeReply, PROBE_MAX_DATAGRAM, PROBE_MIN_DATAGRAM,
    PROBE_REPLY_DATAGRAM_LEN, PROBE_TAG_LEN,
};
pub use reader::{DecodeError, Reader};
pub use writer::EncodeError;

/// Protocol versions this build speaks, highest first.
pub const SUPPORTED_VERSIONS: &[u16] = &[1];
