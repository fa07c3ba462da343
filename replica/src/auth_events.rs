//! What the server learns that the agent is not told: a failed password's detailed reason, and
//! a request refused because its host asked about another host. The handler emits each as an
//! [`AuthEvent`] to an [`AuthEvents`] sink; [`LogEvents`] (the default) writes them to the log
//! with the host, under a line budget. The central lockout plugs in here (a following
//! replica's `reports::ReportingEvents`, the master's `lockout::MasterEvents`, each behind a
//! [`LogThen`]), and the audit trail will: it sees every password check with its outcome, on
//! the server that made it.
//!
//! Not pure: [`LogEvents`] logs and reads the clock for its line budget. Called by the worker
//! threads (password checks) and the reactor thread (refused authorize requests).

use gatehouse_common::service::kv;
use gatehouse_common::types::AuthFailure;
use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// Which kind of request was refused (shared with the audit records).
pub use gatehouse_common::audit::Asked;

/// One event the agent is not told about in detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthEvent<'a> {
    /// A password was checked. `agent` is the host proven by the handshake, `host` the one the
    /// request named (the same unless `agent` may ask for others).
    PasswordChecked {
        agent: &'a str,
        host: &'a str,
        user: &'a str,
        outcome: Result<(), AuthFailure>,
    },
    /// `agent` asked about `host`, which it may not do (it is not marked as allowed to ask for
    /// others); answered like an unknown host (authorize) or a failed password (authenticate).
    ForeignHost {
        agent: &'a str,
        host: &'a str,
        asked: Asked,
    },
}

/// Receives the events. Implementations must be cheap and must not block for long: they run on
/// the worker threads and, for refused authorize requests, on the reactor thread.
pub trait AuthEvents: Send + Sync + 'static {
    fn record(&self, event: &AuthEvent<'_>);
}

/// Log lines [`LogEvents`] writes per [`LOG_BUDGET_PERIOD`]: 100. A stolen key can make a
/// server refuse a hundred thousand requests a second; each refusal must not become a log line
/// (disk and CPU), but the first ones, with host and user, are what an admin needs.
pub const LOG_LINES_PER_PERIOD: u32 = 100;
/// The period of the log budget: 1 s. Lines over the budget are counted and reported in one
/// line when the next period starts.
pub const LOG_BUDGET_PERIOD: Duration = Duration::from_secs(1);

/// Writes events to the log (`gatehouse::auth` target): failures at info, refused cross-host
/// requests at warn, successes at debug; at most [`LOG_LINES_PER_PERIOD`] lines a period.
#[derive(Debug, Default)]
pub struct LogEvents {
    budget: Mutex<LineBudget>,
}

impl AuthEvents for LogEvents {
    fn record(&self, event: &AuthEvent<'_>) {
        let level = match event {
            AuthEvent::PasswordChecked {
                outcome: Ok(()), ..
            } => log::Level::Debug,
            AuthEvent::PasswordChecked { .. } => log::Level::Info,
            AuthEvent::ForeignHost { .. } => log::Level::Warn,
        };
        if !log::log_enabled!(target: "gatehouse::auth", level) {
            return;
        }
        let (write, suppressed) = self.budget.lock().take(Instant::now());
        if suppressed > 0 {
            log::warn!(target: "gatehouse::auth", "{suppressed} authentication log lines suppressed in the last period");
        }
        if !write {
            return;
        }
        match event {
            AuthEvent::PasswordChecked {
                agent,
                host,
                user,
                outcome,
            } => match outcome {
                Ok(()) => log::debug!(
                    target: "gatehouse::auth",
                    "password ok: user={} host={} agent={}",
                    kv::value(user),
                    kv::value(host),
                    kv::value(agent)
                ),
                Err(reason) => log::info!(
                    target: "gatehouse::auth",
                    "password refused: user={} host={} agent={} reason={}",
                    kv::value(user),
                    kv::value(host),
                    kv::value(agent),
                    reason.name()
                ),
            },
            AuthEvent::ForeignHost { agent, host, asked } => log::warn!(
                target: "gatehouse::auth",
                "refused a request about another host: asked={} agent={} host={} (it may ask only about itself; \
                 gatehouse-admin host ask-for-others {agent} yes allows a jump host or proxy)",
                asked.name(),
                kv::value(agent),
                kv::value(host)
            ),
        }
    }
}

/// Logs every event as [`LogEvents`] does, then hands it to `next` (a lockout's sink).
#[derive(Debug, Default)]
pub struct LogThen<E> {
    log: LogEvents,
    next: E,
}

impl<E: AuthEvents> LogThen<E> {
    pub fn new(next: E) -> Self {
        LogThen {
            log: LogEvents::default(),
            next,
        }
    }
}

impl<E: AuthEvents> AuthEvents for LogThen<E> {
    fn record(&self, event: &AuthEvent<'_>) {
        self.log.record(event);
        self.next.record(event);
    }
}

/// A budget of lines (or records) per period: [`LOG_LINES_PER_PERIOD`] per
/// [`LOG_BUDGET_PERIOD`] (pure: the caller passes `now`). Also the audit recorder's budget for
/// refused handshakes.
#[derive(Debug, Default)]
pub(crate) struct LineBudget {
    period_start: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LineBudget {
    /// Whether a line may be written now, and how many were suppressed in the period that
    /// just ended (reported once, when the next period starts).
    pub(crate) fn take(&mut self, now: Instant) -> (bool, u64) {
        let mut reported = 0;
        let expired = self
            .period_start
            .is_none_or(|start| now.saturating_duration_since(start) >= LOG_BUDGET_PERIOD);
        if expired {
            reported = std::mem::take(&mut self.suppressed);
            self.period_start = Some(now);
            self.used = 0;
        }
        if self.used < LOG_LINES_PER_PERIOD {
            self.used += 1;
            (true, reported)
        } else {
            self.suppressed += 1;
            (false, reported)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_writes_a_hundred_lines_a_second_and_reports_the_rest() {
        let mut budget = LineBudget::default();
        let t0 = Instant::now();
        let written = (0..250).filter(|_| budget.take(t0).0).count();
        assert_eq!(written, 100);
        let half = t0 + Duration::from_millis(500);
        assert_eq!(budget.take(half), (false, 0));
        // The next period: the 151 suppressed lines are reported once, and lines flow again.
        let next = t0 + LOG_BUDGET_PERIOD;
        assert_eq!(budget.take(next), (true, 151));
        assert_eq!(budget.take(next), (true, 0));
    }
}
