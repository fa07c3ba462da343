//! One replica link on the master: handshake (only hosts on the replica allow-list), the
//! replica's subscribe, streaming changes (or a snapshot) within the unacknowledged window,
//! acks, heartbeats and the liveness verdict. Driven by the replication reactor.

use super::{LinkTable, CHANGES_PER_READ, MAX_UNACKED_CHANGES};
use crate::hooks::LinkState;
use crate::state::MasterState;
use crate::store::ChangesAfter;
use gatehouse_common::crypto::aes_hardware;
use gatehouse_common::nodekeys::NodeKeyMap;
use gatehouse_common::repl::msg::{pack_changes, snapshot_chunks};
use gatehouse_common::repl::{LinkTimings, Liveness, ReplMessage, Verdict};
use gatehouse_common::session::{ServerInput, ServerSession};
use gatehouse_common::wire::frame::{decode_frame, FRAME_HEADER_LEN, MAX_FRAME_LEN};
use mio::net::TcpStream;
use rand::rngs::StdRng;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

/// Unsent bytes above which the link stops reading more changes from the store until the
/// socket drains (4 MiB).
const OUTBUF_HIGH_WATER: usize = 4 * 1024 * 1024;

enum Phase {
    Handshake,
    AwaitSubscribe,
    Streaming { sent: u64, acked: u64 },
}

/// Why a link ends.
#[derive(Debug, thiserror::Error)]
pub(super) enum Close {
    #[error("closed by the replica")]
    PeerClosed,
    #[error("i/o error: {0}")]
    Io(io::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("no heartbeat within the timeout")]
    Silent,
    #[error("no ack within the request timeout")]
    AnswerOverdue,
    #[error("the replica follows a newer master (epoch {0})")]
    Superseded(u64),
}

/// One connection from a replica.
pub(super) struct Link {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    session: ServerSession,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    pub host: Option<String>,
    liveness: Liveness,
    phase: Phase,
}

/// What a link needs from its surroundings.
pub(super) struct Ctx<'a> {
    pub state: &'a MasterState,
    pub table: &'a LinkTable,
    pub keys: &'a NodeKeyMap,
    pub rng: &'a mut StdRng,
    pub now: Instant,
}

impl Link {
    pub fn new(stream: TcpStream, peer: SocketAddr, timings: LinkTimings, now: Instant) -> Self {
        Link {
            stream,
            peer,
            // AES-256-GCM only where this machine has AES hardware (detected once).
            session: ServerSession::new(aes_hardware()),
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            host: None,
            liveness: Liveness::new(timings, now),
            phase: Phase::Handshake,
        }
    }

    pub fn next_deadline(&self) -> Instant {
        self.liveness.next_deadline()
    }

    /// Reads and handles everything available.
    pub fn on_readable(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Close> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(Close::PeerClosed),
                Ok(n) => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    self.handle_frames(ctx)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return self.flush(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Close::Io(e)),
            }
        }
    }

    fn handle_frames(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Close> {
        loop {
            let consumed = match decode_frame(&self.inbuf, MAX_FRAME_LEN) {
                Ok(Some((consumed, _))) => consumed,
                Ok(None) => return Ok(()),
                Err(e) => return Err(Close::Protocol(e.to_string())),
            };
            let input = self.session.handle_frame(
                &mut self.inbuf[FRAME_HEADER_LEN..consumed],
                ctx.keys,
                ctx.rng,
                &mut self.outbuf,
            );
            // Nothing may borrow the frame once it is drained (a request, refused below, is
            // the only input that would).
            let input = input.map(ServerInput::unless_request);
            self.inbuf.drain(..consumed);
            self.liveness.on_heard(ctx.now);
            match input {
                Ok(Some(ServerInput::Progress)) => {}
                Ok(Some(ServerInput::Established)) => {
                    let host = self.session.host().unwrap_or("-").to_string();
                    log::info!("replica {host} connected from {}", self.peer);
                    ctx.table.update(&host, |r| {
                        r.state = LinkState::Started;
                        r.last_heard = Some(ctx.now);
                    });
                    self.host = Some(host);
                    self.phase = Phase::AwaitSubscribe;
                }
                Ok(Some(ServerInput::Replication(bytes))) => {
                    let msg =
                        ReplMessage::decode(&bytes).map_err(|e| Close::Protocol(e.to_string()))?;
                    self.on_message(msg, ctx)?;
                }
                Ok(None | Some(ServerInput::Request { .. })) => {
                    return Err(Close::Protocol(
                        "agent request on the replication port".into(),
                    ))
                }
                Err(failure) => {
                    log::warn!(
                        "replication link from {} (host {}) refused: {:?}: {}",
                        self.peer,
                        self.session.host().unwrap_or("-"),
                        failure.error.code,
                        failure.error.message
                    );
                    self.session.write_error(&failure.error, &mut self.outbuf);
                    let _ = self.flush();
                    return Err(Close::Protocol(failure.error.message));
                }
            }
        }
    }

    fn on_message(&mut self, msg: ReplMessage, ctx: &mut Ctx<'_>) -> Result<(), Close> {
        let host = self.host.clone().unwrap_or_default();
        if let Some(host) = &self.host {
            ctx.table.update(host, |r| r.last_heard = Some(ctx.now));
        }
        match (msg, &mut self.phase) {
            (
                ReplMessage::Subscribe {
                    applied,
                    epoch,
                    heartbeat_ms,
                },
                Phase::AwaitSubscribe,
            ) => {
                self.liveness
                    .match_peer_interval(std::time::Duration::from_millis(heartbeat_ms));
                let mine = ctx.state.epoch();
                if epoch > mine {
                    // This replica followed a promoted master: we were superseded.
                    log::error!(
                        "replica {host} has followed master epoch {epoch} > ours ({mine}): this master was superseded and accepts no more writes"
                    );
                    if let Err(e) = ctx.state.supersede(epoch) {
                        log::error!("cannot record the supersession: {e}");
                    }
                    self.send(
                        &ReplMessage::Refused {
                            reason: format!(
                                "this master (epoch {mine}) was superseded by epoch {epoch}"
                            ),
                        },
                        ctx.now,
                    );
                    let _ = self.flush();
                    return Err(Close::Superseded(epoch));
                }
                // A replica that has followed some master and knows of none newer than us
                // confirms our epoch; a fresh or wiped one (epoch 0) knows nothing and does not.
                if epoch > 0 {
                    ctx.state.confirm_epoch();
                }
                log::info!("replica {host} subscribed after sequence {applied} (epoch {epoch})");
                ctx.table.update(&host, |r| {
                    r.state = LinkState::Established;
                    r.acked = applied;
                });
                let head = ctx.state.read(|s| s.sequence());
                // First the head and epoch, so the replica knows them before anything else.
                self.send(
                    &ReplMessage::Heartbeat {
                        seq: head,
                        epoch: mine,
                    },
                    ctx.now,
                );
                // A copy from an older epoch may hold changes this master never had (it was
                // ahead of the replica promoted from); a copy ahead of our head cannot be ours.
                // Either way it is replaced whole, never patched.
                let diverged = (epoch < mine && applied > 0) || applied > head;
                if diverged {
                    log::warn!(
                        "replica {host} at sequence {applied} of epoch {epoch} (ours: {head} of epoch {mine}) gets a snapshot: its copy may have diverged"
                    );
                    let seq = self.send_snapshot(ctx)?;
                    self.liveness.expect_answer(ctx.now);
                    self.phase = Phase::Streaming {
                        sent: seq,
                        acked: 0,
                    };
                } else {
                    self.phase = Phase::Streaming {
                        sent: applied,
                        acked: applied,
                    };
                }
                self.catch_up(ctx)
            }
            (ReplMessage::Ack { applied }, Phase::Streaming { sent, acked }) => {
                let progressed = applied.min(*sent) > *acked;
                *acked = applied.min(*sent);
                // The request timeout measures time without progress: each ack that moves
                // forward restarts it while batches are still outstanding, so a long catch-up
                // or a steady stream is never taken for a dead replica.
                if *acked == *sent || progressed {
                    self.liveness.on_answered();
                }
                if *acked < *sent {
                    self.liveness.expect_answer(ctx.now);
                }
                let acked = *acked;
                ctx.table.update(&host, |r| r.acked = acked);
                self.catch_up(ctx)
            }
            (ReplMessage::Heartbeat { .. }, _) => Ok(()),
            (other, _) => Err(Close::Protocol(format!("unexpected {other:?}"))),
        }
    }

    /// Sends what the replica is missing, within the unacknowledged window.
    pub fn catch_up(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Close> {
        let epoch = ctx.state.epoch();
        loop {
            let Phase::Streaming { sent, acked } = self.phase else {
                return Ok(());
            };
            let head = ctx.state.read(|s| s.sequence());
            if sent >= head
                || sent - acked >= MAX_UNACKED_CHANGES
                || self.outbuf.len() >= OUTBUF_HIGH_WATER
            {
                return self.flush();
            }
            let next = match ctx.state.changes_after(sent, CHANGES_PER_READ) {
                Ok(ChangesAfter::Changes(changes)) if !changes.is_empty() => {
                    let (messages, oversized) = pack_changes(&changes, head, epoch);
                    let mut last = sent;
                    for m in &messages {
                        if let ReplMessage::Changes { changes, .. } = m {
                            last = changes.last().map_or(last, |(s, _)| *s);
                        }
                        self.send(m, ctx.now);
                    }
                    if oversized.is_some() {
                        self.send_snapshot(ctx)?
                    } else {
                        last
                    }
                }
                Ok(ChangesAfter::Changes(_)) => return self.flush(),
                Ok(ChangesAfter::Compacted { .. }) => self.send_snapshot(ctx)?,
                Err(e) => return Err(Close::Protocol(format!("cannot read the change log: {e}"))),
            };
            self.liveness.expect_answer(ctx.now);
            if let Phase::Streaming { sent, .. } = &mut self.phase {
                *sent = next;
            }
        }
    }

    fn send_snapshot(&mut self, ctx: &mut Ctx<'_>) -> Result<u64, Close> {
        let (db, seq) = ctx.state.read(|s| s.snapshot());
        let chunks = snapshot_chunks(&db, seq).map_err(|e| Close::Protocol(e.to_string()))?;
        log::info!(
            "replica {} gets a snapshot at sequence {seq} ({} chunks): its sequence is no longer in the change log",
            self.host.as_deref().unwrap_or("-"),
            chunks.len()
        );
        for c in &chunks {
            self.send(c, ctx.now);
        }
        Ok(seq)
    }

    fn send(&mut self, msg: &ReplMessage, now: Instant) {
        match msg.encode() {
            Ok(bytes) => {
                if self
                    .session
                    .write_replication(bytes, &mut self.outbuf)
                    .is_ok()
                {
                    self.liveness.on_sent(now);
                }
            }
            Err(e) => log::error!("cannot encode a replication message: {e}"),
        }
    }

    /// Heartbeats and the liveness verdict.
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Close> {
        match self.liveness.poll(ctx.now) {
            Verdict::Quiet => Ok(()),
            Verdict::SendHeartbeat => {
                if self.session.is_established() {
                    let head = ctx.state.read(|s| s.sequence());
                    let epoch = ctx.state.epoch();
                    self.send(&ReplMessage::Heartbeat { seq: head, epoch }, ctx.now);
                } else {
                    self.liveness.on_sent(ctx.now);
                }
                self.flush()
            }
            Verdict::PeerSilent => Err(Close::Silent),
            Verdict::AnswerOverdue => Err(Close::AnswerOverdue),
        }
    }

    /// Writes what the socket takes.
    pub fn flush(&mut self) -> Result<(), Close> {
        let mut written = 0;
        let result = loop {
            if written == self.outbuf.len() {
                break Ok(());
            }
            match self.stream.write(&self.outbuf[written..]) {
                Ok(0) => break Err(Close::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(Close::Io(e)),
            }
        };
        self.outbuf.drain(..written);
        result
    }
}
