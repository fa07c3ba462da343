//! The bridge's reactor: one mio event loop that accepts agent connections up to the cap, reads
//! and writes frames, runs each connection's protocol session, answers UDP probes, hands
//! requests to the worker pool (or answers cheap ones itself) and writes the results back. This
//! is the only code that touches mio; every decision it makes comes from a pure part (session,
//! lifecycle, estimator).
//!
//! Threads: this loop on one thread, the workers on their own (`workers.rs`). Results come back
//! through a channel and a `mio::Waker`. Work per connection per turn is bounded
//! ([`FRAMES_PER_TURN`]); a connection with more to do goes on a ready list for the next turn.
//!
//! - this file: the loop, readiness;
//! - [`accept`]: accepting at the cap;
//! - [`serve`]: reading frames, dispatching requests, writing answers;
//! - [`frame`]: one frame through the session, and a cheap request answered in place;
//! - [`closing`]: timers, errors, goodbyes, closes and the drain.
//!
//! Between turns the loop takes what other threads asked through its [`BridgeControl`] (a
//! reloaded config, a stop) and beats its watchdog heartbeat; with a watchdog it never sleeps
//! longer than the heartbeat allows, so a loop that stops turning stops the pings.

mod accept;
mod closing;
mod frame;
mod serve;

use accept::raise_backlog;

use super::admission::Admission;
use super::config::BridgeConfig;
use super::conn::{Conn, READ_CHUNK};
use super::control::BridgeControl;
use super::estimator::QueueEstimator;
use super::host_limits::HostLimits;
use super::probe_guard::ProbeGuard;
use super::stats::RequestKind;
use super::workers::{ConnId, RequestHandler, WorkerPool};
use super::{BridgeStats, DbStatus};
use crate::audit::Recorder;
use gatehouse_common::nodekeys::NodeKeyStore;
use gatehouse_common::service::watchdog::Heartbeat;
use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use rand::rngs::StdRng;
use rand::SeedableRng;
use slab::Slab;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Sessions that keep their AES-256-GCM cipher built between frames: about 2 KiB each (both
/// directions), so 512 cost at most 1 MiB, a fixed cost. Each saves ~0.2 µs of CPU per request
/// (~3 % of an authorize). Connections beyond the bound build the cipher per frame, so above
/// ~850 connections a replica stays under its budget of 2 KiB of process memory per agent
/// connection: 512 × 2 KiB spread over the ~1700 connections each of three replicas holds for
/// 5000 agents adds ~0.8 KiB to the ~0.8 KiB a connection costs otherwise (measured: 1.6–1.8).
pub const MAX_PREPARED_SESSIONS: usize = 512;
/// Frames handled per connection per loop turn, so one busy agent cannot starve the rest.
pub const FRAMES_PER_TURN: usize = 16;
/// Connections accepted per loop turn, so a connection storm cannot starve established agents.
pub const ACCEPTS_PER_TURN: usize = 256;
/// Datagrams read per loop turn.
pub const PROBES_PER_TURN: usize = 256;
/// Events taken from the poller per turn.
const EVENTS_CAPACITY: usize = 1024;
/// The accept backlog asked of the kernel (capped by net.core.somaxconn). Thousands of agents
/// reconnecting at once must not overflow it: a dropped SYN costs the agent a 1 s retransmit.
pub const LISTEN_BACKLOG: i32 = 4096;

const LISTENER: Token = Token(usize::MAX);
const UDP: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
/// How often the queue length and estimated wait are published for metrics (50 ms): a scrape
/// every few seconds sees fresh numbers, and a busy loop does not compute an estimate per turn.
pub const METRICS_PUBLISH_INTERVAL: Duration = Duration::from_millis(50);
/// Connection tokens carry the slab index in the low bits and the generation above them, so
/// an event for a closed connection cannot reach the one that reused its slot.
const INDEX_BITS: u32 = 24;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;

fn conn_token(id: ConnId) -> Token {
    Token(((id.generation as usize) << INDEX_BITS) | id.index)
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

fn token_conn(token: Token) -> ConnId {
    ConnId {
        index: token.0 & INDEX_MASK,
        generation: (token.0 >> INDEX_BITS) as u64,
    }
}

/// The event loop and everything it owns.
pub struct Reactor {
    pub(super) config: BridgeConfig,
    poll: Poll,
    listener: Option<TcpListener>,
    pub(super) udp: Option<UdpSocket>,
    conns: Slab<Conn>,
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    ready: VecDeque<ConnId>,
    dirty: Vec<ConnId>,
    pool: WorkerPool,
    /// What answers requests; asked which ones are password checks.
    pub(super) handler: Arc<dyn RequestHandler>,
    /// Connections in the handshake (overall and per source) and per host.
    pub(super) admission: Admission,
    /// Which verified probes are answered: the time window and the replay cache.
    pub(super) probe_guard: ProbeGuard,
    /// When a probe outside the window was last logged as a warning (at most one a minute).
    pub(super) stale_probe_warned: Option<Instant>,
    /// Each host's queued work and password-check limits.
    pub(super) host_limits: HostLimits,
    /// Set when cheap requests are answered on this thread (`inline_cheap_requests`).
    inline_handler: Option<Arc<dyn RequestHandler>>,
    pub(super) estimator: QueueEstimator,
    /// Requests answered inline in the current loop turn, in all and by kind.
    pub(super) turn_inline: usize,
    pub(super) turn_inline_kinds: [u64; RequestKind::ALL.len()],
    /// The wall clock, read once per turn for the decisions answered inline (time windows
    /// and expiries have minute and second resolution; a read per request cost ~1 % of CPU).
    pub(super) turn_wall: SystemTime,
    pub(super) completed: u64,
    pub(super) keys: Arc<NodeKeyStore>,
    pub(super) db: Arc<DbStatus>,
    pub(super) stats: Arc<BridgeStats>,
    /// Reloads and the stop request, from the thread that handles signals.
    control: Arc<BridgeControl>,
    heartbeat: Heartbeat,
    /// When the queue gauges were last published.
    published_at: Option<Instant>,
    next_generation: u64,
    /// Connections whose session keeps its cipher built (at most `MAX_PREPARED_SESSIONS`).
    prepared_sessions: usize,
    scratch: Vec<u8>,
    rng: StdRng,
    shutdown_deadline: Option<Instant>,
    /// The audit journal (see [`BridgeParts::audit`]).
    pub(super) audit: Option<Arc<Recorder>>,
    /// Connections holding answers, by the journal sequence they wait for (with the
    /// connection's slot and generation): looked at when the journal releases it.
    pub(super) held: BinaryHeap<Reverse<(u64, usize, u64)>>,
}

/// What the bridge needs to run.
pub struct BridgeParts {
    /// The config to start with, and the way to reload it or stop the bridge.
    pub control: Arc<BridgeControl>,
    /// Bound and listening; the UDP probe socket is bound to the same port.
    pub listener: std::net::TcpListener,
    pub udp: std::net::UdpSocket,
    pub handler: Arc<dyn RequestHandler>,
    pub keys: Arc<NodeKeyStore>,
    pub db: Arc<DbStatus>,
    /// Beaten once per loop turn (the service manager's watchdog).
    pub heartbeat: Heartbeat,
    /// The audit journal the handler records in (`None`: no audit trail): answers are held
    /// until it releases their records, and refused handshakes are recorded.
    pub audit: Option<Arc<Recorder>>,
}

impl Reactor {
    /// Builds the reactor and starts the worker pool.
    pub fn new(parts: BridgeParts) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        parts.control.set_waker(waker.clone());
        let config = (*parts.control.config()).clone();
        parts.listener.set_nonblocking(true)?;
        parts.udp.set_nonblocking(true)?;
        raise_backlog(&parts.listener);
        let mut listener = TcpListener::from_std(parts.listener);
        let mut udp = UdpSocket::from_std(parts.udp);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        poll.registry()
            .register(&mut udp, UDP, Interest::READABLE)?;
        let inline_handler = config.inline_cheap_requests.then(|| parts.handler.clone());
        if let Some(audit) = &parts.audit {
            // Each write or sync of the journal wakes the loop to send what it released.
            let waker = waker.clone();
            audit.journal().on_progress(Box::new(move || {
                let _ = waker.wake();
            }));
        }
        let handler = parts.handler.clone();
        let pool = WorkerPool::start(
            config.workers,
            config.queue_capacity,
            parts.handler,
            config.benchmark_service_delay,
            waker,
        )?;
        Ok(Reactor {
            poll,
            listener: Some(listener),
            udp: Some(udp),
            conns: Slab::with_capacity(config.max_connections.min(1024)),
            timers: BinaryHeap::new(),
            ready: VecDeque::new(),
            dirty: Vec::new(),
            pool,
            handler,
            host_limits: HostLimits::new(config.password_limits),
            admission: Admission::new(config.admission),
            probe_guard: ProbeGuard::new(millis(config.probe_window), config.probe_replay_cache),
            stale_probe_warned: None,
            inline_handler,
            estimator: QueueEstimator::default(),
            turn_inline: 0,
            turn_inline_kinds: [0; RequestKind::ALL.len()],
            turn_wall: SystemTime::now(),
            completed: 0,
            keys: parts.keys,
            db: parts.db,
            stats: Arc::new(BridgeStats::default()),
            control: parts.control,
            heartbeat: parts.heartbeat,
            published_at: None,
            next_generation: 1,
            prepared_sessions: 0,
            scratch: vec![0; READ_CHUNK.max(super::probes::DATAGRAM_BUF)],
            rng: StdRng::from_entropy(),
            shutdown_deadline: None,
            audit: parts.audit,
            held: BinaryHeap::new(),
            config,
        })
    }

    /// Shared counters, readable from other threads.
    pub fn stats(&self) -> Arc<BridgeStats> {
        self.stats.clone()
    }

    /// The local address agents connect to.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        match &self.listener {
            Some(l) => l.local_addr(),
            None => Err(io::Error::other("not listening")),
        }
    }

    /// Runs until a signal has started a drain and the drain has finished.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        // When the last turn began: its length feeds the estimator's reactor lag, measured
        // with the clock read the next poll needs anyway.
        let mut turn_started = None;
        loop {
            let before_poll = Instant::now();
            if let Some(started) = turn_started.take() {
                let busy = before_poll.saturating_duration_since(started);
                self.estimator.record_turn(busy, self.turn_inline);
                self.turn_inline = 0;
                for (kind, n) in RequestKind::ALL.iter().zip(&mut self.turn_inline_kinds) {
                    self.stats.latency(*kind, busy, std::mem::take(n));
                }
            }
            let timeout = self.heartbeat.cap(self.poll_timeout(before_poll));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            let now = Instant::now();
            self.turn_wall = SystemTime::now();
            self.heartbeat.beat(now);
            if let Some((config, ticket)) = self.control.take_reload() {
                self.apply_config(&config);
                self.control.applied(ticket);
            }
            if self.control.stop_requested() {
                self.begin_shutdown(now);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now),
                    UDP => self.answer_probes(),
                    WAKER => {}
                    token => self.on_conn_event(token_conn(token), event, now),
                }
            }
            self.take_results(now);
            self.run_ready(now);
            self.fire_timers(now);
            self.host_limits.sweep(now);
            // This turn's requests go to the workers as one batch (one wake-up at most).
            self.pool.flush();
            // This turn's audit records go to the journal's writer (one wake-up at most);
            // answers whose records it has released since go out with this turn's.
            if let Some(audit) = &self.audit {
                audit.journal().kick();
            }
            self.release_held();
            self.flush_dirty(now);
            self.publish_stats(now);
            turn_started = Some(now);
            if let Some(deadline) = self.shutdown_deadline {
                if self.conns.is_empty() || now >= deadline {
                    break;
                }
            }
        }
        self.finish_shutdown();
        Ok(())
    }

    /// Applies a reloaded config (restart-only fields already kept as they were,
    /// `control::plan`): caps, limits and waits from now on; timeouts for connections
    /// accepted from now on. Nothing open is closed.
    fn apply_config(&mut self, config: &BridgeConfig) {
        self.admission.set_limits(config.admission);
        self.host_limits.set_limits(config.password_limits);
        self.probe_guard.set_window(millis(config.probe_window));
        self.inline_handler = config.inline_cheap_requests.then(|| self.handler.clone());
        self.config = config.clone();
        self.stats
            .max_connections
            .set(config.max_connections as u64);
        log::debug!("bridge config applied");
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        let mut next = self.timers.peek().map(|Reverse((at, _, _))| *at);
        if let Some(deadline) = self.shutdown_deadline {
            next = Some(next.map_or(deadline, |n| n.min(deadline)));
        }
        // Round up to a whole millisecond so a sub-millisecond wait cannot spin.
        next.map(|at| at.saturating_duration_since(now) + Duration::from_micros(999))
    }

    pub(super) fn queue_len(&self) -> usize {
        self.pool.queue_len()
    }

    pub(super) fn in_service(&self) -> usize {
        let taken = self.pool.counters.taken.load(Ordering::Acquire);
        taken.saturating_sub(self.completed) as usize
    }

    pub(super) fn workers(&self) -> usize {
        self.pool.workers()
    }

    pub(super) fn connections(&self) -> usize {
        self.conns.len()
    }

    pub(super) fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns
            .get_mut(id.index)
            .filter(|c| c.generation == id.generation)
    }

    pub(super) fn on_conn_event(&mut self, id: ConnId, event: &mio::event::Event, now: Instant) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            conn.readable = true;
        }
        if event.is_read_closed() || event.is_error() {
            conn.read_closed = true;
        }
        if event.is_writable() {
            conn.writable = true;
            if !conn.write_buf.is_empty() {
                self.mark_dirty(id);
            }
        }
        self.service(id, now);
    }
}
