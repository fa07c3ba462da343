//! The text of lists and shows (hosts, host groups, classes, users, routes, replicas, an
//! import's diff) and every answer's JSON (audit records as JSON lines). One line per entry,
//! tab-separated `key=value` fields, so `grep` and `cut` work; a show is `key: value` lines.
//! Pure; part of [`super`].

use crate::admin::diff::{DiffEntry, DiffOp};
use crate::admin::proto::{AdminResponse, GroupInfo, HostInfo, ReplicaInfo, RouteEntry};
use gatehouse_common::policy::RouteTarget;

/// `host list`'s line for one host.
pub fn host_line(h: &HostInfo) -> String {
    format!(
        "{}\taddresses={}\tgroups={}{}{}",
        h.name,
        h.addresses.join(","),
        h.groups.join(","),
        if h.replica { "\treplica" } else { "" },
        if h.may_ask_for_others {
            "\tasks-for-others"
        } else {
            ""
        }
    )
}

fn route_line(entry: &RouteEntry) -> String {
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
}

/// `route list`: one line per route (owner, rule, window, expiry).
pub fn routes(routes: &[RouteEntry]) -> String {
    let lines: Vec<String> = routes.iter().map(route_line).collect();
    lines.join("\n")
}

/// The routes section of a show: indented lines, or `(none)`.
fn routes_section(routes: &[RouteEntry]) -> String {
    if routes.is_empty() {
        return "routes: (none)".to_string();
    }
    let lines: Vec<String> = routes
        .iter()
        .map(|r| format!("  {}", route_line(r)))
        .collect();
    format!("routes:\n{}", lines.join("\n"))
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}

fn group_line(g: &GroupInfo) -> String {
    let description = g.description.as_deref().unwrap_or("");
    format!(
        "{}\thosts={}\tdescription={description}",
        g.name,
        g.hosts.join(",")
    )
}

fn replica_line(r: &ReplicaInfo) -> String {
    match &r.link {
        None => format!("{}\tno link", r.host),
        Some(link) => {
            let heard = link
                .last_heard_ms
                .map_or("never".to_string(), |ms| format!("{ms} ms ago"));
            format!(
                "{}\t{}\tacked={}\tlag={}\tlast heard {heard}",
                r.host,
                link.state.name(),
                link.acked_seq,
                link.lag
            )
        }
    }
}

fn diff_line(e: &DiffEntry) -> String {
    let sign = match e.op {
        DiffOp::Add => "+",
        DiffOp::Remove => "-",
        DiffOp::Change => "~",
    };
    let mut line = format!("{sign} {} {}", e.kind, e.name);
    if !e.details.is_empty() {
        line.push_str(&format!(": {}", e.details.join("; ")));
    }
    line
}

/// The text of the answers [`super::render`] leaves to this module.
pub fn render(response: &AdminResponse) -> String {
    match response {
        AdminResponse::Host { host, routes } => format!(
            "host: {}\naddresses: {}\ngroups: {}\nreplica: {}\nasks for others: {}\n{}",
            host.name,
            or_none(&host.addresses),
            or_none(&host.groups),
            if host.replica { "yes" } else { "no" },
            if host.may_ask_for_others { "yes" } else { "no" },
            routes_section(routes)
        ),
        AdminResponse::Groups(groups) => {
            let lines: Vec<String> = groups.iter().map(group_line).collect();
            lines.join("\n")
        }
        AdminResponse::Group { group, routes } => format!(
            "group: {}\ndescription: {}\nhosts: {}\n{}",
            group.name,
            group.description.as_deref().unwrap_or(""),
            or_none(&group.hosts),
            routes_section(routes)
        ),
        AdminResponse::Classes(classes) => {
            let lines: Vec<String> = classes
                .iter()
                .map(|c| {
                    format!(
                        "{}\tusers={}\troutes={}",
                        c.name,
                        c.users.join(","),
                        c.routes
                    )
                })
                .collect();
            lines.join("\n")
        }
        AdminResponse::Class { class, routes } => format!(
            "class: {}\nusers: {}\n{}",
            class.name,
            or_none(&class.users),
            routes_section(routes)
        ),
        AdminResponse::Users(users) => {
            let lines: Vec<String> = users
                .iter()
                .map(|u| {
                    let uid = u.uid.map_or("-".to_string(), |uid| uid.to_string());
                    format!(
                        "{}\tclasses={}\troutes={}\tpassword={}\tuid={uid}{}",
                        u.name,
                        u.classes.join(","),
                        u.routes,
                        if u.has_password { "set" } else { "none" },
                        if u.locked { "\tlocked" } else { "" }
                    )
                })
                .collect();
            lines.join("\n")
        }
        AdminResponse::Route { entry, warnings } => {
            let mut out = route_line(entry);
            for w in warnings {
                out.push_str(&format!("\nwarning: {w}"));
            }
            out
        }
        AdminResponse::Replicas(replicas) => {
            let lines: Vec<String> = replicas.iter().map(replica_line).collect();
            lines.join("\n")
        }
        AdminResponse::ImportDiff(entries) if entries.is_empty() => {
            "no changes: the file holds the database as it is".to_string()
        }
        AdminResponse::ImportDiff(entries) => {
            let (add, remove, change) = entries.iter().fold((0, 0, 0), |(a, r, c), e| match e.op {
                DiffOp::Add => (a + 1, r, c),
                DiffOp::Remove => (a, r + 1, c),
                DiffOp::Change => (a, r, c + 1),
            });
            let lines: Vec<String> = entries.iter().map(diff_line).collect();
            format!(
                "{}\nwould add {add}, remove {remove}, change {change} (dry run: nothing changed)",
                lines.join("\n")
            )
        }
        other => format!("{other:?}"),
    }
}

/// The data of an answer as JSON (lists as arrays, shows as objects); `None` for an answer
/// that is only an acknowledgement.
pub fn render_json(response: &AdminResponse) -> Option<String> {
    use serde_json::{json, to_value, Value};
    let value: Value = match response {
        AdminResponse::Hosts(v) => to_value(v).ok()?,
        AdminResponse::Host { host, routes } => json!({ "host": host, "routes": routes }),
        AdminResponse::Groups(v) => to_value(v).ok()?,
        AdminResponse::Group { group, routes } => json!({ "group": group, "routes": routes }),
        AdminResponse::Classes(v) => to_value(v).ok()?,
        AdminResponse::Class { class, routes } => json!({ "class": class, "routes": routes }),
        AdminResponse::Users(v) => to_value(v).ok()?,
        AdminResponse::User(v) => to_value(v).ok()?,
        AdminResponse::Routes(v) => to_value(v).ok()?,
        AdminResponse::Route { entry, warnings } => json!({ "route": entry, "warnings": warnings }),
        AdminResponse::Replicas(v) => to_value(v).ok()?,
        AdminResponse::UnixGroups(v) => to_value(v).ok()?,
        AdminResponse::Lockouts(v) => to_value(v).ok()?,
        AdminResponse::Status(v) => to_value(v).ok()?,
        AdminResponse::ImportDiff(v) => to_value(v).ok()?,
        AdminResponse::Checked { at_unix, decision } => {
            json!({ "at_unix": at_unix, "decision": decision })
        }
        // JSON lines, one record each, so `--follow` output can be read as it comes.
        AdminResponse::AuditRecords(entries) => {
            return Some(super::audit_lines(entries, true).join("\n"))
        }
        _ => return None,
    };
    serde_json::to_string_pretty(&value).ok()
}
