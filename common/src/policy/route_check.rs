//! Which registered hosts and host groups a route's patterns name, for the admin CLI: a
//! warning when a route's target matches no registered host (a misspelt name is accepted,
//! since a wildcard or a host added later may match it), and the routes `host show` and
//! `group show` list. Decisions never use this; `compile` parses the same rules.
//!
//! Pure. Costs one pass over the hosts per rule asked about (a `route add` on a database of a
//! million hosts: a few milliseconds, once per admin command).

use super::model::Database;
use super::pattern::{GlobCache, HostPat};
use super::route::{RouteParseError, Rule};
use std::collections::HashMap;
use std::sync::Arc;

/// The hosts and groups of one database, indexed for matching rules against them.
pub struct RouteHosts<'a> {
    db: &'a Database,
    group_index: HashMap<&'a str, Arc<str>>,
    /// Per host (same order as `db.hosts`), its groups' indexes.
    host_groups: Vec<Vec<Arc<str>>>,
}

impl<'a> RouteHosts<'a> {
    pub fn new(db: &'a Database) -> Self {
        let group_index: HashMap<&str, Arc<str>> = db
            .host_groups
            .iter()
            .map(|g| (g.name.as_str(), Arc::from(g.name.as_str())))
            .collect();
        let host_groups = db
            .hosts
            .iter()
            .map(|h| {
                h.groups
                    .iter()
                    .filter_map(|g| group_index.get(g.as_str()).cloned())
                    .collect()
            })
            .collect();
        RouteHosts {
            db,
            group_index,
            host_groups,
        }
    }

    fn parse(&self, rule: &str) -> Result<Rule, RouteParseError> {
        Rule::parse(
            rule,
            &|name| self.group_index.get(name).cloned(),
            &mut GlobCache::default(),
        )
    }

    fn matches_any_host(&self, pat: &HostPat) -> bool {
        self.db
            .hosts
            .iter()
            .zip(&self.host_groups)
            .any(|(h, groups)| pat.matches(&h.name, Some(groups)))
    }

    /// What is suspicious about `rule`'s target: a host pattern that matches no registered
    /// host, or a host group without hosts. Empty for a rule that does not parse (adding it is
    /// refused with the parse error anyway).
    pub fn warnings(&self, rule: &str) -> Vec<String> {
        let Ok(parsed) = self.parse(rule) else {
            return Vec::new();
        };
        if self.matches_any_host(parsed.target_host()) {
            return Vec::new();
        }
        let target = rule.rsplit_once('@').map_or(rule, |(_, host)| host).trim();
        let warning = match parsed.target_host() {
            HostPat::Group(_) => format!(
                "route `{rule}`: host group `{target}` has no hosts yet, so the route allows nothing until one joins it"
            ),
            HostPat::Glob(_) => format!(
                "route `{rule}`: `{target}` matches no registered host (a typo? a host registered later under a matching name will be covered)"
            ),
        };
        vec![warning]
    }

    /// Whether `rule` names host `name` (by a pattern on either side or a group it is in).
    pub fn names_host(&self, rule: &str, name: &str) -> bool {
        let Ok(parsed) = self.parse(rule) else {
            return false;
        };
        let groups = self
            .db
            .hosts
            .iter()
            .position(|h| h.name == name)
            .map(|i| self.host_groups[i].as_slice());
        parsed.target_host().matches(name, groups) || parsed.source_host().matches(name, groups)
    }

    /// Whether `rule` names host group `group` (`+group` on either side).
    pub fn names_group(&self, rule: &str, group: &str) -> bool {
        let Ok(parsed) = self.parse(rule) else {
            return false;
        };
        [parsed.source_host(), parsed.target_host()]
            .iter()
            .any(|p| p.group().is_some_and(|g| &**g == group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Host, HostGroup};

    fn db() -> Database {
        let host = |name: &str, groups: &[&str]| Host {
            name: name.into(),
            addresses: vec![],
            node_key: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            may_ask_for_others: false,
        };
        let group = |name: &str| HostGroup {
            name: name.into(),
            description: None,
        };
        Database {
            hosts: vec![host("web1", &["web"]), host("db1", &[])],
            host_groups: vec![group("web"), group("empty")],
            ..Database::default()
        }
    }

    #[test]
    fn a_target_no_host_matches_is_warned_about_and_a_matching_one_is_not() {
        let db = db();
        let hosts = RouteHosts::new(&db);
        assert!(hosts.warnings("SSH:*->alice@web1").is_empty());
        assert!(hosts.warnings("SSH:*->alice@web*").is_empty());
        assert!(hosts.warnings("SSH:*->alice@+web").is_empty());
        assert_eq!(
            hosts.warnings("SSH:*->alice@wbe1"),
            ["route `SSH:*->alice@wbe1`: `wbe1` matches no registered host (a typo? a host registered later under a matching name will be covered)"]
        );
        assert!(hosts.warnings("SSH:*->alice@+empty")[0]
            .contains("host group `+empty` has no hosts yet"));
        // A rule that does not parse is refused elsewhere, with its own message.
        assert!(hosts.warnings("SSH:*->alice@+nosuch").is_empty());
    }

    #[test]
    fn routes_name_hosts_by_pattern_and_by_group_on_either_side() {
        let db = db();
        let hosts = RouteHosts::new(&db);
        assert!(hosts.names_host("SSH:*->alice@+web", "web1"));
        assert!(hosts.names_host("SSH:web1->alice@db1", "web1"));
        assert!(!hosts.names_host("SSH:10.*->alice@+web", "db1"));
        assert!(hosts.names_group("SUDO:+web->root@db1", "web"));
        assert!(!hosts.names_group("SSH:*->alice@web1", "web"));
    }
}
