//! The running master's shared state: the store behind a mutex, the policy and node-key
//! snapshots the bridge's workers read (arc-swap, lock-free), the database status reported in
//! probe replies, and the replication hooks.
//!
//! Not pure (the store does I/O). Shared as `Arc<MasterState>` by the admin socket threads,
//! the daemon, and replication. Every write goes through [`MasterState::apply`], which
//! commits, then publishes the new snapshots, then notifies listeners — all under the store
//! lock, so agents and replicas see changes in sequence order and never one not yet durable.

use crate::config::UnixIdRanges;
use crate::hooks::{CommitListener, NoReplication, ReplicaLinkStatus, ReplicaLinks};
use crate::lockout::config::LockoutConfig;
use crate::lockout::Lockout;
use crate::store::{ChangesAfter, Store, StoreError};
use arc_swap::ArcSwap;
use gatehouse_common::nodekeys::NodeKeyStore;
use gatehouse_common::policy::{Change, PolicySnapshot};
use gatehouse_replica::bridge::DbStatus;
use parking_lot::{Condvar, Mutex, RwLock};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// See the module docs.
pub struct MasterState {
    store: Mutex<Store>,
    policy: Arc<ArcSwap<PolicySnapshot>>,
    keys: Arc<NodeKeyStore>,
    db_status: Arc<DbStatus>,
    listeners: RwLock<Vec<Arc<dyn CommitListener>>>,
    links: RwLock<Arc<dyn ReplicaLinks>>,
    /// Writes wait for a replica to confirm this master's epoch (see [`MasterState::apply`]).
    gate: Mutex<WriteGate>,
    /// Signalled when the gate opens, waking the writes that wait on it.
    gate_opened: Condvar,
    /// The central lockout: counts failed passwords, decides lockouts.
    lockout: Arc<Lockout>,
    /// Where admin-assigned uids and gids must fall.
    unix_ids: UnixIdRanges,
}

/// Whether writes wait for a replica to confirm this master's epoch, and for how long.
#[derive(Debug, Default)]
struct WriteGate {
    /// `Some(wait)`: closed; a write waits up to `wait` for it to open.
    closed: Option<Duration>,
    /// The last refusal a replica sent (it follows a newer master): shown to admins whose
    /// writes wait, never acted on (a replica's word is not proof).
    refusal: Option<String>,
}

impl MasterState {
    /// Wraps an open store and publishes its current database; the lockout has the default
    /// policy.
    pub fn new(store: Store) -> MasterState {
        Self::with_lockout(store, LockoutConfig::default())
    }

    /// [`MasterState::new`] with the config's lockout policy.
    pub fn with_lockout(store: Store, lockout: LockoutConfig) -> MasterState {
        let policy = Arc::new(ArcSwap::new(store.policy()));
        let lockout = Arc::new(Lockout::new(lockout, policy.clone()));
        let policy_now = policy.load_full();
        let keys = Arc::new(NodeKeyStore::new(policy_now.node_keys()));
        let db_status = Arc::new(DbStatus::from_file());
        db_status.set_authoritative(true);
        db_status.confirm(store.sequence());
        MasterState {
            store: Mutex::new(store),
            policy,
            keys,
            db_status,
            listeners: RwLock::new(Vec::new()),
            links: RwLock::new(Arc::new(NoReplication)),
            gate: Mutex::new(WriteGate::default()),
            gate_opened: Condvar::new(),
            lockout,
            unix_ids: UnixIdRanges::default(),
        }
    }

    /// The same state with these uid and gid ranges (the config's `unix_ids`).
    pub fn with_unix_ids(mut self, ranges: UnixIdRanges) -> MasterState {
        self.unix_ids = ranges;
        self
    }

    /// Where admin-assigned uids and gids must fall.
    pub fn unix_ids(&self) -> UnixIdRanges {
        self.unix_ids
    }

    /// The central lockout (reports from replicas, `lockout list`, `user unlock`).
    pub fn lockout(&self) -> &Arc<Lockout> {
        &self.lockout
    }

    /// With replication on, a master that has replicas registered accepts writes only after
    /// a replica holding this master's epoch has been proven on a link since start (it knows
    /// of no promoted master with a higher epoch: a former master coming back must not accept
    /// writes as a second master). A write waits up to `wait` for that, then is refused.
    /// Called by the daemon when it starts the replication server.
    pub fn gate_writes_until_confirmed(&self, wait: Duration) {
        self.gate.lock().closed = Some(wait);
    }

    /// A replica holding our epoch is on an authenticated link: writes may go ahead.
    pub fn confirm_epoch(&self, host: &str) {
        let mut gate = self.gate.lock();
        if gate.closed.take().is_some() {
            log::info!("replica {host} holds this master's epoch: admin writes are open");
            self.gate_opened.notify_all();
        }
    }

    /// A replica refused this master (it says it follows a newer one). Not proof of anything,
    /// so it changes nothing; it is shown to admins whose writes wait.
    pub fn note_refusal(&self, host: &str, reason: &str) {
        // The reason is the peer's text: escaped, so it cannot forge lines in logs or output.
        let reason = reason.escape_debug();
        self.gate.lock().refusal = Some(format!("replica {host} refused this master: {reason}"));
    }

    /// Lifts the write gate without a replica's confirmation (`--accept-writes`: the admin
    /// knows no replica was promoted).
    pub fn accept_writes(&self) {
        self.confirm_epoch("(none: --accept-writes)");
    }

    /// Whether a write would go ahead now, without waiting for the gate (a user's own
    /// password change is answered "unavailable" rather than hold a worker that long).
    pub fn writes_open(&self) -> bool {
        self.gate.lock().closed.is_none()
    }

    /// Waits (bounded) until writes are open; the error says why they are not.
    fn wait_for_gate(&self) -> Result<(), StoreError> {
        let mut gate = self.gate.lock();
        let Some(wait) = gate.closed else {
            return Ok(());
        };
        let until = Instant::now() + wait;
        log::info!(
            "an admin write waits (up to {wait:?}) for a replica to confirm this master's epoch"
        );
        while gate.closed.is_some() {
            if self.gate_opened.wait_until(&mut gate, until).timed_out() {
                break;
            }
        }
        if gate.closed.is_none() {
            return Ok(());
        }
        let refused = gate.refusal.clone();
        drop(gate); // never hold the gate while taking the store lock
        Err(StoreError::Unconfirmed {
            epoch: self.epoch(),
            waited_ms: wait.as_millis().try_into().unwrap_or(u64::MAX),
            refused,
        })
    }

    /// This master's epoch.
    pub fn epoch(&self) -> u64 {
        self.store.lock().epoch()
    }

    /// The published policy, for the bridge's request handler.
    pub fn policy(&self) -> Arc<ArcSwap<PolicySnapshot>> {
        self.policy.clone()
    }

    /// The published node keys, for the bridge's handshakes.
    pub fn keys(&self) -> Arc<NodeKeyStore> {
        self.keys.clone()
    }

    /// Sequence and freshness as reported to agents' probes.
    pub fn db_status(&self) -> Arc<DbStatus> {
        self.db_status.clone()
    }

    /// Commits `change`, publishes the result to agents, notifies listeners; returns its
    /// sequence. A refused change publishes nothing.
    pub fn apply(&self, change: &Change) -> Result<u64, StoreError> {
        self.wait_for_gate()?;
        let mut store = self.store.lock();
        let seq = store.apply(change)?;
        let policy = store.policy();
        self.keys.publish(policy.node_keys());
        self.policy.store(policy);
        self.db_status.confirm(seq);
        for listener in self.listeners.read().iter() {
            listener.committed(seq);
        }
        Ok(seq)
    }

    /// Runs `f` with the store locked (reads: the database, sequence, snapshot).
    pub fn read<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        f(&self.store.lock())
    }

    /// The log after `after`, for replication.
    pub fn changes_after(&self, after: u64, limit: usize) -> Result<ChangesAfter, StoreError> {
        self.store.lock().changes_after(after, limit)
    }

    /// Deletes log rows up to `keep_after_seq`.
    pub fn compact(&self, keep_after_seq: u64) -> Result<usize, StoreError> {
        self.store.lock().compact(keep_after_seq)
    }

    /// Registers a listener for every later commit.
    pub fn add_commit_listener(&self, listener: Arc<dyn CommitListener>) {
        self.listeners.write().push(listener);
    }

    /// Installs the source of replica link states shown by `status`.
    pub fn set_replica_links(&self, links: Arc<dyn ReplicaLinks>) {
        *self.links.write() = links;
    }

    /// The current replica link states.
    pub fn replica_links(&self) -> Vec<ReplicaLinkStatus> {
        let links = self.links.read().clone();
        links.links()
    }
}
