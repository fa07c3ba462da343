//! The real agent engine and driver against real replicas on loopback: answers, failover when
//! a replica is killed mid-run, redirects from a busy or full replica, probing and ordered
//! agents on one replica, and what the caller hears when nothing is reachable (refused or
//! silent).

use gatehouse_agent::balance::Balancing;
use gatehouse_agent::driver::Driver;
use gatehouse_agent::engine::{AgentError, Engine, EngineConfig};
use gatehouse_common::wire::Response;
use gatehouse_tests::driving::{complete, submit_ssh};
use gatehouse_tests::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn engine(host: &TestHost, servers: usize, balancing: Balancing) -> Engine {
    Engine::new(EngineConfig::with_defaults(
        &host.name,
        host.key.clone(),
        servers,
        balancing,
    ))
}

#[test]
fn probing_and_ordered_agents_are_served_by_the_same_replica() {
    let (db, hosts) = test_database(2);
    let replica = start_replica(&db, "()");
    // The replica first, then a port nothing listens on: the ordered agent goes to the first
    // in the list, the probing one to the only server that answers its probes.
    let servers = vec![replica.addr, dead_port()];
    let mut driver = Driver::new(servers, 1).unwrap();
    let probing = driver.add_engine(engine(&hosts[0], 2, Balancing::Probing));
    let ordered = driver.add_engine(engine(&hosts[1], 2, Balancing::Ordered));
    submit_ssh(&mut driver, probing);
    submit_ssh(&mut driver, ordered);
    let done = complete(&mut driver, 2);
    for c in &done {
        assert!(
            matches!(c.outcome.result, Ok(Response::Allow { .. })),
            "{c:?}"
        );
        assert_eq!(c.outcome.server, Some(0), "{c:?}");
    }
    let engines: Vec<_> = done.iter().map(|c| c.engine).collect();
    assert!(engines.contains(&probing) && engines.contains(&ordered));
    let status = driver.engine(probing).status(Instant::now());
    assert!(
        status.servers[0].last_report.is_some(),
        "the probing agent chose by a probe reply"
    );
}

#[test]
fn a_replica_killed_mid_run_loses_no_request() {
    let (db, hosts) = test_database(40);
    let replicas: Vec<ServerProcess> = (0..2)
        .map(|_| start_replica(&db, "(benchmark_service_delay_ms: 20, busy_wait_ms: 60000)"))
        .collect();
    let servers: Vec<SocketAddr> = replicas.iter().map(|r| r.addr).collect();
    let mut driver = Driver::new(servers, 2).unwrap();
    let agents: Vec<usize> = hosts[..40]
        .iter()
        .map(|h| driver.add_engine(engine(h, 2, Balancing::Probing)))
        .collect();
    // Warm up: every agent connected somewhere.
    for &a in &agents {
        submit_ssh(&mut driver, a);
    }
    complete(&mut driver, agents.len());
    // Forty requests in flight, then replica 0 dies.
    for &a in &agents {
        submit_ssh(&mut driver, a);
    }
    driver
        .turn(Some(Duration::from_millis(5)), &mut Vec::new())
        .unwrap();
    replicas[0].signal(libc::SIGKILL);
    let done = complete(&mut driver, agents.len());
    for c in &done {
        assert!(
            matches!(c.outcome.result, Ok(Response::Allow { .. })),
            "{c:?}"
        );
    }
    assert!(done
        .iter()
        .all(|c| c.outcome.latency < Duration::from_secs(5)));
}

#[test]
fn with_every_server_unreachable_the_caller_hears_before_the_deadline() {
    // Two ports nothing listens on: connects are refused at once.
    let dead: Vec<SocketAddr> = (0..2).map(|_| dead_port()).collect();
    assert_no_server_reachable_before_the_deadline(dead, 3);
}

/// One request from an agent whose servers are `servers` ends with "no server reachable",
/// before its 5 s deadline.
fn assert_no_server_reachable_before_the_deadline(servers: Vec<SocketAddr>, seed: u64) {
    let (_, hosts) = test_database(1);
    let count = servers.len();
    let mut driver = Driver::new(servers, seed).unwrap();
    let a = driver.add_engine(engine(&hosts[0], count, Balancing::Probing));
    let start = Instant::now();
    submit_ssh(&mut driver, a);
    let c = complete(&mut driver, 1).remove(0);
    assert_eq!(c.outcome.result, Err(AgentError::NoServerReachable));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

/// A server that is there but silent, as behind a firewall that drops packets: its TCP port
/// listens with a full accept queue (backlog 0 and one connection never accepted), so the
/// kernel drops further SYNs without a word; its UDP port is bound and never read, so probes
/// go unanswered. Keep the returned sockets alive while the server should stay silent.
fn silent_server() -> (SocketAddr, SilentServer) {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen on a socket this test owns; a second listen only lowers the backlog.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let addr = listener.local_addr().unwrap();
    let queued = std::net::TcpStream::connect(addr).unwrap();
    let probes = std::net::UdpSocket::bind(addr).unwrap();
    let sockets = SilentServer {
        _listener: listener,
        _queued: queued,
        _probes: probes,
    };
    (addr, sockets)
}

/// The sockets that keep a [`silent_server`] silent (closed when dropped).
struct SilentServer {
    _listener: std::net::TcpListener,
    _queued: std::net::TcpStream,
    _probes: std::net::UdpSocket,
}

#[test]
fn with_every_server_silent_the_caller_hears_no_server_reachable_before_the_deadline() {
    let (first, _keep_first) = silent_server();
    let (second, _keep_second) = silent_server();
    // Both servers are probed and given a connect each (150 ms of probing, connects 250 ms
    // apart, 1 s each: about 1.4 s); nothing answers, so the caller hears that rather than
    // waiting out its 5 s deadline.
    assert_no_server_reachable_before_the_deadline(vec![first, second], 4);
}

#[test]
fn a_replica_at_its_connection_cap_sends_the_agent_to_another_one() {
    let (db, hosts) = test_database(2);
    let full = start_replica(&db, "(max_connections: 1)");
    let other = start_replica(&db, "()");
    // Another agent holds the full replica's only place.
    let _holder = Client::connect(full.addr, &hosts[1]).expect("the one place");
    let mut driver = Driver::new(vec![full.addr, other.addr], 5).unwrap();
    // Ordered: the full replica, first in the list, is certainly tried first.
    let a = driver.add_engine(engine(&hosts[0], 2, Balancing::Ordered));
    submit_ssh(&mut driver, a);
    let c = complete(&mut driver, 1).remove(0);
    assert!(
        matches!(c.outcome.result, Ok(Response::Allow { .. })),
        "{c:?}"
    );
    assert_eq!((c.outcome.server, c.outcome.redirects), (Some(1), 1));
    let status = driver.engine(a).status(Instant::now());
    assert!(
        status.servers[0].avoided,
        "the full replica is avoided a while"
    );
}

#[test]
fn a_busy_replica_redirects_the_agent_to_another_one() {
    let (db, hosts) = test_database(3);
    // Replica 0 takes 400 ms per request and calls anything predicted over 100 ms "busy".
    let slow = start_replica(
        &db,
        "(workers: 1, benchmark_service_delay_ms: 400, busy_wait_ms: 100)",
    );
    let fast = start_replica(&db, "()");
    let mut driver = Driver::new(vec![slow.addr, fast.addr], 4).unwrap();
    // Ordered mode: both agents go to replica 0 first. They wait out a 400 ms answer (no
    // hedge, a 2 s response timeout): this test is about the replica's "busy" answer, not
    // about the agents leaving a slow server on their own.
    let patient = |host: &TestHost| {
        let mut config =
            EngineConfig::with_defaults(&host.name, host.key.clone(), 2, Balancing::Ordered);
        config.failover.hedge = None;
        config.failover.response.min = Duration::from_secs(2);
        Engine::new(config)
    };
    let first = driver.add_engine(patient(&hosts[0]));
    let second = driver.add_engine(patient(&hosts[1]));
    // The first request teaches the slow replica its service time (an idle replica always
    // takes a request, whatever it predicts).
    submit_ssh(&mut driver, first);
    let c = complete(&mut driver, 1).remove(0);
    assert_eq!((c.outcome.server, c.outcome.redirects), (Some(0), 0));
    // Keep it busy with another slow request...
    submit_ssh(&mut driver, first);
    (0..500)
        .filter_map(|_| {
            driver
                .turn(Some(Duration::from_millis(1)), &mut Vec::new())
                .unwrap();
            probe(slow.addr, &hosts[2], WAIT_LIMIT)
        })
        .find(|r| r.load.in_service == 1)
        .expect("the slow request in service");
    // ...now it predicts (1 in service + 1) × 400 ms > 100 ms: busy, go elsewhere.
    submit_ssh(&mut driver, second);
    let done = complete(&mut driver, 2);
    let c = done.iter().find(|c| c.engine == second).unwrap();
    assert!(
        matches!(c.outcome.result, Ok(Response::Allow { .. })),
        "{c:?}"
    );
    assert_eq!(c.outcome.server, Some(1), "answered by the other replica");
    assert_eq!(c.outcome.redirects, 1);
}
