//! Floods from one source or one host leave the others served, tried against a real replica:
//! an authenticate flood from one host, a source holding connections open in the handshake,
//! one host's many authenticated connections. Each test asserts what a bystander host gets
//! (answers, connections), never how fast.

use gatehouse_common::session::ClientEvent;
use gatehouse_common::types::ErrorCode;
use gatehouse_common::wire::Response;
use gatehouse_tests::requests::authenticate;
use gatehouse_tests::*;
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
