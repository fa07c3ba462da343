//! Reading a compiled snapshot back as the database model: one entity by name (what the admin
//! tools and the store's row writer need, O(that entity)), every entity of a kind in database
//! order (listings, bulk writes; O(n log n) for the sort by position), the whole
//! [`Database`] (exports, replica snapshots), and the totals `status` shows (O(1)).
//!
//! Pure. Called by the master's store and admin handler, and by replication.

use super::compile::{CompiledHost, CompiledUser, LockoutEntry, Name, PolicySnapshot};
use super::model::{
    Database, Host, HostGroup, Lockout, PasswordRecord, UnixAccount, UnixGroup, User, UserClass,
};
use super::time::PolicyTime;
use crate::nodekeys::NodeKey;
use std::sync::Arc;

/// Entities with their database positions (for the store's `position` columns).
pub type Positioned<T> = (u64, T);

impl PolicySnapshot {
    fn host_model(&self, name: &str, host: &CompiledHost) -> Host {
        Host {
            name: name.to_string(),
            addresses: host.addresses.iter().map(|a| a.to_string()).collect(),
            node_key: self
                .node_keys
                .get(name)
                .map_or_else(String::new, NodeKey::to_hex),
            groups: host.groups.iter().map(|g| g.to_string()).collect(),
            may_ask_for_others: host.may_ask_for_others,
        }
    }

    fn user_model(name: &str, user: &CompiledUser) -> User {
        User {
            name: name.to_string(),
            password_hash: user.password_hash.to_string(),
            locked: user.locked,
            classes: user.classes.iter().map(|c| c.to_string()).collect(),
            routes: user.routes.iter().map(|r| r.source()).collect(),
            unix: user.unix.as_ref().map(|e| UnixAccount {
                uid: e.uid,
                gid: e.gid,
                gecos: e.gecos.clone(),
                home: e.home.clone(),
                shell: e.shell.clone(),
            }),
        }
    }

    /// Host `name` and its position.
    pub fn host(&self, name: &str) -> Option<Positioned<Host>> {
        let host = self.hosts.get(name)?;
        Some((host.position, self.host_model(name, host)))
    }

    /// User `name` and its position.
    pub fn user(&self, name: &str) -> Option<Positioned<User>> {
        let user = self.users.get(name)?;
        Some((user.position, Self::user_model(name, user)))
    }

    /// Class `name` and its position.
    pub fn class(&self, name: &str) -> Option<Positioned<UserClass>> {
        let class = self.classes.get(name)?;
        let routes = class.routes.iter().map(|r| r.source()).collect();
        Some((
            class.position,
            UserClass {
                name: name.to_string(),
                routes,
            },
        ))
    }

    /// Host group `name` and its position.
    pub fn host_group(&self, name: &str) -> Option<Positioned<HostGroup>> {
        let group = self.host_groups.get(name)?;
        let description = group.description.as_deref().map(String::from);
        Some((
            group.position,
            HostGroup {
                name: name.to_string(),
                description,
            },
        ))
    }

    /// Unix group `name` and its position.
    pub fn unix_group(&self, name: &str) -> Option<Positioned<UnixGroup>> {
        let group = self.identities.groups.get(name)?;
        let entry = &group.entry;
        Some((
            group.position,
            UnixGroup {
                name: entry.name.clone(),
                gid: entry.gid,
                members: entry.members.clone(),
            },
        ))
    }

    /// `user`'s lockout (expired or not) and its position.
    pub fn lockout(&self, user: &str) -> Option<Positioned<Lockout>> {
        let lockout = self.lockouts.get(user)?;
        Some((
            lockout.position,
            Lockout {
                user: user.to_string(),
                until: lockout.text.to_string(),
            },
        ))
    }

    /// Whether user `name` exists.
    pub fn has_user(&self, name: &str) -> bool {
        self.users.contains_key(name)
    }

    /// Whether host `name` is registered.
    pub fn has_host(&self, name: &str) -> bool {
        self.hosts.contains_key(name)
    }

    /// Whether user `name` exists and is locked.
    pub fn is_locked(&self, name: &str) -> bool {
        self.users.get(name).is_some_and(|u| u.locked)
    }

    /// The replication allow-list, in order.
    pub fn replicas(&self) -> impl Iterator<Item = &str> {
        self.replicas.iter().map(|r| &**r)
    }

    /// The Unix groups listing `user`, by name, in database order.
    pub fn unix_groups_of(&self, user: &str) -> Vec<String> {
        let ids = &self.identities;
        let groups = self.unix_gids_of(user).iter();
        groups
            .filter_map(|gid| ids.by_gid.get(gid).map(|g| g.entry.name.clone()))
            .collect()
    }

    /// Whether some user has uid `uid`, and whether some group has gid `gid`.
    pub fn uid_taken(&self, uid: u32) -> bool {
        self.identities.by_uid.contains_key(&uid)
    }

    /// Whether some Unix group has gid `gid`.
    pub fn gid_taken(&self, gid: u32) -> bool {
        self.identities.by_gid.contains_key(&gid)
    }

    /// Users whose lockout runs past `now`, in database order.
    pub fn active_lockouts(&self, now: PolicyTime) -> Vec<Lockout> {
        let mut active: Vec<_> = self
            .lockouts
            .iter()
            .filter(|(_, l)| now < l.until)
            .collect();
        active.sort_by_key(|(_, l)| l.position);
        let lockout = |(user, l): (&Name, &Arc<LockoutEntry>)| Lockout {
            user: user.to_string(),
            until: l.text.to_string(),
        };
        active.into_iter().map(lockout).collect()
    }

    /// Registered hosts.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// Host groups.
    pub fn host_group_count(&self) -> usize {
        self.host_groups.len()
    }

    /// Users.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Users with the admin lock set.
    pub fn locked_user_count(&self) -> usize {
        self.locked_users
    }

    /// User classes.
    pub fn class_count(&self) -> usize {
        self.classes.len()
    }

    /// Routes of every user and class.
    pub fn route_count(&self) -> usize {
        self.route_count
    }

    /// Makes every entity added from now on come after position `floor - 1`: for a store
    /// whose rows keep positions from earlier runs (the compile numbered them afresh, in the
    /// same order).
    pub fn reserve_positions(&mut self, floor: u64) {
        let next = &mut self.next;
        for counter in [
            &mut next.host,
            &mut next.group,
            &mut next.user,
            &mut next.class,
            &mut next.unix_group,
            &mut next.lockout,
            &mut next.password_record,
        ] {
            *counter = (*counter).max(floor);
        }
    }

    /// How many table rows the store writes for the whole database (progress totals).
    pub fn stored_rows(&self) -> u64 {
        let hosts = self
            .hosts
            .values()
            .map(|h| 1 + h.addresses.len() + h.groups.len());
        let users = self
            .users
            .values()
            .map(|u| 1 + u.classes.len() + u.routes.len());
        let classes = self.classes.values().map(|c| 1 + c.routes.len());
        let unix = self
            .identities
            .groups
            .values()
            .map(|g| 1 + g.entry.members.len());
        let rest = self.host_groups.len()
            + self.lockouts.len()
            + self.password_records.len()
            + self.replicas.len();
        (hosts.sum::<usize>() + users.sum::<usize>() + classes.sum::<usize>())
            .saturating_add(unix.sum::<usize>() + rest) as u64
    }

    /// Every host in database order.
    pub fn hosts_in_order(&self) -> Vec<Positioned<Host>> {
        let mut hosts: Vec<_> = self.hosts.iter().collect();
        hosts.sort_by_key(|(_, h)| h.position);
        let host = |(n, h): (&Name, &Arc<CompiledHost>)| (h.position, self.host_model(n, h));
        hosts.into_iter().map(host).collect()
    }

    /// Every user in database order.
    pub fn users_in_order(&self) -> Vec<Positioned<User>> {
        let mut users: Vec<_> = self.users.iter().collect();
        users.sort_by_key(|(_, u)| u.position);
        let user = |(n, u): (&Name, &Arc<CompiledUser>)| (u.position, Self::user_model(n, u));
        users.into_iter().map(user).collect()
    }

    /// Every entity of one kind, in database order, through its by-name reader.
    fn in_order<T>(
        &self,
        names: impl Iterator<Item = Name>,
        read: impl Fn(&Self, &str) -> Option<Positioned<T>>,
    ) -> Vec<Positioned<T>> {
        let mut all: Vec<_> = names.filter_map(|n| read(self, &n)).collect();
        all.sort_by_key(|(position, _)| *position);
        all
    }

    /// Every class in database order.
    pub fn classes_in_order(&self) -> Vec<Positioned<UserClass>> {
        self.in_order(self.classes.keys().cloned(), Self::class)
    }

    /// Every host group in database order.
    pub fn host_groups_in_order(&self) -> Vec<Positioned<HostGroup>> {
        self.in_order(self.host_groups.keys().cloned(), Self::host_group)
    }

    /// Every Unix group in database order.
    pub fn unix_groups_in_order(&self) -> Vec<Positioned<UnixGroup>> {
        self.in_order(self.identities.groups.keys().cloned(), Self::unix_group)
    }

    /// Every lockout (expired or not) in database order.
    pub fn lockouts_in_order(&self) -> Vec<Positioned<Lockout>> {
        self.in_order(self.lockouts.keys().cloned(), Self::lockout)
    }

    /// Every password record in database order.
    pub fn password_records_in_order(&self) -> Vec<Positioned<PasswordRecord>> {
        self.in_order(self.password_records.keys().cloned(), Self::password_record)
    }

    /// The whole database, as the model (exports and replica snapshots).
    pub fn to_database(&self) -> Database {
        fn strip<T>(entries: Vec<Positioned<T>>) -> Vec<T> {
            entries.into_iter().map(|(_, e)| e).collect()
        }
        Database {
            hosts: strip(self.hosts_in_order()),
            host_groups: strip(self.host_groups_in_order()),
            users: strip(self.users_in_order()),
            user_classes: strip(self.classes_in_order()),
            replicas: self.replicas().map(String::from).collect(),
            unix_groups: strip(self.unix_groups_in_order()),
            lockouts: strip(self.lockouts_in_order()),
            password_records: strip(self.password_records_in_order()),
        }
    }
}
