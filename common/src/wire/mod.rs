//! The Gatehouse wire protocol: length-prefixed frames and the messages they carry. Pure: bytes
//! in, typed values or typed errors out; never panics on any input.
//!
//! - [`frame`]: the 4-byte big-endian length prefix and the frame cap.
//! - [`msg`]: handshake messages (plaintext) and session messages (sealed by `crypto::seal`).
//! - [`probe`]: the UDP probe and its reply.
//! - [`reader`]: the bounds-checked reader every decoder uses.
//!
//! docs/PROTOCOL.md is the normative description; keep the two in step.

pub mod frame;
pub mod msg;
pub mod probe;
pub mod reader;

pub use frame::{decode_frame, encode_frame, FrameError};
pub use msg::{
    AuthenticateRequest, AuthorizeRequest, ClientFinish, ClientHello, Goodbye, Handshake, Request,
    Response, ServerHello, Session, WireError,
};
pub use probe::{LoadReport, Probe, ProbeReply};
pub use reader::DecodeError;

/// Protocol versions this build speaks, highest first.
pub const SUPPORTED_VERSIONS: &[u16] = &[1];
