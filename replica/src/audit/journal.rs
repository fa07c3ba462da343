//! The audit journal: every record a server makes is appended here, numbered in the
//! journal's stream, written and synced by one writer thread in group commits, and kept until
//! the master has stored it (the relay, `relay.rs`, reads it back and acknowledges).
//!
//! The reactor and the workers call [`Journal::append`]: a mutex held for the time it takes to
//! encode one record into the shared buffer (no allocation once the buffer has grown, no
//! system call). The reactor calls [`Journal::kick`] once per loop turn; the writer then
//! swaps the buffer for an empty one, writes it, syncs it (`fdatasync`) and moves
//! [`Journal::released_through`] on: the reactor holds each answer until the records made
//! before it are released (`bridge/holds.rs`), so an answer never leaves before its record
//! is durable (or, with `answer_after: Written`, written). While the writer syncs, records
//! pile up for the next commit: one sync serves every record that arrived meanwhile.
//!
//! Bounded: at most [`MAX_QUEUED_BYTES`] wait for the writer (a stuck disk): beyond that,
//! and when a `RefuseNew` journal is full, `append` refuses and the request is answered
//! "busy, go elsewhere". A `DropOldest` journal deletes its oldest segment instead.
//!
//! Not pure: files and a thread. Shared as `Arc<Journal>` by the handler, the reactor, the
//! relay (the follower thread, or the master's ingest) and the metrics.

use super::config::{AnswerAfter, AuditConfig, WhenFull};
use super::segment::{self, Header, HEADER_LEN};
use gatehouse_common::audit::{encode_record, AuditRecord};
use parking_lot::{Condvar, Mutex, RwLock};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most bytes of records waiting for the writer (8 MiB, about 50,000 records or a third of a
/// second at 150,000 decisions a second): a disk that stops taking writes turns into "busy"
/// answers within that, never into unbounded memory or unrecorded decisions.
pub const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;
/// The writer looks for work at least this often even when nobody kicks it (50 ms).
pub const WRITER_IDLE_WAKE: Duration = Duration::from_millis(50);
/// After a failed write or sync (a full or failing disk), the writer tries again after this
/// long (100 ms); appends meanwhile fill the queue up to [`MAX_QUEUED_BYTES`].
pub const WRITE_RETRY: Duration = Duration::from_millis(100);
/// Buffer capacity the writer starts with (256 KiB): a busy turn's records fit without the
/// reactor growing it.
const INITIAL_BUFFER: usize = 256 * 1024;

/// Why a record was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the audit journal is full (when_full: RefuseNew)")]
    Full,
    #[error("the audit journal's writer is behind by {MAX_QUEUED_BYTES} bytes")]
    Backlog,
}

/// What the journal holds and has done, for status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalStatus {
    pub stream: u64,
    /// The last sequence given to a record.
    pub assigned: u64,
    /// The last sequence synced to disk.
    pub synced: u64,
    /// The last sequence the master acknowledged (this run).
    pub acked: u64,
    pub disk_bytes: u64,
    pub max_bytes: u64,
    /// Records deleted before the master had them (`DropOldest`), since start.
    pub dropped: u64,
    /// Records refused (full or backlog): requests answered "busy" instead, since start.
    pub refused: u64,
    /// True when the journal is within one segment of `max_bytes`: the alarm.
    pub full: bool,
}

/// Records waiting for the writer.
struct Pending {
    buf: Vec<u8>,
    /// The sequence of the first record in `buf`.
    first_in_buf: u64,
    next_seq: u64,
    writer_waiting: bool,
    stop: bool,
}

/// One segment on disk.
#[derive(Debug, Clone)]
pub(super) struct SegmentInfo {
    pub first_seq: u64,
    pub path: PathBuf,
    pub bytes: u64,
}

/// See the module docs.
pub struct Journal {
    config: AuditConfig,
    stream: u64,
    pending: Mutex<Pending>,
    work: Condvar,
    assigned: AtomicU64,
    written: AtomicU64,
    synced: AtomicU64,
    acked: AtomicU64,
    disk_bytes: AtomicU64,
    dropped: AtomicU64,
    refused: AtomicU64,
    pub(super) segments: Mutex<Vec<SegmentInfo>>,
    listeners: RwLock<Vec<Box<dyn Fn() + Send + Sync>>>,
    /// Waiters for progress ([`Journal::wait_until`]).
    progress: (Mutex<()>, Condvar),
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The directory's lock ([`segment::lock_dir`]), released when the journal is dropped.
    _lock: File,
}

impl Journal {
    /// Opens (or creates) the journal in `config.dir`, cuts a torn tail left by a crash, and
    /// starts the writer thread. Numbering continues after the last intact record.
    pub fn open(config: AuditConfig) -> io::Result<Arc<Journal>> {
        if !config.dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&config.dir)?;
        }
        let lock = segment::lock_dir(&config.dir)?;
        let mut segments = Vec::new();
        let mut stream = None;
        let mut last_seq = 0;
        let listed = segment::list(&config.dir)?;
        let count = listed.len();
        for (i, (first, path)) in listed.into_iter().enumerate() {
            let bytes = std::fs::read(&path)?;
            let Some((header, valid, last)) = segment::valid_prefix(&bytes) else {
                return Err(io::Error::other(format!(
                    "{}: not an audit journal segment",
                    path.display()
                )));
            };
            if header.first_seq != first || stream.is_some_and(|s| s != header.stream) {
                return Err(io::Error::other(format!(
                    "{}: its header does not match the journal",
                    path.display()
                )));
            }
            if valid < bytes.len() {
                let cut = bytes.len() - valid;
                if i + 1 < count {
                    log::warn!("audit journal {}: {cut} damaged bytes inside a closed segment; records after sequence {last} in it are skipped", path.display());
                } else {
                    log::warn!("audit journal {}: cutting a torn tail of {cut} bytes after sequence {last} (a crash during a write)", path.display());
                    OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .set_len(valid as u64)?;
                }
            }
            stream = Some(header.stream);
            last_seq = last_seq.max(last);
            segments.push(SegmentInfo {
                first_seq: first,
                path,
                bytes: valid as u64,
            });
        }
        let stream = stream.unwrap_or_else(rand::random);
        let disk: u64 = segments.iter().map(|s| s.bytes).sum();
        let journal = Arc::new(Journal {
            stream,
            pending: Mutex::new(Pending {
                buf: Vec::with_capacity(INITIAL_BUFFER),
                first_in_buf: last_seq + 1,
                next_seq: last_seq + 1,
                writer_waiting: false,
                stop: false,
            }),
            work: Condvar::new(),
            assigned: AtomicU64::new(last_seq),
            written: AtomicU64::new(last_seq),
            synced: AtomicU64::new(last_seq),
            acked: AtomicU64::new(segments.first().map_or(last_seq, |s| s.first_seq - 1)),
            disk_bytes: AtomicU64::new(disk),
            dropped: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            segments: Mutex::new(segments),
            listeners: RwLock::new(Vec::new()),
            progress: (Mutex::new(()), Condvar::new()),
            writer: Mutex::new(None),
            _lock: lock,
            config,
        });
        log::info!(
            "audit journal {} (stream {stream:016x}): {} records kept, next sequence {}",
            journal.config.dir.display(),
            last_seq - journal.acked.load(Ordering::Relaxed),
            last_seq + 1
        );
        let writer = Writer::new(journal.clone());
        let handle = std::thread::Builder::new()
            .name("audit-journal".into())
            .spawn(move || writer.run())?;
        *journal.writer.lock() = Some(handle);
        Ok(journal)
    }

    pub fn config(&self) -> &AuditConfig {
        &self.config
    }

    /// The journal's stream: drawn when it was created, kept across restarts.
    pub fn stream(&self) -> u64 {
        self.stream
    }

    /// Numbers `record` and queues it for the writer; its sequence, or why not.
    pub fn append<S: AsRef<str>>(&self, record: &AuditRecord<S>) -> Result<u64, Refusal> {
        let mut p = self.pending.lock();
        let refusal = if p.buf.len() >= MAX_QUEUED_BYTES {
            Some(Refusal::Backlog)
        } else if self.config.when_full == WhenFull::RefuseNew
            && self.disk_bytes.load(Ordering::Relaxed) + p.buf.len() as u64 >= self.config.max_bytes
        {
            Some(Refusal::Full)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            drop(p);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(refusal);
        }
        let seq = p.next_seq;
        p.next_seq += 1;
        let start = segment::begin_entry(&mut p.buf);
        encode_record(&mut p.buf, record);
        segment::finish_entry(&mut p.buf, start, seq);
        self.assigned.store(seq, Ordering::Release);
        Ok(seq)
    }

    /// Wakes the writer if records wait and it sleeps (the reactor, once per loop turn).
    pub fn kick(&self) {
        let p = self.pending.lock();
        if p.writer_waiting && !p.buf.is_empty() {
            self.work.notify_one();
        }
    }

    /// The last sequence given to a record.
    pub fn assigned_through(&self) -> u64 {
        self.assigned.load(Ordering::Acquire)
    }

    /// The last sequence after which answers may leave: synced (or, with `answer_after:
    /// Written`, written).
    pub fn released_through(&self) -> u64 {
        match self.config.answer_after {
            AnswerAfter::Synced => self.synced.load(Ordering::Acquire),
            AnswerAfter::Written => self.written.load(Ordering::Acquire),
        }
    }

    /// The last sequence synced to disk: what the relay may send.
    pub fn synced_through(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    /// Calls `f` (from the writer thread) whenever records are written or synced: the
    /// reactor's waker.
    pub fn on_progress(&self, f: Box<dyn Fn() + Send + Sync>) {
        self.listeners.write().push(f);
    }

    /// Waits until `done()` holds or `deadline` passes; true if it holds. Woken by every
    /// write, sync and acknowledgement.
    pub fn wait_until(&self, deadline: Instant, done: impl Fn(&Journal) -> bool) -> bool {
        let mut guard = self.progress.0.lock();
        loop {
            if done(self) {
                return true;
            }
            if self.progress.1.wait_until(&mut guard, deadline).timed_out() {
                return done(self);
            }
        }
    }

    fn notify(&self) {
        for f in self.listeners.read().iter() {
            f();
        }
        let _guard = self.progress.0.lock();
        self.progress.1.notify_all();
    }

    /// The master has stored every record up to `through`: segments holding nothing newer
    /// are deleted (never the one being written).
    pub fn acknowledge(&self, through: u64) {
        self.acked.fetch_max(through, Ordering::AcqRel);
        let mut segments = self.segments.lock();
        while segments.len() > 1 && segments[1].first_seq.saturating_sub(1) <= through {
            let gone = segments.remove(0);
            if let Err(e) = std::fs::remove_file(&gone.path) {
                log::warn!("audit journal: cannot delete {}: {e}", gone.path.display());
            }
            self.disk_bytes.fetch_sub(gone.bytes, Ordering::AcqRel);
        }
        drop(segments);
        self.notify();
    }

    pub fn status(&self) -> JournalStatus {
        let queued = self.pending.lock().buf.len() as u64;
        let disk_bytes = self.disk_bytes.load(Ordering::Acquire);
        JournalStatus {
            stream: self.stream,
            assigned: self.assigned_through(),
            synced: self.synced_through(),
            acked: self.acked.load(Ordering::Acquire),
            disk_bytes,
            max_bytes: self.config.max_bytes,
            dropped: self.dropped.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            full: disk_bytes + queued + self.config.segment_bytes >= self.config.max_bytes,
        }
    }

    /// Writes and syncs what is queued, then stops the writer (at exit).
    pub fn shutdown(&self) {
        self.pending.lock().stop = true;
        self.work.notify_one();
        if let Some(handle) = self.writer.lock().take() {
            let _ = handle.join();
        }
    }

    /// `DropOldest` over `max_bytes`: deletes the oldest segments (never the current one)
    /// and counts the unrelayed records they held.
    fn make_room(&self) {
        if self.config.when_full != WhenFull::DropOldest {
            return;
        }
        let mut segments = self.segments.lock();
        while self.disk_bytes.load(Ordering::Acquire) > self.config.max_bytes && segments.len() > 1
        {
            let gone = segments.remove(0);
            let last = segments[0].first_seq - 1;
            let acked = self.acked.load(Ordering::Acquire);
            let lost = last.saturating_sub(acked.max(gone.first_seq - 1));
            self.acked.fetch_max(last, Ordering::AcqRel);
            let total = self.dropped.fetch_add(lost, Ordering::Relaxed) + lost;
            log::warn!(
                "audit journal full ({} bytes): deleted records {}..={last} the master never received ({lost} now, {total} since start); the trail has a gap",
                self.config.max_bytes,
                gone.first_seq
            );
            let _ = std::fs::remove_file(&gone.path);
            self.disk_bytes.fetch_sub(gone.bytes, Ordering::AcqRel);
        }
    }
}

/// The writer thread's own state: the segment it appends to.
struct Writer {
    journal: Arc<Journal>,
    file: Option<File>,
    size: u64,
}

impl Writer {
    fn new(journal: Arc<Journal>) -> Self {
        Writer {
            journal,
            file: None,
            size: 0,
        }
    }

    fn run(mut self) {
        let j = self.journal.clone();
        let mut batch: Vec<u8> = Vec::with_capacity(INITIAL_BUFFER);
        let mut unsynced: Option<u64> = None;
        let mut last_sync = Instant::now();
        loop {
            let (first, last, stop) = {
                let mut p = j.pending.lock();
                while p.buf.is_empty() && !p.stop {
                    let wait = match unsynced {
                        Some(_) => j.config.sync_interval.saturating_sub(last_sync.elapsed()),
                        None => WRITER_IDLE_WAKE,
                    };
                    if wait.is_zero() {
                        break;
                    }
                    p.writer_waiting = true;
                    j.work.wait_for(&mut p, wait);
                    p.writer_waiting = false;
                }
                std::mem::swap(&mut p.buf, &mut batch);
                let first = p.first_in_buf;
                p.first_in_buf = p.next_seq;
                (first, p.next_seq - 1, p.stop)
            };
            if !batch.is_empty() {
                self.write(&batch, first);
                batch.clear();
                j.make_room();
                j.written.store(last, Ordering::Release);
                unsynced = Some(last);
                if j.config.answer_after == AnswerAfter::Written {
                    j.notify();
                }
            }
            let due = j.config.answer_after == AnswerAfter::Synced
                || last_sync.elapsed() >= j.config.sync_interval
                || stop;
            if let (Some(through), true) = (unsynced, due) {
                self.sync();
                last_sync = Instant::now();
                j.synced.store(through, Ordering::Release);
                unsynced = None;
                j.notify();
            }
            if stop && unsynced.is_none() && j.pending.lock().buf.is_empty() {
                return;
            }
        }
    }

    /// Appends `batch` (whose first record is `first`), starting a new segment when the
    /// current one is full; retries until it succeeds (a full disk: the queue fills and new
    /// requests are refused meanwhile).
    fn write(&mut self, batch: &[u8], first: u64) {
        // How far the batch is written, kept across retries so nothing is written twice.
        let mut at = 0;
        let mut seq = first;
        loop {
            match self.try_write(batch, &mut at, &mut seq) {
                Ok(()) => return,
                Err(e) => {
                    log::error!(
                        "audit journal {}: cannot write: {e}; retrying (requests are refused once {MAX_QUEUED_BYTES} bytes wait)",
                        self.journal.config.dir.display()
                    );
                    // Drop the open segment: the next attempt reopens it, cut back to what
                    // was written whole.
                    self.file = None;
                    std::thread::sleep(WRITE_RETRY);
                }
            }
        }
    }

    fn try_write(&mut self, batch: &[u8], at: &mut usize, seq: &mut u64) -> io::Result<()> {
        let j = self.journal.clone();
        while *at < batch.len() {
            if self.file.is_none() || self.size >= j.config.segment_bytes {
                self.open_segment(*seq)?;
            }
            // Whole entries up to the segment's size (at least one).
            let room = j.config.segment_bytes.saturating_sub(self.size);
            let (mut end, mut taken) = (*at, 0u64);
            while end < batch.len() && (taken == 0 || ((end - *at) as u64) < room) {
                let len = batch
                    .get(end..end + 4)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_be_bytes) as usize;
                end = (end + segment::ENTRY_HEADER_LEN + len).min(batch.len());
                taken += 1;
            }
            let Some(file) = self.file.as_mut() else {
                return Err(io::Error::other("no segment open"));
            };
            if let Err(e) = file.write_all(&batch[*at..end]) {
                // Cut a partial write back so the segment holds whole entries only.
                let _ = file.set_len(self.size);
                return Err(e);
            }
            let written = (end - *at) as u64;
            self.size += written;
            j.disk_bytes.fetch_add(written, Ordering::AcqRel);
            if let Some(current) = j.segments.lock().last_mut() {
                current.bytes = self.size;
            }
            *at = end;
            *seq += taken;
        }
        Ok(())
    }

    /// Continues the last segment if it has room (after a restart or a failed write), else
    /// syncs it and starts a new one whose first record is `first`.
    fn open_segment(&mut self, first: u64) -> io::Result<()> {
        let j = self.journal.clone();
        let last = j.segments.lock().last().cloned();
        if let Some(seg) = last.filter(|s| s.bytes < j.config.segment_bytes) {
            let file = OpenOptions::new().append(true).open(&seg.path)?;
            file.set_len(seg.bytes)?;
            self.size = seg.bytes;
            self.file = Some(file);
            return Ok(());
        }
        if let Some(old) = self.file.take() {
            old.sync_data()?;
        }
        let path = j.config.dir.join(segment::file_name(first));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&path)?;
        let header = Header {
            stream: j.stream,
            first_seq: first,
        };
        file.write_all(&header.encode())?;
        file.sync_data()?;
        // The new name must survive a crash too.
        File::open(&j.config.dir)?.sync_all()?;
        self.size = HEADER_LEN as u64;
        self.file = Some(file);
        j.disk_bytes.fetch_add(HEADER_LEN as u64, Ordering::AcqRel);
        j.segments.lock().push(SegmentInfo {
            first_seq: first,
            path,
            bytes: self.size,
        });
        Ok(())
    }

    fn sync(&mut self) {
        if let Some(file) = &self.file {
            while let Err(e) = file.sync_data() {
                log::error!("audit journal: cannot sync: {e}; retrying");
                std::thread::sleep(WRITE_RETRY);
            }
        }
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
