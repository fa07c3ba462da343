//! What a replica (or the master) does with a request: load the current policy snapshot once,
//! check that the agent asks about its own host, decide, record the decision in the audit
//! journal (when the server keeps one: [`crate::audit`]), and answer. The decisions are the
//! pure policy engine's; this adds the wall clock, the debug log line, and the events the
//! agent is not told about in detail ([`crate::auth_events`]). A decision the journal cannot
//! take is not given: the agent is told "busy, go elsewhere".
//!
//! Runs on the reactor thread (authorize, answered in place) and the worker threads (password
//! checks).

use crate::audit::recorder::unix_ms;
use crate::audit::Recorder;
use crate::auth_events::{Asked, AuthEvent, AuthEvents, LogEvents};
use crate::bridge::workers::Caller;
use crate::bridge::RequestHandler;
use crate::password_change::PasswordChanger;
use arc_swap::ArcSwap;
use gatehouse_common::audit::{AuditEvent, AuditRecord, Verdict};
use gatehouse_common::policy::{Decision, PolicySnapshot, PolicyTime};
use gatehouse_common::service::kv;
use gatehouse_common::types::DenyReason;
use gatehouse_common::wire::{
    AuthenticateRequest, ChangeOutcome, ChangePasswordRequest, Request, RequestView, Response,
};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Answers requests from the policy snapshot currently published.
pub struct PolicyHandler {
    policy: Arc<ArcSwap<PolicySnapshot>>,
    events: Arc<dyn AuthEvents>,
    audit: Option<Arc<Recorder>>,
    /// Where verified password changes go (the master, directly or over the link).
    changer: Option<Arc<dyn PasswordChanger>>,
}

impl PolicyHandler {
    /// A handler reading `policy`; publish a new snapshot there to change what it decides.
    /// Events go to the log ([`LogEvents`]).
    pub fn new(policy: Arc<ArcSwap<PolicySnapshot>>) -> Self {
        Self::with_events(policy, Arc::new(LogEvents::default()))
    }

    /// A handler that reports password checks and refused cross-host requests to `events`.
    pub fn with_events(policy: Arc<ArcSwap<PolicySnapshot>>, events: Arc<dyn AuthEvents>) -> Self {
        PolicyHandler {
            policy,
            events,
            audit: None,
            changer: None,
        }
    }

    /// The same handler taking users' own password changes, verified here and applied by
    /// `changer`. Without one, a change is answered "unavailable".
    pub fn with_password_changes(mut self, changer: Arc<dyn PasswordChanger>) -> Self {
        self.changer = Some(changer);
        self
    }

    /// The same handler recording every decision in `audit`'s journal.
    pub fn with_audit(mut self, audit: Arc<Recorder>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Records `event` for `caller` at `now`; `Err` is the answer to give instead (the
    /// journal refused it). Without a journal, nothing to do.
    fn audit(
        &self,
        caller: Caller<'_>,
        now: SystemTime,
        event: AuditEvent<&str>,
    ) -> Result<(), Response> {
        let Some(audit) = &self.audit else {
            return Ok(());
        };
        let record = AuditRecord {
            at_unix_ms: unix_ms(now),
            agent: caller.host,
            address: Some(caller.address),
            event,
        };
        audit.record(&record).map(drop).map_err(Recorder::busy)
    }

    /// A request about `host`, which `caller` may not ask about: the event goes to the log
    /// (and lockout sinks), the record to the journal, and the agent gets `refusal` (or
    /// "busy" if the journal cannot take the record).
    fn refuse_foreign(
        &self,
        caller: Caller<'_>,
        host: &str,
        asked: Asked,
        now: SystemTime,
        refusal: Response,
    ) -> Response {
        self.events.record(&AuthEvent::ForeignHost {
            agent: caller.host,
            host,
            asked,
        });
        match self.audit(caller, now, AuditEvent::ForeignHost { host, asked }) {
            Ok(()) => refusal,
            Err(busy) => busy,
        }
    }
}

impl PolicyHandler {
    /// Checks a password as an authenticate does: the host first (a foreign one is refused
    /// before any password work), then argon2, the event (the log and the central lockout)
    /// and the audit record. `Err` is the answer to give: `failed` for any failure, or "busy"
    /// if the journal cannot take the record.
    fn check_password(
        &self,
        caller: Caller<'_>,
        snapshot: &PolicySnapshot,
        req: &AuthenticateRequest<&str>,
        now: SystemTime,
        failed: Response,
    ) -> Result<(), Response> {
        if !snapshot.may_ask_for(caller.host, req.host) {
            return Err(self.refuse_foreign(caller, req.host, Asked::Authenticate, now, failed));
        }
        let outcome = snapshot.authenticate(req, PolicyTime::from_unix(unix_seconds(now)));
        self.events.record(&AuthEvent::PasswordChecked {
            agent: caller.host,
            host: req.host,
            user: req.user,
            outcome,
        });
        let record = AuditEvent::Authenticate {
            user: req.user,
            host: req.host,
            outcome,
        };
        self.audit(caller, now, record)?;
        outcome.map_err(|_| failed)
    }

    /// A user's own password change: the old password is checked here exactly as an
    /// authenticate checks it (the same events, so a wrong one counts against the central
    /// lockout, and the same audit record), and only a right one goes on to the changer. A
    /// wrong old password, an unknown or locked user and a foreign host are the one `Failed`.
    fn change_password(
        &self,
        caller: Caller<'_>,
        snapshot: &PolicySnapshot,
        req: ChangePasswordRequest<&str>,
        now: SystemTime,
    ) -> Response {
        let check = AuthenticateRequest {
            user: req.user,
            password: req.old_password,
            host: req.host,
        };
        let failed = Response::PasswordChange(ChangeOutcome::Failed);
        if let Err(refusal) = self.check_password(caller, snapshot, &check, now, failed) {
            return refusal;
        }
        let outcome = match &self.changer {
            Some(changer) => changer.change(caller.host, req),
            None => ChangeOutcome::unavailable("this server takes no password changes"),
        };
        log::info!(
            target: "gatehouse::audit",
            "password change agent={} user={} host={}: {}",
            kv::value(caller.host),
            kv::value(req.user),
            kv::value(req.host),
            outcome.name()
        );
        Response::PasswordChange(outcome)
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
        !self.is_password_check(request)
    }

    /// A password change checks the old password first: it counts as a password check (and
    /// its per-host limits) as an authenticate does.
    fn is_password_check(&self, request: RequestView<'_>) -> bool {
        matches!(
            request,
            Request::Authenticate(_) | Request::ChangePassword(_)
        )
    }

    /// `host` is the host the handshake proved. A request about another host is refused unless
    /// the database allows `host` to ask for others: an authorize is answered as if that host
    /// were unknown (so a stolen key cannot map the fleet either), an authenticate with the one
    /// failure answer, before any password work. An identity lookup names no host: any
    /// registered host may look up any identity (what NSS shows on every managed host).
    fn handle(&self, caller: Caller<'_>, request: RequestView<'_>, now: SystemTime) -> Response {
        let host = caller.host;
        // One snapshot for the whole request, even if a new one is published meanwhile.
        let snapshot = self.policy.load();
        match request {
            Request::Authorize(req) => {
                if !snapshot.may_ask_for(host, req.to_host) {
                    let unknown = Response::Deny {
                        reason: DenyReason::UnknownHost,
                    };
                    return self.refuse_foreign(
                        caller,
                        req.to_host,
                        Asked::Authorize,
                        now,
                        unknown,
                    );
                }
                let decision = snapshot.authorize(&req, PolicyTime::from_unix(unix_seconds(now)));
                if log::log_enabled!(target: "gatehouse::audit", log::Level::Debug) {
                    let verdict = match &decision {
                        Decision::Allow { route } => {
                            format!("decision=allow route={}", kv::value(route))
                        }
                        Decision::Deny { reason } => {
                            format!("decision=deny reason={}", reason.name())
                        }
                    };
                    log::debug!(
                        target: "gatehouse::audit",
                        "authorize agent={} method={} from_user={} from_host={} to_user={} to_host={} {verdict}",
                        kv::value(host),
                        req.method.name(),
                        kv::value(req.from_user),
                        kv::value(req.from_host),
                        kv::value(req.to_user),
                        kv::value(req.to_host)
                    );
                }
                let verdict = match &decision {
                    Decision::Allow { route } => Verdict::Allow { route: &**route },
                    Decision::Deny { reason } => Verdict::Deny { reason: *reason },
                };
                let record = AuditEvent::Authorize {
                    method: req.method,
                    from_user: req.from_user,
                    from_host: req.from_host,
                    to_user: req.to_user,
                    to_host: req.to_host,
                    verdict,
                };
                if let Err(busy) = self.audit(caller, now, record) {
                    return busy;
                }
                decision.into()
            }
            Request::Authenticate(req) => {
                let at = PolicyTime::from_unix(unix_seconds(now));
                match self.check_password(caller, &snapshot, &req, now, Response::AuthFail) {
                    // A password's age is told only after it verified.
                    Ok(()) => snapshot.authenticate_answer(req.user, Ok(()), at),
                    // The detail went to the events (the log): the agent gets one answer.
                    Err(refusal) => refusal,
                }
            }
            Request::ChangePassword(req) => self.change_password(caller, &snapshot, req, now),
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

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
