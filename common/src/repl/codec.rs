//! The binary encoding of the security database and of its changes on a replication link
//! (docs/PROTOCOL.md, "Replication encoding"). Pure; never panics on any input.
//!
//! Grammar (all integers big-endian):
//!
//! ```text
//! text      = len:u32 [len] UTF-8          bool = 0x00 | 0x01
//! opt<T>    = 0x00 | 0x01 T                list<T> = count:u32 T × count
//! database  = list<host> list<group> list<user> list<class> replicas:list<text>
//!             list<unix_group>
//!             lockouts:list<lockout>
//!             password_records:list<password_record>
//! host      = name:text addresses:list<text> node_key:text groups:list<text>
//!             may_ask_for_others:bool
//! group     = name:text description:opt<text>
//! user      = name:text password_hash:text locked:bool classes:list<text> routes:list<route>
//!             unix:opt<account>
//! account   = uid:u32 gid:u32 gecos:text home:text shell:text
//! unix_group = name:text gid:u32 members:list<text>
//! class     = name:text routes:list<route>
//! route     = rule:text window:opt<text> expires:opt<text>
//! lockout   = user:text until:text
//! password_record = user:text set_at:opt<text> expires:opt<text> warn_from:opt<text>
//!             history:list<text>
//! target    = 0x01 user:text | 0x02 class:text
//! change    = kind:u8 fields (table in docs/PROTOCOL.md)
//! ```
//!
//! Lengths and counts are checked against the bytes that remain before anything is allocated,
//! so a lying prefix costs nothing; the message (or snapshot) cap bounds the whole. Encoding is
//! canonical: one value, one byte string. Every struct is destructured exhaustively, so a field
//! added to the model does not compile until it has an encoding here (and in PROTOCOL.md).

use crate::policy::model::{
    Database, Host, HostGroup, Lockout, PasswordRecord, Route, UnixAccount, UnixGroup, User,
    UserClass,
};
use crate::policy::{Change, RouteTarget};
use crate::wire::reader::{DecodeError, Reader};
use crate::wire::writer::EncodeError;

/// Change kinds (the `kind` byte), in the order of [`Change`]'s variants.
pub mod kind {
    pub const ADD_HOST: u8 = 1;
    pub const REMOVE_HOST: u8 = 2;
    pub const SET_HOST_GROUPS: u8 = 3;
    pub const ADD_GROUP_MEMBER: u8 = 4;
    pub const REMOVE_GROUP_MEMBER: u8 = 5;
    pub const ADD_GROUP: u8 = 6;
    pub const REMOVE_GROUP: u8 = 7;
    pub const ADD_USER: u8 = 8;
    pub const REMOVE_USER: u8 = 9;
    pub const SET_PASSWORD_HASH: u8 = 10;
    pub const SET_LOCKED: u8 = 11;
    pub const SET_USER_CLASSES: u8 = 12;
    pub const ADD_CLASS: u8 = 13;
    pub const REMOVE_CLASS: u8 = 14;
    pub const ADD_ROUTE: u8 = 15;
    pub const REMOVE_ROUTE: u8 = 16;
    pub const ADD_REPLICA: u8 = 17;
    pub const REMOVE_REPLICA: u8 = 18;
    pub const REPLACE_ALL: u8 = 19;
    pub const SET_UNIX_ACCOUNT: u8 = 20;
    pub const ADD_UNIX_GROUP: u8 = 21;
    pub const REMOVE_UNIX_GROUP: u8 = 22;
    pub const ADD_UNIX_GROUP_MEMBER: u8 = 23;
    pub const REMOVE_UNIX_GROUP_MEMBER: u8 = 24;
    pub const SET_HOST_MAY_ASK_FOR_OTHERS: u8 = 25;
    pub const SET_LOCKOUT: u8 = 26;
    pub const CLEAR_LOCKOUT: u8 = 27;
    pub const SET_PASSWORD: u8 = 28;
    pub const EXPIRE_PASSWORD: u8 = 29;
}

const TARGET_USER: u8 = 1;
const TARGET_CLASS: u8 = 2;

// ---- writing -------------------------------------------------------------------------------

/// A u32 length (or count) prefix; refuses what a u32 cannot express.
pub(crate) fn put_len(
    out: &mut Vec<u8>,
    field: &'static str,
    len: usize,
) -> Result<(), EncodeError> {
    let len32 = u32::try_from(len).map_err(|_| EncodeError::TooLong {
        field,
        len,
        max: u32::MAX as usize,
    })?;
    out.extend_from_slice(&len32.to_be_bytes());
    Ok(())
}

pub(crate) fn put_bytes(
    out: &mut Vec<u8>,
    field: &'static str,
    bytes: &[u8],
) -> Result<(), EncodeError> {
    put_len(out, field, bytes.len())?;
    out.extend_from_slice(bytes);
    Ok(())
}

pub(crate) fn put_text(out: &mut Vec<u8>, field: &'static str, s: &str) -> Result<(), EncodeError> {
    put_bytes(out, field, s.as_bytes())
}

fn put_bool(out: &mut Vec<u8>, b: bool) {
    out.push(u8::from(b));
}

fn put_opt(out: &mut Vec<u8>, field: &'static str, s: &Option<String>) -> Result<(), EncodeError> {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_text(out, field, s)?;
        }
    }
    Ok(())
}

fn put_list<T>(
    out: &mut Vec<u8>,
    field: &'static str,
    items: &[T],
    mut put: impl FnMut(&mut Vec<u8>, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    put_len(out, field, items.len())?;
    items.iter().try_for_each(|item| put(out, item))
}

fn put_texts(out: &mut Vec<u8>, field: &'static str, items: &[String]) -> Result<(), EncodeError> {
    put_list(out, field, items, |o, s| put_text(o, field, s))
}

fn put_route(out: &mut Vec<u8>, route: &Route) -> Result<(), EncodeError> {
    let Route {
        rule,
        window,
        expires,
    } = route;
    put_text(out, "rule", rule)?;
    put_opt(out, "window", window)?;
    put_opt(out, "expires", expires)
}

fn put_account(out: &mut Vec<u8>, account: &Option<UnixAccount>) -> Result<(), EncodeError> {
    let Some(UnixAccount {
        uid,
        gid,
        gecos,
        home,
        shell,
    }) = account
    else {
        out.push(0);
        return Ok(());
    };
    out.push(1);
    out.extend_from_slice(&uid.to_be_bytes());
    out.extend_from_slice(&gid.to_be_bytes());
    put_text(out, "gecos", gecos)?;
    put_text(out, "home", home)?;
    put_text(out, "shell", shell)
}

fn put_routes(out: &mut Vec<u8>, routes: &[Route]) -> Result<(), EncodeError> {
    put_list(out, "routes", routes, put_route)
}

fn put_target(out: &mut Vec<u8>, target: &RouteTarget) -> Result<(), EncodeError> {
    let (code, name) = match target {
        RouteTarget::User(name) => (TARGET_USER, name),
        RouteTarget::Class(name) => (TARGET_CLASS, name),
    };
    out.push(code);
    put_text(out, "target", name)
}

/// Appends the encoding of `db`.
pub fn put_database(out: &mut Vec<u8>, db: &Database) -> Result<(), EncodeError> {
    let Database {
        hosts,
        host_groups,
        users,
        user_classes,
        replicas,
        unix_groups,
        lockouts,
        password_records,
    } = db;
    put_list(out, "hosts", hosts, |o, h| {
        let Host {
            name,
            addresses,
            node_key,
            groups,
            may_ask_for_others,
        } = h;
        put_text(o, "host", name)?;
        put_texts(o, "addresses", addresses)?;
        put_text(o, "node_key", node_key)?;
        put_texts(o, "groups", groups)?;
        put_bool(o, *may_ask_for_others);
        Ok(())
    })?;
    put_list(out, "host_groups", host_groups, |o, g| {
        let HostGroup { name, description } = g;
        put_text(o, "group", name)?;
        put_opt(o, "description", description)
    })?;
    put_list(out, "users", users, |o, u| {
        let User {
            name,
            password_hash,
            locked,
            classes,
            routes,
            unix,
        } = u;
        put_text(o, "user", name)?;
        put_text(o, "password_hash", password_hash)?;
        put_bool(o, *locked);
        put_texts(o, "classes", classes)?;
        put_routes(o, routes)?;
        put_account(o, unix)
    })?;
    put_list(out, "user_classes", user_classes, |o, c| {
        let UserClass { name, routes } = c;
        put_text(o, "class", name)?;
        put_routes(o, routes)
    })?;
    put_texts(out, "replicas", replicas)?;
    put_list(out, "unix_groups", unix_groups, |o, g| {
        let UnixGroup { name, gid, members } = g;
        put_text(o, "unix_group", name)?;
        o.extend_from_slice(&gid.to_be_bytes());
        put_texts(o, "members", members)
    })?;
    put_list(out, "lockouts", lockouts, |o, l| {
        let Lockout { user, until } = l;
        put_text(o, "user", user)?;
        put_text(o, "until", until)
    })?;
    put_list(out, "password_records", password_records, |o, p| {
        let PasswordRecord {
            user,
            set_at,
            expires,
            warn_from,
            history,
        } = p;
        put_text(o, "user", user)?;
        put_opt(o, "set_at", set_at)?;
        put_opt(o, "expires", expires)?;
        put_opt(o, "warn_from", warn_from)?;
        put_texts(o, "history", history)
    })
}

/// Appends the encoding of `change`.
pub fn put_change(out: &mut Vec<u8>, change: &Change) -> Result<(), EncodeError> {
    use kind::*;
    match change {
        Change::AddHost {
            name,
            node_key,
            addresses,
            groups,
        } => {
            out.push(ADD_HOST);
            put_text(out, "host", name)?;
            put_text(out, "node_key", node_key)?;
            put_texts(out, "addresses", addresses)?;
            put_texts(out, "groups", groups)?;
        }
        Change::RemoveHost { name } => name_change(out, REMOVE_HOST, name)?,
        Change::SetHostGroups { name, groups } => {
            name_change(out, SET_HOST_GROUPS, name)?;
            put_texts(out, "groups", groups)?;
        }
        Change::SetHostMayAskForOthers { name, allowed } => {
            name_change(out, SET_HOST_MAY_ASK_FOR_OTHERS, name)?;
            put_bool(out, *allowed);
        }
        Change::AddGroupMember { group, host } => pair_change(out, ADD_GROUP_MEMBER, group, host)?,
        Change::RemoveGroupMember { group, host } => {
            pair_change(out, REMOVE_GROUP_MEMBER, group, host)?
        }
        Change::AddGroup { name, description } => {
            name_change(out, ADD_GROUP, name)?;
            put_opt(out, "description", description)?;
        }
        Change::RemoveGroup { name } => name_change(out, REMOVE_GROUP, name)?,
        Change::AddUser { name, classes } => {
            name_change(out, ADD_USER, name)?;
            put_texts(out, "classes", classes)?;
        }
        Change::RemoveUser { name } => name_change(out, REMOVE_USER, name)?,
        Change::SetPasswordHash { user, hash } => pair_change(out, SET_PASSWORD_HASH, user, hash)?,
        Change::SetLocked { user, locked } => {
            name_change(out, SET_LOCKED, user)?;
            put_bool(out, *locked);
        }
        Change::SetUserClasses { user, classes } => {
            name_change(out, SET_USER_CLASSES, user)?;
            put_texts(out, "classes", classes)?;
        }
        Change::AddClass { name } => name_change(out, ADD_CLASS, name)?,
        Change::RemoveClass { name } => name_change(out, REMOVE_CLASS, name)?,
        Change::AddRoute { target, route } => {
            out.push(ADD_ROUTE);
            put_target(out, target)?;
            put_route(out, route)?;
        }
        Change::RemoveRoute { target, rule } => {
            out.push(REMOVE_ROUTE);
            put_target(out, target)?;
            put_text(out, "rule", rule)?;
        }
        Change::AddReplica { host } => name_change(out, ADD_REPLICA, host)?,
        Change::RemoveReplica { host } => name_change(out, REMOVE_REPLICA, host)?,
        Change::ReplaceAll { database } => {
            out.push(REPLACE_ALL);
            put_database(out, database)?;
        }
        Change::SetUnixAccount { user, account } => {
            name_change(out, SET_UNIX_ACCOUNT, user)?;
            put_account(out, account)?;
        }
        Change::AddUnixGroup { name, gid } => {
            name_change(out, ADD_UNIX_GROUP, name)?;
            out.extend_from_slice(&gid.to_be_bytes());
        }
        Change::RemoveUnixGroup { name } => name_change(out, REMOVE_UNIX_GROUP, name)?,
        Change::AddUnixGroupMember { group, user } => {
            pair_change(out, ADD_UNIX_GROUP_MEMBER, group, user)?
        }
        Change::RemoveUnixGroupMember { group, user } => {
            pair_change(out, REMOVE_UNIX_GROUP_MEMBER, group, user)?
        }
        Change::SetLockout { user, until } => pair_change(out, SET_LOCKOUT, user, until)?,
        Change::ClearLockout { user } => name_change(out, CLEAR_LOCKOUT, user)?,
        Change::SetPassword {
            user,
            hash,
            set_at,
            expires,
            warn_from,
            history,
        } => {
            pair_change(out, SET_PASSWORD, user, hash)?;
            put_text(out, "set_at", set_at)?;
            put_opt(out, "expires", expires)?;
            put_opt(out, "warn_from", warn_from)?;
            out.push(*history);
        }
        Change::ExpirePassword { user, at } => pair_change(out, EXPIRE_PASSWORD, user, at)?,
    }
    Ok(())
}

fn name_change(out: &mut Vec<u8>, kind: u8, name: &str) -> Result<(), EncodeError> {
    out.push(kind);
    put_text(out, "name", name)
}

fn pair_change(out: &mut Vec<u8>, kind: u8, a: &str, b: &str) -> Result<(), EncodeError> {
    name_change(out, kind, a)?;
    put_text(out, "name", b)
}

// ---- reading -------------------------------------------------------------------------------

/// A u32 length or count, refused when it announces more than the bytes that remain (each
/// item is at least `min_item` bytes), so nothing is allocated for a lie.
pub(crate) fn read_len(r: &mut Reader<'_>, min_item: usize) -> Result<usize, DecodeError> {
    let len = r.u32()? as usize;
    if len.saturating_mul(min_item) > r.remaining() {
        return Err(DecodeError::Truncated);
    }
    Ok(len)
}

pub(crate) fn read_bytes<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    let len = read_len(r, 1)?;
    r.bytes(len)
}

pub(crate) fn read_text(r: &mut Reader<'_>, field: &'static str) -> Result<String, DecodeError> {
    let raw = read_bytes(r)?;
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| DecodeError::Invalid {
            field,
            why: "not valid UTF-8",
        })
}

pub(crate) fn read_bool(r: &mut Reader<'_>, field: &'static str) -> Result<bool, DecodeError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Invalid {
            field,
            why: "a bool is 0 or 1",
        }),
    }
}

fn read_opt(r: &mut Reader<'_>, field: &'static str) -> Result<Option<String>, DecodeError> {
    match read_bool(r, field)? {
        false => Ok(None),
        true => read_text(r, field).map(Some),
    }
}

/// A list whose items are each at least `min_item` bytes long.
fn read_list<T>(
    r: &mut Reader<'_>,
    min_item: usize,
    mut read: impl FnMut(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let count = read_len(r, min_item)?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(read(r)?);
    }
    Ok(items)
}

fn read_texts(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<String>, DecodeError> {
    read_list(r, 4, |r| read_text(r, field))
}

fn read_route(r: &mut Reader<'_>) -> Result<Route, DecodeError> {
    Ok(Route {
        rule: read_text(r, "rule")?,
        window: read_opt(r, "window")?,
        expires: read_opt(r, "expires")?,
    })
}

fn read_account(r: &mut Reader<'_>) -> Result<Option<UnixAccount>, DecodeError> {
    if !read_bool(r, "unix")? {
        return Ok(None);
    }
    Ok(Some(UnixAccount {
        uid: r.u32()?,
        gid: r.u32()?,
        gecos: read_text(r, "gecos")?,
        home: read_text(r, "home")?,
        shell: read_text(r, "shell")?,
    }))
}

fn read_routes(r: &mut Reader<'_>) -> Result<Vec<Route>, DecodeError> {
    read_list(r, 6, read_route)
}

fn read_target(r: &mut Reader<'_>) -> Result<RouteTarget, DecodeError> {
    match r.u8()? {
        TARGET_USER => read_text(r, "target").map(RouteTarget::User),
        TARGET_CLASS => read_text(r, "target").map(RouteTarget::Class),
        code => Err(DecodeError::UnknownCode {
            field: "route target",
            code: code.into(),
        }),
    }
}

/// Reads one database.
pub fn read_database(r: &mut Reader<'_>) -> Result<Database, DecodeError> {
    let hosts = read_list(r, 17, |r| {
        Ok(Host {
            name: read_text(r, "host")?,
            addresses: read_texts(r, "addresses")?,
            node_key: read_text(r, "node_key")?,
            groups: read_texts(r, "groups")?,
            may_ask_for_others: read_bool(r, "may_ask_for_others")?,
        })
    })?;
    let host_groups = read_list(r, 5, |r| {
        Ok(HostGroup {
            name: read_text(r, "group")?,
            description: read_opt(r, "description")?,
        })
    })?;
    let users = read_list(r, 18, |r| {
        Ok(User {
            name: read_text(r, "user")?,
            password_hash: read_text(r, "password_hash")?,
            locked: read_bool(r, "locked")?,
            classes: read_texts(r, "classes")?,
            routes: read_routes(r)?,
            unix: read_account(r)?,
        })
    })?;
    let user_classes = read_list(r, 8, |r| {
        Ok(UserClass {
            name: read_text(r, "class")?,
            routes: read_routes(r)?,
        })
    })?;
    let replicas = read_texts(r, "replicas")?;
    let unix_groups = read_list(r, 12, |r| {
        Ok(UnixGroup {
            name: read_text(r, "unix_group")?,
            gid: r.u32()?,
            members: read_texts(r, "members")?,
        })
    })?;
    let lockouts = read_list(r, 8, |r| {
        Ok(Lockout {
            user: read_text(r, "user")?,
            until: read_text(r, "until")?,
        })
    })?;
    let password_records = read_list(r, 11, |r| {
        Ok(PasswordRecord {
            user: read_text(r, "user")?,
            set_at: read_opt(r, "set_at")?,
            expires: read_opt(r, "expires")?,
            warn_from: read_opt(r, "warn_from")?,
            history: read_texts(r, "history")?,
        })
    })?;
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

/// Reads one change.
pub fn read_change(r: &mut Reader<'_>) -> Result<Change, DecodeError> {
    use kind::*;
    let text = |r: &mut Reader<'_>| read_text(r, "name");
    Ok(match r.u8()? {
        ADD_HOST => Change::AddHost {
            name: text(r)?,
            node_key: read_text(r, "node_key")?,
            addresses: read_texts(r, "addresses")?,
            groups: read_texts(r, "groups")?,
        },
        REMOVE_HOST => Change::RemoveHost { name: text(r)? },
        SET_HOST_GROUPS => Change::SetHostGroups {
            name: text(r)?,
            groups: read_texts(r, "groups")?,
        },
        ADD_GROUP_MEMBER => Change::AddGroupMember {
            group: text(r)?,
            host: text(r)?,
        },
        REMOVE_GROUP_MEMBER => Change::RemoveGroupMember {
            group: text(r)?,
            host: text(r)?,
        },
        ADD_GROUP => Change::AddGroup {
            name: text(r)?,
            description: read_opt(r, "description")?,
        },
        REMOVE_GROUP => Change::RemoveGroup { name: text(r)? },
        ADD_USER => Change::AddUser {
            name: text(r)?,
            classes: read_texts(r, "classes")?,
        },
        REMOVE_USER => Change::RemoveUser { name: text(r)? },
        SET_PASSWORD_HASH => Change::SetPasswordHash {
            user: text(r)?,
            hash: text(r)?,
        },
        SET_HOST_MAY_ASK_FOR_OTHERS => Change::SetHostMayAskForOthers {
            name: text(r)?,
            allowed: read_bool(r, "allowed")?,
        },
        SET_LOCKED => Change::SetLocked {
            user: text(r)?,
            locked: read_bool(r, "locked")?,
        },
        SET_USER_CLASSES => Change::SetUserClasses {
            user: text(r)?,
            classes: read_texts(r, "classes")?,
        },
        ADD_CLASS => Change::AddClass { name: text(r)? },
        REMOVE_CLASS => Change::RemoveClass { name: text(r)? },
        ADD_ROUTE => Change::AddRoute {
            target: read_target(r)?,
            route: read_route(r)?,
        },
        REMOVE_ROUTE => Change::RemoveRoute {
            target: read_target(r)?,
            rule: read_text(r, "rule")?,
        },
        ADD_REPLICA => Change::AddReplica { host: text(r)? },
        REMOVE_REPLICA => Change::RemoveReplica { host: text(r)? },
        REPLACE_ALL => Change::ReplaceAll {
            database: read_database(r)?,
        },
        SET_UNIX_ACCOUNT => Change::SetUnixAccount {
            user: text(r)?,
            account: read_account(r)?,
        },
        ADD_UNIX_GROUP => Change::AddUnixGroup {
            name: text(r)?,
            gid: r.u32()?,
        },
        REMOVE_UNIX_GROUP => Change::RemoveUnixGroup { name: text(r)? },
        ADD_UNIX_GROUP_MEMBER => Change::AddUnixGroupMember {
            group: text(r)?,
            user: text(r)?,
        },
        REMOVE_UNIX_GROUP_MEMBER => Change::RemoveUnixGroupMember {
            group: text(r)?,
            user: text(r)?,
        },
        SET_LOCKOUT => Change::SetLockout {
            user: text(r)?,
            until: read_text(r, "until")?,
        },
        CLEAR_LOCKOUT => Change::ClearLockout { user: text(r)? },
        SET_PASSWORD => Change::SetPassword {
            user: text(r)?,
            hash: read_text(r, "hash")?,
            set_at: read_text(r, "set_at")?,
            expires: read_opt(r, "expires")?,
            warn_from: read_opt(r, "warn_from")?,
            history: r.u8()?,
        },
        EXPIRE_PASSWORD => Change::ExpirePassword {
            user: text(r)?,
            at: read_text(r, "at")?,
        },
        code => {
            return Err(DecodeError::UnknownCode {
                field: "change kind",
                code: code.into(),
            })
        }
    })
}

/// The encoding of one change, alone (for sizing batches).
pub fn change_bytes(change: &Change) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    put_change(&mut out, change)?;
    Ok(out)
}

/// The encoding of a whole database (a snapshot's bytes).
pub fn database_bytes(db: &Database) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    put_database(&mut out, db)?;
    Ok(out)
}

/// Decodes a whole database; trailing bytes are an error.
pub fn decode_database(bytes: &[u8]) -> Result<Database, DecodeError> {
    let mut r = Reader::new(bytes);
    let db = read_database(&mut r)?;
    r.finish()?;
    Ok(db)
}
