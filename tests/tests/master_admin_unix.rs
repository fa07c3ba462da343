//! Unix identities through `gatehouse-admin` against a real master: ids assigned from the
//! configured range or checked against it, uniqueness, groups and members, `user show`,
//! export and import; and a replica answering identity lookups for what the admin set.

use gatehouse_common::identity::{GroupEntry, Lookup, PasswdEntry};
use gatehouse_common::wire::{Request, Response};
use gatehouse_tests::admin::Admin;
use gatehouse_tests::replication::{Cluster, ReplicaStatus};
use gatehouse_tests::*;

#[test]
fn identities_are_assigned_checked_shown_and_exported() {
    let a = Admin::start();
    a.ok(&["user", "add", "alice"]);
    a.ok(&["user", "add", "bob"]);
    // No uid given: the lowest free one in the default range; gid = uid, home and shell default.
    assert_eq!(
        a.ok(&["user", "unix", "alice"]),
        "ok (sequence 3, uid 100000)\n"
    );
    a.refused(
        &["user", "unix", "bob", "--uid", "100000"],
        "uid 100000 is used by both `alice` and `bob`",
    );
    a.refused(
        &["user", "unix", "bob", "--uid", "1000"],
        "uid 1000 is outside the master's range 100000..=199999",
    );
    a.refused(
        &["user", "unix", "bob", "--shell", "bash"],
        "must be an absolute path",
    );
    a.refused(
        &["user", "unix", "bob", "--gecos", "a:b"],
        "must not contain `:`",
    );
    a.refused(&["user", "unix", "carol"], "unknown user `carol`");
    a.usage(
        &["user", "unix", "bob", "--uid", "x"],
        "invalid value 'x' for '--uid <N>'",
    );
    assert_eq!(
        a.ok(&[
            "user",
            "unix",
            "bob",
            "--gecos",
            "Bob B",
            "--shell",
            "/bin/bash"
        ]),
        "ok (sequence 4, uid 100001)\n"
    );
    // Changing one field keeps the others.
    a.ok(&["user", "unix", "bob", "--home", "/srv/bob"]);

    assert_eq!(
        a.ok(&["unixgroup", "add", "ops"]),
        "ok (sequence 6, gid 100000)\n"
    );
    a.ok(&["unixgroup", "add", "dev", "--gid", "100500"]);
    a.refused(
        &["unixgroup", "add", "qa", "--gid", "100500"],
        "gid 100500 is used by both",
    );
    a.refused(
        &["unixgroup", "add", "qa", "--gid", "0"],
        "outside the master's range",
    );
    a.ok(&["unixgroup", "member", "add", "ops", "alice"]);
    a.ok(&["unixgroup", "member", "add", "ops", "bob"]);
    a.refused(
        &["unixgroup", "member", "add", "ops", "carol"],
        "member `carol` is not a user",
    );
    a.refused(
        &["user", "remove", "bob"],
        "user `bob` is still used by unix group `ops`",
    );
    assert_eq!(
        a.ok(&["unixgroup", "list"]),
        "ops\tgid=100000\tmembers=alice,bob\ndev\tgid=100500\tmembers=\n"
    );
    assert_eq!(
        a.ok(&["user", "show", "bob"]),
        "user: bob\nlocked: no\nlocked out: no\nwrong passwords: 0\npassword: none\n\
         classes: \nroutes: 0\n\
         unix: uid=100001 gid=100001 gecos=\"Bob B\" home=/srv/bob shell=/bin/bash\n\
         unix groups: ops\n"
    );

    // Export and import carry identities unchanged.
    let export = a.path("export.ron");
    a.ok(&["export", "--out", &export]);
    let text = std::fs::read_to_string(&export).unwrap();
    assert!(
        text.contains("100001") && text.contains("unix_groups"),
        "{text}"
    );
    a.ok(&["unixgroup", "remove", "dev"]);
    a.refused(
        &["user", "unix-remove", "alice"],
        "unix group `ops`: member `alice` has no Unix identity",
    );
    a.ok(&["unixgroup", "member", "remove", "ops", "alice"]);
    a.ok(&["user", "unix-remove", "alice"]);
    assert!(a.ok(&["user", "show", "alice"]).contains("unix: (none)"));
    a.ok(&["import", &export]);
    assert!(a.ok(&["unixgroup", "list"]).contains("dev\tgid=100500"));
    assert!(a
        .ok(&["user", "show", "alice"])
        .contains("unix: uid=100000"));
}

#[test]
fn a_replica_answers_identity_lookups_for_what_the_admin_set() {
    let cluster = Cluster::start(&["r1"]);
    cluster.admin_ok(&[
        "user", "unix", "alice", "--uid", "100042", "--gecos", "Alice",
    ]);
    cluster.admin_ok(&["unixgroup", "add", "ops", "--gid", "100100"]);
    cluster.admin_ok(&["unixgroup", "member", "add", "ops", "alice"]);
    let replica = cluster.start_replica("r1");
    let seq = cluster.sequence();
    ReplicaStatus::wait_for(&cluster.replica_dir("r1"), "in sync", |s| s.applied == seq);
    let web1 = TestHost {
        name: "web1".into(),
        key: cluster.key("web1"),
    };
    let mut agent = Client::connect(replica.addr, &web1).unwrap();
    let mut ask = |lookup: Lookup| agent.request(1, Request::Lookup(lookup)).unwrap();
    let alice = PasswdEntry {
        name: "alice".into(),
        uid: 100_042,
        gid: 100_042,
        gecos: "Alice".into(),
        home: "/home/alice".into(),
        shell: "/bin/sh".into(),
    };
    assert_eq!(
        ask(Lookup::UserByName("alice".into())),
        Response::User(alice.clone().into())
    );
    assert_eq!(
        ask(Lookup::UserByUid(100_042)),
        Response::User(alice.into())
    );
    let ops = GroupEntry {
        name: "ops".into(),
        gid: 100_100,
        members: vec!["alice".into()],
    };
    assert_eq!(
        ask(Lookup::GroupByGid(100_100)),
        Response::Group(ops.into())
    );
    assert_eq!(
        ask(Lookup::GroupsOfUser("alice".into())),
        Response::Groups(vec![100_100].into())
    );
    assert_eq!(ask(Lookup::UserByName("root".into())), Response::NotFound);
    // A change on the master reaches the replica's answers.
    cluster.admin_ok(&["unixgroup", "member", "remove", "ops", "alice"]);
    let seq = cluster.sequence();
    ReplicaStatus::wait_for(&cluster.replica_dir("r1"), "the removal", |s| {
        s.applied == seq
    });
    assert_eq!(
        ask(Lookup::GroupsOfUser("alice".into())),
        Response::Groups(Vec::new().into())
    );
}
