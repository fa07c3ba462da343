//! One local caller's connection in the daemon: who it is (its uid), its input frames, its
//! unsent output, and whether it waits for an answer. Non-blocking I/O on the caller's Unix
//! stream; driven by `daemon::serve`.

use gatehouse_local::codec::{encode_response, FrameBuf, MAX_REQUEST_FRAME};
use gatehouse_local::LocalResponse;
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
    /// An answer is being worked on for this caller (by the engine, the verifier thread or a
    /// failure delay): its next request is read only after it.
    pub pending: bool,
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
            pending: false,
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
