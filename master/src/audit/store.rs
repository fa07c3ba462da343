//! The master's audit store: every server's records in their own SQLite file (not the
//! security database: its size and write rate are the trail's, and a lost trail must never
//! put the security database at risk), each stored once.
//!
//! A record is identified by (server, stream, sequence): the server is the replica's proven
//! host name (or the master's own name), the stream its journal's. The `streams` table holds,
//! per stream, the highest sequence stored and how many never arrived (a replica's journal
//! dropped them while full); a batch's records at or below it are skipped, and it is updated
//! in the same transaction as the records, so a batch sent again after any crash stores
//! nothing twice (a UNIQUE index enforces it as well). WAL with synchronous=FULL: a batch is
//! acknowledged only after its commit is on disk.
//!
//! Not pure: SQLite. Used by the ingest thread (batches, retention), the admin handler
//! (queries, admin records) and the master's own journal relay, behind one mutex.

use gatehouse_common::audit::record::decode_one;
use gatehouse_common::audit::{encode_record, AuditRecord};
use gatehouse_common::os::{self, secure_file};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The stream of records the master writes straight into the store (admin actions,
/// lockouts): 0, never drawn for a journal (whose streams are random u64s; 0 is one chance
/// in 2^64, and a journal drawing it would only share numbering with these).
pub const LOCAL_STREAM: u64 = 0;
/// Most records one query returns (10,000): `audit` pages through more with `--after`.
pub const MAX_QUERY_RECORDS: usize = 10_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    server TEXT NOT NULL, stream INTEGER NOT NULL, seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL, kind TEXT NOT NULL, outcome TEXT NOT NULL,
    user TEXT NOT NULL, host TEXT NOT NULL, agent TEXT NOT NULL,
    record BLOB NOT NULL, stored_ms INTEGER NOT NULL,
    UNIQUE (server, stream, seq));
CREATE INDEX IF NOT EXISTS records_at ON records (at_ms);
CREATE INDEX IF NOT EXISTS records_user ON records (user, at_ms);
CREATE INDEX IF NOT EXISTS records_host ON records (host, at_ms);
CREATE TABLE IF NOT EXISTS streams (
    server TEXT NOT NULL, stream INTEGER NOT NULL,
    through INTEGER NOT NULL, missing INTEGER NOT NULL,
    PRIMARY KEY (server, stream));
";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditStoreError {
    #[error("audit store {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Insecure(#[from] secure_file::InsecurePath),
    #[error("audit store {path}: {message}")]
    Setup { path: String, message: String },
}

/// A batch of one stream's records: `records[i]` has sequence `first + i`.
#[derive(Debug, Clone)]
pub struct Batch {
    pub server: String,
    pub stream: u64,
    pub first: u64,
    pub records: Vec<AuditRecord>,
}

/// A record as stored, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: u64,
    pub server: String,
    pub seq: u64,
    pub record: AuditRecord,
}

/// What `audit` asks for; every filter optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// From this time on (ms since the epoch, inclusive).
    pub since_ms: Option<u64>,
    /// Before this time (exclusive).
    pub until_ms: Option<u64>,
    pub user: Option<String>,
    /// The host a record is about, or the agent that asked.
    pub host: Option<String>,
    /// `allow`, `deny`, `ok`, `fail`, `refused`, `locked_out`, `done`, ...
    pub outcome: Option<String>,
    pub kind: Option<String>,
    pub server: Option<String>,
    /// Only records stored after this id (follow mode resumes here).
    pub after_id: Option<u64>,
    /// At most this many (capped at [`MAX_QUERY_RECORDS`]); without `after_id` the newest.
    pub limit: usize,
}

/// One stream's progress, for status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamProgress {
    pub server: String,
    pub stream: u64,
    pub through: u64,
    pub missing: u64,
}

/// See the module docs.
pub struct AuditStore {
    conn: Connection,
    path: PathBuf,
}

/// SQLite integers are signed: a u64 is stored by its bits.
fn i(v: u64) -> i64 {
    v as i64
}

fn u(v: i64) -> u64 {
    v as u64
}

impl AuditStore {
    /// Opens (or creates, private to this user) the store at `path`.
    pub fn open(path: &Path) -> Result<AuditStore, AuditStoreError> {
        let name = path.display().to_string();
        let files = ["", "-wal", "-shm"].map(|suffix| {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            PathBuf::from(file)
        });
        for file in &files {
            secure_file::check_private_file_if_present(file, "audit store")?;
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        secure_file::check_trusted_dir(dir.unwrap_or(Path::new(".")), "audit store")?;
        let sql = |source| AuditStoreError::Sqlite {
            path: name.clone(),
            source,
        };
        let conn = os::with_umask(secure_file::PRIVATE_UMASK, || {
            let conn = Connection::open(path)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // A batch is acknowledged to its server only once its commit is on disk.
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        })
        .map_err(sql)?;
        for file in &files {
            if file.exists() {
                secure_file::restrict_to_owner(file).map_err(|e| AuditStoreError::Setup {
                    path: file.display().to_string(),
                    message: format!("cannot make it private (chmod 600): {e}"),
                })?;
            }
        }
        Ok(AuditStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn sql(&self, source: rusqlite::Error) -> AuditStoreError {
        AuditStoreError::Sqlite {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Stores the records of `batches` not stored before, in one transaction; returns, per
    /// batch, the highest sequence of its stream now stored (what to acknowledge), and the
    /// records stored with their ids (for forwarding).
    pub fn insert(
        &mut self,
        batches: &[Batch],
    ) -> Result<(Vec<u64>, Vec<Stored>), AuditStoreError> {
        let path = self.path.display().to_string();
        let sql = |source| AuditStoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        let mut throughs = Vec::with_capacity(batches.len());
        let mut stored = Vec::new();
        // When the master stored them (the delay from a decision to its record, measured).
        let stored_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        {
            let mut known = tx
                .prepare_cached(
                    "SELECT through, missing FROM streams WHERE server = ?1 AND stream = ?2",
                )
                .map_err(sql)?;
            let mut put = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO records (server, stream, seq, at_ms, kind, outcome, user, host, agent, record, stored_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(sql)?;
            let mut progress = tx
                .prepare_cached(
                    "INSERT INTO streams (server, stream, through, missing) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (server, stream) DO UPDATE SET through = ?3, missing = ?4",
                )
                .map_err(sql)?;
            let mut bytes = Vec::new();
            for batch in batches {
                let (through, missing): (u64, u64) = known
                    .query_row(params![batch.server, i(batch.stream)], |r| {
                        Ok((u(r.get(0)?), u(r.get(1)?)))
                    })
                    .optional()
                    .map_err(sql)?
                    .unwrap_or((0, 0));
                let gap = batch.first.saturating_sub(through.saturating_add(1));
                if gap > 0 {
                    log::warn!(
                        "audit: {} stream {:016x} never sent records {}..{} (its journal dropped them while full)",
                        batch.server,
                        batch.stream,
                        through + 1,
                        batch.first
                    );
                }
                let mut last = through;
                for (n, record) in batch.records.iter().enumerate() {
                    let seq = batch.first + n as u64;
                    if seq <= through {
                        continue;
                    }
                    bytes.clear();
                    encode_record(&mut bytes, record);
                    put.execute(params![
                        batch.server,
                        i(batch.stream),
                        i(seq),
                        i(record.at_unix_ms),
                        record.kind_name(),
                        record.outcome(),
                        record.user(),
                        record.host(),
                        record.agent,
                        bytes,
                        i(stored_ms),
                    ])
                    .map_err(sql)?;
                    stored.push(Stored {
                        id: u(tx.last_insert_rowid()),
                        server: batch.server.clone(),
                        seq,
                        record: record.clone(),
                    });
                    last = seq;
                }
                progress
                    .execute(params![
                        batch.server,
                        i(batch.stream),
                        i(last),
                        i(missing + gap)
                    ])
                    .map_err(sql)?;
                throughs.push(last);
            }
        }
        tx.commit().map_err(sql)?;
        Ok((throughs, stored))
    }

    /// Stores one record the master made itself (an admin action, a lockout) as `server`'s
    /// next in [`LOCAL_STREAM`]; durable when this returns.
    pub fn insert_local(
        &mut self,
        server: &str,
        record: AuditRecord,
    ) -> Result<Stored, AuditStoreError> {
        let through: u64 = self
            .conn
            .query_row(
                "SELECT through FROM streams WHERE server = ?1 AND stream = ?2",
                params![server, i(LOCAL_STREAM)],
                |r| r.get(0).map(u),
            )
            .optional()
            .map_err(|e| self.sql(e))?
            .unwrap_or(0);
        let batch = Batch {
            server: server.to_string(),
            stream: LOCAL_STREAM,
            first: through + 1,
            records: vec![record],
        };
        let (_, mut stored) = self.insert(std::slice::from_ref(&batch))?;
        stored.pop().ok_or_else(|| AuditStoreError::Setup {
            path: self.path.display().to_string(),
            message: "a local record was not stored".into(),
        })
    }

    /// The records `query` selects, oldest first.
    pub fn query(&self, query: &AuditQuery) -> Result<Vec<Stored>, AuditStoreError> {
        let mut clauses = Vec::new();
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        let mut filter = |clause: &str, value: rusqlite::types::Value| {
            clauses.push(clause.replace('?', &format!("?{}", values.len() + 1)));
            values.push(value);
        };
        if let Some(v) = query.since_ms {
            filter("at_ms >= ?", i(v).into());
        }
        if let Some(v) = query.until_ms {
            filter("at_ms < ?", i(v).into());
        }
        if let Some(v) = &query.user {
            filter("user = ?", v.clone().into());
        }
        if let Some(v) = &query.host {
            // Both sides compare with the same parameter.
            filter("(host = ? OR agent = ?)", v.clone().into());
        }
        if let Some(v) = &query.outcome {
            filter("outcome = ?", v.clone().into());
        }
        if let Some(v) = &query.kind {
            filter("kind = ?", v.clone().into());
        }
        if let Some(v) = &query.server {
            filter("server = ?", v.clone().into());
        }
        if let Some(v) = query.after_id {
            filter("id > ?", i(v).into());
        }
        let limit = query.limit.clamp(1, MAX_QUERY_RECORDS);
        let filters = match clauses.is_empty() {
            true => String::new(),
            false => format!("WHERE {}", clauses.join(" AND ")),
        };
        // Following: the next ones after `after_id`; otherwise the newest `limit`.
        let order = match query.after_id {
            Some(_) => "ASC",
            None => "DESC",
        };
        let sql = format!(
            "SELECT id, server, seq, record FROM records {filters} ORDER BY id {order} LIMIT {limit}"
        );
        let mut statement = self.conn.prepare(&sql).map_err(|e| self.sql(e))?;
        let rows = statement
            .query_map(params_from_iter(values), |r| {
                Ok((
                    u(r.get(0)?),
                    r.get::<_, String>(1)?,
                    u(r.get(2)?),
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, server, seq, bytes) = row.map_err(|e| self.sql(e))?;
            match decode_one(&bytes) {
                Ok(record) => out.push(Stored {
                    id,
                    server,
                    seq,
                    record,
                }),
                Err(e) => log::error!("audit store: record {id} does not decode: {e}"),
            }
        }
        if query.after_id.is_none() {
            out.reverse();
        }
        Ok(out)
    }

    /// Deletes records older than `before_ms` and, beyond the newest `max_records`, the
    /// oldest; returns how many. Streams' progress stays, so nothing deleted comes back.
    pub fn prune(&mut self, before_ms: u64, max_records: u64) -> Result<u64, AuditStoreError> {
        let by_age = self
            .conn
            .execute(
                "DELETE FROM records WHERE at_ms < ?1",
                params![i(before_ms)],
            )
            .map_err(|e| self.sql(e))?;
        let by_count = self
            .conn
            .execute(
                "DELETE FROM records WHERE id <= (SELECT max(id) FROM records) - ?1",
                params![i(max_records)],
            )
            .map_err(|e| self.sql(e))?;
        Ok((by_age + by_count) as u64)
    }

    /// Every stream's progress, by server.
    pub fn streams(&self) -> Result<Vec<StreamProgress>, AuditStoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT server, stream, through, missing FROM streams ORDER BY server, stream")
            .map_err(|e| self.sql(e))?;
        let rows = statement
            .query_map([], |r| {
                Ok(StreamProgress {
                    server: r.get(0)?,
                    stream: u(r.get(1)?),
                    through: u(r.get(2)?),
                    missing: u(r.get(3)?),
                })
            })
            .map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// Records stored now.
    pub fn count(&self) -> Result<u64, AuditStoreError> {
        self.conn
            .query_row("SELECT count(*) FROM records", [], |r| r.get(0).map(u))
            .map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
