//! Connection handling of a real gatehouse-replica: the cap and its exact count, idle and age
//! goodbyes, handshake and trickle timeouts, SIGTERM draining, cipher choice, and the bound on
//! sessions that keep their cipher built.

use gatehouse_common::session::{ClientError, ClientEvent, ClientSession};
use gatehouse_common::types::{ErrorCode, GoodbyeReason};
use gatehouse_common::wire::{Handshake, Response};
use gatehouse_tests::client::{closed_by_server, raw_connect, read_plain_frame};
use gatehouse_tests::requests::*;
use gatehouse_tests::*;
use std::io::Write;
use std::net::SocketAddr;

/// Probes until the replica reports `want` open connections (the count is updated as the
/// reactor notices closes, which for agent-initiated closes happens asynchronously).
fn wait_for_connections(addr: SocketAddr, prober: &TestHost, want: u32) {
    let mut last = None;
    for _ in 0..500 {
        let reply = probe(addr, prober, WAIT_LIMIT).expect("probe answered");
        if reply.load.connections == want {
            return;
        }
        last = Some(reply.load.connections);
    }
    panic!("connection count stuck at {last:?}, expected {want}");
}

#[test]
fn the_cap_admits_exactly_cap_connections_and_the_count_returns_to_zero() {
    let (db, hosts) = test_database(8);
    let replica = start_replica(&db, "(max_connections: 5, handshake_timeout_ms: 300)");
    let prober = &hosts[7];
    for round in 0..2 {
        let mut admitted: Vec<Client> = hosts[..5]
            .iter()
            .map(|h| Client::connect(replica.addr, h).expect("under the cap"))
            .collect();
        wait_for_connections(replica.addr, prober, 5);
        // The sixth is accepted, told to go elsewhere, and closed at once.
        let mut sixth = raw_connect(replica.addr).unwrap();
        match read_plain_frame(&mut sixth) {
            Some(Handshake::Error(e)) => {
                assert_eq!(e.code, ErrorCode::TooManyConnections, "round {round}");
                assert!(e.code.means_go_elsewhere());
            }
            other => panic!("expected too-many-connections, got {other:?}"),
        }
        assert!(closed_by_server(&mut sixth));
        // The admitted ones still work.
        for (n, agent) in admitted.iter_mut().enumerate() {
            assert!(matches!(
                agent.request(n as u32, ssh_on(&hosts[n].name)).unwrap(),
                Response::Allow { .. }
            ));
        }
        // Free two slots, then use them for connections that end badly in different ways:
        // garbage, an unknown host, and a handshake that never comes (timeout).
        admitted.truncate(3);
        wait_for_connections(replica.addr, prober, 3);
        let mut garbage = raw_connect(replica.addr).unwrap();
        garbage.write_all(&[0, 0, 0, 3, 0xde, 0xad, 0xbe]).unwrap();
        assert!(closed_by_server(&mut garbage));
        let stranger = TestHost {
            name: "stranger".into(),
            key: hosts[0].key.clone(),
        };
        assert!(Client::connect(replica.addr, &stranger).is_err());
        let mut silent = raw_connect(replica.addr).unwrap();
        let mut silent2 = raw_connect(replica.addr).unwrap();
        assert!(closed_by_server(&mut silent), "handshake timeout closes it");
        assert!(closed_by_server(&mut silent2));
        drop(admitted);
        wait_for_connections(replica.addr, prober, 0);
    }
}

#[test]
fn an_idle_connection_gets_the_idle_goodbye() {
    let (db, hosts) = test_database(1);
    let replica = start_replica(&db, "(idle_timeout_ms: 300)");
    let mut agent = Client::connect(replica.addr, &hosts[0]).unwrap();
    assert!(matches!(
        agent.request(1, ssh_on(&hosts[0].name)).unwrap(),
        Response::Allow { .. }
    ));
    assert_eq!(
        agent.next_event().unwrap(),
        ClientEvent::Goodbye(GoodbyeReason::Idle)
    );
    assert!(agent.closed_by_server());
    assert!(
        replica.log().contains("Idle"),
        "the close is logged with its reason"
    );
}

#[test]
fn an_old_connection_finishes_its_request_then_gets_the_reconnect_goodbye() {
    let (db, hosts) = test_database(1);
    // The request takes 600 ms; the connection ages out at 300 ms, while it is in flight.
    let replica = start_replica(
        &db,
        "(max_connection_age_ms: 300, benchmark_service_delay_ms: 600, busy_wait_ms: 60000)",
    );
    let mut agent = Client::connect(replica.addr, &hosts[0]).unwrap();
    agent.send(1, ssh_on(&hosts[0].name)).unwrap();
    match agent.next_event().unwrap() {
        ClientEvent::Response { id: 1, body } => assert!(matches!(body, Response::Allow { .. })),
        other => panic!("the in-flight request is answered first, got {other:?}"),
    }
    assert_eq!(
        agent.next_event().unwrap(),
        ClientEvent::Goodbye(GoodbyeReason::Reconnect)
    );
    assert!(agent.closed_by_server());
}

#[test]
fn a_handshake_that_does_not_finish_and_a_trickled_frame_are_closed() {
    let (db, hosts) = test_database(1);
    let replica = start_replica(&db, "(handshake_timeout_ms: 300, frame_timeout_ms: 300)");
    // Connect and say nothing.
    let mut silent = raw_connect(replica.addr).unwrap();
    match read_plain_frame(&mut silent) {
        Some(Handshake::Error(e)) => assert_eq!(e.code, ErrorCode::Timeout),
        other => panic!("{other:?}"),
    }
    assert!(closed_by_server(&mut silent));
    // Establish, then send half a frame and stop.
    let mut agent = Client::connect(replica.addr, &hosts[0]).unwrap();
    let frame = agent.seal(1, ssh_on(&hosts[0].name));
    agent.stream.write_all(&frame[..frame.len() / 2]).unwrap();
    match agent.next_event() {
        Err(ClientFailure::Protocol(ClientError::Server(e))) => {
            assert_eq!(e.code, ErrorCode::Timeout)
        }
        other => panic!("expected a timeout error, got {other:?}"),
    }
    assert!(agent.closed_by_server());
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let (db, hosts) = test_database(3);
    let mut replica = start_replica(
        &db,
        "(benchmark_service_delay_ms: 500, busy_wait_ms: 60000)",
    );
    let mut busy = Client::connect(replica.addr, &hosts[0]).unwrap();
    let mut idle = Client::connect(replica.addr, &hosts[1]).unwrap();
    busy.send(7, ssh_on(&hosts[0].name)).unwrap();
    // Wait until the request is in service, so the drain has something to finish.
    (0..500)
        .filter_map(|_| probe(replica.addr, &hosts[2], WAIT_LIMIT))
        .find(|r| r.load.in_service == 1)
        .expect("request in service");
    replica.signal(libc::SIGTERM);
    assert_eq!(
        idle.next_event().unwrap(),
        ClientEvent::Goodbye(GoodbyeReason::ShuttingDown)
    );
    match busy.next_event().unwrap() {
        ClientEvent::Response { id: 7, body } => assert!(matches!(body, Response::Allow { .. })),
        other => panic!("in-flight request answered before the goodbye, got {other:?}"),
    }
    assert_eq!(
        busy.next_event().unwrap(),
        ClientEvent::Goodbye(GoodbyeReason::ShuttingDown)
    );
    let status = replica
        .wait_exit(WAIT_LIMIT)
        .expect("exits after the drain");
    assert!(status.success(), "{status:?}\n{}", replica.log());
    assert!(raw_connect(replica.addr).is_err(), "no longer accepting");
}

#[test]
fn a_client_with_the_wrong_key_cannot_finish_the_handshake() {
    let (db, hosts) = test_database(1);
    let replica = start_replica(&db, "()");
    let mut raw = raw_connect(replica.addr).unwrap();
    let mut out = Vec::new();
    let mut session = ClientSession::start(
        &hosts[0].name,
        gatehouse_common::nodekeys::NodeKey([1; 32]),
        gatehouse_common::wire::SUPPORTED_VERSIONS,
        gatehouse_common::crypto::preferred_suites(),
        &mut rand::thread_rng(),
        &mut out,
    )
    .unwrap();
    raw.write_all(&out).unwrap();
    // The agent side notices the server's proof does not match its (wrong) key...
    let server_hello = match read_plain_frame(&mut raw) {
        Some(h @ Handshake::ServerHello(_)) => h,
        other => panic!("{other:?}"),
    };
    let mut body = Vec::new();
    server_hello.encode(&mut body).unwrap();
    assert_eq!(
        session.handle_frame(&mut body, &mut Vec::new()),
        Err(ClientError::BadServerProof)
    );
    // ...and a finish with a made-up proof is refused by the server, which logs it.
    let mut finish = Vec::new();
    Handshake::ClientFinish(gatehouse_common::wire::ClientFinish { proof: [7; 32] })
        .encode(&mut finish)
        .unwrap();
    let mut frame = (finish.len() as u32).to_be_bytes().to_vec();
    frame.extend(finish);
    raw.write_all(&frame).unwrap();
    match read_plain_frame(&mut raw) {
        Some(Handshake::Error(e)) => assert_eq!(e.code, ErrorCode::AuthFailed),
        other => panic!("{other:?}"),
    }
    assert!(closed_by_server(&mut raw));
    let log = replica.log();
    assert!(
        log.contains(&format!("node key refused: host={}", hosts[0].name)),
        "the failure is logged with peer and host:\n{log}"
    );
}

#[test]
fn a_pipelining_agent_is_held_to_its_in_flight_cap_and_every_request_is_answered() {
    let (db, hosts) = test_database(2);
    let replica = start_replica(
        &db,
        "(workers: 1, benchmark_service_delay_ms: 100, busy_wait_ms: 60000, max_in_flight_per_connection: 2)",
    );
    let mut agent = Client::connect(replica.addr, &hosts[0]).unwrap();
    // Eight requests in one write: the replica takes two at a time off the socket.
    let mut burst = Vec::new();
    for id in 0..8 {
        burst.extend(agent.seal(id, ssh_on(&hosts[0].name)));
    }
    agent.stream.write_all(&burst).unwrap();
    let mut seen = 0;
    for _ in 0..20 {
        let load = probe(replica.addr, &hosts[1], WAIT_LIMIT)
            .expect("probe")
            .load;
        assert!(
            load.queue_len + load.in_service <= 2,
            "cap exceeded: {load:?}"
        );
        seen = seen.max(load.queue_len + load.in_service);
    }
    assert!(seen >= 1, "the requests were being served");
    for id in 0..8 {
        match agent.next_event().unwrap() {
            ClientEvent::Response { id: got, body } => {
                assert_eq!(got, id, "answers come in order");
                assert!(matches!(body, Response::Allow { .. }));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn either_cipher_suite_seals_and_aes_is_chosen_only_with_aes_hardware() {
    use gatehouse_common::crypto::{aes_hardware, CipherSuite::*};
    let (db, hosts) = test_database(1);
    // One test host stands for hundreds of agents here: lift its cap on connections.
    let replica = start_replica(&db, "(max_connections_per_host: 1000)");
    let versions = gatehouse_common::wire::SUPPORTED_VERSIONS;
    // The replica runs here too, so it has AES hardware exactly when this test does.
    let aes_or_chacha = if aes_hardware() {
        Aes256Gcm
    } else {
        ChaCha20Poly1305
    };
    for (offer, expect) in [
        (&[ChaCha20Poly1305][..], ChaCha20Poly1305),
        (&[Aes256Gcm, ChaCha20Poly1305][..], aes_or_chacha),
        (&[ChaCha20Poly1305, Aes256Gcm][..], ChaCha20Poly1305),
    ] {
        let mut agent = Client::connect_offering(replica.addr, &hosts[0], versions, offer)
            .unwrap_or_else(|e| panic!("{offer:?}: {e:?}"));
        assert_eq!(agent.cipher(), Some(expect), "{offer:?}");
        assert!(matches!(
            agent.request(1, ssh_on(&hosts[0].name)),
            Ok(Response::Allow { .. })
        ));
    }
    let aes_only = Client::connect_offering(replica.addr, &hosts[0], versions, &[Aes256Gcm]);
    match aes_only {
        Ok(agent) => assert!(aes_hardware() && agent.cipher() == Some(Aes256Gcm)),
        Err(ClientFailure::Protocol(ClientError::Server(e))) => {
            assert!(!aes_hardware());
            assert_eq!(e.code, ErrorCode::UnsupportedCipher);
        }
        Err(e) => panic!("{e:?}"),
    }
}

/// A replica keeps the AES cipher built for at most `MAX_PREPARED_SESSIONS` sessions (a fixed
/// memory budget); connections beyond it build the cipher per frame and are served alike, and
/// closing prepared sessions gives their places back without upsetting the count (a debug
/// build would abort on an underflow).
#[test]
fn connections_beyond_the_kept_cipher_bound_are_served_alike() {
    use gatehouse_common::crypto::CipherSuite::*;
    use gatehouse_replica::bridge::reactor::MAX_PREPARED_SESSIONS;
    let (db, hosts) = test_database(1);
    // One test host stands for hundreds of agents here: lift its cap on connections.
    let replica = start_replica(&db, "(max_connections_per_host: 1000)");
    let versions = gatehouse_common::wire::SUPPORTED_VERSIONS;
    let offer = [Aes256Gcm, ChaCha20Poly1305];
    let connect =
        || Client::connect_offering(replica.addr, &hosts[0], versions, &offer).expect("connects");
    let mut agents: Vec<Client> = (0..MAX_PREPARED_SESSIONS + 8).map(|_| connect()).collect();
    for (n, agent) in agents.iter_mut().enumerate() {
        let answer = agent.request(1, ssh_on(&hosts[0].name));
        assert!(
            matches!(answer, Ok(Response::Allow { .. })),
            "agent {n}: {answer:?}"
        );
    }
    drop(agents);
    wait_for_connections(replica.addr, &hosts[0], 0);
    for n in 0..8 {
        let answer = connect().request(1, ssh_on(&hosts[0].name));
        assert!(
            matches!(answer, Ok(Response::Allow { .. })),
            "agent {n} after: {answer:?}"
        );
    }
}
