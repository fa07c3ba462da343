//! How records reach the master's store: [`Audit`] takes replicas' batches from the
//! replication loop (a bounded queue: that loop never touches the disk), stores them in group
//! commits on its own thread and hands the acknowledgements back to the loop, which sends each
//! `ReportAck` once its batch is on disk. The master's own journal (its decisions) is relayed
//! into the store by a second thread, and the master's own records (admin actions, lockouts)
//! are stored at once by whoever makes them. Every stored record is also forwarded to syslog
//! when configured (best effort: the store is the record of truth). The ingest thread also
//! applies retention.
//!
//! Not pure: threads, the store, sockets. Shared as `Arc<Audit>`.

use super::config::MasterAuditConfig;
use super::forward::Forwarder;
use super::store::{AuditQuery, AuditStore, AuditStoreError, Batch, Stored, StreamProgress};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use gatehouse_common::audit::AuditRecord;
use gatehouse_common::repl::{ReplMessage, Report};
use gatehouse_replica::audit::{Journal, Relay};
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Batches waiting for the ingest thread (1024, 64 records each at most): room for 16 replicas
/// with their whole in-flight window (`MAX_AUDIT_IN_FLIGHT`) queued. A batch that finds it full
/// is not acknowledged, and its replica sends it again on its next link.
pub const INGEST_QUEUE: usize = 1024;
/// Batches stored per transaction at most (256, 16,384 records): one sync for all of them.
pub const BATCHES_PER_COMMIT: usize = 256;
/// How often retention runs (60 s).
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// Records the master's own relay stores per transaction at most (4096).
pub const LOCAL_RECORDS_PER_COMMIT: usize = 4096;
/// After a store failure (disk full), the ingest thread tries again after this long (1 s);
/// nothing is acknowledged meanwhile, so servers keep their journals.
pub const STORE_RETRY: Duration = Duration::from_secs(1);

/// An acknowledgement for a replica's link: (host, stream, stored through).
pub type LinkAck = (String, u64, u64);

/// What the ingest has done since start, for status and metrics.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub stored: AtomicU64,
    pub batches: AtomicU64,
    /// Batches refused because the queue was full.
    pub queue_full: AtomicU64,
}

/// See the module docs.
pub struct Audit {
    config: MasterAuditConfig,
    store: Mutex<AuditStore>,
    queue: Sender<Batch>,
    incoming: Receiver<Batch>,
    acks: Mutex<Vec<LinkAck>>,
    wake_links: RwLock<Option<Box<dyn Fn() + Send + Sync>>>,
    forwarder: Option<Forwarder>,
    /// The master's own journal, once [`Audit::spawn`] has it.
    journal: RwLock<Option<Arc<Journal>>>,
    pub stats: IngestStats,
}

impl Audit {
    /// Opens the store; nothing runs until [`Audit::spawn`].
    pub fn open(config: MasterAuditConfig) -> Result<Arc<Audit>, AuditStoreError> {
        let store = AuditStore::open(&config.store)?;
        let forwarder = config.syslog.as_ref().map(Forwarder::new);
        let (queue, incoming) = crossbeam_channel::bounded(INGEST_QUEUE);
        Ok(Arc::new(Audit {
            config,
            store: Mutex::new(store),
            queue,
            incoming,
            acks: Mutex::new(Vec::new()),
            wake_links: RwLock::new(None),
            forwarder,
            journal: RwLock::new(None),
            stats: IngestStats::default(),
        }))
    }

    pub fn config(&self) -> &MasterAuditConfig {
        &self.config
    }

    /// The name the master's own records carry as their server.
    pub fn server_name(&self) -> &str {
        &self.config.server_name
    }

    /// Starts the ingest thread, and the relay of the master's own `journal` if it has one.
    pub fn spawn(self: &Arc<Self>, journal: Option<Arc<Journal>>) -> std::io::Result<()> {
        let audit = self.clone();
        std::thread::Builder::new()
            .name("audit-ingest".into())
            .spawn(move || audit.ingest())?;
        if let Some(journal) = journal {
            *self.journal.write() = Some(journal.clone());
            let audit = self.clone();
            std::thread::Builder::new()
                .name("audit-relay".into())
                .spawn(move || audit.relay_local(Relay::new(journal)))?;
        }
        Ok(())
    }

    /// The master's own journal, if it keeps one.
    pub fn journal(&self) -> Option<Arc<Journal>> {
        self.journal.read().clone()
    }

    /// How the replication loop is woken when acknowledgements wait for it.
    pub fn set_link_waker(&self, wake: Box<dyn Fn() + Send + Sync>) {
        *self.wake_links.write() = Some(wake);
    }

    /// A replica's batch, from the replication loop; false if the queue is full (not
    /// acknowledged: the replica sends it again).
    pub fn submit(&self, batch: Batch) -> bool {
        match self.queue.try_send(batch) {
            Ok(()) => true,
            Err(TrySendError::Full(batch)) => {
                self.stats.queue_full.fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "audit: ingest queue full ({INGEST_QUEUE} batches); {}'s batch from {} waits for its next link",
                    batch.server,
                    batch.first
                );
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Acknowledgements for links, stored since the last call.
    pub fn take_acks(&self) -> Vec<LinkAck> {
        std::mem::take(&mut *self.acks.lock())
    }

    /// Stores a record the master made itself; durable when this returns.
    pub fn record_local(&self, record: AuditRecord) -> Result<Stored, AuditStoreError> {
        let stored = self
            .store
            .lock()
            .insert_local(&self.config.server_name, record)?;
        self.forward(std::slice::from_ref(&stored));
        self.stats.stored.fetch_add(1, Ordering::Relaxed);
        Ok(stored)
    }

    pub fn query(&self, query: &AuditQuery) -> Result<Vec<Stored>, AuditStoreError> {
        self.store.lock().query(query)
    }

    pub fn streams(&self) -> Result<Vec<StreamProgress>, AuditStoreError> {
        self.store.lock().streams()
    }

    pub fn count(&self) -> Result<u64, AuditStoreError> {
        self.store.lock().count()
    }

    fn forward(&self, stored: &[Stored]) {
        if let Some(forwarder) = &self.forwarder {
            for s in stored {
                forwarder.send(s);
            }
        }
    }

    /// Stores `batches` (retrying while the store fails); the highest sequence stored per
    /// batch.
    fn store_batches(&self, batches: &[Batch]) -> Vec<u64> {
        loop {
            let result = self.store.lock().insert(batches);
            match result {
                Ok((throughs, stored)) => {
                    self.stats
                        .batches
                        .fetch_add(batches.len() as u64, Ordering::Relaxed);
                    self.stats
                        .stored
                        .fetch_add(stored.len() as u64, Ordering::Relaxed);
                    self.forward(&stored);
                    return throughs;
                }
                Err(e) => {
                    log::error!(
                        "audit: cannot store {} batches: {e}; retrying",
                        batches.len()
                    );
                    std::thread::sleep(STORE_RETRY);
                }
            }
        }
    }

    /// The ingest thread: group commits of replicas' batches, acknowledgements, retention.
    fn ingest(&self) {
        let mut pruned = Instant::now();
        loop {
            let first = match self.incoming.recv_timeout(PRUNE_INTERVAL) {
                Ok(batch) => Some(batch),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if let Some(first) = first {
                let mut batches = vec![first];
                while batches.len() < BATCHES_PER_COMMIT {
                    match self.incoming.try_recv() {
                        Ok(batch) => batches.push(batch),
                        Err(_) => break,
                    }
                }
                let throughs = self.store_batches(&batches);
                let mut acks = self.acks.lock();
                for (batch, through) in batches.into_iter().zip(throughs) {
                    acks.push((batch.server, batch.stream, through));
                }
                drop(acks);
                if let Some(wake) = &*self.wake_links.read() {
                    wake();
                }
            }
            if pruned.elapsed() >= PRUNE_INTERVAL {
                pruned = Instant::now();
                self.prune();
            }
        }
    }

    /// Retention: records older than `retention_days`, and the oldest beyond `max_records`.
    fn prune(&self) {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let keep_ms = self.config.retention.as_millis() as u64;
        let before = now_ms.saturating_sub(keep_ms);
        match self.store.lock().prune(before, self.config.max_records) {
            Ok(0) => {}
            Ok(n) => log::info!("audit: retention deleted {n} records"),
            Err(e) => log::error!("audit: retention failed: {e}"),
        }
    }

    /// The master's own journal into the store, in group commits.
    fn relay_local(&self, mut relay: Relay) {
        let server = self.config.server_name.clone();
        loop {
            let mut batches = Vec::new();
            let mut records = 0;
            while records < LOCAL_RECORDS_PER_COMMIT {
                match relay.next_message() {
                    Ok(Some(ReplMessage::Report {
                        stream,
                        first,
                        records: reports,
                    })) => {
                        records += reports.len();
                        let records = reports
                            .into_iter()
                            .filter_map(|r| match r {
                                Report::Audit(record) => Some(record),
                                Report::PasswordFailure(_) => None,
                            })
                            .collect();
                        batches.push(Batch {
                            server: server.clone(),
                            stream,
                            first,
                            records,
                        });
                    }
                    Ok(_) => break,
                    Err(e) => {
                        log::error!("audit: cannot read the master's journal: {e}");
                        break;
                    }
                }
            }
            if batches.is_empty() {
                let journal = relay.journal().clone();
                let sent = journal.status().acked;
                let deadline = Instant::now() + Duration::from_millis(100);
                journal.wait_until(deadline, |j| j.synced_through() > sent);
                continue;
            }
            let throughs = self.store_batches(&batches);
            for (batch, through) in batches.iter().zip(throughs) {
                relay.on_ack(batch.stream, through);
            }
        }
    }
}
