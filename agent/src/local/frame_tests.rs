use super::*;
use crate::local::samples::authorize;
use crate::local::{LocalErrorKind, LocalRequest, LocalResponse};
use gatehouse_common::types::DenyReason;
use proptest::prelude::*;

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[test]
fn a_request_round_trips_byte_by_byte() {
    let bytes = encode(&authorize(), MAX_REQUEST_FRAME).unwrap();
    let mut buf = FrameBuf::new(MAX_REQUEST_FRAME);
    for (i, b) in bytes.iter().enumerate() {
        assert_eq!(
            buf.next_message::<LocalRequest>(),
            Ok(None),
            "complete after {i} bytes"
        );
        buf.push(&[*b]);
    }
    assert_eq!(buf.next_message::<LocalRequest>(), Ok(Some(authorize())));
    assert!(buf.is_empty());
}

#[test]
fn two_frames_in_one_read_come_out_in_order() {
    let mut bytes = encode(&authorize(), MAX_REQUEST_FRAME).unwrap();
    bytes.extend(encode(&LocalRequest::Status, MAX_REQUEST_FRAME).unwrap());
    let mut buf = FrameBuf::new(MAX_REQUEST_FRAME);
    buf.push(&bytes);
    assert_eq!(buf.next_message(), Ok(Some(authorize())));
    assert_eq!(buf.next_message(), Ok(Some(LocalRequest::Status)));
    assert_eq!(buf.next_message::<LocalRequest>(), Ok(None));
}

#[test]
fn a_response_has_the_documented_ron_text() {
    let deny = LocalResponse::Deny {
        reason: DenyReason::Locked,
        server: "127.0.0.1:7701".into(),
    };
    let bytes = encode(&deny, MAX_RESPONSE_FRAME).unwrap();
    let text = br#"Deny(reason:Locked,server:"127.0.0.1:7701")"#;
    assert_eq!(bytes, frame(text));
}

#[test]
fn an_over_long_prefix_is_refused_before_the_body_arrives() {
    let mut buf = FrameBuf::new(MAX_REQUEST_FRAME);
    buf.push(&[0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        buf.next_message::<LocalRequest>(),
        Err(FrameError::TooLarge {
            len: u32::MAX as usize,
            max: MAX_REQUEST_FRAME
        })
    );
    let mut buf = FrameBuf::new(MAX_REQUEST_FRAME);
    buf.push(&((MAX_REQUEST_FRAME + 1) as u32).to_be_bytes());
    assert!(matches!(
        buf.next_message::<LocalRequest>(),
        Err(FrameError::TooLarge { len: 16385, .. })
    ));
}

#[test]
fn a_frame_at_the_cap_is_read() {
    let mut text = b"Status".to_vec();
    text.resize(MAX_REQUEST_FRAME, b' ');
    let mut buf = FrameBuf::new(MAX_REQUEST_FRAME);
    buf.push(&frame(&text));
    assert_eq!(buf.next_message(), Ok(Some(LocalRequest::Status)));
}

#[test]
fn empty_non_utf8_and_bad_ron_bodies_are_errors() {
    let mut buf = FrameBuf::new(MAX_REQUEST_FRAME);
    buf.push(&frame(b""));
    assert_eq!(buf.next_message::<LocalRequest>(), Err(FrameError::Empty));
    buf.push(&frame(&[0xc3, 0x28]));
    assert_eq!(buf.next_message::<LocalRequest>(), Err(FrameError::NotUtf8));
    buf.push(&frame(b"Launch(missiles: true)"));
    assert!(matches!(
        buf.next_message::<LocalRequest>(),
        Err(FrameError::BadRon(_))
    ));
}

#[test]
fn encoding_over_the_cap_is_refused() {
    let error = LocalResponse::Error {
        kind: LocalErrorKind::BadRequest,
        message: "x".repeat(100),
    };
    assert!(matches!(
        encode(&error, 50),
        Err(FrameError::TooLarge { max: 50, .. })
    ));
}

#[test]
fn the_password_never_appears_in_debug_output() {
    let request = LocalRequest::Authenticate {
        user: "alice".into(),
        password: "hunter2".to_string().into(),
        host: "web1".into(),
    };
    let shown = format!("{request:?}");
    assert_eq!(shown, "authenticate alice@web1 (password hidden)");
}

#[test]
fn thousands_of_unclosed_brackets_are_an_error() {
    let text = format!("Status{}", "(".repeat(10_000));
    let mut buf = FrameBuf::new(MAX_REQUEST_FRAME);
    buf.push(&frame(text.as_bytes()));
    assert!(buf.next_message::<LocalRequest>().is_err());
}

proptest! {
    #[test]
    fn garbage_never_panics_and_never_grows_past_one_frame(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)
    ) {
        let mut buf = FrameBuf::new(64);
        for chunk in chunks {
            buf.push(&chunk);
            loop {
                match buf.next_message::<LocalRequest>() {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => return Ok(()), // the daemon drops the caller here
                }
            }
            // Only a partial frame of at most the cap can be held between reads.
            prop_assert!(buf.len() < LEN_PREFIX + 64 + 64);
        }
    }

    #[test]
    fn any_text_body_decodes_or_errors(body in ".{0,200}") {
        let _ = decode_body::<LocalRequest>(body.as_bytes());
    }
}
