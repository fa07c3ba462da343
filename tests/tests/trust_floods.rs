//! Floods from one source or one host leave the others served, tried against a real replica:
//! an authenticate flood from one host, a source holding connections open in the handshake,
//! one host's many authenticated connections. Each test asserts what a bystander host gets
//! (answers, connections), never how fast.

use gatehouse_common::session::{ClientError, ClientEvent};
use gatehouse_common::types::ErrorCode;
use gatehouse_common::wire::{Handshake, Response};
use gatehouse_tests::client::{closed_by_server, raw_connect, raw_connect_from, read_plain_frame};
use gatehouse_tests::requests::{authenticate, ssh_on};
use gatehouse_tests::*;
use std::io::Write;
use std::net::{IpAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Authenticate requests a flooding connection keeps in flight (the server takes 16).
const PIPELINE: u32 = 16;

/// What a flooder saw.
#[derive(Debug, Default)]
struct Flood {
    answered: u64,
    busy: u64,
}

/// Floods `replica` with wrong passwords from `host` over `connections` connections, each
/// keeping [`PIPELINE`] requests in flight, until `stop` is set (or the wait limit passes).
fn flood_authenticate(
    addr: std::net::SocketAddr,
    host: TestHost,
    connections: usize,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Flood> {
    std::thread::spawn(move || {
        let mut clients: Vec<Client> = (0..connections)
            .map(|_| Client::connect(addr, &host).expect("flooder connects"))
            .collect();
        let wrong = || authenticate("alice", "not-her-password", &host.name);
        for client in &mut clients {
            for id in 0..PIPELINE {
                client.send(id, wrong()).unwrap();
            }
        }
        let mut flood = Flood::default();
        let started = Instant::now();
        let mut next_id = PIPELINE;
        while !stop.load(Ordering::Relaxed) && started.elapsed() < WAIT_LIMIT {
            for client in &mut clients {
                match client.next_event() {
                    Ok(ClientEvent::Response { body, .. }) => {
                        flood.answered += 1;
                        if matches!(&body, Response::Error(e) if e.code == ErrorCode::Busy) {
                            flood.busy += 1;
                        }
                        next_id += 1;
                        client.send(next_id, wrong()).unwrap();
                    }
                    other => panic!("flooder: {other:?}"),
                }
            }
        }
        flood
    })
}

#[test]
fn a_bystander_host_gets_its_password_checks_while_another_host_floods() {
    let (db, hosts) = test_database(2);
    // One worker at 100 ms a check: a flood of 4 × 16 checks would predict 6.4 s of queue,
    // far over the 1 s busy limit, if it were served first come first served.
    let replica = start_replica(
        &db,
        "(workers: 1, benchmark_service_delay_ms: 100, busy_wait_ms: 1000)",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = flood_authenticate(replica.addr, hosts[0].clone(), 4, stop.clone());
    let bystander = &hosts[1];
    let mut client = Client::connect(replica.addr, bystander).unwrap();
    // Wait until the flood is on: the flooder is being told to go elsewhere.
    let limited = (0..500)
        .filter_map(|_| probe(replica.addr, bystander, WAIT_LIMIT))
        .find(|r| r.load.queue_len > 0);
    assert!(limited.is_some(), "the flood reaches the queue");
    for id in 0..6 {
        let answer = client
            .request(id, authenticate("alice", ALICE_PASSWORD, &bystander.name))
            .unwrap();
        assert_eq!(answer, Response::AuthOk, "bystander request {id}");
    }
    stop.store(true, Ordering::Relaxed);
    let flood = flooder.join().unwrap();
    // The flooder was held to its host's limits (8 in flight, 10 a second): the rest of what
    // it sent was answered "busy, go elsewhere".
    assert!(flood.busy > 0, "{flood:?}");
    assert!(flood.answered > flood.busy, "{flood:?}");
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// One request on a new connection as `host`: what a bystander agent does.
fn fresh_answer(addr: std::net::SocketAddr, host: &TestHost, round: u32) -> Response {
    let mut agent = Client::connect(addr, host)
        .unwrap_or_else(|e| panic!("bystander connection {round}: {e:?}"));
    agent.request(round, ssh_on(&host.name)).unwrap()
}

#[test]
fn a_bystander_connects_and_is_answered_while_keyless_connections_flood_the_handshake() {
    let (db, hosts) = test_database(3);
    // A 200-connection table: 50 places for handshakes (12 per source address).
    let replica = start_replica(&db, "(max_connections: 200)");
    let mut established = Client::connect(replica.addr, &hosts[0]).unwrap();
    // One address opens 250 connections and never says a word (today they fill the table).
    let flood: Vec<TcpStream> = (0..250)
        .filter_map(|_| raw_connect_from(loopback(2), replica.addr).ok())
        .collect();
    assert_eq!(flood.len(), 250, "the kernel accepted them all");
    for round in 0..17 {
        let answer = fresh_answer(replica.addr, &hosts[1], round);
        assert!(matches!(answer, Response::Allow { .. }), "{answer:?}");
    }
    let report = probe(replica.addr, &hosts[2], WAIT_LIMIT).unwrap();
    assert!(report.load.connections <= 12 + 3, "{:?}", report.load);

    // Ten addresses together fill the handshake cap; the agents already connected are still
    // answered, and the table keeps its other 150 places.
    let _many: Vec<TcpStream> = (3..13)
        .flat_map(|n| (0..20).filter_map(move |_| raw_connect_from(loopback(n), replica.addr).ok()))
        .collect();
    for id in 0..5 {
        let answer = established.request(id, ssh_on(&hosts[0].name)).unwrap();
        assert!(matches!(answer, Response::Allow { .. }), "{answer:?}");
    }
    let report = probe(replica.addr, &hosts[2], WAIT_LIMIT).unwrap();
    assert!(report.load.connections <= 50 + 1, "{:?}", report.load);
    drop(flood);
}

#[test]
fn one_hosts_many_connections_leave_room_for_the_others() {
    let (db, hosts) = test_database(2);
    let replica = start_replica(&db, "(max_connections: 40)");
    // A host (its key stolen, or its agent gone wrong) opens as many connections as the table
    // holds; the server keeps 8 of them and tells the rest to go elsewhere.
    let thief = &hosts[0];
    let mut held: Vec<Client> = (0..40)
        .map(|_| Client::connect(replica.addr, thief).expect("the handshake itself completes"))
        .collect();
    let mut kept = 0;
    for (n, client) in held.iter_mut().enumerate() {
        match client.request(n as u32, ssh_on(&thief.name)) {
            Ok(Response::Allow { .. }) => kept += 1,
            Err(ClientFailure::Protocol(ClientError::Server(e))) => {
                assert_eq!(e.code, ErrorCode::TooManyConnections, "{e:?}")
            }
            Err(ClientFailure::Closed) => {}
            other => panic!("connection {n}: {other:?}"),
        }
    }
    assert_eq!(kept, 8);
    for round in 0..17 {
        let answer = fresh_answer(replica.addr, &hosts[1], round);
        assert!(matches!(answer, Response::Allow { .. }), "{answer:?}");
    }
}

#[test]
fn before_the_handshake_a_frame_is_capped_at_the_largest_handshake_message() {
    let (db, _) = test_database(1);
    let replica = start_replica(&db, "()");
    let mut raw = raw_connect(replica.addr).unwrap();
    // A 600-byte frame announced before any key is proven (the largest hello is 332 bytes):
    // refused from its length prefix, not buffered (today up to 64 KiB are).
    raw.write_all(&600u32.to_be_bytes()).unwrap();
    match read_plain_frame(&mut raw) {
        Some(Handshake::Error(e)) => assert_eq!(e.code, ErrorCode::FrameTooLarge, "{e:?}"),
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    assert!(closed_by_server(&mut raw));
}
