//! Byte encoding of identity lookups and their answers (docs/PROTOCOL.md, "Identity lookups"),
//! shared by the agent↔server messages and the agent's local protocol (`gatehouse-local`), so
//! the two cannot drift apart.
//!
//! Pure. Encoders refuse what decoders would reject; decoders check every limit from the
//! length prefix before reading, and parse entries into valid values (a name with a `:` or an
//! id of 0 is a decode error, never an entry handed to NSS).

use super::msg::MAX_USER_LEN;
use super::reader::{DecodeError, Reader};
use super::writer::{put_string, EncodeError};
use crate::identity::{
    check_id, check_unix_name, GroupEntry, IdentityError, Lookup, PasswdEntry, MAX_GECOS_LEN,
    MAX_GROUP_MEMBERS, MAX_UNIX_NAME_LEN, MAX_UNIX_PATH_LEN, MAX_USER_GROUPS,
};

/// Lookup kinds, as request kinds on both protocols.
pub const LOOKUP_USER_BY_NAME: u8 = 3;
pub const LOOKUP_USER_BY_UID: u8 = 4;
pub const LOOKUP_GROUP_BY_NAME: u8 = 5;
pub const LOOKUP_GROUP_BY_GID: u8 = 6;
pub const LOOKUP_GROUPS_OF_USER: u8 = 7;

/// The kind byte of a lookup.
pub fn lookup_kind<S>(lookup: &Lookup<S>) -> u8 {
    match lookup {
        Lookup::UserByName(_) => LOOKUP_USER_BY_NAME,
        Lookup::UserByUid(_) => LOOKUP_USER_BY_UID,
        Lookup::GroupByName(_) => LOOKUP_GROUP_BY_NAME,
        Lookup::GroupByGid(_) => LOOKUP_GROUP_BY_GID,
        Lookup::GroupsOfUser(_) => LOOKUP_GROUPS_OF_USER,
    }
}

/// Appends the kind byte and the lookup's key. Names may be up to `MAX_USER_LEN` (255) bytes:
/// a caller may ask for any name, the answer is simply `NotFound`.
pub fn put_lookup<S: AsRef<str>>(out: &mut Vec<u8>, lookup: &Lookup<S>) -> Result<(), EncodeError> {
    out.push(lookup_kind(lookup));
    match lookup {
        Lookup::UserByName(n) | Lookup::GroupByName(n) | Lookup::GroupsOfUser(n) => {
            put_string(out, "name", MAX_USER_LEN, n.as_ref())
        }
        Lookup::UserByUid(id) | Lookup::GroupByGid(id) => {
            out.extend_from_slice(&id.to_be_bytes());
            Ok(())
        }
    }
}

/// The lookup after its kind byte, or `None` for a kind that is not a lookup.
pub fn read_lookup<'a>(
    kind: u8,
    r: &mut Reader<'a>,
) -> Result<Option<Lookup<&'a str>>, DecodeError> {
    Ok(Some(match kind {
        LOOKUP_USER_BY_NAME => Lookup::UserByName(r.str("name", MAX_USER_LEN)?),
        LOOKUP_USER_BY_UID => Lookup::UserByUid(r.u32()?),
        LOOKUP_GROUP_BY_NAME => Lookup::GroupByName(r.str("name", MAX_USER_LEN)?),
        LOOKUP_GROUP_BY_GID => Lookup::GroupByGid(r.u32()?),
        LOOKUP_GROUPS_OF_USER => Lookup::GroupsOfUser(r.str("name", MAX_USER_LEN)?),
        _ => return Ok(None),
    }))
}

fn invalid(field: &'static str, _error: IdentityError) -> DecodeError {
    DecodeError::Invalid {
        field,
        why: "not a valid Unix identity",
    }
}

/// `name uid gid gecos home shell`.
pub fn put_passwd(out: &mut Vec<u8>, e: &PasswdEntry) -> Result<(), EncodeError> {
    put_string(out, "name", MAX_UNIX_NAME_LEN, &e.name)?;
    out.extend_from_slice(&e.uid.to_be_bytes());
    out.extend_from_slice(&e.gid.to_be_bytes());
    put_string(out, "gecos", MAX_GECOS_LEN, &e.gecos)?;
    put_string(out, "home", MAX_UNIX_PATH_LEN, &e.home)?;
    put_string(out, "shell", MAX_UNIX_PATH_LEN, &e.shell)
}

/// Reads and checks a passwd entry.
pub fn read_passwd(r: &mut Reader<'_>) -> Result<PasswdEntry, DecodeError> {
    let entry = PasswdEntry {
        name: r.string("name", MAX_UNIX_NAME_LEN)?,
        uid: r.u32()?,
        gid: r.u32()?,
        gecos: r.string("gecos", MAX_GECOS_LEN)?,
        home: r.string("home", MAX_UNIX_PATH_LEN)?,
        shell: r.string("shell", MAX_UNIX_PATH_LEN)?,
    };
    entry.check().map_err(|e| invalid("passwd entry", e))?;
    Ok(entry)
}

/// `name gid count:u16 member...`.
pub fn put_group(out: &mut Vec<u8>, g: &GroupEntry) -> Result<(), EncodeError> {
    put_string(out, "name", MAX_UNIX_NAME_LEN, &g.name)?;
    out.extend_from_slice(&g.gid.to_be_bytes());
    put_count(out, "members", g.members.len(), MAX_GROUP_MEMBERS)?;
    for member in &g.members {
        put_string(out, "member", MAX_UNIX_NAME_LEN, member)?;
    }
    Ok(())
}

/// Reads and checks a group entry.
pub fn read_group(r: &mut Reader<'_>) -> Result<GroupEntry, DecodeError> {
    let name = r.string("name", MAX_UNIX_NAME_LEN)?;
    check_unix_name(&name).map_err(|e| invalid("group name", e))?;
    let gid = r.u32()?;
    check_id(gid).map_err(|e| invalid("gid", e))?;
    let count = read_count(r, "members", MAX_GROUP_MEMBERS)?;
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        let member = r.string("member", MAX_UNIX_NAME_LEN)?;
        check_unix_name(&member).map_err(|e| invalid("member", e))?;
        members.push(member);
    }
    Ok(GroupEntry { name, gid, members })
}

/// `count:u16 gid:u32...`.
pub fn put_gids(out: &mut Vec<u8>, gids: &[u32]) -> Result<(), EncodeError> {
    put_count(out, "gids", gids.len(), MAX_USER_GROUPS)?;
    for gid in gids {
        out.extend_from_slice(&gid.to_be_bytes());
    }
    Ok(())
}

/// Reads a gid list.
pub fn read_gids(r: &mut Reader<'_>) -> Result<Vec<u32>, DecodeError> {
    let count = read_count(r, "gids", MAX_USER_GROUPS)?;
    (0..count)
        .map(|_| {
            let gid = r.u32()?;
            check_id(gid).map_err(|e| invalid("gid", e))?;
            Ok(gid)
        })
        .collect()
}

fn put_count(
    out: &mut Vec<u8>,
    field: &'static str,
    count: usize,
    max: usize,
) -> Result<(), EncodeError> {
    let too_many = EncodeError::TooMany { field, count, max };
    if count > max {
        return Err(too_many);
    }
    let count = u16::try_from(count).map_err(|_| too_many)?;
    out.extend_from_slice(&count.to_be_bytes());
    Ok(())
}

fn read_count(r: &mut Reader<'_>, field: &'static str, max: usize) -> Result<usize, DecodeError> {
    let count = usize::from(r.u16()?);
    if count > max {
        return Err(DecodeError::Invalid {
            field,
            why: "too many entries",
        });
    }
    Ok(count)
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
