//! What the daemon does around the engine for logins: who may ask what, identity answers from
//! the cache, remembering answers, and answering from the cache when no server is reachable.
//!
//! Not pure: it owns the cache (SQLite) and the verifier thread; time comes in as `now_ms`
//! (Unix milliseconds, since the cache outlives the process). Called by `daemon::serve`:
//! [`Login::before`] for each request, [`Login::after`] for each engine outcome, and
//! [`Login::verified`] for each verifier-thread result.

use super::answer::outcome_response;
use crate::engine::{AgentError, Outcome};
use crate::offline::cache::{Cache, Table};
use crate::offline::config::{CacheConfig, OfflineConfig};
use crate::offline::verifier::VerifierKey;
use crate::offline::worker::{Done, Job, Worker};
use crate::offline::{
    as_offline, decision_usable, identity_is_fresh, offline_source, verifier_usable,
};
use gatehouse_common::types::AuthFailure;
use gatehouse_common::wire::Request;
use gatehouse_local::codec::encode_request;
use gatehouse_local::{LocalErrorKind, LocalRequest, LocalResponse, OfflineReport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What the daemon remembers about a request sent to the engine.
#[derive(Debug, Clone)]
pub enum Pending {
    /// An identity lookup, with its cache key.
    Lookup(Vec<u8>),
    /// An authorize, with its cache key.
    Authorize(Vec<u8>),
    Authenticate,
}

/// What to do with a request.
pub enum Before {
    /// Answer at once.
    Answer(LocalResponse),
    /// Send it to the servers.
    Submit(Pending),
}

/// What to do after an outcome.
pub enum After {
    Answer(LocalResponse),
    /// The verifier thread is checking the password offline; the answer comes later.
    Wait,
}

/// See the module header.
pub struct Login {
    cache: Option<Cache>,
    worker: Option<Worker>,
    cache_config: CacheConfig,
    offline: OfflineConfig,
    trusted_uids: Vec<u32>,
    report: OfflineReport,
    /// When the last offline answer was given (ms), for the report's age.
    last_at_ms: u64,
}

impl Login {
    /// Opens the cache and starts the verifier thread. A cache that cannot be opened is logged
    /// and done without (every answer then comes from the servers).
    pub fn new(
        config: &crate::config::AgentConfig,
        state_dir: &std::path::Path,
        key: VerifierKey,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Login {
        let cache = Cache::open(state_dir)
            .inspect_err(|e| log::error!("no cache, no offline answers: {e}"))
            .ok();
        let worker = Worker::start(key, wake)
            .inspect_err(|e| log::error!("no verifier thread, no offline passwords: {e}"))
            .ok();
        let offline = config.offline.clone();
        Login {
            cache,
            worker,
            cache_config: config.cache.clone(),
            trusted_uids: config.trusted_uids.clone(),
            report: OfflineReport {
                identities: offline.identities,
                authorize_max_age_s: offline.authorize_max_age_s,
                passwords: offline.passwords,
                ..OfflineReport::default()
            },
            offline,
            last_at_ms: 0,
        }
    }

    /// Whether a caller with `uid` may ask `request`: identity lookups are open to every uid
    /// (NSS runs in every process); authorize, authenticate and status only to the trusted
    /// uids.
    pub fn permitted(&self, request: &LocalRequest, uid: Option<u32>) -> bool {
        matches!(request, LocalRequest::Lookup(_))
            || uid.is_some_and(|uid| self.trusted_uids.contains(&uid))
    }

    /// A fresh cached identity, or what to remember while the servers are asked.
    pub fn before(&self, request: &LocalRequest, now_ms: u64) -> Before {
        let key = encode_request(request).unwrap_or_default();
        match request {
            LocalRequest::Lookup(_) => {
                let cached = self
                    .cache
                    .as_ref()
                    .and_then(|c| c.get(Table::Identities, &key, now_ms));
                match cached {
                    Some((answer, age)) if identity_is_fresh(&answer, age, &self.cache_config) => {
                        Before::Answer(answer)
                    }
                    _ => Before::Submit(Pending::Lookup(key)),
                }
            }
            LocalRequest::Authorize { .. } => Before::Submit(Pending::Authorize(key)),
            _ => Before::Submit(Pending::Authenticate),
        }
    }

    /// The answer to an outcome: remembered when a server gave it, taken from the cache when
    /// no server was reachable and the config allows it.
    pub fn after(
        &mut self,
        pending: Pending,
        outcome: &Outcome,
        servers: &[SocketAddr],
        tag: (usize, u64),
        now_ms: u64,
    ) -> After {
        let answer = outcome_response(outcome, servers);
        let unreachable = matches!(outcome.result, Err(AgentError::NoServerReachable));
        match pending {
            Pending::Lookup(key) => {
                if let Some(cache) = self.cache.as_mut() {
                    if is_identity(&answer) {
                        cache.put(Table::Identities, &key, &answer, now_ms);
                    } else if unreachable && self.offline.identities {
                        if let Some((cached, age)) = cache.get(Table::Identities, &key, now_ms) {
                            self.count(now_ms, "identity", age);
                            return After::Answer(cached);
                        }
                    }
                }
                After::Answer(answer)
            }
            Pending::Authorize(key) => {
                let decided = matches!(
                    answer,
                    LocalResponse::Allow { .. } | LocalResponse::Deny { .. }
                );
                if let Some(cache) = self.cache.as_mut() {
                    if decided && self.offline.authorize_max_age_s > 0 {
                        cache.put(Table::Decisions, &key, &answer, now_ms);
                    } else if unreachable {
                        if let Some((cached, age)) = cache.get(Table::Decisions, &key, now_ms) {
                            if decision_usable(age, &self.offline) {
                                self.count(now_ms, "authorize", age);
                                return After::Answer(as_offline(cached, age));
                            }
                        }
                    }
                }
                After::Answer(answer)
            }
            Pending::Authenticate => self.after_authenticate(answer, outcome, tag, now_ms),
        }
    }

    fn after_authenticate(
        &mut self,
        answer: LocalResponse,
        outcome: &Outcome,
        tag: (usize, u64),
        now_ms: u64,
    ) -> After {
        let Some(Request::Authenticate(request)) = &outcome.request else {
            return After::Answer(answer);
        };
        let user = request.user.clone();
        match (&answer, self.cache.as_mut(), &self.worker) {
            (LocalResponse::AuthOk { .. }, Some(_), Some(worker)) if self.offline.passwords => {
                let job = Job::Make {
                    user,
                    password: request.password.clone(),
                    now_ms,
                };
                if !worker.submit(job) {
                    log::warn!("verifier thread busy: no offline verifier made this time");
                }
            }
            // The account is locked or gone: its verifier must not let it in offline.
            (
                LocalResponse::AuthFail {
                    reason: AuthFailure::Locked | AuthFailure::UnknownUser,
                    ..
                },
                Some(cache),
                _,
            ) => {
                cache.remove(Table::Verifiers, user.as_bytes());
            }
            (LocalResponse::Error { .. }, Some(cache), Some(worker))
                if matches!(outcome.result, Err(AgentError::NoServerReachable)) =>
            {
                if let Some((verifier, age_ms)) = cache.verifier(&user, now_ms) {
                    if verifier_usable(age_ms, &self.offline) {
                        let job = Job::Check {
                            tag,
                            user,
                            password: request.password.clone(),
                            verifier,
                            age_ms,
                        };
                        if worker.submit(job) {
                            return After::Wait;
                        }
                    }
                }
            }
            _ => {}
        }
        After::Answer(answer)
    }

    /// A verifier-thread result: `Some((tag, answer, delay))` for a caller waiting on an
    /// offline check (a wrong password is answered after the failure delay).
    pub fn verified(
        &mut self,
        done: Done,
        now_ms: u64,
    ) -> Option<((usize, u64), LocalResponse, Duration)> {
        match done {
            Done::Made {
                user,
                verifier,
                now_ms: at,
            } => {
                if let Some(cache) = self.cache.as_mut() {
                    cache.put_verifier(&user, &verifier, at);
                }
                None
            }
            Done::Checked {
                tag,
                user,
                matches,
                age_ms,
            } => {
                self.count(now_ms, "authenticate", age_ms);
                let server = offline_source(age_ms);
                if matches {
                    log::warn!("offline: password of `{user}` accepted from its verifier");
                    Some((tag, LocalResponse::AuthOk { server }, Duration::ZERO))
                } else {
                    log::warn!("offline: wrong password for `{user}`");
                    let answer = LocalResponse::AuthFail {
                        reason: AuthFailure::BadPassword,
                        server,
                    };
                    Some((
                        tag,
                        answer,
                        Duration::from_millis(self.offline.failure_delay_ms),
                    ))
                }
            }
        }
    }

    /// The next verifier-thread result, if any.
    pub fn next_done(&self) -> Option<Done> {
        self.worker.as_ref().and_then(Worker::next_done)
    }

    /// The offline part of `gatehouse-agent status`.
    pub fn report(&self, now_ms: u64) -> OfflineReport {
        let mut report = self.report.clone();
        if let Some((what, _)) = &report.last {
            report.last = Some((what.clone(), now_ms.saturating_sub(self.last_at_ms)));
        }
        if let Some(cache) = &self.cache {
            report.cached_identities = cache.len(Table::Identities);
            report.cached_decisions = cache.len(Table::Decisions);
            report.cached_verifiers = cache.len(Table::Verifiers);
        }
        report
    }

    /// Counts and logs an offline answer.
    fn count(&mut self, now_ms: u64, kind: &str, age_ms: u64) {
        match kind {
            "identity" => self.report.identity_answers += 1,
            "authorize" => self.report.authorize_answers += 1,
            _ => self.report.authenticate_answers += 1,
        }
        let line = format!("{kind} from {}", offline_source(age_ms));
        log::warn!("offline answer (no server reachable): {line}");
        self.report.last = Some((line, 0));
        self.last_at_ms = now_ms;
    }
}

fn is_identity(answer: &LocalResponse) -> bool {
    matches!(
        answer,
        LocalResponse::User(_)
            | LocalResponse::Group(_)
            | LocalResponse::Groups(_)
            | LocalResponse::NotFound
    )
}

/// The refusal for a caller whose uid may not ask this.
pub fn not_permitted(uid: Option<u32>) -> LocalResponse {
    let who = uid.map_or("an unknown uid".to_string(), |u| format!("uid {u}"));
    LocalResponse::error(
        LocalErrorKind::NotPermitted,
        format!("{who} may only look up identities here (see trusted_uids)"),
    )
}
