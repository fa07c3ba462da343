//! A lean closed-loop load client for server-throughput benchmarks: `connections` TCP
//! connections on one mio loop, each with exactly one request in flight, the next sent as soon
//! as the answer is in. What a request and an answer look like is the [`LoadProtocol`]'s
//! business: RESP `GET k` for redis ([`super::redis`]), or Gatehouse's own handshake and sealed
//! authorize requests ([`super::direct`]). The loop, the accounting and the limits are shared,
//! so the two servers are measured by the same client machinery. It reports the same
//! [`Stats`] as `run`, so figures print and serialise alike.
//!
//! Why not the agent engine: the engine (probing, balancing, deadlines, retries, many agents'
//! timers) costs the load generator's core a few µs per request more than the server spends,
//! so with both pinned the client was the bottleneck and the figures measured it, not the
//! server. `run` still measures the full agent.
//!
//! Not pure: sockets and the clock. Bounded: connects are spread over the first
//! [`super::worker::MAX_RAMP`], the loop ends at the duration (plus [`DRAIN`] for the last
//! answers), and a connection that fails is counted and not reopened.

use super::stats::{ErrorKind, Stats};
use super::worker::MAX_RAMP;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// After the end, how long the last requests may take (1 s) before they count as unfinished.
pub const DRAIN: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_secs(1);
const MAX_TURN_WAIT: Duration = Duration::from_millis(100);
/// Events taken per poll.
const EVENTS_CAPACITY: usize = 4096;
/// Bytes read per `read` call (64 KiB, one maximal Gatehouse frame).
const READ_CHUNK: usize = 64 * 1024;
/// Bytes a connection may hold unparsed (128 KiB): with one request in flight a server owes
/// at most one answer (a frame of at most 64 KiB plus its header) and last words, so more
/// means a misbehaving server, and the connection is dropped.
pub const MAX_INBUF: usize = 128 * 1024;

/// What one connection's bytes mean.
pub trait LoadProtocol {
    /// Per-connection protocol state.
    type Conn;
    /// Connection `index` has just connected: its state, with its first bytes (a hello, or the
    /// first request when `issuing`) appended to `out`.
    fn open(
        &mut self,
        index: usize,
        issuing: bool,
        out: &mut Vec<u8>,
    ) -> Result<(Self::Conn, Progress), ErrorKind>;
    /// Consumes the complete messages at the front of `inbuf`, appends what must be sent to
    /// `out` (a next request only when `issuing`), and says what happened.
    fn on_data(
        &mut self,
        conn: &mut Self::Conn,
        inbuf: &mut Vec<u8>,
        issuing: bool,
        out: &mut Vec<u8>,
    ) -> Result<Progress, ErrorKind>;
}

/// What [`LoadProtocol::open`] or [`LoadProtocol::on_data`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Answers completed: the expected kind, and any other.
    pub expected: u64,
    pub unexpected: u64,
    /// A new request went into `out` (its latency counts from now).
    pub sent_request: bool,
    /// The server is ending the connection (a goodbye or an error): after counting the
    /// answers above, it is closed and counted as this.
    pub end: Option<ErrorKind>,
}

struct Conn<C> {
    stream: TcpStream,
    /// Protocol state, once connected.
    state: Option<C>,
    sent_at: Option<Instant>,
    inbuf: Vec<u8>,
}

/// One second's counters, handed to the caller's progress printer.
pub type OnTick<'a> = dyn FnMut(u64, &Stats, usize) + 'a;

/// Runs the load; returns the totals and the time from start to the last answer.
pub fn run_closed_loop<P: LoadProtocol>(
    protocol: &mut P,
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    stop: &std::sync::atomic::AtomicBool,
    on_tick: &mut OnTick<'_>,
) -> io::Result<(Stats, Duration)> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(EVENTS_CAPACITY);
    let mut conns: Vec<Option<Conn<P::Conn>>> = Vec::with_capacity(connections);
    let start = Instant::now();
    let ramp = MAX_RAMP.min(duration / 4);
    let end = start + duration;
    let hard_stop = end + DRAIN;
    let (mut interval, mut total) = (Stats::new(1), Stats::new(1));
    let (mut next_tick, mut second) = (start + TICK, 1);
    let mut last_answer = start;
    let mut scratch = vec![0u8; READ_CHUNK];
    let mut out = Vec::new();
    loop {
        let now = Instant::now();
        let issuing = now < end && !stop.load(std::sync::atomic::Ordering::Relaxed);
        // Open the connections due by now (connection i at start + ramp * i / n).
        while issuing && conns.len() < connections {
            let due = start + ramp.mul_f64(conns.len() as f64 / connections as f64);
            if due > now {
                break;
            }
            let token = Token(conns.len());
            match TcpStream::connect(addr).and_then(|mut s| {
                s.set_nodelay(true)?;
                poll.registry()
                    .register(&mut s, token, Interest::READABLE | Interest::WRITABLE)?;
                Ok(s)
            }) {
                Ok(stream) => conns.push(Some(Conn {
                    stream,
                    state: None,
                    sent_at: None,
                    inbuf: Vec::new(),
                })),
                Err(_) => {
                    interval.error(ErrorKind::ConnectionFailed, 1);
                    conns.push(None);
                }
            }
        }
        if !issuing {
            // Counting is O(connections): only in the drain, never per turn of the run.
            let in_flight = conns
                .iter()
                .flatten()
                .filter(|c| c.sent_at.is_some())
                .count();
            if in_flight == 0 {
                break;
            }
            if now >= hard_stop {
                interval.error(ErrorKind::Unfinished, in_flight as u64);
                break;
            }
        }
        let wait = next_tick.min(hard_stop).saturating_duration_since(now);
        match poll.poll(&mut events, Some(wait.min(MAX_TURN_WAIT))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        let issuing = now < end && !stop.load(std::sync::atomic::Ordering::Relaxed);
        for event in events.iter() {
            let index = event.token().0;
            let Some(slot) = conns.get_mut(index) else {
                continue;
            };
            let Some(conn) = slot.as_mut() else {
                continue;
            };
            let mut turn = Turn {
                protocol: &mut *protocol,
                index,
                now,
                issuing,
                stats: &mut interval,
                scratch: &mut scratch,
                out: &mut out,
            };
            match turn.serve(conn, event) {
                Ok(answers) if answers > 0 => last_answer = now,
                Ok(_) => {}
                Err(kind) => {
                    interval.error(kind, 1);
                    if let Some(mut c) = slot.take() {
                        let _ = poll.registry().deregister(&mut c.stream);
                    }
                }
            }
        }
        if now >= next_tick && now < end {
            let open = conns.iter().flatten().count();
            on_tick(second, &interval, open);
            total.merge(&interval);
            interval = Stats::new(1);
            while next_tick <= now {
                next_tick += TICK;
                second += 1;
            }
        }
    }
    total.merge(&interval);
    Ok((total, last_answer.saturating_duration_since(start)))
}

/// What one event on one connection works with.
struct Turn<'a, P: LoadProtocol> {
    protocol: &'a mut P,
    index: usize,
    now: Instant,
    issuing: bool,
    stats: &'a mut Stats,
    scratch: &'a mut [u8],
    out: &'a mut Vec<u8>,
}

impl<P: LoadProtocol> Turn<'_, P> {
    /// Handles one event: the answers it completed, or why the connection failed.
    fn serve(
        &mut self,
        conn: &mut Conn<P::Conn>,
        event: &mio::event::Event,
    ) -> Result<u64, ErrorKind> {
        self.out.clear();
        if conn.state.is_none() {
            if event.is_error() || conn.stream.take_error().ok().flatten().is_some() {
                return Err(ErrorKind::ConnectionFailed);
            }
            if conn.stream.peer_addr().is_err() {
                return Ok(0); // still connecting
            }
            let (state, progress) = self.protocol.open(self.index, self.issuing, self.out)?;
            conn.state = Some(state);
            self.send(conn, progress)?;
        }
        // Read what is there; at the end of the stream, first parse what arrived before it
        // (a last answer, a goodbye or an error frame). A short read took everything the
        // socket held: stop there rather than pay a second `recv` per answer to hear
        // "would block" (edge-triggered readiness reports the next arrival as a new event).
        // Not when this event also reported the end of the stream: a FIN queued behind the
        // data raises no further event, so read on until the `Ok(0)`.
        let ending = event.is_read_closed() || event.is_error();
        let mut closed = false;
        loop {
            if conn.inbuf.len() >= MAX_INBUF {
                return Err(ErrorKind::Protocol);
            }
            match conn.stream.read(self.scratch) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    conn.inbuf
                        .extend_from_slice(self.scratch.get(..n).unwrap_or_default());
                    if n < self.scratch.len() && !ending {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(ErrorKind::ConnectionFailed),
            }
        }
        let Some(state) = conn.state.as_mut() else {
            return Ok(0);
        };
        let issuing = self.issuing && !closed;
        let progress = self
            .protocol
            .on_data(state, &mut conn.inbuf, issuing, self.out)?;
        let answers = progress.expected + progress.unexpected;
        if answers > 0 {
            let sent = conn.sent_at.take().ok_or(ErrorKind::Protocol)?;
            let us = u64::try_from(self.now.saturating_duration_since(sent).as_micros());
            let us = us.unwrap_or(u64::MAX);
            for _ in 0..progress.expected {
                self.stats.answered(Some(0), us, true);
            }
            for _ in 0..progress.unexpected {
                self.stats.answered(Some(0), us, false);
            }
        }
        if let Some(end) = progress.end {
            return Err(end);
        }
        if closed {
            return Err(ErrorKind::ConnectionFailed);
        }
        self.send(conn, progress)?;
        Ok(answers)
    }

    /// Writes `out`; the socket holds at most one small request, so it takes all of it.
    fn send(&mut self, conn: &mut Conn<P::Conn>, progress: Progress) -> Result<(), ErrorKind> {
        if progress.sent_request {
            conn.sent_at = Some(self.now);
        }
        if self.out.is_empty() {
            return Ok(());
        }
        let written = conn.stream.write(self.out);
        let whole = matches!(written, Ok(n) if n == self.out.len());
        self.out.clear();
        if whole {
            Ok(())
        } else {
            Err(ErrorKind::ConnectionFailed)
        }
    }
}
