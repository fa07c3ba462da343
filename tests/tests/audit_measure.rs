//! Measurements for docs/BENCHMARKS.md, "Audit" (ignored: run them on purpose, in release):
//!
//! ```text
//! cargo test --release -p gatehouse-tests --test audit_measure -- --ignored --nocapture
//! ```
//!
//! A master and one following replica on this machine, once with the default journal
//! (`answer_after: Written`) and once with `Synced`. Agents pipeline authorize requests to
//! the replica: how many decisions a second it journals (each answer waits for its record to
//! be written, or synced), how many a second reach the master's store, and the delay from
//! each decision to its record on the master (p50/p99, from the store's own timestamps), both
//! flat out and at a steady rate well under capacity.

use gatehouse_common::types::Method;
use gatehouse_common::wire::Response;
use gatehouse_tests::replication::Cluster;
use gatehouse_tests::requests::authorize;
use gatehouse_tests::*;
use std::time::{Duration, Instant};

/// Agent connections, each with [`PIPELINE`] requests in flight.
const AGENTS: usize = 8;
const PIPELINE: u32 = 64;

/// Sends requests from `AGENTS` connections for `duration`, at most `rate` a second in all
/// (`None`: flat out); returns how many were answered.
fn load(addr: std::net::SocketAddr, host: &TestHost, duration: Duration, rate: Option<u32>) -> u64 {
    let threads: Vec<_> = (0..AGENTS)
        .map(|agent| {
            let host = host.clone();
            std::thread::spawn(move || {
                let mut client = Client::connect(addr, &host).expect("connect");
                let start = Instant::now();
                let mut answered = 0u64;
                let mut id = 0u32;
                while start.elapsed() < duration {
                    let burst = match rate {
                        Some(_) => 1,
                        None => PIPELINE,
                    };
                    for _ in 0..burst {
                        id += 1;
                        let tag = format!("m{agent}-{id}");
                        client
                            .send(id, authorize(Method::Ssh, &tag, "alice", "alice", "web1"))
                            .expect("send");
                    }
                    for _ in 0..burst {
                        match client.next_event().expect("answer") {
                            gatehouse_common::session::ClientEvent::Response {
                                body: Response::Allow { .. },
                                ..
                            } => answered += 1,
                            other => panic!("{other:?}"),
                        }
                    }
                    if let Some(rate) = rate {
                        // Pacing a measurement, not synchronising a test.
                        let per_agent = f64::from(rate) / AGENTS as f64;
                        let due = Duration::from_secs_f64(answered as f64 / per_agent);
                        std::thread::sleep(due.saturating_sub(start.elapsed()));
                    }
                }
                answered
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().expect("agent")).sum()
}

/// Delays from decision to store, ms, of r1's records stored after `after_id`, sorted.
fn delays(cluster: &Cluster, after_id: i64) -> (Vec<i64>, i64) {
    let store = cluster.files.dir.path().join("audit.sqlite");
    let conn =
        rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the audit store");
    let mut statement = conn
        .prepare("SELECT id, stored_ms - at_ms FROM records WHERE server = 'r1' AND id > ?1")
        .unwrap();
    let rows: Vec<(i64, i64)> = statement
        .query_map([after_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let last = rows.iter().map(|r| r.0).max().unwrap_or(after_id);
    let mut d: Vec<i64> = rows.into_iter().map(|r| r.1).collect();
    d.sort_unstable();
    (d, last)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(0)
}

/// Waits until the store holds `n` of r1's records after `after_id`; the seconds it took.
fn wait_stored(cluster: &Cluster, after_id: i64, n: u64, since: Instant) -> f64 {
    loop {
        let (d, _) = delays(cluster, after_id);
        if d.len() as u64 >= n {
            return since.elapsed().as_secs_f64();
        }
        assert!(
            since.elapsed() < Duration::from_secs(600),
            "the relay stalled"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "a measurement for docs/BENCHMARKS.md: run in release with --ignored --nocapture"]
fn audit_journal_and_relay_rates_and_the_delay_to_the_master() {
    measure("answer_after: Written (default)", "");
    measure("answer_after: Synced", "audit: (answer_after: Synced),");
}

/// One cluster whose replica's journal has `settings` (the master's keeps its default).
fn measure(label: &str, settings: &str) {
    let cluster = Cluster::start(&["r1"]);
    let (addr, key) = cluster.pinned();
    let r1 = cluster.start_replica_with("r1", &[(&addr, &key)], settings);
    cluster.wait_caught_up("r1");
    let web1 = cluster.test_host("web1");
    let seconds = 10;
    let start = Instant::now();
    let answered = load(r1.addr, &web1, Duration::from_secs(seconds), None);
    let load_s = start.elapsed().as_secs_f64();
    let stored_s = wait_stored(&cluster, 0, answered, start);
    let (flat, last) = delays(&cluster, 0);
    println!(
        "{label}: flat out: {answered} decisions in {load_s:.1} s = {:.0}/s journaled; \
         all stored on the master after {stored_s:.1} s = {:.0}/s relayed and stored; \
         decision to store p50 {} ms, p99 {} ms",
        answered as f64 / load_s,
        answered as f64 / stored_s,
        percentile(&flat, 0.5),
        percentile(&flat, 0.99)
    );
    let rate = 2000;
    let start = Instant::now();
    let answered = load(r1.addr, &web1, Duration::from_secs(seconds), Some(rate));
    wait_stored(&cluster, last, answered, start);
    let (steady, _) = delays(&cluster, last);
    println!(
        "{label}: steady {rate}/s: {answered} decisions; decision to store p50 {} ms, p99 {} ms",
        percentile(&steady, 0.5),
        percentile(&steady, 0.99)
    );
}
