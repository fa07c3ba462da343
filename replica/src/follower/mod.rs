//! A replica following its master: one thread that keeps a link to a master, resumes from
//! the sequence persisted in its own store, applies each batch (or snapshot) atomically and
//! durably, publishes the new policy and node keys to the bridge (arc-swap), and acknowledges.
//! It reconnects forever with jittered exponential backoff (capped near half a second for a
//! while after a healthy link, `pacing.rs`); while the master is gone the
//! replica keeps serving agents from its last copy and reports how stale it is. Nothing here
//! ever stops the bridge (the SDM seed's shutdown cascade). On each link it also sends the
//! replica's reports to the master (failed password checks, and the audit journal's records:
//! `reporting.rs`) and users' own password changes (`crate::password_change::Forwarder`).

pub mod config;
mod link;
mod pacing;
mod reporting;
mod status;
#[cfg(test)]
mod tests;

pub use config::{FollowConfig, FollowFile, PinnedMaster};
pub use status::{FollowerStatus, LinkState};

use crate::audit::{Journal, Relay};
use crate::bridge::DbStatus;
use crate::password_change::Forwarder;
use crate::reports::Reports;
use crate::store::Store;
use arc_swap::ArcSwap;
use gatehouse_common::backoff::Backoff;
use gatehouse_common::nodekeys::{NodeKey, NodeKeyStore};
use gatehouse_common::policy::PolicySnapshot;
use gatehouse_common::repl::codec::decode_database;
use gatehouse_common::repl::{Liveness, ReplMessage, SnapshotAssembler, Verdict};
use link::{Incoming, Link, LinkError};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// While batches stream in, the status file is rewritten at most this often (a change of
/// link state is written at once): a busy link must not turn into a stream of file writes.
pub const STATUS_WRITE_INTERVAL: Duration = Duration::from_millis(100);

/// How often the follower checks whether a snapshot install has finished while it keeps the
/// link alive (50 ms): short next to the ack it then sends, long enough to cost nothing.
const INSTALL_POLL: Duration = Duration::from_millis(50);

/// What handling one message asks for next.
enum Handled {
    /// Send this answer (an ack), or nothing.
    Answer(Option<ReplMessage>),
    /// A complete snapshot, still encoded: decode and install it, then ack.
    Install(Vec<u8>, u64),
}

/// What the follower publishes into.
pub struct Published {
    pub policy: Arc<ArcSwap<PolicySnapshot>>,
    pub keys: Arc<NodeKeyStore>,
    pub db: Arc<DbStatus>,
    /// What the replica reports to the master (filled by its request handler).
    pub reports: Arc<Reports>,
    /// The audit journal whose records go to the master, if the replica keeps one.
    pub audit: Option<Arc<Journal>>,
    /// Users' own password changes for the master (filled by the request handler).
    pub passwords: Option<Arc<Forwarder>>,
}

/// Starts the follower thread; returns its status for the probe replies and status file.
pub fn spawn(
    config: FollowConfig,
    key: NodeKey,
    store: Store,
    published: Published,
) -> std::io::Result<Arc<Mutex<FollowerStatus>>> {
    let status = Arc::new(Mutex::new(FollowerStatus::new(
        store.sequence(),
        store.epoch(),
    )));
    let shared = status.clone();
    std::thread::Builder::new()
        .name("follower".into())
        .spawn(move || {
            let relay = published.audit.clone().map(Relay::new);
            let mut follower = Follower {
                relay,
                config,
                key,
                store,
                published,
                status: shared,
                rng: StdRng::from_entropy(),
                backoff: Backoff::new(),
                status_written: Instant::now(),
                status_dirty: false,
                status_failing: false,
                link_epoch: 0,
            };
            follower.run()
        })?;
    Ok(status)
}

struct Follower {
    /// Reads the audit journal for the master.
    relay: Option<Relay>,
    config: FollowConfig,
    key: NodeKey,
    store: Store,
    published: Published,
    status: Arc<Mutex<FollowerStatus>>,
    rng: StdRng,
    backoff: Backoff,
    status_written: Instant,
    /// Something changed since the status file was last written.
    status_dirty: bool,
    /// The last write of the status file failed: the failure was logged once, and is not
    /// again until a write succeeds (it would otherwise log every write interval).
    status_failing: bool,
    /// The epoch of the master on the current link (signed in its proof of identity).
    link_epoch: u64,
}

impl Follower {
    fn run(&mut self) {
        let mut next = 0;
        let mut pacing = pacing::Pacing::default();
        loop {
            let master = self.config.masters[next % self.config.masters.len()].clone();
            next += 1;
            let address = master.address;
            self.set_phase(LinkState::Started, Some(address));
            let attempt = Instant::now();
            match self.follow(&master) {
                Ok(()) => {}
                Err(e) => log::warn!("replication link to {address}: {e}"),
            }
            // Changes waiting for this link are answered now; none is sent on the next.
            if let Some(passwords) = &self.published.passwords {
                passwords.on_link_down();
            }
            self.set_phase(LinkState::Disconnected, Some(address));
            // A link on which the master was heard was healthy: come back fast.
            let now = Instant::now();
            if self.status.lock().last_heard.is_some_and(|t| t >= attempt) {
                pacing.healthy_link_lost(now);
            }
            let backoff = self.backoff.next_delay(&mut self.rng);
            let delay = pacing.delay(backoff, now, &mut self.rng);
            self.set_phase(LinkState::Reconnecting, Some(address));
            log::info!("reconnecting to a master in {delay:?}");
            // The real reconnect delay (jittered backoff), not a synchronisation sleep.
            std::thread::sleep(delay);
        }
    }

    fn follow(&mut self, pinned: &PinnedMaster) -> Result<(), LinkError> {
        let timings = self.config.timings;
        let master = pinned.address;
        let (mut link, epoch) = Link::open(
            pinned,
            &self.config.host,
            &self.key,
            self.config.connect_timeout,
            timings.heartbeat_timeout,
            &mut self.rng,
        )?;
        // The epoch is signed by the pinned master; one older than an epoch this replica
        // already followed is a former master come back: tell it why, and leave.
        if let Err(e) = self.check_epoch(epoch) {
            let reason = format!(
                "this replica follows master epoch {}, above yours ({epoch})",
                self.store.epoch()
            );
            let _ = link.send(&ReplMessage::Refused { reason });
            return Err(e);
        }
        self.link_epoch = epoch;
        let applied = self.store.sequence();
        link.send(&ReplMessage::Subscribe {
            applied,
            epoch: self.store.epoch(),
            heartbeat_ms: timings.heartbeat_interval.as_millis() as u64,
        })?;
        log::info!("following {master} from sequence {applied}");
        // Whatever this master has not acknowledged goes again, oldest first.
        self.published.reports.with(|outbox| outbox.on_link_up());
        if let Some(relay) = self.relay.as_mut() {
            relay.on_link_up();
        }
        if let Some(passwords) = &self.published.passwords {
            passwords.on_link_up();
        }
        let poll = match self.relay {
            Some(_) => reporting::AUDIT_POLL_INTERVAL,
            None => reporting::REPORT_POLL_INTERVAL,
        };
        self.set_phase(LinkState::Established, Some(master));
        let mut liveness = Liveness::new(timings, Instant::now());
        let mut snapshot = SnapshotAssembler::default();
        // Messages that arrived while a snapshot was being installed, handled next in order.
        let mut held: VecDeque<ReplMessage> = VecDeque::new();
        loop {
            let deadline = match self.status_dirty {
                true => liveness
                    .next_deadline()
                    .min(self.status_written + STATUS_WRITE_INTERVAL),
                false => liveness.next_deadline(),
            };
            let deadline = deadline.min(Instant::now() + poll);
            let incoming = match held.pop_front() {
                Some(msg) => Incoming::Message(msg),
                None => link.receive(deadline)?,
            };
            if self.status_dirty && Instant::now() >= self.status_written + STATUS_WRITE_INTERVAL {
                self.write_status();
            }
            let now = Instant::now();
            match incoming {
                Incoming::Tick => match liveness.poll(now) {
                    Verdict::Quiet => {}
                    Verdict::SendHeartbeat => {
                        link.send(&ReplMessage::Heartbeat {
                            seq: self.store.sequence(),
                        })?;
                        liveness.on_sent(now);
                    }
                    Verdict::PeerSilent => return Err(LinkError::Silent),
                    Verdict::AnswerOverdue => return Err(LinkError::Overdue),
                },
                Incoming::Message(ReplMessage::ReportAck { stream, through }) => {
                    liveness.on_heard(now);
                    self.status.lock().last_heard = Some(now);
                    self.on_report_ack(stream, through, &mut liveness, now);
                }
                Incoming::Message(ReplMessage::PasswordChangeResult { id, outcome }) => {
                    liveness.on_heard(now);
                    self.status.lock().last_heard = Some(now);
                    if let Some(passwords) = &self.published.passwords {
                        passwords.on_result(id, outcome);
                    }
                }
                Incoming::Message(msg) => {
                    liveness.on_heard(now);
                    self.status.lock().last_heard = Some(now);
                    let answer = match self.on_message(msg, &mut snapshot)? {
                        Handled::Answer(answer) => answer,
                        Handled::Install(encoded, seq) => {
                            let mut keep = |m| held.push_back(m);
                            self.install_alive(&mut link, &mut liveness, encoded, seq, &mut keep)?;
                            Some(self.ack())
                        }
                    };
                    if let Some(ack) = answer {
                        link.send(&ack)?;
                        liveness.on_sent(Instant::now());
                        self.backoff.reset();
                    }
                    self.status_dirty = true;
                    if now >= self.status_written + STATUS_WRITE_INTERVAL {
                        self.write_status();
                    }
                }
            }
            // A long stream (a snapshot's chunks) never gives a quiet moment: heartbeats are
            // due by the clock, not only when a read times out.
            if liveness.poll(Instant::now()) == Verdict::SendHeartbeat {
                link.send(&ReplMessage::Heartbeat {
                    seq: self.store.sequence(),
                })?;
                liveness.on_sent(Instant::now());
            }
            self.send_reports(&mut link, &mut liveness)?;
        }
    }

    /// Applies one message; returns the ack to send, if any, or a complete snapshot to
    /// install.
    fn on_message(
        &mut self,
        msg: ReplMessage,
        snapshot: &mut SnapshotAssembler,
    ) -> Result<Handled, LinkError> {
        match msg {
            ReplMessage::Changes { head, changes } => {
                let applied = self.store.sequence();
                let fresh: Vec<_> = changes
                    .into_iter()
                    .filter(|(seq, _)| *seq > applied)
                    .collect();
                if !fresh.is_empty() {
                    self.store
                        .apply_batch(&fresh)
                        .map_err(|e| LinkError::Store(e.to_string()))?;
                    self.publish();
                }
                // The master streams changes only to a copy it has vouched for (same epoch,
                // or an empty copy): now it is this epoch's.
                self.adopt_epoch(self.link_epoch)?;
                self.note_head(head);
                Ok(Handled::Answer(Some(self.ack())))
            }
            ReplMessage::SnapshotChunk {
                seq,
                index,
                last,
                data,
            } => {
                match snapshot
                    .push_encoded(seq, index, last, &data)
                    .map_err(|e| LinkError::Protocol(e.to_string()))?
                {
                    None => Ok(Handled::Answer(None)),
                    Some((encoded, seq)) => Ok(Handled::Install(encoded, seq)),
                }
            }
            ReplMessage::Heartbeat { seq } => {
                self.note_head(seq);
                Ok(Handled::Answer(None))
            }
            ReplMessage::Refused { reason } => Err(LinkError::Refused(reason)),
            other => Err(LinkError::Protocol(format!("unexpected {}", other.name()))),
        }
    }

    /// What the copy now holds: its sequence and the master epoch it follows.
    fn ack(&self) -> ReplMessage {
        ReplMessage::Ack {
            applied: self.store.sequence(),
            epoch: self.store.epoch(),
        }
    }

    /// Never follows a master older than one this replica already followed (a former master
    /// that came back). A higher epoch is not adopted here but by `adopt_epoch`, once a batch
    /// or snapshot from it arrives.
    fn check_epoch(&self, epoch: u64) -> Result<(), LinkError> {
        let known = self.store.epoch();
        if epoch < known {
            return Err(LinkError::Refused(format!(
                "master epoch {epoch} is older than {known}, which this replica already followed"
            )));
        }
        Ok(())
    }

    /// Records a newer master epoch, only once the copy has been brought in line with that
    /// master (a batch it streamed, or its snapshot): a heartbeat alone proves nothing, and a
    /// copy from the older epoch may hold changes the new master never had, which it replaces
    /// with a snapshot. A crash before this is recorded just means another snapshot.
    fn adopt_epoch(&mut self, epoch: u64) -> Result<(), LinkError> {
        if epoch > self.store.epoch() {
            self.store
                .set_epoch(epoch)
                .map_err(|e| LinkError::Store(e.to_string()))?;
            self.status.lock().epoch = epoch;
        }
        Ok(())
    }

    /// The master's head: when we have all of it, our copy is confirmed current now.
    fn note_head(&mut self, head: u64) {
        let applied = self.store.sequence();
        let mut status = self.status.lock();
        status.master_head = head;
        status.applied = applied;
        if head <= applied {
            self.published.db.confirm(applied);
        }
    }

    /// Decodes and installs a snapshot on a worker thread while this one keeps the link alive
    /// (decoding a million users takes seconds too): it sends
    /// heartbeats when due and reads what the master sends (kept for after, in order), so a
    /// long install of a large database is never taken for a dead replica. The master allows
    /// the ack the snapshot's install grace (`SNAPSHOT_INSTALL_GRACE_PER_MIB`).
    fn install_alive(
        &mut self,
        link: &mut Link,
        liveness: &mut Liveness,
        encoded: Vec<u8>,
        seq: u64,
        hold: &mut dyn FnMut(ReplMessage),
    ) -> Result<(), LinkError> {
        log::info!("installing a snapshot at sequence {seq}");
        let started = Instant::now();
        let applied = self.store.sequence();
        let store = &mut self.store;
        let installed = std::thread::scope(|scope| {
            let worker = std::thread::Builder::new()
                .name("snapshot".into())
                .spawn_scoped(scope, move || {
                    let db = decode_database(&encoded)
                        .map_err(|e| LinkError::Protocol(format!("snapshot: {e}")))?;
                    drop(encoded);
                    store
                        .install_snapshot(&db, seq, &mut |_| {})
                        .map_err(|e| LinkError::Store(e.to_string()))?;
                    Ok::<_, LinkError>(db.users.len())
                })
                .map_err(LinkError::Io)?;
            while !worker.is_finished() {
                let deadline = liveness.next_deadline().min(Instant::now() + INSTALL_POLL);
                match link.receive(deadline)? {
                    Incoming::Message(msg) => {
                        liveness.on_heard(Instant::now());
                        hold(msg);
                    }
                    Incoming::Tick => match liveness.poll(Instant::now()) {
                        Verdict::SendHeartbeat => {
                            link.send(&ReplMessage::Heartbeat { seq: applied })?;
                            liveness.on_sent(Instant::now());
                        }
                        Verdict::PeerSilent => return Err(LinkError::Silent),
                        Verdict::Quiet | Verdict::AnswerOverdue => {}
                    },
                }
            }
            worker
                .join()
                .map_err(|_| LinkError::Store("the snapshot install panicked".into()))
        })?;
        let users = installed?;
        // The snapshot's model and bytes are gone: give their memory back.
        crate::store::return_free_memory();
        log::info!(
            "installed the snapshot at sequence {seq} ({users} users) in {:?}",
            started.elapsed()
        );
        self.publish();
        self.status.lock().snapshots += 1;
        self.adopt_epoch(self.link_epoch)
    }

    fn publish(&mut self) {
        let policy = self.store.policy();
        // An unchanged database keeps the very snapshot readers hold (no store, no new
        // pointer); the node keys likewise when no host changed (`NodeKeyStore::publish`).
        if !Arc::ptr_eq(&self.published.policy.load(), &policy) {
            self.published.keys.publish(policy.node_keys());
            self.published.policy.store(policy);
        }
        let mut status = self.status.lock();
        status.applied = self.store.sequence();
    }

    fn set_phase(&mut self, phase: LinkState, master: Option<std::net::SocketAddr>) {
        {
            let mut status = self.status.lock();
            status.phase = phase;
            status.master = master;
        }
        self.write_status();
    }

    fn write_status(&mut self) {
        self.status_written = Instant::now();
        self.status_dirty = false;
        if let Some(path) = &self.config.status_file {
            let text = self.status.lock().render(self.published.db.age_ms());
            match status::write_atomically(path, &text) {
                Err(e) if !self.status_failing => {
                    self.status_failing = true;
                    log::warn!(
                        "cannot write the status file {}: {e} (logged once until it works again)",
                        path.display()
                    );
                }
                Err(_) => {}
                Ok(()) if self.status_failing => {
                    self.status_failing = false;
                    log::info!("the status file {} is written again", path.display());
                }
                Ok(()) => {}
            }
        }
    }
}
