//! Client and server sessions against each other over an in-memory pipe. Cipher negotiation
//! has its own file, `tests_ciphers.rs`, which shares the helpers here.

use super::*;
use crate::crypto::suite::{suites_for, CipherSuite};
use crate::nodekeys::{NodeKey, NodeKeyMap};
use crate::types::{ErrorCode, GoodbyeReason, Method};
use crate::wire::frame::{decode_frame, FRAME_HEADER_LEN};
use crate::wire::msg::{AuthorizeRequest, Request, Response};
use crate::wire::SUPPORTED_VERSIONS;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Splits a byte stream into frame payloads.
pub(super) fn frames(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some((consumed, _)) = decode_frame(bytes, MAX_FRAME_LEN).unwrap() {
        out.push(bytes[FRAME_HEADER_LEN..consumed].to_vec());
        bytes = &bytes[consumed..];
    }
    assert!(bytes.is_empty(), "partial frame left over");
    out
}

pub(super) fn keys() -> NodeKeyMap {
    NodeKeyMap::from([("web1".to_string(), NodeKey([5; 32]))])
}

fn request() -> Request {
    Request::Authorize(AuthorizeRequest {
        method: Method::Ssh,
        from_host: "10.0.0.9".into(),
        from_user: "alice".into(),
        to_user: "alice".into(),
        to_host: "web1".into(),
    })
}

/// A ChaCha20-Poly1305-only client (no AES hardware).
pub(super) const CHACHA_ONLY: &[CipherSuite] = &[CipherSuite::ChaCha20Poly1305];

/// Runs a handshake where the client offers `offer` and the server may choose AES or not;
/// checks both ends settle on `expect`. Returns both ends, established.
pub(super) fn establish_with(
    rng: &mut StdRng,
    offer: &[CipherSuite],
    aes_allowed: bool,
    expect: CipherSuite,
) -> (ClientSession, ServerSession) {
    let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
    let mut client =
        ClientSession::start("web1", NodeKey([5; 32]), &[1], offer, rng, &mut c2s).unwrap();
    let mut server = ServerSession::new(aes_allowed);
    let mut hello = frames(&c2s).remove(0);
    assert_eq!(
        server.handle_frame(&mut hello, &keys(), rng, &mut s2c),
        Ok(ServerInput::Progress)
    );
    c2s.clear();
    let mut server_hello = frames(&s2c).remove(0);
    assert_eq!(
        client.handle_frame(&mut server_hello, &mut c2s).unwrap(),
        ClientEvent::Established {
            version: 1,
            cipher: expect
        }
    );
    let mut finish = frames(&c2s).remove(0);
    assert_eq!(
        server.handle_frame(&mut finish, &keys(), rng, &mut Vec::new()),
        Ok(ServerInput::Established)
    );
    assert_eq!(server.host(), Some("web1"));
    assert_eq!(
        (client.cipher(), server.cipher()),
        (Some(expect), Some(expect))
    );
    (client, server)
}

/// Both suites: AES with hardware on both ends, ChaCha20-Poly1305 when the client has none.
pub(super) fn both_suites(rng: &mut StdRng) -> [(ClientSession, ServerSession); 2] {
    [
        establish_with(rng, suites_for(true), true, CipherSuite::Aes256Gcm),
        establish_with(rng, suites_for(false), true, CipherSuite::ChaCha20Poly1305),
    ]
}

#[test]
fn a_request_and_its_response_cross_sealed() {
    let mut rng = StdRng::seed_from_u64(1);
    for (client, server) in both_suites(&mut rng) {
        request_and_response_cross(&mut rng, client, server);
    }
}

fn request_and_response_cross(
    rng: &mut StdRng,
    mut client: ClientSession,
    mut server: ServerSession,
) {
    let suite = client.cipher();
    let mut wire = Vec::new();
    client.write_request(7, &request(), &mut wire).unwrap();
    let mut frame = frames(&wire).remove(0);
    assert!(
        !frame.windows(5).any(|w| w == b"alice"),
        "request must be sealed ({suite:?})"
    );
    assert_eq!(
        server.handle_frame(&mut frame, &keys(), rng, &mut Vec::new()),
        Ok(ServerInput::Request {
            id: 7,
            body: request().view()
        })
    );
    let mut back = Vec::new();
    let allow = Response::Allow {
        route: "SSH:*->alice@web*".into(),
    };
    server.write_response(7, allow.clone(), &mut back).unwrap();
    server.write_goodbye(GoodbyeReason::Idle, &mut back);
    let mut replies = frames(&back);
    assert_eq!(
        client
            .handle_frame(&mut replies[0], &mut Vec::new())
            .unwrap(),
        ClientEvent::Response { id: 7, body: allow }
    );
    assert_eq!(
        client
            .handle_frame(&mut replies[1], &mut Vec::new())
            .unwrap(),
        ClientEvent::Goodbye(GoodbyeReason::Idle)
    );
}

#[test]
fn replayed_and_forged_requests_are_refused() {
    let mut rng = StdRng::seed_from_u64(2);
    for (client, server) in both_suites(&mut rng) {
        replayed_and_forged_refused(&mut rng, client, server);
    }
}

fn replayed_and_forged_refused(
    rng: &mut StdRng,
    mut client: ClientSession,
    mut server: ServerSession,
) {
    let mut wire = Vec::new();
    client.write_request(1, &request(), &mut wire).unwrap();
    let frame = frames(&wire).remove(0);
    assert!(server
        .handle_frame(&mut frame.clone(), &keys(), rng, &mut Vec::new())
        .is_ok());
    let mut replayed = frame.clone();
    let replay = server.handle_frame(&mut replayed, &keys(), rng, &mut Vec::new());
    assert_eq!(replay.unwrap_err().error.code, ErrorCode::AuthFailed);
    let mut forged = frame;
    forged[3] ^= 0x40;
    let forged = server.handle_frame(&mut forged, &keys(), rng, &mut Vec::new());
    assert_eq!(forged.unwrap_err().error.code, ErrorCode::AuthFailed);
}

#[test]
fn an_unknown_host_is_refused_before_any_proof_is_sent() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut c2s = Vec::new();
    ClientSession::start(
        "nobody",
        NodeKey([5; 32]),
        &[1],
        CHACHA_ONLY,
        &mut rng,
        &mut c2s,
    )
    .unwrap();
    let mut out = Vec::new();
    let err = ServerSession::new(true)
        .handle_frame(&mut frames(&c2s)[0], &keys(), &mut rng, &mut out)
        .unwrap_err();
    assert_eq!(err.error.code, ErrorCode::UnknownHost);
    assert!(out.is_empty());
}

#[test]
fn a_wrong_key_fails_on_both_sides() {
    let mut rng = StdRng::seed_from_u64(4);
    // The agent has the wrong key: it rejects the server's proof (it cannot tell a genuine
    // server from an impostor), and the server would reject the agent's proof.
    let mut c2s = Vec::new();
    let mut client = ClientSession::start(
        "web1",
        NodeKey([6; 32]),
        &[1],
        CHACHA_ONLY,
        &mut rng,
        &mut c2s,
    )
    .unwrap();
    let mut server = ServerSession::new(false);
    let mut s2c = Vec::new();
    server
        .handle_frame(&mut frames(&c2s)[0], &keys(), &mut rng, &mut s2c)
        .unwrap();
    let err = client.handle_frame(&mut frames(&s2c)[0], &mut Vec::new());
    assert_eq!(err, Err(ClientError::BadServerProof));
    // A forged finish from an agent without the key.
    let mut finish = Vec::new();
    super::write_handshake(
        &crate::wire::msg::Handshake::ClientFinish(crate::wire::msg::ClientFinish {
            proof: [0; 32],
        }),
        &mut finish,
    );
    let err = server
        .handle_frame(&mut frames(&finish)[0], &keys(), &mut rng, &mut Vec::new())
        .unwrap_err();
    assert_eq!(err.error.code, ErrorCode::AuthFailed);
}

#[test]
fn no_common_version_gets_a_clear_error_listing_the_servers_versions() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut c2s = Vec::new();
    let mut client = ClientSession::start(
        "web1",
        NodeKey([5; 32]),
        &[7, 9],
        CHACHA_ONLY,
        &mut rng,
        &mut c2s,
    )
    .unwrap();
    let mut server = ServerSession::new(false);
    let failure = server
        .handle_frame(&mut frames(&c2s)[0], &keys(), &mut rng, &mut Vec::new())
        .unwrap_err();
    assert_eq!(failure.error.code, ErrorCode::UnsupportedVersion);
    assert_eq!(failure.error.versions, SUPPORTED_VERSIONS);
    let mut s2c = Vec::new();
    server.write_error(&failure.error, &mut s2c);
    match client.handle_frame(&mut frames(&s2c)[0], &mut Vec::new()) {
        Err(ClientError::Server(e)) => assert_eq!(e.code, ErrorCode::UnsupportedVersion),
        other => panic!("expected the server's error, got {other:?}"),
    }
}

#[test]
fn a_plaintext_error_after_the_finish_still_reaches_the_agent() {
    let mut rng = StdRng::seed_from_u64(6);
    for (mut client, _) in both_suites(&mut rng) {
        let mut s2c = Vec::new();
        ServerSession::new(true).write_error(
            &crate::wire::msg::WireError::new(ErrorCode::AuthFailed, "bad proof"),
            &mut s2c,
        );
        match client.handle_frame(&mut frames(&s2c)[0], &mut Vec::new()) {
            Err(ClientError::Server(e)) => assert_eq!(e.code, ErrorCode::AuthFailed),
            other => panic!(
                "{:?}: expected the server's error, got {other:?}",
                client.cipher()
            ),
        }
    }
}

#[test]
fn after_the_first_sealed_frame_a_plaintext_error_is_not_believed() {
    let mut rng = StdRng::seed_from_u64(7);
    for (mut client, mut server) in both_suites(&mut rng) {
        let mut s2c = Vec::new();
        server
            .write_response(1, Response::AuthOk, &mut s2c)
            .unwrap();
        assert!(client
            .handle_frame(&mut frames(&s2c)[0], &mut Vec::new())
            .is_ok());
        // Anyone on the path could inject this: it must not make the agent go elsewhere.
        let mut forged = Vec::new();
        ServerSession::new(true).write_error(
            &crate::wire::msg::WireError::new(ErrorCode::Busy, "go away"),
            &mut forged,
        );
        assert!(matches!(
            client.handle_frame(&mut frames(&forged)[0], &mut Vec::new()),
            Err(ClientError::Sealed(_))
        ));
    }
}
