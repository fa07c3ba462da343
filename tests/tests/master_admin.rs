//! Every `gatehouse-admin` subcommand against a real master on a temporary socket: what it
//! prints, its exit status, and that every refused command changes nothing.

use gatehouse_tests::admin::{run_admin_on, Admin};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

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
        "unknown host group `nope`: create it first with `gatehouse-admin group add nope`",
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
    a.usage(&["host", "add", "web2"], "--key-file <PATH>");
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
        "unrecognized subcommand 'move'",
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
    // An allowed replica that never connected shows as a disconnected link.
    assert!(
        report.contains("replicas allowed: web2\nreplica links:\n"),
        "{report}"
    );
    assert!(
        report.contains("web2\tdisconnected\tacked=0\tlag=8"),
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

    // Keys anyone knows, or that two hosts share, never enter the database.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/example-db.ron");
    a.refused(
        &["import", example.to_str().unwrap()],
        "host `web1`: the node key is one published in Gatehouse's example database",
    );
    let host = |name: &str, key: &str| format!("Host(name: {name:?}, node_key: {key:?})");
    let (one, two) = ("ab".repeat(32), "cd".repeat(32));
    let hosts = [host("web1", &one), host("web2", &two), host("db1", &one)].join(", ");
    std::fs::write(&bad, format!("(hosts: [{hosts}])")).unwrap();
    a.refused(
        &["import", &bad],
        "hosts `web1` and `db1` have the same node key",
    );
    std::fs::write(
        &bad,
        format!("(hosts: [{}])", host("web1", &"0".repeat(64))),
    )
    .unwrap();
    a.refused(&["import", &bad], "host `web1`: the node key is all zeros");
    std::fs::write(&bad, format!("(hosts: [{}])", host("web1", &two))).unwrap();
    a.ok(&["import", &bad]);

    a.usage(&["frobnicate"], "unrecognized subcommand 'frobnicate'");
    a.usage(&["stauts"], "similar subcommands exist: 'audit', 'status'");
    a.usage(
        &["status", "--colour", "red"],
        "unexpected argument '--colour'",
    );
    assert_eq!(a.run(&["--help"]).code, 0);
    let gone = run_admin_on(Path::new("/nonexistent/admin.sock"), &["status"], "");
    assert_eq!(gone.code, 3, "{gone:?}");
    assert!(gone
        .stderr
        .contains("cannot reach the master at /nonexistent/admin.sock"));
}
