//! Staggered connection attempts in the style of RFC 8305 ("Happy Eyeballs"): start with the
//! first server; if it has not connected after the attempt delay, start the next one in
//! parallel; a failure starts the next one at once; the first to connect wins.
//!
//! Pure scheduler: `now` is an argument, the caller owns the sockets. The caller loops on
//! [`ConnectPlan::next_action`] until it says to wait, then polls its sockets until that
//! instant, reporting [`ConnectPlan::attempt_failed`] / [`ConnectPlan::attempt_connected`].
//! Called by the agent's request path with the order from `balance::order_candidates`.
//! Every attempt's timeout is capped by the request deadline, so the plan never outlives it.

use crate::budget::Deadline;
use std::time::{Duration, Instant};

/// Delay before starting the next attempt while earlier ones are still pending (250 ms, the
/// "Connection Attempt Delay" RFC 8305 §5 recommends). Why: on a LAN a healthy server accepts
/// in well under a millisecond, so 250 ms without an answer means a lost SYN or a stalled
/// host; waiting longer stalls the login, starting sooner doubles load for nothing.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Lower bound on the attempt delay (100 ms, RFC 8305 §5 "MUST NOT be less than 10 ms" and
/// recommends at least 100 ms). Why: below this, normal jitter starts duplicate connections.
pub const MIN_ATTEMPT_DELAY: Duration = Duration::from_millis(100);

/// Upper bound on the attempt delay (2 s, RFC 8305 §5 "SHOULD NOT be greater than 2 s").
/// Why: longer and a lost SYN stalls the login for longer than the fallback would take.
pub const MAX_ATTEMPT_DELAY: Duration = Duration::from_secs(2);

/// Why an attempt must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbandonReason {
    /// Its own connect timeout ran out.
    TimedOut,
    /// Another attempt connected first.
    Superseded,
    /// The request deadline ran out.
    DeadlineExpired,
}

/// Why the plan ended without a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// Every server was tried and failed or timed out.
    AllFailed,
    /// The request deadline ran out.
    DeadlineExpired,
}

/// What the caller should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start connecting to `server` (attempt number `attempt`) with this timeout.
    Start {
        attempt: usize,
        server: usize,
        timeout: Duration,
    },
    /// Close this attempt's socket (then ask again).
    Abandon {
        attempt: usize,
        server: usize,
        reason: AbandonReason,
    },
    /// Nothing to do before this instant unless a socket reports.
    WaitUntil(Instant),
    /// Attempt `attempt` connected; use it. Every other attempt has been abandoned.
    Connected { attempt: usize, server: usize },
    /// No connection will come of this plan.
    GiveUp(GiveUpReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Connecting { timeout_at: Instant },
    Failed,
    Abandoned,
    Connected,
}

/// The schedule of connection attempts for one request.
#[derive(Debug, Clone)]
pub struct ConnectPlan {
    servers: Vec<usize>,
    states: Vec<State>,
    /// Index of the next attempt to start.
    next: usize,
    last_start: Option<Instant>,
    /// Failures not yet answered by an immediate start.
    immediate: usize,
    attempt_delay: Duration,
    connect_timeout: Duration,
    deadline: Deadline,
    connected: Option<usize>,
}

impl ConnectPlan {
    /// A plan over `servers` in the order to try them. `attempt_delay` is clamped to
    /// `MIN_ATTEMPT_DELAY..=MAX_ATTEMPT_DELAY`; each attempt's `connect_timeout` is capped by
    /// `deadline` when it starts.
    pub fn new(
        servers: Vec<usize>,
        attempt_delay: Duration,
        connect_timeout: Duration,
        deadline: Deadline,
    ) -> Self {
        let states = vec![State::Pending; servers.len()];
        ConnectPlan {
            servers,
            states,
            next: 0,
            last_start: None,
            immediate: 0,
            attempt_delay: attempt_delay.clamp(MIN_ATTEMPT_DELAY, MAX_ATTEMPT_DELAY),
            connect_timeout,
            deadline,
            connected: None,
        }
    }

    /// The server attempt `attempt` goes to.
    pub fn server_of(&self, attempt: usize) -> Option<usize> {
        self.servers.get(attempt).copied()
    }

    /// The next step at `now`. Call repeatedly until it returns `WaitUntil`, `Connected` or
    /// `GiveUp`.
    pub fn next_action(&mut self, now: Instant) -> Action {
        if let Some(winner) = self.connected {
            if let Some(a) = self.abandon_first(|_| true, AbandonReason::Superseded) {
                return a;
            }
            let server = self.servers.get(winner).copied().unwrap_or(usize::MAX);
            return Action::Connected {
                attempt: winner,
                server,
            };
        }
        if self.deadline.expired(now) {
            if let Some(a) = self.abandon_first(|_| true, AbandonReason::DeadlineExpired) {
                return a;
            }
            return Action::GiveUp(GiveUpReason::DeadlineExpired);
        }
        if let Some(a) = self.abandon_first(|t| t <= now, AbandonReason::TimedOut) {
            // A timed-out attempt counts as a failure: the next one may start at once.
            self.immediate += 1;
            return a;
        }
        let in_flight = self.in_flight();
        if let Some(&server) = self.servers.get(self.next) {
            let delay_passed = self
                .last_start
                .is_none_or(|t| now >= t + self.attempt_delay);
            if in_flight == 0 || self.immediate > 0 || delay_passed {
                let attempt = self.next;
                let timeout = self.deadline.cap(self.connect_timeout, now);
                if let Some(state) = self.states.get_mut(attempt) {
                    *state = State::Connecting {
                        timeout_at: now + timeout,
                    };
                }
                self.next += 1;
                self.last_start = Some(now);
                self.immediate = self.immediate.saturating_sub(1);
                return Action::Start {
                    attempt,
                    server,
                    timeout,
                };
            }
        } else if in_flight == 0 {
            return Action::GiveUp(GiveUpReason::AllFailed);
        }
        // Wake for the earliest of: an attempt's timeout, the next stagger, the deadline.
        let mut wake = self.deadline.at();
        for state in &self.states {
            if let State::Connecting { timeout_at } = state {
                wake = wake.min(*timeout_at);
            }
        }
        if let (Some(t), true) = (self.last_start, self.next < self.servers.len()) {
            wake = wake.min(t + self.attempt_delay);
        }
        Action::WaitUntil(wake)
    }

    /// Attempt `attempt` failed (refused, reset, unreachable): the next one starts at once.
    /// Returns false (and changes nothing) when that attempt was not connecting.
    pub fn attempt_failed(&mut self, attempt: usize) -> bool {
        match self.states.get_mut(attempt) {
            Some(state @ State::Connecting { .. }) => {
                *state = State::Failed;
                self.immediate += 1;
                true
            }
            _ => false,
        }
    }

    /// Attempt `attempt` connected. Returns false when it was not connecting or another
    /// attempt already won; the caller then closes this socket.
    pub fn attempt_connected(&mut self, attempt: usize) -> bool {
        if self.connected.is_some() {
            return false;
        }
        match self.states.get_mut(attempt) {
            Some(state @ State::Connecting { .. }) => {
                *state = State::Connected;
                self.connected = Some(attempt);
                true
            }
            _ => false,
        }
    }

    /// Servers not yet attempted, in order.
    pub fn untried(&self) -> &[usize] {
        self.servers.get(self.next..).unwrap_or(&[])
    }

    /// The effective (clamped) attempt delay.
    pub fn attempt_delay(&self) -> Duration {
        self.attempt_delay
    }

    fn in_flight(&self) -> usize {
        self.states
            .iter()
            .filter(|s| matches!(s, State::Connecting { .. }))
            .count()
    }

    /// Marks the first connecting attempt whose timeout satisfies `pick` abandoned.
    fn abandon_first(
        &mut self,
        pick: impl Fn(Instant) -> bool,
        reason: AbandonReason,
    ) -> Option<Action> {
        let (attempt, state) =
            self.states.iter_mut().enumerate().find(
                |(_, s)| matches!(s, State::Connecting { timeout_at } if pick(*timeout_at)),
            )?;
        *state = State::Abandoned;
        let server = self.servers.get(attempt).copied().unwrap_or(usize::MAX);
        Some(Action::Abandon {
            attempt,
            server,
            reason,
        })
    }
}

#[cfg(test)]
#[path = "connect_plan_tests.rs"]
mod tests;
