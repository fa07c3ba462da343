//! Catch-up: stop one follower (SIGTERM), make many changes on the master one by one through
//! the admin socket (each durable before its ack), restart the follower and time it until its
//! applied sequence equals the master's — checking it resumed from its own sequence rather
//! than receiving a snapshot. Not pure: real processes, files and clocks.

use crate::setup::Deployment;
use crate::stats::Summary;
use gatehouse_master::admin::client::AdminClient;
use gatehouse_master::admin::proto::{AdminRequest, AdminResponse};
use gatehouse_tests::replication::ReplicaStatus;
use gatehouse_tests::{probe, WAIT_LIMIT};
use std::time::{Duration, Instant};

/// Longest a catch-up may take before the benchmark fails: 300 s, far above the seconds a
/// healthy one takes, so only a stuck follower trips it.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(300);
/// How often the follower's status file is read while it catches up: 1 ms (the file is
/// rewritten after every batch it applies).
const STATUS_POLL: Duration = Duration::from_millis(1);

/// What the catch-up measured.
pub struct CatchUp {
    pub changes: u64,
    /// The follower's sequence when it stopped (and resumed from).
    pub resumed_from: u64,
    /// Wall time of the changes on the master, one request at a time.
    pub write_time: Duration,
    /// Per-change acknowledgement time on the master.
    pub ack: Summary,
    /// Mean ack time of the first and the last tenth of the changes (does it grow with the
    /// database?).
    pub ack_first_tenth: Duration,
    pub ack_last_tenth: Duration,
    /// Spawn → the follower's ready line.
    pub ready: Duration,
    /// Spawn → the first applied batch.
    pub first_batch: Duration,
    /// Spawn → applied sequence equals the master's.
    pub caught_up: Duration,
    /// Status-file updates seen while catching up (a lower bound on batches applied).
    pub updates_seen: usize,
    pub snapshots: u64,
    pub master_sent_snapshot: bool,
}

/// Stops follower `index`, makes `changes` `UserAdd`s, restarts it and times its catch-up.
pub fn measure(deployment: &mut Deployment, index: usize, changes: u64) -> CatchUp {
    let (name, mut process) = deployment.replicas.remove(index);
    let dir = deployment.cluster.replica_dir(&name);
    let resumed_from = deployment.cluster.sequence();
    ReplicaStatus::wait_for(&dir, "in sync", |s| s.applied == resumed_from);
    process.signal(libc::SIGTERM);
    let exit = process.wait_exit(WAIT_LIMIT).expect("follower exits");
    assert!(exit.success(), "follower exit: {exit:?}");

    eprintln!("catch-up: {name} stopped at {resumed_from}; making {changes} changes");
    let mut admin = AdminClient::connect(&deployment.cluster.files.socket).expect("admin socket");
    let mut acks = Vec::with_capacity(changes as usize);
    let start = Instant::now();
    for i in 0..changes {
        let sent = Instant::now();
        let response = admin
            .request(&AdminRequest::UserAdd {
                name: format!("c{i}"),
                classes: Vec::new(),
            })
            .expect("user add");
        acks.push(sent.elapsed());
        assert!(
            matches!(response, AdminResponse::Done { .. }),
            "user add: {response:?}"
        );
    }
    let write_time = start.elapsed();
    let tenth = (acks.len() / 10).max(1);
    let mean = |s: &[Duration]| s.iter().sum::<Duration>() / s.len().max(1) as u32;
    let ack_first_tenth = mean(&acks[..tenth]);
    let ack_last_tenth = mean(&acks[acks.len() - tenth..]);
    let head = deployment.cluster.sequence();
    assert_eq!(head, resumed_from + changes, "one sequence per change");

    eprintln!("catch-up: restarting {name}");
    let spawned = Instant::now();
    let process = deployment.cluster.start_replica(&name);
    let ready = spawned.elapsed();
    let mut first_batch = None;
    let mut updates_seen = 0;
    let mut last_applied = resumed_from;
    let status = loop {
        assert!(
            spawned.elapsed() < CATCH_UP_LIMIT,
            "{name} did not catch up: {}",
            process.log()
        );
        if let Some(status) = ReplicaStatus::read(&dir) {
            if status.applied > last_applied {
                first_batch.get_or_insert(spawned.elapsed());
                updates_seen += 1;
                last_applied = status.applied;
            }
            if status.applied >= head {
                break status;
            }
        }
        std::thread::sleep(STATUS_POLL);
    };
    let caught_up = spawned.elapsed();
    let probed = probe(process.addr, &deployment.prober, WAIT_LIMIT).expect("probe reply");
    assert_eq!(
        probed.load.db_sequence, head,
        "agents see the caught-up copy"
    );
    assert!(
        process
            .log()
            .contains(&format!("from sequence {resumed_from}")),
        "{name} did not resume from {resumed_from}: {}",
        process.log()
    );
    let master_sent_snapshot = deployment.cluster.master.log().contains("gets a snapshot");
    deployment.replicas.insert(index, (name, process));
    CatchUp {
        changes,
        resumed_from,
        write_time,
        ack: Summary::of(acks),
        ack_first_tenth,
        ack_last_tenth,
        ready,
        first_batch: first_batch.unwrap_or(caught_up),
        caught_up,
        updates_seen,
        snapshots: status.snapshots,
        master_sent_snapshot,
    }
}
