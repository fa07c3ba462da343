//! Audit records: the worked example of docs/PROTOCOL.md byte for byte, a round trip of every
//! kind, texts cut to their caps on encode, and hostile input refused without a panic.

use super::*;
use crate::types::ErrorCode;
use crate::wire::strategies::hex;
use proptest::prelude::*;

fn every_kind() -> Vec<AuditRecord> {
    let at = 1_795_435_200_123;
    let address = Some("10.0.0.7:40112".parse().unwrap());
    let v6 = Some("[2001:db8::1]:22".parse().unwrap());
    let record = |agent: &str, address, event| AuditRecord {
        at_unix_ms: at,
        agent: agent.to_string(),
        address,
        event,
    };
    vec![
        record(
            "web1",
            address,
            AuditEvent::Authorize {
                method: Method::Ssh,
                from_user: "alice".into(),
                from_host: "10.0.0.9".into(),
                to_user: "alice".into(),
                to_host: "web1".into(),
                verdict: Verdict::Allow {
                    route: "SSH:*->alice@web*".into(),
                },
            },
        ),
        record(
            "web1",
            v6,
            AuditEvent::Authorize {
                method: Method::Sudo,
                from_user: "bob".into(),
                from_host: "web1".into(),
                to_user: "root".into(),
                to_host: "web1".into(),
                verdict: Verdict::Deny {
                    reason: DenyReason::OutsideTimeWindow,
                },
            },
        ),
        record(
            "jump1",
            address,
            AuditEvent::Authenticate {
                user: "bob".into(),
                host: "web1".into(),
                outcome: Err(AuthFailure::LockedOut),
            },
        ),
        record(
            "web1",
            address,
            AuditEvent::Authenticate {
                user: "bob".into(),
                host: "web1".into(),
                outcome: Ok(()),
            },
        ),
        record(
            "web1",
            address,
            AuditEvent::ForeignHost {
                host: "db1".into(),
                asked: Asked::Authenticate,
            },
        ),
        record(
            "ghost",
            address,
            AuditEvent::HostRefused {
                code: ErrorCode::UnknownHost,
            },
        ),
        record("", address, AuditEvent::Suppressed { count: 9000 }),
        record(
            "",
            None,
            AuditEvent::Lockout {
                user: "bob".into(),
                until: "2026-11-23T12:10:00Z".into(),
                failures: 6,
            },
        ),
        record(
            "",
            None,
            AuditEvent::Admin {
                uid: 1001,
                caller: "carol".into(),
                command: "kind=UserLock name=bob".into(),
                outcome: AdminOutcome::Refused,
                detail: "unknown user `bob`".into(),
            },
        ),
    ]
}

fn encoded(record: &AuditRecord) -> Vec<u8> {
    let mut out = Vec::new();
    encode_record(&mut out, record);
    out
}

#[test]
fn wire_vector_an_authorize_record() {
    // docs/PROTOCOL.md, "Audit records": alice's SSH login to web1, allowed, decided at
    // 2026-11-23T12:00:00.123Z for web1's agent connected from 10.0.0.7:40112.
    let record = every_kind().remove(0);
    let want = hex("10  00 00 01 a2 08 46 fe 7b  00 00 00 04 77 65 62 31
         04 0a 00 00 07 9c b0
         02  00 00 00 05 61 6c 69 63 65  00 00 00 08 31 30 2e 30 2e 30 2e 39
             00 00 00 05 61 6c 69 63 65  00 00 00 04 77 65 62 31
         01  00 00 00 11 53 53 48 3a 2a 2d 3e 61 6c 69 63 65 40 77 65 62 2a");
    assert_eq!(encoded(&record), want);
    assert_eq!(decode_one(&want).unwrap(), record);
}

#[test]
fn every_kind_round_trips_and_its_fields_are_named() {
    let names: Vec<_> = every_kind()
        .iter()
        .map(|r| {
            assert_eq!(decode_one(&encoded(r)).unwrap(), *r);
            assert!(KIND_NAMES.contains(&r.kind_name()), "{}", r.kind_name());
            assert!(OUTCOME_NAMES.contains(&r.outcome()), "{}", r.outcome());
            (r.kind_name(), r.outcome(), r.user().to_string())
        })
        .collect();
    for outcome in AdminOutcome::ALL {
        assert!(
            OUTCOME_NAMES.contains(&outcome.name()),
            "{}",
            outcome.name()
        );
    }
    assert_eq!(
        names,
        [
            ("authorize", "allow", "alice".to_string()),
            ("authorize", "deny", "bob".into()),
            ("authenticate", "fail", "bob".into()),
            ("authenticate", "ok", "bob".into()),
            ("foreign_host", "refused", String::new()),
            ("host_refused", "refused", String::new()),
            ("suppressed", "refused", String::new()),
            ("lockout", "locked_out", "bob".into()),
            ("admin", "refused", "carol".into()),
        ]
    );
}

#[test]
fn a_borrowed_record_encodes_as_its_owned_copy_does() {
    let owned = every_kind().remove(8);
    let AuditEvent::Admin { command, .. } = &owned.event else {
        unreachable!()
    };
    let borrowed = AuditRecord {
        at_unix_ms: owned.at_unix_ms,
        agent: "",
        address: None,
        event: AuditEvent::Admin {
            uid: 1001,
            caller: "carol",
            command: command.as_str(),
            outcome: AdminOutcome::Refused,
            detail: "unknown user `bob`",
        },
    };
    assert_eq!(encoded(&owned), {
        let mut out = Vec::new();
        encode_record(&mut out, &borrowed);
        out
    });
}

#[test]
fn texts_over_their_caps_are_cut_on_a_character_boundary() {
    let mut record = every_kind().remove(8);
    if let AuditEvent::Admin { command, .. } = &mut record.event {
        *command = "é".repeat(MAX_AUDIT_TEXT_LEN); // 2048 bytes
    }
    let decoded = decode_one(&encoded(&record)).unwrap();
    let AuditEvent::Admin { command, .. } = decoded.event else {
        unreachable!()
    };
    assert_eq!(command.len(), MAX_AUDIT_TEXT_LEN);
    assert!(encoded(&every_kind()[0]).len() <= MAX_RECORD_LEN);
}

#[test]
fn hostile_bytes_are_refused_without_a_panic() {
    for record in every_kind() {
        let bytes = encoded(&record);
        for cut in 0..bytes.len() {
            assert!(decode_one(&bytes[..cut]).is_err(), "{cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode_one(&trailing).is_err());
    }
    // The lockout's report kind is not an audit record; a lying text length is refused.
    assert!(decode_one(&[0x01]).is_err());
    let mut lying = encoded(&every_kind()[6]);
    lying[9..13].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(decode_one(&lying).is_err());
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_one(&bytes);
    }
}
