//! The central lockout on the master (docs/SECURITY.md, "Password checks"): every failed
//! password check for a known user — seen by the master's own bridge ([`MasterEvents`]) or
//! reported by a replica over its replication link ([`Lockout::receive_report`]) — is counted
//! per user by the pure [`tracker`]; when a user reaches its policy's count the lockout is
//! committed as a change (`SetLockout`, with its end time) by the applier thread
//! ([`spawn_applier`]) and so replicated: every server then refuses that user's password checks
//! until that time, comparing it with its own clock, with no further message. An expired
//! lockout needs no removal; `gatehouse-admin user unlock` clears one early.
//!
//! Not pure: shared state behind a mutex (held for microseconds: counting only), a condition
//! variable waking the applier, the log. Called by the master's bridge workers, its
//! replication loop and its admin threads.

pub mod config;
pub mod tracker;

use crate::audit::Audit;
use crate::state::MasterState;
use arc_swap::ArcSwap;
use config::LockoutConfig;
use gatehouse_common::audit::{AuditEvent, AuditRecord};
use gatehouse_common::policy::PolicyTime;
use gatehouse_common::policy::{Change, Database, Lockout as LockoutEntry, PolicySnapshot};
use gatehouse_common::repl::{Report, ReportLedger};
use gatehouse_common::service::kv;
use gatehouse_replica::auth_events::{AuthEvent, AuthEvents};
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tracker::{sources, Failure, FailureTracker, Seen, Verdict};

/// How the master names itself as the server that saw a failure (replicas go by host name).
pub const MASTER_SERVER: &str = "master";

/// A lockout decided and not yet committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub user: String,
    pub until: PolicyTime,
    /// The wrong passwords that decided it.
    pub failures: u32,
}

/// See the module docs.
pub struct Lockout {
    config: LockoutConfig,
    policy: Arc<ArcSwap<PolicySnapshot>>,
    inner: Mutex<Inner>,
    decided: Condvar,
}

#[derive(Default)]
struct Inner {
    tracker: FailureTracker,
    ledger: ReportLedger,
    /// At most one per user (a later decision replaces an earlier one).
    pending: Vec<Decided>,
    stats: LockoutStats,
}

/// Counts since start, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LockoutStats {
    /// Failure records received from replicas (each once, however often sent).
    pub reported: u64,
    /// Failures that counted toward a lockout (wrong passwords of users not locked out).
    pub counted: u64,
    /// Lockouts decided.
    pub decided: u64,
}

impl Lockout {
    /// Counts failures under `config`, against the database `policy` publishes.
    pub fn new(config: LockoutConfig, policy: Arc<ArcSwap<PolicySnapshot>>) -> Self {
        Lockout {
            config,
            policy,
            inner: Mutex::new(Inner::default()),
            decided: Condvar::new(),
        }
    }

    pub fn config(&self) -> &LockoutConfig {
        &self.config
    }

    /// Counts one failed password check at `now_unix_ms`.
    pub fn count(&self, failure: &Failure<'_>, now_unix_ms: u64) {
        self.count_in(&mut self.inner.lock(), failure, now_unix_ms);
    }

    /// Counts the fresh records of `replica`'s report (`first..` of `stream`) and returns the
    /// sequence to acknowledge: each record is counted once, however often it is sent.
    pub fn receive_report(
        &self,
        replica: &str,
        stream: u64,
        first: u64,
        records: &[Report],
        now_unix_ms: u64,
    ) -> u64 {
        let mut inner = self.inner.lock();
        let accepted = inner.ledger.accept(replica, stream, first, records.len());
        if accepted.new_stream {
            log::info!("replica {replica} reports in stream {stream:016x} from record {first}");
        }
        if accepted.missing > 0 {
            log::warn!(
                "replica {replica} dropped {} failure reports before record {first} (its queue was full while the master was away): the lockout did not count them",
                accepted.missing
            );
        }
        inner.stats.reported += accepted.fresh.len() as u64;
        for record in &records[accepted.fresh] {
            match record {
                Report::PasswordFailure(f) => {
                    log::debug!(
                        target: "gatehouse::auth",
                        "reported password refused: server={} user={} host={} agent={} reason={}",
                        kv::value(replica),
                        kv::value(&f.user),
                        kv::value(&f.host),
                        kv::value(&f.agent),
                        f.reason.name()
                    );
                    let failure = Failure {
                        user: &f.user,
                        agent: &f.agent,
                        server: replica,
                        reason: f.reason,
                        at_unix_ms: f.at_unix_ms,
                    };
                    self.count_in(&mut inner, &failure, now_unix_ms);
                }
                // The link hands audit streams to the audit store, never here.
                Report::Audit(_) => {}
            }
        }
        accepted.through
    }

    /// Forgets `user`'s counted failures (an admin unlocked it).
    pub fn forget(&self, user: &str) {
        let mut inner = self.inner.lock();
        inner.tracker.forget(user);
        inner.pending.retain(|d| d.user != user);
    }

    /// Users with failures in their window at `now_unix_ms`, with them.
    pub fn recent(&self, now_unix_ms: u64) -> Vec<(String, Vec<Seen>)> {
        self.inner.lock().tracker.recent(now_unix_ms)
    }

    /// Counts since start.
    pub fn stats(&self) -> LockoutStats {
        self.inner.lock().stats
    }

    /// Waits until lockouts are decided, and takes them.
    pub fn wait_decided(&self) -> Vec<Decided> {
        let mut inner = self.inner.lock();
        while inner.pending.is_empty() {
            self.decided.wait(&mut inner);
        }
        std::mem::take(&mut inner.pending)
    }

    fn count_in(&self, inner: &mut Inner, failure: &Failure<'_>, now_unix_ms: u64) {
        let snapshot = self.policy.load();
        // Unknown users are not tracked: their names are the guesser's to choose.
        let Some(standing) = snapshot.user_standing(failure.user) else {
            return;
        };
        let policy = self.config.policy_for(&standing);
        let verdict =
            inner
                .tracker
                .record(failure, &policy, standing.locked_out_until(), now_unix_ms);
        let (until, failures) = match verdict {
            Verdict::Ignored => return,
            Verdict::Counted(_) => {
                inner.stats.counted += 1;
                return;
            }
            Verdict::Lock { until, failures } => (until, failures),
        };
        inner.stats.counted += 1;
        inner.stats.decided += 1;
        // Which hosts the guesses came from, so a host locking users out is seen at once.
        log::warn!(
            target: "gatehouse::auth",
            "user locked out: user={} until={until} failures={} window_s={} sources={}",
            kv::value(failure.user),
            failures.len(),
            policy.window.as_secs(),
            kv::value(&sources(&failures))
        );
        inner.pending.retain(|d| d.user != failure.user);
        inner.pending.push(Decided {
            failures: failures.len() as u32,
            user: failure.user.to_string(),
            until,
        });
        self.decided.notify_one();
    }
}

/// The master's own bridge: counts its failed password checks (wrap it in a `LogThen` to
/// log what the agent is not told, as a replica does).
pub struct MasterEvents {
    lockout: Arc<Lockout>,
}

impl MasterEvents {
    pub fn new(lockout: Arc<Lockout>) -> Self {
        MasterEvents { lockout }
    }
}

impl AuthEvents for MasterEvents {
    fn record(&self, event: &AuthEvent<'_>) {
        if let AuthEvent::PasswordChecked {
            agent,
            user,
            outcome: Err(reason),
            ..
        } = *event
        {
            let failure = Failure {
                user,
                agent,
                server: MASTER_SERVER,
                reason,
                at_unix_ms: unix_ms(SystemTime::now()),
            };
            self.lockout.count(&failure, failure.at_unix_ms);
        }
    }
}

/// The lockouts in `db` that hold at `now` (an expired one stays in the database until
/// cleared, and means nothing).
pub fn active_lockouts(db: &Database, now: PolicyTime) -> impl Iterator<Item = &LockoutEntry> {
    db.lockouts
        .iter()
        .filter(move |l| PolicyTime::parse_utc(&l.until).is_ok_and(|until| now < until))
}

/// Milliseconds since the unix epoch (0 for a clock set before it).
pub fn unix_ms(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Starts the thread that commits decided lockouts (one change each, replicated like any
/// other). A lockout that cannot be committed (the user was removed meanwhile, or writes wait
/// for a replica after a restart and time out) is logged and dropped: the failures that
/// decided it are forgotten, so the next ones count afresh.
pub fn spawn_applier(state: Arc<MasterState>, audit: Option<Arc<Audit>>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("lockout".into())
        .spawn(move || loop {
            for decided in state.lockout().wait_decided() {
                let change = Change::SetLockout {
                    user: decided.user.clone(),
                    until: decided.until.to_string(),
                };
                match state.apply(&change) {
                    Ok(seq) => {
                        log::info!(
                            "lockout of {} until {} committed (sequence {seq})",
                            decided.user,
                            decided.until
                        );
                        if let Some(audit) = &audit {
                            record_lockout(audit, &decided);
                        }
                    }
                    Err(e) => log::warn!("lockout of {} not committed: {e}", decided.user),
                }
            }
        })
        .map(|_| ())
}

/// The lockout in the audit trail, once committed.
fn record_lockout(audit: &Audit, decided: &Decided) {
    let record = AuditRecord {
        at_unix_ms: unix_ms(SystemTime::now()),
        agent: String::new(),
        address: None,
        event: AuditEvent::Lockout {
            user: decided.user.clone(),
            until: decided.until.to_string(),
            failures: decided.failures,
        },
    };
    if let Err(e) = audit.record_local(record) {
        log::error!("audit: cannot record the lockout of {}: {e}", decided.user);
    }
}

#[cfg(test)]
mod tests;
