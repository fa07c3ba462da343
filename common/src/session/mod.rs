//! Connection state machines for the agent ↔ server protocol, one per side. Pure (sans-IO): the
//! caller reads whole frames off the socket (`wire::decode_frame`) and hands each payload in;
//! whatever must be sent is appended to an output buffer the caller owns and writes out.
//! Neither side touches a socket, a clock or a thread; randomness (nonces) is passed in.
//!
//! - [`server::ServerSession`]: used by the bridge for every agent connection.
//! - [`client::ClientSession`]: used by the agent and by the tests' clients.

pub mod client;
pub mod server;

pub use client::{ClientError, ClientEvent, ClientSession};
pub use server::{ServerInput, ServerSession, SessionFailure};

use crate::wire::frame::{encode_frame, MAX_FRAME_LEN};
use crate::wire::msg::Handshake;

/// Appends a plaintext handshake frame. Handshake messages are far below the frame cap (the
/// largest, an error with 16 versions and a 256-byte message, is under 300 bytes).
pub(crate) fn write_handshake(msg: &Handshake, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(128);
    // Only a ClientHello can fail to encode (a host name over 255 bytes); the client checks
    // the host before it gets here. Dropping the frame instead of panicking keeps this total.
    if msg.encode(&mut body).is_ok() {
        let _ = encode_frame(&body, MAX_FRAME_LEN, out);
    }
}

/// Appends a plaintext error frame, for a connection that has no session (refused at the cap).
pub fn write_plain_error(error: &crate::wire::WireError, out: &mut Vec<u8>) {
    write_handshake(&Handshake::Error(error.clone()), out);
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ciphers;
