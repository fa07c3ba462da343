//! What the bridge counts, for the metrics endpoint and the shutdown line: connections,
//! handshakes, requests and answers by kind and outcome, redirects, probes, the queue and the
//! estimated wait, and answer latency. Written by the reactor thread only (single-writer
//! counters, `metrics::counter`), read by any thread; pure data.

use crate::metrics::counter::{Counter, Gauge, Histogram};
use gatehouse_common::types::ErrorCode;
use gatehouse_common::wire::{Request, Response};

/// What an agent asked, as the metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Authorize,
    Authenticate,
    /// An identity lookup (NSS on the agent's host), any of its five kinds.
    Lookup,
    /// A user's own password change.
    ChangePassword,
}

impl RequestKind {
    /// Every kind, in label order.
    pub const ALL: [RequestKind; 4] = [
        RequestKind::Authorize,
        RequestKind::Authenticate,
        RequestKind::Lookup,
        RequestKind::ChangePassword,
    ];

    /// The kind of `request`.
    pub fn of<S>(request: &Request<S>) -> RequestKind {
        match request {
            Request::Authorize(_) => RequestKind::Authorize,
            Request::Authenticate(_) => RequestKind::Authenticate,
            Request::Lookup(_) => RequestKind::Lookup,
            Request::ChangePassword(_) => RequestKind::ChangePassword,
        }
    }

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            RequestKind::Authorize => "authorize",
            RequestKind::Authenticate => "authenticate",
            RequestKind::Lookup => "lookup",
            RequestKind::ChangePassword => "change_password",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How a request was answered, as the metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Deny,
    AuthOk,
    AuthFail,
    /// An identity lookup answered with an entry (user, group, or a user's groups).
    Found,
    /// An identity lookup with no such identity.
    NotFound,
    /// "Busy, go elsewhere": a redirect.
    Busy,
    /// Shutting down, internal error and the like.
    Error,
    /// A password change answered (changed, refused, failed or unavailable).
    PasswordChange,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 9] = [
        Outcome::Allow,
        Outcome::Deny,
        Outcome::AuthOk,
        Outcome::AuthFail,
        Outcome::Found,
        Outcome::NotFound,
        Outcome::Busy,
        Outcome::Error,
        Outcome::PasswordChange,
    ];

    /// The outcome of `response`.
    pub fn of(response: &Response) -> Outcome {
        match response {
            Response::Allow { .. } => Outcome::Allow,
            Response::Deny { .. } => Outcome::Deny,
            Response::AuthOk | Response::AuthOkAging(_) => Outcome::AuthOk,
            Response::AuthFail => Outcome::AuthFail,
            Response::User(_) | Response::Group(_) | Response::Groups(_) => Outcome::Found,
            Response::NotFound => Outcome::NotFound,
            Response::Error(e) if e.code == ErrorCode::Busy => Outcome::Busy,
            Response::Error(_) => Outcome::Error,
            Response::PasswordChange(_) => Outcome::PasswordChange,
        }
    }

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::AuthOk => "auth_ok",
            Outcome::AuthFail => "auth_fail",
            Outcome::Found => "found",
            Outcome::NotFound => "not_found",
            Outcome::Busy => "busy",
            Outcome::Error => "error",
            Outcome::PasswordChange => "password_change",
        }
    }
}

const KINDS: usize = RequestKind::ALL.len();
const OUTCOMES: usize = Outcome::ALL.len();

/// Counters the reactor keeps, readable from any thread.
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// Open connections now.
    pub connections: Gauge,
    pub accepted: Counter,
    pub rejected_at_cap: Counter,
    /// Connections refused by the handshake, per-source or per-host caps (not the overall one).
    pub refused_by_limits: Counter,
    pub closed: Counter,
    /// Handshakes that finished (the agent proved its node key).
    pub handshakes_ok: Counter,
    /// Connections closed by an error before their handshake finished.
    pub handshakes_failed: Counter,
    /// Requests received, by kind.
    requests: [Counter; KINDS],
    /// Answers sent, by kind and outcome (redirects included, as `busy`).
    answers: [[Counter; OUTCOMES]; KINDS],
    /// Time from reading a request to its answer, by kind. Answers given on the reactor
    /// thread are recorded with the length of the loop turn that gave them (an upper bound;
    /// no clock read per request); queued ones with their queue and service time.
    latency: [Histogram; KINDS],
    pub answered: Counter,
    /// Of `answered`, those the reactor answered itself (cheap requests, no queue).
    pub answered_inline: Counter,
    pub redirected: Counter,
    /// Of `redirected`, password checks over their host's limits (in flight or per second).
    pub password_checks_limited: Counter,
    pub probes_answered: Counter,
    pub probes_rejected: Counter,
    pub probes_silenced: Counter,
    /// Verified probes refused: sent outside the time window, or replayed.
    pub probes_stale: Counter,
    pub probes_replayed: Counter,
    /// Requests waiting for a worker, at the last publication.
    pub queue_len: Gauge,
    /// Requests a worker is serving, at the last publication.
    pub in_service: Gauge,
    /// The wait a new request would be told (the probe replies' recommended estimate), µs.
    pub estimated_wait_us: Gauge,
    /// The configured caps now (they change on reload).
    pub max_connections: Gauge,
    pub workers: Gauge,
}

impl BridgeStats {
    /// A request of `kind` arrived.
    #[inline]
    pub fn request(&self, kind: RequestKind) {
        if let Some(c) = self.requests.get(kind.index()) {
            c.inc();
        }
    }

    /// An answer of `kind` went out (or was written to the connection's buffer).
    #[inline]
    pub fn answer(&self, kind: RequestKind, response: &Response) {
        let outcome = Outcome::of(response) as usize;
        if let Some(c) = self.answers.get(kind.index()).and_then(|a| a.get(outcome)) {
            c.inc();
        }
    }

    /// `n` answers of `kind` took `latency` each.
    #[inline]
    pub fn latency(&self, kind: RequestKind, latency: std::time::Duration, n: u64) {
        if let Some(h) = self.latency.get(kind.index()) {
            h.observe(latency, n);
        }
    }

    /// Requests received of `kind`.
    pub fn requests_of(&self, kind: RequestKind) -> u64 {
        self.requests.get(kind.index()).map_or(0, Counter::get)
    }

    /// Answers of `kind` with `outcome`.
    pub fn answers_of(&self, kind: RequestKind, outcome: Outcome) -> u64 {
        self.answers
            .get(kind.index())
            .and_then(|a| a.get(outcome as usize))
            .map_or(0, Counter::get)
    }

    /// The latency histogram of `kind`.
    pub fn latency_of(&self, kind: RequestKind) -> Option<&Histogram> {
        self.latency.get(kind.index())
    }
}
