//! What a replica's workers do with a request: load the current policy snapshot once, decide,
//! and answer. The decision itself is the pure policy engine's; this adds the wall clock and
//! the audit log line.

use crate::bridge::RequestHandler;
use arc_swap::ArcSwap;
use gatehouse_common::policy::{Decision, PolicySnapshot, PolicyTime};
use gatehouse_common::wire::{Request, RequestView, Response};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Answers requests from the policy snapshot currently published.
pub struct PolicyHandler {
    policy: Arc<ArcSwap<PolicySnapshot>>,
}

impl PolicyHandler {
    /// A handler reading `policy`; publish a new snapshot there to change what it decides.
    pub fn new(policy: Arc<ArcSwap<PolicySnapshot>>) -> Self {
        PolicyHandler { policy }
    }
}

/// Seconds since the epoch (0 for a clock set before it, which no route's window matches).
fn unix_seconds(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().try_into().unwrap_or(i64::MAX))
}

impl RequestHandler for PolicyHandler {
    /// Authorize and identity lookups are lookups in the compiled policy (well under a
    /// microsecond); authenticate runs argon2 (tens of milliseconds by design) and must stay
    /// off the reactor thread.
    fn is_cheap(&self, request: RequestView<'_>) -> bool {
        !matches!(request, Request::Authenticate(_))
    }

    fn handle(&self, host: &str, request: RequestView<'_>, now: SystemTime) -> Response {
        // One snapshot for the whole request, even if a new one is published meanwhile.
        let snapshot = self.policy.load();
        match request {
            Request::Authorize(req) => {
                let decision = snapshot.authorize(&req, PolicyTime::from_unix(unix_seconds(now)));
                log::debug!(
                    target: "gatehouse::audit",
                    "agent={host} authorize {} {}@{} -> {}@{}: {decision:?}",
                    req.method.name(),
                    req.from_user,
                    req.from_host,
                    req.to_user,
                    req.to_host
                );
                match decision {
                    Decision::Allow { route } => Response::Allow { route },
                    Decision::Deny { reason } => Response::Deny { reason },
                }
            }
            Request::Authenticate(req) => {
                let result = snapshot.authenticate(&req);
                log::debug!(
                    target: "gatehouse::audit",
                    "agent={host} authenticate {}@{}: {result:?}",
                    req.user,
                    req.host
                );
                match result {
                    Ok(()) => Response::AuthOk,
                    Err(reason) => Response::AuthFail { reason },
                }
            }
            Request::Lookup(lookup) => {
                let answer = snapshot.lookup(&lookup);
                log::debug!(
                    target: "gatehouse::audit",
                    "agent={host} lookup {}: {}",
                    lookup.key(),
                    if answer == Response::NotFound { "not found" } else { "found" }
                );
                answer
            }
        }
    }
}
