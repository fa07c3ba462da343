//! A real gatehouse-replica answers authorize and authenticate over the sealed protocol, and
//! tells probing agents how long they would wait.

use gatehouse_common::policy::Database;
use gatehouse_common::types::{DenyReason, ErrorCode, Method};
use gatehouse_common::wire::Response;
use gatehouse_tests::client::{raw_connect, read_plain_frame};
use gatehouse_tests::requests::*;
use gatehouse_tests::*;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

#[test]
fn a_replica_started_from_the_example_config_answers_correctly() {
    // The shipped example, with only the port changed so tests can run side by side.
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf");
    let dir = TestDir::new("example");
    let text = std::fs::read_to_string(conf.join("replica.ron")).unwrap();
    let text = text.replace("127.0.0.1:7701", "127.0.0.1:0");
    // The database holds node keys: the replica reads it only when private (0600), which a
    // checkout does not give it.
    let db_text = std::fs::read_to_string(conf.join("example-db.ron")).unwrap();
    write_private(&dir.path().join("example-db.ron"), &db_text);
    let config = dir.path().join("replica.ron");
    std::fs::write(&config, text).unwrap();
    let config = config.to_string_lossy().to_string();
    let replica = ServerProcess::start("gatehouse-replica", &["--config", &config], dir, &[]);

    let db = Database::load(&conf.join("example-db.ron")).unwrap();
    let web1 = db.hosts.iter().find(|h| h.name == "web1").unwrap();
    let web1 = TestHost {
        name: "web1".into(),
        key: gatehouse_common::nodekeys::NodeKey::from_hex(&web1.node_key).unwrap(),
    };
    let mut agent = Client::connect(replica.addr, &web1).unwrap();

    match agent
        .request(
            1,
            authorize(Method::Ssh, "10.0.3.4", "alice", "alice", "web1"),
        )
        .unwrap()
    {
        Response::Allow { route } => assert!(route.contains("SSH"), "{route}"),
        other => panic!("alice should be allowed: {other:?}"),
    }
    assert_eq!(
        agent
            .request(2, authorize(Method::Ssh, "10.0.3.4", "bob", "bob", "web1"))
            .unwrap(),
        Response::Deny {
            reason: DenyReason::Locked
        }
    );
    assert_eq!(
        agent
            .request(
                3,
                authorize(Method::Ssh, "10.0.3.4", "mallory", "mallory", "web1")
            )
            .unwrap(),
        Response::Deny {
            reason: DenyReason::UnknownUser
        }
    );
    assert_eq!(
        agent
            .request(
                4,
                authorize(Method::Ssh, "10.0.3.4", "alice", "alice", "nosuchhost")
            )
            .unwrap(),
        Response::Deny {
            reason: DenyReason::UnknownHost
        }
    );
    assert_eq!(
        agent
            .request(5, authenticate("alice", "correct horse", "web1"))
            .unwrap(),
        Response::AuthOk
    );
    assert_eq!(
        agent
            .request(6, authenticate("alice", "wrong horse", "web1"))
            .unwrap(),
        Response::AuthFail
    );
}

#[test]
fn a_probe_reply_reflects_a_queue_built_up_by_slow_requests() {
    let (db, hosts) = test_database(8);
    // One worker, 100 ms per request: the queue is easy to see and to reason about.
    let replica = start_replica(
        &db,
        "(workers: 1, benchmark_service_delay_ms: 100, busy_wait_ms: 60000)",
    );
    let idle = probe(replica.addr, &hosts[0], WAIT_LIMIT).expect("idle probe answered");
    assert_eq!((idle.load.queue_len, idle.load.in_service), (0, 0));
    assert_eq!(idle.load.workers, 1);
    assert_eq!(idle.load.seed_wait_us, 0);
    assert!(idle.load.recommended_wait_us > 0, "never zero, even idle");

    // Six agents; the first teaches the replica its service time with one request.
    let mut agents: Vec<Client> = hosts[..6]
        .iter()
        .map(|h| Client::connect(replica.addr, h).unwrap())
        .collect();
    let ssh = |n: usize| authorize(Method::Ssh, "x", "alice", "alice", &hosts[n].name);
    assert!(matches!(
        agents[0].request(99, ssh(0)).unwrap(),
        Response::Allow { .. }
    ));
    // Now each sends one request: the first is served, five wait.
    for (n, agent) in agents.iter_mut().enumerate() {
        agent.send(n as u32, ssh(n)).unwrap();
    }
    // The probe races the requests through the reactor; ask until all six are in.
    let busy = (0..200)
        .filter_map(|_| probe(replica.addr, &hosts[7], WAIT_LIMIT))
        .find(|r| r.load.queue_len == 5 && r.load.in_service == 1)
        .expect("a probe sees one request in service and five queued");
    assert_eq!(busy.load.in_service, 1);
    assert_eq!(busy.load.queue_len, 5);
    // (5 queued + 1 in service + 1) × at least 100 ms per request / 1 worker.
    assert!(busy.load.recommended_wait_us >= 700_000, "{:?}", busy.load);
    assert!(busy.load.recommended_wait_us > idle.load.recommended_wait_us);

    for agent in &mut agents {
        match agent.next_event().unwrap() {
            gatehouse_common::session::ClientEvent::Response { body, .. } => {
                assert!(matches!(body, Response::Allow { .. }), "{body:?}")
            }
            other => panic!("{other:?}"),
        }
    }
    // After the burst the replica has measured real queue and service times.
    let after = probe(replica.addr, &hosts[7], WAIT_LIMIT).unwrap();
    assert!(after.load.mean_service_us >= 100_000, "{:?}", after.load);
    assert!(
        after.load.mean_queue_us >= 100_000,
        "waited behind others: {:?}",
        after.load
    );
    assert_eq!(after.load.queue_len, 0);
    assert_eq!(
        after.load.seed_wait_us, 0,
        "seed rule: mean queue time × empty queue"
    );
    assert!(
        after.load.recommended_wait_us >= 100_000,
        "a slow idle replica is not 0"
    );
}

#[test]
fn an_unauthenticated_probe_gets_no_reply() {
    let (db, hosts) = test_database(1);
    let replica = start_replica(&db, "()");
    let impostor = TestHost {
        name: hosts[0].name.clone(),
        key: gatehouse_common::nodekeys::NodeKey([9; 32]),
    };
    assert!(probe(replica.addr, &impostor, Duration::from_millis(300)).is_none());
    let stranger = TestHost {
        name: "stranger".into(),
        key: gatehouse_common::nodekeys::NodeKey([9; 32]),
    };
    assert!(probe(replica.addr, &stranger, Duration::from_millis(300)).is_none());
    assert!(
        probe(replica.addr, &hosts[0], WAIT_LIMIT).is_some(),
        "the real host is answered"
    );
}

#[test]
fn an_overloaded_replica_says_busy_go_elsewhere_and_stops_answering_probes() {
    let (db, hosts) = test_database(2);
    // One worker at 300 ms a request; a predicted wait over 1 s is "busy"; probes go
    // unanswered while anything is queued.
    let replica = start_replica(
        &db,
        "(workers: 1, benchmark_service_delay_ms: 300, busy_wait_ms: 1000, probe_silence_queue_len: 1)",
    );
    let mut agent = Client::connect(replica.addr, &hosts[0]).unwrap();
    // Teach the estimator the service time with one request.
    let ssh = || authorize(Method::Ssh, "x", "alice", "alice", &hosts[0].name);
    assert!(matches!(
        agent.request(0, ssh()).unwrap(),
        Response::Allow { .. }
    ));
    // Four requests in one write, handled in order in one reactor turn: predicted waits are
    // 300, 600 and 900 ms (queued) and 1200 ms (busy, answered at once, not queued).
    let mut burst = Vec::new();
    for id in 1..=4 {
        burst.extend(agent.seal(id, ssh()));
    }
    agent.stream.write_all(&burst).unwrap();
    use gatehouse_common::session::ClientEvent;
    match agent.next_event().unwrap() {
        ClientEvent::Response {
            id: 4,
            body: Response::Error(e),
        } => {
            assert_eq!(e.code, ErrorCode::Busy);
            assert!(e.estimate_us >= 1_000_000, "carries the estimate: {e:?}");
            assert!(e.code.means_go_elsewhere());
        }
        other => panic!("expected busy for request 4 first, got {other:?}"),
    }
    // At least two requests stay queued for the next 300 ms: probes go unanswered.
    assert!(probe(replica.addr, &hosts[1], Duration::from_millis(100)).is_none());
    // The three queued requests are still answered, in order.
    for id in 1..=3 {
        match agent.next_event().unwrap() {
            ClientEvent::Response {
                id: got,
                body: Response::Allow { .. },
            } => assert_eq!(got, id),
            other => panic!("{other:?}"),
        }
    }
    // Queue empty again: probes are answered.
    assert!(probe(replica.addr, &hosts[1], WAIT_LIMIT).is_some());
}

#[test]
fn an_unknown_protocol_version_gets_the_clear_error() {
    let (db, hosts) = test_database(1);
    let replica = start_replica(&db, "()");
    match Client::connect_with_versions(replica.addr, &hosts[0], &[99]) {
        Err(ClientFailure::Protocol(gatehouse_common::session::ClientError::Server(e))) => {
            assert_eq!(e.code, ErrorCode::UnsupportedVersion);
            assert_eq!(e.versions, gatehouse_common::wire::SUPPORTED_VERSIONS);
            assert!(e.message.contains("version"), "{}", e.message);
        }
        other => panic!("expected UnsupportedVersion, got {:?}", other.err()),
    }
    // A raw stream sees the server close after the error.
    let mut raw = raw_connect(replica.addr).unwrap();
    let mut hello = Vec::new();
    gatehouse_common::session::ClientSession::start(
        &hosts[0].name,
        hosts[0].key.clone(),
        &[99],
        gatehouse_common::crypto::preferred_suites(),
        &mut rand::thread_rng(),
        &mut hello,
    )
    .unwrap();
    raw.write_all(&hello).unwrap();
    assert!(matches!(
        read_plain_frame(&mut raw),
        Some(gatehouse_common::wire::Handshake::Error(e)) if e.code == ErrorCode::UnsupportedVersion
    ));
    assert!(gatehouse_tests::client::closed_by_server(&mut raw));
}

#[test]
fn an_idle_replica_always_takes_a_request_whatever_it_predicts() {
    let (db, hosts) = test_database(1);
    // 200 ms per request against a 10 ms busy limit: every prediction is over the limit.
    let replica = start_replica(
        &db,
        "(workers: 1, benchmark_service_delay_ms: 200, busy_wait_ms: 10)",
    );
    let mut agent = Client::connect(replica.addr, &hosts[0]).unwrap();
    for id in 0..3 {
        // Idle each time (the previous answer came back): never "busy" forever.
        assert!(matches!(
            agent.request(id, ssh_on(&hosts[0].name)).unwrap(),
            Response::Allow { .. }
        ));
    }
}
