//! Generated security databases for scale tests and benchmarks: `n` users, `n` hosts and
//! `2n` routes, shaped like a real fleet — every user with a Unix identity, a unique-looking
//! password hash, one class and two routes (one to a host pattern, one to a host group); hosts
//! with an address and a group; a hundred host groups, ten classes with routes of their own.
//!
//! Pure and deterministic (no RNG: entity `i` is a function of `i`). Used by the database
//! scale test (`tests/tests/db_scale.rs`) and `gatehouse-dbgen` (scripts/bench-database.sh).

use gatehouse_common::policy::{Database, Host, HostGroup, Route, UnixAccount, User, UserClass};

/// Host groups in a generated database (100): hosts are spread over them, routes name them.
pub const GROUPS: usize = 100;
/// User classes (10), each with two routes of its own; every user is in one.
pub const CLASSES: usize = 10;
/// The first generated uid (200000): above the users the other tests and the loadgen make.
pub const FIRST_UID: u32 = 200_000;

/// A password hash shaped like a real argon2id PHC string (same length and cost field), made
/// unique per user so the database holds as many distinct strings as a real one. It does not
/// verify any password: generated users are for size, not for logins.
fn hash(i: usize) -> String {
    let salt = format!("{i:022x}");
    let digest = format!("{:043x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    format!("$argon2id$v=19$m=19456,t=2,p=1${salt}${}", &digest[..43])
}

/// A node key (64 hex digits) unique per host and never a published or all-zero one.
fn key(i: usize) -> String {
    format!(
        "{:032x}{:032x}",
        i as u128 + 1,
        (i as u128 + 7).wrapping_mul(0x517c_c1b7_2722_0a95)
    )
}

fn group(i: usize) -> String {
    format!("grp{:03}", i % GROUPS)
}

/// `base` (kept first, as it is) plus `n` generated users, `n` hosts and `2n` routes.
pub fn fleet(n: usize, base: &Database) -> Database {
    let mut db = base.clone();
    db.host_groups.extend((0..GROUPS).map(|g| HostGroup {
        name: group(g),
        description: Some(format!("generated group {g}")),
    }));
    db.user_classes.extend((0..CLASSES).map(|c| UserClass {
        name: format!("class{c}"),
        routes: vec![
            Route {
                rule: format!("SSH:*->*@+{}", group(c)),
                window: Some("Mon-Fri 07:00-19:00".into()),
                expires: None,
            },
            Route {
                rule: format!("SUDO:*@+{}->root@+{}", group(c), group(c)),
                window: None,
                expires: None,
            },
        ],
    }));
    db.hosts.extend((0..n).map(|i| Host {
        name: format!("host{i:07}"),
        addresses: vec![format!(
            "10.{}.{}.{}",
            64 + i / 65536 % 64,
            i / 256 % 256,
            i % 256
        )],
        node_key: key(i),
        groups: vec![group(i)],
        may_ask_for_others: false,
    }));
    db.users.extend((0..n).map(|i| {
        let name = format!("user{i:07}");
        User {
            password_hash: hash(i),
            locked: i % 97 == 0,
            classes: vec![format!("class{}", i % CLASSES)],
            routes: vec![
                Route {
                    rule: format!("SSH:*->{name}@host{:04}*", i / 1000),
                    window: None,
                    expires: None,
                },
                Route {
                    rule: format!("LOGIN,SU:*->{name}@+{}", group(i / 7)),
                    window: None,
                    expires: None,
                },
            ],
            unix: Some(UnixAccount {
                uid: FIRST_UID + i as u32,
                gid: FIRST_UID + i as u32,
                gecos: format!("Generated User {i}"),
                home: format!("/home/{name}"),
                shell: "/bin/bash".into(),
            }),
            name,
        }
    }));
    db
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_common::policy::PolicySnapshot;

    #[test]
    fn a_generated_fleet_compiles_with_the_promised_sizes() {
        let db = fleet(1000, &Database::default());
        let snapshot = PolicySnapshot::compile(&db).unwrap();
        assert_eq!(snapshot.user_count(), 1000);
        assert_eq!(snapshot.host_count(), 1000);
        assert_eq!(snapshot.route_count(), 2000 + 2 * CLASSES);
        assert_eq!(hash(5).len(), hash(123_456).len());
        assert_ne!(key(1), key(2));
    }
}
