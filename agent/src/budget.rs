//! The per-request deadline budget: one instant by which a request must be answered, that
//! bounds every probe, connect, redirect and retry made for it.
//!
//! Pure: `now` is an argument. Called by every wait in the agent: a timeout is always passed
//! through [`Deadline::cap`] first, so no chain of timeouts can stack past the deadline.

use std::time::{Duration, Instant};

/// The longest budget a request may be given (60 s). Why: the PAM caller (sshd's login grace
/// time defaults to 120 s) must get an answer well before it gives up itself; anything longer
/// is a misconfiguration. Longer budgets are clamped to this.
pub const MAX_REQUEST_DEADLINE: Duration = gatehouse_local::MAX_AGENT_DEADLINE;

// Every local caller (PAM, NSS, CLI) waits longer than any request deadline, so the agent's
// own failover always ends before its caller gives up.
const _: () = assert!(gatehouse_local::CALLER_TIMEOUT.as_secs() > MAX_REQUEST_DEADLINE.as_secs());

/// The instant a request must be finished by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// A deadline `budget` after `now`, the budget clamped to `MAX_REQUEST_DEADLINE`.
    pub fn after(now: Instant, budget: Duration) -> Self {
        let budget = budget.min(MAX_REQUEST_DEADLINE);
        // Cannot overflow for a budget of at most a minute; if the platform's Instant could
        // not represent it, fail closed with an already-expired deadline.
        let at = now.checked_add(budget).unwrap_or(now);
        Deadline { at }
    }

    /// A deadline at exactly `at`.
    pub fn at_instant(at: Instant) -> Self {
        Deadline { at }
    }

    /// The instant itself.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// Time left; zero once expired.
    pub fn remaining(&self, now: Instant) -> Duration {
        self.at.saturating_duration_since(now)
    }

    /// `min(timeout, remaining)`: the timeout to actually use for a wait starting at `now`.
    pub fn cap(&self, timeout: Duration, now: Instant) -> Duration {
        timeout.min(self.remaining(now))
    }

    /// `min(t, deadline)` for a wait expressed as an instant.
    pub fn cap_instant(&self, t: Instant) -> Instant {
        t.min(self.at)
    }

    /// Whether the deadline has been reached (`now >= at`).
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn remaining_counts_down_to_zero_and_stays_there() {
        let t0 = Instant::now();
        let d = Deadline::after(t0, 5000 * MS);
        assert_eq!(d.remaining(t0), 5000 * MS);
        assert_eq!(d.remaining(t0 + 4900 * MS), 100 * MS);
        assert_eq!(d.remaining(t0 + 5000 * MS), Duration::ZERO);
        assert_eq!(d.remaining(t0 + 9000 * MS), Duration::ZERO);
        // An earlier `now` (a caller's stale clock reading) gives the full distance.
        assert_eq!(d.remaining(t0), d.at() - t0);
    }

    #[test]
    fn cap_never_lets_a_timeout_run_past_the_deadline() {
        let t0 = Instant::now();
        let d = Deadline::after(t0, 5000 * MS);
        assert_eq!(d.cap(1000 * MS, t0), 1000 * MS);
        assert_eq!(d.cap(1000 * MS, t0 + 4500 * MS), 500 * MS);
        assert_eq!(d.cap(1000 * MS, t0 + 6000 * MS), Duration::ZERO);
        // Chained waits: each capped, their sum never exceeds the budget.
        let mut now = t0;
        let mut total = Duration::ZERO;
        for _ in 0..10 {
            let wait = d.cap(800 * MS, now);
            total += wait;
            now += wait;
        }
        assert_eq!(total, 5000 * MS);
        assert_eq!(d.cap_instant(t0 + 9000 * MS), t0 + 5000 * MS);
        assert_eq!(d.cap_instant(t0 + 10 * MS), t0 + 10 * MS);
    }

    #[test]
    fn expired_exactly_at_the_deadline() {
        let t0 = Instant::now();
        let d = Deadline::after(t0, 150 * MS);
        assert!(!d.expired(t0 + 149 * MS));
        assert!(d.expired(t0 + 150 * MS));
        assert!(Deadline::after(t0, Duration::ZERO).expired(t0));
    }

    #[test]
    fn a_huge_budget_is_clamped() {
        let t0 = Instant::now();
        let d = Deadline::after(t0, Duration::MAX);
        assert_eq!(d.remaining(t0), MAX_REQUEST_DEADLINE);
    }
}
