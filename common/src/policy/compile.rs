//! Compiling a [`Database`] into a [`PolicySnapshot`]: every rule, window, expiry and node key
//! parsed once, every name reference resolved, users and hosts indexed by name (and hosts by
//! address) for O(1)-ish lookup. A database with any error is refused as a whole, with an error
//! naming the user, class or host and the offending text, so a bad edit never half-applies.
//!
//! The snapshot is persistent: every index is a hash array mapped trie ([`PersistentMap`]) of
//! per-entry `Arc`s, so a change (`edit.rs`) makes a new snapshot that shares everything it did
//! not touch with the old one, in O(what it changes). A full compile is the same inserts, one
//! entity after the other (`entities.rs`), from an empty snapshot.
//!
//! Pure. Called by the master and replicas whenever a whole database arrives (start-up, an
//! import, a snapshot); the snapshot is then shared read-only by the worker threads (it is
//! `Send + Sync`).

use super::aging::CompiledAge;
use super::identities::IdentityIndex;
use super::model::{Database, PasswordRecord, Route};
use super::name_hash::PersistentMap;
use super::password::{CostCensus, DummyVerifier};
use super::pattern::GlobCache;
use super::route::{RouteParseError, Rule};
use super::time::{PolicyTime, TimeParseError};
use super::window::{Window, WindowParseError};
use crate::identity::{IdentityError, PasswdEntry};
use crate::nodekeys::{NodeKeyMap, NodeKeyParseError};
use std::fmt;
use std::sync::Arc;

/// A name from the database, shared by every index and route that refers to it.
pub(crate) type Name = Arc<str>;

/// Where a route lives, for error messages and Allow labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOwner {
    User(String),
    Class(String),
}

impl fmt::Display for RouteOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteOwner::User(name) => write!(f, "user `{name}`"),
            RouteOwner::Class(name) => write!(f, "class `{name}`"),
        }
    }
}

/// Why a database did not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{kind} with an empty name")]
    EmptyName { kind: &'static str },
    #[error("{kind} `{name}` is defined twice")]
    Duplicate { kind: &'static str, name: String },
    #[error("address `{address}` is listed by both host `{first}` and host `{second}`")]
    DuplicateAddress {
        address: String,
        first: String,
        second: String,
    },
    #[error("host `{host}`: bad node key: {error}")]
    BadNodeKey {
        host: String,
        error: NodeKeyParseError,
    },
    #[error("host `{host}`: unknown host group `{group}`")]
    UnknownGroup { host: String, group: String },
    #[error("replica `{host}` is not a registered host")]
    UnknownReplicaHost { host: String },
    #[error("user `{user}`: unknown user class `{class}`")]
    UnknownClass { user: String, class: String },
    #[error("{owner}: rule `{text}`: {error}")]
    BadRule {
        owner: RouteOwner,
        text: String,
        error: RouteParseError,
    },
    #[error("{owner}: window `{text}`: {error}")]
    BadWindow {
        owner: RouteOwner,
        text: String,
        error: WindowParseError,
    },
    #[error("{owner}: expires `{text}`: {error}")]
    BadExpiry {
        owner: RouteOwner,
        text: String,
        error: TimeParseError,
    },
    #[error("{owner}: {error}")]
    BadIdentity { owner: String, error: IdentityError },
    #[error("{kind} {id} is used by both `{first}` and `{second}`")]
    DuplicateId {
        kind: &'static str,
        id: u32,
        first: String,
        second: String,
    },
    #[error("unix group `{group}`: member `{user}` {why}")]
    BadMember {
        group: String,
        user: String,
        why: &'static str,
    },
    #[error("{owner} has {count} {what}, over the limit of {max}")]
    TooMany {
        owner: String,
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("password record of unknown user `{user}`")]
    UnknownPasswordRecordUser { user: String },
    #[error("password record of user `{user}`: time `{text}`: {error}")]
    BadPasswordRecord {
        user: String,
        text: String,
        error: TimeParseError,
    },
    #[error("password record of user `{user}` keeps {count} earlier hashes, over {max}")]
    TooMuchPasswordHistory {
        user: String,
        count: usize,
        max: usize,
    },
    #[error("lockout of unknown user `{user}`")]
    UnknownLockoutUser { user: String },
    #[error("lockout of user `{user}`: until `{text}`: {error}")]
    BadLockout {
        user: String,
        text: String,
        error: TimeParseError,
    },
}

/// A compiled route: about 130 bytes plus its label, its patterns shared where they repeat.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRoute {
    /// What an Allow reports: the rule text (trimmed), plus ` [class NAME]` for a class route.
    /// Shared, so an Allow costs a reference count, not an allocation.
    pub label: Arc<str>,
    /// Bytes of `label` that are the rule text.
    pub rule_len: u32,
    pub rule: Rule,
    pub window: Option<Window>,
    pub expires: Option<PolicyTime>,
    /// The texts an export needs back that the compiled form does not keep; `None` for a
    /// route without window, expiry or whitespace around its rule (the common one).
    pub texts: Option<Box<RouteTexts>>,
}

/// A route's source texts, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteTexts {
    /// The rule, when it had whitespace around it (the label holds it trimmed).
    pub rule: Option<Box<str>>,
    pub window: Option<Box<str>>,
    pub expires: Option<Box<str>>,
}

impl CompiledRoute {
    /// The rule text, trimmed (how routes are compared and removed).
    pub fn rule_text(&self) -> &str {
        self.label
            .get(..self.rule_len as usize)
            .unwrap_or(&self.label)
    }

    /// The route as the database holds it.
    pub fn source(&self) -> Route {
        let texts = self.texts.as_deref();
        let text = |f: fn(&RouteTexts) -> &Option<Box<str>>| {
            texts.and_then(|t| f(t).as_deref().map(String::from))
        };
        Route {
            rule: text(|t| &t.rule).unwrap_or_else(|| self.rule_text().to_string()),
            window: text(|t| &t.window),
            expires: text(|t| &t.expires),
        }
    }
}

/// A registered host (its node key lives in the snapshot's [`NodeKeyMap`]).
#[derive(Debug, Clone)]
pub(crate) struct CompiledHost {
    /// Order in the database (not dense: removals leave gaps).
    pub position: u64,
    pub addresses: Box<[Name]>,
    /// The groups this host belongs to, as listed.
    pub groups: Box<[Name]>,
    /// May ask about other hosts (`Host::may_ask_for_others`).
    pub may_ask_for_others: bool,
}

/// A user. Cloning one (to change it) copies no route: they are shared.
#[derive(Debug, Clone)]
pub(crate) struct CompiledUser {
    pub position: u64,
    pub locked: bool,
    pub password_hash: Box<str>,
    pub routes: Arc<[CompiledRoute]>,
    /// The user's classes, in the user's order.
    pub classes: Box<[Name]>,
    /// The Unix identity, shared with the uid index and every lookup answer.
    pub unix: Option<Arc<PasswdEntry>>,
}

/// A user class: its routes and how many users list it.
#[derive(Debug, Clone)]
pub(crate) struct CompiledClass {
    pub position: u64,
    pub routes: Arc<[CompiledRoute]>,
    /// Memberships (a user listing the class twice counts twice).
    pub members: u32,
}

/// A host group and what refers to it (so a removal is checked without a scan).
#[derive(Debug, Clone)]
pub(crate) struct HostGroupEntry {
    pub position: u64,
    pub description: Option<Box<str>>,
    /// Host memberships.
    pub hosts: u32,
    /// Route patterns naming `+NAME`.
    pub routes: u32,
}

/// A user's lockout (the central lockout).
#[derive(Debug, Clone)]
pub(crate) struct LockoutEntry {
    pub position: u64,
    pub until: PolicyTime,
    /// As written, for the store and exports.
    pub text: Box<str>,
}

/// A user's password record (shadow(5)-like: when it was set, when it warns and expires, the
/// earlier hashes), as written and with its times compiled.
#[derive(Debug, Clone)]
pub(crate) struct PasswordRecordEntry {
    pub position: u64,
    /// As written, for the store, exports and the history check.
    pub record: PasswordRecord,
    pub age: CompiledAge,
}

/// The next position of each kind of entity: one more than any given out so far.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Positions {
    pub host: u64,
    pub group: u64,
    pub user: u64,
    pub class: u64,
    pub unix_group: u64,
    pub lockout: u64,
    pub password_record: u64,
}

/// An immutable, compiled database: what the workers decide against, and (on the master and
/// replicas' stores) the one in-memory copy of the database.
#[derive(Debug, Clone, Default)]
pub struct PolicySnapshot {
    pub(crate) hosts: PersistentMap<Name, Arc<CompiledHost>>,
    /// Address → host name.
    pub(crate) host_by_address: PersistentMap<Name, Name>,
    pub(crate) host_groups: PersistentMap<Name, Arc<HostGroupEntry>>,
    pub(crate) users: PersistentMap<Name, Arc<CompiledUser>>,
    pub(crate) classes: PersistentMap<Name, Arc<CompiledClass>>,
    pub(crate) lockouts: PersistentMap<Name, Arc<LockoutEntry>>,
    /// Password records by user (users without one never expire and have no history).
    pub(crate) password_records: PersistentMap<Name, Arc<PasswordRecordEntry>>,
    /// The replication allow-list, in order (a handful of names).
    pub(crate) replicas: Arc<[Name]>,
    pub(crate) node_keys: NodeKeyMap,
    /// Unix identities, for lookups.
    pub(crate) identities: IdentityIndex,
    /// The cost of every usable password hash, and the dummy it picks.
    pub(crate) costs: Arc<CostCensus>,
    pub(crate) dummy: DummyVerifier,
    pub(crate) next: Positions,
    /// Routes of all users and classes.
    pub(crate) route_count: usize,
    /// Users with `locked` set.
    pub(crate) locked_users: usize,
}

/// What the central lockout needs to know about one user (see
/// [`PolicySnapshot::user_standing`]).
#[derive(Debug, Clone, Copy)]
pub struct UserStanding<'a> {
    lockout: Option<&'a LockoutEntry>,
    user: &'a CompiledUser,
}

impl<'a> UserStanding<'a> {
    /// Until when the user's password checks are refused, if a lockout was ever recorded (it
    /// may lie in the past: an expired lockout needs no removal).
    pub fn locked_out_until(&self) -> Option<PolicyTime> {
        self.lockout.map(|l| l.until)
    }

    /// Whether the user is locked out at `now`.
    pub fn locked_out_at(&self, now: PolicyTime) -> bool {
        self.locked_out_until().is_some_and(|until| now < until)
    }

    /// The user's classes, in the user's order.
    pub fn classes(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.user.classes.iter().map(|c| &**c)
    }
}

impl PolicySnapshot {
    /// The user named `name`, for the central lockout; `None` for an unknown user.
    pub fn user_standing(&self, name: &str) -> Option<UserStanding<'_>> {
        self.users.get(name).map(|user| UserStanding {
            lockout: self.lockouts.get(name).map(|l| &**l),
            user,
        })
    }

    /// Parses and cross-checks the whole database.
    pub fn compile(db: &Database) -> Result<PolicySnapshot, PolicyError> {
        let mut snapshot = PolicySnapshot::default();
        let mut globs = GlobCache::default();
        for group in &db.host_groups {
            snapshot.insert_group(&group.name, group.description.as_deref())?;
        }
        for host in &db.hosts {
            snapshot.insert_host(host)?;
        }
        snapshot.set_replicas(&db.replicas)?;
        for class in &db.user_classes {
            snapshot.insert_class(&class.name)?;
            let routes = snapshot.compile_routes(
                &class.routes,
                &RouteOwner::Class(class.name.clone()),
                &mut globs,
            )?;
            snapshot.set_class_routes(&class.name, routes);
        }
        for user in &db.users {
            snapshot.insert_user(user, &mut globs)?;
        }
        for lockout in &db.lockouts {
            if snapshot.lockouts.contains_key(lockout.user.as_str()) {
                return Err(PolicyError::Duplicate {
                    kind: "lockout",
                    name: lockout.user.clone(),
                });
            }
            snapshot.set_lockout(&lockout.user, &lockout.until)?;
        }
        for record in &db.password_records {
            if snapshot.password_records.contains_key(record.user.as_str()) {
                return Err(PolicyError::Duplicate {
                    kind: "password record",
                    name: record.user.clone(),
                });
            }
            snapshot.set_password_record(record.clone())?;
        }
        for group in &db.unix_groups {
            snapshot.insert_unix_group(&group.name, group.gid)?;
            snapshot.check_unix_group_size(&group.name, group.members.len())?;
            for member in &group.members {
                snapshot.add_unix_member(&group.name, member)?;
            }
        }
        Ok(snapshot)
    }

    /// Compiles `routes` of `owner`, sharing patterns through `globs`.
    pub(crate) fn compile_routes(
        &self,
        routes: &[Route],
        owner: &RouteOwner,
        globs: &mut GlobCache,
    ) -> Result<Arc<[CompiledRoute]>, PolicyError> {
        let (RouteOwner::User(name) | RouteOwner::Class(name)) = owner;
        let owner_name: Name = name.as_str().into();
        globs.with_owner(&owner_name);
        routes
            .iter()
            .map(|route| self.compile_route(route, owner, globs))
            .collect()
    }

    fn compile_route(
        &self,
        route: &Route,
        owner: &RouteOwner,
        globs: &mut GlobCache,
    ) -> Result<CompiledRoute, PolicyError> {
        let group_of = |name: &str| self.host_groups.get_key_value(name).map(|(k, _)| k.clone());
        let rule =
            Rule::parse(&route.rule, &group_of, globs).map_err(|error| PolicyError::BadRule {
                owner: owner.clone(),
                text: route.rule.clone(),
                error,
            })?;
        let window = route
            .window
            .as_deref()
            .map(|text| {
                Window::parse(text).map_err(|error| PolicyError::BadWindow {
                    owner: owner.clone(),
                    text: text.to_string(),
                    error,
                })
            })
            .transpose()?;
        let expires = route
            .expires
            .as_deref()
            .map(|text| {
                PolicyTime::parse_utc(text).map_err(|error| PolicyError::BadExpiry {
                    owner: owner.clone(),
                    text: text.to_string(),
                    error,
                })
            })
            .transpose()?;
        let rule_text = route.rule.trim();
        let label = match owner {
            RouteOwner::User(_) => rule_text.to_string(),
            RouteOwner::Class(class) => format!("{rule_text} [class {class}]"),
        };
        let untrimmed = (rule_text != route.rule).then(|| route.rule.as_str().into());
        let texts = (untrimmed.is_some() || route.window.is_some() || route.expires.is_some())
            .then(|| {
                Box::new(RouteTexts {
                    rule: untrimmed,
                    window: route.window.as_deref().map(Into::into),
                    expires: route.expires.as_deref().map(Into::into),
                })
            });
        Ok(CompiledRoute {
            label: label.into(),
            rule_len: u32::try_from(rule_text.len()).unwrap_or(u32::MAX),
            rule,
            window,
            expires,
            texts,
        })
    }
}
