//! How `gatehouse-admin` prints the master's answers: short, line-oriented text that is easy
//! to read and to grep, or with `--json` the answer's data as JSON. Pure (returns strings).

#[path = "output_lists.rs"]
mod lists;
pub use lists::render_json;

use super::proto::{AdminResponse, AuditEntry, AuditStatus, CheckDecision, StatusReport, UserInfo};
use crate::audit::admin::from_hex;
use gatehouse_common::audit::record::decode_one;
use gatehouse_common::audit::render::{json_line, text_line, Origin};

/// One line of a long request's progress: `writing 350000/1000000 (35 %)`.
pub fn progress_line(stage: &str, done: u64, total: u64) -> String {
    match total {
        0 => stage.to_string(),
        _ => format!(
            "{stage} {done}/{total} ({} %)",
            done.saturating_mul(100) / total
        ),
    }
}

/// The text for a successful response (errors are printed by the caller).
pub fn render(response: &AdminResponse) -> String {
    match response {
        AdminResponse::Done { seq } => format!("ok (sequence {seq})"),
        AdminResponse::AuditRecords(entries) => audit_lines(entries, false).join("\n"),
        AdminResponse::Compacted {
            removed,
            oldest_log_seq,
        } => {
            format!("removed {removed} change-log entries; the log now starts at {oldest_log_seq}")
        }
        AdminResponse::HostAdded { seq, .. } => format!("ok (sequence {seq})"),
        AdminResponse::Hosts(hosts) => {
            let lines: Vec<String> = hosts.iter().map(lists::host_line).collect();
            lines.join("\n")
        }
        AdminResponse::Routes(routes) => lists::routes(routes),
        AdminResponse::Lockouts(entries) => {
            let lines: Vec<String> = entries
                .iter()
                .map(|e| {
                    let mut line = e.user.clone();
                    if let Some(until) = &e.locked_out_until {
                        line.push_str(&format!("\tlocked out until {until}"));
                    }
                    if e.failures > 0 {
                        line.push_str(&format!("\t{} wrong passwords: {}", e.failures, e.sources));
                    }
                    line
                })
                .collect();
            lines.join("\n")
        }
        AdminResponse::Status(report) => status(report),
        AdminResponse::Exported { seq, .. } => format!("exported sequence {seq}"),
        AdminResponse::ImportPending { bytes } => format!("{bytes} bytes pending"),
        AdminResponse::BatchPending { changes } => format!("{changes} changes pending"),
        AdminResponse::Progress { stage, done, total } => progress_line(stage, *done, *total),
        AdminResponse::Checked { decision, .. } => match decision {
            CheckDecision::Allow { route } => format!("Allow\troute: {route}"),
            CheckDecision::Deny { reason } => format!("Deny\treason: {}", reason.name()),
        },
        AdminResponse::Error { message, .. } => format!("error: {message}"),
        AdminResponse::IdSet { seq, what, id } => format!("ok (sequence {seq}, {what} {id})"),
        AdminResponse::User(user) => user_info(user),
        AdminResponse::UnixGroups(groups) => {
            let lines: Vec<String> = groups
                .iter()
                .map(|g| format!("{}\tgid={}\tmembers={}", g.name, g.gid, g.members.join(",")))
                .collect();
            lines.join("\n")
        }
        AdminResponse::Warned { seq, .. } => format!("ok (sequence {seq})"),
        other => lists::render(other),
    }
}

fn user_info(u: &UserInfo) -> String {
    let unix = match &u.unix {
        Some(a) => format!(
            "uid={} gid={} gecos={:?} home={} shell={}",
            a.uid, a.gid, a.gecos, a.home, a.shell
        ),
        None => "(none)".to_string(),
    };
    let locked_out = match &u.locked_out_until {
        Some(until) => format!("until {until}"),
        None => "no".to_string(),
    };
    let wrong = match u.wrong_passwords {
        0 => "0".to_string(),
        n => format!("{n} ({})", u.wrong_password_sources),
    };
    let or_never = |t: &Option<String>| t.clone().unwrap_or_else(|| "never".to_string());
    // The age lines only for a user with a password: "none" says all there is otherwise.
    let age = if u.has_password {
        format!(
            "password set at: {}\npassword expires: {}\npassword warns from: {}\n\
             password history: {} kept\n",
            u.password_set_at.as_deref().unwrap_or("not recorded"),
            or_never(&u.password_expires),
            or_never(&u.password_warn_from),
            u.password_history,
        )
    } else {
        String::new()
    };
    format!(
        "user: {}\nlocked: {}\nlocked out: {locked_out}\nwrong passwords: {wrong}\npassword: {}\n\
         {age}classes: {}\nroutes: {}\nunix: {unix}\nunix groups: {}",
        u.name,
        if u.locked { "yes" } else { "no" },
        if u.has_password { "set" } else { "none" },
        u.classes.join(", "),
        u.routes,
        u.unix_groups.join(", "),
    )
}

fn status(r: &StatusReport) -> String {
    let mut out = format!(
        "sequence: {}\noldest logged change: {}\nhosts: {}\nhost groups: {}\nusers: {} ({} locked, {} locked out)\n\
         classes: {}\nroutes: {}\nreplicas allowed: {}\nreplica links:",
        r.sequence,
        r.oldest_log_seq,
        r.hosts,
        r.host_groups,
        r.users,
        r.locked_users,
        r.locked_out_users,
        r.classes,
        r.routes,
        if r.replicas_allowed.is_empty() {
            "(none)".to_string()
        } else {
            r.replicas_allowed.join(", ")
        },
    );
    if r.replica_links.is_empty() {
        out.push_str(" (none)");
    }
    for link in &r.replica_links {
        let heard = link
            .last_heard_ms
            .map_or("never".to_string(), |ms| format!("{ms} ms ago"));
        out.push_str(&format!(
            "\n  {}\t{}\tacked={}\tlag={}\tlast heard {heard}",
            link.host,
            link.state.name(),
            link.acked_seq,
            link.lag
        ));
    }
    out.push_str(&audit_status(&r.audit));
    out
}

/// The audit part of `status`: what the store holds, each server's stream, and the master's
/// own journal with its alarm.
fn audit_status(a: &AuditStatus) -> String {
    let mut out = format!(
        "
audit: {} records stored",
        a.records
    );
    for s in &a.streams {
        out.push_str(&format!(
            "
  {}	stream {:016x}	through {}	missing {}",
            s.server, s.stream, s.through, s.missing
        ));
    }
    if a.journal_max_bytes > 0 {
        out.push_str(&format!(
            "
  journal: {} records not yet stored, {} of {} bytes, {} dropped, {} refused{}",
            a.journal_unstored,
            a.journal_bytes,
            a.journal_max_bytes,
            a.journal_dropped,
            a.journal_refused,
            if a.journal_full {
                "  ALARM: journal full"
            } else {
                ""
            }
        ));
    }
    out
}

/// Audit records as text lines (`key=value`), oldest first; `json`: one JSON object a line.
pub fn audit_lines(entries: &[AuditEntry], json: bool) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            let origin = Origin {
                id: e.id,
                server: &e.server,
                seq: e.seq,
            };
            match from_hex(&e.record).and_then(|bytes| decode_one(&bytes).ok()) {
                Some(record) if json => json_line(&record, Some(origin)),
                Some(record) => text_line(&record, Some(origin)),
                None => format!(
                    "id={} server={} seq={} undecodable record",
                    e.id, e.server, e.seq
                ),
            }
        })
        .collect()
}
