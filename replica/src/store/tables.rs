//! The relational form of the database: reading every state table into a [`Database`],
//! rewriting the rows of the entities a change touched, and writing everything at once (an
//! import, a replica's snapshot).
//!
//! Not pure: SQL on the connection or transaction given. Called by `Store` only. Order matters
//! in the model (a user's routes and classes are tried in order), so every row has a
//! `position`: an entity's comes from the compiled snapshot (`PolicySnapshot::user` and
//! friends), so a row is written without reading any other row, and a write costs the rows it
//! writes. Every statement is prepared once per connection (`prepare_cached`).

use gatehouse_common::policy::NameHasher;
use gatehouse_common::policy::{
    Change, Database, Host, HostGroup, Lockout, PasswordRecord, PolicySnapshot, Route, RouteTarget,
    UnixAccount, UnixGroup, User, UserClass,
};
use rusqlite::{params, Connection};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// Statements a connection keeps prepared: every one this module and the store use (about
/// 40), with room to spare; SQLite's own default of 16 would re-prepare in a loop.
pub(super) const STATEMENT_CACHE: usize = 64;

/// Rows between two progress reports of a bulk write (64 Ki): a report every fraction of a
/// second at the rate SQLite inserts here.
const PROGRESS_EVERY: u64 = 64 * 1024;

/// What a change touched, so only those rows are rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Touched {
    Host(String),
    Group(String),
    User(String),
    Class(String),
    UnixGroup(String),
    /// The lockout of this user.
    Lockout(String),
    /// The user's password and its record (age, history).
    Password(String),
    Replicas,
    All,
}

pub(super) fn touched(change: &Change) -> Touched {
    match change {
        Change::AddHost { name, .. }
        | Change::RemoveHost { name }
        | Change::SetHostGroups { name, .. }
        | Change::SetHostMayAskForOthers { name, .. } => Touched::Host(name.clone()),
        Change::AddGroupMember { host, .. } | Change::RemoveGroupMember { host, .. } => {
            Touched::Host(host.clone())
        }
        Change::AddGroup { name, .. } | Change::RemoveGroup { name } => {
            Touched::Group(name.clone())
        }
        Change::AddUser { name, .. } | Change::RemoveUser { name } => Touched::User(name.clone()),
        Change::SetPasswordHash { user, .. }
        | Change::SetLocked { user, .. }
        | Change::SetUserClasses { user, .. }
        | Change::SetUnixAccount { user, .. } => Touched::User(user.clone()),
        Change::AddUnixGroup { name, .. } | Change::RemoveUnixGroup { name } => {
            Touched::UnixGroup(name.clone())
        }
        Change::AddUnixGroupMember { group, .. } | Change::RemoveUnixGroupMember { group, .. } => {
            Touched::UnixGroup(group.clone())
        }
        Change::AddClass { name } | Change::RemoveClass { name } => Touched::Class(name.clone()),
        Change::AddRoute { target, .. } | Change::RemoveRoute { target, .. } => match target {
            RouteTarget::User(name) => Touched::User(name.clone()),
            RouteTarget::Class(name) => Touched::Class(name.clone()),
        },
        Change::AddReplica { .. } | Change::RemoveReplica { .. } => Touched::Replicas,
        Change::ReplaceAll { .. } => Touched::All,
        Change::SetLockout { user, .. } | Change::ClearLockout { user } => {
            Touched::Lockout(user.clone())
        }
        Change::SetPassword { user, .. } | Change::ExpirePassword { user, .. } => {
            Touched::Password(user.clone())
        }
    }
}

/// Makes the rows of `what` match `db` (the database after the change).
pub(super) fn write(
    conn: &Connection,
    db: &PolicySnapshot,
    what: &Touched,
) -> rusqlite::Result<()> {
    match what {
        Touched::Host(name) => write_host(conn, name, db.host(name).as_ref()),
        Touched::Group(name) => write_group(conn, name, db.host_group(name).as_ref()),
        Touched::User(name) => write_user(conn, name, db.user(name).as_ref()),
        Touched::Class(name) => write_class(conn, name, db.class(name).as_ref()),
        Touched::UnixGroup(name) => write_unix_group(conn, name, db.unix_group(name).as_ref()),
        Touched::Lockout(user) => write_lockout(conn, user, db.lockout(user).as_ref()),
        Touched::Password(name) => {
            write_user(conn, name, db.user(name).as_ref())?;
            write_password_record(conn, name, db.password_record(name).as_ref())
        }
        Touched::Replicas => write_replicas(conn, db.replicas()),
        Touched::All => write_all(conn, db, &mut |_| {}),
    }
}

/// Replaces every state table's rows with `db`'s, reporting rows written now and then.
/// Called inside one transaction, so a bulk write is one commit (one fsync).
pub(super) fn write_all(
    conn: &Connection,
    db: &PolicySnapshot,
    progress: &mut dyn FnMut(u64),
) -> rusqlite::Result<()> {
    conn.execute_batch(
        "DELETE FROM host_groups; DELETE FROM hosts; DELETE FROM host_addresses;
         DELETE FROM host_group_members; DELETE FROM users; DELETE FROM user_classes;
         DELETE FROM user_class_members; DELETE FROM routes;
         DELETE FROM unix_groups; DELETE FROM unix_group_members; DELETE FROM lockouts;
         DELETE FROM password_records;",
    )?;
    let mut rows = 0u64;
    let mut count = |n: u64| {
        let before = rows / PROGRESS_EVERY;
        rows += n;
        if rows / PROGRESS_EVERY != before {
            progress(rows);
        }
    };
    for (position, group) in db.host_groups_in_order() {
        insert_group(conn, position, &group)?;
        count(1);
    }
    for (position, host) in db.hosts_in_order() {
        insert_host(conn, position, &host)?;
        count(1 + (host.addresses.len() + host.groups.len()) as u64);
    }
    for (position, class) in db.classes_in_order() {
        insert_class(conn, position, &class)?;
        count(1 + class.routes.len() as u64);
    }
    for (position, user) in db.users_in_order() {
        insert_user(conn, position, &user)?;
        count(1 + (user.classes.len() + user.routes.len()) as u64);
    }
    for (position, group) in db.unix_groups_in_order() {
        insert_unix_group(conn, position, &group)?;
        count(1 + group.members.len() as u64);
    }
    for (position, lockout) in db.lockouts_in_order() {
        insert_lockout(conn, position, &lockout)?;
        count(1);
    }
    for (position, record) in db.password_records_in_order() {
        insert_password_record(conn, position, &record)?;
        count(1);
    }
    write_replicas(conn, db.replicas())?;
    progress(rows);
    Ok(())
}

/// Rows [`write_all`] writes for `db`.
pub(super) fn row_count(db: &PolicySnapshot) -> u64 {
    db.stored_rows()
}

/// Runs a cached statement once.
fn run(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute(args).map(|_| ())
}

/// The child tables: (table, parent column, value column).
const HOST_ADDRESSES: (&str, &str, &str) = ("host_addresses", "host", "address");
const HOST_GROUPS: (&str, &str, &str) = ("host_group_members", "host", "grp");
const USER_CLASSES: (&str, &str, &str) = ("user_class_members", "user", "class");
const UNIX_MEMBERS: (&str, &str, &str) = ("unix_group_members", "grp", "user");

/// Deletes one parent's rows of a child table.
fn delete_list(conn: &Connection, table: (&str, &str, &str), key: &str) -> rusqlite::Result<()> {
    let (table, key_col, _) = table;
    run(
        conn,
        &format!("DELETE FROM {table} WHERE {key_col} = ?1"),
        [key],
    )
}

/// Inserts one parent's list into a child table (`table(key_col, position, value_col)`).
fn insert_list(
    conn: &Connection,
    table: (&str, &str, &str),
    key: &str,
    values: &[String],
) -> rusqlite::Result<()> {
    let (table, key_col, value_col) = table;
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO {table} ({key_col}, position, {value_col}) VALUES (?1, ?2, ?3)"
    ))?;
    for (i, value) in values.iter().enumerate() {
        insert.execute(params![key, i as i64, value])?;
    }
    Ok(())
}

fn insert_routes(
    conn: &Connection,
    kind: &str,
    owner: &str,
    routes: &[Route],
) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO routes (owner_kind, owner, position, rule, time_window, expires)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (i, r) in routes.iter().enumerate() {
        insert.execute(params![kind, owner, i as i64, r.rule, r.window, r.expires])?;
    }
    Ok(())
}

fn rewrite_routes(
    conn: &Connection,
    kind: &str,
    owner: &str,
    routes: &[Route],
) -> rusqlite::Result<()> {
    run(
        conn,
        "DELETE FROM routes WHERE owner_kind = ?1 AND owner = ?2",
        [kind, owner],
    )?;
    insert_routes(conn, kind, owner, routes)
}

const UPSERT_HOST: &str = "INSERT INTO hosts (name, node_key, may_ask_for_others, position)
     VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (name) DO UPDATE
     SET node_key = excluded.node_key, may_ask_for_others = excluded.may_ask_for_others";

fn insert_host(conn: &Connection, position: u64, host: &Host) -> rusqlite::Result<()> {
    let args = params![
        host.name,
        host.node_key,
        host.may_ask_for_others,
        position as i64
    ];
    run(conn, UPSERT_HOST, args)?;
    insert_list(conn, HOST_ADDRESSES, &host.name, &host.addresses)?;
    insert_list(conn, HOST_GROUPS, &host.name, &host.groups)
}

fn write_host(conn: &Connection, name: &str, host: Option<&(u64, Host)>) -> rusqlite::Result<()> {
    delete_list(conn, HOST_ADDRESSES, name)?;
    delete_list(conn, HOST_GROUPS, name)?;
    match host {
        None => run(conn, "DELETE FROM hosts WHERE name = ?1", [name]),
        Some((position, host)) => insert_host(conn, *position, host),
    }
}

const UPSERT_GROUP: &str = "INSERT INTO host_groups (name, description, position)
     VALUES (?1, ?2, ?3)
     ON CONFLICT (name) DO UPDATE SET description = excluded.description";

fn insert_group(conn: &Connection, position: u64, group: &HostGroup) -> rusqlite::Result<()> {
    run(
        conn,
        UPSERT_GROUP,
        params![group.name, group.description, position as i64],
    )
}

fn write_group(
    conn: &Connection,
    name: &str,
    group: Option<&(u64, HostGroup)>,
) -> rusqlite::Result<()> {
    match group {
        None => run(conn, "DELETE FROM host_groups WHERE name = ?1", [name]),
        Some((position, group)) => insert_group(conn, *position, group),
    }
}

const UPSERT_USER: &str =
    "INSERT INTO users (name, password_hash, locked, position, uid, gid, gecos, home, shell)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
     ON CONFLICT (name) DO UPDATE
     SET password_hash = excluded.password_hash, locked = excluded.locked,
         uid = excluded.uid, gid = excluded.gid, gecos = excluded.gecos,
         home = excluded.home, shell = excluded.shell";

fn insert_user(conn: &Connection, position: u64, user: &User) -> rusqlite::Result<()> {
    let unix = user.unix.as_ref();
    let args = params![
        user.name,
        user.password_hash,
        user.locked,
        position as i64,
        unix.map(|u| u.uid),
        unix.map(|u| u.gid),
        unix.map(|u| &u.gecos),
        unix.map(|u| &u.home),
        unix.map(|u| &u.shell)
    ];
    run(conn, UPSERT_USER, args)?;
    insert_list(conn, USER_CLASSES, &user.name, &user.classes)?;
    insert_routes(conn, "user", &user.name, &user.routes)
}

fn write_user(conn: &Connection, name: &str, user: Option<&(u64, User)>) -> rusqlite::Result<()> {
    delete_list(conn, USER_CLASSES, name)?;
    rewrite_routes(conn, "user", name, &[])?;
    match user {
        None => {
            run(conn, "DELETE FROM users WHERE name = ?1", [name])?;
            // A removed user's lockout and password record go with it (`Change::RemoveUser`).
            write_lockout(conn, name, None)?;
            write_password_record(conn, name, None)
        }
        Some((position, user)) => insert_user(conn, *position, user),
    }
}

const UPSERT_CLASS: &str = "INSERT INTO user_classes (name, position) VALUES (?1, ?2)
     ON CONFLICT (name) DO NOTHING";

fn insert_class(conn: &Connection, position: u64, class: &UserClass) -> rusqlite::Result<()> {
    run(conn, UPSERT_CLASS, params![class.name, position as i64])?;
    insert_routes(conn, "class", &class.name, &class.routes)
}

fn write_class(
    conn: &Connection,
    name: &str,
    class: Option<&(u64, UserClass)>,
) -> rusqlite::Result<()> {
    rewrite_routes(conn, "class", name, &[])?;
    match class {
        None => run(conn, "DELETE FROM user_classes WHERE name = ?1", [name]),
        Some((position, class)) => insert_class(conn, *position, class),
    }
}

const UPSERT_UNIX_GROUP: &str = "INSERT INTO unix_groups (name, gid, position) VALUES (?1, ?2, ?3)
     ON CONFLICT (name) DO UPDATE SET gid = excluded.gid";

fn insert_unix_group(conn: &Connection, position: u64, group: &UnixGroup) -> rusqlite::Result<()> {
    run(
        conn,
        UPSERT_UNIX_GROUP,
        params![group.name, group.gid, position as i64],
    )?;
    insert_list(conn, UNIX_MEMBERS, &group.name, &group.members)
}

fn write_unix_group(
    conn: &Connection,
    name: &str,
    group: Option<&(u64, UnixGroup)>,
) -> rusqlite::Result<()> {
    delete_list(conn, UNIX_MEMBERS, name)?;
    match group {
        None => run(conn, "DELETE FROM unix_groups WHERE name = ?1", [name]),
        Some((position, group)) => insert_unix_group(conn, *position, group),
    }
}

const UPSERT_LOCKOUT: &str = "INSERT INTO lockouts (user, until, position) VALUES (?1, ?2, ?3)
     ON CONFLICT (user) DO UPDATE SET until = excluded.until";

fn insert_lockout(conn: &Connection, position: u64, lockout: &Lockout) -> rusqlite::Result<()> {
    run(
        conn,
        UPSERT_LOCKOUT,
        params![lockout.user, lockout.until, position as i64],
    )
}

fn write_lockout(
    conn: &Connection,
    user: &str,
    lockout: Option<&(u64, Lockout)>,
) -> rusqlite::Result<()> {
    match lockout {
        None => run(conn, "DELETE FROM lockouts WHERE user = ?1", [user]),
        Some((position, lockout)) => insert_lockout(conn, *position, lockout),
    }
}

const UPSERT_PASSWORD_RECORD: &str =
    "INSERT INTO password_records (user, set_at, expires, warn_from, history, position)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (user) DO UPDATE SET set_at = excluded.set_at,
         expires = excluded.expires, warn_from = excluded.warn_from,
         history = excluded.history";

fn insert_password_record(
    conn: &Connection,
    position: u64,
    record: &PasswordRecord,
) -> rusqlite::Result<()> {
    let args = params![
        record.user,
        record.set_at,
        record.expires,
        record.warn_from,
        record.history.join("\n"),
        position as i64
    ];
    run(conn, UPSERT_PASSWORD_RECORD, args)
}

fn write_password_record(
    conn: &Connection,
    user: &str,
    record: Option<&(u64, PasswordRecord)>,
) -> rusqlite::Result<()> {
    match record {
        None => run(conn, "DELETE FROM password_records WHERE user = ?1", [user]),
        Some((position, record)) => insert_password_record(conn, *position, record),
    }
}

fn write_replicas<'a>(
    conn: &Connection,
    replicas: impl Iterator<Item = &'a str>,
) -> rusqlite::Result<()> {
    run(conn, "DELETE FROM replicas", [])?;
    let mut insert =
        conn.prepare_cached("INSERT INTO replicas (host, position) VALUES (?1, ?2)")?;
    for (i, host) in replicas.enumerate() {
        insert.execute(params![host, i as i64])?;
    }
    Ok(())
}

/// Parent name → its list, hashed like the policy's name maps (FNV: the names are the
/// database's own, read at start-up, where SipHash was a visible part of the time).
type Lists = HashMap<String, Vec<String>, BuildHasherDefault<NameHasher>>;

/// Reads `SELECT key, value FROM ... ORDER BY key, position` into key → values in order.
fn read_lists(conn: &Connection, sql: &str) -> rusqlite::Result<Lists> {
    let mut map = Lists::default();
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        map.entry(row.get(0)?).or_default().push(row.get(1)?);
    }
    Ok(map)
}

/// Reads the whole database from the state tables.
pub(super) fn read_all(conn: &Connection) -> rusqlite::Result<Database> {
    let mut addresses = read_lists(
        conn,
        "SELECT host, address FROM host_addresses ORDER BY host, position",
    )?;
    let mut memberships = read_lists(
        conn,
        "SELECT host, grp FROM host_group_members ORDER BY host, position",
    )?;
    let mut class_members = read_lists(
        conn,
        "SELECT user, class FROM user_class_members ORDER BY user, position",
    )?;
    let mut routes: HashMap<(String, String), Vec<Route>, BuildHasherDefault<NameHasher>> =
        HashMap::default();
    {
        let mut stmt = conn.prepare(
            "SELECT owner_kind, owner, rule, time_window, expires FROM routes
             ORDER BY owner_kind, owner, position",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            routes
                .entry((row.get(0)?, row.get(1)?))
                .or_default()
                .push(Route {
                    rule: row.get(2)?,
                    window: row.get(3)?,
                    expires: row.get(4)?,
                });
        }
    }
    let mut take_routes =
        |kind: &str, name: &str| routes.remove(&(kind.to_string(), name.to_string()));

    let host_groups = conn
        .prepare("SELECT name, description FROM host_groups ORDER BY position")?
        .query_map([], |row| {
            Ok(HostGroup {
                name: row.get(0)?,
                description: row.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let hosts = conn
        .prepare("SELECT name, node_key, may_ask_for_others FROM hosts ORDER BY position")?
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?))
        })?
        .map(|r| {
            r.map(|(name, node_key, may_ask_for_others)| Host {
                addresses: addresses.remove(&name).unwrap_or_default(),
                groups: memberships.remove(&name).unwrap_or_default(),
                name,
                node_key,
                may_ask_for_others,
            })
        })
        .collect::<rusqlite::Result<_>>()?;
    let classes: Vec<String> = conn
        .prepare("SELECT name FROM user_classes ORDER BY position")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let user_classes = classes
        .into_iter()
        .map(|name| UserClass {
            routes: take_routes("class", &name).unwrap_or_default(),
            name,
        })
        .collect();
    let users: Vec<(String, String, bool, Option<UnixAccount>)> = conn
        .prepare(
            "SELECT name, password_hash, locked, uid, gid, gecos, home, shell FROM users
             ORDER BY position",
        )?
        .query_map([], |row| {
            let unix = match row.get::<_, Option<u32>>(3)? {
                None => None,
                Some(uid) => Some(UnixAccount {
                    uid,
                    gid: row.get(4)?,
                    gecos: row.get(5)?,
                    home: row.get(6)?,
                    shell: row.get(7)?,
                }),
            };
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, unix))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let users = users
        .into_iter()
        .map(|(name, password_hash, locked, unix)| User {
            classes: class_members.remove(&name).unwrap_or_default(),
            routes: take_routes("user", &name).unwrap_or_default(),
            name,
            password_hash,
            locked,
            unix,
        })
        .collect();
    let mut unix_members = read_lists(
        conn,
        "SELECT grp, user FROM unix_group_members ORDER BY grp, position",
    )?;
    let unix_groups = conn
        .prepare("SELECT name, gid FROM unix_groups ORDER BY position")?
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))?
        .map(|r| {
            r.map(|(name, gid)| UnixGroup {
                members: unix_members.remove(&name).unwrap_or_default(),
                name,
                gid,
            })
        })
        .collect::<rusqlite::Result<_>>()?;
    let replicas = conn
        .prepare("SELECT host FROM replicas ORDER BY position")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let lockouts = conn
        .prepare("SELECT user, until FROM lockouts ORDER BY position")?
        .query_map([], |row| {
            Ok(Lockout {
                user: row.get(0)?,
                until: row.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let password_records = conn
        .prepare(
            "SELECT user, set_at, expires, warn_from, history FROM password_records
             ORDER BY position",
        )?
        .query_map([], |row| {
            let history: String = row.get(4)?;
            Ok(PasswordRecord {
                user: row.get(0)?,
                set_at: row.get(1)?,
                expires: row.get(2)?,
                warn_from: row.get(3)?,
                history: history
                    .split('\n')
                    .filter(|h| !h.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Database {
        hosts,
        host_groups,
        users,
        user_classes,
        replicas,
        unix_groups,
        lockouts,
        password_records,
    })
}
