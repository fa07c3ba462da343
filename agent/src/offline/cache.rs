//! The agent's cache: identity answers (positive and negative), authorize decisions and offline
//! password verifiers, in SQLite under the state directory (directory 0700, files 0600 by the
//! shared secret-file rules of `gatehouse_common::os::secure_file`), so it survives a restart
//! and a reboot during an outage.
//!
//! Not pure (SQLite), but time is an argument (`now_ms`, Unix milliseconds: entries must age
//! across restarts, so a monotonic clock would not do). Used by the daemon's event loop only;
//! every operation is one indexed statement. Each table holds at most [`MAX_ENTRIES`] rows:
//! beyond that the oldest are dropped, so a program looking up random names cannot grow the
//! file without bound.

use gatehouse_common::os::secure_file::{
    check_private_file_if_present, check_trusted_dir, restrict_to_owner, PRIVATE_UMASK,
};
use gatehouse_local::codec::{decode_response, encode_response, LEN_PREFIX};
use gatehouse_local::LocalResponse;
use rusqlite::{params, Connection, OptionalExtension};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Most rows per table (100,000). Why: a host sees at most a few thousand users and groups; a
/// table at the cap is ~10 MB. Reaching it drops the oldest [`EVICT_BATCH`] rows.
pub const MAX_ENTRIES: u64 = 100_000;
/// Rows dropped at once when a table is full (1000): eviction costs one statement per 1000
/// inserts, not one per insert.
pub const EVICT_BATCH: u64 = 1000;
/// The cache file's name in the state directory.
pub const CACHE_FILE: &str = "cache.sqlite";

/// The cache's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Identities,
    Decisions,
    Verifiers,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Identities => "identities",
            Table::Decisions => "decisions",
            Table::Verifiers => "verifiers",
        }
    }
}

/// An open cache.
pub struct Cache {
    conn: Connection,
    counts: [u64; 3],
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS identities (key BLOB PRIMARY KEY, value BLOB NOT NULL, at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (key BLOB PRIMARY KEY, value BLOB NOT NULL, at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS verifiers (key BLOB PRIMARY KEY, value BLOB NOT NULL, at_ms INTEGER NOT NULL);
";

impl Cache {
    /// Opens (creating) `dir/cache.sqlite`: the directory 0700, the files 0600 from creation.
    /// Like every file holding secrets (it holds verifiers), an existing cache file that
    /// others can read or another user owns, or a directory others can write, is refused
    /// with the fix in the message.
    pub fn open(dir: &Path) -> Result<Cache, String> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(CACHE_FILE);
        let files = cache_files(&path);
        for file in &files {
            check_private_file_if_present(file, "agent cache").map_err(|e| e.to_string())?;
        }
        check_trusted_dir(dir, "agent cache").map_err(|e| e.to_string())?;
        // The mask is process-wide: the daemon opens its cache before it starts threads.
        let conn = gatehouse_common::os::with_umask(PRIVATE_UMASK, || Connection::open(&path))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // WAL with synchronous=NORMAL: a write costs no fsync (an answer must not wait ~10 ms
        // for the disk); a power cut may lose the newest entries, never corrupt the file, and a
        // cache may lose entries. SQLite gives the -wal and -shm files the database's mode.
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| conn.execute_batch(SCHEMA))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        for file in &files {
            restrict_to_owner(file)
                .map_err(|e| format!("{}: cannot make it private: {e}", file.display()))?;
        }
        let mut cache = Cache {
            conn,
            counts: [0; 3],
        };
        for table in [Table::Identities, Table::Decisions, Table::Verifiers] {
            let count: i64 = cache
                .conn
                .query_row(&format!("SELECT count(*) FROM {}", table.name()), [], |r| {
                    r.get(0)
                })
                .map_err(|e| e.to_string())?;
            cache.counts[table as usize] = count.try_into().unwrap_or(0);
        }
        Ok(cache)
    }

    /// Rows in `table`.
    pub fn len(&self, table: Table) -> u64 {
        self.counts[table as usize]
    }

    /// The answer stored under `key` and its age in ms (an answer that no longer decodes is
    /// treated as absent).
    pub fn get(&self, table: Table, key: &[u8], now_ms: u64) -> Option<(LocalResponse, u64)> {
        let (value, at_ms) = self.get_raw(table, key)?;
        let body = value.get(LEN_PREFIX..)?;
        let answer = decode_response(body).ok()?;
        Some((answer, now_ms.saturating_sub(at_ms)))
    }

    /// Stores `answer` under `key` at `now_ms`.
    pub fn put(&mut self, table: Table, key: &[u8], answer: &LocalResponse, now_ms: u64) {
        self.put_raw(table, key, &encode_response(answer), now_ms);
    }

    /// A verifier (PHC text) and its age in ms (none after [`Cache::forget_verifier`]).
    pub fn verifier(&self, user: &str, now_ms: u64) -> Option<(String, u64)> {
        let (value, at_ms) = self.get_raw(Table::Verifiers, user.as_bytes())?;
        let text = String::from_utf8(value).ok().filter(|t| !t.is_empty())?;
        Some((text, now_ms.saturating_sub(at_ms)))
    }

    /// Stores a verifier for `user`, made from a password a server accepted at `made_ms`. It is
    /// kept only if nothing newer is stored for the user: a verifier from a later login, or a
    /// later [`Cache::forget_verifier`] (the verifier thread may finish after a refusal that
    /// came in meanwhile, which must win).
    pub fn put_verifier(&mut self, user: &str, verifier: &str, made_ms: u64) {
        self.put_raw(
            Table::Verifiers,
            user.as_bytes(),
            verifier.as_bytes(),
            made_ms,
        );
    }

    /// Forgets `user`'s verifier as of `now_ms` (a server refused the user's password, or
    /// said the account is locked or gone): an empty row, so that a verifier made from an
    /// earlier login is not stored after it.
    pub fn forget_verifier(&mut self, user: &str, now_ms: u64) {
        self.put_raw(Table::Verifiers, user.as_bytes(), b"", now_ms);
    }

    /// Usable verifiers (rows forgotten by [`Cache::forget_verifier`] not counted), for the
    /// status report: one count over at most [`MAX_ENTRIES`] rows, asked rarely.
    pub fn live_verifiers(&self) -> u64 {
        self.conn
            .query_row(
                "SELECT count(*) FROM verifiers WHERE length(value) > 0",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_or(0, |n| n.try_into().unwrap_or(0))
    }

    /// Forgets `key`.
    #[cfg(test)]
    pub fn remove(&mut self, table: Table, key: &[u8]) {
        let sql = format!("DELETE FROM {} WHERE key = ?1", table.name());
        match self.conn.execute(&sql, [key]) {
            Ok(n) => self.counts[table as usize] -= (n as u64).min(self.len(table)),
            Err(e) => log::warn!("cache: {e}"),
        }
    }

    fn get_raw(&self, table: Table, key: &[u8]) -> Option<(Vec<u8>, u64)> {
        let sql = format!("SELECT value, at_ms FROM {} WHERE key = ?1", table.name());
        let row = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| {
                stmt.query_row([key], |r| {
                    Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()
            })
            .unwrap_or_else(|e| {
                log::warn!("cache: {e}");
                None
            })?;
        Some((row.0, u64::try_from(row.1).unwrap_or(0)))
    }

    fn put_raw(&mut self, table: Table, key: &[u8], value: &[u8], now_ms: u64) {
        let name = table.name();
        // A verifier (or its forgetting) replaces only an older one; a cached answer always
        // replaces the one before.
        let newer = match table {
            Table::Verifiers => format!("WHERE excluded.at_ms >= {name}.at_ms"),
            Table::Identities | Table::Decisions => String::new(),
        };
        let sql = format!(
            "INSERT INTO {name} (key, value, at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, at_ms = excluded.at_ms {newer}"
        );
        let at = i64::try_from(now_ms).unwrap_or(i64::MAX);
        let existed = self.get_raw(table, key).is_some();
        if let Err(e) = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| stmt.execute(params![key, value, at]))
        {
            log::warn!("cache: {e}");
            return;
        }
        if !existed {
            self.counts[table as usize] += 1;
        }
        if self.len(table) > MAX_ENTRIES {
            let evict = format!(
                "DELETE FROM {name} WHERE key IN (SELECT key FROM {name} ORDER BY at_ms LIMIT ?1)"
            );
            match self.conn.execute(&evict, [EVICT_BATCH as i64]) {
                Ok(n) => self.counts[table as usize] -= (n as u64).min(self.len(table)),
                Err(e) => log::warn!("cache: {e}"),
            }
        }
    }
}

/// The cache file and the two SQLite keeps beside it in WAL mode.
fn cache_files(path: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_path_buf(), with("-wal"), with("-shm")]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn scratch(label: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gh-cache-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn answers_survive_a_reopen_with_their_age_and_the_files_are_private() {
        let dir = scratch("reopen");
        let mut cache = Cache::open(&dir.join("state")).unwrap();
        cache.put(
            Table::Identities,
            b"user:alice",
            &LocalResponse::NotFound,
            1_000,
        );
        cache.put_verifier("alice", "$argon2id$x", 2_000);
        assert_eq!(cache.len(Table::Identities), 1);
        drop(cache);
        let cache = Cache::open(&dir.join("state")).unwrap();
        assert_eq!(
            cache.get(Table::Identities, b"user:alice", 4_000),
            Some((LocalResponse::NotFound, 3_000))
        );
        assert_eq!(
            cache.verifier("alice", 2_500),
            Some(("$argon2id$x".into(), 500))
        );
        assert_eq!(cache.get(Table::Decisions, b"user:alice", 0), None);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir.join("state")), 0o700);
        assert_eq!(mode(&dir.join("state").join(CACHE_FILE)), 0o600);
        for entry in std::fs::read_dir(dir.join("state")).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(
                mode(&path) & 0o077,
                0,
                "{} is readable by others",
                path.display()
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_table_drops_its_oldest_rows() {
        let dir = scratch("evict");
        let mut cache = Cache::open(&dir).unwrap();
        cache.counts[Table::Decisions as usize] = MAX_ENTRIES - 1;
        cache.put(Table::Decisions, b"old", &LocalResponse::NotFound, 1);
        cache.put(Table::Decisions, b"new", &LocalResponse::NotFound, 2);
        // Two real rows, the count said MAX + 1: the batch removed both real rows (oldest
        // first) and the count followed.
        assert_eq!(cache.get(Table::Decisions, b"old", 3), None);
        assert_eq!(cache.len(Table::Decisions), MAX_ENTRIES - 1);
        cache.remove(Table::Decisions, b"new");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_forgotten_verifier_stays_forgotten_until_a_newer_login() {
        let dir = scratch("forget");
        let mut cache = Cache::open(&dir).unwrap();
        cache.put_verifier("alice", "$argon2id$v1", 1_000);
        assert_eq!(cache.live_verifiers(), 1);
        // A refusal at 3000; the verifier of a login at 2000 finishes only afterwards.
        cache.forget_verifier("alice", 3_000);
        cache.put_verifier("alice", "$argon2id$v2", 2_000);
        assert_eq!(cache.verifier("alice", 4_000), None);
        assert_eq!(cache.live_verifiers(), 0);
        // A login after the refusal counts again.
        cache.put_verifier("alice", "$argon2id$v3", 5_000);
        assert_eq!(
            cache.verifier("alice", 6_000),
            Some(("$argon2id$v3".into(), 1_000))
        );
        assert_eq!(cache.live_verifiers(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_cache_file_others_can_read_is_refused() {
        let dir = scratch("open-to-others");
        drop(Cache::open(&dir).unwrap());
        let file = dir.join(CACHE_FILE);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = Cache::open(&dir).err().unwrap();
        assert!(refused.contains("chmod 600"), "{refused}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
