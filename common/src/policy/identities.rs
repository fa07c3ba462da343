//! Unix identities compiled from the database: every user's [`UnixAccount`] and every
//! [`UnixGroup`] checked (syntax, reserved ids, uid and gid uniqueness, members that exist and
//! have an identity, the per-answer limits) and indexed by name and by id, so a lookup is one
//! hash probe and its answer a reference count.
//!
//! Pure. Built by `PolicySnapshot::compile`; answered by [`PolicySnapshot::lookup`] on the
//! replica's and the master's reactor threads (a lookup is as cheap as an authorize).

use super::compile::{PolicyError, PolicySnapshot};
use super::model::{Database, UnixAccount};
use super::name_hash::NameMap;
use crate::identity::{
    check_id, check_unix_name, GroupEntry, IdentityError, Lookup, PasswdEntry, MAX_GROUP_MEMBERS,
    MAX_USER_GROUPS,
};
use crate::wire::Response;
use std::collections::HashMap;
use std::sync::Arc;

/// The identities of one database version.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdentityIndex {
    users: NameMap<Arc<PasswdEntry>>,
    by_uid: HashMap<u32, Arc<PasswdEntry>>,
    groups: NameMap<Arc<GroupEntry>>,
    by_gid: HashMap<u32, Arc<GroupEntry>>,
    /// User name → gids of the groups listing it, in database order (users with an identity
    /// and no groups map to an empty list).
    groups_of: NameMap<Arc<[u32]>>,
}

fn bad(owner: String, error: IdentityError) -> PolicyError {
    PolicyError::BadIdentity { owner, error }
}

fn passwd_entry(name: &str, account: &UnixAccount) -> PasswdEntry {
    PasswdEntry {
        name: name.to_string(),
        uid: account.uid,
        gid: account.gid,
        gecos: account.gecos.clone(),
        home: account.home.clone(),
        shell: account.shell.clone(),
    }
}

impl IdentityIndex {
    /// Checks and indexes the database's identities. Host groups and Unix groups live in
    /// separate name spaces; a Unix group may share its name with a user (a user private group).
    pub(crate) fn compile(db: &Database) -> Result<IdentityIndex, PolicyError> {
        let mut index = IdentityIndex::default();
        let mut gids_of: NameMap<Vec<u32>> = NameMap::default();
        for user in &db.users {
            let Some(account) = &user.unix else { continue };
            let entry = passwd_entry(&user.name, account);
            entry
                .check()
                .map_err(|e| bad(format!("user `{}`", user.name), e))?;
            let entry = Arc::new(entry);
            if let Some(first) = index.by_uid.insert(account.uid, entry.clone()) {
                return Err(PolicyError::DuplicateId {
                    kind: "uid",
                    id: account.uid,
                    first: first.name.clone(),
                    second: user.name.clone(),
                });
            }
            index.users.insert(user.name.clone(), entry);
            gids_of.insert(user.name.clone(), Vec::new());
        }
        for group in &db.unix_groups {
            let owner = || format!("unix group `{}`", group.name);
            check_unix_name(&group.name).map_err(|e| bad(owner(), e))?;
            check_id(group.gid).map_err(|e| bad(owner(), e))?;
            if group.members.len() > MAX_GROUP_MEMBERS {
                return Err(PolicyError::TooMany {
                    owner: owner(),
                    what: "members",
                    count: group.members.len(),
                    max: MAX_GROUP_MEMBERS,
                });
            }
            for (i, member) in group.members.iter().enumerate() {
                if group.members.get(..i).is_some_and(|m| m.contains(member)) {
                    return Err(PolicyError::Duplicate {
                        kind: "member",
                        name: format!("{member}` of unix group `{}", group.name),
                    });
                }
                let Some(gids) = gids_of.get_mut(member.as_str()) else {
                    let has_user = db.users.iter().any(|u| &u.name == member);
                    return Err(PolicyError::BadMember {
                        group: group.name.clone(),
                        user: member.clone(),
                        why: if has_user {
                            "has no Unix identity"
                        } else {
                            "is not a user"
                        },
                    });
                };
                gids.push(group.gid);
                if gids.len() > MAX_USER_GROUPS {
                    return Err(PolicyError::TooMany {
                        owner: format!("user `{member}`"),
                        what: "unix groups",
                        count: gids.len(),
                        max: MAX_USER_GROUPS,
                    });
                }
            }
            let entry = Arc::new(GroupEntry {
                name: group.name.clone(),
                gid: group.gid,
                members: group.members.clone(),
            });
            if index.groups.contains_key(group.name.as_str()) {
                return Err(PolicyError::Duplicate {
                    kind: "unix group",
                    name: group.name.clone(),
                });
            }
            if let Some(first) = index.by_gid.insert(group.gid, entry.clone()) {
                return Err(PolicyError::DuplicateId {
                    kind: "gid",
                    id: group.gid,
                    first: first.name.clone(),
                    second: group.name.clone(),
                });
            }
            index.groups.insert(group.name.clone(), entry);
        }
        index.groups_of = gids_of
            .into_iter()
            .map(|(name, gids)| (name, gids.into()))
            .collect();
        Ok(index)
    }

    fn answer<S: AsRef<str>>(&self, lookup: &Lookup<S>) -> Option<Response> {
        Some(match lookup {
            Lookup::UserByName(name) => Response::User(self.users.get(name.as_ref())?.clone()),
            Lookup::UserByUid(uid) => Response::User(self.by_uid.get(uid)?.clone()),
            Lookup::GroupByName(name) => Response::Group(self.groups.get(name.as_ref())?.clone()),
            Lookup::GroupByGid(gid) => Response::Group(self.by_gid.get(gid)?.clone()),
            Lookup::GroupsOfUser(name) => {
                Response::Groups(self.groups_of.get(name.as_ref())?.clone())
            }
        })
    }
}

impl PolicySnapshot {
    /// Answers an identity lookup: `User`, `Group` or `Groups`, or `NotFound` (also for a
    /// Gatehouse user without a Unix identity: NSS must not show it).
    pub fn lookup<S: AsRef<str>>(&self, lookup: &Lookup<S>) -> Response {
        self.identities.answer(lookup).unwrap_or(Response::NotFound)
    }
}

#[cfg(test)]
#[path = "identities_tests.rs"]
mod tests;
