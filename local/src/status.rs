//! What `gatehouse-agent status` shows: the daemon's servers, its connection, its queue and its
//! offline answers. Plain serde data: the status answer carries it as RON text inside a binary
//! frame (docs/AGENT.md), because only the CLI reads it and it grows with the config.

use serde::{Deserialize, Serialize};

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
    /// What the daemon answered without a server.
    #[serde(default)]
    pub offline: OfflineReport,
}

/// What one server looks like from the daemon.
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

/// The daemon's offline answers since it started (answers given from its cache because no
/// server was reachable), and what its cache may answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineReport {
    /// Identities may be answered from the cache.
    pub identities: bool,
    /// Cached authorize decisions younger than this may be answered, s (0: never).
    pub authorize_max_age_s: u64,
    /// Passwords may be checked against the cached verifiers (off by default).
    pub passwords: bool,
    /// Offline answers given, by kind.
    pub identity_answers: u64,
    pub authorize_answers: u64,
    pub authenticate_answers: u64,
    /// The last offline answer, one line, and how long ago, ms.
    pub last: Option<(String, u64)>,
    /// Entries in the cache now (identities, decisions, verifiers).
    pub cached_identities: u64,
    pub cached_decisions: u64,
    pub cached_verifiers: u64,
}
