//! The bridge's reactor: one mio event loop that accepts agent connections up to the cap, reads
//! and writes frames, runs each connection's protocol session, answers UDP probes, hands
//! requests to the worker pool and writes the results back. This is the only code that touches
//! mio; every decision it makes comes from a pure part (session, lifecycle, estimator).
//!
//! Threads: this loop on one thread, the workers on their own (`workers.rs`). Results come back
//! through a channel and a `mio::Waker`. Work per connection per turn is bounded
//! ([`FRAMES_PER_TURN`]); a connection with more to do goes on a ready list for the next turn.

use super::config::BridgeConfig;
use super::conn::{CloseReason, Conn, ReadOutcome, READ_CHUNK};
use super::estimator::QueueEstimator;
use super::lifecycle::{Expiry, Lifecycle};
use super::workers::{ConnId, Done, Job, RequestHandler, WorkerPool};
use super::{BridgeStats, DbStatus};
use gatehouse_common::nodekeys::NodeKeyStore;
use gatehouse_common::session::ServerInput;
use gatehouse_common::types::{ErrorCode, GoodbyeReason};
use gatehouse_common::wire::frame::{decode_frame, FRAME_HEADER_LEN, MAX_FRAME_LEN};
use gatehouse_common::wire::{Request, Response, WireError};
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
use std::time::{Duration, Instant};

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
const SIGNALS: Token = Token(usize::MAX - 3);
/// Connection tokens carry the slab index in the low bits and the generation above them, so
/// an event for a closed connection cannot reach the one that reused its slot.
const INDEX_BITS: u32 = 24;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;

fn conn_token(id: ConnId) -> Token {
    Token(((id.generation as usize) << INDEX_BITS) | id.index)
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
    pub(super) estimator: QueueEstimator,
    pub(super) enqueued: u64,
    pub(super) completed: u64,
    pub(super) keys: Arc<NodeKeyStore>,
    pub(super) db: Arc<DbStatus>,
    pub(super) stats: Arc<BridgeStats>,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    next_generation: u64,
    scratch: Vec<u8>,
    rng: StdRng,
    shutdown_deadline: Option<Instant>,
}

/// What the bridge needs to run.
pub struct BridgeParts {
    pub config: BridgeConfig,
    /// Bound and listening; the UDP probe socket is bound to the same port.
    pub listener: std::net::TcpListener,
    pub udp: std::net::UdpSocket,
    pub handler: Arc<dyn RequestHandler>,
    pub keys: Arc<NodeKeyStore>,
    pub db: Arc<DbStatus>,
    /// Install SIGTERM/SIGINT handlers that start a graceful drain.
    pub handle_signals: bool,
}

impl Reactor {
    /// Builds the reactor and starts the worker pool.
    pub fn new(parts: BridgeParts) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        parts.listener.set_nonblocking(true)?;
        parts.udp.set_nonblocking(true)?;
        raise_backlog(&parts.listener);
        let mut listener = TcpListener::from_std(parts.listener);
        let mut udp = UdpSocket::from_std(parts.udp);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        poll.registry()
            .register(&mut udp, UDP, Interest::READABLE)?;
        let signals = if parts.handle_signals {
            let mut s = signal_hook_mio::v1_0::Signals::new([
                signal_hook::consts::SIGTERM,
                signal_hook::consts::SIGINT,
            ])?;
            poll.registry()
                .register(&mut s, SIGNALS, Interest::READABLE)?;
            Some(s)
        } else {
            None
        };
        let pool = WorkerPool::start(
            parts.config.workers,
            parts.config.queue_capacity,
            parts.handler,
            parts.config.benchmark_service_delay,
            waker,
        )?;
        Ok(Reactor {
            poll,
            listener: Some(listener),
            udp: Some(udp),
            conns: Slab::with_capacity(parts.config.max_connections.min(1024)),
            timers: BinaryHeap::new(),
            ready: VecDeque::new(),
            dirty: Vec::new(),
            pool,
            estimator: QueueEstimator::default(),
            enqueued: 0,
            completed: 0,
            keys: parts.keys,
            db: parts.db,
            stats: Arc::new(BridgeStats::default()),
            signals,
            next_generation: 1,
            scratch: vec![0; READ_CHUNK.max(super::probes::DATAGRAM_BUF)],
            rng: StdRng::from_entropy(),
            shutdown_deadline: None,
            config: parts.config,
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
        loop {
            let timeout = self.poll_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(now),
                    UDP => self.answer_probes(),
                    WAKER => {}
                    SIGNALS => self.on_signals(now),
                    token => self.on_conn_event(token_conn(token), event, now),
                }
            }
            self.take_results(now);
            self.run_ready(now);
            self.fire_timers(now);
            self.flush_dirty(now);
            self.publish_stats();
            if let Some(deadline) = self.shutdown_deadline {
                if self.conns.is_empty() || now >= deadline {
                    break;
                }
            }
        }
        self.finish_shutdown();
        Ok(())
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
        let taken = self.pool.counters.taken.load(Ordering::Acquire);
        self.enqueued.saturating_sub(taken) as usize
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

    fn accept(&mut self, now: Instant) {
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listener) = &self.listener else {
                return;
            };
            let (mut socket, peer) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: log and retry next turn rather than spin.
                    log::warn!("accept failed: {e}");
                    return;
                }
            };
            if self.conns.len() >= self.config.max_connections {
                self.stats.rejected_at_cap.fetch_add(1, Ordering::Relaxed);
                refuse_at_cap(&mut socket, self.config.max_connections);
                log::debug!(
                    "refused {peer}: at the cap of {} connections",
                    self.config.max_connections
                );
                continue;
            }
            let _ = socket.set_nodelay(true);
            let generation = self.next_generation;
            self.next_generation += 1;
            let entry = self.conns.vacant_entry();
            let id = ConnId {
                index: entry.key(),
                generation,
            };
            if id.index > INDEX_MASK {
                log::error!("connection slab index overflow; refusing {peer}");
                continue;
            }
            if let Err(e) = self.poll.registry().register(
                &mut socket,
                conn_token(id),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::warn!("cannot register {peer}: {e}");
                continue;
            }
            let lifecycle = Lifecycle::new(self.config.timeouts, now);
            entry.insert(Conn::new(socket, peer, generation, lifecycle, now));
            self.stats.accepted.fetch_add(1, Ordering::Relaxed);
            log::debug!(
                "accept {peer} (conn {}, {} open)",
                id.index,
                self.conns.len()
            );
            self.arm(id);
        }
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns
            .get_mut(id.index)
            .filter(|c| c.generation == id.generation)
    }

    fn on_conn_event(&mut self, id: ConnId, event: &mio::event::Event, now: Instant) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            conn.readable = true;
        }
        if event.is_writable() {
            conn.writable = true;
            if !conn.write_buf.is_empty() {
                self.mark_dirty(id);
            }
        }
        self.service(id, now);
    }

    fn run_ready(&mut self, now: Instant) {
        for _ in 0..self.ready.len() {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            if let Some(conn) = self.conn_mut(id) {
                conn.ready = false;
                self.service(id, now);
            }
        }
    }

    /// Reads and handles up to [`FRAMES_PER_TURN`] frames from one connection.
    fn service(&mut self, id: ConnId, now: Instant) {
        let max_in_flight = self.config.max_in_flight_per_connection;
        let mut frames = 0;
        loop {
            let Some(conn) = self
                .conns
                .get_mut(id.index)
                .filter(|c| c.generation == id.generation)
            else {
                return;
            };
            if conn.read_blocked(max_in_flight) {
                break;
            }
            match decode_frame(&conn.read_buf, MAX_FRAME_LEN) {
                Err(e) => {
                    let message = e.to_string();
                    self.fail(id, ErrorCode::FrameTooLarge, &message, now);
                    return;
                }
                Ok(Some((consumed, _))) => {
                    if frames == FRAMES_PER_TURN {
                        self.push_ready(id);
                        break;
                    }
                    frames += 1;
                    self.handle_frame(id, consumed, now);
                }
                Ok(None) => {
                    if !conn.readable {
                        break;
                    }
                    let outcome = conn.read_once(&mut self.scratch);
                    match outcome {
                        Ok(ReadOutcome::Data) => {}
                        Ok(ReadOutcome::Drained) => break,
                        Ok(ReadOutcome::Closed) => {
                            self.close(id, CloseReason::PeerClosed);
                            return;
                        }
                        Err(e) => {
                            log::debug!("read from {} failed: {e}", conn.peer);
                            self.close(id, CloseReason::IoError);
                            return;
                        }
                    }
                }
            }
        }
        if let Some(conn) = self.conn_mut(id) {
            let partial = !conn.read_buf.is_empty();
            conn.lifecycle.on_partial_frame(partial, now);
            self.arm(id);
        }
    }

    fn handle_frame(&mut self, id: ConnId, consumed: usize, now: Instant) {
        let keys = self.keys.snapshot();
        let Some(conn) = self.conns.get_mut(id.index) else {
            return;
        };
        let payload = &mut conn.read_buf[FRAME_HEADER_LEN..consumed];
        let result = conn
            .session
            .handle_frame(payload, &keys, &mut self.rng, &mut conn.write_buf);
        conn.consume(consumed);
        match result {
            Ok(ServerInput::Progress) => self.mark_dirty(id),
            Ok(ServerInput::Established) => {
                conn.lifecycle.on_established(now);
                conn.host = conn.session.host().map(Arc::from);
                log::debug!(
                    "established {} host={} in {:?}",
                    conn.peer,
                    conn.host_for_log(),
                    now - conn.opened_at
                );
            }
            Ok(ServerInput::Request {
                id: request_id,
                body,
            }) => {
                conn.lifecycle.on_request(now);
                conn.requests += 1;
                self.dispatch(id, request_id, body, now);
            }
            Err(failure) => {
                let e = failure.error;
                self.fail(id, e.code, &e.message, now);
            }
        }
    }

    fn dispatch(&mut self, id: ConnId, request_id: u32, request: Request, now: Instant) {
        if self.shutdown_deadline.is_some() {
            let error = WireError::new(ErrorCode::ShuttingDown, "shutting down, go elsewhere");
            self.respond(id, request_id, Response::Error(error));
            return;
        }
        let estimate = self
            .estimator
            .estimate(self.queue_len(), self.in_service(), self.workers());
        if estimate.recommended > self.config.busy_wait {
            self.redirect(id, request_id, estimate.recommended);
            return;
        }
        let Some(host) = self.conn_mut(id).and_then(|c| c.host.clone()) else {
            return;
        };
        let job = Job {
            conn: id,
            request_id,
            host,
            request,
            enqueued_at: now,
        };
        match self.pool.try_submit(job) {
            Ok(()) => {
                self.enqueued += 1;
                if let Some(conn) = self.conn_mut(id) {
                    conn.in_flight += 1;
                }
            }
            Err(_) => self.redirect(id, request_id, estimate.recommended),
        }
    }

    fn redirect(&mut self, id: ConnId, request_id: u32, estimate: Duration) {
        self.stats.redirected.fetch_add(1, Ordering::Relaxed);
        let mut error = WireError::new(ErrorCode::Busy, "busy, go elsewhere");
        error.estimate_us = estimate.as_micros().try_into().unwrap_or(u64::MAX);
        self.respond(id, request_id, Response::Error(error));
    }

    fn respond(&mut self, id: ConnId, request_id: u32, response: Response) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if let Err(failure) = conn
            .session
            .write_response(request_id, response, &mut conn.write_buf)
        {
            log::warn!("cannot answer {}: {}", conn.peer, failure.error.message);
        }
        self.mark_dirty(id);
    }

    fn take_results(&mut self, now: Instant) {
        self.pool
            .counters
            .wake_pending
            .store(false, Ordering::Release);
        while let Ok(done) = self.pool.done.try_recv() {
            self.on_done(done, now);
        }
    }

    fn on_done(&mut self, done: Done, now: Instant) {
        self.completed += 1;
        self.estimator.record(done.queue_time, done.service_time);
        self.stats.answered.fetch_add(1, Ordering::Relaxed);
        let id = done.conn;
        let Some(conn) = self.conn_mut(id) else {
            return; // the agent left; nothing to answer
        };
        conn.in_flight = conn.in_flight.saturating_sub(1);
        let finished = conn.in_flight == 0;
        self.respond(id, done.request_id, done.response);
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if finished {
            if let Some(reason) = conn.retire {
                self.goodbye(id, reason, now);
                return;
            }
            if conn.lifecycle.is_aged() {
                self.goodbye(id, CloseReason::Aged, now);
                return;
            }
        }
        // Room again: more requests may be waiting in the socket or the buffer.
        if conn.readable || !conn.read_buf.is_empty() {
            self.push_ready(id);
        }
        self.arm(id);
    }

    fn push_ready(&mut self, id: ConnId) {
        if let Some(conn) = self.conn_mut(id) {
            if !conn.ready {
                conn.ready = true;
                self.ready.push_back(id);
            }
        }
    }

    fn mark_dirty(&mut self, id: ConnId) {
        if let Some(conn) = self.conn_mut(id) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(id);
            }
        }
    }

    /// Writes out what this turn produced: one write per connection per turn.
    fn flush_dirty(&mut self, now: Instant) {
        let dirty = std::mem::take(&mut self.dirty);
        for &id in &dirty {
            let Some(conn) = self.conn_mut(id) else {
                continue;
            };
            conn.dirty = false;
            let was_blocked = conn.write_buf.len() >= super::conn::WRITE_HIGH_WATER;
            if let Err(e) = conn.flush() {
                log::debug!("write to {} failed: {e}", conn.peer);
                self.close(id, CloseReason::IoError);
                continue;
            }
            if let Some(reason) = conn.closing {
                if conn.write_buf.is_empty() {
                    self.close(id, reason);
                }
                continue;
            }
            if was_blocked && conn.write_buf.len() < super::conn::WRITE_HIGH_WATER {
                self.push_ready(id);
            }
        }
        self.dirty = dirty;
        self.dirty.clear();
        let _ = now;
    }

    fn arm(&mut self, id: ConnId) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let deadline = conn.lifecycle.deadline(conn.in_flight);
        if conn.armed.is_none_or(|armed| deadline < armed) {
            conn.armed = Some(deadline);
            self.timers
                .push(Reverse((deadline, id.index, id.generation)));
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, index, generation))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let id = ConnId { index, generation };
            let Some(conn) = self.conn_mut(id) else {
                continue; // a timer for a closed connection: a no-op
            };
            if conn.armed == Some(at) {
                conn.armed = None;
            }
            let expiry = conn.lifecycle.on_timeout(now, conn.in_flight);
            match expiry {
                None => {}
                Some(Expiry::HandshakeTimeout) => self.fail(
                    id,
                    ErrorCode::Timeout,
                    "handshake not finished in time",
                    now,
                ),
                Some(Expiry::FrameTimeout) => {
                    self.fail(id, ErrorCode::Timeout, "frame not completed in time", now)
                }
                Some(Expiry::Idle) => self.goodbye(id, CloseReason::Idle, now),
                Some(Expiry::Aged) if conn.in_flight == 0 => {
                    self.goodbye(id, CloseReason::Aged, now)
                }
                // Requests in flight: `on_done` says goodbye after the last one.
                Some(Expiry::Aged) => {}
                Some(Expiry::DrainOver) => self.close(id, CloseReason::DrainTimeout),
                Some(Expiry::LingerOver) => {
                    let reason = conn.closing.unwrap_or(CloseReason::IoError);
                    self.close(id, reason);
                }
            }
            self.arm(id);
        }
    }

    /// Sends an error, then closes once it is out.
    fn fail(&mut self, id: ConnId, code: ErrorCode, message: &str, now: Instant) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let level = match code {
            ErrorCode::AuthFailed | ErrorCode::UnknownHost | ErrorCode::Malformed => {
                log::Level::Warn
            }
            _ => log::Level::Debug,
        };
        log::log!(
            level,
            "closing {} host={}: {:?}: {message}",
            conn.peer,
            conn.host_for_log(),
            code
        );
        let reason = match code {
            ErrorCode::Timeout if conn.session.is_established() => CloseReason::FrameTimeout,
            ErrorCode::Timeout => CloseReason::HandshakeTimeout,
            ErrorCode::ShuttingDown => CloseReason::ShuttingDown,
            _ => CloseReason::ProtocolError,
        };
        let mut error = WireError::new(code, message);
        if code == ErrorCode::UnsupportedVersion {
            error.versions = gatehouse_common::wire::SUPPORTED_VERSIONS.to_vec();
        }
        conn.session.write_error(&error, &mut conn.write_buf);
        self.start_closing(id, reason, now);
    }

    /// Sends a sealed goodbye (or a plaintext error before the handshake), then closes.
    fn goodbye(&mut self, id: ConnId, reason: CloseReason, now: Instant) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let wire_reason = match reason {
            CloseReason::Idle => GoodbyeReason::Idle,
            CloseReason::Aged => GoodbyeReason::Reconnect,
            _ => GoodbyeReason::ShuttingDown,
        };
        if conn.session.is_established() {
            conn.session.write_goodbye(wire_reason, &mut conn.write_buf);
        } else {
            let error = WireError::new(ErrorCode::ShuttingDown, "shutting down, go elsewhere");
            conn.session.write_error(&error, &mut conn.write_buf);
        }
        self.start_closing(id, reason, now);
    }

    fn start_closing(&mut self, id: ConnId, reason: CloseReason, now: Instant) {
        if let Some(conn) = self.conn_mut(id) {
            conn.closing.get_or_insert(reason);
            conn.lifecycle.on_closing(now);
            self.mark_dirty(id);
            self.arm(id);
        }
    }

    /// Removes the connection; the count of open connections is the slab's length, so it is
    /// exact by construction.
    fn close(&mut self, id: ConnId, reason: CloseReason) {
        if self.conn_mut(id).is_none() {
            return;
        }
        let mut conn = self.conns.remove(id.index);
        let _ = self.poll.registry().deregister(&mut conn.socket);
        self.stats.closed.fetch_add(1, Ordering::Relaxed);
        log::debug!(
            "close {} host={} after {:?}, {} requests: {reason:?}",
            conn.peer,
            conn.host_for_log(),
            conn.opened_at.elapsed(),
            conn.requests
        );
    }

    fn on_signals(&mut self, now: Instant) {
        let mut start = false;
        if let Some(signals) = &mut self.signals {
            for signal in signals.pending() {
                log::info!("signal {signal}: draining");
                start = true;
            }
        }
        if start {
            self.begin_shutdown(now);
        }
    }

    /// Stops accepting and probing, tells every agent to go elsewhere, and lets in-flight
    /// requests finish within the drain timeout.
    pub(super) fn begin_shutdown(&mut self, now: Instant) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        self.shutdown_deadline = Some(now + self.config.drain_timeout);
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        if let Some(mut u) = self.udp.take() {
            let _ = self.poll.registry().deregister(&mut u);
        }
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .map(|(index, c)| ConnId {
                index,
                generation: c.generation,
            })
            .collect();
        for id in ids {
            let Some(conn) = self.conn_mut(id) else {
                continue;
            };
            if conn.in_flight == 0 {
                self.goodbye(id, CloseReason::ShuttingDown, now);
            } else {
                conn.retire = Some(CloseReason::ShuttingDown);
            }
        }
    }

    fn finish_shutdown(self) {
        let open = self.conns.len();
        log::info!(
            "bridge stopped: {} accepted, {} refused at the cap, {} answered, {} redirected, {} still open",
            self.stats.accepted.load(Ordering::Relaxed),
            self.stats.rejected_at_cap.load(Ordering::Relaxed),
            self.stats.answered.load(Ordering::Relaxed),
            self.stats.redirected.load(Ordering::Relaxed),
            open
        );
        if open == 0 {
            self.pool.shutdown();
        }
    }

    fn publish_stats(&self) {
        self.stats
            .connections
            .store(self.conns.len() as u64, Ordering::Relaxed);
    }
}

/// Writes the plaintext "too many connections" error to a socket we will not keep. The socket
/// is fresh, so the few bytes fit in its send buffer; if not, the close alone tells the agent.
fn refuse_at_cap(socket: &mut mio::net::TcpStream, cap: usize) {
    use std::io::Write;
    let error = WireError::new(
        ErrorCode::TooManyConnections,
        format!("too many connections (cap {cap}), go elsewhere"),
    );
    let mut frame = Vec::with_capacity(128);
    gatehouse_common::session::write_plain_error(&error, &mut frame);
    let _ = socket.write(&frame);
}

/// Re-issues listen(2) with a larger backlog; std binds with 128.
fn raise_backlog(listener: &std::net::TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: listen(2) on a valid, bound socket descriptor we own; no memory is shared.
    let rc = unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) };
    if rc != 0 {
        log::warn!(
            "cannot raise the listen backlog: {}",
            io::Error::last_os_error()
        );
    }
}
