//! A database of a hundred thousand users, hosts and two hundred thousand routes, end to end
//! through the real binaries: `gatehouse-admin import` (progress on standard error, one
//! transaction), the master's answers from it, `status` while the import is written, and a
//! fresh follower that gets it as a snapshot and holds exactly the master's database. Asserts
//! correctness, not speed (figures: docs/BENCHMARKS.md, "Database scale").

use gatehouse_common::config::parse_ron;
use gatehouse_common::policy::Database;
use gatehouse_master::admin::client::AdminClient;
use gatehouse_master::admin::proto::{AdminRequest, AdminResponse};
use gatehouse_replica::store::Store;
use gatehouse_tests::admin::{run_admin, status};
use gatehouse_tests::dbgen::{fleet, CLASSES};
use gatehouse_tests::replication::{Cluster, ReplicaStatus};
use gatehouse_tests::WAIT_LIMIT;
use std::path::Path;
use std::time::Duration;

/// Generated users (and hosts; twice as many routes).
const USERS: usize = 100_000;
/// How long the follower may take to get and install the database: generous for a debug
/// build on a loaded CI machine (it takes a few seconds in release).
const INSTALL_LIMIT: Duration = Duration::from_secs(300);

fn export(cluster: &Cluster) -> Database {
    let text = cluster.admin_ok(&["export"]);
    parse_ron(Path::new("export"), &text).expect("the export parses")
}

#[test]
fn a_generated_100k_database_imports_and_a_fresh_follower_gets_it_whole() {
    let cluster = Cluster::start(&["r1"]);
    let base = export(&cluster);
    let db = fleet(USERS, &base);
    let file = cluster.files.dir.path().join("fleet.ron");
    std::fs::write(&file, ron::to_string(&db).unwrap()).unwrap();

    // `status` answers while the import is being written (it reads the published snapshot,
    // not the store): asked from another connection as soon as the import is under way.
    let socket = cluster.files.socket.clone();
    let file_arg = file.to_string_lossy().into_owned();
    let importer = std::thread::spawn(move || {
        let admin = gatehouse_tests::bin_path("gatehouse-admin");
        std::process::Command::new(admin)
            .args(["--socket", &socket.to_string_lossy(), "import", &file_arg])
            .output()
            .expect("gatehouse-admin runs")
    });
    let mut client = AdminClient::connect(&cluster.files.socket).unwrap();
    let status_during = client.request(&AdminRequest::Status).unwrap();
    assert!(matches!(status_during, AdminResponse::Status(_)));
    let out = importer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "import failed: {stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok (sequence "));

    let report = status(&cluster.files);
    assert_eq!(report.users, USERS + base.users.len());
    assert_eq!(report.hosts, USERS + base.hosts.len());
    assert_eq!(report.routes, 2 * USERS + 2 * CLASSES + 1);
    assert_eq!(report.locked_users, USERS.div_ceil(97));
    let check = |to_host| {
        let args = ["check", "SSH", "10.9.9.9", "-", "user0012345", to_host];
        cluster.admin_ok(&args)
    };
    let allowed = check("host0012345");
    assert!(
        allowed.starts_with("Allow\troute: SSH:*->user0012345@host0012*"),
        "{allowed}"
    );
    assert!(check("host0099999").starts_with("Deny"));
    assert_eq!(
        export(&cluster),
        db,
        "the master holds exactly what was imported"
    );

    // A single change after the import reaches a fresh follower too.
    cluster.admin_ok(&["user", "lock", "user0000001"]);
    let head = cluster.sequence();
    let mut replica = cluster.start_replica("r1");
    let dir = cluster.replica_dir("r1");
    let caught_up = ReplicaStatus::wait_within(&dir, "the imported database", INSTALL_LIMIT, |s| {
        s.applied >= head
    });
    assert_eq!(
        caught_up.snapshots, 1,
        "the import reaches a replica as a snapshot"
    );
    replica.signal(libc::SIGTERM);
    replica.wait_exit(WAIT_LIMIT).expect("the replica stops");
    let copy = Store::open(&dir.join("replica.sqlite")).unwrap();
    assert_eq!(
        copy.database(),
        export(&cluster),
        "the follower's copy is the master's"
    );
    let run = run_admin(&cluster.files, &["status"]);
    assert_eq!(run.code, 0);
}
