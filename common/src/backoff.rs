//! Jittered exponential backoff for retrying when no server is reachable, with gRPC's
//! connection-backoff parameters (grpc/doc/connection-backoff.md).
//!
//! Pure: the RNG is an argument and the caller owns the clock. Called by the agent's
//! background reconnect loop. The jitter matters more than the growth: when a network split
//! heals, thousands of agents that failed at the same instant must not all return at the same
//! instant, so every delay is spread uniformly over ±20 % of its nominal value.

use rand::Rng;
use std::time::Duration;

/// First retry delay (1 s, gRPC `INITIAL_BACKOFF`). Why: short enough that a blip costs a user
/// about a second, long enough that a dead network is not hammered.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);

/// Growth factor between retries (1.6, gRPC `MULTIPLIER`). Why: reaches the cap in 11 steps
/// (about 5 minutes in total), gentler than doubling.
pub const MULTIPLIER: f64 = 1.6;

/// Relative jitter (0.2 = ±20 %, gRPC `JITTER`). Why: spreads agents that failed together over
/// 40 % of the nominal delay so they do not return in step.
pub const JITTER: f64 = 0.2;

/// Cap on the nominal delay (120 s, gRPC `MAX_BACKOFF`). Why: a recovered service is noticed
/// within two minutes at worst. As in gRPC, jitter is applied after the cap, so a delay is at
/// most `MAX_BACKOFF × (1 + JITTER)` = 144 s; capping after jitter would bunch agents at 120 s.
pub const MAX_BACKOFF: Duration = Duration::from_secs(120);

/// Backoff state of one agent: the nominal delay the next retry is centred on, and the first
/// and largest nominal delays (gRPC's by default; the agent's config may set its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    nominal: Duration,
    initial: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    /// A fresh backoff: the next delay is centred on `INITIAL_BACKOFF`.
    pub fn new() -> Self {
        Self::with_limits(INITIAL_BACKOFF, MAX_BACKOFF)
    }

    /// A fresh backoff starting at `initial`, its nominal delay capped at `max` (at least
    /// `initial`).
    pub fn with_limits(initial: Duration, max: Duration) -> Self {
        Backoff {
            nominal: initial,
            initial,
            max: max.max(initial),
        }
    }

    /// The nominal (un-jittered) delay the next `next_delay` is centred on.
    pub fn nominal(&self) -> Duration {
        self.nominal
    }

    /// The delay before the next retry, uniform in `nominal × [1 - JITTER, 1 + JITTER]`; then
    /// grows the nominal delay by `MULTIPLIER`, capped at `MAX_BACKOFF`.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let factor = 1.0 + rng.gen_range(-JITTER..=JITTER);
        // nominal ≤ 120 s and factor in [0.8, 1.2]: the product is finite and positive.
        let delay = self.nominal.mul_f64(factor);
        self.nominal = self.nominal.mul_f64(MULTIPLIER).min(self.max);
        delay
    }

    /// Back to the initial delay, after a successful connection.
    pub fn reset(&mut self) {
        self.nominal = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn close(a: Duration, b: Duration) -> bool {
        a.abs_diff(b) <= Duration::from_micros(1)
    }

    #[test]
    fn the_nominal_sequence_grows_by_1_6_up_to_120_s() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut b = Backoff::new();
        let expected_ms = [
            1000.0,
            1600.0,
            2560.0,
            4096.0,
            6553.6,
            10485.76,
            16777.216,
            26843.5456,
            42949.67296,
            68719.476736,
            109951.1627776,
        ];
        for ms in expected_ms {
            let nominal = Duration::from_secs_f64(ms / 1000.0);
            assert!(
                close(b.nominal(), nominal),
                "{:?} vs {nominal:?}",
                b.nominal()
            );
            let d = b.next_delay(&mut rng);
            assert!(
                d >= nominal.mul_f64(0.8) && d <= nominal.mul_f64(1.2),
                "{d:?}"
            );
        }
        // 109.95 s × 1.6 > 120 s: capped from here on.
        for _ in 0..50 {
            assert_eq!(b.nominal(), MAX_BACKOFF);
            let d = b.next_delay(&mut rng);
            assert!(
                d >= Duration::from_secs(96) && d <= Duration::from_secs(144),
                "{d:?}"
            );
        }
    }

    #[test]
    fn reset_starts_over_at_one_second() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut b = Backoff::new();
        for _ in 0..5 {
            b.next_delay(&mut rng);
        }
        b.reset();
        assert_eq!(b, Backoff::new());
        let d = b.next_delay(&mut rng);
        assert!(d >= Duration::from_millis(800) && d <= Duration::from_millis(1200));
    }

    #[test]
    fn a_thousand_agents_starting_together_spread_out() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut firsts = Vec::new();
        let mut capped = Vec::new();
        for _ in 0..1000 {
            let mut b = Backoff::new();
            firsts.push(b.next_delay(&mut rng));
            for _ in 0..20 {
                b.next_delay(&mut rng);
            }
            capped.push(b.next_delay(&mut rng));
        }
        let span = |v: &[Duration]| *v.iter().max().unwrap() - *v.iter().min().unwrap();
        // Nominal 1 s: at least 300 ms between the earliest and the latest agent.
        assert!(
            span(&firsts) >= Duration::from_millis(300),
            "{:?}",
            span(&firsts)
        );
        // At the cap too: at least 36 s.
        assert!(
            span(&capped) >= Duration::from_secs(36),
            "{:?}",
            span(&capped)
        );
        // And not bunched at one end: about half on each side of the nominal value.
        let early = firsts.iter().filter(|&&d| d < INITIAL_BACKOFF).count();
        assert!((400..=600).contains(&early), "{early}");
    }
}
