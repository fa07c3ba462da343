//! What a replica reports to its master over the replication link (docs/PROTOCOL.md,
//! "Reports"), and its binary encoding. Two families of records: a failed password check for
//! a known user, which the master's central lockout counts (kind 0x01, from an in-memory
//! outbox), and the audit trail's records (kinds 0x10 and up, `crate::audit`, from the
//! replica's durable journal). A record is a kind byte and its fields; one `Report` carries
//! records of one family (its stream's).
//! Sequencing, resending and deduplication live in `report_stream`.
//!
//! Pure; decoding never panics and refuses unknown kinds and codes, over-long names and
//! trailing bytes (the message's reader checks those).

use super::codec::{put_text, read_text};
use crate::audit::record::kind as audit_kind;
use crate::audit::{decode_record, encode_record, AuditRecord};
use crate::types::AuthFailure;
use crate::wire::msg::{MAX_HOST_LEN, MAX_USER_LEN};
use crate::wire::reader::{DecodeError, Reader};
use crate::wire::writer::EncodeError;

/// Records per `Report` message: 64. The largest record is 787 bytes (three 255-byte names
/// with their 4-byte lengths, the time, the kind and the reason), so 64 of them and the
/// message's 21-byte header stay under the 65515-byte message cap; a few dozen per message
/// is plenty of batching at the rate failures happen.
pub const MAX_REPORT_RECORDS: usize = 64;

/// The smallest encoded record, bytes (an audit `host_refused` with an empty name and no
/// address): how many records a `count` may announce is checked against the bytes that
/// remain.
pub(crate) const MIN_RECORD_LEN: usize = 1 + 8 + 4 + 1 + 2;

/// Record kinds (the first byte of every record).
pub mod kind {
    pub const PASSWORD_FAILURE: u8 = 0x01;
}

/// One record a replica reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    PasswordFailure(PasswordFailure),
    /// An audit record from a server's journal.
    Audit(AuditRecord),
}

/// A password check that failed for a user the database knows, on the server that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordFailure {
    /// When the server checked it: milliseconds since the unix epoch, by the server's clock.
    pub at_unix_ms: u64,
    /// The agent's host, proven by its node key: where the guess came from.
    pub agent: String,
    /// The host the request named (the same as `agent` unless that is a jump host).
    pub host: String,
    pub user: String,
    /// Why it failed (never `UnknownUser`: unknown names are not reported).
    pub reason: AuthFailure,
}

impl Report {
    /// The record's kind, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Report::PasswordFailure(_) => "PasswordFailure",
            Report::Audit(_) => "Audit",
        }
    }

    /// Whether this is an audit record (a journal's stream) rather than a lockout report.
    pub fn is_audit(&self) -> bool {
        matches!(self, Report::Audit(_))
    }
}

/// A name within the wire's limit for it.
fn put_name(
    out: &mut Vec<u8>,
    field: &'static str,
    max: usize,
    s: &str,
) -> Result<(), EncodeError> {
    if s.len() > max {
        return Err(EncodeError::TooLong {
            field,
            len: s.len(),
            max,
        });
    }
    put_text(out, field, s)
}

fn read_name(r: &mut Reader<'_>, field: &'static str, max: usize) -> Result<String, DecodeError> {
    let text = read_text(r, field)?;
    if text.len() > max {
        return Err(DecodeError::Invalid {
            field,
            why: "longer than the wire allows for a name",
        });
    }
    Ok(text)
}

/// Appends the encoding of one record.
pub(crate) fn put_report(out: &mut Vec<u8>, report: &Report) -> Result<(), EncodeError> {
    match report {
        Report::PasswordFailure(PasswordFailure {
            at_unix_ms,
            agent,
            host,
            user,
            reason,
        }) => {
            out.push(kind::PASSWORD_FAILURE);
            out.extend_from_slice(&at_unix_ms.to_be_bytes());
            put_name(out, "agent", MAX_HOST_LEN, agent)?;
            put_name(out, "host", MAX_HOST_LEN, host)?;
            put_name(out, "user", MAX_USER_LEN, user)?;
            out.push(reason.code());
        }
        Report::Audit(record) => encode_record(out, record),
    }
    Ok(())
}

/// Reads one record.
pub(crate) fn read_report(r: &mut Reader<'_>) -> Result<Report, DecodeError> {
    if r.peek_u8().is_some_and(audit_kind::is_audit) {
        return decode_record(r).map(Report::Audit);
    }
    match r.u8()? {
        kind::PASSWORD_FAILURE => {
            let at_unix_ms = r.u64()?;
            let agent = read_name(r, "agent", MAX_HOST_LEN)?;
            let host = read_name(r, "host", MAX_HOST_LEN)?;
            let user = read_name(r, "user", MAX_USER_LEN)?;
            let code = r.u8()?;
            let reason = AuthFailure::from_code(code).ok_or(DecodeError::UnknownCode {
                field: "failure reason",
                code: code.into(),
            })?;
            Ok(Report::PasswordFailure(PasswordFailure {
                at_unix_ms,
                agent,
                host,
                user,
                reason,
            }))
        }
        code => Err(DecodeError::UnknownCode {
            field: "report kind",
            code: code.into(),
        }),
    }
}
