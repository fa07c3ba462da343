//! Gatehouse agent library (issue 3): the pure decision parts of the agent. No sockets,
//! clocks or global RNG here; the I/O shell passes `now` and an RNG in.
//!
//! - [`config`]: the agent's RON config, defaults and cross-field checks (reads the file).
//! - [`balance`]: choosing a server (inverse-wait weighting and the other modes).
//! - [`probe_round`]: one UDP probe round as a state machine.
//! - [`avoid`]: servers avoided for a while (busy, too many connections, reset) or suspect.
//! - [`connect_plan`]: RFC 8305-style staggered connection attempts.
//! - [`budget`]: the per-request deadline every wait is capped by.
//! - [`latency`]: each server's recent answer times, and the response timeout and hedge delay
//!   derived from them; [`switch`]: whether a connected agent moves to another server;
//!   [`config_failover`]: the config section of those waits.
//! - [`backoff`]: jittered exponential backoff when nothing is reachable.
//! - [`engine`] (sans-IO) and [`driver`] (the mio shell around engines).
//! - [`local`]: the local protocol to the daemon (frames, blocking client, CLI).
//! - [`offline`]: the cache of identities, decisions and password verifiers, and the rules of
//!   offline answers.
//! - [`daemon`]: the agent daemon (not pure: socket, signals, event loop).
//!
//! The load generator (`gatehouse-loadgen`, crate `loadgen/`) drives this engine and driver
//! from outside: it is not part of the agent installed on managed hosts.
//!
//! docs/AGENT.md describes how these fit together.

pub mod avoid;
/// Shared with the replication links: see `gatehouse_common::backoff`.
pub use gatehouse_common::backoff;
pub mod balance;
pub mod budget;
pub mod config;
pub mod config_failover;
pub mod config_servers;
pub mod connect_plan;
pub mod daemon;
pub mod driver;
pub mod engine;
pub mod latency;
pub mod local;
pub mod offline;
pub mod probe_round;
pub mod switch;
