//! Compiling a [`Database`] into a [`PolicySnapshot`]: every rule, window, expiry and node key
//! parsed once, every name reference resolved to an index, users and hosts indexed by name (and
//! hosts by address) for O(1) lookup. A database with any error is refused as a whole, with an
//! error naming the user, class or host and the offending text, so a bad edit never half-applies.
//!
//! Pure. Called by the master and replicas whenever a database version arrives; the snapshot is
//! then shared read-only by the worker threads (it is `Send + Sync`).

use super::aging::{compile_records, CompiledAge};
use super::identities::IdentityIndex;
use super::model::{Database, Route};
use super::name_hash::NameMap;
use super::password::DummyVerifier;
use super::route::{RouteParseError, Rule};
use super::time::{PolicyTime, TimeParseError};
use super::window::{Window, WindowParseError};
use crate::identity::IdentityError;
use crate::nodekeys::{NodeKey, NodeKeyParseError};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

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

/// A compiled route.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRoute {
    /// What an Allow reports: the rule text, plus ` [class NAME]` for a class route. Shared,
    /// so an Allow costs a reference count, not an allocation.
    pub label: Arc<str>,
    pub rule: Rule,
    pub window: Option<Window>,
    pub expires: Option<PolicyTime>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledHost {
    pub key: NodeKey,
    /// Indexes of the groups this host belongs to.
    pub groups: Vec<usize>,
    /// May ask about other hosts (`Host::may_ask_for_others`).
    pub may_ask_for_others: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledUser {
    pub locked: bool,
    /// Password checks are refused before this time (the central lockout).
    pub locked_out_until: Option<PolicyTime>,
    pub password_hash: String,
    /// When the password expires and warns (none for a user without a password record).
    pub age: CompiledAge,
    pub routes: Vec<CompiledRoute>,
    /// Indexes into `PolicySnapshot::classes`, in the order the user lists them.
    pub classes: Vec<usize>,
}

/// An immutable, compiled database: what the workers decide against.
#[derive(Debug, Clone)]
pub struct PolicySnapshot {
    pub(crate) hosts: NameMap<CompiledHost>,
    /// Address → host name.
    pub(crate) host_by_address: NameMap<String>,
    pub(crate) users: NameMap<CompiledUser>,
    /// Each class's routes, indexed as in `CompiledUser::classes`.
    pub(crate) classes: Vec<Vec<CompiledRoute>>,
    /// Each class's name, indexed as `classes` (the lockout's per-class settings).
    pub(crate) class_names: Vec<String>,
    pub(crate) dummy: DummyVerifier,
    /// Unix identities, for lookups.
    pub(crate) identities: IdentityIndex,
}

/// What the central lockout needs to know about one user (see
/// [`PolicySnapshot::user_standing`]).
#[derive(Debug, Clone, Copy)]
pub struct UserStanding<'a> {
    snapshot: &'a PolicySnapshot,
    user: &'a CompiledUser,
}

impl<'a> UserStanding<'a> {
    /// Until when the user's password checks are refused, if a lockout was ever recorded (it
    /// may lie in the past: an expired lockout needs no removal).
    pub fn locked_out_until(&self) -> Option<PolicyTime> {
        self.user.locked_out_until
    }

    /// Whether the user is locked out at `now`.
    pub fn locked_out_at(&self, now: PolicyTime) -> bool {
        self.user.locked_out_until.is_some_and(|until| now < until)
    }

    /// The user's classes, in the user's order.
    pub fn classes(&self) -> impl Iterator<Item = &'a str> + 'a {
        let names = &self.snapshot.class_names;
        self.user
            .classes
            .iter()
            .filter_map(move |&c| names.get(c).map(String::as_str))
    }
}

impl PolicySnapshot {
    /// The user named `name`, for the central lockout; `None` for an unknown user.
    pub fn user_standing(&self, name: &str) -> Option<UserStanding<'_>> {
        self.users.get(name).map(|user| UserStanding {
            snapshot: self,
            user,
        })
    }
}

impl PolicySnapshot {
    /// Parses and cross-checks the whole database.
    pub fn compile(db: &Database) -> Result<PolicySnapshot, PolicyError> {
        let groups = index_names("host group", db.host_groups.iter().map(|g| &g.name))?;
        let group_of = |name: &str| groups.get(name).copied();

        let mut hosts = NameMap::with_capacity_and_hasher(db.hosts.len(), Default::default());
        let mut host_by_address: NameMap<String> = NameMap::default();
        index_names("host", db.hosts.iter().map(|h| &h.name))?;
        for host in &db.hosts {
            let key =
                NodeKey::from_hex(&host.node_key).map_err(|error| PolicyError::BadNodeKey {
                    host: host.name.clone(),
                    error,
                })?;
            let groups = host
                .groups
                .iter()
                .map(|g| {
                    group_of(g).ok_or_else(|| PolicyError::UnknownGroup {
                        host: host.name.clone(),
                        group: g.clone(),
                    })
                })
                .collect::<Result<_, _>>()?;
            for address in &host.addresses {
                if let Some(first) = host_by_address.insert(address.clone(), host.name.clone()) {
                    return Err(PolicyError::DuplicateAddress {
                        address: address.clone(),
                        first,
                        second: host.name.clone(),
                    });
                }
            }
            let may_ask_for_others = host.may_ask_for_others;
            let compiled = CompiledHost {
                key,
                groups,
                may_ask_for_others,
            };
            hosts.insert(host.name.clone(), compiled);
        }

        // The replication allow-list: every entry a registered host, none twice, so a typo
        // fails here instead of silently locking a replica out (or letting a stranger in).
        index_names("replica", db.replicas.iter())?;
        if let Some(host) = db.replicas.iter().find(|r| !hosts.contains_key(r.as_str())) {
            return Err(PolicyError::UnknownReplicaHost { host: host.clone() });
        }

        let class_index = index_names("user class", db.user_classes.iter().map(|c| &c.name))?;
        let classes = db
            .user_classes
            .iter()
            .map(|c| compile_routes(&c.routes, &RouteOwner::Class(c.name.clone()), &group_of))
            .collect::<Result<_, _>>()?;

        let user_index = index_names("user", db.users.iter().map(|u| &u.name))?;
        let lockouts = compile_lockouts(db, &user_index)?;
        let ages = compile_records(db, &user_index)?;
        let mut users = NameMap::with_capacity_and_hasher(db.users.len(), Default::default());
        for user in &db.users {
            let classes =
                user.classes
                    .iter()
                    .map(|c| {
                        class_index.get(c.as_str()).copied().ok_or_else(|| {
                            PolicyError::UnknownClass {
                                user: user.name.clone(),
                                class: c.clone(),
                            }
                        })
                    })
                    .collect::<Result<_, _>>()?;
            let owner = RouteOwner::User(user.name.clone());
            let compiled = CompiledUser {
                locked: user.locked,
                locked_out_until: lockouts.get(user.name.as_str()).copied(),
                password_hash: user.password_hash.clone(),
                age: ages.get(user.name.as_str()).copied().unwrap_or_default(),
                routes: compile_routes(&user.routes, &owner, &group_of)?,
                classes,
            };
            users.insert(user.name.clone(), compiled);
        }

        let identities = IdentityIndex::compile(db)?;
        let dummy = DummyVerifier::matching(db.users.iter().map(|u| u.password_hash.as_str()));
        Ok(PolicySnapshot {
            hosts,
            host_by_address,
            users,
            classes,
            class_names: db.user_classes.iter().map(|c| c.name.clone()).collect(),
            dummy,
            identities,
        })
    }
}

/// The lockouts by user: each names a known user, at most once, with a parsable time.
fn compile_lockouts<'a>(
    db: &'a Database,
    users: &HashMap<&str, usize>,
) -> Result<HashMap<&'a str, PolicyTime>, PolicyError> {
    index_names("lockout", db.lockouts.iter().map(|l| &l.user))?;
    db.lockouts
        .iter()
        .map(|lockout| {
            let user = lockout.user.as_str();
            if !users.contains_key(user) {
                return Err(PolicyError::UnknownLockoutUser { user: user.into() });
            }
            let until =
                PolicyTime::parse_utc(&lockout.until).map_err(|error| PolicyError::BadLockout {
                    user: user.into(),
                    text: lockout.until.clone(),
                    error,
                })?;
            Ok((user, until))
        })
        .collect()
}

/// Name → position, refusing empty and duplicate names.
fn index_names<'a>(
    kind: &'static str,
    names: impl Iterator<Item = &'a String>,
) -> Result<HashMap<&'a str, usize>, PolicyError> {
    let mut index = HashMap::new();
    for (i, name) in names.enumerate() {
        if name.is_empty() {
            return Err(PolicyError::EmptyName { kind });
        }
        if index.insert(name.as_str(), i).is_some() {
            return Err(PolicyError::Duplicate {
                kind,
                name: name.clone(),
            });
        }
    }
    Ok(index)
}

fn compile_routes(
    routes: &[Route],
    owner: &RouteOwner,
    group_of: &dyn Fn(&str) -> Option<usize>,
) -> Result<Vec<CompiledRoute>, PolicyError> {
    routes
        .iter()
        .map(|route| {
            let rule =
                Rule::parse(&route.rule, group_of).map_err(|error| PolicyError::BadRule {
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
            Ok(CompiledRoute {
                label: label.into(),
                rule,
                window,
                expires,
            })
        })
        .collect()
}
