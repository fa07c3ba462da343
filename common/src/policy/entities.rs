//! The entity operations a compile and a change are made of: insert a host, group, class or
//! user with every check that entity needs, remove one, replace one's routes or groups, set a
//! lockout, keeping the reverse counts (group and class references), the address index, the
//! node keys, the uid index, the hash-cost census and the totals in step. Each costs what the
//! entity holds, never the database's size.
//!
//! Pure. Called by `compile.rs` (a whole database, entity after entity) and `edit.rs` (one
//! change).

use super::compile::{
    CompiledClass, CompiledHost, CompiledRoute, CompiledUser, HostGroupEntry, LockoutEntry, Name,
    PolicyError, PolicySnapshot, RouteOwner,
};
use super::model::{Host, User};
use super::pattern::GlobCache;
use super::time::PolicyTime;
use crate::nodekeys::NodeKey;
use std::sync::Arc;

impl PolicySnapshot {
    /// Refuses an empty name or one `exists` says is taken.
    fn check_new_name(kind: &'static str, name: &str, exists: bool) -> Result<(), PolicyError> {
        if name.is_empty() {
            return Err(PolicyError::EmptyName { kind });
        }
        if exists {
            return Err(PolicyError::Duplicate {
                kind,
                name: name.to_string(),
            });
        }
        Ok(())
    }

    pub(crate) fn insert_group(
        &mut self,
        name: &str,
        description: Option<&str>,
    ) -> Result<(), PolicyError> {
        let exists = self.host_groups.contains_key(name);
        Self::check_new_name("host group", name, exists)?;
        let entry = HostGroupEntry {
            position: self.next.group,
            description: description.map(Into::into),
            hosts: 0,
            routes: 0,
        };
        self.next.group += 1;
        self.host_groups.insert(name.into(), Arc::new(entry));
        Ok(())
    }

    /// `groups` resolved to the groups' shared names; an unknown one is named in the error.
    pub(crate) fn resolve_groups(
        &self,
        host: &str,
        groups: &[String],
    ) -> Result<Box<[Name]>, PolicyError> {
        groups
            .iter()
            .map(|g| {
                let found = self.host_groups.get_key_value(g.as_str());
                found
                    .map(|(k, _)| k.clone())
                    .ok_or_else(|| PolicyError::UnknownGroup {
                        host: host.to_string(),
                        group: g.clone(),
                    })
            })
            .collect()
    }

    /// Adds `by` to the host count of each of `groups` (negative: takes it away).
    pub(crate) fn count_group_hosts(&mut self, groups: &[Name], by: i64) {
        self.count_groups(groups.iter(), by, |g| &mut g.hosts);
    }

    /// Adds `by` to the route count of every group `routes` name.
    pub(crate) fn count_group_routes(&mut self, routes: &[CompiledRoute], by: i64) {
        let names: Vec<Name> = routes
            .iter()
            .flat_map(|r| r.rule.groups().cloned())
            .collect();
        self.count_groups(names.iter(), by, |g| &mut g.routes);
    }

    fn count_groups<'a>(
        &mut self,
        names: impl Iterator<Item = &'a Name>,
        by: i64,
        field: fn(&mut HostGroupEntry) -> &mut u32,
    ) {
        for name in names {
            if let Some(entry) = self.host_groups.get_mut(&**name) {
                let count = field(Arc::make_mut(entry));
                *count = u32::try_from(i64::from(*count) + by).unwrap_or(0);
            }
        }
    }

    pub(crate) fn insert_host(&mut self, host: &Host) -> Result<(), PolicyError> {
        let exists = self.hosts.contains_key(host.name.as_str());
        Self::check_new_name("host", &host.name, exists)?;
        let key = NodeKey::from_hex(&host.node_key).map_err(|error| PolicyError::BadNodeKey {
            host: host.name.clone(),
            error,
        })?;
        let groups = self.resolve_groups(&host.name, &host.groups)?;
        for (i, address) in host.addresses.iter().enumerate() {
            let first = match self.host_by_address.get(address.as_str()) {
                Some(first) => Some(first.to_string()),
                None => host.addresses[..i]
                    .contains(address)
                    .then(|| host.name.clone()),
            };
            if let Some(first) = first {
                return Err(PolicyError::DuplicateAddress {
                    address: address.clone(),
                    first,
                    second: host.name.clone(),
                });
            }
        }
        let name: Name = host.name.as_str().into();
        let addresses: Box<[Name]> = host.addresses.iter().map(|a| a.as_str().into()).collect();
        for address in &addresses {
            self.host_by_address.insert(address.clone(), name.clone());
        }
        self.count_group_hosts(&groups, 1);
        self.node_keys.insert(name.clone(), key);
        let entry = CompiledHost {
            position: self.next.host,
            addresses,
            groups,
            may_ask_for_others: host.may_ask_for_others,
        };
        self.next.host += 1;
        self.hosts.insert(name, Arc::new(entry));
        Ok(())
    }

    /// Removes host `name` (which exists) with its addresses, key and group memberships.
    pub(crate) fn remove_host(&mut self, name: &str) {
        let Some(host) = self.hosts.remove(name) else {
            return;
        };
        for address in host.addresses.iter() {
            self.host_by_address.remove(&**address);
        }
        self.count_group_hosts(&host.groups, -1);
        self.node_keys.remove(name);
    }

    /// Replaces host `name`'s group list (already resolved).
    pub(crate) fn set_host_groups(&mut self, name: &str, groups: Box<[Name]>) {
        let Some(old) = self.hosts.get(name).cloned() else {
            return;
        };
        self.count_group_hosts(&old.groups, -1);
        self.count_group_hosts(&groups, 1);
        let mut host = CompiledHost::clone(&old);
        host.groups = groups;
        self.hosts.insert(name.into(), Arc::new(host));
    }

    /// The replication allow-list: no empty or repeated name, each a registered host.
    pub(crate) fn set_replicas(&mut self, replicas: &[String]) -> Result<(), PolicyError> {
        let mut list: Vec<Name> = Vec::with_capacity(replicas.len());
        for host in replicas {
            let known = list.iter().any(|r| **r == **host);
            Self::check_new_name("replica", host, known)?;
            let Some((name, _)) = self.hosts.get_key_value(host.as_str()) else {
                return Err(PolicyError::UnknownReplicaHost { host: host.clone() });
            };
            list.push(name.clone());
        }
        self.replicas = list.into();
        Ok(())
    }

    pub(crate) fn insert_class(&mut self, name: &str) -> Result<(), PolicyError> {
        let exists = self.classes.contains_key(name);
        Self::check_new_name("user class", name, exists)?;
        let class = CompiledClass {
            position: self.next.class,
            routes: Arc::new([]),
            members: 0,
        };
        self.next.class += 1;
        self.classes.insert(name.into(), Arc::new(class));
        Ok(())
    }

    /// Replaces class `name`'s routes (compiled by the caller).
    pub(crate) fn set_class_routes(&mut self, name: &str, routes: Arc<[CompiledRoute]>) {
        let Some(old) = self.classes.get(name).cloned() else {
            return;
        };
        self.count_group_routes(&old.routes, -1);
        self.count_group_routes(&routes, 1);
        self.route_count = self.route_count - old.routes.len() + routes.len();
        let mut class = CompiledClass::clone(&old);
        class.routes = routes;
        self.classes.insert(name.into(), Arc::new(class));
    }

    /// Removes class `name` (no user lists it).
    pub(crate) fn remove_class(&mut self, name: &str) {
        self.set_class_routes(name, Arc::new([]));
        self.classes.remove(name);
    }

    /// `classes` resolved to the classes' shared names.
    pub(crate) fn resolve_classes(
        &self,
        user: &str,
        classes: &[String],
    ) -> Result<Box<[Name]>, PolicyError> {
        classes
            .iter()
            .map(|c| {
                let found = self.classes.get_key_value(c.as_str());
                found
                    .map(|(k, _)| k.clone())
                    .ok_or_else(|| PolicyError::UnknownClass {
                        user: user.to_string(),
                        class: c.clone(),
                    })
            })
            .collect()
    }

    fn count_class_members(&mut self, classes: &[Name], by: i64) {
        for name in classes {
            if let Some(entry) = self.classes.get_mut(&**name) {
                let class = Arc::make_mut(entry);
                class.members = u32::try_from(i64::from(class.members) + by).unwrap_or(0);
            }
        }
    }

    pub(crate) fn insert_user(
        &mut self,
        user: &User,
        globs: &mut GlobCache,
    ) -> Result<(), PolicyError> {
        let exists = self.users.contains_key(user.name.as_str());
        Self::check_new_name("user", &user.name, exists)?;
        let classes = self.resolve_classes(&user.name, &user.classes)?;
        let owner = RouteOwner::User(user.name.clone());
        let routes = self.compile_routes(&user.routes, &owner, globs)?;
        let unix = match &user.unix {
            Some(account) => Some(self.check_account(&user.name, account)?),
            None => None,
        };
        let entry = CompiledUser {
            position: self.next.user,
            locked: user.locked,
            password_hash: user.password_hash.as_str().into(),
            routes,
            classes,
            unix,
        };
        self.next.user += 1;
        self.put_user(user.name.as_str().into(), None, entry);
        Ok(())
    }

    /// Stores `user` under `name` in place of `old`, keeping every count and index in step
    /// (the routes' group references, class memberships, locks, hash costs, the uid index).
    pub(crate) fn put_user(&mut self, name: Name, old: Option<&CompiledUser>, user: CompiledUser) {
        self.unlink_user(old);
        self.count_group_routes(&user.routes, 1);
        self.count_class_members(&user.classes, 1);
        self.route_count += user.routes.len();
        self.locked_users += usize::from(user.locked);
        Arc::make_mut(&mut self.costs).add(&user.password_hash);
        if let Some(unix) = &user.unix {
            self.identities.by_uid.insert(unix.uid, unix.clone());
        }
        self.users.insert(name, Arc::new(user));
        self.dummy = self.costs.verifier();
    }

    /// Takes `old`'s part out of every count and index (its entry stays for the caller).
    fn unlink_user(&mut self, old: Option<&CompiledUser>) {
        let Some(old) = old else { return };
        self.count_group_routes(&old.routes, -1);
        self.count_class_members(&old.classes, -1);
        self.route_count -= old.routes.len();
        self.locked_users -= usize::from(old.locked);
        Arc::make_mut(&mut self.costs).remove(&old.password_hash);
        if let Some(unix) = &old.unix {
            self.identities.by_uid.remove(&unix.uid);
        }
    }

    /// Changes user `name` (which exists) with `edit`; a change that leaves it as it was is
    /// reported as `false` and leaves the snapshot untouched.
    pub(crate) fn update_user(
        &mut self,
        name: &str,
        edit: impl FnOnce(&mut CompiledUser) -> bool,
    ) -> bool {
        let Some((key, old)) = self.users.get_key_value(name) else {
            return false;
        };
        let (key, old) = (key.clone(), old.clone());
        let mut user = CompiledUser::clone(&old);
        if !edit(&mut user) {
            return false;
        }
        self.put_user(key, Some(&old), user);
        true
    }

    /// Removes user `name` with its lockout (no Unix group lists it).
    pub(crate) fn remove_user(&mut self, name: &str) {
        let Some(old) = self.users.remove(name) else {
            return;
        };
        self.unlink_user(Some(&old));
        self.lockouts.remove(name);
        self.password_records.remove(name);
        self.dummy = self.costs.verifier();
    }

    /// Locks `user` out until `text` (parsed), keeping the place of an earlier lockout.
    /// Returns false when it already was, until exactly that text.
    pub(crate) fn set_lockout(&mut self, user: &str, text: &str) -> Result<bool, PolicyError> {
        let Some((name, _)) = self.users.get_key_value(user) else {
            return Err(PolicyError::UnknownLockoutUser { user: user.into() });
        };
        let name = name.clone();
        let until = PolicyTime::parse_utc(text).map_err(|error| PolicyError::BadLockout {
            user: user.into(),
            text: text.to_string(),
            error,
        })?;
        let position = match self.lockouts.get(user) {
            Some(old) if &*old.text == text => return Ok(false),
            Some(old) => old.position,
            None => {
                self.next.lockout += 1;
                self.next.lockout - 1
            }
        };
        let entry = LockoutEntry {
            position,
            until,
            text: text.into(),
        };
        self.lockouts.insert(name, Arc::new(entry));
        Ok(true)
    }
}
