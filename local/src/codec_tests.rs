//! Exact bytes (the worked examples in docs/AGENT.md), limits, and property tests: any bytes
//! decode or fail with a typed error, never a panic; every message round-trips.

use super::*;
use crate::{ChangeOutcome, GroupEntry, Lookup, PasswdEntry, PasswordAging};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn body(frame: &[u8]) -> &[u8] {
    &frame[LEN_PREFIX..]
}

#[test]
fn worked_examples_of_requests() {
    let cases = [
        (
            LocalRequest::Authorize {
                method: Method::Ssh,
                from_host: "10.0.0.7".into(),
                from_user: "alice".into(),
                to_user: "alice".into(),
                to_host: String::new(),
            },
            "0000001d 01 01 02 0008 31302e302e302e37 0005 616c696365 0005 616c696365 0000",
        ),
        (
            LocalRequest::Authenticate {
                user: "alice".into(),
                password: "pw".to_string().into(),
                host: String::new(),
            },
            "0000000f 01 02 0005 616c696365 0002 7077 0000",
        ),
        (
            LocalRequest::Lookup(Lookup::UserByName("alice".into())),
            "00000009 01 03 0005 616c696365",
        ),
        (
            LocalRequest::Lookup(Lookup::UserByUid(100_001)),
            "00000006 01 04 000186a1",
        ),
        (LocalRequest::Status, "00000002 01 08"),
        (
            LocalRequest::ChangePassword {
                user: "bob".into(),
                old_password: "ol".to_string().into(),
                new_password: "new".to_string().into(),
            },
            "00000010 01 09 0003 626f62 0002 6f6c 0003 6e6577",
        ),
    ];
    for (request, bytes) in cases {
        let frame = encode_request(&request).unwrap();
        assert_eq!(*frame, hex(bytes), "{request:?}");
        assert_eq!(decode_request(body(&frame)), Ok(request));
    }
}

#[test]
fn worked_examples_of_answers() {
    let alice = PasswdEntry::example();
    let cases = [
        (
            LocalResponse::Allow {
                route: "r".into(),
                server: "s".into(),
            },
            "00000008 01 01 0001 72 0001 73",
        ),
        (
            LocalResponse::Deny {
                reason: DenyReason::NoMatchingRoute,
                server: "s".into(),
            },
            "00000006 01 02 04 0001 73",
        ),
        (
            LocalResponse::AuthOk { server: "s".into() },
            "00000005 01 03 0001 73",
        ),
        (
            LocalResponse::AuthFail { server: "s".into() },
            "00000005 01 04 0001 73",
        ),
        (
            LocalResponse::AuthOkAging {
                aging: PasswordAging::Expired,
                server: "s".into(),
            },
            "00000006 01 0c 01 0001 73",
        ),
        (
            LocalResponse::AuthOkAging {
                aging: PasswordAging::ExpiresIn { days: 3 },
                server: "s".into(),
            },
            "00000008 01 0c 02 0003 0001 73",
        ),
        (
            LocalResponse::error(LocalErrorKind::NoServerReachable, "x"),
            "00000006 01 05 01 0001 78",
        ),
        (
            LocalResponse::User(alice),
            "0000002e 01 06 0005 616c696365 000186a1 000186a1 0005 416c696365
             000b 2f686f6d652f616c696365 0007 2f62696e2f7368",
        ),
        (
            LocalResponse::Group(GroupEntry {
                name: "ops".into(),
                gid: 100_100,
                members: vec!["alice".into()],
            }),
            "00000014 01 07 0003 6f7073 00018704 0001 0005 616c696365",
        ),
        (
            LocalResponse::Groups(vec![100_100]),
            "00000008 01 08 0001 00018704",
        ),
        (LocalResponse::NotFound, "00000002 01 09"),
        (
            LocalResponse::PasswordChange(ChangeOutcome::Changed),
            "00000003 01 0b 01",
        ),
        (
            LocalResponse::PasswordChange(ChangeOutcome::Refused { rule: "r".into() }),
            "00000006 01 0b 02 0001 72",
        ),
        (
            LocalResponse::PasswordChange(ChangeOutcome::Failed),
            "00000003 01 0b 03",
        ),
        (
            LocalResponse::PasswordChange(ChangeOutcome::unavailable("x")),
            "00000006 01 0b 04 0001 78",
        ),
    ];
    for (response, bytes) in cases {
        let frame = encode_response(&response);
        assert_eq!(frame, hex(bytes), "{response:?}");
        assert_eq!(decode_response(body(&frame)), Ok(response));
    }
}

#[test]
fn versions_limits_and_garbage_are_typed_errors() {
    assert_eq!(decode_request(&hex("02 08")), Err(CodecError::Version(2)));
    assert_eq!(
        decode_request(&hex("01 63")),
        Err(CodecError::Decode(DecodeError::UnknownCode {
            field: "request kind",
            code: 0x63
        }))
    );
    assert_eq!(
        decode_request(&hex("01 08 00")),
        Err(CodecError::Decode(DecodeError::TrailingBytes(1)))
    );
    assert_eq!(
        decode_request(&[]),
        Err(CodecError::Decode(DecodeError::Truncated))
    );
    // A 1025-byte password is refused from its length prefix.
    assert!(matches!(
        decode_request(&hex("01 02 0001 61 0401")),
        Err(CodecError::Decode(DecodeError::Invalid {
            field: "password",
            ..
        }))
    ));
    let mut buf = FrameBuf::new(MAX_REQUEST_FRAME);
    buf.push(&hex("00001001"));
    assert_eq!(
        buf.next_body(),
        Err(CodecError::TooLarge {
            len: 4097,
            max: MAX_REQUEST_FRAME
        })
    );
    let long = LocalRequest::Authenticate {
        user: "u".repeat(256),
        password: String::new().into(),
        host: String::new(),
    };
    assert!(matches!(encode_request(&long), Err(CodecError::Encode(_))));
}

#[test]
fn hostile_password_changes_are_typed_errors() {
    // Truncated inside the new password, an over-long old one, trailing bytes, a bad outcome
    // code and an outcome text cut short: each refused, none a panic.
    for (bytes, what) in [
        ("01 09 0003 626f62 0002 6f6c 0003 6e65", "truncated"),
        ("01 09 0001 61 0401", "old password over 1024 bytes"),
        ("01 09 0001 61 0000 0000 00", "trailing byte"),
        ("01 09 0001 61 0001 ff 0000", "old password not UTF-8"),
    ] {
        assert!(decode_request(&hex(bytes)).is_err(), "{what}");
    }
    for (bytes, what) in [
        ("01 0b 05", "unknown outcome"),
        ("01 0b 02 0005 72", "rule text cut short"),
        ("01 0b 01 00", "trailing byte"),
        ("01 0b 04 0101", "reason over 256 bytes"),
    ] {
        assert!(decode_response(&hex(bytes)).is_err(), "{what}");
    }
    let request = LocalRequest::ChangePassword {
        user: "bob".into(),
        old_password: "hunter2".to_string().into(),
        new_password: "hunter3".to_string().into(),
    };
    let shown = format!("{request:?}");
    assert!(!shown.contains("hunter"), "{shown}");
}

#[test]
fn the_password_never_appears_in_debug_output() {
    let request = LocalRequest::Authenticate {
        user: "alice".into(),
        password: "hunter2".to_string().into(),
        host: "web1".into(),
    };
    let shown = format!("{request:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("alice@web1"), "{shown}");
}

#[test]
fn a_frame_buffer_keeps_no_copy_of_a_taken_frame() {
    let request = LocalRequest::Authenticate {
        user: "alice".into(),
        password: "hunter2".to_string().into(),
        host: String::new(),
    };
    let frame = encode_request(&request).unwrap();
    let mut buf = FrameBuf::new(MAX_REQUEST_FRAME);
    // In small pieces, so the buffer grows (and wipes what it outgrew) on the way.
    for piece in frame.chunks(3) {
        buf.push(piece);
    }
    let body = buf.next_body().unwrap().unwrap();
    assert_eq!(decode_request(&body), Ok(request));
    assert!(buf.is_empty());
    // What stays allocated behind the (now empty) buffer holds zeros only.
    // SAFETY: reads within the Vec's capacity, which is allocated and initialised (every
    // byte was written by a push and then wiped).
    let spare = unsafe { std::slice::from_raw_parts(buf.buf.as_ptr(), frame.len()) };
    assert!(spare.iter().all(|&b| b == 0), "{spare:?}");
}

#[test]
fn long_text_is_cut_on_a_character_boundary_not_refused() {
    let message = format!("{}é tail", "x".repeat(255));
    let frame = encode_response(&LocalResponse::error(LocalErrorKind::ServerError, message));
    let LocalResponse::Error { message, .. } = decode_response(body(&frame)).unwrap() else {
        panic!("not an error")
    };
    assert_eq!(message, "x".repeat(255));
    // An invalid identity cannot be sent: the caller reads a server error instead.
    let bad = LocalResponse::User(PasswdEntry {
        name: "ro:ot".into(),
        uid: 1,
        gid: 1,
        gecos: String::new(),
        home: "/".into(),
        shell: "/".into(),
    });
    let frame = encode_response(&bad);
    assert!(matches!(
        decode_response(body(&frame)),
        Err(_)
            | Ok(LocalResponse::Error {
                kind: LocalErrorKind::ServerError,
                ..
            })
    ));
}

#[test]
fn the_largest_request_fits_the_agent_s_cap() {
    let biggest = LocalRequest::Authorize {
        method: Method::Sudo,
        from_host: "h".repeat(255),
        from_user: "u".repeat(255),
        to_user: "u".repeat(255),
        to_host: "h".repeat(255),
    };
    let authenticate = LocalRequest::Authenticate {
        user: "u".repeat(255),
        password: "p".repeat(1024).into(),
        host: "h".repeat(255),
    };
    let change = LocalRequest::ChangePassword {
        user: "u".repeat(255),
        old_password: "p".repeat(1024).into(),
        new_password: "p".repeat(1024).into(),
    };
    let sizes: Vec<usize> = [biggest, authenticate, change]
        .iter()
        .map(|r| encode_request(r).unwrap().len() - LEN_PREFIX)
        .collect();
    assert_eq!(sizes, [1031, 1542, 2311]);
    assert!(sizes.iter().all(|&s| s <= MAX_REQUEST_FRAME));
}

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max / 4).prop_map(|c| c.into_iter().collect())
}

fn request() -> impl Strategy<Value = LocalRequest> {
    prop_oneof![
        (0u8..4, text(255), text(255), text(255), text(255)).prop_map(|(m, a, b, c, d)| {
            LocalRequest::Authorize {
                method: Method::ALL[m as usize],
                from_host: a,
                from_user: b,
                to_user: c,
                to_host: d,
            }
        }),
        (text(255), text(1024), text(255)).prop_map(|(user, password, host)| {
            LocalRequest::Authenticate {
                user,
                password: password.into(),
                host,
            }
        }),
        text(255).prop_map(|n| LocalRequest::Lookup(Lookup::GroupsOfUser(n))),
        any::<u32>().prop_map(|g| LocalRequest::Lookup(Lookup::GroupByGid(g))),
        Just(LocalRequest::Status),
        (text(255), text(1024), text(1024)).prop_map(|(user, old, new)| {
            LocalRequest::ChangePassword {
                user,
                old_password: old.into(),
                new_password: new.into(),
            }
        }),
    ]
}

proptest! {
    #[test]
    fn local_requests_round_trip(request in request()) {
        let frame = encode_request(&request).unwrap();
        prop_assert_eq!(decode_request(body(&frame)), Ok(request));
    }

    #[test]
    fn local_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
        let mut with_version = vec![VERSION];
        with_version.extend_from_slice(&bytes);
        let _ = decode_request(&with_version);
        let _ = decode_response(&with_version);
        let mut buf = FrameBuf::new(MAX_REQUEST_FRAME);
        buf.push(&bytes);
        while let Ok(Some(body)) = buf.next_body() {
            let _ = decode_request(&body);
        }
    }
}
