//! Handshake and session messages: the types and their byte encoding (docs/PROTOCOL.md,
//! "Message encoding"). Each message is a tag byte then its fields, big-endian, strings as a
//! u16 byte length plus UTF-8.
//!
//! Pure. The agent and the replica call `encode` to build a frame payload (which the crypto
//! module then seals, for session messages) and `decode` on a frame payload (after opening it).
//!
//! Limits: `encode` returns `Result` and refuses any value the decoder would reject (an
//! over-long string, an empty host, too many versions or cipher suites), leaving `out` unchanged, because
//! fields are public and some come from users (PAM user names, passwords). The one exception
//! is [`WireError`]: it is sent on failure paths that must not themselves fail, so its
//! encoding never fails — its message is truncated to [`MAX_MESSAGE_LEN`] bytes on a char
//! boundary and its version list to the first [`MAX_VERSIONS`] entries.

mod codec;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ciphers;

use crate::crypto::suite::CipherSuite;
use crate::identity::{GroupEntry, Lookup, PasswdEntry};
use crate::types::{DenyReason, ErrorCode, GoodbyeReason, Method, PasswordAging};
use crate::wire::password_change::{ChangeOutcome, ChangePasswordRequest};
use crate::wire::reader::{DecodeError, Reader};
use crate::wire::writer::EncodeError;
use std::sync::Arc;

/// Length of handshake nonces, bytes.
pub const NONCE_LEN: usize = 32;
/// Length of handshake proofs (HMAC-SHA256), bytes.
pub const PROOF_LEN: usize = 32;

/// Longest host name, bytes (default 255): the DNS limit on a full name.
pub const MAX_HOST_LEN: usize = 255;
/// Longest user name, bytes (default 255): above any Unix login-name limit (32 on Linux).
pub const MAX_USER_LEN: usize = 255;
/// Longest password, bytes (default 1024): generous for passphrases, yet bounds the argon2
/// input an unauthenticated-looking request can make the server hash.
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Longest access-route text in an `Allow` response, bytes (default 1024): routes are short
/// rule strings quoted for the audit log.
pub const MAX_ROUTE_LEN: usize = 1024;
/// Longest human-readable message in a [`WireError`], bytes (default 256): enough for a
/// sentence of detail, small enough to send on any failure path.
pub const MAX_MESSAGE_LEN: usize = 256;
/// Most protocol versions in a hello or an error (default 16): far more than will ever be
/// live at once, and keeps the version-list scan trivially bounded.
pub const MAX_VERSIONS: usize = 16;
/// Most cipher-suite codes in a ClientHello (default 8), counting codes this build does not
/// know: room for every suite the protocol will plausibly define, and keeps the offer scan
/// trivially bounded.
pub const MAX_CIPHERS: usize = 8;

/// Message tags (first byte of every message).
pub mod tag {
    pub const CLIENT_HELLO: u8 = 0x01;
    pub const SERVER_HELLO: u8 = 0x02;
    pub const CLIENT_FINISH: u8 = 0x03;
    pub const HANDSHAKE_ERROR: u8 = 0x0F;
    pub const REQUEST: u8 = 0x10;
    pub const RESPONSE: u8 = 0x11;
    pub const GOODBYE: u8 = 0x12;
    pub const SESSION_ERROR: u8 = 0x1F;
    pub const REPLICATION: u8 = 0x20;
}

/// First message, agent → server, plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// Protocol versions the agent speaks (at most 16).
    pub versions: Vec<u16>,
    /// The registered host name of the agent (1..=255 bytes UTF-8).
    pub host: String,
    /// Fresh random nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Cipher suites the agent offers, most preferred first (1..=8 codes on the wire). The
    /// decoder skips codes this build does not know, so that a newer agent offering a future
    /// suite still reaches an older server; this list may therefore be empty after decoding
    /// (the server answers `UnsupportedCipher`), though the encoder refuses an empty one.
    pub ciphers: Vec<CipherSuite>,
}

/// Server → agent, plaintext: the chosen version and cipher suite and the server's proof of
/// the node key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    pub version: u16,
    pub nonce: [u8; NONCE_LEN],
    pub proof: [u8; PROOF_LEN],
    /// The suite that seals the session, one the agent offered.
    pub cipher: CipherSuite,
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

/// authorize(method, from host, from user, to user, to host). `S` is `String` for a request
/// that is kept (queued, retried); `&str` for one read in place from a frame ([`RequestView`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorizeRequest<S = String> {
    pub method: Method,
    pub from_host: S,
    pub from_user: S,
    pub to_user: S,
    pub to_host: S,
}

/// authenticate(user, password, host); `S` as for [`AuthorizeRequest`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthenticateRequest<S = String> {
    pub user: S,
    pub password: S,
    pub host: S,
}

/// Never prints the password: requests travel through logs, panics and test failures in
/// `{:?}` form (an `Outcome` hands the request back to its caller).
impl<S: std::fmt::Debug> std::fmt::Debug for AuthenticateRequest<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticateRequest")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("host", &self.host)
            .finish()
    }
}

/// A request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<S = String> {
    Authorize(AuthorizeRequest<S>),
    Authenticate(AuthenticateRequest<S>),
    /// A Unix identity lookup (NSS on the agent's host).
    Lookup(Lookup<S>),
    /// A user's own password change (`wire::password_change`).
    ChangePassword(ChangePasswordRequest<S>),
}

/// A request whose strings borrow from the frame it was read from: a server answers it
/// without allocating, and copies it ([`RequestView::into_owned`]) only to queue it.
pub type RequestView<'a> = Request<&'a str>;

impl Request {
    /// Overwrites an authenticate request's password with zeros (and empties it): for the
    /// last holder of a request, once the password has been checked or sent.
    pub fn wipe_password(&mut self) {
        match self {
            Request::Authenticate(r) => zeroize::Zeroize::zeroize(&mut r.password),
            Request::ChangePassword(r) => r.wipe(),
            Request::Authorize(_) | Request::Lookup(_) => {}
        }
    }

    /// The same request, borrowed.
    pub fn view(&self) -> RequestView<'_> {
        match self {
            Request::Authorize(r) => Request::Authorize(AuthorizeRequest {
                method: r.method,
                from_host: &r.from_host,
                from_user: &r.from_user,
                to_user: &r.to_user,
                to_host: &r.to_host,
            }),
            Request::Authenticate(r) => Request::Authenticate(AuthenticateRequest {
                user: &r.user,
                password: &r.password,
                host: &r.host,
            }),
            Request::Lookup(l) => Request::Lookup(l.view()),
            Request::ChangePassword(r) => Request::ChangePassword(r.view()),
        }
    }
}

impl RequestView<'_> {
    /// A copy that owns its strings, to outlive the frame.
    pub fn into_owned(self) -> Request {
        match self {
            Request::Authorize(r) => Request::Authorize(AuthorizeRequest {
                method: r.method,
                from_host: r.from_host.to_owned(),
                from_user: r.from_user.to_owned(),
                to_user: r.to_user.to_owned(),
                to_host: r.to_host.to_owned(),
            }),
            Request::Authenticate(r) => Request::Authenticate(AuthenticateRequest {
                user: r.user.to_owned(),
                password: r.password.to_owned(),
                host: r.host.to_owned(),
            }),
            Request::Lookup(l) => Request::Lookup(l.into_owned()),
            Request::ChangePassword(r) => Request::ChangePassword(r.to_owned()),
        }
    }
}

/// A response body, matched to its request by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Access granted; `route` is the access route that decided it (for the audit log).
    Allow { route: Arc<str> },
    /// Access denied.
    Deny { reason: DenyReason },
    /// Password verified.
    AuthOk,
    /// Password verified, and it has expired or expires soon: sent only after a correct
    /// password (a wrong one is `AuthFail` whatever the account's age), so it tells nothing to
    /// anyone without the password.
    AuthOkAging(PasswordAging),
    /// Password not verified: one answer whatever the reason (unknown user, wrong password,
    /// locked account, a host that may not ask), so an agent — or a thief of its key — learns
    /// nothing about accounts. The server logs the detailed reason.
    AuthFail,
    /// The request was not processed (busy, shutting down, internal): see the code.
    Error(WireError),
    /// A user's Unix identity (shared with the compiled policy: answering costs no copy).
    User(Arc<PasswdEntry>),
    /// A Unix group.
    Group(Arc<GroupEntry>),
    /// The gids of the Unix groups a user is a member of.
    Groups(Arc<[u32]>),
    /// No such identity (or the user has no Unix identity).
    NotFound,
    /// How a [`Request::ChangePassword`] ended.
    PasswordChange(ChangeOutcome),
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
    /// A replication-link message between a replica and its master (opaque here: the bytes
    /// are a `gatehouse_common::repl::ReplMessage`). Never valid on an agent connection.
    Replication(Vec<u8>),
}

impl WireError {
    /// An error with no version list and no estimate. The message is truncated to
    /// [`MAX_MESSAGE_LEN`] bytes on a char boundary, as the encoder would.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        let keep = crate::wire::writer::truncate_utf8(&message, MAX_MESSAGE_LEN).len();
        message.truncate(keep);
        Self {
            code,
            message,
            versions: Vec::new(),
            estimate_us: 0,
        }
    }

    /// `UnsupportedVersion`, listing the versions we speak (at most [`MAX_VERSIONS`] are sent).
    pub fn unsupported_version(versions: &[u16]) -> Self {
        Self {
            versions: versions.iter().copied().take(MAX_VERSIONS).collect(),
            ..Self::new(
                ErrorCode::UnsupportedVersion,
                "no protocol version in common",
            )
        }
    }

    /// `Busy`, carrying the server's estimated wait in microseconds.
    pub fn busy(estimate_us: u64) -> Self {
        Self {
            estimate_us,
            ..Self::new(ErrorCode::Busy, "server busy")
        }
    }
}

impl Handshake {
    /// Appends the encoded message (no frame prefix) to `out`. On error (a field over its
    /// limit, an empty host or version list) `out` is left unchanged.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        codec::encode_handshake(self, out).inspect_err(|_| out.truncate(start))
    }

    /// Decodes one message; rejects unknown tags, bad lengths and trailing bytes. Unknown
    /// cipher-suite codes in a ClientHello are skipped, not rejected (see [`ClientHello`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let msg = codec::decode_handshake(&mut r)?;
        r.finish()?;
        Ok(msg)
    }
}

impl Session {
    /// Appends the encoded message (no frame prefix, not sealed) to `out`. On error (a field
    /// over its limit) `out` is left unchanged.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        codec::encode_session(self, out).inspect_err(|_| out.truncate(start))
    }

    /// Appends the encoding of `Session::Request { id, body }` without owning `body` (an agent
    /// keeps its request to retry it). On error `out` is left unchanged.
    pub fn encode_request(id: u32, body: &Request, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        codec::encode_request(id, body, out).inspect_err(|_| out.truncate(start))
    }

    /// Decodes one message; rejects unknown tags, bad lengths and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let msg = codec::decode_session(&mut r)?;
        r.finish()?;
        Ok(msg)
    }

    /// Like [`Session::decode`], but a request borrows its strings from `bytes`: what a
    /// server answering many requests per second uses, so a request costs no allocation.
    pub fn decode_view(bytes: &[u8]) -> Result<SessionView<'_>, DecodeError> {
        let mut r = Reader::new(bytes);
        let msg = codec::decode_session_view(&mut r)?;
        r.finish()?;
        Ok(msg)
    }
}

/// A session message decoded in place ([`Session::decode_view`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionView<'a> {
    Request {
        id: u32,
        body: RequestView<'a>,
    },
    /// Any other message, decoded whole.
    Other(Session),
}
