//! A redis GET load client for side-by-side benchmarks: `connections` TCP connections on one
//! mio loop, each with exactly one `GET k` in flight, resent as soon as the reply is in —
//! the same closed loop as the agents with concurrency 1. It reports the same [`Stats`] so
//! the figures print and serialise exactly like a Gatehouse run.
//!
//! Not pure: sockets and the clock. Bounded: connects are spread over the first
//! [`super::worker::MAX_RAMP`], the loop ends at the duration (plus one reply timeout for the
//! last requests), and a connection that fails is counted and not reopened. Called by
//! `gatehouse-loadgen redis`.

use super::resp::{parse_reply, Reply, GET_K};
use super::stats::{ErrorKind, Stats};
use super::worker::MAX_RAMP;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// After the end, how long the last requests may take (1 s) before they count as unfinished.
pub const REDIS_DRAIN: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_secs(1);
const MAX_TURN_WAIT: Duration = Duration::from_millis(100);

struct Conn {
    stream: TcpStream,
    connected: bool,
    sent_at: Option<Instant>,
    inbuf: Vec<u8>,
}

/// One second's counters, handed to the caller's progress printer.
pub type OnTick<'a> = dyn FnMut(u64, &Stats, usize) + 'a;

/// Runs the load; returns the totals and the time from start to the last reply.
pub fn run_redis(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    stop: &std::sync::atomic::AtomicBool,
    on_tick: &mut OnTick<'_>,
) -> io::Result<(Stats, Duration)> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(4096);
    let mut conns: Vec<Option<Conn>> = Vec::with_capacity(connections);
    let start = Instant::now();
    let ramp = MAX_RAMP.min(duration / 4);
    let end = start + duration;
    let hard_stop = end + REDIS_DRAIN;
    let (mut interval, mut total) = (Stats::new(1), Stats::new(1));
    let (mut next_tick, mut second) = (start + TICK, 1);
    let mut last_reply = start;
    let mut scratch = vec![0u8; 64 * 1024];
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
                    connected: false,
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
            let served = serve(conn, event, now, issuing, &mut interval, &mut scratch);
            if served.is_some_and(|replies| replies > 0) {
                last_reply = now;
            }
            if served.is_none() {
                interval.error(ErrorKind::ConnectionFailed, 1);
                if let Some(mut c) = slot.take() {
                    let _ = poll.registry().deregister(&mut c.stream);
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
    Ok((total, last_reply.saturating_duration_since(start)))
}

/// Handles one event on a connection: the replies it completed, `None` when it failed.
fn serve(
    conn: &mut Conn,
    event: &mio::event::Event,
    now: Instant,
    issuing: bool,
    stats: &mut Stats,
    scratch: &mut [u8],
) -> Option<u64> {
    if !conn.connected {
        if event.is_error() || conn.stream.take_error().ok().flatten().is_some() {
            return None;
        }
        if conn.stream.peer_addr().is_err() {
            return Some(0); // still connecting
        }
        conn.connected = true;
        if issuing && !send(conn, now) {
            return None;
        }
    }
    loop {
        match conn.stream.read(scratch) {
            Ok(0) => return None,
            Ok(n) => conn
                .inbuf
                .extend_from_slice(scratch.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
    let mut replies = 0;
    loop {
        match parse_reply(&conn.inbuf) {
            Reply::Incomplete => return Some(replies),
            Reply::Malformed => {
                stats.error(ErrorKind::Protocol, 1);
                return None;
            }
            Reply::Complete { len, error } => {
                conn.inbuf.drain(..len);
                let sent = conn.sent_at.take()?;
                let us = u64::try_from(now.saturating_duration_since(sent).as_micros());
                stats.answered(Some(0), us.unwrap_or(u64::MAX), !error);
                replies += 1;
                if issuing && !send(conn, now) {
                    return None;
                }
            }
        }
    }
}

/// Sends one GET; the socket is empty (one request in flight), so it takes all 23 bytes.
fn send(conn: &mut Conn, now: Instant) -> bool {
    match conn.stream.write(GET_K) {
        Ok(n) if n == GET_K.len() => {
            conn.sent_at = Some(now);
            true
        }
        _ => false,
    }
}
