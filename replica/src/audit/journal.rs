//! The audit journal: every record a server makes is appended here, numbered in the
//! journal's stream, written and synced by one writer thread in group commits, and kept until
//! the master has stored it (the relay, `relay.rs`, reads it back and acknowledges).
//!
//! The reactor and the workers call [`Journal::append`]: a mutex held for the time it takes to
//! encode one record into the shared buffer (no allocation once the buffer has grown, no
//! system call). The reactor calls [`Journal::kick`] once per loop turn. With `answer_after:
//! Written` (the default) it copies the turn's records into the segment itself, mapped into
//! memory (`mapped.rs`, Linux): they are then in the page cache as a `write(2)` would put
//! them, with no system call and no wake-up of another thread, and the answers leave in the
//! same turn; the writer thread syncs (`fdatasync`) every `sync_interval`. Otherwise (or when
//! the segment is full, being synced or rotated) the writer swaps the buffer for an empty
//! one, writes it, syncs it and moves [`Journal::released_through`] on: the reactor holds each answer until the records made
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
use std::os::unix::fs::FileExt;
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
    /// The segment being appended to: the writer thread's, and with `answer_after: Written`
    /// also the reactor's, which copies a turn's records into its mapping itself
    /// ([`Journal::kick`]). Locked after `pending`, never before.
    tail: Mutex<Tail>,
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
                } else if bytes[valid..].iter().all(|&b| b == 0) {
                    // The mapped segment's unused room, left by a stop without the cut.
                    log::info!(
                        "audit journal {}: cutting {cut} unused bytes after sequence {last}",
                        path.display()
                    );
                    OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .set_len(valid as u64)?;
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
            tail: Mutex::new(Tail::default()),
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

    /// Once per reactor loop turn: with `answer_after: Written`, copies the turn's records
    /// into the mapped segment itself when they fit and the writer is not using it (no
    /// system call, no wake-up: the answers can leave in this same turn); otherwise wakes the
    /// writer if records wait and it sleeps.
    pub fn kick(&self) {
        let mut p = self.pending.lock();
        if p.buf.is_empty() {
            return;
        }
        if self.config.answer_after == AnswerAfter::Written && self.copy_to_tail(&mut p) {
            return;
        }
        if p.writer_waiting {
            self.work.notify_one();
        }
    }

    /// Copies every pending record into the mapped segment, if it is free, mapped and has
    /// room for all of them within `segment_bytes`; true if it did.
    fn copy_to_tail(&self, p: &mut Pending) -> bool {
        let Some(mut tail) = self.tail.try_lock() else {
            return false;
        };
        let len = p.buf.len() as u64;
        if tail.size + len > self.config.segment_bytes || !tail.copy(&p.buf) {
            return false;
        }
        let last = p.next_seq - 1;
        p.buf.clear();
        p.first_in_buf = p.next_seq;
        let was_clean = self.written.load(Ordering::Acquire) <= self.synced.load(Ordering::Acquire);
        self.disk_bytes.fetch_add(len, Ordering::AcqRel);
        if let Some(current) = self.segments.lock().last_mut() {
            current.bytes = tail.size;
        }
        drop(tail);
        self.written.store(last, Ordering::Release);
        // The writer syncs within `sync_interval` of the first unsynced record: wake it
        // for that one (a wake-up per interval, not per turn).
        if was_clean && p.writer_waiting {
            self.work.notify_one();
        }
        let _guard = self.progress.0.lock();
        self.progress.1.notify_all();
        true
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

/// The segment being appended to.
#[derive(Default)]
struct Tail {
    file: Option<File>,
    /// Bytes of records (and header) in `file`.
    size: u64,
    /// `file` mapped into memory (Linux; none where mapping failed: `write(2)` then).
    #[cfg(target_os = "linux")]
    map: Option<super::mapped::MappedSegment>,
}

impl Tail {
    /// Copies `bytes` after the records through the mapping; false (nothing copied) when
    /// there is no mapping or no room.
    fn copy(&mut self, bytes: &[u8]) -> bool {
        #[cfg(target_os = "linux")]
        if let Some(map) = self.map.as_mut() {
            if map.write_at(self.size, bytes) {
                self.size += bytes.len() as u64;
                return true;
            }
        }
        let _ = bytes;
        false
    }

    /// Appends `bytes`: through the mapping, else `write(2)`.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.copy(bytes) {
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::other("no segment open"));
        };
        if let Err(e) = file.write_all_at(bytes, self.size) {
            // Cut a partial write back so the segment holds whole entries only.
            let _ = file.set_len(self.size);
            return Err(e);
        }
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Unmaps the segment and cuts the file back to its records (the mapping allocated it
    /// longer).
    fn close(&mut self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if self.map.take().is_some() {
            if let Some(file) = &self.file {
                file.set_len(self.size)?;
            }
        }
        Ok(())
    }
}

/// The writer thread.
struct Writer {
    journal: Arc<Journal>,
}

impl Writer {
    fn new(journal: Arc<Journal>) -> Self {
        Writer { journal }
    }

    fn run(mut self) {
        let j = self.journal.clone();
        let mut batch: Vec<u8> = Vec::with_capacity(INITIAL_BUFFER);
        let mut last_sync = Instant::now();
        // Written and not yet synced (by this thread or by the reactor's copies).
        let unsynced = |j: &Journal| {
            let written = j.written.load(Ordering::Acquire);
            (written > j.synced.load(Ordering::Acquire)).then_some(written)
        };
        loop {
            let (first, last, stop) = {
                let mut p = j.pending.lock();
                while p.buf.is_empty() && !p.stop {
                    let wait = match unsynced(&j) {
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
                j.written.store(last, Ordering::Release);
                if j.config.answer_after == AnswerAfter::Written {
                    j.notify();
                }
            }
            let due = j.config.answer_after == AnswerAfter::Synced
                || last_sync.elapsed() >= j.config.sync_interval
                || stop;
            if let (Some(_), true) = (unsynced(&j), due) {
                let through = self.sync();
                last_sync = Instant::now();
                j.synced.fetch_max(through, Ordering::AcqRel);
                j.make_room();
                j.notify();
            }
            if stop && unsynced(&j).is_none() && j.pending.lock().buf.is_empty() {
                let mut tail = j.tail.lock();
                if let Err(e) = tail.close() {
                    log::warn!("audit journal: cannot cut the last segment back: {e}");
                }
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
                    let mut tail = self.journal.tail.lock();
                    let _ = tail.close();
                    tail.file = None;
                    drop(tail);
                    std::thread::sleep(WRITE_RETRY);
                }
            }
        }
    }

    fn try_write(&mut self, batch: &[u8], at: &mut usize, seq: &mut u64) -> io::Result<()> {
        let j = self.journal.clone();
        let mut tail = j.tail.lock();
        while *at < batch.len() {
            if tail.file.is_none() || tail.size >= j.config.segment_bytes {
                self.open_segment(&mut tail, *seq)?;
            }
            // Whole entries up to the segment's size (at least one).
            let room = j.config.segment_bytes.saturating_sub(tail.size);
            let (mut end, mut taken) = (*at, 0u64);
            while end < batch.len() && (taken == 0 || ((end - *at) as u64) < room) {
                let len = batch
                    .get(end..end + 4)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_be_bytes) as usize;
                end = (end + segment::ENTRY_HEADER_LEN + len).min(batch.len());
                taken += 1;
            }
            tail.append(&batch[*at..end])?;
            let written = (end - *at) as u64;
            j.disk_bytes.fetch_add(written, Ordering::AcqRel);
            if let Some(current) = j.segments.lock().last_mut() {
                current.bytes = tail.size;
            }
            *at = end;
            *seq += taken;
        }
        Ok(())
    }

    /// Continues the last segment if it has room (after a restart or a failed write), else
    /// syncs it and starts a new one whose first record is `first`.
    fn open_segment(&mut self, tail: &mut Tail, first: u64) -> io::Result<()> {
        let j = self.journal.clone();
        let last = j.segments.lock().last().cloned();
        if let Some(seg) = last.filter(|s| s.bytes < j.config.segment_bytes) {
            let file = OpenOptions::new().read(true).write(true).open(&seg.path)?;
            file.set_len(seg.bytes)?;
            tail.size = seg.bytes;
            tail.file = Some(file);
            self.map(tail);
            return Ok(());
        }
        tail.close()?;
        if let Some(old) = tail.file.take() {
            old.sync_data()?;
        }
        let path = j.config.dir.join(segment::file_name(first));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
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
        tail.size = HEADER_LEN as u64;
        tail.file = Some(file);
        self.map(tail);
        j.disk_bytes.fetch_add(HEADER_LEN as u64, Ordering::AcqRel);
        j.segments.lock().push(SegmentInfo {
            first_seq: first,
            path,
            bytes: tail.size,
        });
        Ok(())
    }

    /// Maps the open segment (Linux), with room for `segment_bytes` and one more entry of
    /// the largest size (a batch's first entry is taken whole); where that fails (no
    /// `fallocate` on this file system, no space), records go through `write(2)`.
    fn map(&self, tail: &mut Tail) {
        #[cfg(test)]
        if tests::NO_MAPPING.load(Ordering::Relaxed) {
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(file) = &tail.file {
            let room = self.journal.config.segment_bytes as usize
                + segment::ENTRY_HEADER_LEN
                + gatehouse_common::audit::MAX_RECORD_LEN;
            match super::mapped::MappedSegment::map(file, room) {
                Ok(map) => tail.map = Some(map),
                Err(e) => log::warn!(
                    "audit journal {}: cannot map the segment ({e}); writing it with write(2)",
                    self.journal.config.dir.display()
                ),
            }
        }
        let _ = tail;
    }

    /// Syncs the open segment (older ones were synced when closed), outside the tail's lock
    /// so the reactor keeps copying meanwhile; returns the last sequence it covers.
    fn sync(&mut self) -> u64 {
        let j = self.journal.clone();
        let (file, through) = {
            let tail = j.tail.lock();
            let through = j.written.load(Ordering::Acquire);
            (tail.file.as_ref().map(File::try_clone), through)
        };
        match file {
            Some(Ok(file)) => {
                while let Err(e) = file.sync_data() {
                    log::error!("audit journal: cannot sync: {e}; retrying");
                    std::thread::sleep(WRITE_RETRY);
                }
            }
            Some(Err(e)) => {
                log::error!("audit journal: cannot sync: {e}");
                return j.synced.load(Ordering::Acquire);
            }
            None => {}
        }
        through
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
