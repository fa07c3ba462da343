//! One local caller's connection in the daemon: its input frames, its unsent output, and
//! whether it waits for the engine. Non-blocking I/O on the caller's Unix stream; driven by
//! `daemon::serve`.

use crate::engine::RequestId;
use crate::local::frame::{self, FrameBuf, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
use crate::local::{LocalErrorKind, LocalResponse};
use mio::net::UnixStream;
use std::io::{self, Read, Write};
use std::time::Instant;

/// A connected local caller.
pub(super) struct LocalClient {
    pub stream: UnixStream,
    /// Distinguishes this caller from a later one in the same slot.
    pub generation: u64,
    /// The caller's uid as the kernel reported it at connect (`SO_PEERCRED` or the like).
    pub uid: u32,
    pub frames: FrameBuf,
    pub outbuf: Vec<u8>,
    /// The request the engine is working on for this caller (one at a time).
    pub pending: Option<RequestId>,
    /// Close once `outbuf` is written (after a garbage frame).
    pub closing: bool,
    /// Last request or answer, for the idle sweep.
    pub last_active: Instant,
}

/// What one read did.
pub(super) enum ReadResult {
    Data,
    WouldBlock,
    Closed,
}

impl LocalClient {
    pub fn new(stream: UnixStream, generation: u64, uid: u32, now: Instant) -> Self {
        LocalClient {
            stream,
            generation,
            uid,
            frames: FrameBuf::new(MAX_REQUEST_FRAME),
            outbuf: Vec::new(),
            pending: None,
            closing: false,
            last_active: now,
        }
    }

    /// One read into the frame buffer.
    pub fn read_some(&mut self, scratch: &mut [u8]) -> ReadResult {
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return ReadResult::Closed,
                Ok(n) => {
                    self.frames.push(scratch.get(..n).unwrap_or_default());
                    return ReadResult::Data;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadResult::WouldBlock,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return ReadResult::Closed,
            }
        }
    }

    /// Queues `response` and writes what the socket takes.
    pub fn send(&mut self, response: &LocalResponse) -> io::Result<()> {
        self.outbuf.extend(encode_response(response));
        self.flush()
    }

    /// Writes as much of the output as the socket takes.
    pub fn flush(&mut self) -> io::Result<()> {
        let mut written = 0;
        let result = loop {
            let Some(rest) = self.outbuf.get(written..).filter(|r| !r.is_empty()) else {
                break Ok(());
            };
            match self.stream.write(rest) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            }
        };
        self.outbuf.drain(..written);
        result
    }
}

/// The frame for `response`; a response too large to send becomes an error the caller can
/// read (it never is in practice: see `MAX_RESPONSE_FRAME`).
pub(super) fn encode_response(response: &LocalResponse) -> Vec<u8> {
    frame::encode(response, MAX_RESPONSE_FRAME).unwrap_or_else(|e| {
        let fallback = LocalResponse::Error {
            kind: LocalErrorKind::ServerError,
            message: format!("answer could not be encoded: {e}"),
        };
        frame::encode(&fallback, MAX_RESPONSE_FRAME).unwrap_or_default()
    })
}
