//! A record as an RFC 5424 syslog message, for forwarding the audit trail to a log collector:
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ID PARAM="VALUE" ...] BOM MSG
//! ```
//!
//! - PRI: the configured facility (default 10, authpriv: "security/authorization messages")
//!   × 8 + a severity from the outcome: 6 informational (allow, ok, done), 5 notice (deny,
//!   fail), 4 warning (refusals of hosts, lockouts, refused or failed admin requests).
//! - TIMESTAMP: the record's time in UTC with milliseconds (RFC 3339, as 6.2.3 wants);
//!   HOSTNAME: the server that decided; APP-NAME `gatehouse`; PROCID `-`; MSGID the kind
//!   (`authorize`, `admin`, ...).
//! - STRUCTURED-DATA: one element `audit@PEN` (PEN: the enterprise number in the config;
//!   32473 by default, the number RFC 5612 reserves for documentation: a site with its own
//!   number sets it) with the record's fields ([`super::render::fields`]); in a PARAM-VALUE
//!   `"`, `\` and `]` are escaped with `\` (6.3.3).
//! - MSG: a UTF-8 BOM, then the record as one `key=value` line.
//!
//! Header fields are PRINTUSASCII (33..=126) within their lengths; anything else becomes `_`
//! (a server name is already plain). Pure: the transport is the master's.

use super::record::AuditRecord;
use super::render::{fields, text_line, timestamp, Origin};

/// The facility when the config names none: 10, authpriv.
pub const DEFAULT_FACILITY: u8 = 10;
/// The enterprise number in the SD-ID when the config names none: 32473, reserved by RFC 5612
/// for documentation and examples.
pub const DEFAULT_ENTERPRISE_NUMBER: u32 = 32473;
/// APP-NAME.
pub const APP_NAME: &str = "gatehouse";

/// The parts of a message that come from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyslogFormat {
    /// 0..=23.
    pub facility: u8,
    pub enterprise_number: u32,
}

impl Default for SyslogFormat {
    fn default() -> Self {
        SyslogFormat {
            facility: DEFAULT_FACILITY,
            enterprise_number: DEFAULT_ENTERPRISE_NUMBER,
        }
    }
}

/// Severity (RFC 5424 6.2.1) for a record's outcome.
pub fn severity(outcome: &str) -> u8 {
    match outcome {
        "allow" | "ok" | "done" => 6,
        "deny" | "fail" => 5,
        _ => 4,
    }
}

/// `s` as a header field: PRINTUSASCII only, at most `max` characters, `-` when empty.
fn header_field(s: &str, max: usize) -> String {
    let cleaned: String = s
        .chars()
        .take(max)
        .map(|c| if ('!'..='~').contains(&c) { c } else { '_' })
        .collect();
    if cleaned.is_empty() {
        "-".to_string()
    } else {
        cleaned
    }
}

/// A PARAM-VALUE with `"`, `\` and `]` escaped.
fn param_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The record as one RFC 5424 message (without any transport framing).
pub fn message(record: &AuditRecord, origin: Origin<'_>, format: SyslogFormat) -> String {
    let pri = u16::from(format.facility.min(23)) * 8 + u16::from(severity(record.outcome()));
    let mut sd = format!("[audit@{}", format.enterprise_number);
    for (name, value) in fields(record, Some(origin)) {
        // Field names are lower-case ASCII words: valid PARAM-NAMEs.
        sd.push_str(&format!(" {name}=\"{}\"", param_value(&value)));
    }
    sd.push(']');
    format!(
        "<{pri}>1 {} {} {APP_NAME} - {} {sd} \u{feff}{}",
        timestamp(record.at_unix_ms),
        header_field(origin.server, 255),
        header_field(record.kind_name(), 32),
        text_line(record, Some(origin))
    )
}

#[cfg(test)]
#[path = "syslog_tests.rs"]
mod tests;
