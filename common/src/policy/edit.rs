//! A change applied to a compiled snapshot: [`PolicySnapshot::apply`] makes the next snapshot
//! from the current one in O(what the change touches) — the persistent maps share everything
//! else — with exactly the checks `change::apply` (edit the database, compile it whole) makes,
//! so both give the same snapshot (`edit_tests.rs` holds them to that over random sequences).
//!
//! Pure. Called by the master's and the replicas' stores for every change; a change that would
//! change nothing (`user lock` of a locked user) is reported as [`Applied::Unchanged`] and
//! costs a lookup.

use super::change::{duplicate, not_found, Change, ChangeError, RouteTarget};
use super::compile::{CompiledRoute, Name, PolicyError, PolicySnapshot, RouteOwner};
use super::model::User;
use super::pattern::GlobCache;
use super::route::RouteParseError;
use std::sync::Arc;

/// What applying a change gave.
#[derive(Debug, Clone)]
// One per change, moved straight into the published `Arc`: boxing would add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Applied {
    /// The database after the change.
    Changed(PolicySnapshot),
    /// The change would leave the database exactly as it is.
    Unchanged,
}

impl PolicySnapshot {
    /// Applies `change`, or refuses it (this snapshot is never modified).
    pub fn apply(&self, change: &Change) -> Result<Applied, ChangeError> {
        if let Change::ReplaceAll { database } = change {
            return Ok(Applied::Changed(PolicySnapshot::compile(database)?));
        }
        let mut next = self.clone();
        Ok(match next.edit(change)? {
            true => Applied::Changed(next),
            false => Applied::Unchanged,
        })
    }

    /// Applies `changes` in order; the result of the last (`Unchanged` if none changed
    /// anything).
    pub fn apply_all<'a>(
        &self,
        changes: impl IntoIterator<Item = &'a Change>,
    ) -> Result<Applied, ChangeError> {
        let mut current: Option<PolicySnapshot> = None;
        for change in changes {
            let base = current.as_ref().unwrap_or(self);
            if let Applied::Changed(next) = base.apply(change)? {
                current = Some(next);
            }
        }
        Ok(current.map_or(Applied::Unchanged, Applied::Changed))
    }

    fn host_exists(&self, name: &str) -> Result<(), ChangeError> {
        match self.hosts.contains_key(name) {
            true => Ok(()),
            false => Err(not_found("host", name)),
        }
    }

    fn user_exists(&self, name: &str) -> Result<(), ChangeError> {
        match self.users.contains_key(name) {
            true => Ok(()),
            false => Err(not_found("user", name)),
        }
    }

    /// The change, in place on this (private) copy. Returns whether anything changed.
    fn edit(&mut self, change: &Change) -> Result<bool, ChangeError> {
        match change {
            Change::AddHost {
                name,
                node_key,
                addresses,
                groups,
            } => {
                if self.hosts.contains_key(name.as_str()) {
                    return Err(duplicate("host", name));
                }
                self.insert_host(&super::model::Host {
                    name: name.clone(),
                    addresses: addresses.clone(),
                    node_key: node_key.clone(),
                    groups: groups.clone(),
                    may_ask_for_others: false,
                })?;
            }
            Change::RemoveHost { name } => {
                if self.replicas.iter().any(|r| **r == **name) {
                    return Err(ChangeError::InUse {
                        kind: "host",
                        name: name.clone(),
                        user: "the replica list".into(),
                    });
                }
                self.host_exists(name)?;
                self.remove_host(name);
            }
            Change::SetHostGroups { name, groups } => {
                self.host_exists(name)?;
                let groups = self.resolve_groups(name, groups)?;
                if self
                    .hosts
                    .get(name.as_str())
                    .is_some_and(|h| h.groups == groups)
                {
                    return Ok(false);
                }
                self.set_host_groups(name, groups);
            }
            Change::SetHostMayAskForOthers { name, allowed } => {
                let Some(host) = self.hosts.get_mut(name.as_str()) else {
                    return Err(not_found("host", name));
                };
                if host.may_ask_for_others == *allowed {
                    return Ok(false);
                }
                Arc::make_mut(host).may_ask_for_others = *allowed;
            }
            Change::AddGroupMember { group, host } => {
                if !self.host_groups.contains_key(group.as_str()) {
                    return Err(not_found("host group", group));
                }
                let Some(entry) = self.hosts.get(host.as_str()) else {
                    return Err(not_found("host", host));
                };
                if entry.groups.iter().any(|g| **g == **group) {
                    return Err(ChangeError::AlreadyMember {
                        host: host.clone(),
                        group: group.clone(),
                    });
                }
                let mut groups = entry.groups.to_vec();
                groups.extend(self.resolve_groups(host, std::slice::from_ref(group))?);
                self.set_host_groups(host, groups.into());
            }
            Change::RemoveGroupMember { group, host } => {
                let Some(entry) = self.hosts.get(host.as_str()) else {
                    return Err(not_found("host", host));
                };
                if !entry.groups.iter().any(|g| **g == **group) {
                    return Err(ChangeError::NotMember {
                        host: host.clone(),
                        group: group.clone(),
                    });
                }
                let groups = entry.groups.iter().filter(|g| ***g != **group);
                let groups: Box<[Name]> = groups.cloned().collect();
                self.set_host_groups(host, groups);
            }
            Change::AddGroup { name, description } => {
                if self.host_groups.contains_key(name.as_str()) {
                    return Err(duplicate("host group", name));
                }
                self.insert_group(name, description.as_deref())?;
            }
            Change::RemoveGroup { name } => self.remove_group(name)?,
            Change::AddUser { name, classes } => {
                if self.users.contains_key(name.as_str()) {
                    return Err(duplicate("user", name));
                }
                let user = User {
                    name: name.clone(),
                    password_hash: String::new(),
                    locked: false,
                    classes: classes.clone(),
                    routes: Vec::new(),
                    unix: None,
                };
                self.insert_user(&user, &mut GlobCache::default())?;
            }
            Change::RemoveUser { name } => {
                if let Some(group) = self.first_unix_group_of(name) {
                    return Err(ChangeError::InUse {
                        kind: "user",
                        name: name.clone(),
                        user: format!("unix group `{group}`"),
                    });
                }
                self.user_exists(name)?;
                self.remove_user(name);
            }
            Change::SetPasswordHash { user, hash } => {
                self.user_exists(user)?;
                return Ok(self.update_user(user, |u| {
                    let changed = *u.password_hash != **hash;
                    u.password_hash = hash.as_str().into();
                    changed
                }));
            }
            Change::SetPassword {
                user,
                hash,
                set_at,
                expires,
                warn_from,
                history,
            } => {
                self.user_exists(user)?;
                let old = self
                    .users
                    .get(user.as_str())
                    .map(|u| u.password_hash.to_string());
                let record = self.record_after_set(
                    user,
                    old.unwrap_or_default(),
                    set_at,
                    (expires, warn_from),
                    *history,
                );
                let hash_changed = self.update_user(user, |u| {
                    let changed = *u.password_hash != **hash;
                    u.password_hash = hash.as_str().into();
                    changed
                });
                return Ok(self.set_password_record(record)? || hash_changed);
            }
            Change::ExpirePassword { user, at } => {
                self.user_exists(user)?;
                let record = self.record_after_expire(user, at);
                return Ok(self.set_password_record(record)?);
            }
            Change::SetLocked { user, locked } => {
                self.user_exists(user)?;
                return Ok(self.update_user(user, |u| {
                    std::mem::replace(&mut u.locked, *locked) != *locked
                }));
            }
            Change::SetUserClasses { user, classes } => {
                self.user_exists(user)?;
                let classes = self.resolve_classes(user, classes)?;
                return Ok(self.update_user(user, |u| {
                    std::mem::replace(&mut u.classes, classes.clone()) != classes
                }));
            }
            Change::AddClass { name } => {
                if self.classes.contains_key(name.as_str()) {
                    return Err(duplicate("class", name));
                }
                self.insert_class(name)?;
            }
            Change::RemoveClass { name } => self.remove_class_checked(name)?,
            Change::AddRoute { target, route } => {
                let mut routes = self.routes_of(target)?.to_vec();
                if routes.iter().any(|r| r.rule_text() == route.rule.trim()) {
                    return Err(ChangeError::DuplicateRoute {
                        target: target.clone(),
                        rule: route.rule.trim().to_string(),
                    });
                }
                let owner = match target {
                    RouteTarget::User(name) => RouteOwner::User(name.clone()),
                    RouteTarget::Class(name) => RouteOwner::Class(name.clone()),
                };
                let added = self.compile_routes(
                    std::slice::from_ref(route),
                    &owner,
                    &mut GlobCache::default(),
                )?;
                routes.extend(added.iter().cloned());
                self.set_routes(target, routes.into());
            }
            Change::RemoveRoute { target, rule } => {
                let routes = self.routes_of(target)?;
                let kept: Vec<CompiledRoute> = routes
                    .iter()
                    .filter(|r| r.rule_text() != rule.trim())
                    .cloned()
                    .collect();
                if kept.len() == routes.len() {
                    return Err(ChangeError::RouteNotFound {
                        target: target.clone(),
                        rule: rule.trim().to_string(),
                    });
                }
                self.set_routes(target, kept.into());
            }
            Change::AddReplica { host } => {
                if self.replicas.iter().any(|r| **r == **host) {
                    return Err(duplicate("replica", host));
                }
                let Some((name, _)) = self.hosts.get_key_value(host.as_str()) else {
                    return Err(not_found("host", host));
                };
                let mut list = self.replicas.to_vec();
                list.push(name.clone());
                self.replicas = list.into();
            }
            Change::RemoveReplica { host } => {
                if !self.replicas.iter().any(|r| **r == **host) {
                    return Err(not_found("replica", host));
                }
                let list = self.replicas.iter().filter(|r| ***r != **host);
                self.replicas = list.cloned().collect();
            }
            Change::ReplaceAll { database } => *self = PolicySnapshot::compile(database)?,
            Change::SetUnixAccount { user, account } => {
                self.user_exists(user)?;
                let unix = match account {
                    Some(account) => Some(self.check_account(user, account)?),
                    None => {
                        if let Some(group) = self.first_unix_group_of(user) {
                            return Err(PolicyError::BadMember {
                                group: group.to_string(),
                                user: user.clone(),
                                why: "has no Unix identity",
                            }
                            .into());
                        }
                        None
                    }
                };
                return Ok(self.update_user(user, |u| {
                    let same = match (&u.unix, &unix) {
                        (Some(a), Some(b)) => a == b,
                        (a, b) => a.is_none() && b.is_none(),
                    };
                    u.unix = unix;
                    !same
                }));
            }
            Change::AddUnixGroup { name, gid } => {
                if self.identities.groups.contains_key(name.as_str()) {
                    return Err(duplicate("unix group", name));
                }
                self.insert_unix_group(name, *gid)?;
            }
            Change::RemoveUnixGroup { name } => {
                if !self.remove_unix_group(name) {
                    return Err(not_found("unix group", name));
                }
            }
            Change::AddUnixGroupMember { group, user } => {
                let Some(entry) = self.identities.groups.get(group.as_str()) else {
                    return Err(not_found("unix group", group));
                };
                if entry.entry.members.contains(user) {
                    return Err(ChangeError::AlreadyUnixMember {
                        user: user.clone(),
                        group: group.clone(),
                    });
                }
                self.add_unix_member(group, user)?;
            }
            Change::RemoveUnixGroupMember { group, user } => {
                if !self.identities.groups.contains_key(group.as_str()) {
                    return Err(not_found("unix group", group));
                }
                if !self.remove_unix_member(group, user) {
                    return Err(ChangeError::NotUnixMember {
                        user: user.clone(),
                        group: group.clone(),
                    });
                }
            }
            Change::SetLockout { user, until } => {
                self.user_exists(user)?;
                return Ok(self.set_lockout(user, until)?);
            }
            Change::ClearLockout { user } => {
                self.user_exists(user)?;
                if self.lockouts.remove(user.as_str()).is_none() {
                    return Err(ChangeError::NotLockedOut(user.clone()));
                }
            }
        }
        Ok(true)
    }

    /// The routes of a user or class, which must exist.
    fn routes_of(&self, target: &RouteTarget) -> Result<Arc<[CompiledRoute]>, ChangeError> {
        match target {
            RouteTarget::User(name) => self.users.get(name.as_str()).map(|u| u.routes.clone()),
            RouteTarget::Class(name) => self.classes.get(name.as_str()).map(|c| c.routes.clone()),
        }
        .ok_or_else(|| match target {
            RouteTarget::User(name) => not_found("user", name),
            RouteTarget::Class(name) => not_found("class", name),
        })
    }

    fn set_routes(&mut self, target: &RouteTarget, routes: Arc<[CompiledRoute]>) {
        match target {
            RouteTarget::User(name) => {
                self.update_user(name, |u| {
                    u.routes = routes;
                    true
                });
            }
            RouteTarget::Class(name) => self.set_class_routes(name, routes),
        }
    }

    /// Removes a host group no host lists and no route names. The refusals name the first
    /// host listing it, or the first route naming it (classes, then users), in database order
    /// (a scan, but only of a refused change).
    fn remove_group(&mut self, name: &str) -> Result<(), ChangeError> {
        let Some(group) = self.host_groups.get(name).cloned() else {
            return Err(not_found("host group", name));
        };
        if group.hosts > 0 {
            let host = self
                .hosts
                .iter()
                .filter(|(_, h)| h.groups.iter().any(|g| **g == *name))
                .min_by_key(|(_, h)| h.position)
                .map_or_else(String::new, |(n, _)| n.to_string());
            return Err(ChangeError::InUse {
                kind: "host group",
                name: name.to_string(),
                user: format!("host `{host}`"),
            });
        }
        if group.routes > 0 {
            return Err(self.route_naming(name).into());
        }
        self.host_groups.remove(name);
        Ok(())
    }

    /// The compile error the first route naming group `name` would give without it.
    fn route_naming(&self, name: &str) -> PolicyError {
        let names = |r: &CompiledRoute| r.rule.groups().any(|g| **g == *name);
        let mut classes: Vec<_> = self.classes.iter().collect();
        classes.sort_by_key(|(_, c)| c.position);
        let mut users: Vec<_> = self.users.iter().collect();
        users.sort_by_key(|(_, u)| u.position);
        let class_routes = classes.into_iter().flat_map(|(n, c)| {
            let owner = RouteOwner::Class(n.to_string());
            c.routes.iter().map(move |r| (owner.clone(), r))
        });
        let user_routes = users.into_iter().flat_map(|(n, u)| {
            let owner = RouteOwner::User(n.to_string());
            u.routes.iter().map(move |r| (owner.clone(), r))
        });
        let (owner, route) = class_routes
            .chain(user_routes)
            .find(|(_, r)| names(r))
            .map_or((RouteOwner::User(String::new()), None), |(o, r)| {
                (o, Some(r))
            });
        PolicyError::BadRule {
            owner,
            text: route.map_or_else(String::new, |r| r.source().rule),
            error: RouteParseError::UnknownGroup(name.to_string()),
        }
    }

    /// Removes a class no user lists; the refusal names the first user listing it.
    fn remove_class_checked(&mut self, name: &str) -> Result<(), ChangeError> {
        let Some(class) = self.classes.get(name) else {
            return Err(not_found("class", name));
        };
        if class.members > 0 {
            let user = self
                .users
                .iter()
                .filter(|(_, u)| u.classes.iter().any(|c| **c == *name))
                .min_by_key(|(_, u)| u.position)
                .map_or_else(String::new, |(n, _)| n.to_string());
            return Err(ChangeError::InUse {
                kind: "class",
                name: name.to_string(),
                user: format!("user `{user}`"),
            });
        }
        self.remove_class(name);
        Ok(())
    }
}

#[cfg(test)]
#[path = "edit_tests.rs"]
mod tests;
