//! Compile-time checks of the policy engine and the shipped example database. Request-level
//! behaviour is covered by the table-driven fixtures in common/tests/policy_fixtures.rs.

use super::*;
use crate::config::parse_ron;
use crate::types::{AuthFailure, DenyReason, Method};
use crate::wire::{AuthenticateRequest, AuthorizeRequest};
use std::path::Path;

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn compile(ron: &str) -> Result<PolicySnapshot, PolicyError> {
    let db: Database = parse_ron(Path::new("test.ron"), ron).unwrap();
    PolicySnapshot::compile(&db)
}

fn base(extra_users: &str) -> String {
    format!(
        r#"(
            hosts: [Host(name: "web1", addresses: ["10.0.0.5"], node_key: "{KEY}", groups: ["web"])],
            host_groups: [HostGroup(name: "web")],
            user_classes: [UserClass(name: "ops", routes: [Route(rule: "SSH:*->*@+web")])],
            users: [{extra_users}],
        )"#
    )
}

fn err(ron: &str) -> String {
    compile(ron).unwrap_err().to_string()
}

#[test]
fn compile_errors_name_the_owner_and_the_text() {
    let cases = [
        (
            r#"User(name: "al", routes: [Route(rule: "SSH:*->al@+mail")])"#,
            "user `al`: rule `SSH:*->al@+mail`: unknown host group `mail`",
        ),
        (
            r#"User(name: "al", routes: [Route(rule: "SSH:*->al@*", window: Some("Mon-Fry"))])"#,
            "user `al`: window `Mon-Fry`: unknown weekday `Fry` (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)",
        ),
        (
            r#"User(name: "al", routes: [Route(rule: "SSH:*->al@*", expires: Some("2027-02-30"))])"#,
            "user `al`: expires `2027-02-30`: day out of range",
        ),
        (
            r#"User(name: "al", classes: ["ops", "dba"])"#,
            "user `al`: unknown user class `dba`",
        ),
        (
            r#"User(name: "al"), User(name: "al")"#,
            "user `al` is defined twice",
        ),
        (r#"User(name: "")"#, "user with an empty name"),
    ];
    for (users, expected) in cases {
        assert_eq!(err(&base(users)), expected);
    }
}

#[test]
fn class_and_host_errors_name_them() {
    let bad_class = base("").replace("SSH:*->*@+web", "RSH:*->*@+web");
    assert_eq!(
        err(&bad_class),
        "class `ops`: rule `RSH:*->*@+web`: unknown method `RSH` (use LOGIN, SSH, SU, SUDO or *)"
    );
    let bad_key = base("").replace(KEY, "abc");
    assert_eq!(
        err(&bad_key),
        "host `web1`: bad node key: expected 64 hex digits, found 3"
    );
    let bad_group = base("").replace(r#"groups: ["web"]"#, r#"groups: ["db"]"#);
    assert_eq!(err(&bad_group), "host `web1`: unknown host group `db`");
    let shared_address = base("").replace(
        "hosts: [",
        &format!(r#"hosts: [Host(name: "web0", addresses: ["10.0.0.5"], node_key: "{KEY}"), "#),
    );
    assert_eq!(
        err(&shared_address),
        "address `10.0.0.5` is listed by both host `web0` and host `web1`"
    );
}

#[test]
fn node_keys_map_every_host_name_to_its_key() {
    let snapshot = compile(&base("")).unwrap();
    let keys = snapshot.node_keys();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys.get("web1").map(|k| k.to_hex()).as_deref(), Some(KEY));
}

#[test]
fn a_host_asks_only_about_itself_unless_allowed_to_ask_for_others() {
    let key2 = KEY.replace("00", "ff");
    let snapshot = compile(&format!(
        r#"(hosts: [
            Host(name: "web1", node_key: "{KEY}"),
            Host(name: "jump1", node_key: "{key2}", may_ask_for_others: true),
        ])"#
    ))
    .unwrap();
    assert!(snapshot.may_ask_for("web1", "web1"));
    assert!(!snapshot.may_ask_for("web1", "jump1"));
    assert!(!snapshot.may_ask_for("web1", "db1"), "unknown hosts alike");
    assert!(snapshot.may_ask_for("jump1", "web1"));
    assert!(
        snapshot.may_ask_for("jump1", "db1"),
        "the policy then says unknown"
    );
    assert!(
        !snapshot.may_ask_for("gone", "web1"),
        "a host removed meanwhile"
    );
}

#[test]
fn a_decision_becomes_the_wire_response() {
    use crate::wire::Response;
    let allow = Decision::Allow { route: "r".into() };
    assert_eq!(Response::from(allow), Response::Allow { route: "r".into() });
    let deny = Decision::Deny {
        reason: DenyReason::Locked,
    };
    assert_eq!(
        Response::from(deny),
        Response::Deny {
            reason: DenyReason::Locked
        }
    );
}

fn example() -> PolicySnapshot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/example-db.ron");
    let db = Database::load(&path).unwrap_or_else(|e| panic!("{e}"));
    PolicySnapshot::compile(&db).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_example_database_compiles_and_says_what_its_comments_say() {
    let snapshot = example();
    assert_eq!(snapshot.node_keys().len(), 3);
    // Monday 2026-11-23 10:00 UTC: inside alice's office-hours window.
    let monday = PolicyTime::parse_utc("2026-11-23T10:00:00Z").unwrap();
    // SSH comes in from an office address; sudo happens on the host itself.
    let ask = |method, from_user: &str, to_user: &str, to_host: &str| AuthorizeRequest::<String> {
        method,
        from_host: if method == Method::Sudo {
            to_host
        } else {
            "10.0.0.99"
        }
        .into(),
        from_user: from_user.into(),
        to_user: to_user.into(),
        to_host: to_host.into(),
    };
    let allow = |route: &str| Decision::Allow {
        route: route.into(),
    };
    assert_eq!(
        snapshot.authorize(&ask(Method::Ssh, "", "alice", "web1"), monday),
        allow("SSH:10.0.*->*@+web [class ops]")
    );
    assert_eq!(
        snapshot.authorize(&ask(Method::Sudo, "alice", "root", "web2"), monday),
        allow("SUDO:+web->root@+web [class ops]")
    );
    let saturday = PolicyTime::parse_utc("2026-11-28T10:00:00Z").unwrap();
    assert_eq!(
        snapshot.authorize(&ask(Method::Sudo, "alice", "root", "web2"), saturday),
        Decision::Deny {
            reason: DenyReason::OutsideTimeWindow
        }
    );
    assert_eq!(
        snapshot.authorize(&ask(Method::Ssh, "", "alice", "db1"), monday),
        allow("SSH:10.0.*->alice@db1")
    );
    let next_year = PolicyTime::parse_utc("2027-01-01").unwrap();
    assert_eq!(
        snapshot.authorize(&ask(Method::Ssh, "", "alice", "db1"), next_year),
        Decision::Deny {
            reason: DenyReason::Expired
        }
    );
    assert_eq!(
        snapshot.authorize(&ask(Method::Ssh, "", "root", "web1"), monday),
        Decision::Deny {
            reason: DenyReason::NoMatchingRoute
        }
    );
    assert_eq!(
        snapshot.authorize(&ask(Method::Ssh, "", "bob", "web1"), monday),
        Decision::Deny {
            reason: DenyReason::Locked
        }
    );
    assert_eq!(
        snapshot.authorize(&ask(Method::Ssh, "", "alice", "mail1"), monday),
        Decision::Deny {
            reason: DenyReason::UnknownHost
        }
    );
    let login = |user: &str, password: &str| AuthenticateRequest::<String> {
        user: user.into(),
        password: password.into(),
        host: "web1".into(),
    };
    assert_eq!(
        snapshot.authenticate(&login("alice", "correct horse")),
        Ok(())
    );
    assert_eq!(
        snapshot.authenticate(&login("alice", "battery staple")),
        Err(AuthFailure::BadPassword)
    );
}

#[test]
fn a_snapshot_can_be_shared_by_worker_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<PolicySnapshot>();
}

#[test]
fn every_failed_password_costs_one_argon2_run_at_the_database_cost() {
    use super::password::runs;
    use rand::{rngs::StdRng, SeedableRng};
    let hash = |pw| hash_password(pw, &mut StdRng::seed_from_u64(9), HashCost::Fast).unwrap();
    let (alice, bob) = (hash("right"), hash("bobs"));
    let snapshot = compile(&base(&format!(
        r#"User(name: "alice", password_hash: "{alice}"),
           User(name: "bob", password_hash: "{bob}", locked: true),
           User(name: "carol"),
           User(name: "mallory", password_hash: "not-a-phc-string")"#
    )))
    .unwrap();
    let login = |user: &str, password: &str, host: &str| AuthenticateRequest::<String> {
        user: user.into(),
        password: password.into(),
        host: host.into(),
    };
    runs::take();
    let cases = [
        (login("alice", "right", "web1"), Ok(())),
        (
            login("alice", "wrong", "web1"),
            Err(AuthFailure::BadPassword),
        ),
        (
            login("ghost", "right", "web1"),
            Err(AuthFailure::UnknownUser),
        ),
        (login("bob", "bobs", "web1"), Err(AuthFailure::Locked)),
        (login("bob", "wrong", "web1"), Err(AuthFailure::Locked)),
        (login("carol", "", "web1"), Err(AuthFailure::BadPassword)),
        (login("mallory", "x", "web1"), Err(AuthFailure::BadPassword)),
        (
            login("alice", "right", "nohost"),
            Err(AuthFailure::UnknownHost),
        ),
        (login("ghost", "x", "nohost"), Err(AuthFailure::UnknownHost)),
    ];
    for (request, want) in cases {
        assert_eq!(snapshot.authenticate(&request), want, "{}", request.user);
        // One computation, at the cost of the database's hashes (Fast: 1024 KiB), whatever
        // the outcome: the time taken is no oracle.
        assert_eq!(runs::take(), [1024], "{} -> {want:?}", request.user);
    }
}
