//! The store's SQLite schema, its version, and the migrations from older versions.
//!
//! Not pure: runs SQL on the connection it is given. Called once by `Store::open`. An empty
//! file is initialised at [`SCHEMA_VERSION`]; an older version is migrated step by step in one
//! transaction (all steps or none); a newer or unknown version, or an SQLite file that is not a
//! Gatehouse store, is refused with a message saying which — never silently changed.

use super::StoreError;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// The schema this build writes. Version history:
/// - 0: the first development layout, without the replication allow-list (`replicas` table).
/// - 1: adds `replicas`.
/// - 2: adds `hosts.may_ask_for_others` (hosts allowed to ask about other hosts; 0 for all).
/// - 3: adds Unix identities: five nullable columns on `users` (a user without a uid has no
///   identity), `unix_groups` and `unix_group_members`.
/// - 4: adds `lockouts` (the central lockout: users whose password checks are refused until a
///   time; none at first).
/// - 5: adds `password_records` (each user's password set/expiry/warning times and earlier
///   hashes; none at first: every existing password never expires and has no history).
pub const SCHEMA_VERSION: u32 = 5;

/// Tables of version 0. Kept verbatim: it is what migration 0 → 1 starts from, and tests build
/// a version-0 file from it.
pub const SCHEMA_V0: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE host_groups (name TEXT PRIMARY KEY, description TEXT, position INTEGER NOT NULL);
CREATE TABLE hosts (name TEXT PRIMARY KEY, node_key TEXT NOT NULL, position INTEGER NOT NULL);
CREATE TABLE host_addresses (host TEXT NOT NULL, position INTEGER NOT NULL,
    address TEXT NOT NULL, PRIMARY KEY (host, position));
CREATE TABLE host_group_members (host TEXT NOT NULL, position INTEGER NOT NULL,
    grp TEXT NOT NULL, PRIMARY KEY (host, position));
CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL,
    locked INTEGER NOT NULL, position INTEGER NOT NULL);
CREATE TABLE user_classes (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
CREATE TABLE user_class_members (user TEXT NOT NULL, position INTEGER NOT NULL,
    class TEXT NOT NULL, PRIMARY KEY (user, position));
CREATE TABLE routes (owner_kind TEXT NOT NULL, owner TEXT NOT NULL, position INTEGER NOT NULL,
    rule TEXT NOT NULL, time_window TEXT, expires TEXT,
    PRIMARY KEY (owner_kind, owner, position));
CREATE TABLE changelog (seq INTEGER PRIMARY KEY, at_unix_ms INTEGER NOT NULL,
    change TEXT NOT NULL);
";

/// Migration steps: `MIGRATIONS[v]` takes a version-`v` store to version `v + 1`.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE replicas (host TEXT PRIMARY KEY, position INTEGER NOT NULL);",
    "ALTER TABLE hosts ADD COLUMN may_ask_for_others INTEGER NOT NULL DEFAULT 0;",
    "ALTER TABLE users ADD COLUMN uid INTEGER;
     ALTER TABLE users ADD COLUMN gid INTEGER;
     ALTER TABLE users ADD COLUMN gecos TEXT;
     ALTER TABLE users ADD COLUMN home TEXT;
     ALTER TABLE users ADD COLUMN shell TEXT;
     CREATE TABLE unix_groups (name TEXT PRIMARY KEY, gid INTEGER NOT NULL,
         position INTEGER NOT NULL);
     CREATE TABLE unix_group_members (grp TEXT NOT NULL, position INTEGER NOT NULL,
         user TEXT NOT NULL, PRIMARY KEY (grp, position));",
    "CREATE TABLE lockouts (user TEXT PRIMARY KEY, until TEXT NOT NULL,
        position INTEGER NOT NULL);",
    // `history`: the earlier PHC strings joined by newlines (a PHC string has none).
    "CREATE TABLE password_records (user TEXT PRIMARY KEY, set_at TEXT, expires TEXT,
        warn_from TEXT, history TEXT NOT NULL, position INTEGER NOT NULL);",
];

/// Opens the connection's durability settings and brings the schema to [`SCHEMA_VERSION`].
pub(super) fn prepare(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    let sql = |source| StoreError::sqlite(path, source);
    // One master per file: the first write takes an exclusive lock held until close, and a
    // second process fails at once (busy timeout 0) instead of interleaving writes.
    conn.busy_timeout(std::time::Duration::ZERO).map_err(sql)?;
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
        .map_err(sql)?;
    // WAL + FULL: a committed transaction is on disk (fsync'd) before `commit` returns, so an
    // acknowledged change survives a crash or power loss.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sql)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Setup {
            path: path.to_string(),
            message: format!("journal_mode is {mode}, not wal"),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql)?;

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let tables: i64 = tx
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |row| row.get(0),
        )
        .map_err(sql)?;
    if tables == 0 {
        log::info!("{path}: empty database, initialising schema version {SCHEMA_VERSION}");
        tx.execute_batch(SCHEMA_V0).map_err(sql)?;
        for step in MIGRATIONS {
            tx.execute_batch(step).map_err(sql)?;
        }
        set_meta(&tx, "schema_version", &SCHEMA_VERSION.to_string()).map_err(sql)?;
        set_meta(&tx, "sequence", "0").map_err(sql)?;
        return tx.commit().map_err(sql);
    }
    let has_meta: i64 = tx
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |row| row.get(0),
        )
        .map_err(sql)?;
    if has_meta == 0 {
        return Err(StoreError::NotGatehouse {
            path: path.to_string(),
        });
    }
    let text = get_meta(&tx, "schema_version")
        .map_err(sql)?
        .unwrap_or_default();
    let found: u32 = text.trim().parse().map_err(|_| StoreError::SchemaUnknown {
        path: path.to_string(),
        found: text.clone(),
    })?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    for version in found..SCHEMA_VERSION {
        let Some(step) = MIGRATIONS.get(version as usize) else {
            return Err(StoreError::SchemaUnknown {
                path: path.to_string(),
                found: text,
            });
        };
        log::info!("{path}: migrating schema {version} -> {}", version + 1);
        tx.execute_batch(step).map_err(sql)?;
    }
    set_meta(&tx, "schema_version", &SCHEMA_VERSION.to_string()).map_err(sql)?;
    tx.commit().map_err(sql)?;
    log::info!("{path}: migrated from schema {found} to {SCHEMA_VERSION}");
    Ok(())
}

/// The highest `position` of any entity row (0 for an empty store).
pub(super) fn max_position(conn: &Connection) -> rusqlite::Result<u64> {
    let mut max = 0i64;
    for table in [
        "hosts",
        "host_groups",
        "users",
        "user_classes",
        "unix_groups",
        "lockouts",
    ] {
        let sql = format!("SELECT COALESCE(MAX(position), 0) FROM {table}");
        max = max.max(conn.query_row(&sql, [], |row| row.get(0))?);
    }
    Ok(u64::try_from(max).unwrap_or(0))
}

pub(super) fn get_meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
        row.get(0)
    })
    .optional()
}

pub(super) fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
    .map(|_| ())
}
