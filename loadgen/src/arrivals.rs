//! Open-loop arrivals: when the next request is due, and which simulated agent sends it. The
//! requests arrive at a rate whatever the answers do — Poisson (exponential gaps) or evenly
//! spaced — and go to the agents in turn. A generator that falls too far behind its schedule
//! skips the missed arrivals and counts them, rather than firing a burst that would measure
//! its own backlog instead of the servers.
//!
//! Pure: takes `now` and an RNG; the worker ([`super::worker`]) is the shell that issues.

use rand::Rng;
use std::time::{Duration, Instant};

/// How far behind its schedule the generator may fall (1 s) before it skips arrivals,
/// counting them as `generator_behind` errors.
pub const BEHIND_LIMIT: Duration = Duration::from_secs(1);
/// Longest gap between two arrivals (1 h), so a tiny rate (`--rate 1e-300` parses) cannot
/// overflow a `Duration` or the clock.
const MAX_GAP: Duration = Duration::from_secs(3600);

/// The schedule of one worker's open-loop arrivals.
#[derive(Debug, Clone)]
pub struct Arrivals {
    /// Requests per second (this worker's share of the run's rate); positive.
    rate: f64,
    poisson: bool,
    agents: usize,
    next: Instant,
    next_agent: usize,
}

impl Arrivals {
    /// Arrivals at `rate` per second spread over `agents` agents, the first one gap after
    /// `start`.
    pub fn new(
        start: Instant,
        rate: f64,
        poisson: bool,
        agents: usize,
        rng: &mut impl Rng,
    ) -> Self {
        let mut arrivals = Arrivals {
            rate,
            poisson,
            agents,
            next: start,
            next_agent: 0,
        };
        arrivals.next += arrivals.gap(rng);
        arrivals
    }

    /// When the next arrival is due.
    pub fn next_at(&self) -> Instant {
        self.next
    }

    /// Calls `issue(agent)` for each arrival due by `now`, at most `max` of them (so the
    /// caller's loop also gets to read answers). Returns how many arrivals were skipped
    /// because the schedule had fallen more than [`BEHIND_LIMIT`] behind `now`; the schedule
    /// then restarts from `now`.
    pub fn take_due(
        &mut self,
        now: Instant,
        max: usize,
        rng: &mut impl Rng,
        mut issue: impl FnMut(usize),
    ) -> u64 {
        let mut issued = 0;
        while self.next <= now && issued < max && self.agents > 0 {
            issue(self.next_agent);
            self.next_agent = (self.next_agent + 1) % self.agents;
            issued += 1;
            self.next += self.gap(rng);
        }
        let behind = now.saturating_duration_since(self.next);
        if behind <= BEHIND_LIMIT {
            return 0;
        }
        self.next = now;
        (behind.as_secs_f64() * self.rate).round() as u64
    }

    /// The time to the next arrival: exponential with mean 1/rate (Poisson arrivals), or
    /// exactly 1/rate.
    fn gap(&self, rng: &mut impl Rng) -> Duration {
        if self.rate <= 0.0 {
            return MAX_GAP;
        }
        let mean = 1.0 / self.rate;
        let secs = if self.poisson {
            // 1 - U is in (0, 1], so the logarithm is finite.
            -(1.0 - rng.gen::<f64>()).ln() * mean
        } else {
            mean
        };
        // Clamped before the conversion, which panics on a value past `Duration`'s range.
        Duration::from_secs_f64(secs.min(MAX_GAP.as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// Runs the schedule from `start` to `start + span` in `step`s, as a worker's turns
    /// would; returns the arrivals per agent and the total skipped.
    fn run(
        arrivals: &mut Arrivals,
        start: Instant,
        span: Duration,
        step: Duration,
    ) -> (Vec<u64>, u64) {
        let mut rng = StdRng::seed_from_u64(9);
        let mut per_agent = vec![0u64; arrivals.agents];
        let mut skipped = 0;
        let mut now = start;
        while now <= start + span {
            skipped += arrivals.take_due(now, usize::MAX, &mut rng, |a| per_agent[a] += 1);
            now += step;
        }
        (per_agent, skipped)
    }

    #[test]
    fn even_arrivals_come_at_exactly_the_rate_and_go_to_the_agents_in_turn() {
        let start = Instant::now();
        let mut rng = StdRng::seed_from_u64(1);
        let mut arrivals = Arrivals::new(start, 100.0, false, 3, &mut rng);
        assert_eq!(arrivals.next_at(), start + Duration::from_millis(10));
        let (per_agent, skipped) = run(
            &mut arrivals,
            start,
            Duration::from_secs(1),
            Duration::from_millis(1),
        );
        // One every 10 ms, the last at exactly 1 s.
        assert_eq!(per_agent, vec![34, 33, 33]);
        assert_eq!(skipped, 0);
    }

    #[test]
    fn poisson_arrivals_average_the_rate() {
        let start = Instant::now();
        let mut rng = StdRng::seed_from_u64(2);
        let mut arrivals = Arrivals::new(start, 1000.0, true, 10, &mut rng);
        let (per_agent, skipped) = run(
            &mut arrivals,
            start,
            Duration::from_secs(10),
            Duration::from_millis(5),
        );
        let total: u64 = per_agent.iter().sum();
        // 10 000 expected; the standard deviation of a Poisson count is 100.
        assert!((9_700..=10_300).contains(&total), "{total}");
        assert_eq!(skipped, 0);
        // Round robin: no agent is more than one arrival ahead of another.
        let (lo, hi) = (
            per_agent.iter().min().unwrap(),
            per_agent.iter().max().unwrap(),
        );
        assert!(hi - lo <= 1, "{per_agent:?}");
    }

    #[test]
    fn a_vanishing_rate_waits_at_most_an_hour_between_arrivals() {
        let start = Instant::now();
        let mut rng = StdRng::seed_from_u64(5);
        for poisson in [false, true] {
            let arrivals = Arrivals::new(start, 1e-300, poisson, 1, &mut rng);
            assert_eq!(arrivals.next_at(), start + MAX_GAP, "poisson {poisson}");
        }
    }

    #[test]
    fn a_turn_issues_at_most_its_share_and_the_rest_follows_next_turn() {
        let start = Instant::now();
        let mut rng = StdRng::seed_from_u64(3);
        let mut arrivals = Arrivals::new(start, 1000.0, false, 1, &mut rng);
        let now = start + Duration::from_millis(500);
        let mut issued = 0;
        assert_eq!(arrivals.take_due(now, 100, &mut rng, |_| issued += 1), 0);
        assert_eq!(issued, 100);
        assert_eq!(arrivals.next_at(), start + Duration::from_millis(101));
        assert_eq!(arrivals.take_due(now, 1000, &mut rng, |_| issued += 1), 0);
        assert_eq!(issued, 500, "caught up within the limit: nothing skipped");
    }

    #[test]
    fn a_generator_more_than_a_second_behind_skips_and_counts_the_missed_arrivals() {
        let start = Instant::now();
        let mut rng = StdRng::seed_from_u64(4);
        let mut arrivals = Arrivals::new(start, 1000.0, false, 1, &mut rng);
        // The worker was stalled for 3 s and may issue 10 requests this turn.
        let now = start + Duration::from_secs(3);
        let mut issued = 0;
        let skipped = arrivals.take_due(now, 10, &mut rng, |_| issued += 1);
        assert_eq!(issued, 10);
        // The schedule stood at 11 ms: 2.989 s behind, 2989 arrivals at 1000/s.
        assert_eq!(skipped, 2989);
        assert_eq!(arrivals.next_at(), now, "the schedule restarts from now");
        assert_eq!(arrivals.take_due(now, 10, &mut rng, |_| issued += 1), 0);
        assert_eq!(issued, 11, "the arrival due now");
    }
}
