//! The admin's lists and shows against a real master: every kind (hosts, host groups,
//! classes, users, routes, replicas) as text and as JSON, never a node key or a password
//! hash; changing a user's classes; import --dry-run's diff; export refusing to overwrite;
//! the warning for a route to a misspelt host; Unix name rules for users; and the README's
//! fleet steps in the README's order.

use gatehouse_tests::admin::Admin;

/// A small fleet: two hosts in `web`, a replica host, users with a class and a password.
fn fleet(a: &Admin) -> (String, String) {
    a.ok(&["group", "add", "web", "--description", "front ends"]);
    a.ok(&["class", "add", "ops"]);
    let key1 = a.path("web1.key");
    let key2 = a.path("r1.key");
    a.ok(&["host", "add", "web1", "--group", "web", "--key-file", &key1]);
    a.ok(&[
        "host",
        "add",
        "r1",
        "--address",
        "10.0.0.9",
        "--key-file",
        &key2,
    ]);
    a.ok(&["replica", "add", "r1"]);
    a.ok(&["user", "add", "alice", "--class", "ops"]);
    a.ok(&["user", "add", "bob"]);
    let run = gatehouse_tests::admin::run_admin_on(
        &a.files.socket,
        &["user", "passwd", "alice"],
        "correct horse\n",
    );
    assert_eq!(run.code, 0, "{run:?}");
    a.ok(&["route", "add", "--class", "ops", "SUDO:+web->root@+web"]);
    a.ok(&["route", "add", "--user", "bob", "SSH:*->bob@web1"]);
    let keys = (
        std::fs::read_to_string(&key1).unwrap(),
        std::fs::read_to_string(&key2).unwrap(),
    );
    (keys.0.trim().to_string(), keys.1.trim().to_string())
}

#[test]
fn every_kind_lists_and_shows_as_text_and_json_without_secrets() {
    let a = Admin::start();
    let (key1, key2) = fleet(&a);
    let mut everything = String::new();
    let mut check = |args: &[&str], want: &[&str]| {
        let out = a.ok(args);
        for w in want {
            assert!(out.contains(w), "{args:?} lacks {w:?}:\n{out}");
        }
        let mut json_args = args.to_vec();
        json_args.push("--json");
        let json = a.ok(&json_args);
        let value: serde_json::Value = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("{args:?} --json is not JSON ({e}): {json}"));
        assert!(!value.is_null(), "{args:?}");
        everything.push_str(&out);
        everything.push_str(&json);
    };
    check(
        &["host", "list"],
        &[
            "web1\taddresses=\tgroups=web",
            "r1\taddresses=10.0.0.9\tgroups=\treplica",
        ],
    );
    check(
        &["host", "show", "web1"],
        &[
            "host: web1\n",
            "groups: web\n",
            "replica: no\n",
            "  class ops\tSUDO:+web->root@+web",
            "  user bob\tSSH:*->bob@web1",
        ],
    );
    check(
        &["group", "list"],
        &["web\thosts=web1\tdescription=front ends"],
    );
    check(
        &["group", "show", "web"],
        &[
            "group: web\n",
            "hosts: web1\n",
            "  class ops\tSUDO:+web->root@+web",
        ],
    );
    check(&["class", "list"], &["ops\tusers=alice\troutes=1"]);
    check(
        &["class", "show", "ops"],
        &["class: ops\n", "users: alice\n", "SUDO:+web->root@+web"],
    );
    check(
        &["user", "list"],
        &[
            "alice\tclasses=ops\troutes=0\tpassword=set\tuid=-",
            "bob\tclasses=\troutes=1\tpassword=none",
        ],
    );
    check(
        &["user", "show", "alice"],
        &["user: alice\n", "password: set\n", "classes: ops\n"],
    );
    check(
        &["route", "list"],
        &[
            "user bob\tSSH:*->bob@web1",
            "class ops\tSUDO:+web->root@+web",
        ],
    );
    check(
        &["route", "show", "--user", "bob", "SSH:*->bob@web1"],
        &["user bob\tSSH:*->bob@web1"],
    );
    check(&["replica", "list"], &["r1\t"]);
    check(&["replica", "show", "r1"], &["r1\t"]);
    assert!(
        !everything.contains(&key1) && !everything.contains(&key2),
        "a node key was shown"
    );
    assert!(!everything.contains("argon2"), "a password hash was shown");

    let json = a.ok(&["user", "list", "--json"]);
    let users: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(users[0]["name"], "alice");
    assert_eq!(users[0]["has_password"], true);
    assert_eq!(users[1]["classes"], serde_json::json!([]));

    a.refused(&["host", "show", "nosuch"], "unknown host `nosuch`");
    a.refused(&["group", "show", "nosuch"], "unknown host group `nosuch`");
    a.refused(&["class", "show", "nosuch"], "unknown class `nosuch`");
    a.refused(
        &["replica", "show", "web1"],
        "`web1` is not on the replica allow-list",
    );
    a.refused(
        &["route", "show", "--user", "bob", "SSH:*->bob@db9"],
        "has no route `SSH:*->bob@db9`",
    );
}

#[test]
fn a_users_classes_change_after_user_add() {
    let a = Admin::start();
    fleet(&a);
    a.ok(&["class", "add", "admins"]);
    a.ok(&[
        "user",
        "set-classes",
        "bob",
        "--class",
        "ops",
        "--class",
        "admins",
    ]);
    assert!(a
        .ok(&["user", "show", "bob"])
        .contains("classes: ops, admins\n"));
    a.ok(&["user", "set-classes", "bob"]);
    assert!(a.ok(&["user", "show", "bob"]).contains("classes: \n"));
    a.refused(
        &["user", "set-classes", "bob", "--class", "nope"],
        "unknown user class `nope`",
    );
    a.refused(
        &["user", "set-classes", "nobody", "--class", "ops"],
        "unknown user `nobody`",
    );
}

#[test]
fn user_names_follow_unix_rules_and_routes_to_unknown_hosts_are_warned_about() {
    let a = Admin::start();
    fleet(&a);
    a.refused(
        &["user", "add", "bad name"],
        "user name: `bad name` is not a valid Unix name (1-32 bytes of a-z, 0-9, _, . or -",
    );
    a.refused(&["user", "add", "--", "-x"], "not a valid Unix name");
    a.refused(&["user", "add", "1234"], "not a valid Unix name");
    a.ok(&["user", "add", "carol.d-2"]);

    // A misspelt host is accepted (a wildcard or a host added later may match) with a warning
    // on stderr; stdout stays the usual line for scripts.
    let run = a.run(&["route", "add", "--user", "bob", "SSH:*->bob@wbe1"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("ok (sequence "), "{run:?}");
    assert!(
        run.stderr
            .contains("warning: route `SSH:*->bob@wbe1`: `wbe1` matches no registered host"),
        "{run:?}"
    );
    let quiet = a.run(&["route", "add", "--user", "bob", "SSH:*->bob@web*"]);
    assert_eq!((quiet.code, quiet.stderr.as_str()), (0, ""), "{quiet:?}");
    let shown = a.ok(&["route", "show", "--user", "bob", "SSH:*->bob@wbe1"]);
    assert!(
        shown.contains("warning: route `SSH:*->bob@wbe1`"),
        "{shown}"
    );
    a.ok(&["group", "add", "empty"]);
    let run = a.run(&["route", "add", "--user", "bob", "SSH:*->bob@+empty"]);
    assert!(
        run.stderr.contains("host group `+empty` has no hosts yet"),
        "{run:?}"
    );
}

#[test]
fn import_dry_run_prints_the_diff_and_changes_nothing_and_export_needs_force() {
    let a = Admin::start();
    let (key1, _) = fleet(&a);
    let export = a.path("db.ron");
    a.ok(&["export", "--out", &export]);
    let before = gatehouse_tests::admin::status(&a.files).sequence;
    let run = a.run(&["export", "--out", &export]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("exists: give --force to overwrite it"),
        "{run:?}"
    );
    assert!(a
        .ok(&["export", "--out", &export, "--force"])
        .starts_with("exported sequence"));

    let same = a.ok(&["import", &export, "--dry-run"]);
    assert_eq!(same, "no changes: the file holds the database as it is\n");
    // Edit the export: bob goes, dave comes, web1 gets a new key.
    let text = std::fs::read_to_string(&export).unwrap();
    let new_key = "a".repeat(63) + "b";
    let edited = text
        .replace("name: \"bob\"", "name: \"dave\"")
        .replace(&key1, &new_key);
    assert_ne!(edited, text);
    std::fs::write(&export, edited).unwrap();
    let diff = a.ok(&["import", &export, "--dry-run"]);
    for line in [
        "~ host web1: node key changed\n",
        "- user bob\n",
        "+ user dave\n",
        "- route user `bob`: SSH:*->bob@web1\n",
        "+ route user `dave`: SSH:*->bob@web1\n",
        "would add 2, remove 2, change 1 (dry run: nothing changed)",
    ] {
        assert!(diff.contains(line), "{line:?} not in:\n{diff}");
    }
    assert!(!diff.contains(&new_key) && !diff.contains(&key1), "{diff}");
    let json = a.ok(&["import", &export, "--dry-run", "--json"]);
    let entries: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 5, "{json}");
    assert_eq!(
        gatehouse_tests::admin::status(&a.files).sequence,
        before,
        "a dry run changed nothing"
    );
    // A file the commit would refuse is refused by the dry run with the same message.
    std::fs::write(&export, "(users: [User(name: \"x\", classes: [\"nope\"])])").unwrap();
    a.refused(
        &["import", &export, "--dry-run"],
        "user `x`: unknown user class `nope`",
    );
}

#[test]
fn the_readme_fleet_steps_work_in_the_readme_order() {
    let a = Admin::start();
    let key = a.path("web1.key");
    // README, "Running a fleet", step 2.
    a.ok(&["group", "add", "web"]);
    a.ok(&["host", "add", "web1", "--group", "web", "--key-file", &key]);
    a.ok(&["user", "add", "alice"]);
    let run = gatehouse_tests::admin::run_admin_on(
        &a.files.socket,
        &["user", "passwd", "alice"],
        "correct horse battery\n",
    );
    assert_eq!(run.code, 0, "{run:?}");
    a.ok(&["route", "add", "--user", "alice", "SSH:10.0.*->alice@+web"]);
    assert!(a
        .ok(&["check", "SSH", "10.0.3.4", "alice", "alice", "web1"])
        .starts_with("Allow"));
    // Step 3.
    let replica_key = a.path("replica1.key");
    a.ok(&["host", "add", "replica1", "--key-file", &replica_key]);
    a.ok(&["replica", "add", "replica1"]);
    // The other order is refused with what to do.
    a.refused(
        &[
            "host",
            "add",
            "web2",
            "--group",
            "db",
            "--key-file",
            &a.path("web2.key"),
        ],
        "unknown host group `db`: create it first with `gatehouse-admin group add db`",
    );
}
