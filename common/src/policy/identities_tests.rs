//! Unix identities in a compiled database: lookups by name and id, a user's groups, and the
//! compile errors for every rule (syntax, reserved and duplicate ids, members).

use super::super::*;
use crate::config::parse_ron;
use crate::identity::Lookup;
use crate::wire::Response;
use std::path::Path;

fn db(users: &str, groups: &str) -> Database {
    let text = format!(r#"(users: [{users}], unix_groups: [{groups}])"#);
    parse_ron(Path::new("test.ron"), &text).unwrap()
}

fn account(uid: u32) -> String {
    format!(
        r#"Some(UnixAccount(uid: {uid}, gid: {uid}, gecos: "U {uid}", home: "/home/u{uid}", shell: "/bin/sh"))"#
    )
}

fn user(name: &str, uid: u32) -> String {
    format!(r#"User(name: "{name}", unix: {})"#, account(uid))
}

fn err(users: &str, groups: &str) -> String {
    PolicySnapshot::compile(&db(users, groups))
        .unwrap_err()
        .to_string()
}

#[test]
fn lookups_answer_from_the_index_and_not_found_otherwise() {
    let users =
        [user("alice", 100_001), user("bob", 100_002)].join(",") + r#", User(name: "root")"#;
    let groups = r#"UnixGroup(name: "ops", gid: 100100, members: ["alice", "bob"]),
                    UnixGroup(name: "dev", gid: 100200, members: ["bob"])"#;
    let snap = PolicySnapshot::compile(&db(&users, groups)).unwrap();
    let Response::User(alice) = snap.lookup(&Lookup::UserByName("alice")) else {
        panic!("alice not found")
    };
    assert_eq!(
        (alice.uid, alice.gid, alice.home.as_str()),
        (100_001, 100_001, "/home/u100001")
    );
    assert_eq!(snap.lookup(&Lookup::<&str>::UserByUid(100_002)), {
        let Response::User(bob) = snap.lookup(&Lookup::UserByName("bob")) else {
            panic!()
        };
        Response::User(bob)
    });
    let Response::Group(ops) = snap.lookup(&Lookup::<&str>::GroupByGid(100_100)) else {
        panic!("ops not found")
    };
    assert_eq!(ops.members, ["alice", "bob"]);
    assert_eq!(
        snap.lookup(&Lookup::GroupsOfUser("bob")),
        Response::Groups(vec![100_100, 100_200].into())
    );
    assert_eq!(
        snap.lookup(&Lookup::GroupsOfUser("alice")),
        Response::Groups(vec![100_100].into())
    );
    // root is a Gatehouse user without a Unix identity: NSS must not show it.
    for lookup in [
        Lookup::UserByName("root"),
        Lookup::GroupsOfUser("root"),
        Lookup::UserByName("nobody"),
        Lookup::GroupByName("alice"),
        Lookup::UserByUid(0),
        Lookup::GroupByGid(1),
    ] {
        assert_eq!(snap.lookup(&lookup), Response::NotFound, "{lookup:?}");
    }
}

#[test]
fn compile_refuses_bad_identities_naming_the_owner() {
    let a = user("alice", 100_001);
    let cases = [
        (
            format!("{a}, {}", user("bob", 100_001)),
            "",
            "uid 100001 is used by both `alice` and `bob`",
        ),
        (
            user("al:ice", 100_001),
            "",
            "user `al:ice`: `al:ice` is not a valid Unix name",
        ),
        (user("alice", 0), "", "user `alice`: id 0 is reserved"),
        (
            r#"User(name: "al", unix: Some(UnixAccount(uid: 5, gid: 5, home: "home", shell: "/bin/sh")))"#.into(),
            "",
            "user `al`: home `home` must be an absolute path",
        ),
        (
            a.clone(),
            r#"UnixGroup(name: "ops", gid: 7), UnixGroup(name: "dev", gid: 7)"#,
            "gid 7 is used by both `ops` and `dev`",
        ),
        (
            a.clone(),
            r#"UnixGroup(name: "ops", gid: 7), UnixGroup(name: "ops", gid: 8)"#,
            "unix group `ops` is defined twice",
        ),
        (
            a.clone(),
            r#"UnixGroup(name: "ops", gid: 7, members: ["carol"])"#,
            "unix group `ops`: member `carol` is not a user",
        ),
        (
            format!(r#"{a}, User(name: "root")"#),
            r#"UnixGroup(name: "ops", gid: 7, members: ["root"])"#,
            "unix group `ops`: member `root` has no Unix identity",
        ),
        (
            a.clone(),
            r#"UnixGroup(name: "ops", gid: 7, members: ["alice", "alice"])"#,
            "member `alice` of unix group `ops` is defined twice",
        ),
        (a.clone(), r#"UnixGroup(name: "ops", gid: 65535)"#, "unix group `ops`: id 65535 is reserved"),
    ];
    for (users, groups, expected) in cases {
        let got = err(&users, groups);
        assert!(got.starts_with(expected), "{got}\n  expected: {expected}");
    }
}

#[test]
fn a_user_private_group_may_share_the_user_s_name_and_id() {
    let users = user("alice", 100_001);
    let groups = r#"UnixGroup(name: "alice", gid: 100001, members: ["alice"])"#;
    let snap = PolicySnapshot::compile(&db(&users, groups)).unwrap();
    assert!(matches!(
        snap.lookup(&Lookup::GroupByName("alice")),
        Response::Group(_)
    ));
}
