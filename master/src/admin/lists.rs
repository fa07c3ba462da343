//! The admin's lists and shows (`host list`, `group show`, `user list`, `replica show`, ...)
//! built from the in-memory database, and the route warnings `route add` and `route show`
//! give. Nothing secret leaves here: hosts without node keys, users without password hashes.
//!
//! Pure over the database (and the replica links handed in). Called by [`super::handler`].

use super::handler::refused;
use super::proto::{
    AdminResponse, ClassInfo, GroupInfo, HostInfo, ReplicaInfo, RouteEntry, UserSummary,
};
use crate::hooks::ReplicaLinkStatus;
use gatehouse_common::policy::route_check::RouteHosts;
use gatehouse_common::policy::{Database, Host, RouteTarget};

/// Every route of the database with its owner, users first then classes.
pub fn all_routes(db: &Database) -> Vec<RouteEntry> {
    let users = db
        .users
        .iter()
        .map(|u| (RouteTarget::User(u.name.clone()), &u.routes));
    let classes = db
        .user_classes
        .iter()
        .map(|c| (RouteTarget::Class(c.name.clone()), &c.routes));
    users
        .chain(classes)
        .flat_map(|(target, routes)| {
            routes.iter().map(move |route| RouteEntry {
                target: target.clone(),
                route: route.clone(),
            })
        })
        .collect()
}

fn host_info(db: &Database, h: &Host) -> HostInfo {
    HostInfo {
        name: h.name.clone(),
        addresses: h.addresses.clone(),
        groups: h.groups.clone(),
        replica: db.replicas.contains(&h.name),
        may_ask_for_others: h.may_ask_for_others,
    }
}

pub fn host_list(db: &Database) -> AdminResponse {
    AdminResponse::Hosts(db.hosts.iter().map(|h| host_info(db, h)).collect())
}

pub fn host_show(db: &Database, name: &str) -> AdminResponse {
    let Some(host) = db.hosts.iter().find(|h| h.name == name) else {
        return refused(format!("unknown host `{name}`"));
    };
    let hosts = RouteHosts::new(db);
    let routes = all_routes(db)
        .into_iter()
        .filter(|e| hosts.names_host(&e.route.rule, name))
        .collect();
    AdminResponse::Host {
        host: host_info(db, host),
        routes,
    }
}

fn group_info(db: &Database, name: &str, description: &Option<String>) -> GroupInfo {
    GroupInfo {
        name: name.to_string(),
        description: description.clone(),
        hosts: db
            .hosts
            .iter()
            .filter(|h| h.groups.iter().any(|g| g == name))
            .map(|h| h.name.clone())
            .collect(),
    }
}

pub fn group_list(db: &Database) -> AdminResponse {
    let groups = db.host_groups.iter();
    AdminResponse::Groups(
        groups
            .map(|g| group_info(db, &g.name, &g.description))
            .collect(),
    )
}

pub fn group_show(db: &Database, name: &str) -> AdminResponse {
    let Some(group) = db.host_groups.iter().find(|g| g.name == name) else {
        return refused(format!("unknown host group `{name}`"));
    };
    let hosts = RouteHosts::new(db);
    let routes = all_routes(db)
        .into_iter()
        .filter(|e| hosts.names_group(&e.route.rule, name))
        .collect();
    AdminResponse::Group {
        group: group_info(db, name, &group.description),
        routes,
    }
}

fn class_info(db: &Database, name: &str, routes: usize) -> ClassInfo {
    ClassInfo {
        name: name.to_string(),
        users: db
            .users
            .iter()
            .filter(|u| u.classes.iter().any(|c| c == name))
            .map(|u| u.name.clone())
            .collect(),
        routes,
    }
}

pub fn class_list(db: &Database) -> AdminResponse {
    let classes = db.user_classes.iter();
    AdminResponse::Classes(
        classes
            .map(|c| class_info(db, &c.name, c.routes.len()))
            .collect(),
    )
}

pub fn class_show(db: &Database, name: &str) -> AdminResponse {
    let Some(class) = db.user_classes.iter().find(|c| c.name == name) else {
        return refused(format!("unknown class `{name}`"));
    };
    let target = RouteTarget::Class(name.to_string());
    let routes = class.routes.iter().map(|route| RouteEntry {
        target: target.clone(),
        route: route.clone(),
    });
    AdminResponse::Class {
        class: class_info(db, name, class.routes.len()),
        routes: routes.collect(),
    }
}

pub fn user_list(db: &Database) -> AdminResponse {
    AdminResponse::Users(
        db.users
            .iter()
            .map(|u| UserSummary {
                name: u.name.clone(),
                locked: u.locked,
                has_password: !u.password_hash.is_empty(),
                classes: u.classes.clone(),
                routes: u.routes.len(),
                uid: u.unix.as_ref().map(|a| a.uid),
            })
            .collect(),
    )
}

pub fn route_show(db: &Database, target: RouteTarget, rule: &str) -> AdminResponse {
    let entry = all_routes(db)
        .into_iter()
        .find(|e| e.target == target && e.route.rule == rule);
    match entry {
        Some(entry) => AdminResponse::Route {
            warnings: RouteHosts::new(db).warnings(rule),
            entry,
        },
        None => refused(format!("{target} has no route `{rule}`")),
    }
}

/// The allow-list in its order, each with its link if replication knows one.
pub fn replica_list(db: &Database, links: &[ReplicaLinkStatus]) -> AdminResponse {
    AdminResponse::Replicas(
        db.replicas
            .iter()
            .map(|host| ReplicaInfo {
                host: host.clone(),
                link: links.iter().find(|l| &l.host == host).cloned(),
            })
            .collect(),
    )
}

pub fn replica_show(db: &Database, links: &[ReplicaLinkStatus], host: &str) -> AdminResponse {
    if !db.replicas.iter().any(|r| r == host) {
        return refused(format!("`{host}` is not on the replica allow-list"));
    }
    match replica_list(db, links) {
        AdminResponse::Replicas(all) => {
            AdminResponse::Replicas(all.into_iter().filter(|r| r.host == host).collect())
        }
        other => other,
    }
}
