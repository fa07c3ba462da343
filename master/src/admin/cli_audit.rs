//! `gatehouse-admin audit`'s words → an [`AuditQuery`]: times absolute (`YYYY-MM-DD`,
//! `YYYY-MM-DDTHH:MM:SSZ`, UTC) or relative to now (`30s`, `15m`, `2h`, `7d`: that long ago);
//! a limit (default [`DEFAULT_AUDIT_LIMIT`]); `--follow` and `--json`. Pure but for reading
//! the clock for relative times.

use super::{usage, Command, UsageError, Words};
use crate::audit::store::MAX_QUERY_RECORDS;
use crate::audit::AuditQuery;
use gatehouse_common::policy::PolicyTime;
use std::time::{SystemTime, UNIX_EPOCH};

/// Records `audit` shows without `--limit` (the newest 100; following, then every new one).
pub const DEFAULT_AUDIT_LIMIT: usize = 100;

const OPTIONS: &[&str] = &[
    "--since",
    "--until",
    "--user",
    "--host",
    "--outcome",
    "--kind",
    "--server",
    "--limit",
    "--after",
    "--follow",
    "--json",
];

/// The outcomes a record can have (`AuditRecord::outcome`).
const OUTCOMES: &[&str] = &[
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

pub(super) fn command(w: &Words) -> Result<Command, UsageError> {
    w.only(OPTIONS)?;
    w.args(1, &[])?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let time = |name: &str| -> Result<Option<u64>, UsageError> {
        w.one(name)?.map(|text| at_ms(&text, now_ms)).transpose()
    };
    let number = |name: &str| -> Result<Option<u64>, UsageError> {
        w.one(name)?
            .map(|v| {
                v.parse()
                    .map_err(|_| usage(format!("{name} expects a number, got {v:?}")))
            })
            .transpose()
    };
    let outcome = w.one("--outcome")?;
    if let Some(o) = outcome.as_deref().filter(|o| !OUTCOMES.contains(o)) {
        return Err(usage(format!(
            "--outcome {o:?}: one of {}",
            OUTCOMES.join(", ")
        )));
    }
    let limit = number("--limit")?.map_or(DEFAULT_AUDIT_LIMIT, |n| n as usize);
    if limit == 0 || limit > MAX_QUERY_RECORDS {
        return Err(usage(format!("--limit must be 1..={MAX_QUERY_RECORDS}")));
    }
    Ok(Command::Audit {
        query: AuditQuery {
            since_ms: time("--since")?,
            until_ms: time("--until")?,
            user: w.one("--user")?,
            host: w.one("--host")?,
            outcome,
            kind: w.one("--kind")?,
            server: w.one("--server")?,
            after_id: number("--after")?,
            limit,
        },
        follow: w.one("--follow")?.is_some(),
        json: w.one("--json")?.is_some(),
    })
}

/// `text` as milliseconds since the epoch: a UTC date or time, or a span before `now_ms`.
fn at_ms(text: &str, now_ms: u64) -> Result<u64, UsageError> {
    let span = text.char_indices().last().and_then(|(i, unit)| {
        let n: u64 = text.get(..i)?.parse().ok()?;
        let secs = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        Some(n.saturating_mul(secs).saturating_mul(1000))
    });
    if let Some(span) = span {
        return Ok(now_ms.saturating_sub(span));
    }
    let time = PolicyTime::parse_utc(text)
        .map_err(|e| usage(format!("{text:?}: {e}, or a span such as 15m, 2h, 7d")))?;
    u64::try_from(time.unix())
        .map(|s| s.saturating_mul(1000))
        .map_err(|_| usage(format!("{text:?} is before 1970")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_absolute_or_spans_before_now() {
        let now = 1_000_000_000;
        assert_eq!(at_ms("15m", now), Ok(now - 900_000));
        assert_eq!(at_ms("2d", now), Ok(now - 172_800_000));
        assert_eq!(at_ms("2026-11-23", now), Ok(1_795_392_000_000));
        assert_eq!(at_ms("2026-11-23T12:00:00Z", now), Ok(1_795_435_200_000));
        assert!(at_ms("yesterday", now).is_err());
    }

    #[test]
    fn filters_and_flags_become_a_query() {
        let args: Vec<String> = "audit --user alice --host web1 --outcome deny --since 2026-11-23 --follow --json --limit 5"
            .split_whitespace()
            .map(String::from)
            .collect();
        let Command::Audit {
            query,
            follow,
            json,
        } = super::super::parse(&args).unwrap().command
        else {
            panic!("an audit command");
        };
        assert!(follow && json);
        assert_eq!(query.user.as_deref(), Some("alice"));
        assert_eq!(query.host.as_deref(), Some("web1"));
        assert_eq!(query.outcome.as_deref(), Some("deny"));
        assert_eq!(query.since_ms, Some(1_795_392_000_000));
        assert_eq!(query.limit, 5);
        let bad: Vec<String> = ["audit", "--outcome", "maybe"].map(String::from).to_vec();
        assert!(super::super::parse(&bad).is_err());
    }
}
