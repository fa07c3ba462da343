//! Every `gatehouse-admin` subcommand against a real master on a temporary socket: what it
//! prints, its exit status, and that every refused command changes nothing.

use gatehouse_tests::admin::{run_admin, run_admin_on, status, AdminRun};
use gatehouse_tests::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

struct Admin {
    files: MasterFiles,
    _master: ServerProcess,
}

impl Admin {
    fn start() -> Admin {
        let files = MasterFiles::new("(workers: 1)");
        let master = start_master(&files);
        Admin {
            files,
            _master: master,
        }
    }

    fn path(&self, name: &str) -> String {
        self.files
            .dir
            .path()
            .join(name)
            .to_string_lossy()
            .into_owned()
    }

    fn run(&self, args: &[&str]) -> AdminRun {
        run_admin(&self.files, args)
    }

    /// Runs a command that must succeed; returns its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(run.code, 0, "{args:?} failed: {run:?}");
        run.stdout
    }

    /// Runs a command the master must refuse (exit 1) with `message`, changing nothing.
    fn refused(&self, args: &[&str], message: &str) {
        let before = status(&self.files).sequence;
        let run = self.run(args);
        assert_eq!(run.code, 1, "{args:?} should be refused: {run:?}");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert_eq!(
            status(&self.files).sequence,
            before,
            "{args:?} changed something"
        );
    }

    /// Runs a command with a usage error (exit 2), changing nothing.
    fn usage(&self, args: &[&str], message: &str) {
        let before = status(&self.files).sequence;
        let run = self.run(args);
        assert_eq!(run.code, 2, "{args:?} should be a usage error: {run:?}");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert_eq!(status(&self.files).sequence, before);
    }
}

#[test]
fn hosts_groups_and_replicas() {
    let a = Admin::start();
    assert!(a.ok(&["status"]).contains("sequence: 0\n"));
    assert_eq!(
        a.ok(&["group", "add", "web", "--description", "front ends"]),
        "ok (sequence 1)\n"
    );
    a.refused(&["group", "add", "web"], "host group `web` already exists");

    let key_file = a.path("web1.key");
    let out = a.ok(&[
        "host",
        "add",
        "web1",
        "--address",
        "10.0.0.5",
        "--group",
        "web",
        "--key-file",
        &key_file,
    ]);
    assert!(
        out.starts_with("ok (sequence 2); node key written to"),
        "{out}"
    );
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(key.len(), 65, "{key:?}");
    gatehouse_common::nodekeys::NodeKey::from_hex(&key).unwrap();
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let other = a.path("other.key");
    a.refused(
        &["host", "add", "web1", "--key-file", &other],
        "host `web1` already exists",
    );
    assert!(
        !Path::new(&other).exists(),
        "a refused host add leaves no key file"
    );
    a.refused(
        &[
            "host",
            "add",
            "web2",
            "--group",
            "nope",
            "--key-file",
            &other,
        ],
        "host `web2`: unknown host group `nope`",
    );
    a.refused(
        &[
            "host",
            "add",
            "web2",
            "--address",
            "10.0.0.5",
            "--key-file",
            &other,
        ],
        "address `10.0.0.5` is listed by both host `web1` and host `web2`",
    );
    a.usage(&["host", "add", "web2"], "host add needs --key-file PATH");
    a.usage(
        &["host", "add", "web2", "--key-file", &key_file],
        "cannot create",
    );
    a.ok(&["host", "add", "web2", "--key-file", &a.path("web2.key")]);
    assert_eq!(
        a.ok(&["host", "list"]),
        "web1\taddresses=10.0.0.5\tgroups=web\nweb2\taddresses=\tgroups=\n"
    );

    a.ok(&["group", "member", "add", "web", "web2"]);
    a.refused(
        &["group", "member", "add", "web", "web2"],
        "host `web2` is already in group `web`",
    );
    a.refused(
        &["group", "member", "add", "nope", "web2"],
        "unknown host group `nope`",
    );
    a.refused(
        &["group", "member", "add", "web", "web9"],
        "unknown host `web9`",
    );
    a.ok(&["group", "member", "remove", "web", "web2"]);
    a.refused(
        &["group", "member", "remove", "web", "web2"],
        "host `web2` is not in group `web`",
    );
    a.usage(
        &["group", "member", "move", "web", "web2"],
        "use add or remove",
    );
    a.refused(
        &["group", "remove", "web"],
        "host group `web` is still used by host `web1`",
    );
    a.ok(&["group", "add", "db"]);
    a.ok(&["group", "remove", "db"]);
    a.refused(&["group", "remove", "db"], "unknown host group `db`");

    a.ok(&["replica", "add", "web2"]);
    a.refused(&["replica", "add", "web2"], "replica `web2` already exists");
    a.refused(&["replica", "add", "ghost"], "unknown host `ghost`");
    a.refused(
        &["host", "remove", "web2"],
        "host `web2` is still used by the replica list",
    );
    assert!(a
        .ok(&["host", "list"])
        .contains("web2\taddresses=\tgroups=\treplica\n"));
    let report = a.ok(&["status"]);
    assert!(report.contains("hosts: 2\nhost groups: 1\n"), "{report}");
    assert!(
        report.contains("replicas allowed: web2\nreplica links: (none)"),
        "{report}"
    );
    a.ok(&["replica", "remove", "web2"]);
    a.refused(&["replica", "remove", "web2"], "unknown replica `web2`");
    a.ok(&["host", "remove", "web2"]);
    a.refused(&["host", "remove", "web2"], "unknown host `web2`");
    assert_eq!(
        a.ok(&["host", "list"]),
        "web1\taddresses=10.0.0.5\tgroups=web\n"
    );
}

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
    a.usage(&["user", "add"], "expected NAME after `user add`");

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
        "route add needs --user U or --class C",
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
        "--at `tomorrow`",
    );

    a.ok(&["user", "lock", "bob"]);
    assert!(a.ok(&["status"]).contains("users: 2 (1 locked)"));
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
        "expected NAME after `user passwd`, got 2",
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

#[test]
fn export_import_usage_errors_and_an_unreachable_master() {
    let a = Admin::start();
    a.ok(&["host", "add", "web1", "--key-file", &a.path("k")]);
    a.ok(&["user", "add", "alice"]);
    let export = a.path("export.ron");
    assert_eq!(
        a.ok(&["export", "--out", &export]),
        format!("exported sequence 2 to {export}\n")
    );
    assert_eq!(
        std::fs::metadata(&export).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let printed = a.ok(&["export"]);
    assert_eq!(printed, std::fs::read_to_string(&export).unwrap());

    a.ok(&["user", "remove", "alice"]);
    assert_eq!(a.ok(&["import", &export]), "ok (sequence 4)\n");
    assert_eq!(
        a.ok(&["export"]).replace("sequence 4", "sequence 2"),
        printed
    );

    let bad = a.path("bad.ron");
    std::fs::write(&bad, "(users: [User(name: \"x\", classes: [\"nope\"])])").unwrap();
    a.refused(&["import", &bad], "user `x`: unknown user class `nope`");
    std::fs::write(&bad, "(users: [User(nam: \"x\")])").unwrap();
    a.refused(&["import", &bad], "bad.ron");
    a.usage(&["import", &a.path("missing.ron")], "cannot read");

    a.usage(&["frobnicate"], "unknown command `frobnicate`");
    a.usage(&["status", "--colour", "red"], "unknown option --colour");
    assert_eq!(a.run(&["--help"]).code, 0);
    let gone = run_admin_on(Path::new("/nonexistent/admin.sock"), &["status"], "");
    assert_eq!(gone.code, 3, "{gone:?}");
    assert!(gone
        .stderr
        .contains("cannot reach the master at /nonexistent/admin.sock"));
}
