//! The local protocol between the agent daemon and its callers on the same host: the
//! `gatehouse-agent` CLI, `pam_gatehouse.so` and `libnss_gatehouse.so.2`, over the daemon's
//! Unix stream socket. docs/AGENT.md, "The local protocol", is the normative description
//! (precise enough for a C client); the worked examples there are unit tests here.
//!
//! A frame is a u32 big-endian length, then a body: a version byte (1), a kind byte and the
//! fields, big-endian, strings as a u16 length and UTF-8 — the same field encoding as the
//! agent↔server wire (`gatehouse_common::wire`), whose identity codec this crate reuses. One
//! request at a time per connection; the caller sends the next one after reading the answer.
//!
//! - this file: the messages ([`LocalRequest`], [`LocalResponse`]) and status report types;
//! - [`codec`]: bytes ↔ messages, and [`codec::FrameBuf`] for a non-blocking reader (pure);
//! - [`client`]: the blocking caller side (bounded by a timeout, never raises SIGPIPE; it
//!   checks who listens on the socket with `gatehouse_common::os::peer` before sending).

pub mod client;
pub mod codec;
mod status;

pub use gatehouse_common::identity::{GroupEntry, Lookup, PasswdEntry};
pub use status::{ConnectionReport, OfflineReport, ProbeSummary, ServerReport, StatusReport};

pub use gatehouse_common::types::PasswordAging;
pub use gatehouse_common::wire::ChangeOutcome;

use gatehouse_common::types::{DenyReason, Method};
use std::fmt;
use std::time::Duration;
use zeroize::Zeroizing;

/// The protocol version this build speaks (the first byte of every body).
pub const VERSION: u8 = 1;

/// Where the agent's socket is unless configured otherwise.
pub const DEFAULT_SOCKET_PATH: &str = "/run/gatehouse/agent.sock";

/// The longest request deadline an agent's config allows (60 s). Every caller waits longer than
/// this ([`CALLER_TIMEOUT`]), so an agent that is failing over between servers always answers
/// before its caller gives up (the lesson of Kanidm PR #1132: a module timeout shorter than
/// the daemon's budget makes the first login after a server dies fail).
pub const MAX_AGENT_DEADLINE: Duration = Duration::from_secs(60);

/// How long a caller waits for the agent: [`MAX_AGENT_DEADLINE`] plus 5 s. Only a wedged
/// agent runs into it; every agent answers within its own deadline.
pub const CALLER_TIMEOUT: Duration = MAX_AGENT_DEADLINE.saturating_add(Duration::from_secs(5));

/// What a local caller asks.
#[derive(Clone, PartialEq, Eq)]
pub enum LocalRequest {
    /// May `from_user` coming from `from_host` become `to_user` on `to_host` via `method`?
    /// An empty `to_host` means this host (the agent's registered name).
    Authorize {
        method: Method,
        from_host: String,
        from_user: String,
        to_user: String,
        to_host: String,
    },
    /// Is `password` right for `user` logging in on `host` (empty: this host)? The password
    /// is wiped from memory when the request is dropped.
    Authenticate {
        user: String,
        password: Zeroizing<String>,
        host: String,
    },
    /// `user`'s own password change from `old_password` to `new_password`, on this host (PAM
    /// chauthtok). Both passwords are wiped from memory when the request is dropped.
    ChangePassword {
        user: String,
        old_password: Zeroizing<String>,
        new_password: Zeroizing<String>,
    },
    /// A Unix identity (NSS).
    Lookup(Lookup),
    /// What the daemon knows about its servers and its offline answers.
    Status,
}

// Written by hand so a password never reaches a log line.
impl fmt::Debug for LocalRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalRequest::Authorize {
                method,
                from_host,
                from_user,
                to_user,
                to_host,
            } => write!(
                f,
                "authorize {} {from_user}@{from_host} -> {to_user}@{to_host}",
                method.name()
            ),
            LocalRequest::Authenticate { user, host, .. } => {
                write!(f, "authenticate {user}@{host} (password hidden)")
            }
            LocalRequest::ChangePassword { user, .. } => {
                write!(f, "change password of {user} (passwords hidden)")
            }
            LocalRequest::Lookup(lookup) => write!(f, "lookup {}", lookup.key()),
            LocalRequest::Status => write!(f, "status"),
        }
    }
}

/// The daemon's answer. `server` names who decided, as text: a server's address, or the
/// offline cache and the age of what it answered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalResponse {
    /// Access granted by `route`.
    Allow {
        route: String,
        server: String,
    },
    /// Access denied.
    Deny {
        reason: DenyReason,
        server: String,
    },
    /// Password verified.
    AuthOk {
        server: String,
    },
    /// Password verified, and it has expired or expires soon (told only after a correct
    /// password): PAM's `account` step then asks for a change, or warns.
    AuthOkAging {
        aging: PasswordAging,
        server: String,
    },
    /// Password not verified. One answer whatever the reason (the servers give none; their
    /// log has it): a caller that needs to know whether the user exists asks an identity
    /// lookup or an authorize.
    AuthFail {
        server: String,
    },
    /// No decision: see `kind`.
    Error {
        kind: LocalErrorKind,
        message: String,
    },
    User(PasswdEntry),
    Group(GroupEntry),
    /// The gids of the Unix groups a user is a member of.
    Groups(Vec<u32>),
    /// No such identity.
    NotFound,
    /// How a [`LocalRequest::ChangePassword`] ended. Every failure of the agent to get an
    /// answer (no server, a lost connection after sending) is `Unavailable` with the reason:
    /// a change is never sent twice.
    PasswordChange(ChangeOutcome),
    /// The answer to [`LocalRequest::Status`] (boxed: it is large and rare).
    Status(Box<StatusReport>),
}

impl LocalResponse {
    /// An error answer.
    pub fn error(kind: LocalErrorKind, message: impl Into<String>) -> Self {
        LocalResponse::Error {
            kind,
            message: message.into(),
        }
    }
}

/// Why a local request got no decision. The codes are on the wire (docs/AGENT.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalErrorKind {
    /// No server could be reached, and no offline answer was allowed or cached.
    NoServerReachable,
    /// Servers answer probes but none accepts a TCP connection (a firewall that drops TCP),
    /// and no offline answer was allowed or cached.
    NoServerAcceptsConnections,
    /// The request's deadline passed before any server answered.
    DeadlineExceeded,
    /// The servers refused this agent (unknown host, wrong node key).
    Refused,
    /// Too many requests waiting in the daemon.
    QueueFull,
    /// A server answered with an error instead of a decision.
    ServerError,
    /// The caller's frame or request was invalid (the daemon then disconnects).
    BadRequest,
    /// The daemon is serving its maximum number of local callers.
    TooManyClients,
    /// The caller's uid may not ask this: authorize, authenticate, password changes and status
    /// are for root, the agent's own uid and its `trusted_uids` (docs/AGENT.md, "Who may ask").
    PermissionDenied,
    /// The caller spoke a protocol version this agent does not (the message names its own).
    UnsupportedVersion,
}

impl LocalErrorKind {
    /// All kinds, in code order.
    pub const ALL: [LocalErrorKind; 10] = [
        LocalErrorKind::NoServerReachable,
        LocalErrorKind::DeadlineExceeded,
        LocalErrorKind::Refused,
        LocalErrorKind::QueueFull,
        LocalErrorKind::ServerError,
        LocalErrorKind::BadRequest,
        LocalErrorKind::TooManyClients,
        LocalErrorKind::PermissionDenied,
        LocalErrorKind::UnsupportedVersion,
        LocalErrorKind::NoServerAcceptsConnections,
    ];

    /// The wire code (1..=10).
    pub fn code(self) -> u8 {
        match self {
            LocalErrorKind::NoServerReachable => 1,
            LocalErrorKind::DeadlineExceeded => 2,
            LocalErrorKind::Refused => 3,
            LocalErrorKind::QueueFull => 4,
            LocalErrorKind::ServerError => 5,
            LocalErrorKind::BadRequest => 6,
            LocalErrorKind::TooManyClients => 7,
            LocalErrorKind::PermissionDenied => 8,
            LocalErrorKind::UnsupportedVersion => 9,
            LocalErrorKind::NoServerAcceptsConnections => 10,
        }
    }

    /// Inverse of [`LocalErrorKind::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Short snake_case name for the CLI and logs.
    pub fn name(self) -> &'static str {
        match self {
            LocalErrorKind::NoServerReachable => "no_server_reachable",
            LocalErrorKind::NoServerAcceptsConnections => "no_server_accepts_connections",
            LocalErrorKind::DeadlineExceeded => "deadline_exceeded",
            LocalErrorKind::Refused => "refused",
            LocalErrorKind::QueueFull => "queue_full",
            LocalErrorKind::ServerError => "server_error",
            LocalErrorKind::BadRequest => "bad_request",
            LocalErrorKind::TooManyClients => "too_many_clients",
            LocalErrorKind::PermissionDenied => "permission_denied",
            LocalErrorKind::UnsupportedVersion => "unsupported_version",
        }
    }
}
