//! The relational form of the database: reading every state table into a [`Database`], and
//! rewriting the rows of the one entity a change touched.
//!
//! Not pure: SQL on the connection or transaction given. Called by `Store` only. Order matters
//! in the model (a user's routes and classes are tried in order), so every row has a
//! `position`; new entities get the next position, so the stored order is the model's order.

use gatehouse_common::policy::{Change, Database, Host, HostGroup, Route, RouteTarget, User};
use gatehouse_common::policy::{Lockout, PasswordRecord, UnixAccount, UnixGroup, UserClass};
use rusqlite::{params, Connection};
use std::collections::HashMap;

/// What a change touched, so only those rows are rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
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
pub(super) fn write(conn: &Connection, db: &Database, what: &Touched) -> rusqlite::Result<()> {
    match what {
        Touched::Host(name) => write_host(conn, name, db.hosts.iter().find(|h| &h.name == name)),
        Touched::Group(name) => {
            write_group(conn, name, db.host_groups.iter().find(|g| &g.name == name))
        }
        Touched::User(name) => write_user(conn, name, db.users.iter().find(|u| &u.name == name)),
        Touched::Class(name) => {
            write_class(conn, name, db.user_classes.iter().find(|c| &c.name == name))
        }
        Touched::UnixGroup(name) => {
            write_unix_group(conn, name, db.unix_groups.iter().find(|g| &g.name == name))
        }
        Touched::Lockout(user) => {
            write_lockout(conn, user, db.lockouts.iter().find(|l| &l.user == user))
        }
        Touched::Password(name) => {
            write_user(conn, name, db.users.iter().find(|u| &u.name == name))?;
            let record = db.password_records.iter().find(|r| &r.user == name);
            write_password_record(conn, name, record)
        }
        Touched::Replicas => write_replicas(conn, &db.replicas),
        Touched::All => write_all(conn, db),
    }
}

fn write_all(conn: &Connection, db: &Database) -> rusqlite::Result<()> {
    conn.execute_batch(
        "DELETE FROM host_groups; DELETE FROM hosts; DELETE FROM host_addresses;
         DELETE FROM host_group_members; DELETE FROM users; DELETE FROM user_classes;
         DELETE FROM user_class_members; DELETE FROM routes;
         DELETE FROM unix_groups; DELETE FROM unix_group_members; DELETE FROM lockouts;
         DELETE FROM password_records;",
    )?;
    for group in &db.host_groups {
        write_group(conn, &group.name, Some(group))?;
    }
    for host in &db.hosts {
        write_host(conn, &host.name, Some(host))?;
    }
    for class in &db.user_classes {
        write_class(conn, &class.name, Some(class))?;
    }
    for user in &db.users {
        write_user(conn, &user.name, Some(user))?;
    }
    for group in &db.unix_groups {
        write_unix_group(conn, &group.name, Some(group))?;
    }
    for lockout in &db.lockouts {
        write_lockout(conn, &lockout.user, Some(lockout))?;
    }
    for record in &db.password_records {
        write_password_record(conn, &record.user, Some(record))?;
    }
    write_replicas(conn, &db.replicas)
}

/// Rewrites a list of child rows (`table(key_col, position, value_col)`) for one parent.
fn write_list(
    conn: &Connection,
    table: &str,
    key: &str,
    values: &[String],
) -> rusqlite::Result<()> {
    let (key_col, value_col) = match table {
        "host_addresses" => ("host", "address"),
        "host_group_members" => ("host", "grp"),
        "unix_group_members" => ("grp", "user"),
        _ => ("user", "class"),
    };
    conn.execute(&format!("DELETE FROM {table} WHERE {key_col} = ?1"), [key])?;
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO {table} ({key_col}, position, {value_col}) VALUES (?1, ?2, ?3)"
    ))?;
    for (i, value) in values.iter().enumerate() {
        insert.execute(params![key, i as i64, value])?;
    }
    Ok(())
}

fn write_routes(
    conn: &Connection,
    kind: &str,
    owner: &str,
    routes: &[Route],
) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM routes WHERE owner_kind = ?1 AND owner = ?2",
        [kind, owner],
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO routes (owner_kind, owner, position, rule, time_window, expires)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (i, r) in routes.iter().enumerate() {
        insert.execute(params![kind, owner, i as i64, r.rule, r.window, r.expires])?;
    }
    Ok(())
}

fn write_host(conn: &Connection, name: &str, host: Option<&Host>) -> rusqlite::Result<()> {
    let Some(host) = host else {
        conn.execute("DELETE FROM hosts WHERE name = ?1", [name])?;
        write_list(conn, "host_addresses", name, &[])?;
        return write_list(conn, "host_group_members", name, &[]);
    };
    conn.execute(
        "INSERT INTO hosts (name, node_key, may_ask_for_others, position)
         VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(position), -1) + 1 FROM hosts))
         ON CONFLICT (name) DO UPDATE
         SET node_key = excluded.node_key, may_ask_for_others = excluded.may_ask_for_others",
        params![name, host.node_key, host.may_ask_for_others],
    )?;
    write_list(conn, "host_addresses", name, &host.addresses)?;
    write_list(conn, "host_group_members", name, &host.groups)
}

fn write_group(conn: &Connection, name: &str, group: Option<&HostGroup>) -> rusqlite::Result<()> {
    let Some(group) = group else {
        return conn
            .execute("DELETE FROM host_groups WHERE name = ?1", [name])
            .map(|_| ());
    };
    conn.execute(
        "INSERT INTO host_groups (name, description, position)
         VALUES (?1, ?2, (SELECT COALESCE(MAX(position), -1) + 1 FROM host_groups))
         ON CONFLICT (name) DO UPDATE SET description = excluded.description",
        params![name, group.description],
    )
    .map(|_| ())
}

fn write_user(conn: &Connection, name: &str, user: Option<&User>) -> rusqlite::Result<()> {
    let Some(user) = user else {
        conn.execute("DELETE FROM users WHERE name = ?1", [name])?;
        // A removed user's lockout and password record go with it (`Change::RemoveUser`).
        write_lockout(conn, name, None)?;
        write_password_record(conn, name, None)?;
        write_list(conn, "user_class_members", name, &[])?;
        return write_routes(conn, "user", name, &[]);
    };
    let unix = user.unix.as_ref();
    conn.execute(
        "INSERT INTO users (name, password_hash, locked, position, uid, gid, gecos, home, shell)
         VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(position), -1) + 1 FROM users),
                 ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (name) DO UPDATE
         SET password_hash = excluded.password_hash, locked = excluded.locked,
             uid = excluded.uid, gid = excluded.gid, gecos = excluded.gecos,
             home = excluded.home, shell = excluded.shell",
        params![
            name,
            user.password_hash,
            user.locked,
            unix.map(|u| u.uid),
            unix.map(|u| u.gid),
            unix.map(|u| &u.gecos),
            unix.map(|u| &u.home),
            unix.map(|u| &u.shell)
        ],
    )?;
    write_list(conn, "user_class_members", name, &user.classes)?;
    write_routes(conn, "user", name, &user.routes)
}

fn write_class(conn: &Connection, name: &str, class: Option<&UserClass>) -> rusqlite::Result<()> {
    let routes = match class {
        Some(class) => {
            conn.execute(
                "INSERT INTO user_classes (name, position)
                 VALUES (?1, (SELECT COALESCE(MAX(position), -1) + 1 FROM user_classes))
                 ON CONFLICT (name) DO NOTHING",
                [name],
            )?;
            class.routes.as_slice()
        }
        None => {
            conn.execute("DELETE FROM user_classes WHERE name = ?1", [name])?;
            &[]
        }
    };
    write_routes(conn, "class", name, routes)
}

fn write_unix_group(
    conn: &Connection,
    name: &str,
    group: Option<&UnixGroup>,
) -> rusqlite::Result<()> {
    let Some(group) = group else {
        conn.execute("DELETE FROM unix_groups WHERE name = ?1", [name])?;
        return write_list(conn, "unix_group_members", name, &[]);
    };
    conn.execute(
        "INSERT INTO unix_groups (name, gid, position)
         VALUES (?1, ?2, (SELECT COALESCE(MAX(position), -1) + 1 FROM unix_groups))
         ON CONFLICT (name) DO UPDATE SET gid = excluded.gid",
        params![name, group.gid],
    )?;
    write_list(conn, "unix_group_members", name, &group.members)
}

fn write_lockout(conn: &Connection, user: &str, lockout: Option<&Lockout>) -> rusqlite::Result<()> {
    let Some(lockout) = lockout else {
        return conn
            .execute("DELETE FROM lockouts WHERE user = ?1", [user])
            .map(|_| ());
    };
    conn.execute(
        "INSERT INTO lockouts (user, until, position)
         VALUES (?1, ?2, (SELECT COALESCE(MAX(position), -1) + 1 FROM lockouts))
         ON CONFLICT (user) DO UPDATE SET until = excluded.until",
        params![user, lockout.until],
    )
    .map(|_| ())
}

fn write_password_record(
    conn: &Connection,
    user: &str,
    record: Option<&PasswordRecord>,
) -> rusqlite::Result<()> {
    let Some(record) = record else {
        return conn
            .execute("DELETE FROM password_records WHERE user = ?1", [user])
            .map(|_| ());
    };
    conn.execute(
        "INSERT INTO password_records (user, set_at, expires, warn_from, history, position)
         VALUES (?1, ?2, ?3, ?4, ?5,
                 (SELECT COALESCE(MAX(position), -1) + 1 FROM password_records))
         ON CONFLICT (user) DO UPDATE SET set_at = excluded.set_at,
             expires = excluded.expires, warn_from = excluded.warn_from,
             history = excluded.history",
        params![
            user,
            record.set_at,
            record.expires,
            record.warn_from,
            record.history.join("\n")
        ],
    )
    .map(|_| ())
}

fn write_replicas(conn: &Connection, replicas: &[String]) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM replicas", [])?;
    let mut insert =
        conn.prepare_cached("INSERT INTO replicas (host, position) VALUES (?1, ?2)")?;
    for (i, host) in replicas.iter().enumerate() {
        insert.execute(params![host, i as i64])?;
    }
    Ok(())
}

/// Reads `SELECT key, value FROM ... ORDER BY key, position` into key → values in order.
fn read_lists(conn: &Connection, sql: &str) -> rusqlite::Result<HashMap<String, Vec<String>>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
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
    let mut routes: HashMap<(String, String), Vec<Route>> = HashMap::new();
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
