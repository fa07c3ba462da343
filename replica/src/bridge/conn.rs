//! One agent connection as the reactor holds it: the socket, bounded buffers, the protocol
//! session, the lifecycle deadlines and the bookkeeping for backpressure. I/O helpers here do
//! one non-blocking read or write each; the reactor decides when to call them.

use super::admission::Counted;
use super::holds::Holds;
use super::lifecycle::Lifecycle;
use gatehouse_common::session::ServerSession;
use gatehouse_common::wire::frame::{FRAME_HEADER_LEN, MAX_FRAME_LEN, MAX_HANDSHAKE_FRAME_LEN};
use mio::net::TcpStream;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Bytes of responses a connection may have waiting for the socket before the reactor stops
/// reading its requests (backpressure): 128 KiB, far above what 16 in-flight answers need.
pub const WRITE_HIGH_WATER: usize = 128 * 1024;
/// Most bytes a read buffer holds: one whole frame at the cap plus one read's worth. The frame
/// decoder rejects an oversized frame from its header, so this is never exceeded.
pub const READ_BUF_MAX: usize = FRAME_HEADER_LEN + MAX_FRAME_LEN + READ_CHUNK;
/// Most bytes a read buffer holds before the handshake has finished: one handshake frame at its
/// cap. A peer that has proven no key cannot make the server hold more.
pub const HANDSHAKE_READ_BUF_MAX: usize = FRAME_HEADER_LEN + MAX_HANDSHAKE_FRAME_LEN;
/// Bytes asked of the socket per read (the reactor's scratch buffer).
pub const READ_CHUNK: usize = 16 * 1024;
/// Buffers bigger than this are released once empty, so an idle connection costs little.
const KEEP_CAPACITY: usize = 4 * 1024;

/// Why a connection ended (logged with the close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    PeerClosed,
    IoError,
    ProtocolError,
    HandshakeTimeout,
    FrameTimeout,
    Idle,
    Aged,
    ShuttingDown,
    DrainTimeout,
}

/// What a read attempt produced.
pub enum ReadOutcome {
    /// Bytes were appended to the read buffer.
    Data,
    /// Nothing more for now (the socket would block).
    Drained,
    /// The peer closed its side.
    Closed,
}

/// An agent connection.
pub struct Conn {
    pub socket: TcpStream,
    pub peer: SocketAddr,
    pub generation: u64,
    pub session: ServerSession,
    pub lifecycle: Lifecycle,
    /// The proven host name, once established (shared with queued jobs).
    pub host: Option<Arc<str>>,
    pub read_buf: Vec<u8>,
    pub write_buf: Vec<u8>,
    /// Requests queued or in service for this connection.
    pub in_flight: usize,
    /// Edge-triggered readiness remembered between turns.
    pub readable: bool,
    /// The peer's end of stream (or an error) has been signalled: read until the socket says
    /// so, never stop at a short read.
    pub read_closed: bool,
    pub writable: bool,
    /// Last words are in `write_buf`; close once they are out (or the linger ends).
    pub closing: Option<CloseReason>,
    /// Set when the connection must end once in-flight requests are answered.
    pub retire: Option<CloseReason>,
    /// The earliest deadline this connection has in the timer heap.
    pub armed: Option<Instant>,
    /// Queued for flushing at the end of this loop turn.
    pub dirty: bool,
    /// Queued on the reactor's ready list for another turn of reading.
    pub ready: bool,
    pub opened_at: Instant,
    pub requests: u64,
    /// The session keeps its cipher built between frames (counted against
    /// `MAX_PREPARED_SESSIONS`).
    pub cipher_prepared: bool,
    /// What the admission caps counted this connection as (handshake, host, nothing).
    pub counted: Counted,
    /// Answers waiting for their audit records to be durable.
    pub holds: Holds,
}

impl Conn {
    /// A connection just accepted; `aes_allowed`: whether its session may choose AES-256-GCM.
    pub fn new(
        socket: TcpStream,
        peer: SocketAddr,
        generation: u64,
        lifecycle: Lifecycle,
        aes_allowed: bool,
        counted: Counted,
        now: Instant,
    ) -> Self {
        Conn {
            socket,
            peer,
            generation,
            session: ServerSession::new(aes_allowed),
            lifecycle,
            host: None,
            read_buf: Vec::new(),
            write_buf: Vec::new(),
            in_flight: 0,
            readable: false,
            read_closed: false,
            writable: false,
            closing: None,
            retire: None,
            armed: None,
            dirty: false,
            ready: false,
            opened_at: now,
            requests: 0,
            cipher_prepared: false,
            counted,
            holds: Holds::default(),
        }
    }

    /// The largest frame payload this connection may send now: [`MAX_HANDSHAKE_FRAME_LEN`]
    /// until its handshake is done, [`MAX_FRAME_LEN`] after.
    pub fn frame_cap(&self) -> usize {
        if self.session.is_established() {
            MAX_FRAME_LEN
        } else {
            MAX_HANDSHAKE_FRAME_LEN
        }
    }

    /// The host for logs: proven, claimed, or "-".
    pub fn host_for_log(&self) -> &str {
        self.session.host().unwrap_or("-")
    }

    /// True while the connection may not take more requests off its socket.
    pub fn read_blocked(&self, max_in_flight: usize) -> bool {
        self.closing.is_some()
            || self.retire.is_some()
            || self.lifecycle.is_aged()
            || self.in_flight >= max_in_flight
            || self.write_buf.len() >= WRITE_HIGH_WATER
    }

    /// One read into `scratch`, appended to the read buffer. A read shorter than asked means
    /// the socket was empty at that moment (edge-triggered readiness reports later arrivals),
    /// so the connection stops counting as readable: this saves the read that would only say
    /// "would block", one syscall per request. Not once the peer has closed: the end of stream
    /// brings no further event, so it must be read.
    pub fn read_once(&mut self, scratch: &mut [u8]) -> io::Result<ReadOutcome> {
        let max = if self.session.is_established() {
            READ_BUF_MAX
        } else {
            HANDSHAKE_READ_BUF_MAX
        };
        let room = max.saturating_sub(self.read_buf.len()).min(scratch.len());
        if room == 0 {
            // Cannot happen while frames are consumed as they complete; refuse to grow.
            return Err(io::Error::other("read buffer full"));
        }
        loop {
            match self.socket.read(&mut scratch[..room]) {
                Ok(0) => return Ok(ReadOutcome::Closed),
                Ok(n) => {
                    self.read_buf.extend_from_slice(&scratch[..n]);
                    if n < room && !self.read_closed {
                        self.readable = false;
                    }
                    return Ok(ReadOutcome::Data);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(ReadOutcome::Drained);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Drops the first `consumed` bytes of the read buffer, releasing it when empty and large.
    pub fn consume(&mut self, consumed: usize) {
        self.read_buf.drain(..consumed.min(self.read_buf.len()));
        if self.read_buf.is_empty() && self.read_buf.capacity() > KEEP_CAPACITY {
            self.read_buf = Vec::new();
        }
    }

    /// Writes as much of the write buffer as the socket takes, but only the bytes its audit
    /// records allow (`released`: the journal's released sequence; `None` without a journal).
    pub fn flush(&mut self, released: Option<u64>) -> io::Result<()> {
        let limit = match released {
            Some(released) => self.holds.writable(self.write_buf.len(), released),
            None => self.write_buf.len(),
        };
        let mut written = 0;
        let result = loop {
            if written == limit {
                break Ok(());
            }
            match self.socket.write(&self.write_buf[written..limit]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    break Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            }
        };
        self.write_buf.drain(..written);
        self.holds.written(written);
        if self.write_buf.is_empty() && self.write_buf.capacity() > KEEP_CAPACITY {
            self.write_buf = Vec::new();
        }
        result
    }
}
