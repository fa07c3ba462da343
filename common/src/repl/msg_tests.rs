//! The replication encoding: the worked examples of docs/PROTOCOL.md byte for byte, round
//! trips of every message (property-tested over every change and database shape), canonical
//! bytes, and hostile input (truncations, trailing bytes, lying lengths, non-canonical bools,
//! random bytes) refused without a panic.

use super::*;
use crate::policy::model::{
    Database, Host, HostGroup, Lockout, PasswordRecord, Route, UnixAccount, UnixGroup, User,
    UserClass,
};
use crate::policy::RouteTarget;
use crate::repl::codec::{database_bytes, decode_database};
use crate::wire::strategies::hex;
use proptest::collection::vec;
use proptest::prelude::*;

fn vector(msg: ReplMessage, doc: &str) {
    let bytes = hex(doc);
    assert_eq!(msg.encode().unwrap(), bytes, "{msg:?}");
    assert_eq!(ReplMessage::decode(&bytes).unwrap(), msg);
}

#[test]
fn wire_vector_subscribe_ack_heartbeat_refused() {
    vector(
        ReplMessage::Subscribe {
            applied: 42,
            epoch: 1,
            heartbeat_ms: 1000,
        },
        "03 00 00 00 00 00 00 00 2a  00 00 00 00 00 00 00 01  00 00 00 00 00 00 03 e8",
    );
    vector(
        ReplMessage::Ack {
            applied: 7,
            epoch: 1,
        },
        "06 00 00 00 00 00 00 00 07  00 00 00 00 00 00 00 01",
    );
    vector(
        ReplMessage::Heartbeat { seq: 7 },
        "07 00 00 00 00 00 00 00 07",
    );
    vector(
        ReplMessage::Refused {
            reason: "stale".into(),
        },
        "08 00 05 73 74 61 6c 65",
    );
}

#[test]
fn wire_vector_changes() {
    vector(
        ReplMessage::Changes {
            head: 8,
            changes: vec![
                (
                    7,
                    Change::AddUser {
                        name: "alice".into(),
                        classes: vec!["ops".into()],
                    },
                ),
                (
                    8,
                    Change::SetLocked {
                        user: "alice".into(),
                        locked: true,
                    },
                ),
            ],
        },
        "04  00 00 00 00 00 00 00 08  00 00 00 02
         00 00 00 00 00 00 00 07  08  00 00 00 05 61 6c 69 63 65  00 00 00 01 00 00 00 03 6f 70 73
         00 00 00 00 00 00 00 08  0b  00 00 00 05 61 6c 69 63 65  01",
    );
}

#[test]
fn wire_vector_changes_of_a_host_flag_and_unix_identities() {
    vector(
        ReplMessage::Changes {
            head: 11,
            changes: vec![
                (
                    9,
                    Change::SetHostMayAskForOthers {
                        name: "jump1".into(),
                        allowed: true,
                    },
                ),
                (
                    10,
                    Change::AddUnixGroup {
                        name: "ops".into(),
                        gid: 100_100,
                    },
                ),
                (
                    11,
                    Change::AddUnixGroupMember {
                        group: "ops".into(),
                        user: "alice".into(),
                    },
                ),
            ],
        },
        "04  00 00 00 00 00 00 00 0b  00 00 00 03
         00 00 00 00 00 00 00 09  19  00 00 00 05 6a 75 6d 70 31  01
         00 00 00 00 00 00 00 0a  15  00 00 00 03 6f 70 73  00 01 87 04
         00 00 00 00 00 00 00 0b  17  00 00 00 03 6f 70 73  00 00 00 05 61 6c 69 63 65",
    );
}

#[test]
fn wire_vector_report_and_its_ack() {
    use crate::repl::report::{PasswordFailure, Report};
    use crate::types::AuthFailure;
    // Replica stream 7, its third record: bob's wrong password from web1 at
    // 2026-11-23T12:00:00.123Z (1795435200123 ms).
    vector(
        ReplMessage::Report {
            stream: 7,
            first: 3,
            records: vec![Report::PasswordFailure(PasswordFailure {
                at_unix_ms: 1_795_435_200_123,
                agent: "web1".into(),
                host: "web1".into(),
                user: "bob".into(),
                reason: AuthFailure::BadPassword,
            })],
        },
        "10  00 00 00 00 00 00 00 07  00 00 00 00 00 00 00 03  00 00 00 01
         01  00 00 01 a2 08 46 fe 7b
             00 00 00 04 77 65 62 31  00 00 00 04 77 65 62 31  00 00 00 03 62 6f 62
             04",
    );
    vector(
        ReplMessage::ReportAck {
            stream: 7,
            through: 3,
        },
        "11  00 00 00 00 00 00 00 07  00 00 00 00 00 00 00 03",
    );
}

#[test]
fn wire_vector_lockout_changes() {
    vector(
        ReplMessage::Changes {
            head: 10,
            changes: vec![
                (
                    9,
                    Change::SetLockout {
                        user: "bob".into(),
                        until: "2026-11-23T10:10:00Z".into(),
                    },
                ),
                (10, Change::ClearLockout { user: "bob".into() }),
            ],
        },
        "04  00 00 00 00 00 00 00 0a  00 00 00 02
         00 00 00 00 00 00 00 09  1a  00 00 00 03 62 6f 62
           00 00 00 14 32 30 32 36 2d 31 31 2d 32 33 54 31 30 3a 31 30 3a 30 30 5a
         00 00 00 00 00 00 00 0a  1b  00 00 00 03 62 6f 62",
    );
}

#[test]
fn wire_vector_password_changes() {
    vector(
        ReplMessage::Changes {
            head: 12,
            changes: vec![
                (
                    11,
                    Change::SetPassword {
                        user: "bob".into(),
                        hash: "h".into(),
                        set_at: "2026-12-01".into(),
                        expires: Some("2027-03-01".into()),
                        warn_from: None,
                        history: 5,
                    },
                ),
                (
                    12,
                    Change::ExpirePassword {
                        user: "bob".into(),
                        at: "2026-12-05".into(),
                    },
                ),
            ],
        },
        "04  00 00 00 00 00 00 00 0c  00 00 00 02
         00 00 00 00 00 00 00 0b  1c  00 00 00 03 62 6f 62  00 00 00 01 68
           00 00 00 0a 32 30 32 36 2d 31 32 2d 30 31
           01 00 00 00 0a 32 30 32 37 2d 30 33 2d 30 31  00  05
         00 00 00 00 00 00 00 0c  1d  00 00 00 03 62 6f 62
           00 00 00 0a 32 30 32 36 2d 31 32 2d 30 35",
    );
}

#[test]
fn wire_vector_snapshot_of_a_small_database() {
    let db = Database {
        users: vec![User {
            name: "bob".into(),
            password_hash: String::new(),
            locked: true,
            classes: Vec::new(),
            routes: vec![Route {
                rule: "SSH:*->bob@*".into(),
                window: None,
                expires: Some("2027-01-01".into()),
            }],
            unix: None,
        }],
        replicas: vec!["r1".into()],
        ..Database::default()
    };
    let data = hex("00 00 00 00  00 00 00 00
         00 00 00 01  00 00 00 03 62 6f 62  00 00 00 00  01  00 00 00 00
           00 00 00 01  00 00 00 0c 53 53 48 3a 2a 2d 3e 62 6f 62 40 2a  00
           01 00 00 00 0a 32 30 32 37 2d 30 31 2d 30 31  00
         00 00 00 00  00 00 00 01 00 00 00 02 72 31  00 00 00 00  00 00 00 00
         00 00 00 00");
    assert_eq!(database_bytes(&db).unwrap(), data);
    assert_eq!(decode_database(&data).unwrap(), db);
    let mut chunk = hex("05 00 00 00 00 00 00 00 09  00 00 00 00  01");
    chunk.extend_from_slice(&(data.len() as u32).to_be_bytes());
    chunk.extend_from_slice(&data);
    let msg = ReplMessage::SnapshotChunk {
        seq: 9,
        index: 0,
        last: true,
        data,
    };
    assert_eq!(msg.encode().unwrap(), chunk);
    assert_eq!(ReplMessage::decode(&chunk).unwrap(), msg);
}

#[test]
fn hostile_bytes_are_typed_errors() {
    let cases: [(&str, &str); 6] = [
        ("", "an empty message"),
        ("09", "an unknown tag"),
        ("07 00 00 00 00 00 00 00", "a truncated heartbeat"),
        ("07 00 00 00 00 00 00 00 07 00", "a trailing byte"),
        ("04 00 00 00 00 00 00 00 08 ff ff ff ff", "a lying count"),
        (
            "05 00 00 00 00 00 00 00 09 00 00 00 00 02 00 00 00 00",
            "a bool of 2",
        ),
    ];
    for (bytes, what) in cases {
        assert!(
            matches!(
                ReplMessage::decode(&hex(bytes)),
                Err(ReplError::Malformed(_))
            ),
            "{what} was accepted"
        );
    }
    let huge = vec![0u8; MAX_MESSAGE_BYTES + 1];
    assert!(matches!(
        ReplMessage::decode(&huge),
        Err(ReplError::TooLarge(_))
    ));
}

// ---- strategies ----------------------------------------------------------------------------

fn text() -> impl Strategy<Value = String> {
    crate::wire::strategies::text(0, 24)
}

fn texts() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..3)
}

fn route() -> impl Strategy<Value = Route> {
    (
        text(),
        proptest::option::of(text()),
        proptest::option::of(text()),
    )
        .prop_map(|(rule, window, expires)| Route {
            rule,
            window,
            expires,
        })
}

fn database() -> impl Strategy<Value = Database> {
    let host = (text(), texts(), text(), texts(), any::<bool>()).prop_map(
        |(name, addresses, node_key, groups, may_ask_for_others)| Host {
            name,
            addresses,
            node_key,
            groups,
            may_ask_for_others,
        },
    );
    let group = (text(), proptest::option::of(text()))
        .prop_map(|(name, description)| HostGroup { name, description });
    let user = (
        text(),
        text(),
        any::<bool>(),
        texts(),
        vec(route(), 0..3),
        proptest::option::of(account()),
    )
        .prop_map(
            |(name, password_hash, locked, classes, routes, unix)| User {
                name,
                password_hash,
                locked,
                classes,
                routes,
                unix,
            },
        );
    let unix_group = (text(), any::<u32>(), texts()).prop_map(|(name, gid, members)| UnixGroup {
        name,
        gid,
        members,
    });
    let class = (text(), vec(route(), 0..3)).prop_map(|(name, routes)| UserClass { name, routes });
    (
        vec(host, 0..3),
        vec(group, 0..3),
        vec(user, 0..3),
        vec(class, 0..3),
        texts(),
        vec(unix_group, 0..3),
        vec(
            (text(), text()).prop_map(|(user, until)| Lockout { user, until }),
            0..3,
        ),
        vec(password_record(), 0..3),
    )
        .prop_map(
            |(
                hosts,
                host_groups,
                users,
                user_classes,
                replicas,
                unix_groups,
                lockouts,
                records,
            )| {
                Database {
                    hosts,
                    host_groups,
                    users,
                    user_classes,
                    replicas,
                    unix_groups,
                    lockouts,
                    password_records: records,
                }
            },
        )
}

fn password_record() -> impl Strategy<Value = PasswordRecord> {
    let opt = || proptest::option::of(text());
    (text(), opt(), opt(), opt(), texts()).prop_map(
        |(user, set_at, expires, warn_from, history)| PasswordRecord {
            user,
            set_at,
            expires,
            warn_from,
            history,
        },
    )
}

fn target() -> impl Strategy<Value = RouteTarget> {
    prop_oneof![
        text().prop_map(RouteTarget::User),
        text().prop_map(RouteTarget::Class)
    ]
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (text(), text(), texts(), texts()).prop_map(|(name, node_key, addresses, groups)| {
            Change::AddHost {
                name,
                node_key,
                addresses,
                groups,
            }
        }),
        text().prop_map(|name| Change::RemoveHost { name }),
        (text(), texts()).prop_map(|(name, groups)| Change::SetHostGroups { name, groups }),
        (text(), any::<bool>())
            .prop_map(|(name, allowed)| Change::SetHostMayAskForOthers { name, allowed }),
        (text(), text()).prop_map(|(group, host)| Change::AddGroupMember { group, host }),
        (text(), text()).prop_map(|(group, host)| Change::RemoveGroupMember { group, host }),
        (text(), proptest::option::of(text()))
            .prop_map(|(name, description)| Change::AddGroup { name, description }),
        text().prop_map(|name| Change::RemoveGroup { name }),
        (text(), texts()).prop_map(|(name, classes)| Change::AddUser { name, classes }),
        text().prop_map(|name| Change::RemoveUser { name }),
        (text(), text()).prop_map(|(user, hash)| Change::SetPasswordHash { user, hash }),
        (text(), any::<bool>()).prop_map(|(user, locked)| Change::SetLocked { user, locked }),
        (text(), texts()).prop_map(|(user, classes)| Change::SetUserClasses { user, classes }),
        text().prop_map(|name| Change::AddClass { name }),
        text().prop_map(|name| Change::RemoveClass { name }),
        (target(), route()).prop_map(|(target, route)| Change::AddRoute { target, route }),
        (target(), text()).prop_map(|(target, rule)| Change::RemoveRoute { target, rule }),
        text().prop_map(|host| Change::AddReplica { host }),
        text().prop_map(|host| Change::RemoveReplica { host }),
        database().prop_map(|database| Change::ReplaceAll { database }),
        (text(), proptest::option::of(account()))
            .prop_map(|(user, account)| Change::SetUnixAccount { user, account }),
        (text(), any::<u32>()).prop_map(|(name, gid)| Change::AddUnixGroup { name, gid }),
        text().prop_map(|name| Change::RemoveUnixGroup { name }),
        (text(), text()).prop_map(|(group, user)| Change::AddUnixGroupMember { group, user }),
        (text(), text()).prop_map(|(group, user)| Change::RemoveUnixGroupMember { group, user }),
        (text(), text()).prop_map(|(user, until)| Change::SetLockout { user, until }),
        text().prop_map(|user| Change::ClearLockout { user }),
        (
            (text(), text(), text()),
            proptest::option::of(text()),
            proptest::option::of(text()),
            any::<u8>()
        )
            .prop_map(|((user, hash, set_at), expires, warn_from, history)| {
                Change::SetPassword {
                    user,
                    hash,
                    set_at,
                    expires,
                    warn_from,
                    history,
                }
            }),
        (text(), text()).prop_map(|(user, at)| Change::ExpirePassword { user, at }),
    ]
}

fn account() -> impl Strategy<Value = UnixAccount> {
    (any::<u32>(), any::<u32>(), text(), text(), text()).prop_map(
        |(uid, gid, gecos, home, shell)| UnixAccount {
            uid,
            gid,
            gecos,
            home,
            shell,
        },
    )
}

fn message() -> impl Strategy<Value = ReplMessage> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|ephemeral| ReplMessage::LinkHello(LinkHello { ephemeral })),
        (
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            any::<u64>(),
            vec(any::<u8>(), 64)
        )
            .prop_map(|(master_key, ephemeral, epoch, sig)| {
                let mut signature = [0; 64];
                signature.copy_from_slice(&sig);
                ReplMessage::LinkAuth(LinkAuth {
                    master_key,
                    ephemeral,
                    epoch,
                    signature,
                })
            }),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(applied, epoch, heartbeat_ms)| {
            ReplMessage::Subscribe {
                applied,
                epoch,
                heartbeat_ms,
            }
        }),
        (any::<u64>(), vec((any::<u64>(), change()), 0..4))
            .prop_map(|(head, changes)| ReplMessage::Changes { head, changes }),
        (
            any::<u64>(),
            any::<u32>(),
            any::<bool>(),
            vec(any::<u8>(), 0..64)
        )
            .prop_map(|(seq, index, last, data)| ReplMessage::SnapshotChunk {
                seq,
                index,
                last,
                data,
            }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(applied, epoch)| ReplMessage::Ack { applied, epoch }),
        any::<u64>().prop_map(|seq| ReplMessage::Heartbeat { seq }),
        crate::wire::strategies::text(0, MAX_REASON_LEN)
            .prop_map(|reason| ReplMessage::Refused { reason }),
        (any::<u64>(), 1..u64::MAX / 2, vec(report(), 0..4)).prop_map(
            |(stream, first, records)| ReplMessage::Report {
                stream,
                first,
                records,
            }
        ),
        (any::<u64>(), any::<u64>())
            .prop_map(|(stream, through)| ReplMessage::ReportAck { stream, through }),
        (any::<u64>(), crate::wire::strategies::request()).prop_filter_map(
            "a password change",
            |(id, request)| match request {
                crate::wire::Request::ChangePassword(request) => {
                    Some(ReplMessage::PasswordChange { id, request })
                }
                _ => None,
            }
        ),
        (any::<u64>(), crate::wire::strategies::change_outcome())
            .prop_map(|(id, outcome)| ReplMessage::PasswordChangeResult { id, outcome }),
    ]
}

#[test]
fn worked_example_of_a_forwarded_password_change() {
    use crate::wire::{ChangeOutcome, ChangePasswordRequest};
    vector(
        ReplMessage::PasswordChange {
            id: 7,
            request: ChangePasswordRequest {
                user: "bob".into(),
                old_password: String::new(),
                new_password: "pw".into(),
                host: "web1".into(),
            },
        },
        "20 00 00 00 00 00 00 00 07  00 03 62 6f 62  00 00  00 02 70 77  00 04 77 65 62 31",
    );
    vector(
        ReplMessage::PasswordChangeResult {
            id: 7,
            outcome: ChangeOutcome::Refused { rule: "r".into() },
        },
        "21 00 00 00 00 00 00 00 07  02 00 01 72",
    );
    vector(
        ReplMessage::PasswordChangeResult {
            id: 8,
            outcome: ChangeOutcome::Changed,
        },
        "21 00 00 00 00 00 00 00 08  01",
    );
}

fn report() -> impl Strategy<Value = crate::repl::report::Report> {
    use crate::repl::report::{PasswordFailure, Report};
    use crate::types::AuthFailure;
    let name = || crate::wire::strategies::text(0, 255);
    (
        any::<u64>(),
        name(),
        name(),
        name(),
        proptest::sample::select(AuthFailure::ALL.to_vec()),
    )
        .prop_map(|(at_unix_ms, agent, host, user, reason)| {
            Report::PasswordFailure(PasswordFailure {
                at_unix_ms,
                agent,
                host,
                user,
                reason,
            })
        })
}

proptest! {
    #[test]
    fn every_message_round_trips_canonically(msg in message()) {
        let bytes = msg.encode().unwrap();
        let back = ReplMessage::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &msg);
        prop_assert_eq!(back.encode().unwrap(), bytes);
    }

    #[test]
    fn every_database_round_trips(db in database()) {
        let bytes = database_bytes(&db).unwrap();
        prop_assert_eq!(decode_database(&bytes).unwrap(), db);
    }

    #[test]
    fn every_truncation_and_extension_is_refused(msg in message(), extra in any::<u8>()) {
        let bytes = msg.encode().unwrap();
        for cut in 0..bytes.len() {
            prop_assert!(ReplMessage::decode(&bytes[..cut]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(extra);
        prop_assert!(ReplMessage::decode(&longer).is_err());
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        let _ = ReplMessage::decode(&bytes);
        let _ = decode_database(&bytes);
    }
}

#[test]
fn hostile_reports_are_refused() {
    // stream 7, first 3, one record of bob from web1 (the worked example), then spoiled.
    let good = "10  00 00 00 00 00 00 00 07  00 00 00 00 00 00 00 03  00 00 00 01
         01  00 00 01 a2 08 46 fe 7b
             00 00 00 04 77 65 62 31  00 00 00 04 77 65 62 31  00 00 00 03 62 6f 62  04";
    assert!(ReplMessage::decode(&hex(good)).is_ok());
    let spoiled = |from: &str, to: &str| hex(&good.replacen(from, to, 1));
    let first_zero = spoiled("00 00 00 00 00 00 00 03", "00 00 00 00 00 00 00 00");
    let last_past_u64 = spoiled("00 00 00 00 00 00 00 03", "ff ff ff ff ff ff ff ff");
    let unknown_kind = spoiled("01  00 00 01", "02  00 00 01");
    let unknown_reason = spoiled("62 6f 62  04", "62 6f 62  09");
    let mut long_user = hex(&good[..good.find("00 00 00 03 62 6f 62").unwrap()]);
    long_user.extend_from_slice(&256u32.to_be_bytes());
    long_user.extend_from_slice(&[b'a'; 256]);
    long_user.push(4);
    // 65 records, each a valid one: over the per-message cap (64 are fine).
    let record = &hex(good)[21..];
    let copies = |n: u32| {
        let mut bytes = hex("10  00 00 00 00 00 00 00 07  00 00 00 00 00 00 00 03");
        bytes.extend_from_slice(&n.to_be_bytes());
        (0..n).for_each(|_| bytes.extend_from_slice(record));
        bytes
    };
    assert!(ReplMessage::decode(&copies(64)).is_ok());
    let too_many = copies(65);
    let cases = [
        (first_zero, "a first sequence of 0"),
        (last_past_u64, "a last sequence past u64::MAX"),
        (unknown_kind, "an unknown record kind"),
        (unknown_reason, "an unknown failure reason"),
        (long_user, "a 256-byte user name"),
        (too_many, "65 records"),
    ];
    for (bytes, what) in cases {
        assert!(
            matches!(ReplMessage::decode(&bytes), Err(ReplError::Malformed(_))),
            "{what} was accepted"
        );
    }
}

#[test]
fn audit_records_travel_in_reports() {
    use crate::audit::{AuditEvent, AuditRecord};
    use crate::repl::report::Report;
    let record = AuditRecord {
        at_unix_ms: 7,
        agent: "web1".into(),
        address: Some("10.0.0.7:40112".parse().unwrap()),
        event: AuditEvent::Suppressed { count: 2 },
    };
    let msg = ReplMessage::Report {
        stream: 1,
        first: 1,
        records: vec![Report::Audit(record.clone()), Report::Audit(record)],
    };
    let bytes = msg.encode().unwrap();
    assert_eq!(ReplMessage::decode(&bytes).unwrap(), msg);
}
