//! How `gatehouse-admin` prints the master's answers: short, line-oriented text that is easy
//! to read and to grep. Pure (returns strings).

use super::proto::{AdminResponse, CheckDecision, StatusReport, UserInfo};
use gatehouse_common::policy::RouteTarget;

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
        AdminResponse::Compacted {
            removed,
            oldest_log_seq,
        } => {
            format!("removed {removed} change-log entries; the log now starts at {oldest_log_seq}")
        }
        AdminResponse::HostAdded { seq, .. } => format!("ok (sequence {seq})"),
        AdminResponse::Hosts(hosts) => {
            let mut out = String::new();
            for h in hosts {
                out.push_str(&format!(
                    "{}\taddresses={}\tgroups={}{}{}\n",
                    h.name,
                    h.addresses.join(","),
                    h.groups.join(","),
                    if h.replica { "\treplica" } else { "" },
                    if h.may_ask_for_others {
                        "\tasks-for-others"
                    } else {
                        ""
                    }
                ));
            }
            out.trim_end().to_string()
        }
        AdminResponse::Routes(routes) => {
            let lines: Vec<String> = routes
                .iter()
                .map(|entry| {
                    let owner = match &entry.target {
                        RouteTarget::User(name) => format!("user {name}"),
                        RouteTarget::Class(name) => format!("class {name}"),
                    };
                    let mut line = format!("{owner}\t{}", entry.route.rule);
                    if let Some(window) = &entry.route.window {
                        line.push_str(&format!("\twindow={window}"));
                    }
                    if let Some(expires) = &entry.route.expires {
                        line.push_str(&format!("\texpires={expires}"));
                    }
                    line
                })
                .collect();
            lines.join("\n")
        }
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
    format!(
        "user: {}\nlocked: {}\nlocked out: {locked_out}\nwrong passwords: {wrong}\npassword: {}\n\
         classes: {}\nroutes: {}\nunix: {unix}\nunix groups: {}",
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
    out
}
