//! The cipher-suite fields of the hellos: unknown codes skipped, limits on both sides.

use super::*;
use crate::crypto::suite::CipherSuite::{Aes256Gcm, ChaCha20Poly1305};
use crate::wire::strategies::hex;

/// A ClientHello from host "h" offering version 1, nonce all zero, then `ciphers` (count and
/// codes, hex).
fn hello_bytes(ciphers: &str) -> Vec<u8> {
    let nonce = "00".repeat(NONCE_LEN);
    hex(&format!("01 01 0001 0001 68 {nonce} {ciphers}"))
}

fn hello(ciphers: Vec<CipherSuite>) -> ClientHello {
    ClientHello {
        versions: vec![1],
        host: "h".into(),
        nonce: [0; NONCE_LEN],
        ciphers,
    }
}

#[test]
fn unknown_cipher_codes_are_skipped_in_order() {
    assert_eq!(
        Handshake::decode(&hello_bytes("04 07 02 00 01")),
        Ok(Handshake::ClientHello(hello(vec![
            Aes256Gcm,
            ChaCha20Poly1305
        ])))
    );
    // Only unknown codes: decodes, with nothing the server could choose.
    assert_eq!(
        Handshake::decode(&hello_bytes("02 03 ff")),
        Ok(Handshake::ClientHello(hello(vec![])))
    );
}

#[test]
fn cipher_lists_outside_their_limits_are_rejected_both_ways() {
    let invalid = |why| {
        Err(DecodeError::Invalid {
            field: "ciphers",
            why,
        })
    };
    assert_eq!(Handshake::decode(&hello_bytes("00")), invalid("empty"));
    assert_eq!(
        Handshake::decode(&hello_bytes("09 010101010101010101")),
        invalid("more than 8")
    );
    assert_eq!(
        Handshake::decode(&hello_bytes("08 01010101010101010101")),
        Err(DecodeError::TrailingBytes(2))
    );
    assert_eq!(
        Handshake::decode(&hello_bytes("02 01")),
        Err(DecodeError::Truncated)
    );
    // A hello without any cipher list (the layout before negotiation) is truncated.
    assert_eq!(
        Handshake::decode(&hello_bytes("")),
        Err(DecodeError::Truncated)
    );

    let mut out = vec![0xee];
    assert_eq!(
        Handshake::ClientHello(hello(vec![])).encode(&mut out),
        Err(EncodeError::Empty { field: "ciphers" })
    );
    assert_eq!(
        Handshake::ClientHello(hello(vec![ChaCha20Poly1305; 9])).encode(&mut out),
        Err(EncodeError::TooMany {
            field: "ciphers",
            count: 9,
            max: MAX_CIPHERS
        })
    );
    assert_eq!(out, [0xee]);
    Handshake::ClientHello(hello(vec![ChaCha20Poly1305; 8]))
        .encode(&mut out)
        .unwrap();
    assert_eq!(out.len(), 1 + hello_bytes("08 0101010101010101").len());
}

#[test]
fn a_server_hello_with_an_unknown_cipher_is_a_decode_error() {
    let bytes = [&[0x02, 0x00, 0x01][..], &[0xaa; 32], &[0xbb; 32], &[0x03]].concat();
    assert_eq!(
        Handshake::decode(&bytes),
        Err(DecodeError::UnknownCode {
            field: "cipher suite",
            code: 3
        })
    );
}
