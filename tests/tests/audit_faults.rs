//! Nothing lost, nothing twice, against the real binaries: agents send numbered authorize
//! requests (each names its own from-host) to a replica while the replica is SIGKILLed (with
//! the default `answer_after: Written` and with `Synced`), the master is SIGKILLed, or the
//! replication link is cut again and again; after restarts every
//! request an agent got an answer for is in the master's audit store exactly once, and no
//! request is there twice. A full journal either refuses requests ("busy, go elsewhere") or
//! drops its oldest records, raising its alarm in the metrics, and recovers once the master
//! is back.

use gatehouse_common::audit::{AuditEvent, AuditRecord};
use gatehouse_common::types::Method;
use gatehouse_common::wire::Response;
use gatehouse_master::audit::AuditQuery;
use gatehouse_tests::audit::wait_for_records;
use gatehouse_tests::cut_proxy::CutProxy;
use gatehouse_tests::metrics::{scrape, value};
use gatehouse_tests::process::start_master;
use gatehouse_tests::replication::{free_addr, Cluster};
use gatehouse_tests::requests::authorize;
use gatehouse_tests::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Agent connections sending requests at once.
const AGENTS: usize = 4;

/// Agents sending numbered requests to one server until told to stop or the server is gone.
struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<Vec<String>>>,
}

impl Load {
    /// Each request's from-host is `PREFIX` + agent + `-` + its number.
    fn start(addr: SocketAddr, host: &TestHost, prefix: &'static str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let threads = (0..AGENTS)
            .map(|agent| {
                let (stop, answered, host) = (stop.clone(), answered.clone(), host.clone());
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    let Ok(mut client) = Client::connect(addr, &host) else {
                        return got;
                    };
                    for n in 1u32.. {
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        let tag = format!("{prefix}{agent}-{n}");
                        let request = authorize(Method::Ssh, &tag, "alice", "alice", "web1");
                        match client.request(n, request) {
                            Ok(Response::Allow { .. }) => {
                                got.push(tag);
                                answered.fetch_add(1, Ordering::AcqRel);
                            }
                            // A busy answer is no decision: nothing to find.
                            Ok(_) => {}
                            Err(_) => break, // the server is gone
                        }
                    }
                    got
                })
            })
            .collect();
        Load {
            stop,
            answered,
            threads,
        }
    }

    /// Waits (bounded) until `n` more requests have been answered.
    fn wait_answered(&self, n: usize) {
        let target = self.answered.load(Ordering::Acquire) + n;
        let start = Instant::now();
        while self.answered.load(Ordering::Acquire) < target {
            assert!(start.elapsed() < WAIT_LIMIT, "the load stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the agents; the requests answered.
    fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::Release);
        self.threads
            .into_iter()
            .flat_map(|t| t.join().expect("an agent thread"))
            .collect()
    }
}

/// The from-host of an authorize record (the request's number).
fn tag(record: &AuditRecord) -> Option<&str> {
    match &record.event {
        AuditEvent::Authorize { from_host, .. } if from_host.starts_with("run") => Some(from_host),
        _ => None,
    }
}

/// Waits until every answered request is stored, then checks each is there exactly once and
/// nothing is there twice.
fn assert_exactly_once(cluster: &Cluster, answered: &[String]) {
    let query = AuditQuery {
        server: Some("r1".into()),
        kind: Some("authorize".into()),
        ..Default::default()
    };
    let records = wait_for_records(&cluster.files, &query, "every answered request", |r| {
        let stored: std::collections::HashSet<&str> =
            r.iter().filter_map(|(_, r)| tag(r)).collect();
        answered.iter().all(|t| stored.contains(t.as_str()))
    });
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (_, record) in &records {
        if let Some(t) = tag(record) {
            *counts.entry(t).or_default() += 1;
        }
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    assert!(answered.iter().all(|t| counts.get(t.as_str()) == Some(&1)));
    // Records without an answer (made just before a kill) may be there, once.
    assert!(records.len() >= answered.len());
}

/// Kills a replica (journal `settings`, see [`Cluster::start_replica_with`]) under load,
/// restarts it, and finds every answered decision stored once.
fn kill_a_replica_while_it_journals(settings: &str) {
    let cluster = Cluster::start(&["r1"]);
    let (addr, key) = cluster.pinned();
    let start = || cluster.start_replica_with("r1", &[(&addr, &key)], settings);
    let r1 = start();
    cluster.wait_caught_up("r1");
    let load = Load::start(r1.addr, &cluster.test_host("web1"), "run1-");
    load.wait_answered(1500);
    r1.signal(libc::SIGKILL);
    let mut answered = load.finish();
    drop(r1);
    // The restarted replica finds its journal, sends what the master lacks, and goes on
    // numbering the same stream.
    let r1 = start();
    let after = Load::start(r1.addr, &cluster.test_host("web1"), "run2-");
    after.wait_answered(200);
    answered.extend(after.finish());
    assert_exactly_once(&cluster, &answered);
}

/// The default, `answer_after: Written`: an answer leaves once its record is in the journal
/// file, which a killed process cannot take back.
#[test]
fn a_replica_killed_while_it_journals_loses_no_answered_decision_and_repeats_none() {
    kill_a_replica_while_it_journals("");
}

/// `answer_after: Synced`, for sites that also need power-loss durability.
#[test]
fn a_synced_replica_killed_while_it_journals_loses_no_answered_decision_either() {
    kill_a_replica_while_it_journals("audit: (answer_after: Synced),");
}

#[test]
fn a_master_killed_while_it_receives_loses_nothing_and_repeats_nothing() {
    let cluster = Cluster::start_on(&["r1"], &free_addr());
    let mut cluster = cluster;
    let r1 = cluster.start_replica("r1");
    cluster.wait_caught_up("r1");
    let load = Load::start(r1.addr, &cluster.test_host("web1"), "run1-");
    load.wait_answered(1000);
    cluster.master.signal(libc::SIGKILL);
    assert!(cluster.master.wait_exit(WAIT_LIMIT).is_some());
    // The replica goes on answering and journaling while the master is away.
    load.wait_answered(500);
    cluster.master = start_master(&cluster.files);
    load.wait_answered(500);
    let answered = load.finish();
    assert_exactly_once(&cluster, &answered);
}

#[test]
fn a_link_cut_again_and_again_mid_batch_resumes_without_duplicates() {
    let cluster = Cluster::start(&["r1"]);
    let (addr, key) = cluster.pinned();
    let proxy = CutProxy::start(addr.parse().unwrap());
    let r1 = cluster.start_replica_following("r1", &[(&proxy.addr.to_string(), &key)]);
    cluster.wait_caught_up("r1");
    let load = Load::start(r1.addr, &cluster.test_host("web1"), "run1-");
    for link in 1..=5 {
        // Each cut breaks a live link with records streaming over it: the replica has
        // reconnected, and answered (and relayed, every 10 ms) 400 more since.
        wait_accepted(&proxy, link);
        load.wait_answered(400);
        proxy.cut();
    }
    let answered = load.finish();
    assert_exactly_once(&cluster, &answered);
    assert!(
        proxy.accepted.load(Ordering::Acquire) >= 6,
        "resumed after the last cut"
    );
}

/// Waits (bounded) until the proxy has accepted `n` links.
fn wait_accepted(proxy: &CutProxy, n: usize) {
    let start = Instant::now();
    while proxy.accepted.load(Ordering::Acquire) < n {
        assert!(
            start.elapsed() < WAIT_LIMIT,
            "the replica did not reconnect"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A replica whose journal holds 128 KiB (about 1,200 records), following the cluster's
/// master at a fixed address, with metrics.
fn small_journal(cluster: &Cluster, when_full: &str) -> ServerProcess {
    let (addr, key) = cluster.pinned();
    let settings = format!(
        r#"audit: (max_bytes: 131072, when_full: {when_full}), metrics_listen: "127.0.0.1:0","#
    );
    cluster.start_replica_with("r1", &[(&addr, &key)], &settings)
}

/// Sends `n` requests on one connection; how many were allowed and how many were busy.
fn send(client: &mut Client, n: u32, first_id: u32) -> (u32, u32) {
    let (mut allowed, mut busy) = (0, 0);
    for id in first_id..first_id + n {
        let request = authorize(Method::Ssh, &format!("f{id}"), "alice", "alice", "web1");
        match client.request(id, request).expect("an answer") {
            Response::Allow { .. } => allowed += 1,
            Response::Error(e) if e.code == gatehouse_common::types::ErrorCode::Busy => busy += 1,
            other => panic!("{other:?}"),
        }
    }
    (allowed, busy)
}

#[test]
fn a_full_journal_set_to_refuse_answers_busy_until_the_master_is_back() {
    let mut cluster = Cluster::start_on(&["r1"], &free_addr());
    let r1 = small_journal(&cluster, "RefuseNew");
    cluster.wait_caught_up("r1");
    let web1 = cluster.test_host("web1");
    cluster.master.signal(libc::SIGKILL);
    assert!(cluster.master.wait_exit(WAIT_LIMIT).is_some());
    let mut client = Client::connect(r1.addr, &web1).unwrap();
    let (allowed, busy) = send(&mut client, 2000, 1);
    assert!(busy > 0 && allowed > 500, "allowed {allowed}, busy {busy}");
    let metrics = scrape(r1.metrics.expect("metrics"));
    assert_eq!(value(&metrics, "gatehouse_audit_journal_full"), 1.0);
    assert_eq!(
        value(&metrics, "gatehouse_audit_records_dropped_total"),
        0.0
    );
    assert!(value(&metrics, "gatehouse_audit_records_refused_total") >= busy as f64);
    // The master comes back: the journal drains and requests are answered again.
    cluster.master = start_master(&cluster.files);
    let start = Instant::now();
    let mut id = 10_000;
    loop {
        let (allowed, _) = send(&mut client, 1, id);
        id += 1;
        if allowed == 1 {
            break;
        }
        assert!(start.elapsed() < 2 * WAIT_LIMIT, "never answered again");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every allowed decision is in the store.
    let query = AuditQuery {
        server: Some("r1".into()),
        kind: Some("authorize".into()),
        ..Default::default()
    };
    wait_for_records(
        &cluster.files,
        &query,
        "the refused journal's records",
        |r| r.len() as u32 > allowed,
    );
}

#[test]
fn a_full_journal_set_to_drop_keeps_answering_and_the_master_sees_the_gap() {
    let mut cluster = Cluster::start_on(&["r1"], &free_addr());
    let r1 = small_journal(&cluster, "DropOldest");
    cluster.wait_caught_up("r1");
    let web1 = cluster.test_host("web1");
    cluster.master.signal(libc::SIGKILL);
    assert!(cluster.master.wait_exit(WAIT_LIMIT).is_some());
    let mut client = Client::connect(r1.addr, &web1).unwrap();
    let (allowed, busy) = send(&mut client, 3000, 1);
    assert_eq!((allowed, busy), (3000, 0), "never refused");
    let metrics = scrape(r1.metrics.expect("metrics"));
    assert!(value(&metrics, "gatehouse_audit_records_dropped_total") > 0.0);
    cluster.master = start_master(&cluster.files);
    // The newest decision arrives; the store counts the dropped ones as missing.
    let query = AuditQuery {
        server: Some("r1".into()),
        kind: Some("authorize".into()),
        ..Default::default()
    };
    wait_for_records(&cluster.files, &query, "the last decision", |r| {
        r.iter().any(|(_, r)| matches!(&r.event, AuditEvent::Authorize { from_host, .. } if from_host == "f3000"))
    });
    let status = cluster.admin_ok(&["status"]);
    let line = status
        .lines()
        .find(|l| l.trim_start().starts_with("r1\tstream"))
        .unwrap_or_else(|| panic!("{status}"));
    let missing: u64 = line
        .rsplit("missing ")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(missing > 0, "{line}");
}
