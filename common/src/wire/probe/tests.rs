//! Exact-byte vectors (as in docs/PROTOCOL.md), the no-amplification bound, and property tests
//! for the probe body codec.

use super::*;
use crate::wire::strategies;
use proptest::prelude::*;

use crate::wire::strategies::hex;

fn enc_probe(p: &Probe) -> Vec<u8> {
    let mut out = vec![];
    p.encode_body(&mut out).unwrap();
    out
}

fn enc_reply(r: &ProbeReply) -> Vec<u8> {
    let mut out = vec![];
    r.encode_body(&mut out);
    out
}

fn example_reply() -> ProbeReply {
    ProbeReply {
        probe_id: 0x0102_0304_0506_0708,
        load: LoadReport {
            recommended_wait_us: 1500,
            seed_wait_us: 1200,
            queue_len: 3,
            in_service: 2,
            workers: 4,
            mean_queue_us: 400,
            mean_service_us: 250,
            connections: 17,
            max_connections: 1000,
            db_sequence: 42,
            db_age_ms: 1500,
        },
    }
}

#[test]
fn wire_vector_probe_body() {
    let p = Probe {
        host: "web-01".into(),
        probe_id: 0x0102_0304_0506_0708,
        // 2026-12-01T00:00:00Z
        sent_unix_ms: 1_796_083_200_000,
    };
    let mut expected = hex("4748 01 01 06 7765622d3031 0102030405060708 000001a22ee6b000");
    expected.resize(112, 0); // 85 zero bytes of padding: 112 + 16-byte tag = 128
    assert_eq!(enc_probe(&p), expected);
    assert_eq!(Probe::decode_body(&expected), Ok(p));
}

#[test]
fn wire_vector_probe_reply_body() {
    let expected = hex("4748 01 02 0102030405060708
         00000000000005dc 00000000000004b0 00000003 00000002 00000004
         0000000000000190 00000000000000fa 00000011 000003e8
         000000000000002a 00000000000005dc");
    assert_eq!(expected.len(), PROBE_REPLY_BODY_LEN);
    assert_eq!(enc_reply(&example_reply()), expected);
    assert_eq!(ProbeReply::decode_body(&expected), Ok(example_reply()));
}

#[test]
fn no_amplification_largest_reply_not_above_smallest_probe() {
    // Replies are fixed-size: the largest one is the all-max one.
    let max_reply = ProbeReply {
        probe_id: u64::MAX,
        load: LoadReport {
            recommended_wait_us: u64::MAX,
            seed_wait_us: u64::MAX,
            queue_len: u32::MAX,
            in_service: u32::MAX,
            workers: u32::MAX,
            mean_queue_us: u64::MAX,
            mean_service_us: u64::MAX,
            connections: u32::MAX,
            max_connections: u32::MAX,
            db_sequence: u64::MAX,
            db_age_ms: u64::MAX,
        },
    };
    let largest_reply = enc_reply(&max_reply).len() + PROBE_TAG_LEN;
    assert_eq!(largest_reply, PROBE_REPLY_DATAGRAM_LEN);
    assert_eq!(largest_reply, 96);
    // The smallest probe we send (1-byte host) is padded to the minimum ...
    let tiny = Probe {
        host: "a".into(),
        probe_id: 0,
        sent_unix_ms: 0,
    };
    let smallest_probe = enc_probe(&tiny).len() + PROBE_TAG_LEN;
    assert_eq!(smallest_probe, PROBE_MIN_DATAGRAM);
    // ... and nothing shorter is accepted, so no accepted probe is smaller.
    let short = &enc_probe(&tiny)[..PROBE_MIN_DATAGRAM - PROBE_TAG_LEN - 1];
    assert!(Probe::decode_body(short).is_err());
    assert!(largest_reply <= smallest_probe);
}

#[test]
fn probe_size_limits() {
    let longest = Probe {
        host: "h".repeat(MAX_HOST_LEN),
        probe_id: 9,
        sent_unix_ms: u64::MAX,
    };
    let body = enc_probe(&longest);
    assert_eq!(body.len() + PROBE_TAG_LEN, 292);
    // Extra zero padding is accepted up to the maximum datagram, and not beyond.
    let mut padded = body.clone();
    padded.resize(PROBE_MAX_DATAGRAM - PROBE_TAG_LEN, 0);
    assert_eq!(Probe::decode_body(&padded), Ok(longest));
    padded.push(0);
    assert_eq!(
        Probe::decode_body(&padded),
        Err(DecodeError::Invalid {
            field: "probe",
            why: "datagram over the 512-byte maximum"
        })
    );
}

#[test]
fn probe_header_errors_are_typed() {
    let good = enc_probe(&Probe {
        host: "web-01".into(),
        probe_id: 1,
        sent_unix_ms: 2,
    });
    let with = |i: usize, b: u8| {
        let mut v = good.clone();
        v[i] = b;
        Probe::decode_body(&v)
    };
    assert_eq!(with(0, b'X'), Err(DecodeError::BadMagic));
    assert_eq!(with(2, 2), Err(DecodeError::UnsupportedVersion(2)));
    assert_eq!(
        with(3, 9),
        Err(DecodeError::UnknownCode {
            field: "probe kind",
            code: 9
        })
    );
    assert!(matches!(
        with(3, PROBE_KIND_REPLY),
        Err(DecodeError::Invalid { .. })
    ));
    assert_eq!(
        with(4, 0),
        Err(DecodeError::Invalid {
            field: "host",
            why: "empty"
        })
    );
    assert_eq!(
        with(good.len() - 1, 1),
        Err(DecodeError::Invalid {
            field: "padding",
            why: "not all zeros"
        })
    );
}

#[test]
fn probe_encode_refuses_bad_host_and_leaves_out_unchanged() {
    let mut out = vec![7];
    let p = |host: String| Probe {
        host,
        probe_id: 0,
        sent_unix_ms: 0,
    };
    assert_eq!(
        p(String::new()).encode_body(&mut out),
        Err(EncodeError::Empty { field: "host" })
    );
    assert_eq!(
        p("h".repeat(256)).encode_body(&mut out),
        Err(EncodeError::TooLong {
            field: "host",
            len: 256,
            max: 255
        })
    );
    assert_eq!(out, [7]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn wire_probe_decoders_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600)
    ) {
        let _ = Probe::decode_body(&bytes);
        let _ = ProbeReply::decode_body(&bytes);
        // Behind a valid header, to get past the magic check.
        for kind in [PROBE_KIND_PROBE, PROBE_KIND_REPLY] {
            let framed = [&b"GH"[..], &[PROBE_VERSION, kind], &bytes].concat();
            let _ = Probe::decode_body(&framed);
            let _ = ProbeReply::decode_body(&framed);
        }
    }

    #[test]
    fn wire_probe_round_trips(p in strategies::probe(), extra in 0usize..200) {
        let mut body = enc_probe(&p);
        prop_assert!(body.len() + PROBE_TAG_LEN >= PROBE_MIN_DATAGRAM);
        prop_assert_eq!(Probe::decode_body(&body), Ok(p.clone()));
        // Any strict prefix fails: the padding ends exactly at the minimum.
        for cut in 0..body.len() {
            prop_assert!(Probe::decode_body(&body[..cut]).is_err());
        }
        // Trailing zeros are padding (accepted up to the maximum); a trailing non-zero byte
        // is not.
        let room = PROBE_MAX_DATAGRAM - PROBE_TAG_LEN - body.len();
        body.resize(body.len() + extra.min(room), 0);
        prop_assert_eq!(Probe::decode_body(&body), Ok(p));
        if body.len() + PROBE_TAG_LEN < PROBE_MAX_DATAGRAM {
            body.push(1);
            prop_assert_eq!(
                Probe::decode_body(&body),
                Err(DecodeError::Invalid { field: "padding", why: "not all zeros" })
            );
        }
    }

    #[test]
    fn wire_probe_reply_round_trips(r in strategies::probe_reply()) {
        let body = enc_reply(&r);
        prop_assert_eq!(body.len(), PROBE_REPLY_BODY_LEN);
        prop_assert_eq!(ProbeReply::decode_body(&body), Ok(r));
        for cut in 0..body.len() {
            prop_assert!(ProbeReply::decode_body(&body[..cut]).is_err());
        }
        let mut longer = body;
        longer.push(0);
        prop_assert_eq!(ProbeReply::decode_body(&longer), Err(DecodeError::TrailingBytes(1)));
    }
}
