//! The master's side of replication: a listener for replica links on `replication_listen`,
//! driven by one mio loop on its own thread ([`reactor`]), one [`link::Link`] per connection,
//! new connections admitted by [`admission`] (handshake caps, per source and in all).
//! Every commit wakes the loop (a [`CommitListener`]) so changes reach replicas within
//! milliseconds; the link table answers `gatehouse-admin status` ([`ReplicaLinks`]).
//!
//! Protocol: docs/PROTOCOL.md, "Replication links". Pure parts: `gatehouse_common::repl`.

pub mod admission;
mod link;
mod reactor;

use crate::audit::Audit;
use crate::hooks::{CommitListener, LinkState, ReplicaLinkStatus, ReplicaLinks};
use crate::state::MasterState;
use gatehouse_common::repl::{LinkTimings, MasterSecretKey};
use gatehouse_common::service::watchdog::Heartbeat;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Changes a replica may have been sent but not yet acknowledged. Bounds what a slow replica
/// costs the master (memory in its socket buffer and ours) while keeping a catch-up streaming.
pub const MAX_UNACKED_CHANGES: u64 = 8192;
/// Changes read from the store per batch.
pub const CHANGES_PER_READ: usize = 1024;
/// A link must finish its handshake (node key, then the master's proof) within 5 s of its
/// accept: a replica needs two round trips; a connection that idles is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Extra time a replica's ack of a snapshot may take, per MiB of snapshot, beyond the request
/// timeout (1 s per MiB): the replica decodes, compiles and writes the whole database before
/// it acknowledges (measured at several MiB per second; docs/BENCHMARKS.md, "Database
/// scale"), while its heartbeats show it alive. So a 300 MiB snapshot of a million users may
/// take five minutes to acknowledge, a 3 MiB one eight seconds.
pub const SNAPSHOT_INSTALL_GRACE_PER_MIB: Duration = Duration::from_secs(1);
/// Largest frame accepted before the handshake is done, bytes (512): the largest handshake
/// frame is a ClientHello with 16 versions, 8 cipher codes and a 255-byte host (332 bytes);
/// a sealed `LinkHello` is 54. So a peer that has proven nothing cannot make the master
/// buffer more than this (plus one read) per connection.
pub const MAX_HANDSHAKE_FRAME_LEN: usize = 512;

/// What the replication port needs besides its address.
pub struct LinkConfig {
    pub timings: LinkTimings,
    /// The master's identity key: it signs every link's key exchange.
    pub key: MasterSecretKey,
    /// After a restart with replicas registered, how long a write waits for a replica to
    /// confirm this master's epoch.
    pub write_confirm_wait: Duration,
    /// Beaten once per turn of the replication loop (the service manager's watchdog).
    pub heartbeat: Heartbeat,
    /// Where replicas' audit records are stored.
    pub audit: Option<Arc<Audit>>,
}

/// What the master knows about one replica link.
#[derive(Debug, Clone)]
struct LinkRecord {
    state: LinkState,
    acked: u64,
    last_heard: Option<Instant>,
}

/// The link table, shared by the loop (writer), the admin status (reader) and commits (wake).
pub struct LinkTable {
    records: Mutex<HashMap<String, LinkRecord>>,
    waker: mio::Waker,
    state: Arc<MasterState>,
    /// Where replicas' audit records are stored.
    audit: Option<Arc<Audit>>,
}

impl LinkTable {
    /// Wakes the replication loop (a commit, an encoded snapshot); a failed wake only delays
    /// the work to the next heartbeat tick.
    fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// Whether `host` has a link that is up and was heard from within `window`: a second
    /// process with the same replica name is then refused (docs/ADMIN.md, "Replicas").
    fn has_live_link(&self, host: &str, now: Instant, window: Duration) -> bool {
        self.records.lock().get(host).is_some_and(|r| {
            r.state != LinkState::Disconnected
                && r.last_heard
                    .is_some_and(|t| now.saturating_duration_since(t) < window)
        })
    }

    fn update(&self, host: &str, f: impl FnOnce(&mut LinkRecord)) {
        let mut records = self.records.lock();
        let record = records.entry(host.to_string()).or_insert(LinkRecord {
            state: LinkState::Started,
            acked: 0,
            last_heard: None,
        });
        f(record);
    }
}

impl CommitListener for LinkTable {
    fn committed(&self, _seq: u64) {
        // Non-blocking: one eventfd write. A failure only delays replication to the next
        // heartbeat tick.
        let _ = self.waker.wake();
    }
}

impl ReplicaLinks for LinkTable {
    fn links(&self) -> Vec<ReplicaLinkStatus> {
        // Lock-free (the published snapshot and sequence): `status` answers while a long
        // write holds the store.
        let head = self.state.db_status().sequence();
        let allowed: Vec<String> = self
            .state
            .policy()
            .load()
            .replicas()
            .map(String::from)
            .collect();
        let records = self.records.lock();
        let now = Instant::now();
        let mut hosts: Vec<String> = allowed;
        for host in records.keys() {
            if !hosts.contains(host) {
                hosts.push(host.clone());
            }
        }
        hosts
            .into_iter()
            .map(|host| {
                let record = records.get(&host);
                let acked = record.map_or(0, |r| r.acked);
                ReplicaLinkStatus {
                    state: record.map_or(LinkState::Disconnected, |r| r.state),
                    acked_seq: acked,
                    lag: head.saturating_sub(acked),
                    last_heard_ms: record
                        .and_then(|r| r.last_heard)
                        .map(|at| now.saturating_duration_since(at).as_millis() as u64),
                    host,
                }
            })
            .collect()
    }
}

/// Binds `listen` and starts the replication thread. Returns the bound address.
pub fn start(
    listen: SocketAddr,
    state: Arc<MasterState>,
    config: LinkConfig,
) -> io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(listen)?;
    let addr = listener.local_addr()?;
    let wait = config.write_confirm_wait;
    let audit = config.audit.clone();
    let reactor =
        reactor::Reactor::new(listener, state.clone(), config.timings, config.key, audit)?;
    let heartbeat = config.heartbeat;
    let table = reactor.table();
    if let Some(audit) = &config.audit {
        // Stored batches wake the loop to send their acks.
        let waker = table.clone();
        audit.set_link_waker(Box::new(move || {
            let _ = waker.waker.wake();
        }));
    }
    state.add_commit_listener(table.clone());
    state.set_replica_links(table);
    // A master that starts with replicas registered may be a former master coming back after
    // one of them was promoted: it takes writes only once a replica holding its epoch is on a
    // link. Replicas registered later, while it runs, need no such check.
    if state.policy().load().replicas().next().is_some() {
        state.gate_writes_until_confirmed(wait);
    }
    std::thread::Builder::new()
        .name("replication".into())
        .spawn(move || reactor.run(heartbeat))?;
    Ok(addr)
}
