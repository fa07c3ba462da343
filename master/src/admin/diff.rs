//! What an import would change: the current database against the imported one, entry by
//! entry (hosts, host groups, users, classes, routes, the replica allow-list, Unix groups,
//! lockouts, password ages), for `gatehouse-admin import --dry-run`. Secrets are compared, never shown: a
//! changed node key or password hash is one word.
//!
//! Pure. Linear in the two databases' sizes (names are matched through a hash map).

use gatehouse_common::policy::{Database, Route};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What happens to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiffOp {
    Add,
    Remove,
    Change,
}

/// One entry the import adds, removes or changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffEntry {
    pub op: DiffOp,
    /// `host`, `host group`, `user`, `class`, `route`, `replica`, `unix group`, `lockout`,
    /// `password age`.
    pub kind: String,
    pub name: String,
    /// For a change, what changed (`groups: web -> web,db`, `node key changed`).
    pub details: Vec<String>,
}

/// Every difference from `old` to `new`, in the order above, names sorted within a kind.
pub fn diff(old: &Database, new: &Database) -> Vec<DiffEntry> {
    let mut out = Vec::new();
    let list = |v: &[String]| v.join(",");
    keyed(
        &mut out,
        "host",
        &old.hosts,
        &new.hosts,
        |h| &h.name,
        |a, b, d| {
            field(d, "addresses", list(&a.addresses), list(&b.addresses));
            field(d, "groups", list(&a.groups), list(&b.groups));
            if a.node_key != b.node_key {
                d.push("node key changed".into());
            }
            let asks = |v: bool| if v { "yes" } else { "no" }.to_string();
            field(
                d,
                "asks for others",
                asks(a.may_ask_for_others),
                asks(b.may_ask_for_others),
            );
        },
    );
    keyed(
        &mut out,
        "host group",
        &old.host_groups,
        &new.host_groups,
        |g| &g.name,
        |a, b, d| {
            let text = |v: &Option<String>| v.clone().unwrap_or_default();
            field(d, "description", text(&a.description), text(&b.description));
        },
    );
    keyed(
        &mut out,
        "user",
        &old.users,
        &new.users,
        |u| &u.name,
        |a, b, d| {
            match (a.password_hash.is_empty(), b.password_hash.is_empty()) {
                (true, false) => d.push("password set".into()),
                (false, true) => d.push("password removed".into()),
                _ if a.password_hash != b.password_hash => d.push("password changed".into()),
                _ => {}
            }
            field(d, "locked", a.locked.to_string(), b.locked.to_string());
            field(d, "classes", list(&a.classes), list(&b.classes));
            let unix = |u: &Option<gatehouse_common::policy::UnixAccount>| {
                u.as_ref().map_or("none".to_string(), |u| {
                    format!(
                        "uid={} gid={} home={} shell={}",
                        u.uid, u.gid, u.home, u.shell
                    )
                })
            };
            field(d, "unix", unix(&a.unix), unix(&b.unix));
        },
    );
    keyed(
        &mut out,
        "class",
        &old.user_classes,
        &new.user_classes,
        |c| &c.name,
        |_, _, _| {},
    );
    let (old_routes, new_routes) = (routes(old), routes(new));
    keyed(
        &mut out,
        "route",
        &old_routes,
        &new_routes,
        |r| &r.0,
        |a, b, d| {
            let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
            field(d, "window", text(&a.1.window), text(&b.1.window));
            field(d, "expires", text(&a.1.expires), text(&b.1.expires));
        },
    );
    keyed(
        &mut out,
        "replica",
        &old.replicas,
        &new.replicas,
        |r| r,
        |_, _, _| {},
    );
    keyed(
        &mut out,
        "unix group",
        &old.unix_groups,
        &new.unix_groups,
        |g| &g.name,
        |a, b, d| {
            field(d, "gid", a.gid.to_string(), b.gid.to_string());
            field(d, "members", list(&a.members), list(&b.members));
        },
    );
    keyed(
        &mut out,
        "lockout",
        &old.lockouts,
        &new.lockouts,
        |l| &l.user,
        |a, b, d| {
            field(d, "until", a.until.clone(), b.until.clone());
        },
    );
    keyed(
        &mut out,
        "password age",
        &old.password_records,
        &new.password_records,
        |r| &r.user,
        |a, b, d| {
            let time = |t: &Option<String>| t.clone().unwrap_or_else(|| "never".into());
            field(d, "expires", time(&a.expires), time(&b.expires));
            field(d, "warn_from", time(&a.warn_from), time(&b.warn_from));
            // Earlier hashes are secrets: only whether they changed.
            if a.history != b.history {
                d.push("password history changed".into());
            }
        },
    );
    out
}

/// Every route, named by its owner and rule (`user alice: SSH:*->alice@web1`).
fn routes(db: &Database) -> Vec<(String, Route)> {
    super::lists::all_routes(db)
        .into_iter()
        .map(|e| (format!("{}: {}", e.target, e.route.rule), e.route))
        .collect()
}

fn field(details: &mut Vec<String>, name: &str, old: String, new: String) {
    if old != new {
        details.push(format!("{name}: {old} -> {new}"));
    }
}

/// Adds the entries of one kind: removed and changed in `old`'s order, then added; each
/// group sorted by name.
fn keyed<T>(
    out: &mut Vec<DiffEntry>,
    kind: &str,
    old: &[T],
    new: &[T],
    name: impl Fn(&T) -> &String,
    details: impl Fn(&T, &T, &mut Vec<String>),
) {
    let new_by_name: HashMap<&String, &T> = new.iter().map(|t| (name(t), t)).collect();
    let old_by_name: HashMap<&String, &T> = old.iter().map(|t| (name(t), t)).collect();
    let entry = |op, n: &String, details| DiffEntry {
        op,
        kind: kind.to_string(),
        name: n.clone(),
        details,
    };
    let mut found = Vec::new();
    for item in old {
        match new_by_name.get(name(item)) {
            None => found.push(entry(DiffOp::Remove, name(item), Vec::new())),
            Some(other) => {
                let mut d = Vec::new();
                details(item, other, &mut d);
                if !d.is_empty() {
                    found.push(entry(DiffOp::Change, name(item), d));
                }
            }
        }
    }
    for item in new {
        if !old_by_name.contains_key(name(item)) {
            found.push(entry(DiffOp::Add, name(item), Vec::new()));
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    out.extend(found);
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_common::policy::{Host, User};

    fn host(name: &str, key: &str, groups: &[&str]) -> Host {
        Host {
            name: name.into(),
            addresses: vec![],
            node_key: key.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            may_ask_for_others: false,
        }
    }

    fn user(name: &str, hash: &str, rules: &[&str]) -> User {
        User {
            name: name.into(),
            password_hash: hash.into(),
            locked: false,
            classes: vec![],
            routes: rules
                .iter()
                .map(|r| Route {
                    rule: r.to_string(),
                    window: None,
                    expires: None,
                })
                .collect(),
            unix: None,
        }
    }

    #[test]
    fn added_removed_and_changed_entries_are_listed_without_secrets() {
        let old = Database {
            hosts: vec![host("web1", "k1", &[]), host("old", "k2", &[])],
            users: vec![user("alice", "$argon2id$old", &["SSH:*->alice@web1"])],
            ..Database::default()
        };
        let new = Database {
            hosts: vec![host("web1", "k9", &["web"]), host("web2", "k3", &[])],
            users: vec![user("alice", "$argon2id$new", &["SSH:*->alice@web*"])],
            replicas: vec!["web2".into()],
            password_records: vec![gatehouse_common::policy::PasswordRecord {
                user: "alice".into(),
                set_at: None,
                expires: Some("2027-01-01T00:00:00Z".into()),
                warn_from: None,
                history: vec!["$argon2id$old".into()],
            }],
            ..Database::default()
        };
        let lines: Vec<String> = diff(&old, &new)
            .iter()
            .map(|e| format!("{:?} {} {} {:?}", e.op, e.kind, e.name, e.details))
            .collect();
        assert_eq!(
            lines,
            [
                "Remove host old []",
                "Change host web1 [\"groups:  -> web\", \"node key changed\"]",
                "Add host web2 []",
                "Change user alice [\"password changed\"]",
                "Add route user `alice`: SSH:*->alice@web* []",
                "Remove route user `alice`: SSH:*->alice@web1 []",
                "Add replica web2 []",
                "Add password age alice []",
            ]
        );
        let text = format!("{:?}", diff(&old, &new));
        assert!(!text.contains("k9") && !text.contains("argon2id"), "{text}");
        assert!(diff(&new, &new).is_empty());
    }
}
