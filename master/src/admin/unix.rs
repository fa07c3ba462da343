//! Admin requests about Unix identities: setting a user's uid, gid, GECOS, home and shell,
//! Unix groups and their members, and showing them. The master checks here what only it
//! should check — that an id it is asked to assign lies in the configured range, and picks the
//! lowest free one when none is given; syntax and uniqueness are checked when the change
//! compiles, on the master and every replica alike.
//!
//! Not pure: commits through `MasterState`. Called by `handler::handle`.

use super::handler::{done, error, refused};
use super::proto::{AdminErrorKind, AdminResponse, UserInfo};
use crate::state::MasterState;
use gatehouse_common::policy::{Change, PasswordRecord, PolicySnapshot, UnixAccount};

/// The shell a new identity gets unless the admin names one (`/bin/sh`): the one shell every
/// Unix host has, so a login never fails on a missing interpreter.
pub const DEFAULT_SHELL: &str = "/bin/sh";
/// Where a new identity's home is unless the admin names one: this, then the user name.
pub const DEFAULT_HOME_PARENT: &str = "/home/";

/// The fields of `user unix`; `None` keeps or defaults (see `AdminRequest::UserUnix`).
pub struct UnixFields {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub gecos: Option<String>,
    pub home: Option<String>,
    pub shell: Option<String>,
}

/// The lowest id in `min..=max` that `taken` says is free, if any. Scans up from `min`: the
/// cost is the number of taken ids below the answer (hash lookups), not the database's size;
/// give `--uid`/`--gid` when provisioning many identities in a dense range.
fn lowest_free(min: u32, max: u32, taken: impl Fn(u32) -> bool) -> Option<u32> {
    (min..=max).find(|&id| !taken(id))
}

fn out_of_range(what: &str, id: u32, (min, max): (u32, u32)) -> Option<AdminResponse> {
    (!(min..=max).contains(&id)).then(|| {
        refused(format!(
            "{what} {id} is outside the master's range {min}..={max} (config: unix_ids)"
        ))
    })
}

/// `user unix NAME ...`.
pub fn set_account(state: &MasterState, name: String, fields: UnixFields) -> AdminResponse {
    let ranges = state.unix_ids();
    let db = state.policy().load_full();
    let Some((_, user)) = db.user(&name) else {
        return refused(format!("unknown user `{name}`"));
    };
    let current = user.unix;
    let next_uid = match (&current, fields.uid) {
        (None, None) => lowest_free(ranges.uids.0, ranges.uids.1, |id| db.uid_taken(id)),
        _ => None,
    };
    let assigned_uid = current.is_none() && fields.uid.is_none();
    let uid = match (fields.uid, &current, next_uid) {
        (Some(uid), _, _) => uid,
        (None, Some(account), _) => account.uid,
        (None, None, Some(uid)) => uid,
        (None, None, None) => {
            let (min, max) = ranges.uids;
            return refused(format!(
                "no free uid left in {min}..={max} (config: unix_ids)"
            ));
        }
    };
    if let Some(refusal) = fields
        .uid
        .and_then(|uid| out_of_range("uid", uid, ranges.uids))
    {
        return refusal;
    }
    if let Some(refusal) = fields
        .gid
        .and_then(|gid| out_of_range("gid", gid, ranges.gids))
    {
        return refusal;
    }
    let account = UnixAccount {
        uid,
        gid: fields
            .gid
            .or(current.as_ref().map(|a| a.gid))
            .unwrap_or(uid),
        gecos: fields
            .gecos
            .or(current.as_ref().map(|a| a.gecos.clone()))
            .unwrap_or_default(),
        home: fields
            .home
            .or(current.as_ref().map(|a| a.home.clone()))
            .unwrap_or_else(|| format!("{DEFAULT_HOME_PARENT}{name}")),
        shell: fields
            .shell
            .or(current.as_ref().map(|a| a.shell.clone()))
            .unwrap_or_else(|| DEFAULT_SHELL.to_string()),
    };
    let change = Change::SetUnixAccount {
        user: name,
        account: Some(account),
    };
    with_id(state, change, assigned_uid.then_some(("uid", uid)))
}

/// `unixgroup add NAME [--gid N]`.
pub fn add_group(state: &MasterState, name: String, gid: Option<u32>) -> AdminResponse {
    let ranges = state.unix_ids();
    let gid = match gid {
        Some(gid) => {
            if let Some(refusal) = out_of_range("gid", gid, ranges.gids) {
                return refusal;
            }
            gid
        }
        None => {
            let db = state.policy().load_full();
            let next = lowest_free(ranges.gids.0, ranges.gids.1, |id| db.gid_taken(id));
            let Some(gid) = next else {
                let (min, max) = ranges.gids;
                return refused(format!(
                    "no free gid left in {min}..={max} (config: unix_ids)"
                ));
            };
            return with_id(
                state,
                Change::AddUnixGroup { name, gid },
                Some(("gid", gid)),
            );
        }
    };
    done(state, Change::AddUnixGroup { name, gid })
}

/// Commits `change`; when the master chose an id, says which.
fn with_id(state: &MasterState, change: Change, chosen: Option<(&str, u32)>) -> AdminResponse {
    match (done(state, change), chosen) {
        (AdminResponse::Done { seq }, Some((what, id))) => AdminResponse::IdSet {
            seq,
            what: what.to_string(),
            id,
        },
        (response, _) => response,
    }
}

/// `user show NAME`.
pub fn show_user(db: &PolicySnapshot, name: &str) -> AdminResponse {
    let Some((_, user)) = db.user(name) else {
        return error(AdminErrorKind::Refused, format!("unknown user `{name}`"));
    };
    let record = db.password_record(name).map(|(_, r)| r);
    let record = record.as_ref();
    let field = |f: fn(&PasswordRecord) -> &Option<String>| record.and_then(|r| f(r).clone());
    AdminResponse::User(UserInfo {
        name: user.name.clone(),
        locked: user.locked,
        has_password: !user.password_hash.is_empty(),
        classes: user.classes.clone(),
        routes: user.routes.len(),
        unix: user.unix.clone(),
        unix_groups: db.unix_groups_of(name),
        // The master's handler adds the lockout's view.
        locked_out_until: None,
        wrong_passwords: 0,
        wrong_password_sources: String::new(),
        password_set_at: field(|r| &r.set_at),
        password_expires: field(|r| &r.expires),
        password_warn_from: field(|r| &r.warn_from),
        password_history: record.map_or(0, |r| r.history.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::lowest_free;

    #[test]
    fn the_lowest_free_id_skips_used_ones_and_respects_the_range() {
        let taken = |ids: &'static [u32]| move |id| ids.contains(&id);
        assert_eq!(lowest_free(10, 20, taken(&[])), Some(10));
        assert_eq!(lowest_free(10, 20, taken(&[10, 11, 13, 5, 99])), Some(12));
        assert_eq!(lowest_free(10, 12, taken(&[12, 11, 10])), None);
        assert_eq!(lowest_free(10, 10, taken(&[10, 10])), None);
        assert_eq!(
            lowest_free(u32::MAX - 1, u32::MAX - 1, taken(&[])),
            Some(u32::MAX - 1)
        );
        assert_eq!(lowest_free(u32::MAX, u32::MAX, taken(&[u32::MAX])), None);
    }
}
