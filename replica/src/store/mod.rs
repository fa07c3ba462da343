//! The durable security database, used by the master (authoritative) and by replicas (their
//! persisted copy, resumed from after a restart): SQLite (WAL, synchronous=FULL) holding the state
//! tables and a change log, plus the same database in memory so reads never touch the disk.
//!
//! Not pure: file I/O and the wall clock (each log row records when it was written). Called by
//! the master daemon (through `MasterState`, which serialises access), and by replication to
//! read the log. Every change (or admin batch, or replicated batch) is applied in ONE
//! transaction that rewrites the touched rows and appends the log rows with the next
//! sequences; memory is updated only after the commit, so what readers see is always what is
//! on disk, and a change is acknowledged only once durable. A change costs what it touches:
//! the compiled snapshot is updated incrementally (`PolicySnapshot::apply`) and only the
//! touched entities' rows are written. An import or a snapshot rewrites every row in one
//! transaction.
//!
//! - `schema`: tables, version, migrations.
//! - `tables`: rows ↔ model.

#[cfg(test)]
mod bulk_tests;
mod schema;
mod tables;
#[cfg(test)]
pub(crate) mod tests;

pub use schema::{SCHEMA_V0, SCHEMA_VERSION};

use gatehouse_common::os::{self, secure_file, secure_file::InsecurePath};
use gatehouse_common::policy::{
    Applied, Change, ChangeError, Database, PolicyError, PolicySnapshot,
};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why the store failed or refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Refused(#[from] ChangeError),
    /// A batch was refused because of its change `index` (from 0); nothing was applied.
    #[error("change {} of the batch: {error}", .index + 1)]
    RefusedInBatch { index: usize, error: ChangeError },
    #[error("{path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("{path}: in use by another process (is another gatehouse-master running on it?)")]
    Locked { path: String },
    #[error("{path}: {message}")]
    Setup { path: String, message: String },
    #[error(transparent)]
    Insecure(#[from] InsecurePath),
    #[error("{path}: an SQLite database, but not a Gatehouse store (no meta table); refusing to touch it")]
    NotGatehouse { path: String },
    #[error("{path}: schema version {found} is newer than this gatehouse-master supports ({supported}); run the newer master, or restore a backup")]
    SchemaTooNew {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("{path}: unknown schema version `{found}`; refusing to open it")]
    SchemaUnknown { path: String, found: String },
    #[error("{path}: the stored database is invalid: {error}")]
    Invalid { path: String, error: PolicyError },
    #[error("{path}: change log entry {seq} is unreadable: {message}")]
    CorruptLog {
        path: String,
        seq: u64,
        message: String,
    },
    #[error("sequence {asked} is ahead of this store's sequence {current}")]
    FutureSequence { asked: u64, current: u64 },
    #[error("out-of-order change: expected sequence {expected}, got {got}")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("cannot encode change: {0}")]
    Encode(String),
    #[error(
        "the epoch is at its maximum ({}); this store cannot be promoted again",
        u64::MAX
    )]
    EpochExhausted,
    #[error("no replica holding this master's epoch ({epoch}) has connected within {waited_ms} ms of this write; writes wait for one after a restart, so a former master cannot take writes beside a promoted one. Start a replica, or restart with --accept-writes if no replica was ever promoted (README, \"Promoting a replica\"){}", .refused.as_ref().map(|r| format!(". {r}")).unwrap_or_default())]
    Unconfirmed {
        epoch: u64,
        waited_ms: u64,
        /// What a replica that refused this master said (it follows a newer epoch), if any.
        refused: Option<String>,
    },
}

impl StoreError {
    fn sqlite(path: &str, source: rusqlite::Error) -> StoreError {
        if source.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) {
            return StoreError::Locked {
                path: path.to_string(),
            };
        }
        StoreError::Sqlite {
            path: path.to_string(),
            source,
        }
    }
}

/// The store's files: the database and the companions SQLite creates beside it (the
/// write-ahead log, its shared-memory index, and a rollback journal while the schema is
/// created). SQLite gives them the database file's mode.
fn store_files(path: &Path) -> [std::path::PathBuf; 4] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    [
        path.to_path_buf(),
        with("-wal"),
        with("-shm"),
        with("-journal"),
    ]
}

/// What a replica at some sequence should receive next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangesAfter {
    /// The next changes, in sequence order (empty when it is current).
    Changes(Vec<(u64, Change)>),
    /// The log no longer reaches back that far: send a snapshot. `oldest_available` is the
    /// lowest sequence still in the log (or the next sequence when the log is empty).
    Compacted { oldest_available: u64 },
    /// The next change replaced the whole database (an import, sequence `seq`): the log
    /// records only that it happened, so send a snapshot.
    Replaced { seq: u64 },
}

/// How far a long store operation (an import, a batch, a snapshot install) has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// `checking` (compiling the database), `writing` (rows), `committing` (the fsync).
    pub stage: &'static str,
    pub done: u64,
    pub total: u64,
}

/// SQLite settings while the whole store is read at start-up: a 256 MiB page cache (freed
/// after) and sorts in memory.
const READ_ALL_PRAGMAS: &str = "PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY;";
/// SQLite settings while running: the default 2 MiB page cache (a change touches a few pages;
/// bulk writes go in one transaction); sorts stay in memory.
const RUNNING_PRAGMAS: &str = "PRAGMA cache_size = -2000;";

/// What the change log holds for a change that replaced the whole database (an import): a
/// marker, not the database (which may be hundreds of megabytes), since a replica behind it
/// gets a snapshot anyway. Not valid RON for a `Change`, so it cannot be mistaken for one.
const REPLACED_MARKER: &str = "#replaced";

/// The store: one SQLite connection plus the compiled database it mirrors.
pub struct Store {
    conn: Connection,
    path: String,
    /// The database in memory: persistent, so handing it out is a reference count and a
    /// change makes the next version in O(what it touches).
    policy: Arc<PolicySnapshot>,
    sequence: u64,
    epoch: u64,
}

impl Store {
    /// Opens (or creates and initialises) the store at `path`, migrating an older schema and
    /// refusing a newer or foreign one. Loads and compiles the database once.
    ///
    /// The store holds every node key and password hash, so it is private to the daemon's
    /// user (`gatehouse_common::os::secure_file`): existing files (the database, its `-wal`
    /// and `-shm`) open to group or others, owned by another user, or in a directory others
    /// can write, are refused; new ones are created under a 077 umask and set to 0600.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let name = path.display().to_string();
        let files = store_files(path);
        for file in &files {
            secure_file::check_private_file_if_present(file, "store")?;
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        secure_file::check_trusted_dir(dir, "store")?;
        // The mask is process-wide: daemons open their store before they start threads.
        let conn = os::with_umask(secure_file::PRIVATE_UMASK, || {
            let mut conn = Connection::open(path).map_err(|e| StoreError::sqlite(&name, e))?;
            schema::prepare(&mut conn, &name)?;
            Ok::<_, StoreError>(conn)
        })?;
        conn.set_prepared_statement_cache_capacity(tables::STATEMENT_CACHE);
        for file in &files {
            secure_file::restrict_to_owner(file).map_err(|e| StoreError::Setup {
                path: file.display().to_string(),
                message: format!("cannot make it private (chmod 600): {e}"),
            })?;
        }
        let sql = |e| StoreError::sqlite(&name, e);
        let started = std::time::Instant::now();
        // Reading every row sorts by position: with SQLite's default 2 MiB page cache and
        // temporary files a million-user store spills and thrashes, so the read gets a large
        // cache and in-memory sorts, and the cache goes back to its default after.
        conn.execute_batch(READ_ALL_PRAGMAS).map_err(sql)?;
        let db = tables::read_all(&conn).map_err(sql)?;
        conn.execute_batch(RUNNING_PRAGMAS).map_err(sql)?;
        let read = started.elapsed();
        let sequence = read_sequence(&conn, &name)?;
        let meta_u64 = |key: &str| -> Result<Option<u64>, StoreError> {
            match schema::get_meta(&conn, key).map_err(sql)? {
                None => Ok(None),
                Some(text) => text.parse().map(Some).map_err(|_| StoreError::Setup {
                    path: name.clone(),
                    message: format!("meta `{key}` is not a number: {text:?}"),
                }),
            }
        };
        let epoch = meta_u64("epoch")?.unwrap_or(0);
        let mut policy = PolicySnapshot::compile(&db).map_err(|error| StoreError::Invalid {
            path: name.clone(),
            error,
        })?;
        // Millions of small strings: freed on another thread, not on the start-up path, and
        // the memory handed back to the system (the model is a transient twice the size of
        // the compiled database; kept by the allocator it would stay in the RSS for good).
        let _ = std::thread::Builder::new()
            .name("free".into())
            .spawn(move || {
                drop(db);
                return_free_memory();
            });
        log::info!(
            "{name}: {} users, {} hosts, {} routes read in {read:?}, compiled in {:?}",
            policy.user_count(),
            policy.host_count(),
            policy.route_count(),
            started.elapsed() - read
        );
        // The rows keep the positions they were written with (gaps where entities were
        // removed); new ones must come after all of them.
        policy.reserve_positions(schema::max_position(&conn).map_err(sql)? + 1);
        Ok(Store {
            conn,
            path: name,
            policy: Arc::new(policy),
            sequence,
            epoch,
        })
    }

    /// The master epoch: on a master, its own (1 for the first master, +1 per promotion); on
    /// a replica, the epoch of the master it follows. 0 on a fresh replica store.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Records the epoch durably.
    pub fn set_epoch(&mut self, epoch: u64) -> Result<(), StoreError> {
        let path = self.path.clone();
        schema::set_meta(&self.conn, "epoch", &epoch.to_string())
            .map_err(|e| StoreError::sqlite(&path, e))?;
        self.epoch = epoch;
        Ok(())
    }

    /// Makes this store the master's at the next epoch: one above the epoch it holds (the one
    /// its replica followed, which that master signed; or 0 for a new store). Promotion of a
    /// replica's copy, or the first start of a master. Removes the `superseded_by` mark older
    /// versions recorded on a replica's unproven word.
    pub fn promote(&mut self) -> Result<u64, StoreError> {
        let epoch = self
            .epoch
            .checked_add(1)
            .ok_or(StoreError::EpochExhausted)?;
        let path = self.path.clone();
        schema::set_meta(&self.conn, "epoch", &epoch.to_string())
            .and_then(|_| {
                self.conn
                    .execute("DELETE FROM meta WHERE key = 'superseded_by'", [])
                    .map(|_| ())
            })
            .map_err(|e| StoreError::sqlite(&path, e))?;
        self.epoch = epoch;
        Ok(epoch)
    }

    /// Applies `change` durably and returns its sequence number. A refused change
    /// ([`StoreError::Refused`]) or a failed commit leaves disk and memory as they were. A
    /// change that would change nothing commits nothing: it is answered with the current
    /// sequence and the snapshot stays the very same `Arc`.
    pub fn apply(&mut self, change: &Change) -> Result<u64, StoreError> {
        self.apply_many(std::slice::from_ref(change), &mut |_| {})
    }

    /// Applies `changes` (an admin batch) in order, all or none, in one transaction with one
    /// fsync: each that changes something gets the next sequence. Returns the last sequence.
    /// A refusal names the change ([`StoreError::RefusedInBatch`], its index from 0) and
    /// leaves everything as it was.
    pub fn apply_many(
        &mut self,
        changes: &[Change],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<u64, StoreError> {
        let mut next: Option<PolicySnapshot> = None;
        let mut logged: Vec<(u64, &Change)> = Vec::new();
        for (index, change) in changes.iter().enumerate() {
            let base = next.as_ref().unwrap_or(&self.policy);
            let applied = base.apply(change).map_err(|error| match changes.len() {
                1 => StoreError::Refused(error),
                _ => StoreError::RefusedInBatch { index, error },
            })?;
            if let Applied::Changed(snapshot) = applied {
                next = Some(snapshot);
                logged.push((self.sequence + 1 + logged.len() as u64, change));
            }
        }
        match next {
            None => Ok(self.sequence),
            Some(next) => self.commit(&logged, next, progress),
        }
    }

    /// Applies changes that already have sequence numbers, all in one transaction: for a
    /// replica persisting a batch from the master. They must continue this store's sequence
    /// exactly (no gap, no repeat). Returns the new sequence.
    pub fn apply_batch(&mut self, batch: &[(u64, Change)]) -> Result<u64, StoreError> {
        for (i, (seq, _)) in batch.iter().enumerate() {
            let expected = self.sequence + 1 + i as u64;
            if *seq != expected {
                return Err(StoreError::OutOfOrder {
                    expected,
                    got: *seq,
                });
            }
        }
        let next = match self.policy.apply_all(batch.iter().map(|(_, c)| c))? {
            Applied::Changed(next) => next,
            // Nothing to rewrite, but the log and the sequence still move on.
            Applied::Unchanged => PolicySnapshot::clone(&self.policy),
        };
        let logged: Vec<(u64, &Change)> = batch.iter().map(|(seq, c)| (*seq, c)).collect();
        self.commit(&logged, next, &mut |_| {})
    }

    /// Writes the rows `logged` touched (from `next`, the database after them), their log
    /// rows and the sequence in one transaction; then `next` becomes the store's database.
    /// Dropping the transaction on any error rolls it back; memory is untouched until the
    /// commit succeeded.
    fn commit(
        &mut self,
        logged: &[(u64, &Change)],
        next: PolicySnapshot,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<u64, StoreError> {
        let Some(&(last, _)) = logged.last() else {
            return Ok(self.sequence);
        };
        let mut touched: Vec<tables::Touched> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (_, change) in logged {
            let t = tables::touched(change);
            if seen.insert(t.clone()) {
                touched.push(t);
            }
        }
        if seen.contains(&tables::Touched::All) {
            touched = vec![tables::Touched::All];
        }
        let at = unix_ms();
        let path = self.path.clone();
        let sql = |e| StoreError::sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        for t in &touched {
            match t {
                tables::Touched::All => write_everything(&tx, &next, progress).map_err(sql)?,
                t => tables::write(&tx, &next, t).map_err(sql)?,
            }
        }
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO changelog (seq, at_unix_ms, change) VALUES (?1, ?2, ?3)",
                )
                .map_err(sql)?;
            for (seq, change) in logged {
                let text = match change {
                    Change::ReplaceAll { .. } => REPLACED_MARKER.to_string(),
                    other => {
                        ron::to_string(other).map_err(|e| StoreError::Encode(e.to_string()))?
                    }
                };
                insert
                    .execute(params![*seq as i64, at as i64, text])
                    .map_err(sql)?;
            }
        }
        schema::set_meta(&tx, "sequence", &last.to_string()).map_err(sql)?;
        tx.commit().map_err(sql)?;
        if seen.contains(&tables::Touched::All) {
            checkpoint(&self.conn).map_err(sql)?;
        }
        self.policy = Arc::new(next);
        self.sequence = last;
        Ok(last)
    }

    /// Replaces everything with `db` at sequence `seq` (a replica installing a snapshot) and
    /// empties the change log, which no longer describes how this copy came to be. One
    /// transaction, every row inserted once.
    pub fn install_snapshot(
        &mut self,
        db: &Database,
        seq: u64,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), StoreError> {
        let total = PolicySnapshot::compile(db).map_err(ChangeError::from)?;
        let path = self.path.clone();
        let sql = |e| StoreError::sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        write_everything(&tx, &total, progress).map_err(sql)?;
        tx.execute("DELETE FROM changelog", []).map_err(sql)?;
        schema::set_meta(&tx, "sequence", &seq.to_string()).map_err(sql)?;
        tx.commit().map_err(sql)?;
        checkpoint(&self.conn).map_err(sql)?;
        self.policy = Arc::new(total);
        self.sequence = seq;
        Ok(())
    }

    /// The database in memory as the model (built from the snapshot: O(database)).
    pub fn database(&self) -> Database {
        self.policy.to_database()
    }

    /// The compiled current database (a reference count).
    pub fn policy(&self) -> Arc<PolicySnapshot> {
        self.policy.clone()
    }

    /// The sequence of the last committed change (0 for a new store).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The whole database and the sequence it is at, consistent with each other (a
    /// reference count: turn it into a model outside any lock).
    pub fn snapshot(&self) -> (Arc<PolicySnapshot>, u64) {
        (self.policy.clone(), self.sequence)
    }

    /// Reads the database from the state tables (not memory): for checks and tests.
    pub fn load_database(&self) -> Result<Database, StoreError> {
        tables::read_all(&self.conn).map_err(|e| StoreError::sqlite(&self.path, e))
    }

    /// The lowest sequence still in the change log (the next sequence when it is empty).
    pub fn oldest_available(&self) -> Result<u64, StoreError> {
        let min: Option<i64> = self
            .conn
            .query_row("SELECT MIN(seq) FROM changelog", [], |row| row.get(0))
            .map_err(|e| StoreError::sqlite(&self.path, e))?;
        Ok(min.map_or(self.sequence + 1, |m| m as u64))
    }

    /// Up to `limit` changes after sequence `after`, or `Compacted` when the log no longer
    /// reaches back to `after + 1`, or `Replaced` when the next change was an import.
    pub fn changes_after(&self, after: u64, limit: usize) -> Result<ChangesAfter, StoreError> {
        if after > self.sequence {
            return Err(StoreError::FutureSequence {
                asked: after,
                current: self.sequence,
            });
        }
        if after == self.sequence {
            return Ok(ChangesAfter::Changes(Vec::new()));
        }
        let oldest = self.oldest_available()?;
        if after + 1 < oldest {
            return Ok(ChangesAfter::Compacted {
                oldest_available: oldest,
            });
        }
        let sql = |e| StoreError::sqlite(&self.path, e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, change FROM changelog WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map(params![after as i64, limit as i64], |row| {
                Ok((row.get::<_, i64>(0)? as u64, row.get::<_, String>(1)?))
            })
            .map_err(sql)?;
        let mut changes = Vec::new();
        for row in rows {
            let (seq, text) = row.map_err(sql)?;
            let change = match text.as_str() {
                REPLACED_MARKER => None,
                text => Some(ron::from_str(text).map_err(|e| StoreError::CorruptLog {
                    path: self.path.clone(),
                    seq,
                    message: e.to_string(),
                })?),
            };
            // Stores before the marker logged an import whole: the same for a replica.
            match change {
                Some(Change::ReplaceAll { .. }) | None if changes.is_empty() => {
                    return Ok(ChangesAfter::Replaced { seq })
                }
                Some(Change::ReplaceAll { .. }) | None => break,
                Some(change) => changes.push((seq, change)),
            }
        }
        Ok(ChangesAfter::Changes(changes))
    }

    /// Deletes log rows up to and including `keep_after_seq` (never past the current
    /// sequence). Returns how many were deleted. Replicas behind that point need a snapshot.
    pub fn compact(&mut self, keep_after_seq: u64) -> Result<usize, StoreError> {
        let upto = keep_after_seq.min(self.sequence);
        self.conn
            .execute("DELETE FROM changelog WHERE seq <= ?1", [upto as i64])
            .map_err(|e| StoreError::sqlite(&self.path, e))
    }
}

/// Copies the write-ahead log into the database file and empties it, after a bulk write (an
/// import, a snapshot): otherwise the next small change would pay for copying the whole
/// database (SQLite checkpoints once the log passes 1000 pages), hundreds of milliseconds
/// at a hundred thousand users.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

/// Returns the allocator's free memory to the system (glibc keeps freed small blocks for
/// reuse; after a start-up or a snapshot install that is gigabytes at a million users).
pub fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; it is safe to call at any time
    // from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Every state row from `db`, with `writing` progress and a `committing` report at the end.
fn write_everything(
    conn: &Connection,
    db: &PolicySnapshot,
    progress: &mut dyn FnMut(Progress),
) -> rusqlite::Result<()> {
    let total = tables::row_count(db);
    tables::write_all(conn, db, &mut |done| {
        progress(Progress {
            stage: "writing",
            done,
            total,
        })
    })?;
    progress(Progress {
        stage: "committing",
        done: total,
        total,
    });
    Ok(())
}

fn read_sequence(conn: &Connection, path: &str) -> Result<u64, StoreError> {
    let text = schema::get_meta(conn, "sequence")
        .map_err(|e| StoreError::sqlite(path, e))?
        .unwrap_or_else(|| "0".into());
    let meta: u64 = text.parse().map_err(|_| StoreError::Setup {
        path: path.to_string(),
        message: format!("meta sequence `{text}` is not a number"),
    })?;
    // The log can only be behind the meta row if someone edited the file by hand; never
    // hand out a sequence number twice.
    let max: Option<i64> = conn
        .query_row("SELECT MAX(seq) FROM changelog", [], |row| row.get(0))
        .optional()
        .map_err(|e| StoreError::sqlite(path, e))?
        .flatten();
    Ok(meta.max(max.map_or(0, |m| m as u64)))
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}
