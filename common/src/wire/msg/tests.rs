//! Exact-byte vectors (the same ones as the worked examples in docs/PROTOCOL.md), limit
//! checks, and property tests for the message codec.

use super::*;
use crate::crypto::suite::CipherSuite::{Aes256Gcm, ChaCha20Poly1305};
use crate::wire::frame::{encode_frame, MAX_FRAME_LEN};
use crate::wire::strategies;
use proptest::prelude::*;

use crate::wire::strategies::hex;

fn enc_h(m: &Handshake) -> Vec<u8> {
    let mut out = vec![];
    m.encode(&mut out).unwrap();
    out
}

fn enc_s(m: &Session) -> Vec<u8> {
    let mut out = vec![];
    m.encode(&mut out).unwrap();
    out
}

fn nonce_0_to_31() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

#[test]
fn wire_vector_client_hello_framed() {
    let hello = Handshake::ClientHello(ClientHello {
        versions: vec![1],
        host: "web-01".into(),
        nonce: nonce_0_to_31(),
        ciphers: vec![Aes256Gcm, ChaCha20Poly1305],
    });
    let mut frame = vec![];
    encode_frame(&enc_h(&hello), MAX_FRAME_LEN, &mut frame).unwrap();
    let expected = hex("0000002f 01 01 0001 0006 7765622d3031
         000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 02 0201");
    assert_eq!(frame, expected);
    assert_eq!(Handshake::decode(&expected[4..]), Ok(hello));
}

#[test]
fn the_largest_handshake_message_fits_its_frame_cap() {
    let hello = ClientHello {
        versions: (1..=16).collect(),
        host: "h".repeat(255),
        nonce: [0; 32],
        ciphers: vec![Aes256Gcm, ChaCha20Poly1305],
    };
    let mut bytes = enc_h(&Handshake::ClientHello(hello));
    // Six more cipher codes this build does not know: the list at its largest, 8 codes.
    let count_at = bytes.len() - 3;
    bytes[count_at] = 8;
    bytes.extend(0xf0..0xf6u8);
    assert!(Handshake::decode(&bytes).is_ok());
    assert_eq!(bytes.len(), 332);
    assert!(bytes.len() <= crate::wire::frame::MAX_HANDSHAKE_FRAME_LEN);
}

#[test]
fn wire_vector_server_hello_and_finish() {
    let sh = Handshake::ServerHello(ServerHello {
        version: 1,
        nonce: [0xaa; 32],
        proof: [0xbb; 32],
        cipher: Aes256Gcm,
    });
    let expected = [&[0x02, 0x00, 0x01][..], &[0xaa; 32], &[0xbb; 32], &[0x02]].concat();
    assert_eq!(enc_h(&sh), expected);
    let fin = Handshake::ClientFinish(ClientFinish { proof: [0xcc; 32] });
    assert_eq!(enc_h(&fin), [&[0x03][..], &[0xcc; 32]].concat());
}

#[test]
fn wire_vector_handshake_error_unsupported_version() {
    let e = Handshake::Error(WireError {
        message: String::new(),
        ..WireError::unsupported_version(&[1])
    });
    assert_eq!(enc_h(&e), hex("0f 0001 0000 01 0001 0000000000000000"));
}

#[test]
fn wire_vector_authorize_request() {
    let req = Session::Request {
        id: 7,
        body: Request::Authorize(AuthorizeRequest {
            method: Method::Ssh,
            from_host: "ws1".into(),
            from_user: "alice".into(),
            to_user: "root".into(),
            to_host: "db1".into(),
        }),
    };
    let expected = hex("10 00000007 01 02 0003 777331 0005 616c696365 0004 726f6f74 0003 646231");
    assert_eq!(enc_s(&req), expected);
    assert_eq!(Session::decode(&expected), Ok(req));
}

#[test]
fn wire_vector_password_change_and_its_outcomes() {
    use crate::wire::{ChangeOutcome, ChangePasswordRequest};
    let req = Session::Request {
        id: 8,
        body: Request::ChangePassword(ChangePasswordRequest {
            user: "bob".into(),
            old_password: "ol".into(),
            new_password: "new".into(),
            host: "web1".into(),
        }),
    };
    let expected = hex("10 00000008 09 0003 626f62 0002 6f6c 0003 6e6577 0004 77656231");
    assert_eq!(enc_s(&req), expected);
    assert_eq!(Session::decode(&expected), Ok(req));
    for (outcome, bytes) in [
        (ChangeOutcome::Changed, "11 00000008 0a 01"),
        (
            ChangeOutcome::Refused { rule: "r".into() },
            "11 00000008 0a 02 0001 72",
        ),
        (ChangeOutcome::Failed, "11 00000008 0a 03"),
    ] {
        let answer = Session::Response {
            id: 8,
            body: Response::PasswordChange(outcome),
        };
        assert_eq!(enc_s(&answer), hex(bytes));
        assert_eq!(Session::decode(&hex(bytes)), Ok(answer));
    }
    // Its passwords are wiped with the request's.
    let mut body = Request::ChangePassword(ChangePasswordRequest {
        user: "bob".into(),
        old_password: "ol".into(),
        new_password: "new".into(),
        host: "web1".into(),
    });
    body.wipe_password();
    let Request::ChangePassword(c) = &body else {
        unreachable!()
    };
    assert!(c.old_password.is_empty() && c.new_password.is_empty());
}

#[test]
fn wire_vector_responses_goodbye_and_error() {
    let allow = Session::Response {
        id: 7,
        body: Response::Allow {
            route: "admins".into(),
        },
    };
    assert_eq!(enc_s(&allow), hex("11 00000007 01 0006 61646d696e73"));
    let deny = Session::Response {
        id: 7,
        body: Response::Deny {
            reason: DenyReason::Locked,
        },
    };
    assert_eq!(enc_s(&deny), hex("11 00000007 02 03"));
    let auth_fail = Session::Response {
        id: 7,
        body: Response::AuthFail,
    };
    assert_eq!(enc_s(&auth_fail), hex("11 00000007 04 04"));
    // After a correct password only: expired, and expires in 9 days.
    let aging = |aging| Session::Response {
        id: 7,
        body: Response::AuthOkAging(aging),
    };
    let expired = aging(crate::types::PasswordAging::Expired);
    assert_eq!(enc_s(&expired), hex("11 00000007 0b 01"));
    let soon = aging(crate::types::PasswordAging::ExpiresIn { days: 9 });
    assert_eq!(enc_s(&soon), hex("11 00000007 0b 02 0009"));
    for bad in [
        "11 00000007 0b 00",
        "11 00000007 0b 03",
        "11 00000007 0b 02 00",
    ] {
        assert!(Session::decode(&hex(bad)).is_err(), "{bad}");
    }
    let bye = Session::Goodbye(Goodbye {
        reason: GoodbyeReason::Reconnect,
    });
    assert_eq!(enc_s(&bye), hex("12 02"));
    let busy = Session::Error(WireError {
        message: "busy".into(),
        ..WireError::busy(12345)
    });
    assert_eq!(
        enc_s(&busy),
        hex("1f 0007 0004 62757379 00 0000000000003039")
    );
}

#[test]
fn unknown_tags_and_codes_are_typed_errors() {
    assert_eq!(Session::decode(&[]), Err(DecodeError::Truncated));
    assert_eq!(Session::decode(&[0x01]), Err(DecodeError::UnknownTag(0x01)));
    assert_eq!(
        Handshake::decode(&[0x10]),
        Err(DecodeError::UnknownTag(0x10))
    );
    let unknown = |field, code| Err(DecodeError::UnknownCode { field, code });
    // 8 is the agent's local status, never on this wire; 9 is a password change.
    assert_eq!(
        Session::decode(&hex("10 00000001 08")),
        unknown("request kind", 8)
    );
    assert_eq!(
        Session::decode(&hex("10 00000001 0a")),
        unknown("request kind", 10)
    );
    assert_eq!(
        Session::decode(&hex("10 00000001 01 05")),
        unknown("method", 5)
    );
    assert_eq!(
        Session::decode(&hex("11 00000001 02 07")),
        unknown("deny reason", 7)
    );
    // An AuthFail has one reason: the detailed codes of old servers are refused.
    for code in [0, 1, 2, 3, 5] {
        assert_eq!(
            Session::decode(&hex(&format!("11 00000001 04 {code:02x}"))),
            unknown("auth failure", code)
        );
    }
    assert_eq!(Session::decode(&hex("12 04")), unknown("goodbye reason", 4));
    assert_eq!(Session::decode(&hex("1f 0063")), unknown("error code", 99));
}

#[test]
fn decoder_enforces_limits() {
    let invalid = |field, why| DecodeError::Invalid { field, why };
    // A 256-byte user name: rejected from its length prefix alone.
    assert_eq!(
        Session::decode(&hex("10 00000001 02 0100")).unwrap_err(),
        invalid("user", "longer than its limit")
    );
    // ClientHello with no versions, then with an empty host.
    assert_eq!(
        Handshake::decode(&hex("01 00")).unwrap_err(),
        invalid("versions", "empty")
    );
    assert_eq!(
        Handshake::decode(&hex("01 01 0001 0000")).unwrap_err(),
        invalid("host", "empty")
    );
    // WireError announcing 17 versions.
    assert_eq!(
        Handshake::decode(&hex("0f 0001 0000 11")).unwrap_err(),
        invalid("versions", "more than 16")
    );
}

#[test]
fn encoder_refuses_what_the_decoder_would_reject_and_leaves_out_unchanged() {
    let mut out = vec![0xee];
    let long_user = Session::Request {
        id: 1,
        body: Request::Authenticate(AuthenticateRequest {
            user: "u".repeat(MAX_USER_LEN + 1),
            password: "pw".into(),
            host: "h".into(),
        }),
    };
    assert_eq!(
        long_user.encode(&mut out),
        Err(EncodeError::TooLong {
            field: "user",
            len: 256,
            max: 255
        })
    );
    let hello = |versions: Vec<u16>, host: &str| {
        Handshake::ClientHello(ClientHello {
            versions,
            host: host.into(),
            nonce: [0; 32],
            ciphers: vec![ChaCha20Poly1305],
        })
    };
    assert_eq!(
        hello(vec![1], "").encode(&mut out),
        Err(EncodeError::Empty { field: "host" })
    );
    assert_eq!(
        hello(vec![], "h").encode(&mut out),
        Err(EncodeError::Empty { field: "versions" })
    );
    assert_eq!(
        hello(vec![1; 17], "h").encode(&mut out),
        Err(EncodeError::TooMany {
            field: "versions",
            count: 17,
            max: 16
        })
    );
    assert_eq!(out, [0xee]);
}

#[test]
fn wire_error_encoding_truncates_instead_of_failing() {
    // 255 ASCII bytes then a 2-byte char: byte 256 is mid-char, so 255 bytes are kept.
    let message = format!("{}é and more", "x".repeat(255));
    let e = WireError {
        code: ErrorCode::Internal,
        message,
        versions: (0..20).collect(),
        estimate_us: 0,
    };
    let decoded = Session::decode(&enc_s(&Session::Error(e))).unwrap();
    let Session::Error(d) = decoded else {
        panic!("not an error: {decoded:?}")
    };
    assert_eq!(d.message, "x".repeat(255));
    assert_eq!(d.versions, (0..16).collect::<Vec<u16>>());
    // The constructor truncates the same way, so what you build is what arrives.
    assert_eq!(
        WireError::new(ErrorCode::Internal, "é".repeat(200))
            .message
            .len(),
        256
    );
}

#[test]
fn largest_session_message_fits_a_frame_with_room_for_sealing() {
    let biggest = Session::Request {
        id: u32::MAX,
        body: Request::Authenticate(AuthenticateRequest {
            user: "u".repeat(MAX_USER_LEN),
            password: "p".repeat(MAX_PASSWORD_LEN),
            host: "h".repeat(MAX_HOST_LEN),
        }),
    };
    // 1 tag + 4 id + 1 kind + 3 × 2 lengths + 255 + 1024 + 255.
    assert_eq!(enc_s(&biggest).len(), 1546);
    assert!(enc_s(&biggest).len() + 1024 < MAX_FRAME_LEN);
}

/// Decoding is canonical: whatever decodes re-encodes to exactly the same bytes, with one
/// exception: a ClientHello's unknown cipher codes are dropped (the re-encoding lacks them).
fn check_canonical_h(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(m) = Handshake::decode(bytes) else {
        return Ok(());
    };
    let mut out = vec![];
    let encoded = m.encode(&mut out);
    if encoded.is_ok() && out == bytes {
        return Ok(());
    }
    let Handshake::ClientHello(h) = &m else {
        return Err(TestCaseError::fail(format!("{m:?} re-encodes differently")));
    };
    // The cipher list is the hello's tail: count, then the codes.
    let at = 1 + 1 + 2 * h.versions.len() + 2 + h.host.len() + NONCE_LEN;
    let codes = &bytes[at + 1..];
    let known: Vec<_> = codes
        .iter()
        .filter_map(|&c| crate::crypto::CipherSuite::from_code(c))
        .collect();
    prop_assert!(known.len() < codes.len(), "nothing was dropped");
    prop_assert_eq!(&h.ciphers, &known);
    if encoded.is_ok() {
        prop_assert_eq!(Handshake::decode(&out), Ok(m.clone()));
    }
    Ok(())
}

fn check_canonical_s(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(m) = Session::decode(bytes) {
        prop_assert_eq!(enc_s(&m), bytes);
    }
    // The in-place decoder a server uses accepts and rejects exactly the same bytes, with the
    // same result and the same error.
    let viewed = Session::decode_view(bytes).map(|v| match v {
        SessionView::Request { id, body } => Session::Request {
            id,
            body: body.into_owned(),
        },
        SessionView::Other(other) => other,
    });
    prop_assert_eq!(viewed, Session::decode(bytes));
    Ok(())
}

const TAGS: [u8; 8] = [0x01, 0x02, 0x03, 0x0f, 0x10, 0x11, 0x12, 0x1f];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn wire_decoders_never_panic_on_any_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        check_canonical_h(&bytes)?;
        check_canonical_s(&bytes)?;
    }

    /// Random bytes after a real tag (and a plausible small count/length) reach deeper code.
    #[test]
    fn wire_decoders_never_panic_behind_a_valid_tag(
        tag in proptest::sample::select(&TAGS[..]),
        rest in proptest::collection::vec(prop_oneof![0u8..=6, any::<u8>()], 0..80)
    ) {
        let bytes = [&[tag][..], &rest].concat();
        check_canonical_h(&bytes)?;
        check_canonical_s(&bytes)?;
    }

    #[test]
    fn wire_mutated_messages_never_panic(
        m in strategies::session(), at in any::<usize>(), byte in any::<u8>()
    ) {
        let mut bytes = enc_s(&m);
        let i = at % bytes.len();
        bytes[i] = byte;
        check_canonical_s(&bytes)?;
    }

    #[test]
    fn wire_handshake_round_trips(m in strategies::handshake()) {
        let bytes = enc_h(&m);
        prop_assert_eq!(Handshake::decode(&bytes), Ok(m));
        for cut in 0..bytes.len() {
            prop_assert_eq!(Handshake::decode(&bytes[..cut]), Err(DecodeError::Truncated));
        }
        let mut longer = bytes;
        longer.push(0);
        prop_assert_eq!(Handshake::decode(&longer), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn wire_session_round_trips(m in strategies::session()) {
        let bytes = enc_s(&m);
        check_canonical_s(&bytes)?;
        prop_assert_eq!(Session::decode(&bytes), Ok(m));
        for cut in 0..bytes.len() {
            prop_assert_eq!(Session::decode(&bytes[..cut]), Err(DecodeError::Truncated));
        }
        let mut longer = bytes;
        longer.push(0);
        prop_assert_eq!(Session::decode(&longer), Err(DecodeError::TrailingBytes(1)));
    }
}

#[test]
fn a_debug_print_of_an_authenticate_request_never_shows_the_password() {
    let r: AuthenticateRequest = AuthenticateRequest {
        user: "alice".into(),
        password: "correct horse".into(),
        host: "web1".into(),
    };
    let text = format!("{:?}", Request::Authenticate(r));
    assert!(
        text.contains("alice") && text.contains("<redacted>"),
        "{text}"
    );
    assert!(!text.contains("correct horse"), "{text}");
}

#[test]
fn wiping_empties_an_authenticate_password_and_leaves_an_authorize_alone() {
    let mut authenticate = Request::Authenticate(AuthenticateRequest {
        user: "alice".into(),
        password: "hunter2".into(),
        host: "web1".into(),
    });
    authenticate.wipe_password();
    let Request::Authenticate(a) = &authenticate else {
        panic!("kind changed")
    };
    assert_eq!((a.user.as_str(), a.password.as_str()), ("alice", ""));
    let authorize = Request::Authorize(AuthorizeRequest {
        method: Method::Ssh,
        from_host: "10.0.0.1".into(),
        from_user: "alice".into(),
        to_user: "alice".into(),
        to_host: "web1".into(),
    });
    let mut wiped = authorize.clone();
    wiped.wipe_password();
    assert_eq!(wiped, authorize);
}
