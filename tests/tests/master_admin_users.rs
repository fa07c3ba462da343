//! `gatehouse-admin` user, class, route, password and check subcommands against a real master.

use gatehouse_tests::admin::{run_admin_on, Admin};

#[test]
fn users_classes_routes_and_check() {
    let a = Admin::start();
    a.ok(&["group", "add", "web"]);
    a.ok(&[
        "host",
        "add",
        "web1",
        "--group",
        "web",
        "--key-file",
        &a.path("k"),
    ]);
    a.ok(&["class", "add", "ops"]);
    a.refused(&["class", "add", "ops"], "class `ops` already exists");
    a.ok(&["user", "add", "alice"]);
    a.ok(&["user", "add", "bob", "--class", "ops"]);
    a.refused(&["user", "add", "bob"], "user `bob` already exists");
    a.refused(
        &["user", "add", "carol", "--class", "nope"],
        "user `carol`: unknown user class `nope`",
    );
    a.usage(
        &["user", "add"],
        "required arguments were not provided:\n  <NAME>",
    );

    a.ok(&[
        "route",
        "add",
        "--class",
        "ops",
        "SSH:*->*@+web",
        "--window",
        "Mon-Fri 08:00-18:00",
    ]);
    a.ok(&[
        "route",
        "add",
        "--user",
        "alice",
        "SSH:*->alice@web1",
        "--expires",
        "2099-01-01",
    ]);
    a.refused(
        &["route", "add", "--user", "alice", "SSH:*->alice@web1"],
        "user `alice` already has the route",
    );
    a.refused(
        &["route", "add", "--user", "alice", "SSH:*->alice@+nope"],
        "unknown host group `nope`",
    );
    a.refused(
        &["route", "add", "--user", "alice", "garbage"],
        "user `alice`: rule `garbage`",
    );
    a.refused(
        &[
            "route",
            "add",
            "--user",
            "alice",
            "SSH:*->a@web1",
            "--window",
            "Mon-Fry",
        ],
        "window `Mon-Fry`: unknown weekday `Fry`",
    );
    a.refused(
        &[
            "route",
            "add",
            "--user",
            "alice",
            "SSH:*->a@web1",
            "--expires",
            "soon",
        ],
        "expires `soon`",
    );
    a.refused(
        &["route", "add", "--user", "nobody", "SSH:*->a@web1"],
        "unknown user `nobody`",
    );
    a.usage(
        &["route", "add", "SSH:*->a@web1"],
        "<--user <U>|--class <C>>",
    );
    assert_eq!(
        a.ok(&["route", "list"]),
        "user alice\tSSH:*->alice@web1\texpires=2099-01-01\n\
         class ops\tSSH:*->*@+web\twindow=Mon-Fri 08:00-18:00\n"
    );
    assert_eq!(
        a.ok(&["route", "list", "--class", "ops"]),
        "class ops\tSSH:*->*@+web\twindow=Mon-Fri 08:00-18:00\n"
    );
    a.refused(
        &["route", "list", "--user", "nobody"],
        "unknown user `nobody`",
    );

    let monday = ["--at", "2026-03-02T09:00:00Z"];
    let saturday = ["--at", "2026-03-07T12:00:00Z"];
    let check = |user: &str, at: &[&str]| {
        let mut args = vec!["check", "SSH", "10.0.0.9", "x", user, "web1"];
        args.extend_from_slice(at);
        a.ok(&args)
    };
    assert_eq!(check("alice", &monday), "Allow\troute: SSH:*->alice@web1\n");
    assert_eq!(
        check("bob", &monday),
        "Allow\troute: SSH:*->*@+web [class ops]\n"
    );
    assert_eq!(
        check("bob", &saturday),
        "Deny\treason: outside_time_window\n"
    );
    assert_eq!(check("nobody", &monday), "Deny\treason: unknown_user\n");
    a.usage(
        &["check", "SSH", "h", "x", "bob", "web1", "--at", "tomorrow"],
        "invalid value 'tomorrow' for '--at <TIME>'",
    );

    a.ok(&["user", "lock", "bob"]);
    assert!(a
        .ok(&["status"])
        .contains("users: 2 (1 locked, 0 locked out)"));
    assert_eq!(check("bob", &monday), "Deny\treason: locked\n");
    a.ok(&["user", "unlock", "bob"]);
    assert_eq!(
        check("bob", &monday),
        "Allow\troute: SSH:*->*@+web [class ops]\n"
    );
    a.refused(&["user", "lock", "nobody"], "unknown user `nobody`");

    let passwd =
        |name: &str, input: &str| run_admin_on(&a.files.socket, &["user", "passwd", name], input);
    assert_eq!(passwd("alice", "correct horse\n").code, 0);
    let run = passwd("nobody", "pw\n");
    assert_eq!(
        (run.code, run.stderr.contains("unknown user `nobody`")),
        (1, true),
        "{run:?}"
    );
    assert_eq!(passwd("alice", "").code, 2);
    a.usage(
        &["user", "passwd", "alice", "hunter2"],
        "unexpected argument 'hunter2'",
    );

    a.refused(
        &["class", "remove", "ops"],
        "class `ops` is still used by user `bob`",
    );
    a.ok(&["route", "remove", "--user", "alice", "SSH:*->alice@web1"]);
    a.refused(
        &["route", "remove", "--user", "alice", "SSH:*->alice@web1"],
        "user `alice` has no route `SSH:*->alice@web1`",
    );
    a.ok(&["user", "remove", "bob"]);
    a.refused(&["user", "remove", "bob"], "unknown user `bob`");
    a.ok(&["class", "remove", "ops"]);
    a.refused(&["class", "remove", "ops"], "unknown class `ops`");
}
