//! The bridge: what a replica (and the master) use to serve agents. A hand-rolled mio reactor
//! with a capped, generation-checked connection slab, per-connection timers and bounded
//! buffers; a bounded queue in front of worker threads; UDP probes answered with the estimated
//! queue wait; redirects when overloaded; a graceful drain on SIGTERM.
//!
//! - [`config`]: settings and defaults (pure).
//! - [`admission`]: which connections are kept: handshake, per-source and per-host caps (pure).
//! - [`estimator`]: the queue-time estimator (pure).
//! - [`lifecycle`]: per-connection deadlines (pure).
//! - [`fair_queue`]: the worker queue's per-host turns (pure).
//! - [`holds`]: answers held until their audit records are durable (pure).
//! - [`host_limits`]: per-host work in flight and password-check limits (pure).
//! - [`conn`]: one connection's socket and buffers.
//! - [`reactor`]: the event loop (the only mio code).
//! - [`probe_guard`]: the probe time window and replay cache (pure).
//! - [`probes`]: UDP probe answers (reactor thread).
//! - [`workers`]: the worker pool and the `RequestHandler` it runs.
//! - [`control`]: the running config (arc-swapped on reload) and the stop request.
//! - [`stats`]: what the reactor counts, for metrics.

pub mod admission;
pub mod config;
pub mod conn;
pub mod control;
pub mod estimator;
pub mod fair_queue;
pub mod holds;
pub mod host_limits;
pub mod lifecycle;
pub mod probe_guard;
pub mod probes;
pub mod reactor;
pub mod stats;
pub mod workers;

pub use config::{BridgeConfig, BridgeFile};
pub use control::BridgeControl;
pub use reactor::{BridgeParts, Reactor};
pub use stats::BridgeStats;
pub use workers::RequestHandler;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Which version of the security database this server holds, for probe replies and status.
#[derive(Debug, Default)]
pub struct DbStatus {
    sequence: AtomicU64,
    /// Unix ms when this copy was last confirmed current; 0 = unknown.
    confirmed_unix_ms: AtomicU64,
    /// True on the master, whose copy is current by definition.
    authoritative: std::sync::atomic::AtomicBool,
}

impl DbStatus {
    /// A copy loaded from a file: sequence 0, staleness unknown.
    pub fn from_file() -> Self {
        DbStatus::default()
    }

    /// Records the sequence of a copy loaded from disk, not yet confirmed current.
    pub fn loaded(&self, sequence: u64) {
        self.sequence.store(sequence, Ordering::Release);
    }

    /// Records that the copy at `sequence` is current as of now.
    pub fn confirm(&self, sequence: u64) {
        self.sequence.store(sequence, Ordering::Release);
        self.confirmed_unix_ms.store(unix_ms(), Ordering::Release);
    }

    /// Marks this copy as the authoritative one (the master's).
    pub fn set_authoritative(&self, yes: bool) {
        self.authoritative.store(yes, Ordering::Release);
    }

    /// The sequence number of the copy held.
    pub fn sequence(&self) -> u64 {
        self.sequence.load(Ordering::Acquire)
    }

    /// How stale the copy is, ms: 0 on the master, `u64::MAX` when unknown.
    pub fn age_ms(&self) -> u64 {
        if self.authoritative.load(Ordering::Acquire) {
            return 0;
        }
        match self.confirmed_unix_ms.load(Ordering::Acquire) {
            0 => u64::MAX,
            at => unix_ms().saturating_sub(at),
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}
