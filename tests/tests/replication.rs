//! Replication from a real master to real replicas: changes reach every replica and their
//! agents; a restarted replica resumes without a snapshot; a compacted log gives a snapshot
//! and an identical copy; a non-replica host is refused; an agent request on the replication
//! port closes only that link; admins see every link's state.

use gatehouse_common::types::DenyReason;
use gatehouse_common::wire::Response;
use gatehouse_replica::store::Store;
use gatehouse_tests::replication::{Cluster, ReplicaStatus};
use gatehouse_tests::requests::*;
use gatehouse_tests::*;

fn web1(cluster: &Cluster) -> TestHost {
    TestHost {
        name: "web1".into(),
        key: cluster.key("web1"),
    }
}

#[test]
fn changes_reach_every_replica_and_its_agents() {
    let cluster = Cluster::start(&["r1", "r2"]);
    let replicas: Vec<ServerProcess> = ["r1", "r2"]
        .iter()
        .map(|r| cluster.start_replica(r))
        .collect();
    for name in ["r1", "r2"] {
        let seq = cluster.sequence();
        ReplicaStatus::wait_for(&cluster.replica_dir(name), "the master's sequence", |s| {
            s.state == "Established" && s.applied == seq
        });
    }
    // An admin change on the master is seen by agents of every replica.
    cluster.admin_ok(&["user", "lock", "alice"]);
    let seq = cluster.sequence();
    for (name, replica) in ["r1", "r2"].iter().zip(&replicas) {
        ReplicaStatus::wait_for(&cluster.replica_dir(name), "the lock", |s| s.applied == seq);
        let mut agent = Client::connect(replica.addr, &web1(&cluster)).unwrap();
        assert_eq!(
            agent.request(1, ssh_as("alice", "web1")).unwrap(),
            Response::Deny {
                reason: DenyReason::Locked
            }
        );
    }
    // Admins see both links, established and current.
    let report = cluster.admin_ok(&["status"]);
    for name in ["r1", "r2"] {
        assert!(
            report.contains(&format!("{name}\testablished\tacked={seq}\tlag=0")),
            "{report}"
        );
    }
}

#[test]
fn a_restarted_replica_resumes_from_its_sequence_without_a_snapshot() {
    let cluster = Cluster::start(&["r1"]);
    let mut replica = cluster.start_replica("r1");
    let dir = cluster.replica_dir("r1");
    let before = cluster.sequence();
    ReplicaStatus::wait_for(&dir, "in sync", |s| s.applied == before);
    replica.signal(libc::SIGTERM);
    assert!(replica
        .wait_exit(WAIT_LIMIT)
        .expect("replica exits")
        .success());
    for n in 0..25 {
        cluster.admin_ok(&["user", "add", &format!("u{n}")]);
    }
    let after = cluster.sequence();
    let replica = cluster.start_replica("r1");
    let status = ReplicaStatus::wait_for(&dir, "caught up", |s| s.applied == after);
    assert_eq!(status.snapshots, 0, "resumed from the log, no snapshot");
    assert!(
        replica.log().contains(&format!(
            "following {:?} from sequence {before}",
            cluster.master.replication.unwrap()
        )) || replica.log().contains(&format!("from sequence {before}")),
        "{}",
        replica.log()
    );
    assert!(!cluster.master.log().contains("gets a snapshot"));
    // The agents of the restarted replica see the new users at once.
    let mut agent = Client::connect(replica.addr, &web1(&cluster)).unwrap();
    assert_eq!(
        agent.request(1, ssh_as("u24", "web1")).unwrap(),
        Response::Deny {
            reason: DenyReason::NoMatchingRoute
        }
    );
}

#[test]
fn a_compacted_log_gives_a_snapshot_and_an_identical_copy() {
    let cluster = Cluster::start(&["r1"]);
    let mut replica = cluster.start_replica("r1");
    let dir = cluster.replica_dir("r1");
    let seq = cluster.sequence();
    ReplicaStatus::wait_for(&dir, "in sync", |s| s.applied == seq);
    replica.signal(libc::SIGTERM);
    replica.wait_exit(WAIT_LIMIT).expect("replica exits");
    for n in 0..30 {
        cluster.admin_ok(&["user", "add", &format!("v{n}")]);
    }
    cluster.admin_ok(&["compact", "--keep", "5"]);
    let head = cluster.sequence();
    let mut replica = cluster.start_replica("r1");
    let status = ReplicaStatus::wait_for(&dir, "caught up by snapshot", |s| s.applied == head);
    assert_eq!(status.snapshots, 1);
    assert!(cluster.master.log().contains("gets a snapshot"));
    replica.signal(libc::SIGTERM);
    replica.wait_exit(WAIT_LIMIT).expect("replica exits");
    let copy = Store::open(&dir.join("replica.sqlite")).unwrap();
    let exported = cluster.admin_ok(&["export"]);
    let master_db: gatehouse_common::policy::Database =
        gatehouse_common::config::parse_ron(std::path::Path::new("export"), &exported).unwrap();
    assert_eq!(
        copy.database(),
        master_db,
        "the replica's copy is identical"
    );
    assert_eq!(copy.sequence(), head);
}

#[test]
fn a_host_that_is_not_a_replica_is_refused() {
    let cluster = Cluster::start(&["r1"]);
    // web1 is a registered host, but not on the replica allow-list.
    let dir = cluster.replica_dir("web1");
    let replica = cluster.start_replica("web1");
    let status = ReplicaStatus::wait_for(&dir, "a refusal", |s| s.state == "Reconnecting");
    assert_eq!(status.applied, 0);
    assert!(
        cluster.master.log().contains("replication link from"),
        "{}",
        cluster.master.log()
    );
    assert!(
        replica
            .log()
            .contains("host `web1` is not on the replica allow-list"),
        "{}",
        replica.log()
    );
    let report = cluster.admin_ok(&["status"]);
    assert!(!report.contains("web1\testablished"), "{report}");
}

/// A replica host that sends an agent request on the master's replication port (a
/// misconfigured agent holding a replica's key) passes the handshake, then its link is closed
/// with the reason logged; the port goes on serving: the real replica still follows.
#[test]
fn an_agent_request_on_the_replication_port_closes_that_link_only() {
    let cluster = Cluster::start(&["r1"]);
    let port = cluster
        .master
        .replication
        .expect("the test master replicates");
    let r1 = TestHost {
        name: "r1".into(),
        key: cluster.key("r1"),
    };
    let mut agent = Client::connect(port, &r1).expect("the usual handshake");
    let answer = agent.request(1, ssh_on("r1"));
    assert!(
        answer.is_err(),
        "no answer on the replication port: {answer:?}"
    );
    let log = cluster.master.log();
    assert!(
        log.contains("agent request on the replication port"),
        "{log}"
    );
    let seq = cluster.sequence();
    let _replica = cluster.start_replica("r1");
    ReplicaStatus::wait_for(&cluster.replica_dir("r1"), "the master's sequence", |s| {
        s.state == "Established" && s.applied == seq
    });
}
