//! Cipher-suite negotiation between the two sessions: who gets which suite, unknown codes,
//! no suite in common, and a downgrade attempted in transit.

use super::tests::{both_suites, establish_with, frames, keys, CHACHA_ONLY};
use super::*;
use crate::crypto::handshake::{self, Transcript};
use crate::crypto::suite::{suites_for, CipherSuite};
use crate::nodekeys::NodeKey;
use crate::types::ErrorCode;
use crate::wire::msg::{ClientHello, Handshake, ServerHello, NONCE_LEN};
use rand::rngs::StdRng;
use rand::SeedableRng;

use CipherSuite::{Aes256Gcm as Aes, ChaCha20Poly1305 as ChaCha};

/// The ClientHello a client offering `offer` sends, as the payload the server receives.
fn hello_payload(rng: &mut StdRng, offer: &[CipherSuite]) -> (ClientSession, Vec<u8>) {
    let mut c2s = Vec::new();
    let client =
        ClientSession::start("web1", NodeKey([5; 32]), &[1], offer, rng, &mut c2s).unwrap();
    (client, frames(&c2s).remove(0))
}

/// The server's reply to `hello`: its ServerHello, or its failure.
fn answer(
    rng: &mut StdRng,
    aes_allowed: bool,
    hello: &mut [u8],
) -> Result<ServerHello, SessionFailure> {
    let mut s2c = Vec::new();
    ServerSession::new(aes_allowed).handle_frame(hello, &keys(), rng, &mut s2c)?;
    match Handshake::decode(&frames(&s2c)[0]) {
        Ok(Handshake::ServerHello(h)) => Ok(h),
        other => panic!("expected a ServerHello, got {other:?}"),
    }
}

#[test]
fn both_suites_seal_requests_and_responses() {
    let mut rng = StdRng::seed_from_u64(20);
    let [(aes_client, aes_server), (chacha_client, _)] = both_suites(&mut rng);
    assert_eq!(aes_client.cipher(), Some(Aes));
    assert_eq!(aes_server.cipher(), Some(Aes));
    assert_eq!(chacha_client.cipher(), Some(ChaCha));
}

#[test]
fn aes_needs_hardware_on_both_ends_and_the_client_listing_it_first() {
    let mut rng = StdRng::seed_from_u64(21);
    // The client has AES hardware, the server has none.
    establish_with(&mut rng, suites_for(true), false, ChaCha);
    // The client has none (it offers only ChaCha20-Poly1305), the server has.
    establish_with(&mut rng, suites_for(false), true, ChaCha);
    // A client that prefers ChaCha20-Poly1305 gets it even where AES would do.
    establish_with(&mut rng, &[ChaCha, Aes], true, ChaCha);
    establish_with(&mut rng, &[Aes, ChaCha], true, Aes);
}

#[test]
fn unknown_cipher_codes_are_skipped_and_still_bound_by_the_transcript() {
    let mut rng = StdRng::seed_from_u64(22);
    let hello = ClientHello {
        versions: vec![1],
        host: "web1".into(),
        nonce: [3; NONCE_LEN],
        ciphers: vec![Aes, ChaCha],
    };
    let mut bytes = Vec::new();
    Handshake::ClientHello(hello).encode(&mut bytes).unwrap();
    // A future client: an unknown suite 9 before AES-256-GCM and ChaCha20-Poly1305.
    assert!(bytes.ends_with(&[2, 2, 1]));
    bytes.truncate(bytes.len() - 3);
    bytes.extend_from_slice(&[3, 9, 2, 1]);

    let server_hello = answer(&mut rng, true, &mut bytes.clone()).unwrap();
    assert_eq!(server_hello.cipher, Aes);
    // The proof covers the hello exactly as sent, unknown code included.
    let transcript = Transcript::new(&bytes, 1, Aes, &server_hello.nonce);
    assert!(handshake::verify_server_proof(
        &NodeKey([5; 32]),
        &transcript,
        &server_hello.proof
    ));
    // Without AES hardware the server passes over the AES offer to ChaCha20-Poly1305.
    assert_eq!(answer(&mut rng, false, &mut bytes).unwrap().cipher, ChaCha);
}

#[test]
fn no_cipher_in_common_gets_a_clear_plaintext_error() {
    let mut rng = StdRng::seed_from_u64(23);
    // AES only, to a server without AES hardware: the agent hears why.
    let (mut client, mut hello) = hello_payload(&mut rng, &[Aes]);
    let mut server = ServerSession::new(false);
    let failure = server
        .handle_frame(&mut hello, &keys(), &mut rng, &mut Vec::new())
        .unwrap_err();
    assert_eq!(failure.error.code, ErrorCode::UnsupportedCipher);
    assert_eq!(ErrorCode::UnsupportedCipher.code(), 12);
    assert!(
        failure.error.message.contains("offers [AES-256-GCM]")
            && failure
                .error
                .message
                .contains("accepts [ChaCha20-Poly1305]"),
        "{}",
        failure.error.message
    );
    let mut s2c = Vec::new();
    server.write_error(&failure.error, &mut s2c);
    match client.handle_frame(&mut frames(&s2c)[0], &mut Vec::new()) {
        Err(ClientError::Server(e)) => assert_eq!(e.code, ErrorCode::UnsupportedCipher),
        other => panic!("expected the server's error, got {other:?}"),
    }

    // Only codes the server does not know.
    let (_, mut hello) = hello_payload(&mut rng, CHACHA_ONLY);
    let last = hello.len() - 1;
    hello[last] = 0x7f;
    let failure = answer(&mut rng, true, &mut hello).unwrap_err();
    assert_eq!(failure.error.code, ErrorCode::UnsupportedCipher);

    // An empty list does not even decode.
    let (_, mut hello) = hello_payload(&mut rng, CHACHA_ONLY);
    hello.truncate(hello.len() - 2);
    hello.push(0);
    let failure = answer(&mut rng, true, &mut hello).unwrap_err();
    assert_eq!(failure.error.code, ErrorCode::Malformed);

    // And a client cannot be made to offer nothing.
    let err = ClientSession::start(
        "web1",
        NodeKey([5; 32]),
        &[1],
        &[],
        &mut rng,
        &mut Vec::new(),
    );
    assert!(matches!(err, Err(ClientError::Encode(_))));
}

#[test]
fn a_cipher_changed_in_transit_fails_the_proofs() {
    let mut rng = StdRng::seed_from_u64(24);
    let mut s2c = Vec::new();

    // The server chose AES-256-GCM; a man in the middle rewrites it to ChaCha20-Poly1305.
    let (mut client, mut hello) = hello_payload(&mut rng, &[Aes, ChaCha]);
    ServerSession::new(true)
        .handle_frame(&mut hello, &keys(), &mut rng, &mut s2c)
        .unwrap();
    let mut server_hello = frames(&s2c).remove(0);
    let last = server_hello.len() - 1;
    assert_eq!(server_hello[last], Aes.code());
    server_hello[last] = ChaCha.code();
    let mut finish = Vec::new();
    let result = client.handle_frame(&mut server_hello, &mut finish);
    assert_eq!(result, Err(ClientError::BadServerProof));
    // The client's proof is still written, so a genuine server with another key for this
    // host can log the host that failed it; over this transcript it proves nothing to the
    // server (whose transcript says AES), and the client never becomes established.
    assert_eq!(
        frames(&finish).len(),
        1,
        "one ClientFinish, for the server's log"
    );
    assert!(!client.is_established());

    // The offer is stripped of AES-256-GCM on its way to the server.
    let (mut client, hello) = hello_payload(&mut rng, &[Aes, ChaCha]);
    assert!(hello.ends_with(&[2, 2, 1]));
    let mut stripped = [&hello[..hello.len() - 3], &[1, 1]].concat();
    s2c.clear();
    ServerSession::new(true)
        .handle_frame(&mut stripped, &keys(), &mut rng, &mut s2c)
        .unwrap();
    let result = client.handle_frame(&mut frames(&s2c)[0], &mut Vec::new());
    assert_eq!(result, Err(ClientError::BadServerProof));

    // A suite the client never offered is refused before the proof is even checked.
    let (mut client, mut hello) = hello_payload(&mut rng, CHACHA_ONLY);
    s2c.clear();
    ServerSession::new(true)
        .handle_frame(&mut hello, &keys(), &mut rng, &mut s2c)
        .unwrap();
    let mut server_hello = frames(&s2c).remove(0);
    let last = server_hello.len() - 1;
    server_hello[last] = Aes.code();
    let result = client.handle_frame(&mut server_hello, &mut Vec::new());
    assert_eq!(result, Err(ClientError::CipherNotOffered(Aes)));
    assert_eq!(
        result.unwrap_err().to_string(),
        "server chose cipher suite AES-256-GCM, which we did not offer"
    );
}
