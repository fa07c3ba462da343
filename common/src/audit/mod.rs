//! The audit trail's vocabulary: one [`AuditRecord`] per decision a server made (authorize,
//! authenticate, a refused host or cross-host request), per lockout and per admin action, its
//! binary encoding (docs/PROTOCOL.md, "Audit records": the same bytes in a replica's journal,
//! on the replication link and in the master's store), and its text and RFC 5424 forms.
//!
//! Pure: no clock (each record carries the time its server read), no I/O. The journal that
//! makes records durable on a server lives in `gatehouse_replica::audit`; the master's store
//! of every server's records in `gatehouse_master::audit`.
//!
//! - [`record`]: the record, its kinds and encoding;
//! - [`render`]: a record as a `key=value` text line and as JSON;
//! - [`syslog`]: a record as an RFC 5424 syslog message.

pub mod record;
pub mod render;
pub mod syslog;

pub use record::{
    decode_one, decode_record, encode_record, AdminOutcome, Asked, AuditEvent, AuditRecord,
    Verdict, MAX_AUDIT_TEXT_LEN, MAX_RECORD_LEN,
};
