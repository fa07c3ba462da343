//! Access-route rules `METHODS:FROM->TO`, parsed once at compile time and matched per request.
//!
//! - METHODS: comma list of LOGIN, SSH, SU, SUDO (case-insensitive), or `*` for all.
//! - FROM: `hostpat` (any from-user) or `userpat@hostpat`.
//! - TO: `userpat@hostpat`.
//!
//! A wildcard TO-user pattern never matches `root`; only the literal `root` does, so that
//! `SSH:*->*@web*` cannot hand out root by accident. Pure; called by `policy::compile` (parse)
//! and `policy::decide` (match).

use super::pattern::{Glob, GlobCache, HostPat};
use crate::types::Method;
use std::sync::Arc;

/// The one account a wildcard target-user pattern never matches.
const ROOT: &str = "root";

/// Why a rule did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteParseError {
    #[error("expected METHODS:FROM->TO (missing `:`)")]
    MissingColon,
    #[error("expected METHODS:FROM->TO (need exactly one `->`)")]
    Arrow,
    #[error("unknown method `{0}` (use LOGIN, SSH, SU, SUDO or *)")]
    UnknownMethod(String),
    #[error("the target must be user@host")]
    TargetNeedsUser,
    #[error("more than one `@` in `{0}`")]
    TooManyAts(String),
    #[error("empty {0} pattern")]
    EmptyPattern(&'static str),
    #[error("whitespace inside pattern `{0}`")]
    Whitespace(String),
    #[error("bad host-group reference `{0}` (use +NAME, without wildcards)")]
    BadGroupRef(String),
    #[error("unknown host group `{0}`")]
    UnknownGroup(String),
}

/// What a request offers to a rule. `*_groups` are the groups of the registered host the
/// string names (`None` when the from-host is an unregistered name or address).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteQuery<'a> {
    pub method: Method,
    pub from_host: &'a str,
    pub from_host_groups: Option<&'a [Arc<str>]>,
    pub from_user: &'a str,
    pub to_user: &'a str,
    pub to_host: &'a str,
    pub to_host_groups: &'a [Arc<str>],
}

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    /// Bit `Method::code() - 1` per allowed method.
    methods: u8,
    /// `None` when FROM had no `user@`: any from-user.
    from_user: Option<Glob>,
    from_host: HostPat,
    to_user: Glob,
    to_host: HostPat,
}

impl Rule {
    /// Parses `text`; `group` resolves a `+NAME` reference to the group's shared name;
    /// `globs` shares patterns compiled before.
    pub(crate) fn parse(
        text: &str,
        group: &dyn Fn(&str) -> Option<Arc<str>>,
        globs: &mut GlobCache,
    ) -> Result<Self, RouteParseError> {
        let (methods, rest) = text.split_once(':').ok_or(RouteParseError::MissingColon)?;
        let mut arrow = rest.split("->");
        let (Some(from), Some(to), None) = (arrow.next(), arrow.next(), arrow.next()) else {
            return Err(RouteParseError::Arrow);
        };
        let methods = parse_methods(methods)?;
        let (from_user, from_host) = match split_at_sign(from.trim())? {
            Some((user, host)) => (Some(glob(user, "from-user", globs)?), host),
            None => (None, from.trim()),
        };
        let (to_user, to_host) =
            split_at_sign(to.trim())?.ok_or(RouteParseError::TargetNeedsUser)?;
        Ok(Rule {
            methods,
            from_user,
            from_host: host_pat(from_host, "from-host", group, globs)?,
            to_user: glob(to_user, "to-user", globs)?,
            to_host: host_pat(to_host, "to-host", group, globs)?,
        })
    }

    /// The host groups the rule names (`+NAME` in FROM or TO), once per mention.
    pub(crate) fn groups(&self) -> impl Iterator<Item = &Arc<str>> {
        [&self.from_host, &self.to_host]
            .into_iter()
            .filter_map(HostPat::group)
    }

    /// The FROM host pattern.
    pub(crate) fn source_host(&self) -> &HostPat {
        &self.from_host
    }

    /// The TO host pattern.
    pub(crate) fn target_host(&self) -> &HostPat {
        &self.to_host
    }

    pub(crate) fn matches(&self, q: &RouteQuery<'_>) -> bool {
        self.methods & method_bit(q.method) != 0
            && self
                .from_user
                .as_ref()
                .is_none_or(|u| u.matches(q.from_user))
            && self.from_host.matches(q.from_host, q.from_host_groups)
            && !(self.to_user.is_wildcard() && q.to_user == ROOT)
            && self.to_user.matches(q.to_user)
            && self.to_host.matches(q.to_host, Some(q.to_host_groups))
    }
}

fn method_bit(method: Method) -> u8 {
    1 << (method.code() - 1)
}

fn parse_methods(text: &str) -> Result<u8, RouteParseError> {
    if text.trim() == "*" {
        return Ok(Method::ALL.iter().fold(0, |acc, &m| acc | method_bit(m)));
    }
    text.split(',').try_fold(0, |acc, name| {
        let name = name.trim();
        Method::from_name(name)
            .map(|m| acc | method_bit(m))
            .ok_or_else(|| RouteParseError::UnknownMethod(name.to_string()))
    })
}

/// `user@host` → `Some((user, host))`, `host` → `None`.
fn split_at_sign(text: &str) -> Result<Option<(&str, &str)>, RouteParseError> {
    match text.split_once('@') {
        Some((_, host)) if host.contains('@') => Err(RouteParseError::TooManyAts(text.into())),
        other => Ok(other),
    }
}

fn glob(text: &str, what: &'static str, globs: &mut GlobCache) -> Result<Glob, RouteParseError> {
    if text.is_empty() {
        return Err(RouteParseError::EmptyPattern(what));
    }
    if text.contains(char::is_whitespace) {
        return Err(RouteParseError::Whitespace(text.to_string()));
    }
    Ok(globs.glob(text))
}

fn host_pat(
    text: &str,
    what: &'static str,
    group: &dyn Fn(&str) -> Option<Arc<str>>,
    globs: &mut GlobCache,
) -> Result<HostPat, RouteParseError> {
    let Some(name) = text.strip_prefix('+') else {
        return glob(text, what, globs).map(HostPat::Glob);
    };
    if name.is_empty() || name.contains(['*', '?', '+']) || name.contains(char::is_whitespace) {
        return Err(RouteParseError::BadGroupRef(text.to_string()));
    }
    group(name)
        .map(HostPat::Group)
        .ok_or_else(|| RouteParseError::UnknownGroup(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(name: &str) -> Option<Arc<str>> {
        ["web", "db"].contains(&name).then(|| name.into())
    }

    fn parse(text: &str) -> Result<Rule, RouteParseError> {
        Rule::parse(text, &groups, &mut GlobCache::default())
    }

    /// Group names that live as long as the test (a query borrows them).
    fn leaked(list: &[&str]) -> &'static [Arc<str>] {
        Box::leak(list.iter().map(|n| Arc::from(*n)).collect())
    }

    fn query<'a>(method: Method, from: &'a str, to_user: &'a str) -> RouteQuery<'a> {
        RouteQuery {
            method,
            from_host: from,
            from_host_groups: None,
            from_user: "",
            to_user,
            to_host: "web1",
            to_host_groups: leaked(&["web"]),
        }
    }

    #[test]
    fn methods_from_and_to_all_take_part() {
        let rule = parse("ssh, Su : 10.0.* -> alice@+web").unwrap();
        assert!(rule.matches(&query(Method::Ssh, "10.0.0.9", "alice")));
        assert!(rule.matches(&query(Method::Su, "10.0.0.9", "alice")));
        assert!(!rule.matches(&query(Method::Sudo, "10.0.0.9", "alice")));
        assert!(!rule.matches(&query(Method::Ssh, "10.1.0.9", "alice")));
        assert!(!rule.matches(&query(Method::Ssh, "10.0.0.9", "bob")));
        let db_host = RouteQuery {
            to_host_groups: leaked(&["db"]),
            ..query(Method::Ssh, "10.0.0.9", "alice")
        };
        assert!(!rule.matches(&db_host));
    }

    #[test]
    fn wildcards_never_reach_root_but_the_literal_does() {
        let any = parse("*:*->*@*").unwrap();
        assert!(any.matches(&query(Method::Login, "x", "alice")));
        assert!(!any.matches(&query(Method::Login, "x", "root")));
        assert!(!parse("*:*->r??t@*")
            .unwrap()
            .matches(&query(Method::Login, "x", "root")));
        assert!(parse("*:*->root@*")
            .unwrap()
            .matches(&query(Method::Login, "x", "root")));
    }

    #[test]
    fn from_user_is_checked_only_when_given() {
        let rule = parse("SU:alice@*->root@web1").unwrap();
        let mut q = query(Method::Su, "web1", "root");
        assert!(!rule.matches(&q));
        q.from_user = "alice";
        assert!(rule.matches(&q));
    }

    #[test]
    fn malformed_rules_are_typed_errors() {
        use RouteParseError::*;
        assert_eq!(parse("SSH *->a@b"), Err(MissingColon));
        assert_eq!(parse("SSH:*-a@b"), Err(Arrow));
        assert_eq!(parse("SSH:*->a@b->c@d"), Err(Arrow));
        assert_eq!(
            parse("SSH,TELNET:*->a@b"),
            Err(UnknownMethod("TELNET".into()))
        );
        assert_eq!(parse(":*->a@b"), Err(UnknownMethod("".into())));
        assert_eq!(parse("SSH:*->web1"), Err(TargetNeedsUser));
        assert_eq!(parse("SSH:a@b@c->a@b"), Err(TooManyAts("a@b@c".into())));
        assert_eq!(parse("SSH:->a@b"), Err(EmptyPattern("from-host")));
        assert_eq!(parse("SSH:*->@b"), Err(EmptyPattern("to-user")));
        assert_eq!(parse("SSH:*->a b@c"), Err(Whitespace("a b".into())));
        assert_eq!(parse("SSH:*->a@+w*"), Err(BadGroupRef("+w*".into())));
        assert_eq!(parse("SSH:*->a@+mail"), Err(UnknownGroup("mail".into())));
    }
}
