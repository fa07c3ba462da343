//! The central lockout's decision: failed passwords counted per user in a sliding window, and
//! a lock when a user reaches the policy's count (FreeIPA's defaults: 6 failures within 60 s
//! lock for 10 minutes).
//!
//! Pure: `now` and each failure's time are arguments; the user's current lockout comes from
//! the caller's policy snapshot. Driven by `lockout::Lockout` on the master, for failures its
//! own bridge saw and those replicas report.
//!
//! What counts: a wrong password (`BadPassword`) for a user who is not locked out at `now`,
//! seen within the window before `now` (a report delayed by a partition counts only if it is
//! still in the window when it arrives; a time ahead of the master's clock is taken as now).
//! Every check a server performed counts, a retried or re-sent one too: telling a retry from a
//! new guess would need an id the client chooses, which a guesser would reuse to guess for
//! free. Unknown users are never tracked (their names are the guesser's to choose); failures
//! while locked out do not extend the lockout.

use gatehouse_common::policy::PolicyTime;
use gatehouse_common::types::AuthFailure;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Failures that lock (6), FreeIPA's default (`krbPwdMaxFailure`).
pub const DEFAULT_FAILURES: u32 = 6;
/// The window they are counted in (60 s), FreeIPA's `krbPwdFailureCountInterval`.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// How long a lockout lasts (10 min), FreeIPA's `krbPwdLockoutDuration`.
pub const DEFAULT_LOCK_FOR: Duration = Duration::from_secs(600);
/// Largest failure count a policy may set (1000): the tracker keeps up to that many times
/// per user, so it bounds memory per user (about 64 KiB at worst).
pub const MAX_FAILURES: u32 = 1000;
/// Records between two sweeps of users with nothing left in their window (1024): keeps the
/// map to the users failing now, at a cost spread over the records.
const SWEEP_EVERY: u32 = 1024;

/// How many failures within which window lock a user, and for how long. `failures` 0: never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub failures: u32,
    pub window: Duration,
    pub lock_for: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            failures: DEFAULT_FAILURES,
            window: DEFAULT_WINDOW,
            lock_for: DEFAULT_LOCK_FOR,
        }
    }
}

/// One failed password check, as a server saw it.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub user: &'a str,
    /// The agent's (proven) host: where the guess came from.
    pub agent: &'a str,
    /// The server that checked it: a replica's host name, or `master`.
    pub server: &'a str,
    pub reason: AuthFailure,
    pub at_unix_ms: u64,
}

/// A counted failure, kept for the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub at_unix_ms: u64,
    pub agent: String,
    pub server: String,
}

/// What [`FailureTracker::record`] made of a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not counted: not a wrong password, lockout off, already locked out, or too old.
    Ignored,
    /// Counted: the user now has this many failures in the window.
    Counted(u32),
    /// The user reached the count: lock it out until `until`. `failures` are the ones that
    /// did it (for the log: which hosts, through which servers); the count starts afresh.
    Lock {
        until: PolicyTime,
        failures: Vec<Seen>,
    },
}

#[derive(Debug, Default)]
struct UserFailures {
    /// The window of the policy last applied (for sweeping).
    window: Duration,
    seen: VecDeque<Seen>,
}

/// Failures per user within their window. See the module docs.
#[derive(Debug, Default)]
pub struct FailureTracker {
    users: HashMap<String, UserFailures>,
    since_sweep: u32,
}

impl FailureTracker {
    /// Counts `failure` under `policy` at `now_unix_ms`; `locked_out_until` is the user's
    /// lockout in the current database, if any.
    pub fn record(
        &mut self,
        failure: &Failure<'_>,
        policy: &LockoutPolicy,
        locked_out_until: Option<PolicyTime>,
        now_unix_ms: u64,
    ) -> Verdict {
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY {
            self.since_sweep = 0;
            self.sweep(now_unix_ms);
        }
        let now_secs = PolicyTime::from_unix(secs(now_unix_ms));
        let window_ms = millis(policy.window);
        let at = failure.at_unix_ms.min(now_unix_ms);
        let stale = at.saturating_add(window_ms) <= now_unix_ms;
        if failure.reason != AuthFailure::BadPassword
            || policy.failures == 0
            || locked_out_until.is_some_and(|until| now_secs < until)
            || stale
        {
            return Verdict::Ignored;
        }
        let entry = self.users.entry(failure.user.to_string()).or_default();
        entry.window = policy.window;
        entry
            .seen
            .retain(|s| s.at_unix_ms.saturating_add(window_ms) > now_unix_ms);
        entry.seen.push_back(Seen {
            at_unix_ms: at,
            agent: failure.agent.to_string(),
            server: failure.server.to_string(),
        });
        let count = entry.seen.len() as u32;
        if count < policy.failures {
            return Verdict::Counted(count);
        }
        let failures = std::mem::take(&mut entry.seen).into();
        self.users.remove(failure.user);
        // Rounded up to the second: a lockout lasts at least `lock_for`.
        let until_ms = now_unix_ms.saturating_add(millis(policy.lock_for));
        Verdict::Lock {
            until: PolicyTime::from_unix(secs(until_ms.saturating_add(999))),
            failures,
        }
    }

    /// Forgets `user`'s failures (an admin unlocked it).
    pub fn forget(&mut self, user: &str) {
        self.users.remove(user);
    }

    /// Every user with failures in its window at `now_unix_ms`, with them, by name.
    pub fn recent(&self, now_unix_ms: u64) -> Vec<(String, Vec<Seen>)> {
        let mut recent: Vec<(String, Vec<Seen>)> = self
            .users
            .iter()
            .map(|(user, f)| {
                let window_ms = millis(f.window);
                let seen = f
                    .seen
                    .iter()
                    .filter(|s| s.at_unix_ms.saturating_add(window_ms) > now_unix_ms);
                (user.clone(), seen.cloned().collect::<Vec<_>>())
            })
            .filter(|(_, seen)| !seen.is_empty())
            .collect();
        recent.sort_by(|a, b| a.0.cmp(&b.0));
        recent
    }

    /// Users tracked (for tests and status).
    pub fn users(&self) -> usize {
        self.users.len()
    }

    fn sweep(&mut self, now_unix_ms: u64) {
        self.users.retain(|_, f| {
            let window_ms = millis(f.window);
            f.seen
                .iter()
                .any(|s| s.at_unix_ms.saturating_add(window_ms) > now_unix_ms)
        });
    }
}

/// Where failures came from, for a log line: `web1 x4 via r1,r2; web2 x2 via master`.
pub fn sources(failures: &[Seen]) -> String {
    let mut by_agent: Vec<(&str, u32, Vec<&str>)> = Vec::new();
    for seen in failures {
        let at = match by_agent.iter().position(|(a, ..)| *a == seen.agent) {
            Some(i) => i,
            None => {
                by_agent.push((&seen.agent, 0, Vec::new()));
                by_agent.len() - 1
            }
        };
        let (_, count, servers) = &mut by_agent[at];
        *count += 1;
        if !servers.contains(&seen.server.as_str()) {
            servers.push(&seen.server);
        }
    }
    by_agent
        .iter()
        .map(|(agent, count, servers)| format!("{agent} x{count} via {}", servers.join(",")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn secs(unix_ms: u64) -> i64 {
    i64::try_from(unix_ms / 1000).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
