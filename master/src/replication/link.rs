//! One replica link on the master: the node-key handshake (only hosts on the replica
//! allow-list), the proof of the master's identity and the switch to the link's own keys
//! (`repl::link_auth`), the replica's subscribe, streaming changes (or a snapshot) within the
//! unacknowledged window, acks, heartbeats, the replica's reports (counted by the central
//! lockout, then acknowledged) and the liveness verdict. Until the replica's
//! `LinkHello` is answered the link is "in the handshake": its frames are capped at
//! [`MAX_HANDSHAKE_FRAME_LEN`] and it must finish within [`HANDSHAKE_TIMEOUT`]. Driven by the
//! replication reactor.

use super::{
    LinkTable, CHANGES_PER_READ, HANDSHAKE_TIMEOUT, MAX_HANDSHAKE_FRAME_LEN, MAX_UNACKED_CHANGES,
    SNAPSHOT_INSTALL_GRACE_PER_MIB,
};
use crate::audit::store::Batch;
use crate::audit::Audit;
use crate::hooks::LinkState;
use crate::self_service::PasswordDesk;
use crate::state::MasterState;
use crate::store::ChangesAfter;
use gatehouse_common::crypto::aes_hardware;
use gatehouse_common::nodekeys::NodeKeyMap;
use gatehouse_common::repl::link_auth::respond;
use gatehouse_common::repl::msg::tag as repl_tag;
use gatehouse_common::repl::{
    pack_changes, snapshot_chunks, LinkTimings, Liveness, MasterSecretKey, ReplMessage, Report,
    Verdict, SNAPSHOT_CHUNK_BYTES,
};
use gatehouse_common::session::{ServerInput, ServerSession};
use gatehouse_common::types::ErrorCode;
use gatehouse_common::wire::frame::{decode_frame, FRAME_HEADER_LEN, MAX_FRAME_LEN};
use gatehouse_common::wire::{ChangeOutcome, WireError};
use mio::net::TcpStream;
use rand::rngs::StdRng;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How soon the link tries the store again when a write held it (2 ms): short next to a
/// change's fsync, and a busy store costs one failed `try_lock` per link per retry.
const STORE_BUSY_RETRY: Duration = Duration::from_millis(2);

/// Unsent bytes above which the link stops reading more changes from the store until the
/// socket drains (4 MiB).
const OUTBUF_HIGH_WATER: usize = 4 * 1024 * 1024;

enum Phase {
    /// The node-key handshake.
    Handshake,
    /// The replica has proven a replica's node key; its `LinkHello` is due.
    AwaitLinkHello,
    /// The master's identity is proven and the link's keys are in use; `Subscribe` is due.
    AwaitSubscribe,
    Streaming {
        sent: u64,
        acked: u64,
    },
}

impl Phase {
    fn in_handshake(&self) -> bool {
        matches!(self, Phase::Handshake | Phase::AwaitLinkHello)
    }
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
    #[error("the replica says it follows a newer master (epoch {0}); not followed")]
    NewerEpoch(u64),
    #[error("the replica refused the link: {0}")]
    RefusedByReplica(String),
    #[error("the handshake did not finish within {HANDSHAKE_TIMEOUT:?}")]
    HandshakeTimeout,
    #[error("replaced by a newer link from the same replica")]
    Replaced,
    /// A second link for a replica whose link is live: refused, the live one kept.
    #[error("{0}")]
    Duplicate(String),
}

/// One connection from a replica.
pub(super) struct Link {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    session: ServerSession,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    /// How much of `outbuf` the socket has taken.
    out_pos: usize,
    pub host: Option<String>,
    liveness: Liveness,
    phase: Phase,
    /// When the handshake must have finished.
    handshake_deadline: Instant,
    /// Set when the link has just become authenticated, for the reactor to close any older
    /// link of the same replica (taken by [`Link::take_authenticated`]).
    authenticated_now: bool,
    /// The replica needs a snapshot, not yet started (the store was busy).
    wants_snapshot: bool,
    /// A snapshot being encoded on its own thread: its chunks and sequence.
    snapshot_job: Option<std::sync::mpsc::Receiver<EncodedSnapshot>>,
    /// Snapshot chunks not yet sealed into `outbuf` (sent as the socket drains).
    snapshot_chunks: VecDeque<ReplMessage>,
    /// When to try the store again after it was busy.
    store_retry: Option<Instant>,
}

/// How many heartbeat intervals a replica's link may be quiet and still count as live when
/// a second link for the same replica arrives (2: a healthy link is heard every interval;
/// one quiet for longer is more likely dead than live, and is replaced, as after a crash
/// whose connection the master has not yet seen close).
pub const DUPLICATE_LIVE_INTERVALS: u32 = 2;

/// A snapshot encoded on its own thread: its chunks and sequence, or why it failed.
type EncodedSnapshot = Result<(Vec<ReplMessage>, u64), String>;

/// What a link needs from its surroundings.
pub(super) struct Ctx<'a> {
    pub state: &'a MasterState,
    /// Where audit records go (stored, then acknowledged by the reactor).
    pub audit: Option<&'a Audit>,
    /// Where forwarded password changes go (applied, then answered by the reactor).
    pub passwords: Option<&'a PasswordDesk>,
    pub table: &'a Arc<LinkTable>,
    pub keys: &'a NodeKeyMap,
    pub master_key: &'a MasterSecretKey,
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
            out_pos: 0,
            host: None,
            liveness: Liveness::new(timings, now),
            phase: Phase::Handshake,
            handshake_deadline: now + HANDSHAKE_TIMEOUT,
            authenticated_now: false,
            wants_snapshot: false,
            snapshot_job: None,
            snapshot_chunks: VecDeque::new(),
            store_retry: None,
        }
    }

    pub fn next_deadline(&self) -> Instant {
        let live = self.liveness.next_deadline();
        let live = self.store_retry.map_or(live, |at| live.min(at));
        match self.phase.in_handshake() {
            true => live.min(self.handshake_deadline),
            false => live,
        }
    }

    /// True while the link has not finished its handshake (the reactor's handshake caps).
    pub fn in_handshake(&self) -> bool {
        self.phase.in_handshake()
    }

    /// The replica host, once the link has just been authenticated (once).
    pub fn take_authenticated(&mut self) -> Option<String> {
        std::mem::take(&mut self.authenticated_now)
            .then(|| self.host.clone())
            .flatten()
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
            // Until the handshake is done no frame may be larger than its largest message.
            let cap = match self.phase.in_handshake() {
                true => MAX_HANDSHAKE_FRAME_LEN,
                false => MAX_FRAME_LEN,
            };
            let consumed = match decode_frame(&self.inbuf, cap) {
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
            // A forwarded password change was opened in place: no copy of its password stays
            // behind in the read buffer, nor in the message's bytes once decoded.
            let secret = matches!(&input, Ok(Some(ServerInput::Replication(b)))
                if b.first() == Some(&repl_tag::PASSWORD_CHANGE));
            if secret {
                zeroize::Zeroize::zeroize(&mut self.inbuf[..consumed]);
            }
            self.inbuf.drain(..consumed);
            self.liveness.on_heard(ctx.now);
            match input {
                Ok(Some(ServerInput::Progress)) => {}
                Ok(Some(ServerInput::Established)) => {
                    let host = self.session.host().unwrap_or("-").to_string();
                    log::debug!("replica {host} proved its node key from {}", self.peer);
                    self.host = Some(host);
                    self.phase = Phase::AwaitLinkHello;
                }
                Ok(Some(ServerInput::Replication(mut bytes))) => {
                    let msg = ReplMessage::decode(&bytes);
                    if secret {
                        zeroize::Zeroize::zeroize(&mut bytes);
                    }
                    self.on_message(msg.map_err(|e| Close::Protocol(e.to_string()))?, ctx)?;
                }
                Ok(None | Some(ServerInput::Request { .. })) => {
                    return Err(Close::Protocol(
                        "agent request on the replication port".into(),
                    ))
                }
                Err(mut failure) => {
                    let host = self.session.host().unwrap_or("-").to_string();
                    if failure.error.code == ErrorCode::UnknownHost && is_registered(ctx, &host) {
                        // The handshake only knows the allow-list's keys; a registered host
                        // is told the true reason. (Whether a name is registered is no secret
                        // from the network: the agents' port answers its hello either way.)
                        failure.error.message = format!(
                            "host `{host}` is not on the replica allow-list (gatehouse-admin replica add {host})"
                        );
                    }
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
        if !self.phase.in_handshake() {
            ctx.table.update(&host, |r| r.last_heard = Some(ctx.now));
        }
        match (msg, &mut self.phase) {
            (ReplMessage::LinkHello(_), Phase::AwaitLinkHello)
                if ctx.table.has_live_link(
                    &host,
                    ctx.now,
                    self.liveness.timings().heartbeat_interval * DUPLICATE_LIVE_INTERVALS,
                ) =>
            {
                // Another link of this replica is up and heard from: a second process with
                // the same host and key. The live one keeps its link (taking it over would
                // make the real replica show as disconnected, and the two would then take
                // turns); this one is told why, and retries with its backoff.
                let message = format!(
                    "replica `{host}` already has a live link to this master: is a second process running with this replica's host and node key?"
                );
                let error = WireError::new(ErrorCode::UnexpectedMessage, message.clone());
                self.session.write_error(&error, &mut self.outbuf);
                let _ = self.flush();
                Err(Close::Duplicate(message))
            }
            (ReplMessage::LinkHello(hello), Phase::AwaitLinkHello) => {
                let node_key = ctx
                    .keys
                    .get(&host)
                    .ok_or_else(|| Close::Protocol(format!("{host} is no longer a replica")))?;
                let epoch = ctx.state.epoch();
                let (auth, keys) = respond(&hello, &host, node_key, ctx.master_key, epoch, ctx.rng)
                    .map_err(|e| Close::Protocol(e.to_string()))?;
                // The proof goes out under the node-key session; everything after it under the
                // link's own keys, which only this master and the replica can compute.
                self.send(&ReplMessage::LinkAuth(auth), ctx.now);
                self.session
                    .rekey(&keys)
                    .map_err(|f| Close::Protocol(f.error.message))?;
                log::info!("replica {host} connected from {}", self.peer);
                ctx.table.update(&host, |r| {
                    r.state = LinkState::Started;
                    r.last_heard = Some(ctx.now);
                });
                self.authenticated_now = true;
                self.phase = Phase::AwaitSubscribe;
                Ok(())
            }
            (
                ReplMessage::Subscribe {
                    applied,
                    epoch,
                    heartbeat_ms,
                },
                Phase::AwaitSubscribe,
            ) => {
                self.liveness
                    .match_peer_interval(Duration::from_millis(heartbeat_ms));
                let mine = ctx.state.epoch();
                if epoch > mine {
                    // A replica's word is not proof (any holder of its node key can say
                    // anything): refuse this link, change nothing. Writes keep their state.
                    log::warn!(
                        "replica {host} says it follows master epoch {epoch}, above ours ({mine}); if a replica was promoted, decommission this master"
                    );
                    ctx.state.note_refusal(
                        &host,
                        &format!("it says it follows master epoch {epoch} (ours is {mine})"),
                    );
                    let reason = format!("this master's epoch is {mine}, below yours ({epoch})");
                    self.send(&ReplMessage::Refused { reason }, ctx.now);
                    let _ = self.flush();
                    return Err(Close::NewerEpoch(epoch));
                }
                // A replica holding our epoch knows of no newer master: writes may go ahead.
                if epoch == mine {
                    ctx.state.confirm_epoch(&host);
                }
                log::info!("replica {host} subscribed after sequence {applied} (epoch {epoch})");
                ctx.table.update(&host, |r| {
                    r.state = LinkState::Established;
                    r.acked = applied;
                });
                let head = ctx.state.db_status().sequence();
                // First the head, so the replica knows it before anything else.
                self.send(&ReplMessage::Heartbeat { seq: head }, ctx.now);
                // A copy from an older epoch may hold changes this master never had (it was
                // ahead of the replica promoted from); a copy ahead of our head cannot be ours.
                // Either way it is replaced whole, never patched.
                let diverged = (epoch < mine && applied > 0) || applied > head;
                if diverged {
                    log::warn!(
                        "replica {host} at sequence {applied} of epoch {epoch} (ours: {head} of epoch {mine}) gets a snapshot: its copy may have diverged"
                    );
                    self.wants_snapshot = true;
                    self.phase = Phase::Streaming { sent: 0, acked: 0 };
                } else {
                    self.phase = Phase::Streaming {
                        sent: applied,
                        acked: applied,
                    };
                }
                self.catch_up(ctx)
            }
            (ReplMessage::Ack { applied, epoch }, Phase::Streaming { sent, acked }) => {
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
                // A fresh or older copy now holds our epoch (it adopts it with our first
                // batch or snapshot): it confirms us as a replica that held it all along does.
                if epoch == ctx.state.epoch() {
                    ctx.state.confirm_epoch(&host);
                }
                self.catch_up(ctx)
            }
            // An audit stream: stored once (the audit store), acknowledged by the reactor once
            // the store's commit is on disk. A full ingest queue means no ack: the replica
            // sends it again on its next link.
            (
                ReplMessage::Report {
                    stream,
                    first,
                    records,
                },
                Phase::Streaming { .. },
            ) if records.first().is_some_and(Report::is_audit) => {
                let Some(audit) = ctx.audit else {
                    return Err(Close::Protocol(
                        "audit records, but this master keeps no audit trail".into(),
                    ));
                };
                let mut audited = Vec::with_capacity(records.len());
                for record in records {
                    match record {
                        Report::Audit(r) => audited.push(r),
                        Report::PasswordFailure(_) => {
                            return Err(Close::Protocol(
                                "a report mixes audit and lockout records".into(),
                            ))
                        }
                    }
                }
                audit.submit(Batch {
                    server: host,
                    stream,
                    first,
                    records: audited,
                });
                Ok(())
            }
            // The report channel: failed password checks for the central lockout, each counted
            // once however often the replica sends it (the ledger), then acknowledged.
            (
                ReplMessage::Report {
                    stream,
                    first,
                    records,
                },
                Phase::Streaming { .. },
            ) => {
                let now_ms = crate::lockout::unix_ms(std::time::SystemTime::now());
                let through = ctx
                    .state
                    .lockout()
                    .receive_report(&host, stream, first, &records, now_ms);
                self.send(&ReplMessage::ReportAck { stream, through }, ctx.now);
                self.flush()
            }
            // A user's own password change, its old password verified by the replica: applied
            // on the desk's thread, answered by the reactor. Never applied twice: the replica
            // sends each once.
            (ReplMessage::PasswordChange { id, request }, Phase::Streaming { .. }) => {
                let queued = match ctx.passwords {
                    Some(desk) => desk.submit(&host, id, request),
                    None => {
                        let mut request = request;
                        request.wipe();
                        Err(ChangeOutcome::unavailable(
                            "this master takes no password changes",
                        ))
                    }
                };
                match queued {
                    Ok(()) => Ok(()),
                    Err(outcome) => self.answer_change(id, outcome, ctx.now),
                }
            }
            (ReplMessage::Heartbeat { .. }, phase) if !phase.in_handshake() => Ok(()),
            (ReplMessage::Refused { reason }, _) => {
                log::warn!("replica {host} refused this master: {reason:?}");
                ctx.state.note_refusal(&host, &reason);
                Err(Close::RefusedByReplica(reason))
            }
            (other, _) => Err(Close::Protocol(format!("unexpected {}", other.name()))),
        }
    }

    /// Sends what the replica is missing, within the unacknowledged window. Never waits for
    /// the store: while a write holds it, this is tried again at the write's commit (or the
    /// next heartbeat), so the link's heartbeats go on through a long import.
    pub fn catch_up(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Close> {
        loop {
            let Phase::Streaming { sent, acked } = self.phase else {
                return Ok(());
            };
            // A snapshot goes out as the socket takes it, never more than the high-water mark
            // ahead, so heartbeats go between its chunks and a loop turn stays short.
            while !self.snapshot_chunks.is_empty() {
                while self.unsent() < OUTBUF_HIGH_WATER {
                    let Some(chunk) = self.snapshot_chunks.pop_front() else {
                        break;
                    };
                    self.send(&chunk, ctx.now);
                }
                self.flush()?;
                if self.unsent() > 0 {
                    // The socket is full: its next writable event brings us back here.
                    return Ok(());
                }
            }
            if self.snapshot_chunks.capacity() > 0 {
                // A snapshot went out whole: its queue and the buffer it grew are given back
                // (a million users' snapshot is hundreds of MiB), so the master's memory does
                // not keep the high-water mark of every snapshot it ever sent.
                self.snapshot_chunks = VecDeque::new();
                self.outbuf.shrink_to(OUTBUF_HIGH_WATER);
                crate::store::return_free_memory();
            }
            if self.snapshot_job.is_some() || self.wants_snapshot {
                match self.poll_snapshot(ctx)? {
                    Some(seq) => {
                        if let Phase::Streaming { sent, .. } = &mut self.phase {
                            *sent = seq;
                        }
                        continue;
                    }
                    None => return self.flush(),
                }
            }
            let head = ctx.state.db_status().sequence();
            if sent >= head
                || sent - acked >= MAX_UNACKED_CHANGES
                || self.unsent() >= OUTBUF_HIGH_WATER
            {
                return self.flush();
            }
            let Some(read) = ctx.state.try_changes_after(sent, CHANGES_PER_READ) else {
                self.store_retry = Some(ctx.now + STORE_BUSY_RETRY);
                return self.flush();
            };
            let next = match read {
                Ok(ChangesAfter::Changes(changes)) if !changes.is_empty() => {
                    let (messages, oversized) = pack_changes(&changes, head);
                    let mut last = sent;
                    for m in &messages {
                        if let ReplMessage::Changes { changes, .. } = m {
                            last = changes.last().map_or(last, |(s, _)| *s);
                        }
                        self.send(m, ctx.now);
                    }
                    if oversized.is_some() {
                        self.wants_snapshot = true;
                    }
                    last
                }
                Ok(ChangesAfter::Changes(_)) => return self.flush(),
                Ok(ChangesAfter::Compacted { .. } | ChangesAfter::Replaced { .. }) => {
                    self.wants_snapshot = true;
                    continue;
                }
                Err(e) => return Err(Close::Protocol(format!("cannot read the change log: {e}"))),
            };
            self.liveness.expect_answer(ctx.now);
            if let Phase::Streaming { sent, .. } = &mut self.phase {
                *sent = next;
            }
        }
    }

    /// Moves a wanted snapshot along: starts encoding it on its own thread (the database at
    /// its sequence, taken from the store without waiting), and once it is encoded sends its
    /// chunks and returns its sequence. The replication loop keeps beating meanwhile: encoding
    /// a million users takes seconds.
    fn poll_snapshot(&mut self, ctx: &mut Ctx<'_>) -> Result<Option<u64>, Close> {
        if self.wants_snapshot {
            let Some((policy, seq)) = ctx.state.try_snapshot() else {
                self.store_retry = Some(ctx.now + STORE_BUSY_RETRY);
                return Ok(None);
            };
            let (tx, rx) = std::sync::mpsc::channel();
            let table = ctx.table.clone();
            std::thread::Builder::new()
                .name("snapshot".into())
                .spawn(move || {
                    let db = policy.to_database();
                    drop(policy);
                    let chunks = snapshot_chunks(&db, seq);
                    // The model is a transient several times the snapshot's size: freed here
                    // and handed back to the system, or this thread's arena keeps it.
                    drop(db);
                    crate::store::return_free_memory();
                    let _ = tx.send(chunks.map(|c| (c, seq)).map_err(|e| e.to_string()));
                    table.wake();
                })
                .map_err(Close::Io)?;
            self.wants_snapshot = false;
            self.snapshot_job = Some(rx);
        }
        let Some(job) = &self.snapshot_job else {
            return Ok(None);
        };
        let (chunks, seq) = match job.try_recv() {
            Err(std::sync::mpsc::TryRecvError::Empty) => return Ok(None),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                return Err(Close::Protocol("the snapshot encoder stopped".into()))
            }
            Ok(encoded) => encoded.map_err(Close::Protocol)?,
        };
        self.snapshot_job = None;
        self.send_snapshot(chunks, seq, ctx.now);
        Ok(Some(seq))
    }

    /// Queues an encoded snapshot for sending; the replica's ack may take the snapshot's
    /// install grace ([`SNAPSHOT_INSTALL_GRACE_PER_MIB`]).
    fn send_snapshot(&mut self, chunks: Vec<ReplMessage>, seq: u64, now: Instant) {
        log::info!(
            "replica {} gets a snapshot at sequence {seq} ({} chunks): its sequence is no longer in the change log, or an import replaced the database",
            self.host.as_deref().unwrap_or("-"),
            chunks.len()
        );
        let mib = u32::try_from(chunks.len() * SNAPSHOT_CHUNK_BYTES / (1024 * 1024) + 1)
            .unwrap_or(u32::MAX);
        self.snapshot_chunks = chunks.into();
        let grace = SNAPSHOT_INSTALL_GRACE_PER_MIB.saturating_mul(mib);
        self.liveness.expect_answer_within(now, grace);
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

    /// Acknowledges an audit batch the store has on disk (from the reactor), if this link is
    /// streaming.
    pub fn ack_report(&mut self, stream: u64, through: u64, now: Instant) -> Result<(), Close> {
        if !matches!(self.phase, Phase::Streaming { .. }) {
            return Ok(());
        }
        self.send(&ReplMessage::ReportAck { stream, through }, now);
        self.flush()
    }

    /// Answers a replica's password change (from the reactor, or at once when refused).
    pub fn answer_change(
        &mut self,
        id: u64,
        outcome: ChangeOutcome,
        now: Instant,
    ) -> Result<(), Close> {
        self.send(&ReplMessage::PasswordChangeResult { id, outcome }, now);
        self.flush()
    }

    /// Heartbeats and the liveness verdict.
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Close> {
        if self.phase.in_handshake() && ctx.now >= self.handshake_deadline {
            return Err(Close::HandshakeTimeout);
        }
        if self.store_retry.is_some_and(|at| at <= ctx.now) {
            self.store_retry = None;
            self.catch_up(ctx)?;
        }
        match self.liveness.poll(ctx.now) {
            Verdict::Quiet => Ok(()),
            Verdict::SendHeartbeat => {
                if !self.phase.in_handshake() {
                    let head = ctx.state.db_status().sequence();
                    self.send(&ReplMessage::Heartbeat { seq: head }, ctx.now);
                } else {
                    self.liveness.on_sent(ctx.now);
                }
                // Also the retry of what a busy store postponed.
                self.catch_up(ctx)
            }
            Verdict::PeerSilent => Err(Close::Silent),
            Verdict::AnswerOverdue => Err(Close::AnswerOverdue),
        }
    }

    /// Writes what the socket takes. The written part is dropped from the front of the buffer
    /// only once it is at least half of it, so a large buffer is not moved on every write.
    pub fn flush(&mut self) -> Result<(), Close> {
        let result = loop {
            if self.out_pos == self.outbuf.len() {
                break Ok(());
            }
            match self.stream.write(&self.outbuf[self.out_pos..]) {
                Ok(0) => break Err(Close::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(Close::Io(e)),
            }
        };
        if self.out_pos == self.outbuf.len() {
            self.outbuf.clear();
            self.out_pos = 0;
        } else if self.out_pos * 2 >= self.outbuf.len() {
            self.outbuf.drain(..self.out_pos);
            self.out_pos = 0;
        }
        result
    }

    /// Bytes sealed and not yet taken by the socket.
    fn unsent(&self) -> usize {
        self.outbuf.len() - self.out_pos
    }
}

/// Whether `host` is a registered host (on the allow-list or not).
fn is_registered(ctx: &Ctx<'_>, host: &str) -> bool {
    ctx.state.policy().load().has_host(host)
}
