//! The CLI's human output: one line per answer, and the status table. Pure.

use super::{EXIT_ERROR, EXIT_NO, EXIT_OK};
use crate::local::{LocalRequest, LocalResponse, StatusReport};
use gatehouse_local::PasswordAging;
use std::fmt::Write;

/// What the CLI prints and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub code: u8,
}

/// The result line and exit code for `response` to `request`.
pub fn render(request: &LocalRequest, response: &LocalResponse) -> Rendered {
    let (text, code) = match (request, response) {
        (LocalRequest::Authorize { .. }, LocalResponse::Allow { route, server }) => {
            (format!("allow (route {route:?}) from {server}"), EXIT_OK)
        }
        (LocalRequest::Authorize { .. }, LocalResponse::Deny { reason, server }) => {
            (format!("deny ({}) from {server}", reason.name()), EXIT_NO)
        }
        (LocalRequest::Authenticate { .. }, LocalResponse::AuthOk { server }) => {
            (format!("auth ok from {server}"), EXIT_OK)
        }
        (LocalRequest::Authenticate { .. }, LocalResponse::AuthOkAging { aging, server }) => {
            let age = match aging {
                PasswordAging::Expired => "password expired".to_string(),
                PasswordAging::ExpiresIn { days } => format!("password expires in {days} days"),
            };
            (format!("auth ok ({age}) from {server}"), EXIT_OK)
        }
        (LocalRequest::Authenticate { .. }, LocalResponse::AuthFail { server }) => {
            (format!("auth failed from {server}"), EXIT_NO)
        }
        (LocalRequest::Status, LocalResponse::Status(report)) => (render_status(report), EXIT_OK),
        (LocalRequest::Lookup(_), LocalResponse::User(u)) => (
            format!(
                "{}:x:{}:{}:{}:{}:{}",
                u.name, u.uid, u.gid, u.gecos, u.home, u.shell
            ),
            EXIT_OK,
        ),
        (LocalRequest::Lookup(_), LocalResponse::Group(g)) => (
            format!("{}:x:{}:{}", g.name, g.gid, g.members.join(",")),
            EXIT_OK,
        ),
        (LocalRequest::Lookup(_), LocalResponse::Groups(gids)) => {
            let gids: Vec<String> = gids.iter().map(u32::to_string).collect();
            (gids.join(" "), EXIT_OK)
        }
        (LocalRequest::Lookup(_), LocalResponse::NotFound) => ("not found".into(), EXIT_NO),
        (_, LocalResponse::Error { kind, message }) => {
            (format!("error: {message} ({})", kind.name()), EXIT_ERROR)
        }
        (_, other) => (
            format!("error: the daemon answered {request:?} with {other:?}"),
            EXIT_ERROR,
        ),
    };
    Rendered { text, code }
}

/// The status table (several lines, no trailing newline).
pub fn render_status(report: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "host {}, balancing {}, {} server(s)",
        report.host,
        report.balancing,
        report.servers.len()
    );
    for server in &report.servers {
        let _ = write!(out, "  {:<24}", server.address);
        match &server.last_probe {
            Some(p) => {
                let _ = write!(
                    out,
                    " estimate {} µs (seed {} µs, queue {}, {} connections) {} ago",
                    p.estimate_us,
                    p.seed_estimate_us,
                    p.queue_len,
                    p.connections,
                    seconds(p.age_ms)
                );
            }
            None => out.push_str(" no probe reply yet"),
        }
        if server.suspect {
            out.push_str(" [suspect]");
        }
        if server.avoided {
            out.push_str(" [avoided]");
        }
        out.push('\n');
    }
    match &report.connection {
        Some(c) => {
            let state = if c.established {
                "established"
            } else {
                "handshaking"
            };
            let _ = writeln!(
                out,
                "connection: {} ({state}, {} old)",
                c.server,
                seconds(c.age_ms)
            );
        }
        None => out.push_str("connection: none\n"),
    }
    let retry = match report.retry_in_ms {
        Some(ms) => format!("in {}", seconds(ms)),
        None => "none".into(),
    };
    let _ = write!(
        out,
        "requests: {} queued, {} in flight; background retry: {retry}; local callers: {}",
        report.queued, report.in_flight, report.local_clients
    );
    let o = &report.offline;
    let on = |b: bool| if b { "on" } else { "off" };
    let _ = write!(
        out,
        "\noffline: identities {}, decisions up to {} s, passwords {}; answered offline: \
         {} identities, {} authorize, {} authenticate; cached: {} identities, {} decisions, \
         {} verifiers",
        on(o.identities),
        o.authorize_max_age_s,
        on(o.passwords),
        o.identity_answers,
        o.authorize_answers,
        o.authenticate_answers,
        o.cached_identities,
        o.cached_decisions,
        o.cached_verifiers,
    );
    if let Some((last, ago_ms)) = &o.last {
        let _ = write!(
            out,
            "\nlast offline answer: {last}, {} ago",
            seconds(*ago_ms)
        );
    }
    out
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}
