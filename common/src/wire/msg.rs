//! Handshake and session messages.
//! TODO(codec helper): encode/decode.

use crate::types::{AuthFailure, DenyReason, ErrorCode, GoodbyeReason, Method};
use crate::wire::reader::DecodeError;

/// Length of handshake nonces, bytes.
pub const NONCE_LEN: usize = 32;
/// Length of handshake proofs (HMAC-SHA256), bytes.
pub const PROOF_LEN: usize = 32;

/// First message, agent → server, plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// Protocol versions the agent speaks (at most 16).
    pub versions: Vec<u16>,
    /// The registered host name of the agent (1..=255 bytes UTF-8).
    pub host: String,
    /// Fresh random nonce.
    pub nonce: [u8; NONCE_LEN],
}

/// Server → agent, plaintext: the chosen version and the server's proof of the node key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    pub version: u16,
    pub nonce: [u8; NONCE_LEN],
    pub proof: [u8; PROOF_LEN],
}

/// Agent → server, plaintext: the agent's proof of the node key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFinish {
    pub proof: [u8; PROOF_LEN],
}

/// An error report. Plaintext during the handshake, sealed after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub code: ErrorCode,
    /// Human-readable detail, at most 256 bytes UTF-8.
    pub message: String,
    /// For `UnsupportedVersion`: the versions the server speaks; otherwise empty.
    pub versions: Vec<u16>,
    /// For `Busy`: the server's estimated wait in microseconds; otherwise 0.
    pub estimate_us: u64,
}

/// Messages exchanged in plaintext frames before the session is sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    ClientHello(ClientHello),
    ServerHello(ServerHello),
    ClientFinish(ClientFinish),
    Error(WireError),
}

/// authorize(method, from host, from user, to user, to host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub method: Method,
    pub from_host: String,
    pub from_user: String,
    pub to_user: String,
    pub to_host: String,
}

/// authenticate(user, password, host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticateRequest {
    pub user: String,
    pub password: String,
    pub host: String,
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Authorize(AuthorizeRequest),
    Authenticate(AuthenticateRequest),
}

/// A response body, matched to its request by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Access granted; `route` is the access route that decided it (for the audit log).
    Allow { route: String },
    /// Access denied.
    Deny { reason: DenyReason },
    /// Password verified.
    AuthOk,
    /// Password not verified.
    AuthFail { reason: AuthFailure },
    /// The request was not processed (busy, shutting down, internal): see the code.
    Error(WireError),
}

/// The server is closing a healthy connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Goodbye {
    pub reason: GoodbyeReason,
}

/// Messages carried inside sealed frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Session {
    Request {
        id: u32,
        body: Request,
    },
    Response {
        id: u32,
        body: Response,
    },
    Goodbye(Goodbye),
    /// A connection-level error (the sender closes after it).
    Error(WireError),
}

impl WireError {
    /// An error with a code and a message and no versions or estimate.
    pub fn new(code: ErrorCode, message: &str) -> Self {
        WireError {
            code,
            message: message.to_string(),
            versions: Vec::new(),
            estimate_us: 0,
        }
    }
}

impl Handshake {
    /// Appends the encoded message (no frame prefix) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let _ = out;
        todo!()
    }

    /// Decodes one message; rejects unknown tags, bad lengths and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let _ = bytes;
        todo!()
    }
}

impl Session {
    /// Appends the encoded message (no frame prefix, not sealed) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let _ = out;
        todo!()
    }

    /// Decodes one message; rejects unknown tags, bad lengths and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let _ = bytes;
        todo!()
    }
}
