//! The agent against real faults: a replica stopped with SIGSTOP while requests are on its
//! connections, and (in a network namespace with nftables) replicas whose TCP is dropped
//! while their UDP probes are still answered. Behaviour is asserted, not speed: the requests
//! end on the other server, sooner than the fixed timeout the agent used to wait.

use gatehouse_agent::balance::Balancing;
use gatehouse_agent::config_failover::DEFAULT_RESPONSE_TIMEOUT_MAX_MS;
use gatehouse_agent::driver::Driver;
use gatehouse_agent::engine::{AgentError, Engine, EngineConfig};
use gatehouse_common::wire::Response;
use gatehouse_tests::driving::{complete, submit_ssh};
use gatehouse_tests::netns::Netns;
use gatehouse_tests::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn engine(host: &TestHost, servers: usize) -> Engine {
    Engine::new(EngineConfig::with_defaults(
        &host.name,
        host.key.clone(),
        servers,
        Balancing::Probing,
    ))
}

/// `agents` probing engines on `servers`, each answered `rounds` requests in turn.
fn warmed_driver(servers: Vec<SocketAddr>, hosts: &[TestHost], rounds: usize) -> Driver {
    let count = servers.len();
    let mut driver = Driver::new(servers, 12).unwrap();
    for host in hosts {
        driver.add_engine(engine(host, count));
    }
    for _ in 0..rounds {
        for a in 0..hosts.len() {
            submit_ssh(&mut driver, a);
        }
        for c in complete(&mut driver, hosts.len()) {
            assert!(
                matches!(c.outcome.result, Ok(Response::Allow { .. })),
                "{c:?}"
            );
        }
    }
    driver
}

#[test]
fn a_replica_stopped_mid_run_loses_no_request_and_holds_none_for_long() {
    let (db, hosts) = test_database(16);
    let replicas: Vec<ServerProcess> = (0..2).map(|_| start_replica(&db, "()")).collect();
    let servers: Vec<SocketAddr> = replicas.iter().map(|r| r.addr).collect();
    let mut driver = warmed_driver(servers, &hosts, 5);
    let on_stopped: Vec<usize> = (0..hosts.len())
        .filter(|&a| {
            let status = driver.engine(a).status(Instant::now());
            status.connection.is_some_and(|(server, _, _)| server == 0)
        })
        .collect();
    assert!(!on_stopped.is_empty(), "some agents were on replica 0");
    // Replica 0 stops (its kernel still accepts and acknowledges); every agent asks again.
    replicas[0].signal(libc::SIGSTOP);
    for a in 0..hosts.len() {
        submit_ssh(&mut driver, a);
    }
    let done = complete(&mut driver, hosts.len());
    replicas[0].signal(libc::SIGCONT);
    let ceiling = Duration::from_millis(DEFAULT_RESPONSE_TIMEOUT_MAX_MS);
    for c in &done {
        assert!(
            matches!(c.outcome.result, Ok(Response::Allow { .. })),
            "{c:?}"
        );
        if on_stopped.contains(&c.engine) {
            assert_eq!(c.outcome.server, Some(1), "moved to the running replica");
            // Moved at the timeout derived from replica 0's recent answers (or hedged before
            // it), not at the fixed 2 s the agent used to wait for every stalled request.
            assert!(c.outcome.latency < ceiling, "{c:?}");
        }
    }
}

#[test]
fn replicas_whose_tcp_is_dropped_while_they_answer_probes_are_passed_over() {
    let Some(ns) = Netns::create("tcpdrop") else {
        return;
    };
    let (db, hosts) = test_database(9);
    let wrapper = ns.wrapper();
    let blocked = start_replica_wrapped(&db, "()", &wrapper);
    let open = start_replica_wrapped(&db, "()", &wrapper);
    ns.drop_tcp_to(blocked.addr.port());
    let servers = vec![blocked.addr, open.addr];
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // This thread's sockets live in the namespace, beside the replicas.
                ns.enter_this_thread();
                let mut driver = warmed_driver(servers.clone(), &hosts[..8], 3);
                for a in 0..8 {
                    let status = driver.engine(a).status(Instant::now());
                    assert_eq!(status.connection.map(|c| c.0), Some(1), "{status:?}");
                }
                let answered_probes = (0..8).any(|a| {
                    let status = driver.engine(a).status(Instant::now());
                    status.servers[0].last_report.is_some()
                });
                assert!(
                    answered_probes,
                    "the blocked replica's probes were answered"
                );
                // Now every replica drops TCP: a fresh agent hears so in one staggered pass
                // (two servers: 250 ms apart, 1 s each), not at its 5 s deadline.
                ns.drop_tcp_to(open.addr.port());
                let fresh = driver.add_engine(engine(&hosts[8], 2));
                let start = Instant::now();
                submit_ssh(&mut driver, fresh);
                let c = complete(&mut driver, 1).remove(0);
                assert_eq!(
                    c.outcome.result,
                    Err(AgentError::NoServerAcceptsConnections)
                );
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "{:?}",
                    start.elapsed()
                );
            })
            .join()
            .expect("the namespace thread");
    });
}
