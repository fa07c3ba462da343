//! Queue-time estimator: what a probe reply says about how long a request would wait here.
//! Pure: durations in, durations out; owned by the reactor thread, fed by worker results and
//! by the length of each loop turn.
//!
//! Two estimates are reported side by side:
//! - the seed's: mean queue time of the last 10 requests × current queue length. It is 0 for
//!   every idle replica, fast or slow, so a slow replica that just emptied its queue attracts a
//!   herd (../shared/docs/FACTS.md);
//! - the recommended one: the reactor's lag plus (requests ahead + 1) × mean service time /
//!   workers, where requests ahead = queued + in service. It grows with the queue like the
//!   seed's, and for an idle replica it is one service time spread over the workers, never 0,
//!   so a slow idle replica still looks slower than a fast idle one.
//!
//! The reactor's lag is the mean length of its last loop turns: a request that arrives now
//! waits for the turn in progress before it is even read. Authorize requests are answered on
//! the reactor without queueing, so when a replica is saturated by them the worker queue stays
//! empty and only this term shows the load; every turn counts, so the lag falls again as soon
//! as turns get short. Their cost also joins the service times (one sample per turn: the turn's
//! length over the requests it answered), so a replica that checked one password a minute ago
//! (argon2: tens of milliseconds) does not look slow to agents that mostly ask to authorize.

use std::time::Duration;

/// How many recent queue times the seed's mean uses (the seed says "the last 10").
pub const QUEUE_WINDOW: usize = 10;
/// How many recent service times the mean service time uses. Same window as the queue times
/// so both react to a change at the same speed.
pub const SERVICE_WINDOW: usize = 10;
/// Service time assumed before any request has been measured: 1 ms. Makes a fresh replica's
/// recommended estimate small but non-zero.
pub const DEFAULT_PRIOR_SERVICE: Duration = Duration::from_millis(1);
/// Estimates never go below this (1 µs), so an agent's inverse weight stays finite.
pub const MIN_ESTIMATE: Duration = Duration::from_micros(1);
/// How many recent reactor turns the lag is the mean of: 10, like the queue window, so it
/// follows a change in load within a few turns (milliseconds under load).
pub const TURN_WINDOW: usize = 10;

/// A fixed-size ring of the most recent durations.
#[derive(Debug, Clone)]
struct Recent<const N: usize> {
    values: [Duration; N],
    len: usize,
    next: usize,
}

impl<const N: usize> Recent<N> {
    fn new() -> Self {
        Recent {
            values: [Duration::ZERO; N],
            len: 0,
            next: 0,
        }
    }

    fn push(&mut self, value: Duration) {
        self.values[self.next] = value;
        self.next = (self.next + 1) % N;
        self.len = (self.len + 1).min(N);
    }

    fn mean(&self) -> Option<Duration> {
        let sum: Duration = self.values[..self.len].iter().sum();
        (self.len > 0).then(|| sum / self.len as u32)
    }
}

/// The numbers behind an estimate, as reported in a probe reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// (queued + in service + 1) × mean service / workers, at least [`MIN_ESTIMATE`].
    pub recommended: Duration,
    /// Mean queue time of the last 10 × queue length (the seed's rule; may be 0).
    pub seed: Duration,
    /// Mean queue time of the last [`QUEUE_WINDOW`] requests (0 before any).
    pub mean_queue: Duration,
    /// Mean service time of the last [`SERVICE_WINDOW`] requests (the prior before any).
    pub mean_service: Duration,
    /// Mean length of the last [`TURN_WINDOW`] reactor turns (0 before any).
    pub reactor_lag: Duration,
}

/// Keeps recent queue and service times and turns them into estimates.
#[derive(Debug, Clone)]
pub struct QueueEstimator {
    queue_times: Recent<QUEUE_WINDOW>,
    service_times: Recent<SERVICE_WINDOW>,
    turns: Recent<TURN_WINDOW>,
    prior_service: Duration,
}

impl Default for QueueEstimator {
    fn default() -> Self {
        Self::new(DEFAULT_PRIOR_SERVICE)
    }
}

impl QueueEstimator {
    /// An estimator that assumes `prior_service` until it has measured a request.
    pub fn new(prior_service: Duration) -> Self {
        QueueEstimator {
            queue_times: Recent::new(),
            service_times: Recent::new(),
            turns: Recent::new(),
            prior_service,
        }
    }

    /// Records one finished request: how long it waited in the queue and how long a worker
    /// spent on it.
    pub fn record(&mut self, queue_time: Duration, service_time: Duration) {
        self.queue_times.push(queue_time);
        self.service_times.push(service_time);
    }

    /// Records one reactor loop turn: how long it took from the poll's return to its end, and
    /// how many requests it answered itself (inline). Those requests never queued; their
    /// service time, the turn's length per request, joins the service times.
    pub fn record_turn(&mut self, busy: Duration, answered_inline: usize) {
        self.turns.push(busy);
        if answered_inline > 0 {
            let per_request = busy
                .checked_div(saturating_u32(answered_inline))
                .unwrap_or(Duration::ZERO);
            self.service_times.push(per_request);
        }
    }

    /// The estimate for a request arriving now.
    pub fn estimate(&self, queue_len: usize, in_service: usize, workers: usize) -> Estimate {
        let mean_queue = self.queue_times.mean().unwrap_or(Duration::ZERO);
        let mean_service = self.service_times.mean().unwrap_or(self.prior_service);
        let reactor_lag = self.turns.mean().unwrap_or(Duration::ZERO);
        let ahead = queue_len.saturating_add(in_service).saturating_add(1);
        let recommended = mean_service
            .saturating_mul(saturating_u32(ahead))
            .checked_div(saturating_u32(workers.max(1)))
            .unwrap_or(Duration::MAX)
            .saturating_add(reactor_lag)
            .max(MIN_ESTIMATE);
        Estimate {
            recommended,
            seed: mean_queue.saturating_mul(saturating_u32(queue_len)),
            mean_queue,
            mean_service,
            reactor_lag,
        }
    }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_fresh_estimator_uses_the_prior_and_is_never_zero() {
        let e = QueueEstimator::new(ms(2)).estimate(0, 0, 2);
        assert_eq!(e.recommended, ms(1));
        assert_eq!(e.seed, Duration::ZERO);
        assert_eq!(e.mean_queue, Duration::ZERO);
        assert_eq!(e.mean_service, ms(2));
    }

    #[test]
    fn the_seed_estimate_is_mean_of_last_ten_queue_times_times_queue_length() {
        let mut est = QueueEstimator::default();
        // 12 samples: the first two (1000 ms) fall out of the window.
        for q in [1000, 1000, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10] {
            est.record(ms(q), ms(1));
        }
        let e = est.estimate(4, 0, 1);
        assert_eq!(e.mean_queue, Duration::from_micros(5500));
        assert_eq!(e.seed, ms(22));
    }

    #[test]
    fn an_idle_slow_replica_reports_more_than_an_idle_fast_one() {
        let mut fast = QueueEstimator::default();
        let mut slow = QueueEstimator::default();
        for _ in 0..10 {
            fast.record(Duration::ZERO, ms(1));
            slow.record(Duration::ZERO, ms(4));
        }
        let (f, s) = (fast.estimate(0, 0, 2), slow.estimate(0, 0, 2));
        // The seed's rule cannot tell them apart: both 0.
        assert_eq!((f.seed, s.seed), (Duration::ZERO, Duration::ZERO));
        assert_eq!(f.recommended, Duration::from_micros(500));
        assert_eq!(s.recommended, ms(2));
    }

    #[test]
    fn the_recommended_estimate_counts_queued_and_in_service_requests() {
        let mut est = QueueEstimator::default();
        est.record(ms(3), ms(10));
        est.record(ms(5), ms(20));
        // mean service 15 ms; 6 queued + 2 in service + 1 = 9; 9 × 15 / 2 workers = 67.5 ms.
        let e = est.estimate(6, 2, 2);
        assert_eq!(e.recommended, Duration::from_micros(67_500));
        assert_eq!(e.seed, ms(24));
    }

    #[test]
    fn a_reactor_saturated_by_inline_answers_reports_its_lag() {
        let mut busy = QueueEstimator::default();
        let idle = QueueEstimator::default();
        // Turns of 3 ms answering 500 authorize requests each (6 µs per request), queue empty.
        for n in 1..=12 {
            busy.record_turn(ms(if n <= 2 { 100 } else { 3 }), 500);
        }
        let (b, i) = (busy.estimate(0, 0, 2), idle.estimate(0, 0, 2));
        assert_eq!(b.reactor_lag, ms(3), "the two oldest turns left the window");
        assert_eq!(b.mean_service, Duration::from_micros(6));
        assert_eq!(i.reactor_lag, Duration::ZERO);
        // Idle: the prior 1 ms over 2 workers. Busy: 6 µs over 2 workers, plus the lag.
        assert_eq!(i.recommended, Duration::from_micros(500));
        assert_eq!(b.recommended, Duration::from_micros(3_003));
        assert_eq!(b.seed, Duration::ZERO, "the seed's rule sees nothing");
    }

    #[test]
    fn the_lag_falls_as_soon_as_turns_get_short() {
        let mut est = QueueEstimator::default();
        for _ in 0..10 {
            est.record_turn(ms(5), 800);
        }
        assert_eq!(est.estimate(0, 0, 1).reactor_lag, ms(5));
        // Load gone: probes and timers still make (short) turns.
        for _ in 0..10 {
            est.record_turn(Duration::from_micros(20), 0);
        }
        assert_eq!(est.estimate(0, 0, 1).reactor_lag, Duration::from_micros(20));
    }

    #[test]
    fn one_password_check_does_not_make_an_authorizing_replica_look_slow() {
        let mut est = QueueEstimator::default();
        est.record(Duration::ZERO, ms(40)); // one argon2 check on a worker
        for _ in 0..10 {
            est.record_turn(Duration::from_micros(60), 10); // authorize answers, 6 µs each
        }
        let e = est.estimate(0, 0, 2);
        assert_eq!(e.mean_service, Duration::from_micros(6));
        assert_eq!(e.recommended, Duration::from_micros(63));
    }

    #[test]
    fn huge_numbers_saturate_instead_of_overflowing() {
        let mut est = QueueEstimator::default();
        est.record(Duration::MAX / 2, Duration::MAX / 2);
        let e = est.estimate(usize::MAX, usize::MAX, 0);
        assert_eq!(e.recommended, Duration::MAX);
        assert_eq!(e.seed, Duration::MAX);
    }
}
