//! The agent engine: one agent identity (host name + node key) talking to its servers. Sans-IO
//! in the quinn-proto style: the shell feeds it what happened (`submit`, `handle_*`) with `now`
//! and an RNG, then executes what it asks for (`poll_output`) and wakes it at `poll_timeout`.
//! It never touches a socket, a clock or a thread, so the daemon (one engine) and the load
//! generator (thousands per thread) drive the same code, and tests drive it with a manual clock.
//!
//! A request's path: choose servers (a probe round, or list order without probes) → connect
//! with staggered attempts → handshake → send sealed → answer. A "busy"/"too many
//! connections"/"shutting down" answer, a reset, or a silent server moves the request to the
//! next candidate (or a new round) at once; every wait is capped by the request's deadline,
//! and a request is retried at most [`MAX_TRIES_PER_REQUEST`] times.
//!
//! While connected (`moves.rs`): a connection silent for longer than its response timeout
//! (derived from the server's recent answers, `crate::latency`) is given up and its requests
//! re-sent elsewhere; a late authorize is hedged on a second connection; a periodic refresh
//! probe may move the agent to a clearly better or emptier server (`crate::switch`). A move
//! opens the new connection first and lets the old one drain its answers, so nothing waits.
//!
//! Calling order per event: one `handle_*` or `submit`, then `poll_output` until `None`, then
//! arm a timer for `poll_timeout` and call `handle_timeout` when it fires.

mod live;
mod moves;
mod refresh;
mod requests;
mod select;
#[cfg(test)]
mod tests;

use crate::avoid::AvoidList;
use crate::backoff::Backoff;
use crate::balance::{Balancing, RoundRobinState};
use crate::config::AgentConfig;
use crate::config_failover::{
    FailoverSettings, DEFAULT_RETRY_PAUSE_MAX_MS, DEFAULT_RETRY_PAUSE_MIN_MS,
};
use crate::connect_plan::ConnectPlan;
use crate::latency::ServerLatency;
use crate::probe_round::{ProbeParams, ProbeRound};
use gatehouse_common::crypto::{preferred_suites, CipherSuite};
use gatehouse_common::nodekeys::NodeKey;
use gatehouse_common::wire::{LoadReport, Response, WireError};
use live::Live;
use requests::Requests;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Tries (connections, redirects, failovers) one request may use before it fails. Bounds the
/// work a request can cause even when every server answers instantly with "busy".
pub const MAX_TRIES_PER_REQUEST: u32 = 8;
/// When every server has just answered "busy" (or failed), the next try waits a pause drawn
/// from this range instead of reconnecting at once: under overload, redirects must not become
/// a storm of connections and handshakes that adds work exactly where capacity is short. The
/// pause is short against the 5 s deadline and jittered so agents do not return in step.
/// The default of `failover.retry_pause_min_ms`.
pub const RETRY_PAUSE_MIN: Duration = Duration::from_millis(DEFAULT_RETRY_PAUSE_MIN_MS);
/// Upper end of the retry pause (see [`RETRY_PAUSE_MIN`]; `failover.retry_pause_max_ms`).
pub const RETRY_PAUSE_MAX: Duration = Duration::from_millis(DEFAULT_RETRY_PAUSE_MAX_MS);
/// Requests waiting for a connection; more are refused at once (backpressure to the caller).
pub const MAX_QUEUED_REQUESTS: usize = 256;
/// Requests sent on one connection before their answers (the server allows 16).
pub const MAX_IN_FLIGHT: usize = 8;
/// Bytes reserved for a batch of request frames (an authorize frame is about 100 B), so
/// sealing a request does not grow the buffer step by step.
pub const SEND_BUFFER_INITIAL: usize = 256;
/// A buffer handed back larger than this (64 KiB, one maximal frame) is dropped rather than
/// kept, so one big write does not pin its memory in each of thousands of engines.
pub const MAX_SPARE_SEND_BUFFER: usize = 64 * 1024;

/// The engine's settings, typed.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub host: String,
    pub key: NodeKey,
    /// Number of servers; the shell maps indexes to addresses.
    pub servers: usize,
    pub balancing: Balancing,
    pub probe: ProbeParams,
    pub connect_timeout: Duration,
    pub attempt_delay: Duration,
    pub request_deadline: Duration,
    pub idle_close: Duration,
    pub max_connection_age: Duration,
    pub avoid: Duration,
    /// Response timeouts, hedging, connect backoff, refresh and switching, retry pacing.
    pub failover: FailoverSettings,
    /// Cipher suites offered in every hello, most preferred first. Both constructors use
    /// `crypto::preferred_suites()` (AES-256-GCM first only with AES hardware, detected once
    /// per process); tests may force a list.
    pub ciphers: Vec<CipherSuite>,
    /// Keep the connection's cipher built between frames (AES-256-GCM: ~2 KiB, ~0.3 µs less
    /// CPU per request). True for a real agent (one connection); the load generator sets it
    /// for a bounded number of its simulated agents.
    pub prepare_cipher: bool,
}

impl EngineConfig {
    /// The agent's documented defaults (`crate::config::DEFAULT_*`) for `host` talking to
    /// `servers` servers: what the load generator's simulated agents and the tests use.
    pub fn with_defaults(host: &str, key: NodeKey, servers: usize, balancing: Balancing) -> Self {
        use crate::config as defaults;
        let ms = Duration::from_millis;
        EngineConfig {
            host: host.to_string(),
            key,
            servers,
            balancing,
            probe: ProbeParams {
                fanout: defaults::DEFAULT_PROBE_FANOUT,
                min_replies: defaults::DEFAULT_PROBE_MIN_REPLIES,
                timeout: ms(defaults::DEFAULT_PROBE_TIMEOUT_MS),
            },
            connect_timeout: ms(defaults::DEFAULT_CONNECT_TIMEOUT_MS),
            attempt_delay: ms(defaults::DEFAULT_ATTEMPT_DELAY_MS),
            request_deadline: ms(defaults::DEFAULT_REQUEST_DEADLINE_MS),
            idle_close: ms(defaults::DEFAULT_IDLE_CLOSE_MS),
            max_connection_age: ms(defaults::DEFAULT_MAX_CONNECTION_AGE_MS),
            avoid: ms(defaults::DEFAULT_AVOID_MS),
            failover: FailoverSettings::default(),
            ciphers: preferred_suites().to_vec(),
            prepare_cipher: true,
        }
    }

    /// Settings from a loaded agent config and the host's node key.
    pub fn from_agent_config(config: &AgentConfig, key: NodeKey) -> Self {
        EngineConfig {
            host: config.host.clone(),
            key,
            servers: config.server_addrs().len(),
            balancing: config.balancing,
            probe: ProbeParams {
                fanout: config.probe_fanout,
                min_replies: config.probe_min_replies,
                timeout: config.probe_timeout(),
            },
            connect_timeout: config.connect_timeout(),
            attempt_delay: config.attempt_delay(),
            request_deadline: config.request_deadline(),
            idle_close: config.idle_close(),
            max_connection_age: config.max_connection_age(),
            avoid: config.avoid(),
            failover: config.failover.settings(),
            ciphers: preferred_suites().to_vec(),
            prepare_cipher: true,
        }
    }
}

/// A connection the shell holds for the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// The caller's handle on a submitted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Why a request got no answer from any server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// No server could be reached: every one refused, reset or stayed silent (no probe reply,
    /// no accepted connection), or all were busy through every try.
    #[error("no server reachable")]
    NoServerReachable,
    /// Servers answer probes, but every one's TCP connect failed (refused, reset or timed
    /// out) in one staggered pass over all of them: a firewall that lets UDP through, or
    /// servers that are up but not accepting.
    #[error("no server accepts connections")]
    NoServerAcceptsConnections,
    /// The request's deadline passed before an answer, though a server had answered a probe
    /// or accepted a connection (otherwise the error is `NoServerReachable`).
    #[error("deadline exceeded before any server answered")]
    DeadlineExceeded,
    /// The servers reached refused this host's node key in the handshake: a server did not
    /// know the host, or its proof did not match our key (or ours did not match its). Which
    /// of the two is not told (a network attacker would learn which host names exist); the
    /// servers log the host name that failed its proof.
    #[error("the servers refused this host's node key (wrong key or unregistered host)")]
    NodeKeyRefused,
    /// The servers refused this agent itself (after the handshake).
    #[error("refused by the servers: {:?}: {}", .0.code, .0.message)]
    Refused(WireError),
    /// Too many requests already waiting.
    #[error("too many requests waiting")]
    QueueFull,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub result: Result<Response, AgentError>,
    /// The server that answered.
    pub server: Option<usize>,
    /// How many times the request moved to another server.
    pub redirects: u32,
    /// From submit to answer.
    pub latency: Duration,
    /// The request, handed back so a caller that sends many can reuse its allocations; `None`
    /// when it was refused before being queued.
    pub request: Option<gatehouse_common::wire::Request>,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this UDP datagram to `server`'s probe port (its replies carry `probe_id`).
    SendProbe {
        server: usize,
        probe_id: u64,
        datagram: Vec<u8>,
    },
    /// Open a TCP connection to `server`; report `handle_connected` or
    /// `handle_connect_failed`. The shell enforces `timeout` with socket options as well.
    Connect {
        conn: ConnId,
        server: usize,
        timeout: Duration,
    },
    /// Write these bytes on `conn`.
    Send { conn: ConnId, bytes: Vec<u8> },
    /// Close `conn` (no further events for it are expected).
    Close { conn: ConnId },
    /// A request is finished.
    Done {
        request: RequestId,
        outcome: Outcome,
    },
}

/// Where the engine is in getting a connection.
enum Phase {
    /// No connection and nothing under way.
    Idle,
    /// Waiting for probe replies; `background` when no request asked for it (a retry).
    Probing { round: ProbeRound, background: bool },
    /// Staggered TCP connects under way.
    Connecting {
        plan: ConnectPlan,
        /// (attempt index, connection, when it started) for attempts started.
        attempts: Vec<(usize, ConnId, Instant)>,
        /// When the plan next needs attention without input.
        wait_until: Option<Instant>,
    },
    /// A connection, handshaking or established.
    Connected(Live),
}

/// One agent's state.
pub struct Engine {
    config: EngineConfig,
    phase: Phase,
    /// Servers still to try in this episode, best first (from the last choice).
    remaining: Vec<usize>,
    requests: Requests,
    avoid: AvoidList,
    round_robin: RoundRobinState,
    backoff: Backoff,
    /// When to retry in the background after nothing was reachable.
    retry_at: Option<Instant>,
    /// Every server is avoided and a request is being retried: wait until then.
    pause_until: Option<Instant>,
    /// A request just failed for lack of servers: schedule `retry_at` with jitter.
    retry_wanted: bool,
    /// The last report from each server and when it came.
    last_reports: Vec<Option<(LoadReport, Instant)>>,
    /// The last refusal seen (reported if every server refuses).
    last_refusal: Option<WireError>,
    /// A server refused this host's node key in the handshake (unknown host, failed proof
    /// either way) and none has completed a handshake since: requests that run out of
    /// servers say so ([`AgentError::NodeKeyRefused`]) rather than "no server reachable".
    key_refused: bool,
    /// Servers whose latest connect failed (refused, reset or timed out) since the last sign
    /// of life from any server (a probe reply or an accepted connection); see
    /// [`Engine::all_failed`].
    failed: Vec<bool>,
    /// A server answered a probe or accepted a connection during the current selection
    /// episode (reset when a request starts a new one).
    heard: bool,
    /// Servers whose TCP connect failed during the current selection episode; all of them
    /// means "no server accepts connections".
    connect_failed: Vec<bool>,
    /// Each server's recent answer times (kept across connections).
    latency: Vec<ServerLatency>,
    /// Each server's last probe round trip.
    probe_rtt: Vec<Option<Duration>>,
    /// The connection the agent moved away from, still owed answers (see `moves.rs`).
    draining: Option<live::Live>,
    /// When the oldest authorize hedged away from the draining connection was sent there, as
    /// long as nothing has come on it since.
    draining_silent_since: Option<Instant>,
    /// The connection being opened to move to (a hedge or a switch).
    successor: Option<moves::Successor>,
    /// A refresh probe round while connected, and when the next one is due.
    refresh: Option<ProbeRound>,
    refresh_at: Option<Instant>,
    /// When the last refresh started (a refresh runs only if the connection was used since).
    refreshed_at: Option<Instant>,
    /// When this agent last hedged (hedges are at most one per `hedge.interval`).
    last_hedge: Option<Instant>,
    next_conn: u64,
    outputs: VecDeque<Output>,
    /// A buffer the shell has finished with (see [`Engine::recycle_send_buffer`]), reused for
    /// the next requests' bytes so a busy connection does not allocate per request.
    spare_send_buffer: Vec<u8>,
    /// The wall clock at an instant (`set_wall_clock`), for the sending time in probes.
    wall_clock: Option<(Instant, u64)>,
}

mod api;
pub use api::{EngineStatus, ServerStatus};
