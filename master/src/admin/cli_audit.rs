//! `gatehouse-admin audit`: clap's definition of its filters and the [`AuditQuery`] they
//! become. Times are absolute (`YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SSZ`, UTC) or relative to now
//! (`30s`, `15m`, `2h`, `7d`: that long ago); the limit defaults to [`DEFAULT_AUDIT_LIMIT`];
//! `--follow` keeps printing; the global `--json` prints JSON lines. Pure: the caller passes
//! the time relative spans count back from. Part of [`super`].

use super::Command;
use crate::audit::store::MAX_QUERY_RECORDS;
use crate::audit::AuditQuery;
use clap::Args;
use gatehouse_common::audit::record::{KIND_NAMES, OUTCOME_NAMES};
use gatehouse_common::policy::PolicyTime;

/// Records `audit` shows without `--limit` (the newest 100; following, then every new one).
pub const DEFAULT_AUDIT_LIMIT: usize = 100;

/// `audit [--since T] [--until T] [--user U] [--host H] [--outcome O] [--kind K]
/// [--server S] [--limit N] [--after ID] [--follow]`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Records from this time on: YYYY-MM-DD[THH:MM:SSZ] (UTC), or a span ago (30s, 15m, 2h, 7d).
    #[arg(long, value_name = "T", value_parser = parse_when)]
    pub since: Option<When>,
    /// Records before this time (same forms as --since).
    #[arg(long, value_name = "T", value_parser = parse_when)]
    pub until: Option<When>,
    /// Records about this user (the acting user, or the admin who made a change).
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    /// Records about this host, or asked by this host's agent.
    #[arg(long, value_name = "H")]
    pub host: Option<String>,
    /// Records with this outcome.
    #[arg(long, value_name = "O", value_parser = OUTCOME_NAMES)]
    pub outcome: Option<String>,
    /// Records of this kind.
    #[arg(long, value_name = "K", value_parser = KIND_NAMES)]
    pub kind: Option<String>,
    /// Records this server (a replica's name, or `master`) decided.
    #[arg(long, value_name = "S")]
    pub server: Option<String>,
    /// Show at most the newest N records.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_AUDIT_LIMIT,
        value_parser = parse_limit
    )]
    pub limit: usize,
    /// Only records stored after the one with this id.
    #[arg(long, value_name = "ID")]
    pub after: Option<u64>,
    /// Then print each new record as it is stored, until interrupted.
    #[arg(long)]
    pub follow: bool,
}

/// A time given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Milliseconds since the epoch.
    At(u64),
    /// This many milliseconds before now.
    Ago(u64),
}

impl When {
    /// Milliseconds since the epoch, counting a span back from `now_ms`.
    pub fn at_ms(self, now_ms: u64) -> u64 {
        match self {
            When::At(ms) => ms,
            When::Ago(span) => now_ms.saturating_sub(span),
        }
    }
}

impl AuditArgs {
    /// The command, with spans counted back from `now_ms`.
    pub(super) fn into_command(self, now_ms: u64) -> Command {
        Command::Audit {
            query: AuditQuery {
                since_ms: self.since.map(|w| w.at_ms(now_ms)),
                until_ms: self.until.map(|w| w.at_ms(now_ms)),
                user: self.user,
                host: self.host,
                outcome: self.outcome,
                kind: self.kind,
                server: self.server,
                after_id: self.after,
                limit: self.limit,
            },
            follow: self.follow,
        }
    }
}

/// `text` as a UTC date or time, or a span (`15m`) before now.
fn parse_when(text: &str) -> Result<When, String> {
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
        return Ok(When::Ago(span));
    }
    let time =
        PolicyTime::parse_utc(text).map_err(|e| format!("{e}, or a span such as 15m, 2h, 7d"))?;
    u64::try_from(time.unix())
        .map(|s| When::At(s.saturating_mul(1000)))
        .map_err(|_| "before 1970".to_string())
}

fn parse_limit(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_QUERY_RECORDS).contains(&n) => Ok(n),
        _ => Err(format!("a number from 1 to {MAX_QUERY_RECORDS}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_absolute_or_spans_before_now() {
        let now = 1_000_000_000;
        let at = |text: &str| parse_when(text).map(|w| w.at_ms(now));
        assert_eq!(at("15m"), Ok(now - 900_000));
        assert_eq!(at("2d"), Ok(now - 172_800_000));
        assert_eq!(at("2026-11-23"), Ok(1_795_392_000_000));
        assert_eq!(at("2026-11-23T12:00:00Z"), Ok(1_795_435_200_000));
        assert!(at("yesterday").is_err());
    }

    #[test]
    fn filters_and_flags_become_a_query() {
        let line = "audit --user alice --host web1 --outcome deny --kind authorize \
                    --server r1 --since 2026-11-23 --until 1h --after 7 --follow --json --limit 5";
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        let invocation = super::super::parse(&args).unwrap();
        assert!(invocation.json);
        let Command::Audit { query, follow } = invocation.command else {
            panic!("an audit command");
        };
        assert!(follow);
        assert_eq!(query.user.as_deref(), Some("alice"));
        assert_eq!(query.host.as_deref(), Some("web1"));
        assert_eq!(query.outcome.as_deref(), Some("deny"));
        assert_eq!(query.kind.as_deref(), Some("authorize"));
        assert_eq!(query.server.as_deref(), Some("r1"));
        assert_eq!(query.since_ms, Some(1_795_392_000_000));
        assert!(query.until_ms.is_some_and(|ms| ms > 1_795_392_000_000));
        assert_eq!(query.after_id, Some(7));
        assert_eq!(query.limit, 5);
    }

    #[test]
    fn defaults_and_refusals() {
        let parse = |line: &str| {
            let args: Vec<String> = line.split_whitespace().map(String::from).collect();
            super::super::parse(&args)
        };
        let Command::Audit { query, follow } = parse("audit").unwrap().command else {
            panic!("an audit command");
        };
        assert!(!follow);
        assert_eq!(query.limit, DEFAULT_AUDIT_LIMIT);
        assert_eq!(
            (query.since_ms, query.after_id, query.kind),
            (None, None, None)
        );
        for bad in [
            "audit --outcome maybe",
            "audit --kind login",
            "audit --limit 0",
            "audit --limit 10001",
            "audit --since yesterday",
            "audit extra",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}: {e}");
        }
    }
}
