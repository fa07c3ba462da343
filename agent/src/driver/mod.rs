//! The I/O shell around agent engines: one mio event loop that executes what the engines ask
//! (probes, connects, writes, closes), feeds them what the network says, and wakes them on
//! their timers. The agent daemon runs it with one engine; the load generator runs thousands
//! of engines per thread on it. One reactor per process, never two: callers register their
//! own sources (the daemon's Unix socket) on the same poll with tokens from
//! [`EXTERNAL_TOKEN_BASE`] up, and get those events back from [`Driver::turn`].
//!
//! All engines of a driver share one UDP socket: a reply is routed to its engine by the probe
//! id it echoes; the engine verifies it with its own key, and only a verified reply ends the
//! probe's routing entry (so a forged datagram echoing an id cannot drop the genuine reply).
//! The driver gives the engines the wall clock for their probes' sending time
//! ([`WALL_CLOCK_REFRESH`]).
//!
//! Engines share the driver's server list unless added with their own
//! ([`Driver::add_engine_for`]): the daemon's reload gives a new engine the new list while the
//! old one finishes its requests, then reuses the old one's slot ([`Driver::replace_engine`]).

mod net;

use crate::engine::{ConnId, Engine, Outcome, Output, RequestId};
use gatehouse_common::wire::{unix_ms, ProbeReply, Request};
use mio::net::{TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use rand::rngs::StdRng;
use rand::SeedableRng;
use slab::Slab;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Tokens at or above this belong to the caller.
pub const EXTERNAL_TOKEN_BASE: usize = 1 << 56;
const UDP: Token = Token(usize::MAX);
const INDEX_BITS: u32 = 24;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
/// Probe ids remembered for routing replies; older entries are dropped first. A reply that
/// arrives after its round ended is useless anyway.
pub const MAX_PROBES_REMEMBERED: usize = 1 << 20;
/// Events taken from the poller per turn.
const EVENTS_CAPACITY: usize = 4096;
/// How often the engines' wall clock (their probes' sending time) is read again: 10 s. In
/// between, each engine carries it forward on the monotonic clock, which drifts from it by at
/// most ~5 ms in that time (NTP slews at most 500 ppm); a clock stepped by hand is followed
/// within 10 s. Both are far inside a server's 30 s probe window. Costs one pass over the
/// engines per refresh, not per turn.
pub const WALL_CLOCK_REFRESH: Duration = Duration::from_secs(10);
/// Bytes read from a socket at once.
const READ_CHUNK: usize = 64 * 1024;

/// A finished request.
#[derive(Debug, Clone)]
pub struct Completion {
    pub engine: usize,
    pub request: RequestId,
    pub outcome: Outcome,
}

/// An event on a caller-registered source.
#[derive(Debug, Clone, Copy)]
pub struct ExternalEvent {
    pub token: Token,
    pub readable: bool,
    pub writable: bool,
}

struct Conn {
    engine: usize,
    id: ConnId,
    generation: u64,
    stream: TcpStream,
    connecting: bool,
    outbuf: Vec<u8>,
}

/// The event loop and the engines it drives.
pub struct Driver {
    poll: Poll,
    udp: UdpSocket,
    servers: Arc<[SocketAddr]>,
    server_index: HashMap<SocketAddr, usize>,
    engines: Vec<(Engine, Option<Instant>)>,
    /// Each engine's server list (the driver's own unless added with one).
    engine_servers: Vec<Arc<[SocketAddr]>>,
    conns: Slab<Conn>,
    by_conn: HashMap<(usize, ConnId), usize>,
    probes: HashMap<u64, usize>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    rng: StdRng,
    completions: Vec<Completion>,
    events: Events,
    scratch: Vec<u8>,
    next_generation: u64,
    /// When the engines were last given the wall clock.
    wall_clock_at: Option<Instant>,
}

impl Driver {
    /// A driver for agents of the same server list (TCP and UDP on the same port each).
    pub fn new(servers: Vec<SocketAddr>, seed: u64) -> io::Result<Self> {
        let poll = Poll::new()?;
        let bind: SocketAddr = match servers.first() {
            Some(SocketAddr::V6(_)) => "[::]:0".parse().expect("literal"),
            _ => "0.0.0.0:0".parse().expect("literal"),
        };
        let mut udp = UdpSocket::bind(bind)?;
        poll.registry()
            .register(&mut udp, UDP, Interest::READABLE)?;
        let server_index = servers.iter().enumerate().map(|(i, a)| (*a, i)).collect();
        Ok(Driver {
            poll,
            udp,
            servers: servers.into(),
            server_index,
            engines: Vec::new(),
            engine_servers: Vec::new(),
            conns: Slab::new(),
            by_conn: HashMap::new(),
            probes: HashMap::new(),
            timers: BinaryHeap::new(),
            rng: StdRng::seed_from_u64(seed),
            completions: Vec::new(),
            events: Events::with_capacity(EVENTS_CAPACITY),
            scratch: vec![0; READ_CHUNK],
            next_generation: 1,
            wall_clock_at: None,
        })
    }

    /// For registering the caller's own sources (tokens from [`EXTERNAL_TOKEN_BASE`]).
    pub fn registry(&self) -> &mio::Registry {
        self.poll.registry()
    }

    /// Adds an engine; returns its index.
    pub fn add_engine(&mut self, mut engine: Engine) -> usize {
        engine.set_wall_clock(Instant::now(), unix_ms(SystemTime::now()));
        self.engines.push((engine, None));
        self.engine_servers.push(self.servers.clone());
        self.engines.len() - 1
    }

    /// Adds an engine that talks to `servers` (its server indexes are positions in it);
    /// returns its index. Servers must be of the address family of the driver's first.
    pub fn add_engine_for(&mut self, engine: Engine, servers: Vec<SocketAddr>) -> usize {
        let index = self.add_engine(engine);
        if let Some(list) = self.engine_servers.get_mut(index) {
            *list = servers.into();
        }
        index
    }

    /// Puts `engine` (talking to `servers`) in slot `index`, dropping the one there: only for
    /// an engine with nothing in flight and no connection ([`Driver::engine_connections`]),
    /// since nothing of it survives.
    pub fn replace_engine(&mut self, index: usize, mut engine: Engine, servers: Vec<SocketAddr>) {
        if let (Some(slot), Some(list)) = (
            self.engines.get_mut(index),
            self.engine_servers.get_mut(index),
        ) {
            engine.set_wall_clock(Instant::now(), unix_ms(SystemTime::now()));
            *slot = (engine, None);
            *list = servers.into();
        }
    }

    /// Connections engine `index` holds (open or opening).
    pub fn engine_connections(&self, index: usize) -> usize {
        self.conns.iter().filter(|(_, c)| c.engine == index).count()
    }

    /// Engine `engine`'s server list (empty for no such engine).
    pub fn servers_of(&self, engine: usize) -> &[SocketAddr] {
        self.engine_servers.get(engine).map_or(&[], |list| list)
    }

    /// The address of server `server` of engine `engine`.
    fn server_addr(&self, engine: usize, server: usize) -> Option<SocketAddr> {
        self.engine_servers.get(engine)?.get(server).copied()
    }

    /// Which of engine `engine`'s servers sent from `from`.
    fn server_of(&self, engine: usize, from: SocketAddr) -> Option<usize> {
        let list = self.engine_servers.get(engine)?;
        if Arc::ptr_eq(list, &self.servers) {
            self.server_index.get(&from).copied()
        } else {
            list.iter().position(|a| *a == from)
        }
    }

    /// Gives every engine the wall clock again, at most once per [`WALL_CLOCK_REFRESH`].
    fn refresh_wall_clock(&mut self, now: Instant) {
        if self
            .wall_clock_at
            .is_some_and(|at| now.saturating_duration_since(at) < WALL_CLOCK_REFRESH)
        {
            return;
        }
        self.wall_clock_at = Some(now);
        let unix_ms = unix_ms(SystemTime::now());
        for (engine, _) in &mut self.engines {
            engine.set_wall_clock(now, unix_ms);
        }
    }

    pub fn engine(&self, index: usize) -> &Engine {
        &self.engines[index].0
    }

    pub fn engine_count(&self) -> usize {
        self.engines.len()
    }

    /// TCP connections open (or opening) now.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// Submits a request to engine `index`.
    pub fn submit(&mut self, index: usize, request: Request) -> RequestId {
        let now = Instant::now();
        let id = self.engines[index].0.submit(now, request, &mut self.rng);
        self.run_outputs(index, now);
        id
    }

    /// Takes the requests finished so far.
    pub fn take_completions(&mut self, into: &mut Vec<Completion>) {
        into.append(&mut self.completions);
    }

    /// Waits for events (at most `max_wait`, or the next engine timer), handles them, and
    /// returns the caller's events in `external`.
    pub fn turn(
        &mut self,
        max_wait: Option<Duration>,
        external: &mut Vec<ExternalEvent>,
    ) -> io::Result<()> {
        let now = Instant::now();
        let timer = self
            .timers
            .peek()
            .map(|Reverse((at, _))| at.saturating_duration_since(now));
        let wait = match (timer, max_wait) {
            (Some(t), Some(m)) => Some(t.min(m)),
            (t, m) => t.or(m),
        };
        // Round up so a sub-millisecond timer does not spin.
        let wait = wait.map(|w| w + Duration::from_micros(999));
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        let polled = self.poll.poll(&mut events, wait);
        let now = Instant::now();
        self.refresh_wall_clock(now);
        if let Err(e) = polled {
            self.events = events;
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        for event in events.iter() {
            let token = event.token();
            if token == UDP {
                self.read_udp(now);
            } else if token.0 >= EXTERNAL_TOKEN_BASE {
                external.push(ExternalEvent {
                    token,
                    readable: event.is_readable() || event.is_read_closed(),
                    writable: event.is_writable(),
                });
            } else {
                self.on_conn_event(token, event, now);
            }
        }
        self.events = events;
        self.fire_timers(Instant::now());
        Ok(())
    }

    fn read_udp(&mut self, now: Instant) {
        let mut buf = [0u8; 2048];
        loop {
            let (len, from) = match self.udp.recv_from(&mut buf) {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let datagram = &buf[..len];
            let Some(probe_id) = ProbeReply::peek_probe_id(datagram) else {
                continue;
            };
            let Some(&index) = self.probes.get(&probe_id) else {
                continue;
            };
            let Some(server) = self.server_of(index, from) else {
                continue;
            };
            let genuine =
                self.engines[index]
                    .0
                    .handle_probe_reply(now, server, datagram, &mut self.rng);
            if genuine {
                self.probes.remove(&probe_id);
            }
            self.run_outputs(index, now);
        }
    }

    fn conn_token(index: usize, generation: u64) -> Token {
        Token(((generation as usize) << INDEX_BITS) | index)
    }

    fn on_conn_event(&mut self, token: Token, event: &mio::event::Event, now: Instant) {
        let index = token.0 & INDEX_MASK;
        let generation = (token.0 >> INDEX_BITS) as u64;
        let Some(conn) = live(&mut self.conns, index, generation) else {
            return;
        };
        let (engine, id) = (conn.engine, conn.id);
        if conn.connecting {
            if !(event.is_writable() || event.is_error() || event.is_write_closed()) {
                return;
            }
            let failed = event.is_error()
                || conn.stream.take_error().ok().flatten().is_some()
                || conn.stream.peer_addr().is_err();
            if failed {
                self.remove_conn(index);
                self.engines[engine]
                    .0
                    .handle_connect_failed(now, id, &mut self.rng);
                return self.run_outputs(engine, now);
            }
            conn.connecting = false;
            self.engines[engine]
                .0
                .handle_connected(now, id, &mut self.rng);
            self.run_outputs(engine, now);
        }
        let Some(conn) = live(&mut self.conns, index, generation) else {
            return;
        };
        if event.is_writable()
            && !conn.outbuf.is_empty()
            && net::flush(&mut conn.stream, &mut conn.outbuf).is_err()
        {
            return self.connection_lost(index, now);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            let closing = event.is_read_closed() || event.is_error();
            self.read_conn(index, generation, closing, now);
        }
    }

    /// Reads until the socket is drained. A read shorter than the buffer means the socket
    /// was empty at that moment, and edge-triggered readiness reports any later arrival, so
    /// the loop stops there without the extra read that would only say "would block" (one
    /// syscall per answer saved) — unless the peer closed (`closing`): then it reads on to
    /// see the end of the stream, for which no further event would come.
    fn read_conn(&mut self, index: usize, generation: u64, closing: bool, now: Instant) {
        loop {
            let Some(conn) = live(&mut self.conns, index, generation) else {
                return;
            };
            let (engine, id) = (conn.engine, conn.id);
            match net::read_some(&mut conn.stream, &mut self.scratch) {
                net::ReadResult::Data(n) => {
                    self.engines[engine]
                        .0
                        .handle_data(now, id, &self.scratch[..n], &mut self.rng);
                    self.run_outputs(engine, now);
                    if n < self.scratch.len() && !closing {
                        return;
                    }
                }
                net::ReadResult::WouldBlock => return,
                net::ReadResult::Closed => return self.connection_lost(index, now),
            }
        }
    }

    fn connection_lost(&mut self, index: usize, now: Instant) {
        if let Some((engine, id)) = self.remove_conn(index) {
            self.engines[engine].0.handle_closed(now, id, &mut self.rng);
            self.run_outputs(engine, now);
        }
    }

    fn remove_conn(&mut self, index: usize) -> Option<(usize, ConnId)> {
        if !self.conns.contains(index) {
            return None;
        }
        let mut conn = self.conns.remove(index);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.by_conn.remove(&(conn.engine, conn.id));
        Some((conn.engine, conn.id))
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((at, index))) = self.timers.peek() {
            if at > now {
                return;
            }
            self.timers.pop();
            let (engine, armed) = &mut self.engines[index];
            if *armed != Some(at) {
                continue; // superseded by an earlier timer that already ran
            }
            *armed = None;
            engine.handle_timeout(now, &mut self.rng);
            self.run_outputs(index, now);
        }
    }

    /// Executes everything engine `index` asked for, then re-arms its timer.
    fn run_outputs(&mut self, index: usize, now: Instant) {
        while let Some(output) = self.engines[index].0.poll_output() {
            match output {
                Output::SendProbe {
                    server,
                    probe_id,
                    datagram,
                } => {
                    if self.probes.len() >= MAX_PROBES_REMEMBERED {
                        self.probes.clear();
                    }
                    self.probes.insert(probe_id, index);
                    // A lost datagram is what probes are built to survive: no retry here.
                    if let Some(addr) = self.server_addr(index, server) {
                        let _ = self.udp.send_to(&datagram, addr);
                    }
                }
                Output::Connect {
                    conn,
                    server,
                    timeout,
                } => self.open(index, conn, server, timeout, now),
                Output::Send { conn, bytes } => {
                    let Some(&slot) = self.by_conn.get(&(index, conn)) else {
                        continue;
                    };
                    let c = &mut self.conns[slot];
                    // Nothing queued (the usual case): the engine's buffer becomes the queue
                    // instead of being copied into it, and the spent one goes back to the
                    // engine for its next requests (no allocation per request).
                    if c.outbuf.is_empty() {
                        let spent = std::mem::replace(&mut c.outbuf, bytes);
                        self.engines[index].0.recycle_send_buffer(spent);
                    } else {
                        c.outbuf.extend_from_slice(&bytes);
                    }
                    if !c.connecting && net::flush(&mut c.stream, &mut c.outbuf).is_err() {
                        self.connection_lost(slot, now);
                    }
                }
                Output::Close { conn } => {
                    if let Some(&slot) = self.by_conn.get(&(index, conn)) {
                        self.remove_conn(slot);
                    }
                }
                Output::Done { request, outcome } => self.completions.push(Completion {
                    engine: index,
                    request,
                    outcome,
                }),
            }
        }
        let (engine, armed) = &mut self.engines[index];
        if let Some(at) = engine.poll_timeout() {
            if armed.is_none_or(|a| at < a) {
                *armed = Some(at);
                self.timers.push(Reverse((at, index)));
            }
        }
    }

    fn open(&mut self, engine: usize, id: ConnId, server: usize, timeout: Duration, now: Instant) {
        let stream = match self.server_addr(engine, server) {
            Some(addr) => net::connect(addr, timeout),
            None => Err(io::Error::other("no such server")),
        };
        let generation = self.next_generation;
        self.next_generation += 1;
        let entry = self.conns.vacant_entry();
        let slot = entry.key();
        let registered = stream.and_then(|mut stream| {
            self.poll.registry().register(
                &mut stream,
                Self::conn_token(slot, generation),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(stream)
        });
        match registered {
            Ok(stream) if slot <= INDEX_MASK => {
                entry.insert(Conn {
                    engine,
                    id,
                    generation,
                    stream,
                    connecting: true,
                    outbuf: Vec::new(),
                });
                self.by_conn.insert((engine, id), slot);
            }
            _ => {
                // No socket (for example out of descriptors): a failed attempt, reported now.
                self.engines[engine]
                    .0
                    .handle_connect_failed(now, id, &mut self.rng);
            }
        }
    }
}

/// The connection in slot `index` if it is still the one of `generation` (a slot reused by a
/// newer connection is not).
fn live(conns: &mut Slab<Conn>, index: usize, generation: u64) -> Option<&mut Conn> {
    conns.get_mut(index).filter(|c| c.generation == generation)
}
