//! What the daemon does around the engine for logins: identity answers from the cache,
//! remembering answers, and answering from the cache when no server is reachable. (Who may
//! ask what is `daemon::access`.)
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
use gatehouse_common::types::{DenyReason, Method};
use gatehouse_common::wire::{Request, Response};
use gatehouse_local::codec::encode_request;
use gatehouse_local::{LocalRequest, LocalResponse, OfflineReport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// What the daemon remembers about a request sent to the engine.
#[derive(Debug, Clone)]
pub enum Pending {
    /// An identity lookup, with its cache key.
    Lookup(Vec<u8>),
    /// An authorize, with its cache key.
    Authorize(Vec<u8>),
    Authenticate,
    /// A user's own password change, with the user.
    ChangePassword(String),
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

    /// Applies reloaded `cache` and `offline` settings (SIGHUP): the next request uses them.
    pub fn reconfigure(&mut self, cache: &CacheConfig, offline: &OfflineConfig) {
        self.cache_config = cache.clone();
        self.offline = offline.clone();
        self.report.identities = offline.identities;
        self.report.authorize_max_age_s = offline.authorize_max_age_s;
        self.report.passwords = offline.passwords;
    }

    /// A fresh cached identity, or what to remember while the servers are asked.
    pub fn before(&self, request: &LocalRequest, now_ms: u64) -> Before {
        match request {
            LocalRequest::Lookup(_) => {
                let key = cache_key(request);
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
            LocalRequest::Authorize { .. } => {
                Before::Submit(Pending::Authorize(cache_key(request)))
            }
            // Never answered offline: only the master changes a password.
            LocalRequest::ChangePassword { user, .. } => {
                Before::Submit(Pending::ChangePassword(user.clone()))
            }
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
        let unreachable = no_server_answers(outcome);
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
                if let Some(user) = gone_or_locked(outcome) {
                    self.forget_verifier(user, now_ms);
                }
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
            Pending::ChangePassword(user) => {
                // The offline verifier holds the old password: a changed one must not let
                // the old in while the servers are away. The next login online makes a new.
                if matches!(
                    answer,
                    LocalResponse::PasswordChange(gatehouse_local::ChangeOutcome::Changed)
                ) {
                    self.forget_verifier(&user, now_ms);
                }
                After::Answer(answer)
            }
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
        match (&outcome.result, self.cache.as_mut(), &self.worker) {
            // Only a live server's AuthOk makes (or refreshes) a verifier.
            (Ok(Response::AuthOk), Some(_), Some(worker)) if self.offline.passwords => {
                let job = Job::Make {
                    user,
                    password: Zeroizing::new(request.password.clone()),
                    now_ms,
                };
                if !worker.submit(job) {
                    log::warn!("verifier thread busy: no offline verifier made this time");
                }
            }
            // A live server refused this password. Its one answer does not say why (a wrong
            // password, a locked or removed account, a changed password), so the verifier is
            // dropped whatever the reason: none of them may still log in offline. The next
            // online success makes a new one. An expired password is dropped too, and one
            // in its warning period is not cached: offline, neither may outlive its expiry
            // (the cache cannot tell when that comes; docs/SECURITY.md, "Password age").
            (Ok(Response::AuthFail | Response::AuthOkAging(_)), Some(cache), _) => {
                cache.forget_verifier(&user, now_ms);
            }
            (Err(_), Some(cache), Some(worker)) if no_server_answers(outcome) => {
                if let Some((verifier, age_ms)) = cache.verifier(&user, now_ms) {
                    if verifier_usable(age_ms, &self.offline) {
                        let job = Job::Check {
                            tag,
                            user,
                            password: Zeroizing::new(request.password.clone()),
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
                    let answer = LocalResponse::AuthFail { server };
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
            report.cached_verifiers = cache.live_verifiers();
        }
        report
    }

    /// Drops `user`'s offline verifier, if there is one.
    fn forget_verifier(&mut self, user: &str, now_ms: u64) {
        if let Some(cache) = self.cache.as_mut() {
            cache.forget_verifier(user, now_ms);
        }
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

/// Whether the engine gave up because no server could be reached at all (nothing answered,
/// or servers answered probes but refused every TCP connection): the only case in which an
/// offline answer may stand in for a server's.
fn no_server_answers(outcome: &Outcome) -> bool {
    matches!(
        outcome.result,
        Err(AgentError::NoServerReachable | AgentError::NoServerAcceptsConnections)
    )
}

/// The user a live server just said is unknown or locked, in an authorize where that user is
/// the one who logs in (LOGIN and SSH: the to-user, whose password PAM checks). For SU and
/// SUDO the denial is about the invoker, not about the account whose password was checked.
fn gone_or_locked(outcome: &Outcome) -> Option<&str> {
    let (Some(Request::Authorize(request)), Ok(Response::Deny { reason })) =
        (&outcome.request, &outcome.result)
    else {
        return None;
    };
    let logs_in = matches!(request.method, Method::Login | Method::Ssh);
    let gone = matches!(reason, DenyReason::UnknownUser | DenyReason::Locked);
    (logs_in && gone).then_some(request.to_user.as_str())
}

/// The cache key of a lookup or an authorize: its local encoding (never a password's).
fn cache_key(request: &LocalRequest) -> Vec<u8> {
    encode_request(request).map_or_else(|_| Vec::new(), |frame| frame.to_vec())
}
