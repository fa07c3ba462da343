//! The decisions: authorize (may this user get in this way, now?) and authenticate (is this the
//! password?), plus the node-key map a compiled database implies.
//!
//! Pure: the time is an argument; argon2 is CPU work only. Called by the replica and master
//! worker threads, one request at a time, against a shared [`PolicySnapshot`].

use super::compile::{CompiledHost, CompiledRoute, PolicySnapshot};
use super::password::{verify, Verify};
use super::route::RouteQuery;
use super::time::PolicyTime;
use crate::nodekeys::NodeKeyMap;
use crate::types::{AuthFailure, DenyReason, Method};
use crate::wire::{AuthenticateRequest, AuthorizeRequest, Response};
use std::sync::Arc;

/// The answer to an authorize request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Granted by `route`: the rule text, plus ` [class NAME]` when it came from a user class.
    Allow {
        route: Arc<str>,
    },
    Deny {
        reason: DenyReason,
    },
}

impl From<Decision> for Response {
    fn from(decision: Decision) -> Response {
        match decision {
            Decision::Allow { route } => Response::Allow { route },
            Decision::Deny { reason } => Response::Deny { reason },
        }
    }
}

fn deny(reason: DenyReason) -> Decision {
    Decision::Deny { reason }
}

impl PolicySnapshot {
    /// Decides `req` at time `now`. Checks, in order: the to-host is registered (else
    /// UnknownHost); the acting user — to-user for LOGIN and SSH, from-user for SU and SUDO —
    /// exists (UnknownUser) and is not locked (Locked); then the user's own routes followed by
    /// its classes' routes, first full match wins. With no full match: OutsideTimeWindow if some
    /// unexpired route matched except for its window, else Expired if some route matched but
    /// has expired, else NoMatchingRoute.
    /// `S` is `String` or `&str` (a request read in place from its frame).
    pub fn authorize<S: AsRef<str>>(&self, req: &AuthorizeRequest<S>, now: PolicyTime) -> Decision {
        let (from_host, from_user) = (req.from_host.as_ref(), req.from_user.as_ref());
        let (to_user, to_host) = (req.to_user.as_ref(), req.to_host.as_ref());
        let Some(to_host_entry) = self.hosts.get(to_host) else {
            return deny(DenyReason::UnknownHost);
        };
        let acting = match req.method {
            Method::Login | Method::Ssh => to_user,
            Method::Su | Method::Sudo => from_user,
        };
        let Some(user) = self.users.get(acting) else {
            return deny(DenyReason::UnknownUser);
        };
        if user.locked {
            return deny(DenyReason::Locked);
        }
        let query = RouteQuery {
            method: req.method,
            from_host,
            from_host_groups: self.host_named_or_addressed(from_host).map(|h| &*h.groups),
            from_user,
            to_user,
            to_host,
            to_host_groups: &to_host_entry.groups,
        };
        let class_routes = user
            .classes
            .iter()
            .filter_map(|c| self.classes.get(&**c))
            .flat_map(|c| c.routes.iter());
        let mut outside_window = false;
        let mut expired = false;
        for route in user.routes.iter().chain(class_routes) {
            match route_state(route, &query, now) {
                RouteState::NoMatch => {}
                RouteState::Expired => expired = true,
                RouteState::OutsideWindow => outside_window = true,
                RouteState::Allow => {
                    return Decision::Allow {
                        route: route.label.clone(),
                    }
                }
            }
        }
        if outside_window {
            deny(DenyReason::OutsideTimeWindow)
        } else if expired {
            deny(DenyReason::Expired)
        } else {
            deny(DenyReason::NoMatchingRoute)
        }
    }

    /// Checks a password at time `now`. The detailed reason of a failure is for the server's
    /// log (and its audit trail); the wire answer is one `AuthFail` whatever it is. Order: the
    /// asking host is registered (UnknownHost); the user exists (UnknownUser); not locked
    /// (Locked); not locked out at `now` by the central lockout (LockedOut); the argon2id hash
    /// matches (BadPassword otherwise, also for an empty or unusable stored hash, which is
    /// logged).
    ///
    /// Every path spends exactly one argon2id computation at the database's own cost — the
    /// user's real hash when there is a usable one (a locked or locked-out user's too),
    /// otherwise a dummy run at the cost most of the database's usable hashes have — so the time an
    /// answer takes does not tell an unknown user from a locked one or a wrong password.
    pub fn authenticate<S: AsRef<str>>(
        &self,
        req: &AuthenticateRequest<S>,
        now: PolicyTime,
    ) -> Result<(), AuthFailure> {
        let (name, password) = (req.user.as_ref(), req.password.as_ref());
        let user = self.users.get(name);
        let refusal = if !self.hosts.contains_key(req.host.as_ref()) {
            Some(AuthFailure::UnknownHost)
        } else if user.is_none() {
            Some(AuthFailure::UnknownUser)
        } else if user.is_some_and(|u| u.locked) {
            Some(AuthFailure::Locked)
        } else if self.lockouts.get(name).is_some_and(|l| now < l.until) {
            Some(AuthFailure::LockedOut)
        } else {
            None
        };
        let stored = user.map(|u| &*u.password_hash).filter(|h| !h.is_empty());
        let matched = match stored.map(|hash| verify(hash, password)) {
            Some(Verify::Match) => true,
            Some(Verify::Mismatch) => false,
            Some(Verify::Unusable(reason)) => {
                log::warn!("user `{name}`: stored password hash is unusable ({reason}); refusing");
                self.dummy.run(password);
                false
            }
            // No user, or no password set (password login is not possible for the account).
            None => {
                self.dummy.run(password);
                false
            }
        };
        match refusal {
            Some(reason) => Err(reason),
            None if matched => Ok(()),
            None => Err(AuthFailure::BadPassword),
        }
    }

    /// Whether the agent proven (by the handshake) to be `session_host` may ask about a login
    /// on `asked_host` (an authorize's to-host, an authenticate's host): always about itself;
    /// about another host only when the database marks it as allowed to ask for others (a jump
    /// host or proxy). Checked before every decision, so a node key speaks for its own host
    /// only. The common case costs one string comparison.
    pub fn may_ask_for(&self, session_host: &str, asked_host: &str) -> bool {
        session_host == asked_host
            || self
                .hosts
                .get(session_host)
                .is_some_and(|h| h.may_ask_for_others)
    }

    /// Host name → node key, for the handshake's key store: the snapshot's own persistent
    /// map, so this costs a reference count, and a change that touched no host returns the
    /// very version published before (`NodeKeyMap::ptr_eq`).
    pub fn node_keys(&self) -> NodeKeyMap {
        self.node_keys.clone()
    }

    /// The registered host a from-host string names: by host name first, then by address.
    fn host_named_or_addressed(&self, from_host: &str) -> Option<&CompiledHost> {
        let host = self.hosts.get(from_host).or_else(|| {
            self.host_by_address
                .get(from_host)
                .and_then(|name| self.hosts.get(&**name))
        });
        host.map(|h| &**h)
    }
}

enum RouteState {
    NoMatch,
    Expired,
    OutsideWindow,
    Allow,
}

/// One route against one request. An expired route reports Expired even when it is also outside
/// its window: "try again later" would be wrong advice for it.
fn route_state(route: &CompiledRoute, query: &RouteQuery<'_>, now: PolicyTime) -> RouteState {
    if !route.rule.matches(query) {
        RouteState::NoMatch
    } else if route.expires.is_some_and(|at| now >= at) {
        RouteState::Expired
    } else if route.window.as_ref().is_some_and(|w| !w.contains(now)) {
        RouteState::OutsideWindow
    } else {
        RouteState::Allow
    }
}
