//! The running master's shared state: the store behind a mutex, the policy and node-key
//! snapshots the bridge's workers read (arc-swap, lock-free), the database status reported in
//! probe replies, and the replication hooks.
//!
//! Not pure (the store does I/O). Shared as `Arc<MasterState>` by the admin socket threads,
//! the daemon, and replication. Every write goes through [`MasterState::apply`] (or
//! `apply_many`), which commits, then publishes the new snapshots (under the store lock, so
//! agents see changes in sequence order and never one not yet durable), then wakes the
//! listeners (replication reads the log, in order, once the lock is free). Reads of the database take no lock: the published snapshot
//! ([`MasterState::policy`]) is the database, so `status` and listings answer while a long
//! import holds the store.

use crate::config::UnixIdRanges;
use crate::hooks::{CommitListener, NoReplication, ReplicaLinkStatus, ReplicaLinks};
use crate::lockout::config::LockoutConfig;
use crate::lockout::Lockout;
use crate::store::{ChangesAfter, Progress, Store, StoreError};
use arc_swap::ArcSwap;
use gatehouse_common::nodekeys::{NodeKey, NodeKeyStore};
use gatehouse_common::policy::{Change, PolicySnapshot};
use gatehouse_replica::bridge::DbStatus;
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// This master's epoch (set once, before the state exists: a promotion is a restart).
    epoch: u64,
    /// The lowest sequence still in the change log, for `status` without the store lock.
    oldest_log_seq: AtomicU64,
    /// Fingerprints (first 8 bytes) of every node key in the database or issued since the
    /// start: a key the master generates is checked against them in O(1), and against every
    /// host only on a fingerprint match (a broken random generator repeating itself).
    key_fingerprints: Mutex<HashSet<u64>>,
}

/// A node key's fingerprint for [`MasterState`]'s duplicate check.
fn fingerprint(key: &NodeKey) -> u64 {
    let mut head = [0u8; 8];
    head.copy_from_slice(&key.0[..8]);
    u64::from_le_bytes(head)
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
        let oldest_log_seq = AtomicU64::new(store.oldest_available().unwrap_or(0));
        let epoch = store.epoch();
        let fingerprints = policy_now
            .node_keys()
            .iter()
            .map(|(_, k)| fingerprint(k))
            .collect();
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
            epoch,
            oldest_log_seq,
            key_fingerprints: Mutex::new(fingerprints),
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
        self.epoch
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
    /// sequence. A refused change publishes nothing; one that changes nothing commits and
    /// publishes nothing either (the current sequence is returned, and readers keep the very
    /// snapshot they had).
    pub fn apply(&self, change: &Change) -> Result<u64, StoreError> {
        self.apply_many(std::slice::from_ref(change), &mut |_| {})
    }

    /// Commits `changes` (an admin batch, or an import) all or none, in one transaction;
    /// returns the last sequence. `progress` hears how a long write goes.
    pub fn apply_many(
        &self,
        changes: &[Change],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<u64, StoreError> {
        self.wait_for_gate()?;
        let mut store = self.store.lock();
        let before = store.sequence();
        let seq = store.apply_many(changes, progress)?;
        if seq == before {
            return Ok(seq);
        }
        let policy = store.policy();
        self.keys.publish(policy.node_keys());
        self.policy.store(policy);
        if changes
            .iter()
            .any(|c| matches!(c, Change::ReplaceAll { .. }))
        {
            let keys = store.policy().node_keys();
            *self.key_fingerprints.lock() = keys.iter().map(|(_, k)| fingerprint(k)).collect();
        }
        self.oldest_log_seq
            .store(store.oldest_available().unwrap_or(0), Ordering::Relaxed);
        self.db_status.confirm(seq);
        // The listeners (replication's wake-up) look at the store: wake them once it is free.
        drop(store);
        for listener in self.listeners.read().iter() {
            listener.committed(seq);
        }
        Ok(seq)
    }

    /// Whether `key`, about to be given to a new host, is already some host's (or was issued
    /// before): O(1) unless its fingerprint matches, then a check of every host. Records it.
    pub fn key_in_use(&self, key: &NodeKey) -> bool {
        let mut fingerprints = self.key_fingerprints.lock();
        if fingerprints.insert(fingerprint(key)) {
            return false;
        }
        let keys = self.policy.load().node_keys();
        let in_use = keys.iter().any(|(_, k)| k == key);
        in_use
    }

    /// The current database and its sequence, consistent with each other (the store lock
    /// for a reference count).
    pub fn snapshot(&self) -> (Arc<PolicySnapshot>, u64) {
        self.store.lock().snapshot()
    }

    /// The lowest sequence still in the change log, without the store lock (so `status`
    /// answers while an import holds it).
    pub fn oldest_log_seq(&self) -> u64 {
        self.oldest_log_seq.load(Ordering::Relaxed)
    }

    /// Runs `f` with the store locked (reads: the database, sequence, snapshot).
    pub fn read<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        f(&self.store.lock())
    }

    /// The log after `after`, for replication.
    pub fn changes_after(&self, after: u64, limit: usize) -> Result<ChangesAfter, StoreError> {
        self.store.lock().changes_after(after, limit)
    }

    /// [`MasterState::changes_after`], or `None` at once while a write holds the store (an
    /// import): the replication loop must never wait for one, or its heartbeats would stop.
    pub fn try_changes_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Option<Result<ChangesAfter, StoreError>> {
        let store = self.store.try_lock()?;
        Some(store.changes_after(after, limit))
    }

    /// [`MasterState::snapshot`], or `None` at once while a write holds the store.
    pub fn try_snapshot(&self) -> Option<(Arc<PolicySnapshot>, u64)> {
        Some(self.store.try_lock()?.snapshot())
    }

    /// Deletes log rows up to `keep_after_seq`.
    pub fn compact(&self, keep_after_seq: u64) -> Result<usize, StoreError> {
        let mut store = self.store.lock();
        let removed = store.compact(keep_after_seq)?;
        self.oldest_log_seq
            .store(store.oldest_available()?, Ordering::Relaxed);
        Ok(removed)
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

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
