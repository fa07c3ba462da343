//! Probes tried as an attacker would: a captured probe replayed (at once, from another address,
//! or a minute later) gets no reply from a real replica; and an agent does not let a forged
//! reply that echoes its probe's id cost it the genuine reply.

use gatehouse_agent::balance::Balancing;
use gatehouse_agent::driver::Driver;
use gatehouse_agent::engine::{Engine, EngineConfig};
use gatehouse_common::crypto::probe_auth::{open_probe, open_reply, seal_probe, seal_reply};
use gatehouse_common::wire::{unix_ms, LoadReport, Probe, ProbeReply};
use gatehouse_tests::requests::ssh_on;
use gatehouse_tests::*;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

/// A UDP socket on loopback that waits at most `WAIT_LIMIT` for a datagram.
fn udp() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    socket
}

/// Waits (bounded) until the server's log says it dropped `count` probes as `what`.
fn wait_for_log(server: &ServerProcess, what: &str, count: usize) {
    let start = Instant::now();
    while server.log().matches(what).count() < count {
        assert!(
            start.elapsed() < WAIT_LIMIT,
            "no `{what}` in the log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True if a datagram is waiting on `socket` now (after the server has logged its decision).
fn has_datagram(socket: &UdpSocket) -> bool {
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    let got = match socket.recv_from(&mut buf) {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => panic!("{e}"),
    };
    socket.set_nonblocking(false).unwrap();
    got
}

#[test]
fn a_replayed_probe_gets_no_reply() {
    let (db, hosts) = test_database(1);
    let replica = start_replica(&db, "()");
    let host = &hosts[0];
    let sealed = |sent_unix_ms| {
        let probe = Probe {
            host: host.name.clone(),
            probe_id: 7,
            sent_unix_ms,
        };
        seal_probe(&host.key, &probe).unwrap()
    };
    let now = unix_ms(SystemTime::now());
    let captured = sealed(now);
    let agent = udp();
    agent.send_to(&captured, replica.addr).unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = agent
        .recv_from(&mut buf)
        .expect("the genuine probe is answered");
    assert_eq!(open_reply(&host.key, &buf[..n]).unwrap().probe_id, 7);

    // The same datagram again, from the agent's address and from an attacker's: no reply.
    agent.send_to(&captured, replica.addr).unwrap();
    let attacker = udp();
    attacker.send_to(&captured, replica.addr).unwrap();
    wait_for_log(&replica, "replayed probe from", 2);
    assert!(!has_datagram(&agent) && !has_datagram(&attacker));

    // A probe sent a minute ago (captured then, replayed now): outside the 30 s window.
    attacker
        .send_to(&sealed(now - 60_000), replica.addr)
        .unwrap();
    wait_for_log(&replica, "from this server's clock", 1);
    assert!(!has_datagram(&attacker));
    // A fresh probe is answered as ever.
    agent
        .send_to(&sealed(unix_ms(SystemTime::now()) + 1), replica.addr)
        .unwrap();
    assert!(agent.recv_from(&mut buf).is_ok());
}

/// A server that answers each probe twice: first a forged reply (the probe's id, a wrong
/// tag), then the genuine one, tagged with the host's key and reporting `WAIT_US`.
const WAIT_US: u64 = 4242;

fn forge_then_answer(socket: UdpSocket, host: TestHost) {
    let mut buf = [0u8; 512];
    while let Ok((n, from)) = socket.recv_from(&mut buf) {
        let Ok((probe, key)) = open_probe(&buf[..n], |_| Some(host.key.clone())) else {
            continue;
        };
        let load = LoadReport {
            recommended_wait_us: WAIT_US,
            ..LoadReport::default()
        };
        let reply = seal_reply(
            &key,
            &ProbeReply {
                probe_id: probe.probe_id,
                load,
            },
        );
        let mut forged = reply.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let _ = socket.send_to(&forged, from);
        let _ = socket.send_to(&reply, from);
    }
}

#[test]
fn a_forged_reply_does_not_cost_the_agent_the_genuine_one() {
    let (_, hosts) = test_database(1);
    let host = hosts[0].clone();
    // TCP and UDP on the same port, as a server has; the TCP side never answers.
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = tcp.local_addr().unwrap();
    let socket = UdpSocket::bind(addr).unwrap();
    socket.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    let responder_host = host.clone();
    std::thread::spawn(move || forge_then_answer(socket, responder_host));

    let mut driver = Driver::new(vec![addr], 3).unwrap();
    let config = EngineConfig::with_defaults(&host.name, host.key.clone(), 1, Balancing::Probing);
    let a = driver.add_engine(Engine::new(config));
    driver.submit(a, ssh_on(&host.name));
    let start = Instant::now();
    loop {
        driver
            .turn(Some(Duration::from_millis(50)), &mut Vec::new())
            .unwrap();
        let status = driver.engine(a).status(Instant::now());
        if let Some((load, _)) = &status.servers[0].last_report {
            assert_eq!(load.recommended_wait_us, WAIT_US);
            break;
        }
        assert!(
            start.elapsed() < WAIT_LIMIT,
            "the genuine reply never counted: {status:?}"
        );
    }
    drop(tcp);
}
