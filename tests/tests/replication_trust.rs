//! The replication link's trust, against the real binaries: a forged master holding only a
//! replica's node key is refused and the replica follows the real one; a replica's inflated
//! epoch does not stop the master's writes (now or after a restart); after a restart writes
//! wait, bounded, for a replica holding the master's epoch, and a fresh follower is one;
//! idle connections on the replication port do not lock a real replica out.

use gatehouse_common::repl::MasterPublicKey;
use gatehouse_common::types::DenyReason;
use gatehouse_common::types::ErrorCode;
use gatehouse_common::wire::{Handshake, Response};
use gatehouse_master::replication::admission::MAX_HANDSHAKES_PER_SOURCE;
use gatehouse_tests::admin::run_admin;
use gatehouse_tests::client::read_plain_frame;
use gatehouse_tests::process::{start_master, TEST_WRITE_CONFIRM_WAIT_MS};
use gatehouse_tests::repl_peer::{connect_from, receive, replica_link, ForgedMaster};
use gatehouse_tests::replication::{free_addr, Cluster, ReplicaStatus};
use gatehouse_tests::requests::*;
use gatehouse_tests::*;

fn host(cluster: &Cluster, name: &str) -> TestHost {
    TestHost {
        name: name.into(),
        key: cluster.key(name),
    }
}

fn master_key(cluster: &Cluster) -> MasterPublicKey {
    MasterPublicKey::from_hex(&cluster.pinned().1).expect("the printed key parses")
}

#[test]
fn a_forged_master_holding_only_a_replicas_node_key_is_refused_and_the_real_one_followed() {
    let cluster = Cluster::start(&["r1"]);
    let r1 = host(&cluster, "r1");
    let (real_addr, real_key) = cluster.pinned();
    // The key the master printed is the one `--public-key` shows an admin.
    let shown = std::process::Command::new(bin_path("gatehouse-master"))
        .args([
            "--config",
            cluster.files.config.to_str().unwrap(),
            "--public-key",
        ])
        .output()
        .expect("gatehouse-master --public-key");
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), real_key);
    // Two forgers on addresses the replica pins with the real master's key (a hijacked
    // address): one presents its own key, one claims the real key without its secret.
    let own_key = ForgedMaster::start(&r1, None);
    let claims_real = ForgedMaster::start(&r1, Some(master_key(&cluster)));
    let (a, b) = (own_key.addr.to_string(), claims_real.addr.to_string());
    let replica = cluster.start_replica_following(
        "r1",
        &[(&a, &real_key), (&b, &real_key), (&real_addr, &real_key)],
    );
    let seq = cluster.sequence();
    ReplicaStatus::wait_for(&cluster.replica_dir("r1"), "the real master", |s| {
        s.state == "Established" && s.applied == seq && s.epoch == 1
    });
    assert!(
        own_key.hellos() >= 1 && claims_real.hellos() >= 1,
        "both forgers were tried"
    );
    let log = replica.log();
    assert!(
        log.contains("not the pinned master: the master presented key"),
        "{log}"
    );
    assert!(
        log.contains("not the pinned master: the master's signature does not verify"),
        "{log}"
    );
    // Nothing the forgers sent was applied: mallory does not exist, alice still does.
    let mut agent = Client::connect(replica.addr, &host(&cluster, "web1")).unwrap();
    assert_eq!(
        agent.request(1, ssh_as("mallory", "web1")).unwrap(),
        Response::Deny {
            reason: DenyReason::UnknownUser
        }
    );
    assert!(matches!(
        agent.request(2, ssh_as("alice", "web1")).unwrap(),
        Response::Allow { .. }
    ));
}

#[test]
fn an_inflated_epoch_from_a_replica_does_not_stop_writes() {
    let addr = free_addr();
    let mut cluster = Cluster::start_on(&["r1"], &addr);
    let r1 = host(&cluster, "r1");
    let port = cluster.master.replication.expect("replicates");
    // Anyone holding r1's node key can open r1's link and claim any epoch.
    let (mut link, epoch) = replica_link(port, &r1, &master_key(&cluster)).unwrap();
    assert_eq!(epoch, 1);
    link.send_replication(&gatehouse_common::repl::ReplMessage::Subscribe {
        applied: 0,
        epoch: u64::MAX,
        heartbeat_ms: 1000,
    })
    .unwrap();
    let refused = receive(&mut link).unwrap();
    assert!(
        matches!(&refused, gatehouse_common::repl::ReplMessage::Refused { reason } if reason.contains("below yours")),
        "{refused:?}"
    );
    assert!(link.closed_by_server());
    // Writes go on at once...
    cluster.admin_ok(&["user", "add", "after-the-claim"]);
    // ...and nothing was recorded: after a restart the real r1 (holding epoch 1) opens them.
    cluster.master.signal(libc::SIGTERM);
    cluster.master.wait_exit(WAIT_LIMIT).expect("master stops");
    cluster.master = start_master(&cluster.files);
    let _replica = cluster.start_replica("r1");
    cluster.admin_ok(&["user", "add", "after-the-restart"]);
    assert!(
        !cluster.master.log().contains("superseded"),
        "{}",
        cluster.master.log()
    );
}

#[test]
fn after_a_restart_writes_wait_for_a_replica_and_a_fresh_follower_confirms_the_epoch() {
    let addr = free_addr();
    let mut cluster = Cluster::start_on(&["r1"], &addr);
    cluster.master.signal(libc::SIGTERM);
    cluster.master.wait_exit(WAIT_LIMIT).expect("master stops");
    cluster.master = start_master(&cluster.files);
    // No replica yet: a write waits the bounded time, then is refused with the reason.
    let refused = run_admin(&cluster.files, &["user", "add", "too-early"]);
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "no replica holding this master's epoch (1) has connected within {TEST_WRITE_CONFIRM_WAIT_MS} ms"
        )),
        "{}",
        refused.stderr
    );
    // r1 has never followed anyone (an empty copy, epoch 0): it catches up, adopts the epoch
    // and acknowledges it. A write issued at once waits for that and goes through.
    let _replica = cluster.start_replica("r1");
    cluster.admin_ok(&["user", "add", "after-restart"]);
    let log = cluster.master.log();
    assert!(
        log.contains("replica r1 holds this master's epoch"),
        "{log}"
    );
    let seq = cluster.sequence();
    ReplicaStatus::wait_for(&cluster.replica_dir("r1"), "current", |s| {
        s.applied == seq && s.epoch == 1
    });
}

#[test]
fn idle_connections_on_the_replication_port_do_not_lock_out_a_real_replica() {
    let cluster = Cluster::start(&["r1"]);
    let port = cluster.master.replication.expect("replicates");
    // 256 connections from another machine (127.0.0.2) that never say a word.
    let mut flood: Vec<_> = (0..256)
        .map(|_| connect_from("127.0.0.2", port).expect("connect"))
        .collect();
    let _replica = cluster.start_replica("r1");
    let seq = cluster.sequence();
    ReplicaStatus::wait_for(&cluster.replica_dir("r1"), "following", |s| {
        s.state == "Established" && s.applied == seq
    });
    // The master took the replica after every flood connection (the accept queue is in
    // order), so by now it has answered each one it refused: "too many connections", closed.
    let (mut held, mut refused) = (Vec::new(), Vec::new());
    for stream in &mut flood {
        stream.set_nonblocking(true).unwrap();
        let waiting = matches!(stream.peek(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        stream.set_nonblocking(false).unwrap();
        match waiting {
            true => held.push(stream),
            false => refused.push(stream),
        }
    }
    assert_eq!(held.len(), MAX_HANDSHAKES_PER_SOURCE, "the per-source cap");
    match read_plain_frame(refused[0]) {
        Some(Handshake::Error(e)) => assert_eq!(e.code, ErrorCode::TooManyConnections),
        other => panic!("expected a plaintext refusal, got {other:?}"),
    }
    // The ones held are closed at the handshake timeout.
    for stream in held {
        assert!(gatehouse_tests::client::closed_by_server(stream));
    }
}
