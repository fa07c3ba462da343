//! Proptest strategies producing every valid wire value, for the round-trip and fuzz tests in
//! `msg` and `probe`. Test-only.

use proptest::collection::vec;
use proptest::prelude::*;

use crate::crypto::suite::CipherSuite;
use crate::identity::{GroupEntry, Lookup, PasswdEntry, MAX_GROUP_MEMBERS, MAX_USER_GROUPS};
use crate::types::{DenyReason, ErrorCode, GoodbyeReason, Method};
use crate::wire::msg::*;
use crate::wire::probe::{LoadReport, Probe, ProbeReply};

/// UTF-8 text of `min_chars..` chars and at most `max_bytes` bytes; mostly ASCII so limits
/// are reached, with arbitrary chars (multi-byte, control) mixed in.
/// Parses hex, ignoring whitespace, so vectors can be copied from the protocol document.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

pub fn text(min_chars: usize, max_bytes: usize) -> impl Strategy<Value = String> {
    let ch = prop_oneof![3 => proptest::char::range(' ', '~'), 1 => any::<char>()];
    vec(ch, min_chars..=max_bytes.max(min_chars)).prop_map(move |chars| {
        let mut s = String::new();
        for c in chars {
            if s.len() + c.len_utf8() > max_bytes {
                break;
            }
            s.push(c);
        }
        s
    })
}

/// A non-empty host name within [`MAX_HOST_LEN`].
pub fn host() -> impl Strategy<Value = String> {
    text(1, MAX_HOST_LEN).prop_filter("non-empty", |h| !h.is_empty())
}

fn pick<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(all)
}

pub fn wire_error() -> impl Strategy<Value = WireError> {
    (
        pick(&ErrorCode::ALL),
        text(0, MAX_MESSAGE_LEN),
        vec(any::<u16>(), 0..=MAX_VERSIONS),
        any::<u64>(),
    )
        .prop_map(|(code, message, versions, estimate_us)| WireError {
            code,
            message,
            versions,
            estimate_us,
        })
}

/// Any cipher suite this build knows (duplicates in an offer are legal).
pub fn cipher() -> impl Strategy<Value = CipherSuite> {
    pick(&CipherSuite::ALL)
}

pub fn handshake() -> impl Strategy<Value = Handshake> {
    prop_oneof![
        (
            vec(any::<u16>(), 1..=MAX_VERSIONS),
            host(),
            any::<[u8; 32]>(),
            vec(cipher(), 1..=MAX_CIPHERS),
        )
            .prop_map(|(versions, host, nonce, ciphers)| {
                Handshake::ClientHello(ClientHello {
                    versions,
                    host,
                    nonce,
                    ciphers,
                })
            }),
        (any::<u16>(), any::<[u8; 32]>(), any::<[u8; 32]>(), cipher()).prop_map(
            |(version, nonce, proof, cipher)| {
                Handshake::ServerHello(ServerHello {
                    version,
                    nonce,
                    proof,
                    cipher,
                })
            }
        ),
        any::<[u8; 32]>().prop_map(|proof| Handshake::ClientFinish(ClientFinish { proof })),
        wire_error().prop_map(Handshake::Error),
    ]
}

pub fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (
            pick(&Method::ALL),
            text(0, MAX_HOST_LEN),
            text(0, MAX_USER_LEN),
            text(0, MAX_USER_LEN),
            text(0, MAX_HOST_LEN),
        )
            .prop_map(|(method, from_host, from_user, to_user, to_host)| {
                Request::Authorize(AuthorizeRequest {
                    method,
                    from_host,
                    from_user,
                    to_user,
                    to_host,
                })
            }),
        (
            text(0, MAX_USER_LEN),
            text(0, MAX_PASSWORD_LEN),
            text(0, MAX_HOST_LEN)
        )
            .prop_map(|(user, password, host)| Request::Authenticate(
                AuthenticateRequest {
                    user,
                    password,
                    host
                }
            )),
        lookup().prop_map(Request::Lookup),
        (
            text(0, MAX_USER_LEN),
            text(0, MAX_PASSWORD_LEN),
            text(0, MAX_PASSWORD_LEN),
            text(0, MAX_HOST_LEN)
        )
            .prop_map(|(user, old_password, new_password, host)| {
                Request::ChangePassword(crate::wire::ChangePasswordRequest {
                    user,
                    old_password,
                    new_password,
                    host,
                })
            }),
    ]
}

/// Any identity lookup (names of any text: a caller may ask for anything).
pub fn lookup() -> impl Strategy<Value = Lookup> {
    prop_oneof![
        text(0, MAX_USER_LEN).prop_map(Lookup::UserByName),
        any::<u32>().prop_map(Lookup::UserByUid),
        text(0, MAX_USER_LEN).prop_map(Lookup::GroupByName),
        any::<u32>().prop_map(Lookup::GroupByGid),
        text(0, MAX_USER_LEN).prop_map(Lookup::GroupsOfUser),
    ]
}

/// A valid Unix name (1..=32 bytes, not all digits).
pub fn unix_name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_.-]{0,31}"
}

/// A valid (non-reserved) id.
pub fn unix_id() -> impl Strategy<Value = u32> {
    (1u32..u32::MAX).prop_filter("not reserved", |id| *id != 65_535)
}

pub fn passwd_entry() -> impl Strategy<Value = PasswdEntry> {
    (
        unix_name(),
        unix_id(),
        unix_id(),
        "[ -9;-~]{0,255}",
        "/[ -9;-~]{0,254}",
        "/[ -9;-~]{0,254}",
    )
        .prop_map(|(name, uid, gid, gecos, home, shell)| PasswdEntry {
            name,
            uid,
            gid,
            gecos,
            home,
            shell,
        })
}

pub fn group_entry() -> impl Strategy<Value = GroupEntry> {
    (
        unix_name(),
        unix_id(),
        vec(unix_name(), 0..=MAX_GROUP_MEMBERS.min(64)),
    )
        .prop_map(|(name, gid, members)| GroupEntry { name, gid, members })
}

pub fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        text(0, MAX_ROUTE_LEN).prop_map(|route| Response::Allow {
            route: route.into()
        }),
        pick(&DenyReason::ALL).prop_map(|reason| Response::Deny { reason }),
        Just(Response::AuthOk),
        Just(Response::AuthFail),
        Just(Response::AuthOkAging(crate::types::PasswordAging::Expired)),
        any::<u16>().prop_map(|days| Response::AuthOkAging(
            crate::types::PasswordAging::ExpiresIn { days }
        )),
        wire_error().prop_map(Response::Error),
        passwd_entry().prop_map(|e| Response::User(e.into())),
        group_entry().prop_map(|e| Response::Group(e.into())),
        vec(unix_id(), 0..=MAX_USER_GROUPS.min(64)).prop_map(|g| Response::Groups(g.into())),
        Just(Response::NotFound),
        change_outcome().prop_map(Response::PasswordChange),
    ]
}

/// Any password-change outcome (texts within their cap).
pub fn change_outcome() -> impl Strategy<Value = crate::wire::ChangeOutcome> {
    use crate::wire::password_change::MAX_OUTCOME_TEXT_LEN;
    use crate::wire::ChangeOutcome;
    prop_oneof![
        Just(ChangeOutcome::Changed),
        text(0, MAX_OUTCOME_TEXT_LEN).prop_map(|rule| ChangeOutcome::Refused { rule }),
        Just(ChangeOutcome::Failed),
        text(0, MAX_OUTCOME_TEXT_LEN).prop_map(|why| ChangeOutcome::Unavailable { why }),
    ]
}

pub fn session() -> impl Strategy<Value = Session> {
    prop_oneof![
        (any::<u32>(), request()).prop_map(|(id, body)| Session::Request { id, body }),
        (any::<u32>(), response()).prop_map(|(id, body)| Session::Response { id, body }),
        pick(&GoodbyeReason::ALL).prop_map(|reason| Session::Goodbye(Goodbye { reason })),
        wire_error().prop_map(Session::Error),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Session::Replication),
    ]
}

pub fn probe() -> impl Strategy<Value = Probe> {
    (host(), any::<u64>(), any::<u64>()).prop_map(|(host, probe_id, sent_unix_ms)| Probe {
        host,
        probe_id,
        sent_unix_ms,
    })
}

pub fn probe_reply() -> impl Strategy<Value = ProbeReply> {
    let u64s = any::<[u64; 6]>();
    let u32s = any::<[u32; 5]>();
    (any::<u64>(), u64s, u32s).prop_map(|(probe_id, [a, b, c, d, e, f], [q, s, w, n, m])| {
        ProbeReply {
            probe_id,
            load: LoadReport {
                recommended_wait_us: a,
                seed_wait_us: b,
                queue_len: q,
                in_service: s,
                workers: w,
                mean_queue_us: c,
                mean_service_us: d,
                connections: n,
                max_connections: m,
                db_sequence: e,
                db_age_ms: f,
            },
        }
    })
}
