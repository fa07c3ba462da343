//! Forged, replayed, reordered, truncated and oversized frames and random garbage close only
//! the offending connection; everyone else keeps being served.

use gatehouse_common::session::ClientError;
use gatehouse_common::types::ErrorCode;
use gatehouse_common::wire::{Handshake, Response};
use gatehouse_tests::client::{closed_by_server, raw_connect, read_plain_frame};
use gatehouse_tests::requests::*;
use gatehouse_tests::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::Write;

/// The attacker's connection gets a sealed AuthFailed error and is closed.
fn expect_auth_failed(attacker: &mut Client) {
    match attacker.next_event() {
        Err(ClientFailure::Protocol(ClientError::Server(e))) => {
            assert_eq!(e.code, ErrorCode::AuthFailed)
        }
        other => panic!("expected AuthFailed, got {other:?}"),
    }
    assert!(attacker.closed_by_server());
}

#[test]
fn bad_frames_close_only_the_offending_connection() {
    let (db, hosts) = test_database(2);
    let replica = start_replica(&db, "()");
    let mut bystander = Client::connect(replica.addr, &hosts[0]).unwrap();
    let mut id = 0;
    let mut bystander_ok = |label: &str| {
        id += 1;
        assert!(
            matches!(
                bystander.request(id, ssh_on(&hosts[0].name)),
                Ok(Response::Allow { .. })
            ),
            "bystander not served after {label}"
        );
    };
    let attacker = &hosts[1];

    // Forged: one bit flipped in the ciphertext.
    let mut a = Client::connect(replica.addr, attacker).unwrap();
    let mut frame = a.seal(1, ssh_on(&attacker.name));
    frame[8] ^= 0x01;
    a.stream.write_all(&frame).unwrap();
    expect_auth_failed(&mut a);
    bystander_ok("a forged frame");

    // Replayed: the same sealed frame twice.
    let mut a = Client::connect(replica.addr, attacker).unwrap();
    let frame = a.seal(1, ssh_on(&attacker.name));
    a.stream.write_all(&frame).unwrap();
    assert!(matches!(
        a.next_event().unwrap(),
        gatehouse_common::session::ClientEvent::Response { id: 1, .. }
    ));
    a.stream.write_all(&frame).unwrap();
    expect_auth_failed(&mut a);
    bystander_ok("a replayed frame");

    // Reordered: the second frame sent before the first.
    let mut a = Client::connect(replica.addr, attacker).unwrap();
    let first = a.seal(1, ssh_on(&attacker.name));
    let second = a.seal(2, ssh_on(&attacker.name));
    a.stream.write_all(&second).unwrap();
    a.stream.write_all(&first).unwrap();
    expect_auth_failed(&mut a);
    bystander_ok("reordered frames");

    // Truncated: the frame's last byte dropped and its length prefix shortened to match.
    let mut a = Client::connect(replica.addr, attacker).unwrap();
    let mut frame = a.seal(1, ssh_on(&attacker.name));
    frame.pop();
    let len = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    a.stream.write_all(&frame).unwrap();
    expect_auth_failed(&mut a);
    bystander_ok("a truncated frame");

    // Oversized: a length prefix of 1 MiB, refused from the header alone.
    let mut raw = raw_connect(replica.addr).unwrap();
    raw.write_all(&(1u32 << 20).to_be_bytes()).unwrap();
    match read_plain_frame(&mut raw) {
        Some(Handshake::Error(e)) => assert_eq!(e.code, ErrorCode::FrameTooLarge),
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    assert!(closed_by_server(&mut raw));
    bystander_ok("an oversized frame");

    // Oversized after the handshake: sealed error, then closed.
    let mut a = Client::connect(replica.addr, attacker).unwrap();
    a.stream.write_all(&u32::MAX.to_be_bytes()).unwrap();
    match a.next_event() {
        Err(ClientFailure::Protocol(ClientError::Server(e))) => {
            assert_eq!(e.code, ErrorCode::FrameTooLarge)
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    bystander_ok("an oversized sealed frame");

    // Random garbage, before and after a handshake, from a seeded RNG.
    let mut rng = StdRng::seed_from_u64(42);
    for round in 0..20 {
        let len = rng.gen_range(1..2000);
        let garbage: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if round % 2 == 0 {
            let mut raw = raw_connect(replica.addr).unwrap();
            raw.write_all(&garbage).unwrap();
            // Either an error frame and a close, or (a prefix announcing a frame that never
            // completes) the frame timeout: both end the connection.
            let _ = read_plain_frame(&mut raw);
            assert!(closed_by_server(&mut raw), "garbage round {round}");
        } else {
            let mut a = Client::connect(replica.addr, attacker).unwrap();
            a.stream.write_all(&garbage).unwrap();
            assert!(a.next_event().is_err(), "garbage round {round}");
        }
        bystander_ok("garbage");
    }

    let log = replica.log();
    assert!(log.contains("AuthFailed") && log.contains(&format!("host={}", attacker.name)));
}
