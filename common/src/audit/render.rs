//! A record as people and pipelines read it: named fields ([`fields`]), written as one
//! `key=value` line ([`text_line`], the same logfmt as the servers' log lines) or one JSON
//! object ([`json_line`]). `gatehouse-admin audit` prints these; the syslog form uses the same
//! fields as its structured data. Pure.

use super::record::{AuditEvent, AuditRecord, Verdict};
use crate::policy::PolicyTime;
use crate::service::kv;
use serde_json::{Map, Value};

/// Where a stored record came from and its place in the store, shown with it.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The store's id of the record (what `audit --follow` resumes after).
    pub id: u64,
    /// The server that decided (a replica's host name, or the master's).
    pub server: &'a str,
    /// The record's sequence in that server's journal.
    pub seq: u64,
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC): an RFC 3339 time, as RFC 5424 wants it.
pub fn timestamp(at_unix_ms: u64) -> String {
    let secs = i64::try_from(at_unix_ms / 1000).unwrap_or(i64::MAX);
    let whole = PolicyTime::from_unix(secs).to_string();
    let whole = whole.strip_suffix('Z').unwrap_or(&whole);
    format!("{whole}.{:03}Z", at_unix_ms % 1000)
}

/// The record's fields in display order: time, kind, outcome, then who and where, then what
/// the kind adds. Empty values are left out.
pub fn fields(record: &AuditRecord, origin: Option<Origin<'_>>) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::with_capacity(16);
    out.push(("at", timestamp(record.at_unix_ms)));
    if let Some(o) = origin {
        out.push(("id", o.id.to_string()));
        out.push(("server", o.server.to_string()));
        out.push(("seq", o.seq.to_string()));
    }
    out.push(("kind", record.kind_name().to_string()));
    out.push(("outcome", record.outcome().to_string()));
    out.push(("agent", record.agent.clone()));
    if let Some(address) = record.address {
        out.push(("address", address.to_string()));
    }
    let mut push = |key: &'static str, value: &str| out.push((key, value.to_string()));
    match &record.event {
        AuditEvent::Authorize {
            method,
            from_user,
            from_host,
            to_user,
            to_host,
            verdict,
        } => {
            push("method", method.name());
            push("from_user", from_user);
            push("from_host", from_host);
            push("to_user", to_user);
            push("to_host", to_host);
            match verdict {
                Verdict::Allow { route } => push("route", route),
                Verdict::Deny { reason } => push("reason", reason.name()),
            }
        }
        AuditEvent::Authenticate {
            user,
            host,
            outcome,
        } => {
            push("user", user);
            push("host", host);
            if let Err(reason) = outcome {
                push("reason", reason.name());
            }
        }
        AuditEvent::ForeignHost { host, asked } => {
            push("host", host);
            push("asked", asked.name());
        }
        AuditEvent::HostRefused { code } => push("code", &format!("{code:?}")),
        AuditEvent::Suppressed { count } => push("count", &count.to_string()),
        AuditEvent::Lockout {
            user,
            until,
            failures,
        } => {
            push("user", user);
            push("until", until);
            push("failures", &failures.to_string());
        }
        AuditEvent::Admin {
            uid,
            caller,
            command,
            detail,
            ..
        } => {
            push("uid", &uid.to_string());
            push("caller", caller);
            push("command", command);
            push("detail", detail);
        }
    }
    out.retain(|(_, v)| !v.is_empty());
    out
}

/// One `key=value` line (logfmt; values quoted when not plain).
pub fn text_line(record: &AuditRecord, origin: Option<Origin<'_>>) -> String {
    fields(record, origin)
        .iter()
        .map(|(k, v)| format!("{k}={}", kv::value(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One JSON object on one line; numbers (`id`, `seq`, `uid`, `count`, `failures`) as numbers.
pub fn json_line(record: &AuditRecord, origin: Option<Origin<'_>>) -> String {
    let mut map = Map::new();
    for (key, value) in fields(record, origin) {
        let number = matches!(key, "id" | "seq" | "uid" | "count" | "failures");
        let json = match value.parse::<u64>() {
            Ok(n) if number => Value::from(n),
            _ => Value::String(value),
        };
        map.insert(key.to_string(), json);
    }
    Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AuthFailure, Method};

    fn authenticate_failure() -> AuditRecord {
        AuditRecord {
            at_unix_ms: 1_795_435_200_123,
            agent: "web1".into(),
            address: Some("10.0.0.7:40112".parse().unwrap()),
            event: AuditEvent::Authenticate {
                user: "bob".into(),
                host: "web1".into(),
                outcome: Err(AuthFailure::BadPassword),
            },
        }
    }

    #[test]
    fn a_record_is_one_logfmt_line_and_one_json_object() {
        let record = authenticate_failure();
        let origin = Origin {
            id: 12,
            server: "r1",
            seq: 3,
        };
        assert_eq!(
            text_line(&record, Some(origin)),
            "at=2026-11-23T12:00:00.123Z id=12 server=r1 seq=3 kind=authenticate outcome=fail \
             agent=web1 address=10.0.0.7:40112 user=bob host=web1 reason=bad_password"
        );
        let json: Value = serde_json::from_str(&json_line(&record, Some(origin))).unwrap();
        assert_eq!(json["id"], 12);
        assert_eq!(json["server"], "r1");
        assert_eq!(json["reason"], "bad_password");
        assert_eq!(json["at"], "2026-11-23T12:00:00.123Z");
    }

    #[test]
    fn an_allow_shows_its_route_and_quotes_what_is_not_plain() {
        let record = AuditRecord {
            at_unix_ms: 5,
            agent: "web1".into(),
            address: None,
            event: AuditEvent::Authorize {
                method: Method::Ssh,
                from_user: "alice".into(),
                from_host: "10.0.0.9".into(),
                to_user: "alice".into(),
                to_host: "web1".into(),
                verdict: Verdict::Allow {
                    route: "SSH:*->alice@web* [class ops]".into(),
                },
            },
        };
        let line = text_line(&record, None);
        assert!(line.starts_with("at=1970-01-01T00:00:00.005Z kind=authorize outcome=allow"));
        assert!(
            line.ends_with("route=\"SSH:*->alice@web* [class ops]\""),
            "{line}"
        );
    }
}
