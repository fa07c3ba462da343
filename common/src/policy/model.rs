//! The security database as stored on disk (RON) and shipped to replicas: hosts, host groups,
//! users, user classes and their access routes. Plain serde data; nothing here is checked beyond
//! its shape — `PolicySnapshot::compile` does the cross-checks and parsing.
//!
//! Pure except [`Database::load`], which reads a file. Called by the master (load, edit, save),
//! replicas (load a shipped copy) and tests. Optional fields default so minimal entries are
//! short; unknown fields are rejected so a typo is an error, not a silently ignored setting.

use crate::config::{load_ron, ConfigError};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The whole database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    #[serde(default)]
    pub hosts: Vec<Host>,
    #[serde(default)]
    pub host_groups: Vec<HostGroup>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub user_classes: Vec<UserClass>,
    /// Names of registered hosts allowed to replicate this database from the master (the
    /// replication allow-list). Empty: no replica may connect. Compiling checks each name is a
    /// registered host; deciding requests ignores the list.
    #[serde(default)]
    pub replicas: Vec<String>,
    /// Unix groups (what `getent group` shows on managed hosts): distinct from host groups,
    /// which only routes use.
    #[serde(default)]
    pub unix_groups: Vec<UnixGroup>,
    /// Users locked out of password checks after too many failed passwords, each until a
    /// time: decided by the master's central lockout (docs/SECURITY.md, "Password checks"),
    /// cleared by `gatehouse-admin user unlock` or simply by that time passing (every server
    /// compares it with its own clock; nothing needs to remove an expired entry). At most one
    /// per user; compiling checks each names a user and parses its time. Left out of the RON
    /// text when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lockouts: Vec<Lockout>,
    /// Each user's password age and history, as the master recorded them when it set the
    /// password (shadow(5)'s last change, maximum age and warning, resolved to times so
    /// replicas need no policy). A user with no record — imported, or set before this
    /// existed — has a password that never expires and no history. At most one per user;
    /// compiling checks each names a user and parses its times. Left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub password_records: Vec<PasswordRecord>,
}

impl Database {
    /// Reads and parses a RON database file (shape only; compile it to check references).
    pub fn load(path: &Path) -> Result<Database, ConfigError> {
        load_ron(path)
    }
}

/// A managed server: it runs an agent that authenticates with `node_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// The registered name; agents send it in their hello, requests name it as to-host.
    pub name: String,
    /// Addresses (text, as agents report a from-host), so group references in FROM patterns
    /// can recognise the host when a request names it by address.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// 64 hex digits (`NodeKey::to_hex`).
    pub node_key: String,
    /// Names of host groups this host belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Whether this host's agent may ask about logins on *other* hosts (a jump host or a
    /// proxy that checks on their behalf). Off by default: an agent may only ask about its
    /// own host, so a stolen node key speaks for one host, not the fleet. An explicit admin
    /// setting (`gatehouse-admin host ask-for-others NAME yes`); left out of the RON text
    /// when off, so databases that never use it read and write as before.
    #[serde(default, skip_serializing_if = "is_false")]
    pub may_ask_for_others: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A named set of hosts, referenced in routes as `+NAME`. Membership is listed on the hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostGroup {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    /// Argon2id PHC string (`$argon2id$v=19$m=...`). Empty: no password, authenticate always
    /// fails with BadPassword (routes still apply, for example for key-based SSH).
    #[serde(default)]
    pub password_hash: String,
    /// A locked user is denied everything, whatever its routes say.
    #[serde(default)]
    pub locked: bool,
    /// Names of user classes whose routes this user also has.
    #[serde(default)]
    pub classes: Vec<String>,
    #[serde(default)]
    pub routes: Vec<Route>,
    /// The user's Unix identity on managed hosts (NSS). `None`: the user exists only for
    /// Gatehouse's decisions, for example `root`, a local account on every host.
    #[serde(default)]
    pub unix: Option<UnixAccount>,
}

/// A user's Unix identity. Compiling checks every field (see `crate::identity`) and that no
/// two users share a uid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnixAccount {
    pub uid: u32,
    /// The primary group's gid (it need not name a Unix group in this database).
    pub gid: u32,
    #[serde(default)]
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

/// A Unix group: a gid and the users (with Unix identities) who are its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnixGroup {
    pub name: String,
    pub gid: u32,
    #[serde(default)]
    pub members: Vec<String>,
}

/// A user's password checks refused until `until` (the central lockout). Authorize requests
/// are not affected: the lockout answers password guessing; `User::locked` disables an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockout {
    pub user: String,
    /// `YYYY-MM-DDTHH:MM:SSZ` (UTC), as a route's `expires`: the first second at which the
    /// user's password checks are answered again.
    pub until: String,
}

/// A user's password age and history (see [`Database::password_records`]). Times are
/// `YYYY-MM-DDTHH:MM:SSZ` (UTC), as a lockout's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordRecord {
    pub user: String,
    /// When the master set the current password; `None` when it was never set with a time
    /// (a `user expire` of an imported user).
    #[serde(default)]
    pub set_at: Option<String>,
    /// From this time the password is expired (it still verifies, and the agent is told to
    /// have it changed). `None`: it never expires.
    #[serde(default)]
    pub expires: Option<String>,
    /// From this time, until `expires`, a correct password is answered with a warning.
    #[serde(default)]
    pub warn_from: Option<String>,
    /// Argon2id PHC strings of earlier passwords, newest first (at most
    /// `password_rules::MAX_HISTORY`): a new password may not be one of them.
    #[serde(default)]
    pub history: Vec<String>,
}

/// A named set of routes shared by its member users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserClass {
    pub name: String,
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// One access route: a rule, optionally limited to a weekday/time window and an expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// `METHODS:FROM->TO`, see docs/POLICY.md.
    pub rule: String,
    /// For example `Mon-Fri 08:00-18:00` (UTC).
    #[serde(default)]
    pub window: Option<String>,
    /// `YYYY-MM-DD` (at 00:00 UTC) or `YYYY-MM-DDTHH:MM:SSZ`; the route stops working then.
    #[serde(default)]
    pub expires: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_ron;

    #[test]
    fn minimal_entries_are_short() {
        let db: Database = parse_ron(
            Path::new("db.ron"),
            r#"(
                hosts: [Host(name: "web1", node_key: "00")],
                users: [User(name: "alice", routes: [Route(rule: "SSH:*->alice@web1")])],
            )"#,
        )
        .unwrap();
        assert_eq!(db.hosts[0].addresses, Vec::<String>::new());
        assert!(!db.hosts[0].may_ask_for_others);
        assert!(!db.users[0].locked);
        assert_eq!(db.users[0].routes[0].window, None);
        assert!(db.user_classes.is_empty() && db.host_groups.is_empty());
        assert!(db.replicas.is_empty());
        assert!(db.unix_groups.is_empty() && db.users[0].unix.is_none());
        assert!(db.lockouts.is_empty() && db.password_records.is_empty());
    }

    #[test]
    fn a_misspelt_field_is_rejected_by_name() {
        let err = parse_ron::<Database>(
            Path::new("db.ron"),
            r#"(users: [User(name: "a", lockd: true)])"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("lockd"), "{err}");
    }
}
