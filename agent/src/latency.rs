//! What the agent has measured of each server's answers, and the waits derived from it: how
//! long a connection may stay silent before its requests move elsewhere (the response
//! timeout), and when a late authorize is hedged on another server.
//!
//! Pure: samples and `Duration`s in, `Duration`s out; no clock. One [`ServerLatency`] per
//! configured server, kept by the engine for as long as it runs (across connections), fed by
//! every answer (a request's send to its answer, and a handshake's connect to its
//! establishment). Answers to password checks (argon2id, tens of milliseconds, and the only
//! requests that wait in a server's queue) are kept apart from the cheap ones (authorize and
//! handshakes, well under a millisecond on a LAN), so each gets a timeout that fits it.
//!
//! Why a window of recent answers and not a fixed timeout: a fixed 2 s waited out a hung
//! server for 2 s per in-flight request; a server that answers in 1 ms and then says nothing
//! for 100 ms is as good as dead, while one that takes 400 ms per password check under load
//! is merely busy. The kernel gives up on unacknowledged data only at TCP_USER_TIMEOUT, and a
//! stopped process's kernel keeps acknowledging: neither tells a hung server from a slow one.

use std::time::Duration;

/// Answers remembered per server and class (32). Why: enough that one slow answer does not
/// decide alone for long, few enough that a server that slowed down is seen within a few
/// dozen answers; 128 bytes per class per server. With fewer than 100 samples the 99th
/// percentile is the largest of them, so [`LatencyWindow::p99`] is "the slowest recent
/// answer".
pub const LATENCY_SAMPLES: usize = 32;

/// Which kind of answer a sample or a timeout is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerClass {
    /// Authorize requests and handshakes: answered on the server's reactor, sub-millisecond.
    Cheap,
    /// Password checks (authenticate): argon2id on a worker, after the server's queue.
    Password,
    /// A user's own password change: a password check, then the master's commit (a replica
    /// asks its master over the link). Not measured (rare, and not a server's speed at
    /// checks): its timeout is [`CHANGE_ANSWER_TIMEOUT`].
    Change,
}

/// How long a sent password change may go unanswered before its connection counts as
/// stalled (10 s). Why: a replica waits up to 3 s for its master's answer
/// (`gatehouse_replica::password_change::MASTER_ANSWER_TIMEOUT`), after a password check in its
/// queue and before two argon2 runs and a commit: a derived timeout of password checks
/// (a few hundred ms) would drop a change that is merely waiting for the master, and a change
/// is never sent again once sent, so giving up early only turns a success into "unknown".
pub const CHANGE_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The last [`LATENCY_SAMPLES`] answer times of one class, µs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyWindow {
    samples: [u32; LATENCY_SAMPLES],
    len: u8,
    next: u8,
    worst: u32,
}

impl Default for LatencyWindow {
    fn default() -> Self {
        LatencyWindow {
            samples: [0; LATENCY_SAMPLES],
            len: 0,
            next: 0,
            worst: 0,
        }
    }
}

impl LatencyWindow {
    /// Adds one answer time (over 71 minutes counts as 71 minutes).
    pub fn record(&mut self, latency: Duration) {
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        let slot = usize::from(self.next) % LATENCY_SAMPLES;
        self.samples[slot] = us;
        self.next = ((slot + 1) % LATENCY_SAMPLES) as u8;
        self.len = (usize::from(self.len) + 1).min(LATENCY_SAMPLES) as u8;
        self.worst = self.recorded().iter().copied().max().unwrap_or(0);
    }

    /// How many answers are remembered.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// No answer measured yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The 99th percentile of the remembered answers (their maximum: see
    /// [`LATENCY_SAMPLES`]); `None` before the first.
    pub fn p99(&self) -> Option<Duration> {
        (!self.is_empty()).then(|| Duration::from_micros(u64::from(self.worst)))
    }

    /// The mean of the remembered answers: what an answer typically costs now.
    pub fn mean(&self) -> Option<Duration> {
        let recorded = self.recorded();
        let sum: u64 = recorded.iter().map(|&us| u64::from(us)).sum();
        (!recorded.is_empty()).then(|| Duration::from_micros(sum / recorded.len() as u64))
    }

    fn recorded(&self) -> &[u32] {
        &self.samples[..self.len()]
    }
}

/// Both classes of one server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerLatency {
    pub cheap: LatencyWindow,
    pub password: LatencyWindow,
}

impl ServerLatency {
    /// The window of `class`.
    /// A change has none of its own (see [`AnswerClass::Change`]): the password checks'.
    pub fn window(&self, class: AnswerClass) -> &LatencyWindow {
        match class {
            AnswerClass::Cheap => &self.cheap,
            AnswerClass::Password | AnswerClass::Change => &self.password,
        }
    }

    /// Adds one answer time of `class` (a change's is not kept).
    pub fn record(&mut self, class: AnswerClass, latency: Duration) {
        match class {
            AnswerClass::Cheap => self.cheap.record(latency),
            AnswerClass::Password => self.password.record(latency),
            AnswerClass::Change => {}
        }
    }
}

/// How long a server may leave a sent request (or a handshake) unanswered before the agent
/// gives up on the connection and re-sends its requests elsewhere:
/// `clamp(factor × p99, min, max)` of that server's recent answers of the request's class,
/// and `max` before any answer of that class was measured; a password change
/// [`CHANGE_ANSWER_TIMEOUT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseTimeouts {
    pub p99_factor: u32,
    pub min: Duration,
    pub max: Duration,
}

impl ResponseTimeouts {
    /// The timeout for a request of `class` on a server with these measurements.
    pub fn timeout(&self, latency: &ServerLatency, class: AnswerClass) -> Duration {
        if class == AnswerClass::Change {
            return CHANGE_ANSWER_TIMEOUT;
        }
        match latency.window(class).p99() {
            Some(p99) => scaled(p99, self.p99_factor).clamp(self.min, self.max.max(self.min)),
            None => self.max.max(self.min),
        }
    }
}

/// When an unanswered authorize is sent again on a connection to another server (hedged):
/// after `clamp(factor × p99, min, response timeout)` of the current server's cheap answers,
/// at most once per `interval` per agent. Only authorize is hedged; see docs/AGENT.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HedgePolicy {
    pub p99_factor: u32,
    pub min: Duration,
    pub interval: Duration,
}

impl HedgePolicy {
    /// The hedge delay on a server with these measurements; `None` when it would not come
    /// before the response timeout (then the timeout moves the request anyway) or when no
    /// answer was measured yet.
    pub fn delay(&self, latency: &ServerLatency, timeouts: &ResponseTimeouts) -> Option<Duration> {
        let p99 = latency.cheap.p99()?;
        let timeout = timeouts.timeout(latency, AnswerClass::Cheap);
        let delay = scaled(p99, self.p99_factor).max(self.min);
        (delay < timeout).then_some(delay)
    }
}

fn scaled(d: Duration, factor: u32) -> Duration {
    d.checked_mul(factor).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn timeouts() -> ResponseTimeouts {
        ResponseTimeouts {
            p99_factor: 3,
            min: 100 * MS,
            max: 2000 * MS,
        }
    }

    #[test]
    fn the_window_remembers_the_last_32_answers() {
        let mut w = LatencyWindow::default();
        assert_eq!((w.p99(), w.mean()), (None, None));
        w.record(900 * MS);
        for _ in 0..LATENCY_SAMPLES - 1 {
            w.record(MS);
        }
        assert_eq!(w.p99(), Some(900 * MS));
        assert_eq!(w.len(), LATENCY_SAMPLES);
        // The 33rd answer pushes the slow one out.
        w.record(2 * MS);
        assert_eq!(w.p99(), Some(2 * MS));
        assert_eq!(
            w.mean(),
            Some(Duration::from_micros((31 * 1000 + 2000) / 32))
        );
    }

    #[test]
    fn the_response_timeout_is_a_multiple_of_p99_within_its_bounds() {
        let t = timeouts();
        let mut s = ServerLatency::default();
        // Nothing measured yet: the ceiling.
        assert_eq!(t.timeout(&s, AnswerClass::Cheap), 2000 * MS);
        s.record(AnswerClass::Cheap, 2 * MS);
        assert_eq!(t.timeout(&s, AnswerClass::Cheap), 100 * MS, "the floor");
        s.record(AnswerClass::Password, 60 * MS);
        assert_eq!(t.timeout(&s, AnswerClass::Password), 180 * MS, "3 x p99");
        s.record(AnswerClass::Password, 900 * MS);
        assert_eq!(
            t.timeout(&s, AnswerClass::Password),
            2000 * MS,
            "the ceiling"
        );
        // The classes are apart: the cheap timeout did not move.
        assert_eq!(t.timeout(&s, AnswerClass::Cheap), 100 * MS);
    }

    #[test]
    fn a_hedge_comes_before_the_response_timeout_or_not_at_all() {
        let t = timeouts();
        let hedge = HedgePolicy {
            p99_factor: 2,
            min: 50 * MS,
            interval: 1000 * MS,
        };
        let mut s = ServerLatency::default();
        assert_eq!(hedge.delay(&s, &t), None, "nothing measured");
        s.record(AnswerClass::Cheap, MS);
        assert_eq!(hedge.delay(&s, &t), Some(50 * MS));
        s.record(AnswerClass::Cheap, 40 * MS);
        assert_eq!(hedge.delay(&s, &t), Some(80 * MS));
        // 2 x 400 ms would come after the 3 x 400 ms timeout? No: 800 < 1200, still a hedge.
        s.record(AnswerClass::Cheap, 400 * MS);
        assert_eq!(hedge.delay(&s, &t), Some(800 * MS));
        // Past the ceiling the timeout (2 s) comes first: no hedge.
        s.record(AnswerClass::Cheap, 1500 * MS);
        assert_eq!(hedge.delay(&s, &t), None);
    }
}
