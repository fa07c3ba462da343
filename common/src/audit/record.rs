//! One audit record and its binary encoding (docs/PROTOCOL.md, "Audit records").
//!
//! A record is generic over its strings: a server encodes one that borrows from the request
//! it just answered (`AuditRecord<&str>`, no allocation), the master decodes owned ones
//! (`AuditRecord<String>`). Encoding never fails: every text is cut (on a character boundary)
//! to its field's cap, which the wire's own limits already keep requests under. Decoding never
//! panics and refuses unknown kinds and codes, over-long texts and trailing bytes.
//!
//! Pure.

use crate::types::{AuthFailure, DenyReason, ErrorCode, Method};
use crate::wire::msg::{MAX_HOST_LEN, MAX_ROUTE_LEN, MAX_USER_LEN};
use crate::wire::reader::{DecodeError, Reader};
use crate::wire::writer::truncate_utf8;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Longest free text in a record (an admin command, its detail, a route), bytes: 1024. A
/// command names a few objects; an import's file name or a refusal's reason fits with room.
pub const MAX_AUDIT_TEXT_LEN: usize = 1024;

/// Longest encoded record, bytes: an authorize with every name at its cap and the longest
/// route (1 + 8 + 259 + 19 + 1 + 4 × 259 + 1 + 1028 = 2353). The journal refuses an entry
/// longer than this as corrupt.
pub const MAX_RECORD_LEN: usize = 1 + 8 + 259 + 19 + 1 + 4 * 259 + 1 + (4 + MAX_ROUTE_LEN);

/// Record kinds (the first byte). 0x01 is the lockout's password-failure report
/// (`repl::report`); audit records use 0x10 and up.
pub mod kind {
    pub const AUTHORIZE: u8 = 0x10;
    pub const AUTHENTICATE: u8 = 0x11;
    pub const FOREIGN_HOST: u8 = 0x12;
    pub const HOST_REFUSED: u8 = 0x13;
    pub const SUPPRESSED: u8 = 0x14;
    pub const LOCKOUT: u8 = 0x15;
    pub const ADMIN: u8 = 0x16;

    /// Whether `kind` is an audit record's.
    pub fn is_audit(kind: u8) -> bool {
        (AUTHORIZE..=ADMIN).contains(&kind)
    }
}

/// One audited event with the time, the agent and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord<S = String> {
    /// When the server decided, by its clock: milliseconds since 1970-01-01 UTC.
    pub at_unix_ms: u64,
    /// The agent's host as its node key proved it; for a refused handshake the host it
    /// claimed; empty for an admin action or a lockout.
    pub agent: S,
    /// The peer's address; `None` for an admin action or a lockout.
    pub address: Option<SocketAddr>,
    pub event: AuditEvent<S>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditEvent<S = String> {
    /// An authorize request and its answer.
    Authorize {
        method: Method,
        from_user: S,
        from_host: S,
        to_user: S,
        to_host: S,
        verdict: Verdict<S>,
    },
    /// A password check and its detailed outcome (the agent was told only ok or fail).
    Authenticate {
        user: S,
        host: S,
        outcome: Result<(), AuthFailure>,
    },
    /// The agent asked about `host`, another host, which it may not do; refused.
    ForeignHost { host: S, asked: Asked },
    /// A connection's handshake was refused (unknown host, a failed key proof): `agent` is
    /// the host it claimed.
    HostRefused { code: ErrorCode },
    /// Refusals of unproven peers beyond the server's record budget, not recorded one by one.
    Suppressed { count: u64 },
    /// The master's central lockout locked `user` out until `until` after `failures` wrong
    /// passwords.
    Lockout { user: S, until: S, failures: u32 },
    /// An admin request, recorded after its outcome: the caller's uid (from the admin
    /// socket's peer credentials) and user name, the command without secrets, the outcome,
    /// and its detail (the change's sequence, or the refusal's message).
    Admin {
        uid: u32,
        caller: S,
        command: S,
        outcome: AdminOutcome,
        detail: S,
    },
}

/// An authorize's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<S = String> {
    Allow { route: S },
    Deny { reason: DenyReason },
}

/// Which kind of request was refused for naming another host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Asked {
    Authorize,
    Authenticate,
}

impl Asked {
    pub fn name(self) -> &'static str {
        match self {
            Asked::Authorize => "authorize",
            Asked::Authenticate => "authenticate",
        }
    }

    fn code(self) -> u8 {
        match self {
            Asked::Authorize => 1,
            Asked::Authenticate => 2,
        }
    }
}

/// How an admin request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminOutcome {
    /// Answered; a change is committed (durable) or a query answered.
    Done,
    /// Refused as invalid; nothing changed.
    Refused,
    /// The master failed (disk, database); nothing changed.
    Failed,
    /// The caller's uid may not use the admin socket.
    Denied,
}

impl AdminOutcome {
    pub const ALL: [AdminOutcome; 4] = [
        AdminOutcome::Done,
        AdminOutcome::Refused,
        AdminOutcome::Failed,
        AdminOutcome::Denied,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AdminOutcome::Done => "done",
            AdminOutcome::Refused => "refused",
            AdminOutcome::Failed => "failed",
            AdminOutcome::Denied => "denied",
        }
    }

    fn code(self) -> u8 {
        match self {
            AdminOutcome::Done => 1,
            AdminOutcome::Refused => 2,
            AdminOutcome::Failed => 3,
            AdminOutcome::Denied => 4,
        }
    }
}

/// Every name [`AuditRecord::kind_name`] gives, for filters (`gatehouse-admin audit --kind`).
pub const KIND_NAMES: [&str; 7] = [
    "authorize",
    "authenticate",
    "foreign_host",
    "host_refused",
    "suppressed",
    "lockout",
    "admin",
];

/// Every name [`AuditRecord::outcome`] gives, for filters (`gatehouse-admin audit --outcome`).
pub const OUTCOME_NAMES: [&str; 9] = [
    "allow",
    "deny",
    "ok",
    "fail",
    "refused",
    "locked_out",
    "done",
    "denied",
    "failed",
];

impl<S: AsRef<str>> AuditRecord<S> {
    /// The kind's name: `authorize`, `authenticate`, `foreign_host`, `host_refused`,
    /// `suppressed`, `lockout`, `admin`.
    pub fn kind_name(&self) -> &'static str {
        match &self.event {
            AuditEvent::Authorize { .. } => "authorize",
            AuditEvent::Authenticate { .. } => "authenticate",
            AuditEvent::ForeignHost { .. } => "foreign_host",
            AuditEvent::HostRefused { .. } => "host_refused",
            AuditEvent::Suppressed { .. } => "suppressed",
            AuditEvent::Lockout { .. } => "lockout",
            AuditEvent::Admin { .. } => "admin",
        }
    }

    /// The user the record is about (the acting user for an authorize, the admin's user
    /// name for an admin action), or "".
    pub fn user(&self) -> &str {
        match &self.event {
            AuditEvent::Authorize {
                method,
                from_user,
                to_user,
                ..
            } => match method {
                Method::Login | Method::Ssh => to_user.as_ref(),
                Method::Su | Method::Sudo => from_user.as_ref(),
            },
            AuditEvent::Authenticate { user, .. } | AuditEvent::Lockout { user, .. } => {
                user.as_ref()
            }
            AuditEvent::Admin { caller, .. } => caller.as_ref(),
            _ => "",
        }
    }

    /// The host the record is about: the one a request named (else the agent's).
    pub fn host(&self) -> &str {
        match &self.event {
            AuditEvent::Authorize { to_host, .. } => to_host.as_ref(),
            AuditEvent::Authenticate { host, .. } | AuditEvent::ForeignHost { host, .. } => {
                host.as_ref()
            }
            _ => self.agent.as_ref(),
        }
    }

    /// `allow`, `deny`, `ok`, `fail`, `refused`, or an admin outcome's name.
    pub fn outcome(&self) -> &'static str {
        match &self.event {
            AuditEvent::Authorize { verdict, .. } => match verdict {
                Verdict::Allow { .. } => "allow",
                Verdict::Deny { .. } => "deny",
            },
            AuditEvent::Authenticate { outcome, .. } => match outcome {
                Ok(()) => "ok",
                Err(_) => "fail",
            },
            AuditEvent::ForeignHost { .. }
            | AuditEvent::HostRefused { .. }
            | AuditEvent::Suppressed { .. } => "refused",
            AuditEvent::Lockout { .. } => "locked_out",
            AuditEvent::Admin { outcome, .. } => outcome.name(),
        }
    }
}

/// `s` as `len:u32` and its bytes, cut to `max` bytes on a character boundary.
fn put_capped(out: &mut Vec<u8>, max: usize, s: &str) {
    let s = truncate_utf8(s, max);
    // `max` is at most MAX_AUDIT_TEXT_LEN, so the length fits a u32.
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_address(out: &mut Vec<u8>, address: Option<SocketAddr>) {
    match address {
        None => out.push(0),
        Some(SocketAddr::V4(a)) => {
            out.push(4);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        Some(SocketAddr::V6(a)) => {
            out.push(6);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
    }
}

/// Appends the encoding of `record` to `out`. Allocates only if `out` must grow.
pub fn encode_record<S: AsRef<str>>(out: &mut Vec<u8>, record: &AuditRecord<S>) {
    let AuditRecord {
        at_unix_ms,
        agent,
        address,
        event,
    } = record;
    let head = |out: &mut Vec<u8>, kind: u8| {
        out.push(kind);
        out.extend_from_slice(&at_unix_ms.to_be_bytes());
        put_capped(out, MAX_HOST_LEN, agent.as_ref());
        put_address(out, *address);
    };
    match event {
        AuditEvent::Authorize {
            method,
            from_user,
            from_host,
            to_user,
            to_host,
            verdict,
        } => {
            head(out, kind::AUTHORIZE);
            out.push(method.code());
            put_capped(out, MAX_USER_LEN, from_user.as_ref());
            put_capped(out, MAX_HOST_LEN, from_host.as_ref());
            put_capped(out, MAX_USER_LEN, to_user.as_ref());
            put_capped(out, MAX_HOST_LEN, to_host.as_ref());
            match verdict {
                Verdict::Allow { route } => {
                    out.push(1);
                    put_capped(out, MAX_ROUTE_LEN, route.as_ref());
                }
                Verdict::Deny { reason } => {
                    out.push(2);
                    out.push(reason.code());
                }
            }
        }
        AuditEvent::Authenticate {
            user,
            host,
            outcome,
        } => {
            head(out, kind::AUTHENTICATE);
            put_capped(out, MAX_USER_LEN, user.as_ref());
            put_capped(out, MAX_HOST_LEN, host.as_ref());
            out.push(match outcome {
                Ok(()) => 0,
                Err(reason) => reason.code(),
            });
        }
        AuditEvent::ForeignHost { host, asked } => {
            head(out, kind::FOREIGN_HOST);
            put_capped(out, MAX_HOST_LEN, host.as_ref());
            out.push(asked.code());
        }
        AuditEvent::HostRefused { code } => {
            head(out, kind::HOST_REFUSED);
            out.extend_from_slice(&code.code().to_be_bytes());
        }
        AuditEvent::Suppressed { count } => {
            head(out, kind::SUPPRESSED);
            out.extend_from_slice(&count.to_be_bytes());
        }
        AuditEvent::Lockout {
            user,
            until,
            failures,
        } => {
            head(out, kind::LOCKOUT);
            put_capped(out, MAX_USER_LEN, user.as_ref());
            put_capped(out, MAX_AUDIT_TEXT_LEN, until.as_ref());
            out.extend_from_slice(&failures.to_be_bytes());
        }
        AuditEvent::Admin {
            uid,
            caller,
            command,
            outcome,
            detail,
        } => {
            head(out, kind::ADMIN);
            out.extend_from_slice(&uid.to_be_bytes());
            put_capped(out, MAX_USER_LEN, caller.as_ref());
            put_capped(out, MAX_AUDIT_TEXT_LEN, command.as_ref());
            out.push(outcome.code());
            put_capped(out, MAX_AUDIT_TEXT_LEN, detail.as_ref());
        }
    }
}

fn text(r: &mut Reader<'_>, field: &'static str, max: usize) -> Result<String, DecodeError> {
    let len = r.u32()? as usize;
    if len > max {
        return Err(DecodeError::Invalid {
            field,
            why: "longer than an audit record allows",
        });
    }
    let raw = r.bytes(len)?;
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| DecodeError::Invalid {
            field,
            why: "not valid UTF-8",
        })
}

fn address(r: &mut Reader<'_>) -> Result<Option<SocketAddr>, DecodeError> {
    Ok(match r.u8()? {
        0 => None,
        4 => {
            let ip: [u8; 4] = r.array()?;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), r.u16()?))
        }
        6 => {
            let ip: [u8; 16] = r.array()?;
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), r.u16()?))
        }
        code => {
            return Err(DecodeError::UnknownCode {
                field: "address family",
                code: code.into(),
            })
        }
    })
}

fn unknown(field: &'static str, code: impl Into<u16>) -> DecodeError {
    DecodeError::UnknownCode {
        field,
        code: code.into(),
    }
}

/// Reads one record (its kind byte first). The caller checks for trailing bytes.
pub fn decode_record(r: &mut Reader<'_>) -> Result<AuditRecord, DecodeError> {
    let kind = r.u8()?;
    if !kind::is_audit(kind) {
        return Err(unknown("audit record kind", kind));
    }
    let at_unix_ms = r.u64()?;
    let agent = text(r, "agent", MAX_HOST_LEN)?;
    let address = address(r)?;
    let event = match kind {
        kind::AUTHORIZE => {
            let code = r.u8()?;
            let method = Method::from_code(code).ok_or(unknown("method", code))?;
            let from_user = text(r, "from_user", MAX_USER_LEN)?;
            let from_host = text(r, "from_host", MAX_HOST_LEN)?;
            let to_user = text(r, "to_user", MAX_USER_LEN)?;
            let to_host = text(r, "to_host", MAX_HOST_LEN)?;
            let verdict = match r.u8()? {
                1 => Verdict::Allow {
                    route: text(r, "route", MAX_ROUTE_LEN)?,
                },
                2 => {
                    let code = r.u8()?;
                    Verdict::Deny {
                        reason: DenyReason::from_code(code).ok_or(unknown("deny reason", code))?,
                    }
                }
                code => return Err(unknown("verdict", code)),
            };
            AuditEvent::Authorize {
                method,
                from_user,
                from_host,
                to_user,
                to_host,
                verdict,
            }
        }
        kind::AUTHENTICATE => {
            let user = text(r, "user", MAX_USER_LEN)?;
            let host = text(r, "host", MAX_HOST_LEN)?;
            let outcome = match r.u8()? {
                0 => Ok(()),
                code => Err(AuthFailure::from_code(code).ok_or(unknown("failure", code))?),
            };
            AuditEvent::Authenticate {
                user,
                host,
                outcome,
            }
        }
        kind::FOREIGN_HOST => {
            let host = text(r, "host", MAX_HOST_LEN)?;
            let asked = match r.u8()? {
                1 => Asked::Authorize,
                2 => Asked::Authenticate,
                code => return Err(unknown("asked", code)),
            };
            AuditEvent::ForeignHost { host, asked }
        }
        kind::HOST_REFUSED => {
            let code = r.u16()?;
            AuditEvent::HostRefused {
                code: ErrorCode::from_code(code).ok_or(unknown("error code", code))?,
            }
        }
        kind::SUPPRESSED => AuditEvent::Suppressed { count: r.u64()? },
        kind::LOCKOUT => AuditEvent::Lockout {
            user: text(r, "user", MAX_USER_LEN)?,
            until: text(r, "until", MAX_AUDIT_TEXT_LEN)?,
            failures: r.u32()?,
        },
        _ => {
            let uid = r.u32()?;
            let caller = text(r, "caller", MAX_USER_LEN)?;
            let command = text(r, "command", MAX_AUDIT_TEXT_LEN)?;
            let code = r.u8()?;
            let outcome = AdminOutcome::ALL
                .into_iter()
                .find(|o| o.code() == code)
                .ok_or(unknown("admin outcome", code))?;
            let detail = text(r, "detail", MAX_AUDIT_TEXT_LEN)?;
            AuditEvent::Admin {
                uid,
                caller,
                command,
                outcome,
                detail,
            }
        }
    };
    Ok(AuditRecord {
        at_unix_ms,
        agent,
        address,
        event,
    })
}

/// Decodes `bytes` as exactly one record.
pub fn decode_one(bytes: &[u8]) -> Result<AuditRecord, DecodeError> {
    let mut r = Reader::new(bytes);
    let record = decode_record(&mut r)?;
    r.finish()?;
    Ok(record)
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
