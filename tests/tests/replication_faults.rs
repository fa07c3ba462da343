//! Replication under faults: the master killed in the middle of admin changes, the master
//! stopped (SIGSTOP), and a replica promoted (with its own master key, pinned in advance by
//! the other replica) after the master is lost for good, with the former master held
//! read-only when it comes back.

use gatehouse_common::wire::Response;
use gatehouse_master::admin::client::AdminClient;
use gatehouse_master::admin::proto::{AdminRequest, AdminResponse};
use gatehouse_replica::store::Store;
use gatehouse_tests::admin::run_admin;
use gatehouse_tests::replication::{
    free_addr, generate_master_key, Cluster, ReplicaStatus, TEST_HEARTBEAT_TIMEOUT_MS,
};
use gatehouse_tests::requests::*;
use gatehouse_tests::*;
use std::time::{Duration, Instant};

#[test]
fn a_master_killed_mid_stream_keeps_every_acknowledged_change_and_replicas_get_them() {
    let mut cluster = Cluster::start_on(&["r1"], &free_addr());
    let mut replica = cluster.start_replica("r1");
    let dir = cluster.replica_dir("r1");
    // A stream of admin changes; the master is killed after 60 acknowledgements.
    let mut acked = Vec::new();
    for n in 0..1000 {
        let request = AdminRequest::UserAdd {
            name: format!("k{n}"),
            classes: Vec::new(),
        };
        let mut client = AdminClient::connect(&cluster.files.socket).expect("admin socket");
        match client.request(&request) {
            Ok(AdminResponse::Done { seq }) => acked.push((format!("k{n}"), seq)),
            other => panic!("change {n} not acknowledged: {other:?}"),
        }
        if acked.len() == 60 {
            cluster.master.signal(libc::SIGKILL);
            break;
        }
    }
    cluster.master.wait_exit(WAIT_LIMIT).expect("master killed");
    cluster.master = gatehouse_tests::process::start_master(&cluster.files);
    // Every acknowledged change is on the restarted master...
    let exported = cluster.admin_ok(&["export"]);
    for (user, _) in &acked {
        assert!(
            exported.contains(&format!("name: \"{user}\"")),
            "{user} lost"
        );
    }
    let head = cluster.sequence();
    assert!(head >= acked.last().unwrap().1);
    // ...and reaches the replica, which reconnects by itself.
    ReplicaStatus::wait_for(&dir, "the restarted master's sequence", |s| {
        s.state == "Established" && s.applied == head
    });
    replica.signal(libc::SIGTERM);
    replica.wait_exit(WAIT_LIMIT).expect("replica exits");
    let copy = Store::open(&dir.join("replica.sqlite")).unwrap();
    for (user, _) in &acked {
        assert!(
            copy.database().users.iter().any(|u| &u.name == user),
            "{user} missing on the replica"
        );
    }
}

#[test]
fn a_stopped_master_is_detected_and_the_replica_keeps_serving_then_reconnects() {
    let cluster = Cluster::start(&["r1"]);
    let replica = cluster.start_replica("r1");
    let dir = cluster.replica_dir("r1");
    let seq = cluster.sequence();
    ReplicaStatus::wait_for(&dir, "in sync", |s| {
        s.state == "Established" && s.applied == seq
    });
    cluster.master.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    ReplicaStatus::wait_for(&dir, "a dead link", |s| s.state != "Established");
    let detected = stopped.elapsed();
    // Within the heartbeat timeout (800 ms here), plus one heartbeat interval of slack.
    assert!(
        detected < Duration::from_millis(TEST_HEARTBEAT_TIMEOUT_MS + 700),
        "{detected:?}"
    );
    // The replica keeps answering agents from its copy and says how stale it is.
    let web1 = TestHost {
        name: "web1".into(),
        key: cluster.key("web1"),
    };
    let mut agent = Client::connect(replica.addr, &web1).unwrap();
    assert!(matches!(
        agent.request(1, ssh_as("alice", "web1")).unwrap(),
        Response::Allow { .. }
    ));
    let report = probe(replica.addr, &web1, WAIT_LIMIT).expect("probe answered");
    assert_eq!(report.load.db_sequence, seq);
    assert!(
        report.load.db_age_ms >= 500 && report.load.db_age_ms < 60_000,
        "{:?}",
        report.load
    );
    // After SIGCONT it reconnects and catches up.
    cluster.master.signal(libc::SIGCONT);
    cluster.admin_ok(&["user", "add", "after"]);
    let head = cluster.sequence();
    ReplicaStatus::wait_for(&dir, "reconnected and current", |s| {
        s.state == "Established" && s.applied == head
    });
}

#[test]
fn a_promoted_replica_takes_over_and_the_former_master_is_fenced() {
    let old_addr = free_addr();
    let mut cluster = Cluster::start_on(&["r1", "r2"], &old_addr);
    let new_addr = free_addr();
    let (_, old_key) = cluster.pinned();
    // r1 may be promoted one day: its master key is made now, so r2 pins it in advance.
    let r1_dir = cluster.replica_dir("r1");
    std::fs::create_dir_all(&r1_dir).unwrap();
    let new_key = generate_master_key(&r1_dir.join("master.key"));
    let mut r1 = cluster.start_replica_following("r1", &[(&old_addr, &old_key)]);
    let r2 = cluster.start_replica_following("r2", &[(&old_addr, &old_key), (&new_addr, &new_key)]);
    let seq = cluster.sequence();
    for name in ["r1", "r2"] {
        ReplicaStatus::wait_for(&cluster.replica_dir(name), "in sync", |s| s.applied == seq);
    }
    // r1 stops; one more change reaches only r2, so r2 is ahead of the replica that will be
    // promoted: that change must not survive on r2 (the new master never had it).
    r1.signal(libc::SIGTERM);
    r1.wait_exit(WAIT_LIMIT).expect("r1 stops");
    cluster.admin_ok(&["user", "add", "only-on-the-old-master"]);
    let ahead = cluster.sequence();
    ReplicaStatus::wait_for(&cluster.replica_dir("r2"), "ahead of r1", |s| {
        s.applied == ahead
    });
    // The master is lost for good. Promote r1: a master on its copy with --promote.
    cluster.master.signal(libc::SIGKILL);
    cluster.master.wait_exit(WAIT_LIMIT);
    let config = r1_dir.join("master.ron");
    std::fs::write(
        &config,
        format!(r#"(listen: "127.0.0.1:0", database: "replica.sqlite", admin_socket: "admin.sock", replication_listen: Some("{new_addr}"), master_key: "master.key")"#),
    )
    .unwrap();
    let config = config.to_string_lossy().to_string();
    let promoted = ServerProcess::start_in(
        "gatehouse-master",
        &["--config", &config, "--promote"],
        &r1_dir,
        &[],
    );
    assert!(
        promoted.log().contains("to master epoch 2"),
        "{}",
        promoted.log()
    );
    assert_eq!(promoted.master_key.as_deref(), Some(new_key.as_str()));
    let new_socket = r1_dir.join("admin.sock");
    // r2 fails over to the promoted master and follows its epoch; the write waits for that.
    let run =
        gatehouse_tests::admin::run_admin_on(&new_socket, &["user", "add", "after-promotion"], "");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    ReplicaStatus::wait_for(
        &cluster.replica_dir("r2"),
        "following the new master",
        |s| s.epoch == 2 && s.state == "Established",
    );
    // The former master comes back: it must not accept writes as a second master. No replica
    // holding its epoch confirms it; r2, reaching it while the promoted master is stopped,
    // refuses it and says why.
    promoted.signal(libc::SIGSTOP);
    cluster.master = gatehouse_tests::process::start_master(&cluster.files);
    let start = Instant::now();
    while !cluster.master.log().contains("refused this master") {
        assert!(start.elapsed() < WAIT_LIMIT, "{}", cluster.master.log());
        std::thread::sleep(Duration::from_millis(20)); // a bounded poll of the log file
    }
    let refused = run_admin(&cluster.files, &["user", "add", "split-brain"]);
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("no replica holding this master's epoch (1)")
            && refused.stderr.contains("follows master epoch 2"),
        "{}",
        refused.stderr
    );
    promoted.signal(libc::SIGCONT);
    // r2 ends identical to the new master: the old master's last change is gone, the new
    // master's change is there.
    let mut r2 = r2;
    ReplicaStatus::wait_for(&cluster.replica_dir("r2"), "back on the new master", |s| {
        s.epoch == 2 && s.state == "Established"
    });
    r2.signal(libc::SIGTERM);
    r2.wait_exit(WAIT_LIMIT).expect("r2 stops");
    let copy = Store::open(&cluster.replica_dir("r2").join("replica.sqlite")).unwrap();
    let db = copy.database();
    let names: Vec<&str> = db.users.iter().map(|u| u.name.as_str()).collect();
    assert!(names.contains(&"after-promotion"), "{names:?}");
    assert!(!names.contains(&"only-on-the-old-master"), "{names:?}");
    assert!(!names.contains(&"split-brain"), "{names:?}");
}
