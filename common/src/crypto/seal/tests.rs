//! Sealing and opening under both suites: order, replay, forgery, fixed vectors, and the
//! bytes a failed open leaves behind.

use super::*;
use crate::types::ErrorCode;
use crate::wire::frame::MAX_FRAME_LEN;
use crate::wire::msg::{Handshake, WireError};
use CipherSuite::{Aes256Gcm as Aes, ChaCha20Poly1305 as ChaCha};

fn sealed(sealer: &mut Sealer, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    sealer
        .seal_frame(MAX_FRAME_LEN, &mut out, |o| {
            o.extend_from_slice(text);
            Ok(())
        })
        .unwrap();
    out
}

fn payload(frame: &[u8]) -> Vec<u8> {
    let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(frame.len(), 4 + len);
    frame[4..].to_vec()
}

#[test]
fn frames_open_in_order() {
    for suite in CipherSuite::ALL {
        let key = [7; 32];
        let (mut s, mut o) = (Sealer::new(suite, &key), Opener::new(suite, &key));
        assert_eq!((s.suite(), o.suite()), (suite, suite));
        for text in [&b"one"[..], b"", b"three"] {
            let mut p = payload(&sealed(&mut s, text));
            assert_eq!(p.len(), text.len() + TAG_LEN);
            assert_eq!(o.open_in_place(&mut p).unwrap(), text, "{suite:?}");
        }
    }
}

/// Fixed vectors (key 32 × 07, plaintext "hi" at counters 0 and 1), checked against an
/// independent implementation (Python `cryptography`), so a third party can check its
/// nonce layout and AEAD choice; the same as in docs/PROTOCOL.md, "Sealed frames".
#[test]
fn sealed_frame_vectors() {
    let hex = crate::wire::strategies::hex;
    let vectors = [
        (
            ChaCha,
            "00000012 5fed 6bec0b3eb08e44c571482ccc454c876b",
            "00000012 817e 5ec9405e747a26f810f6c678a092db3c",
        ),
        (
            Aes,
            "00000012 09b1 12bf7158df362422bbec53457bb66926",
            "00000012 5821 d21e24add757a07d5456587987069fa5",
        ),
    ];
    for (suite, first, second) in vectors {
        let mut s = Sealer::new(suite, &[7; 32]);
        assert_eq!(sealed(&mut s, b"hi"), hex(first), "{suite:?}");
        assert_eq!(sealed(&mut s, b"hi"), hex(second), "{suite:?}");
    }
}

#[test]
fn replayed_reordered_forged_and_truncated_frames_fail() {
    for suite in CipherSuite::ALL {
        let key = [7; 32];
        let mut s = Sealer::new(suite, &key);
        let first = payload(&sealed(&mut s, b"first"));
        let second = payload(&sealed(&mut s, b"second"));

        let mut o = Opener::new(suite, &key);
        assert_eq!(o.open_in_place(&mut second.clone()), Err(SealError::Forged));
        assert_eq!(o.open_in_place(&mut first.clone()).unwrap(), b"first");
        assert_eq!(o.open_in_place(&mut first.clone()), Err(SealError::Forged));

        let mut forged = second.clone();
        forged[0] ^= 1;
        assert_eq!(o.open_in_place(&mut forged), Err(SealError::Forged));
        let mut truncated = second[..second.len() - 1].to_vec();
        assert_eq!(o.open_in_place(&mut truncated), Err(SealError::Forged));
        assert_eq!(o.open_in_place(&mut [0; 3]), Err(SealError::TooShort));
        // A failure does not advance the counter: the genuine frame still opens.
        assert_eq!(o.open_in_place(&mut second.clone()).unwrap(), b"second");
    }
}

#[test]
fn the_wrong_key_or_the_other_suite_fails() {
    for (sealing, opening) in [(ChaCha, ChaCha), (Aes, Aes), (ChaCha, Aes), (Aes, ChaCha)] {
        let mut s = Sealer::new(sealing, &[1; 32]);
        let p = payload(&sealed(&mut s, b"x"));
        let opens = |key: [u8; 32]| {
            let mut bytes = p.clone();
            let result = Opener::new(opening, &key).open_in_place(&mut bytes);
            result.map(|text| text.to_vec())
        };
        assert_eq!(opens([2; 32]), Err(SealError::Forged));
        if sealing != opening {
            assert_eq!(opens([1; 32]), Err(SealError::Forged));
        }
    }
}

#[test]
fn a_failed_open_leaves_the_bytes_as_they_arrived() {
    // The agent reads a plaintext handshake error from a frame that failed to open.
    for suite in CipherSuite::ALL {
        let error = Handshake::Error(WireError::new(ErrorCode::AuthFailed, "bad proof"));
        let mut plain = Vec::new();
        error.encode(&mut plain).unwrap();
        let mut bytes = plain.to_vec();
        let result = Opener::new(suite, &[1; 32]).open_in_place(&mut bytes);
        assert_eq!(result, Err(SealError::Forged));
        assert_eq!(bytes, plain, "{suite:?}");
        assert_eq!(Handshake::decode(&bytes), Ok(error));
    }
}

#[test]
fn an_oversized_frame_is_refused_and_leaves_the_buffer_unchanged() {
    for suite in CipherSuite::ALL {
        let mut s = Sealer::new(suite, &[1; 32]);
        let mut out = b"keep".to_vec();
        let err = s.seal_frame(20, &mut out, |o| {
            o.extend_from_slice(&[0; 10]);
            Ok(())
        });
        assert!(matches!(err, Err(SealError::Frame(_))));
        assert_eq!(out, b"keep");
    }
}

#[test]
fn a_prepared_cipher_seals_exactly_like_one_built_per_frame() {
    let key = [9; 32];
    let (mut plain_s, mut prepared_s) = (Sealer::new(Aes, &key), Sealer::new(Aes, &key));
    assert!(prepared_s.prepare(), "AES keeps memory once prepared");
    assert!(!prepared_s.prepare(), "and only once");
    let mut opener = Opener::new(Aes, &key);
    assert!(opener.prepare());
    for text in [&b"one"[..], b"", b"three"] {
        let (a, b) = (sealed(&mut plain_s, text), sealed(&mut prepared_s, text));
        assert_eq!(a, b, "same bytes, prepared or not");
        assert_eq!(opener.open_in_place(&mut payload(&a)).unwrap(), text);
    }
    // A forged frame still fails on a prepared opener, and leaves the bytes as they were.
    let mut forged = payload(&sealed(&mut plain_s, b"four"));
    forged[0] ^= 1;
    let before = forged.clone();
    assert_eq!(opener.open_in_place(&mut forged), Err(SealError::Forged));
    assert_eq!(forged, before);
}

#[test]
fn chacha_has_nothing_to_prepare() {
    let key = [9; 32];
    assert!(!Sealer::new(ChaCha, &key).prepare());
    assert!(!Opener::new(ChaCha, &key).prepare());
}
