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
use arc_swap::ArcSwap;
use gatehouse_common::audit::{AuditEvent, AuditRecord, Verdict};
use gatehouse_common::policy::{Decision, PolicySnapshot, PolicyTime};
use gatehouse_common::service::kv;
use gatehouse_common::types::DenyReason;
use gatehouse_common::wire::{Request, RequestView, Response};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Answers requests from the policy snapshot currently published.
pub struct PolicyHandler {
    policy: Arc<ArcSwap<PolicySnapshot>>,
    events: Arc<dyn AuthEvents>,
    audit: Option<Arc<Recorder>>,
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
        }
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

    fn is_password_check(&self, request: RequestView<'_>) -> bool {
        matches!(request, Request::Authenticate(_))
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
                if !snapshot.may_ask_for(host, req.host) {
                    let fail = Response::AuthFail;
                    return self.refuse_foreign(caller, req.host, Asked::Authenticate, now, fail);
                }
                let at = PolicyTime::from_unix(unix_seconds(now));
                let outcome = snapshot.authenticate(&req, at);
                self.events.record(&AuthEvent::PasswordChecked {
                    agent: host,
                    host: req.host,
                    user: req.user,
                    outcome,
                });
                let record = AuditEvent::Authenticate {
                    user: req.user,
                    host: req.host,
                    outcome,
                };
                if let Err(busy) = self.audit(caller, now, record) {
                    return busy;
                }
                // The detail of a failure went to the events (the log): the agent gets one
                // answer. A password's age is told only after it verified.
                snapshot.authenticate_answer(req.user, outcome, at)
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

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_common::identity::Lookup;
    use gatehouse_common::policy::{hash_password, Database, HashCost, Host, UnixAccount, User};
    use gatehouse_common::types::{AuthFailure, Method};
    use gatehouse_common::wire::{AuthenticateRequest, AuthorizeRequest};
    use parking_lot::Mutex;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// Keeps every event as text.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<String>>);

    impl AuthEvents for Recorded {
        fn record(&self, event: &AuthEvent<'_>) {
            self.0.lock().push(format!("{event:?}"));
        }
    }

    fn handler() -> (PolicyHandler, Arc<Recorded>) {
        let host = |name: &str, key: u8, proxy| Host {
            name: name.into(),
            addresses: Vec::new(),
            node_key: hex(key),
            groups: Vec::new(),
            may_ask_for_others: proxy,
        };
        let db = Database {
            hosts: vec![
                host("web1", 1, false),
                host("db1", 2, false),
                host("jump1", 3, true),
            ],
            users: vec![User {
                name: "root".into(),
                password_hash: hash_password("pw", &mut StdRng::seed_from_u64(1), HashCost::Fast)
                    .unwrap(),
                locked: false,
                classes: Vec::new(),
                routes: Vec::new(),
                unix: Some(UnixAccount {
                    uid: 100_001,
                    gid: 100_001,
                    gecos: String::new(),
                    home: "/root".into(),
                    shell: "/bin/sh".into(),
                }),
            }],
            ..Database::default()
        };
        let snapshot = PolicySnapshot::compile(&db).unwrap();
        let events = Arc::new(Recorded::default());
        let policy = Arc::new(ArcSwap::from_pointee(snapshot));
        (PolicyHandler::with_events(policy, events.clone()), events)
    }

    fn caller(host: &str) -> Caller<'_> {
        Caller {
            host,
            address: "10.0.0.7:40112".parse().unwrap(),
        }
    }

    fn hex(byte: u8) -> String {
        format!("{byte:02x}").repeat(32)
    }

    fn authenticate(host: &str) -> Request {
        Request::Authenticate(AuthenticateRequest {
            user: "root".into(),
            password: "pw".into(),
            host: host.into(),
        })
    }

    fn authorize(to_host: &str) -> Request {
        Request::Authorize(AuthorizeRequest {
            method: Method::Ssh,
            from_host: "10.0.0.1".into(),
            from_user: "root".into(),
            to_user: "root".into(),
            to_host: to_host.into(),
        })
    }

    #[test]
    fn a_host_asks_only_about_itself_and_refusals_are_reported_with_both_hosts() {
        let (handler, events) = handler();
        let now = SystemTime::now();
        let ask =
            |agent: &str, request: Request| handler.handle(caller(agent), request.view(), now);
        assert_eq!(ask("db1", authenticate("db1")), Response::AuthOk);
        assert_eq!(ask("web1", authenticate("db1")), Response::AuthFail);
        let unknown = Response::Deny {
            reason: DenyReason::UnknownHost,
        };
        assert_eq!(ask("web1", authorize("db1")), unknown);
        // A jump host may ask for others.
        assert_eq!(ask("jump1", authenticate("db1")), Response::AuthOk);
        let no_route = Response::Deny {
            reason: DenyReason::NoMatchingRoute,
        };
        assert_eq!(ask("jump1", authorize("db1")), no_route);
        assert_eq!(
            *events.0.lock(),
            [
                "PasswordChecked { agent: \"db1\", host: \"db1\", user: \"root\", outcome: Ok(()) }",
                "ForeignHost { agent: \"web1\", host: \"db1\", asked: Authenticate }",
                "ForeignHost { agent: \"web1\", host: \"db1\", asked: Authorize }",
                "PasswordChecked { agent: \"jump1\", host: \"db1\", user: \"root\", outcome: Ok(()) }",
            ]
        );
    }

    #[test]
    fn identity_lookups_are_cheap_name_no_host_and_are_no_password_check() {
        let (handler, events) = handler();
        let now = SystemTime::now();
        let lookups = [
            Lookup::UserByName("root".into()),
            Lookup::UserByUid(100_001),
            Lookup::GroupsOfUser("root".into()),
        ];
        for lookup in lookups {
            let request = Request::Lookup(lookup);
            assert!(handler.is_cheap(request.view()));
            assert!(!handler.is_password_check(request.view()));
            // Any registered host may look up any identity (NSS on every host shows the
            // fleet's users); no host is named, so none is refused as foreign.
            for agent in ["web1", "db1"] {
                let answer = handler.handle(caller(agent), request.view(), now);
                assert_ne!(answer, Response::NotFound, "{request:?} from {agent}");
            }
        }
        assert!(events.0.lock().is_empty(), "{:?}", events.0.lock());
        assert!(handler.is_password_check(authenticate("web1").view()));
        assert!(!handler.is_password_check(authorize("web1").view()));
    }

    #[test]
    fn every_failed_password_is_one_answer_and_the_detail_goes_to_the_events() {
        let (handler, events) = handler();
        let now = SystemTime::now();
        let with = |user: &str, password: &str| {
            let request = Request::Authenticate(AuthenticateRequest {
                user: user.into(),
                password: password.into(),
                host: "web1".into(),
            });
            handler.handle(caller("web1"), request.view(), now)
        };
        assert_eq!(with("root", "wrong"), Response::AuthFail);
        assert_eq!(with("ghost", "pw"), Response::AuthFail);
        let events = events.0.lock();
        let reason = |failure: AuthFailure| format!("outcome: Err({failure:?})");
        assert!(
            events[0].contains(&reason(AuthFailure::BadPassword)),
            "{events:?}"
        );
        assert!(
            events[1].contains(&reason(AuthFailure::UnknownUser)),
            "{events:?}"
        );
    }
}
