//! Unix identities in the compiled policy: every user's [`UnixAccount`] and every Unix group
//! checked (syntax, reserved ids, uid and gid uniqueness, members that exist and have an
//! identity, the per-answer limits) and indexed by name and by id, so a lookup is one map probe
//! and its answer a reference count. Kept up to date one identity or membership at a time.
//!
//! Pure. Built by `PolicySnapshot::compile` and changed by `edit.rs`; answered by
//! [`PolicySnapshot::lookup`] on the replica's and the master's reactor threads (a lookup is as
//! cheap as an authorize).

use super::compile::{Name, PolicyError, PolicySnapshot};
use super::model::UnixAccount;
use super::name_hash::PersistentMap;
use crate::identity::{
    check_id, check_unix_name, GroupEntry, IdentityError, Lookup, PasswdEntry, MAX_GROUP_MEMBERS,
    MAX_USER_GROUPS,
};
use crate::wire::Response;
use std::sync::Arc;

/// The Unix groups and the id indexes of one database version (users' own identities live on
/// the users, `CompiledUser::unix`).
#[derive(Debug, Clone, Default)]
pub(crate) struct IdentityIndex {
    pub by_uid: PersistentMap<u32, Arc<PasswdEntry>>,
    pub groups: PersistentMap<Name, Arc<UnixGroup>>,
    pub by_gid: PersistentMap<u32, Arc<UnixGroup>>,
    /// User name → gids of the groups listing it, in database order; only users in a group.
    pub groups_of: PersistentMap<Name, Arc<[u32]>>,
    /// The answer for a user with an identity and no group.
    no_groups: Arc<[u32]>,
}

/// A Unix group: its place in the database and the entry lookups answer with.
#[derive(Debug, Clone)]
pub(crate) struct UnixGroup {
    pub position: u64,
    pub entry: Arc<GroupEntry>,
}

fn bad(owner: String, error: IdentityError) -> PolicyError {
    PolicyError::BadIdentity { owner, error }
}

fn group_owner(name: &str) -> String {
    format!("unix group `{name}`")
}

impl PolicySnapshot {
    /// `user`'s identity as a checked entry: syntax, and a uid no other user holds.
    pub(crate) fn check_account(
        &self,
        user: &str,
        account: &UnixAccount,
    ) -> Result<Arc<PasswdEntry>, PolicyError> {
        let entry = PasswdEntry {
            name: user.to_string(),
            uid: account.uid,
            gid: account.gid,
            gecos: account.gecos.clone(),
            home: account.home.clone(),
            shell: account.shell.clone(),
        };
        entry
            .check()
            .map_err(|e| bad(format!("user `{user}`"), e))?;
        match self.identities.by_uid.get(&account.uid) {
            Some(holder) if holder.name != user => Err(PolicyError::DuplicateId {
                kind: "uid",
                id: account.uid,
                first: holder.name.clone(),
                second: user.to_string(),
            }),
            _ => Ok(Arc::new(entry)),
        }
    }

    /// Adds an empty Unix group at the end of the list.
    pub(crate) fn insert_unix_group(&mut self, name: &str, gid: u32) -> Result<(), PolicyError> {
        check_unix_name(name).map_err(|e| bad(group_owner(name), e))?;
        check_id(gid).map_err(|e| bad(group_owner(name), e))?;
        let ids = &mut self.identities;
        if ids.groups.contains_key(name) {
            return Err(PolicyError::Duplicate {
                kind: "unix group",
                name: name.to_string(),
            });
        }
        if let Some(first) = ids.by_gid.get(&gid) {
            return Err(PolicyError::DuplicateId {
                kind: "gid",
                id: gid,
                first: first.entry.name.clone(),
                second: name.to_string(),
            });
        }
        let group = Arc::new(UnixGroup {
            position: self.next.unix_group,
            entry: Arc::new(GroupEntry {
                name: name.to_string(),
                gid,
                members: Vec::new(),
            }),
        });
        self.next.unix_group += 1;
        ids.groups.insert(name.into(), group.clone());
        ids.by_gid.insert(gid, group);
        Ok(())
    }

    /// Refuses a group of `count` members, over [`MAX_GROUP_MEMBERS`].
    pub(crate) fn check_unix_group_size(
        &self,
        name: &str,
        count: usize,
    ) -> Result<(), PolicyError> {
        if count > MAX_GROUP_MEMBERS {
            return Err(PolicyError::TooMany {
                owner: group_owner(name),
                what: "members",
                count,
                max: MAX_GROUP_MEMBERS,
            });
        }
        Ok(())
    }

    /// Appends `member` to group `group` (which exists). Refuses a member listed twice, one
    /// that is not a user with an identity, and lists over the limits.
    pub(crate) fn add_unix_member(&mut self, group: &str, member: &str) -> Result<(), PolicyError> {
        let Some(entry) = self.identities.groups.get(group).cloned() else {
            return Ok(());
        };
        if entry.entry.members.iter().any(|m| m == member) {
            return Err(PolicyError::Duplicate {
                kind: "member",
                name: format!("{member}` of unix group `{group}"),
            });
        }
        let user = self.users.get_key_value(member);
        let Some((user_name, _)) = user.filter(|(_, u)| u.unix.is_some()) else {
            return Err(PolicyError::BadMember {
                group: group.to_string(),
                user: member.to_string(),
                why: if user.is_some() {
                    "has no Unix identity"
                } else {
                    "is not a user"
                },
            });
        };
        let user_name = user_name.clone();
        self.check_unix_group_size(group, entry.entry.members.len() + 1)?;
        let mut gids: Vec<u32> = self.unix_gids_of(member).to_vec();
        if gids.len() + 1 > MAX_USER_GROUPS {
            return Err(PolicyError::TooMany {
                owner: format!("user `{member}`"),
                what: "unix groups",
                count: gids.len() + 1,
                max: MAX_USER_GROUPS,
            });
        }
        // The user's gids stay in the groups' database order.
        let position_of = |gid: &u32| self.identities.by_gid.get(gid).map(|g| g.position);
        let at = gids.partition_point(|g| position_of(g) < Some(entry.position));
        gids.insert(at, entry.entry.gid);
        let mut members = entry.entry.members.clone();
        members.push(member.to_string());
        self.replace_unix_group(&entry, members);
        self.identities.groups_of.insert(user_name, gids.into());
        Ok(())
    }

    /// Takes `member` out of group `group`; false when it was not listed.
    pub(crate) fn remove_unix_member(&mut self, group: &str, member: &str) -> bool {
        let Some(entry) = self.identities.groups.get(group).cloned() else {
            return false;
        };
        if !entry.entry.members.iter().any(|m| m == member) {
            return false;
        }
        let members = entry.entry.members.iter().filter(|m| *m != member);
        self.replace_unix_group(&entry, members.cloned().collect());
        self.drop_gid_of(member, entry.entry.gid);
        true
    }

    /// Removes group `name` and its memberships; false when there is none.
    pub(crate) fn remove_unix_group(&mut self, name: &str) -> bool {
        let Some(entry) = self.identities.groups.remove(name) else {
            return false;
        };
        self.identities.by_gid.remove(&entry.entry.gid);
        for member in &entry.entry.members {
            self.drop_gid_of(member, entry.entry.gid);
        }
        true
    }

    /// The gids of the groups listing `user`, in database order.
    pub(crate) fn unix_gids_of(&self, user: &str) -> &[u32] {
        self.identities
            .groups_of
            .get(user)
            .map_or(&[], |gids| &**gids)
    }

    /// The first group (in database order) listing `user`, if any.
    pub(crate) fn first_unix_group_of(&self, user: &str) -> Option<&str> {
        let gid = self.unix_gids_of(user).first()?;
        let group = self.identities.by_gid.get(gid)?;
        Some(&group.entry.name)
    }

    fn replace_unix_group(&mut self, old: &UnixGroup, members: Vec<String>) {
        let group = Arc::new(UnixGroup {
            position: old.position,
            entry: Arc::new(GroupEntry {
                name: old.entry.name.clone(),
                gid: old.entry.gid,
                members,
            }),
        });
        let ids = &mut self.identities;
        ids.groups
            .insert(old.entry.name.as_str().into(), group.clone());
        ids.by_gid.insert(old.entry.gid, group);
    }

    fn drop_gid_of(&mut self, user: &str, gid: u32) {
        let gids: Vec<u32> = self
            .unix_gids_of(user)
            .iter()
            .copied()
            .filter(|g| *g != gid)
            .collect();
        let groups_of = &mut self.identities.groups_of;
        match (gids.is_empty(), self.users.get_key_value(user)) {
            (false, Some((name, _))) => groups_of.insert(name.clone(), gids.into()),
            _ => groups_of.remove(user),
        };
    }

    /// Answers an identity lookup: `User`, `Group` or `Groups`, or `NotFound` (also for a
    /// Gatehouse user without a Unix identity: NSS must not show it).
    pub fn lookup<S: AsRef<str>>(&self, lookup: &Lookup<S>) -> Response {
        self.answer(lookup).unwrap_or(Response::NotFound)
    }

    fn answer<S: AsRef<str>>(&self, lookup: &Lookup<S>) -> Option<Response> {
        let ids = &self.identities;
        Some(match lookup {
            Lookup::UserByName(name) => {
                Response::User(self.users.get(name.as_ref())?.unix.clone()?)
            }
            Lookup::UserByUid(uid) => Response::User(ids.by_uid.get(uid)?.clone()),
            Lookup::GroupByName(name) => {
                Response::Group(ids.groups.get(name.as_ref())?.entry.clone())
            }
            Lookup::GroupByGid(gid) => Response::Group(ids.by_gid.get(gid)?.entry.clone()),
            Lookup::GroupsOfUser(name) => {
                let name = name.as_ref();
                self.users.get(name)?.unix.as_ref()?;
                let gids = ids.groups_of.get(name).unwrap_or(&ids.no_groups);
                Response::Groups(gids.clone())
            }
        })
    }
}

#[cfg(test)]
#[path = "identities_tests.rs"]
mod tests;
