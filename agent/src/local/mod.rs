//! The local protocol between the agent daemon and its callers on the same host (the CLI
//! now, the PAM module later), over the daemon's Unix stream socket.
//!
//! A frame is a u32 big-endian length then that many bytes of RON text (serde) of a
//! [`LocalRequest`] (caller → daemon) or a [`LocalResponse`] (daemon → caller). One request at
//! a time per connection: the caller sends the next request after reading the answer.
//!
//! Pure data and codec ([`frame`]); [`client`] is the blocking caller side and [`cli`] the
//! command line, both used by the `gatehouse-agent` binary; the daemon side is
//! `crate::daemon`.

pub mod cli;
pub mod client;
pub mod frame;

/// Requests the local module's tests and the daemon's share.
#[cfg(test)]
pub(crate) mod samples {
    use super::LocalRequest;
    use gatehouse_common::types::Method;

    /// alice over SSH from 10.0.0.1 to web1.
    pub(crate) fn authorize() -> LocalRequest {
        LocalRequest::Authorize {
            method: Method::Ssh,
            from_host: "10.0.0.1".into(),
            from_user: "alice".into(),
            to_user: "alice".into(),
            to_host: "web1".into(),
        }
    }

    /// alice's password "pw" on web1.
    pub(crate) fn authenticate() -> LocalRequest {
        LocalRequest::Authenticate {
            user: "alice".into(),
            password: "pw".to_string().into(),
            host: "web1".into(),
        }
    }
}

use gatehouse_common::types::{DenyReason, Method};
use gatehouse_common::wire::{AuthenticateRequest, AuthorizeRequest, Request};
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroizing;

/// What a local caller asks.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LocalRequest {
    /// May `from_user` coming from `from_host` become `to_user` on `to_host` via `method`?
    Authorize {
        method: Method,
        from_host: String,
        from_user: String,
        to_user: String,
        to_host: String,
    },
    /// Is `password` right for `user` logging in on `host`? The password is wiped from
    /// memory when the request is dropped.
    Authenticate {
        user: String,
        password: Zeroizing<String>,
        host: String,
    },
    /// What the daemon knows about its servers.
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
            LocalRequest::Status => write!(f, "status"),
        }
    }
}

impl LocalRequest {
    /// The request for the servers; `None` for [`LocalRequest::Status`], which the daemon
    /// answers itself.
    pub fn to_wire(&self) -> Option<Request> {
        match self {
            LocalRequest::Authorize {
                method,
                from_host,
                from_user,
                to_user,
                to_host,
            } => Some(Request::Authorize(AuthorizeRequest {
                method: *method,
                from_host: from_host.clone(),
                from_user: from_user.clone(),
                to_user: to_user.clone(),
                to_host: to_host.clone(),
            })),
            LocalRequest::Authenticate {
                user,
                password,
                host,
            } => Some(Request::Authenticate(AuthenticateRequest {
                user: user.clone(),
                password: password.to_string(),
                host: host.clone(),
            })),
            LocalRequest::Status => None,
        }
    }
}

/// The daemon's answer. `server` is the address of the server that decided, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LocalResponse {
    /// Access granted by `route`.
    Allow { route: String, server: String },
    /// Access denied.
    Deny { reason: DenyReason, server: String },
    /// Password verified.
    AuthOk { server: String },
    /// Password not verified (the server gives no reason: its log has it).
    AuthFail { server: String },
    /// No decision: see `kind`.
    Error {
        kind: LocalErrorKind,
        message: String,
    },
    /// The answer to [`LocalRequest::Status`].
    Status(StatusReport),
}

/// Why a local request got no decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LocalErrorKind {
    /// No server could be reached (the daemon keeps retrying in the background).
    NoServerReachable,
    /// Servers answer probes but none accepts a TCP connection (a firewall that drops TCP).
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
    /// The caller's uid may not ask this (the agent's `trusted_uids`; docs/AGENT.md, "Who
    /// may ask").
    PermissionDenied,
}

impl LocalErrorKind {
    /// Short snake_case name for the CLI.
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
        }
    }
}

/// A snapshot of the daemon for `gatehouse-agent status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// This host's name as the servers know it.
    pub host: String,
    /// The balancing mode, as in the config (`probing`, `ordered`, ...).
    pub balancing: String,
    /// Every configured server, in configured order.
    pub servers: Vec<ServerReport>,
    /// The connection in use, if any.
    pub connection: Option<ConnectionReport>,
    /// Requests in the engine (waiting or sent).
    pub queued: usize,
    /// Requests sent and not answered yet.
    pub in_flight: usize,
    /// When the background reconnect runs, ms, if nothing was reachable.
    pub retry_in_ms: Option<u64>,
    /// Local callers connected now (including the one asking).
    pub local_clients: usize,
}

/// What the daemon knows about one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerReport {
    pub address: String,
    /// The last probe reply, if the server ever answered one.
    pub last_probe: Option<ProbeSummary>,
    /// Probed and silent: tried after the servers that answered.
    pub suspect: bool,
    /// Refused, reset or busy recently: kept away from for a while.
    pub avoided: bool,
}

/// The useful part of a server's last probe reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeSummary {
    /// The server's recommended wait estimate, µs.
    pub estimate_us: u64,
    /// The seed's estimate (mean queue time × queue length), µs.
    pub seed_estimate_us: u64,
    pub queue_len: u32,
    pub connections: u32,
    /// How long ago the reply came, ms.
    pub age_ms: u64,
}

/// The connection the daemon holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionReport {
    pub server: String,
    pub age_ms: u64,
    /// Handshake finished.
    pub established: bool,
}
