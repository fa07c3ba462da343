//! The agent's `servers` as addresses: "ip:port" parsed, "name:port" resolved. A name that
//! does not resolve (DNS down at boot, one record missing) does not stop the agent: it starts
//! with the servers that resolve, logs the others, and the daemon retries them every
//! [`RESOLVE_RETRY`] on a thread of its own (`daemon::resolver`); only a list where nothing
//! resolves, or an entry that is not `host:port` at all, is a config error.
//!
//! Pure except [`resolve_all`], which asks the system resolver (getaddrinfo, blocking).

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// How often the daemon retries names that did not resolve (30 s): a DNS outage at boot is
/// over within a minute or two; far more often would be load on a resolver that is down.
pub const RESOLVE_RETRY: Duration = Duration::from_secs(30);

/// The result of resolving `servers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The addresses of the entries that resolved, in configured order.
    pub addrs: Vec<SocketAddr>,
    /// Entries that did not resolve, with why.
    pub unresolved: Vec<(String, String)>,
}

/// Why `servers` cannot be used at all: `(field, message)`.
pub type ServersError = (String, String);

/// Resolves every entry; syntax errors and duplicates are errors, unresolved names are
/// listed, and at least one entry must resolve.
pub fn resolve_all(servers: &[String]) -> Result<Resolved, ServersError> {
    let mut resolved = Resolved::default();
    for (i, text) in servers.iter().enumerate() {
        let field = format!("servers[{i}]");
        match resolve(text) {
            Ok(addr) if resolved.addrs.contains(&addr) => {
                return Err((field, format!("{text:?} ({addr}) is listed twice")));
            }
            Ok(addr) => resolved.addrs.push(addr),
            Err(Failure::Syntax(msg)) => return Err((field, format!("{text:?}: {msg}"))),
            Err(Failure::Lookup(msg)) => resolved.unresolved.push((text.clone(), msg)),
        }
    }
    if resolved.addrs.is_empty() && !resolved.unresolved.is_empty() {
        let names: Vec<String> = resolved
            .unresolved
            .iter()
            .map(|(name, why)| format!("{name:?}: {why}"))
            .collect();
        return Err((
            "servers".into(),
            format!("no server resolves ({})", names.join("; ")),
        ));
    }
    Ok(resolved)
}

enum Failure {
    /// Not `host:port`: the config is wrong.
    Syntax(String),
    /// A well-formed name the resolver did not answer for (now).
    Lookup(String),
}

/// "ip:port" parsed directly; "name:port" resolved (first address).
fn resolve(text: &str) -> Result<SocketAddr, Failure> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let well_formed = text
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !well_formed {
        return Err(Failure::Syntax("expected \"host:port\"".into()));
    }
    let mut found = text
        .to_socket_addrs()
        .map_err(|e| Failure::Lookup(e.to_string()))?;
    found
        .next()
        .ok_or_else(|| Failure::Lookup("the name has no addresses".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_unresolvable_name_is_listed_and_the_others_are_kept() {
        // `.invalid` never resolves (RFC 6761).
        let r = resolve_all(&list(&["127.0.0.1:7701", "nosuch.invalid:7701"])).unwrap();
        assert_eq!(r.addrs, vec!["127.0.0.1:7701".parse().unwrap()]);
        assert_eq!(r.unresolved.len(), 1);
        assert_eq!(r.unresolved[0].0, "nosuch.invalid:7701");
    }

    #[test]
    fn bad_syntax_duplicates_and_nothing_resolving_are_errors() {
        let err = resolve_all(&list(&["127.0.0.1:7701", "web1"])).unwrap_err();
        assert_eq!(
            err,
            (
                "servers[1]".into(),
                "\"web1\": expected \"host:port\"".into()
            )
        );
        let err = resolve_all(&list(&["127.0.0.1:1", "127.0.0.1:1"])).unwrap_err();
        assert_eq!(err.0, "servers[1]");
        let err = resolve_all(&list(&["nosuch.invalid:7701"])).unwrap_err();
        assert_eq!(err.0, "servers");
        assert!(
            err.1
                .starts_with("no server resolves (\"nosuch.invalid:7701\": "),
            "{}",
            err.1
        );
    }
}
