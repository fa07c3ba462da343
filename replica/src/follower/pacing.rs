//! How soon a follower tries again after its link to the master ended. Ordinarily the
//! jittered exponential backoff (`gatehouse_common::backoff`); but for a while after a link
//! that was healthy (the master had been heard on it) each delay is capped at about half a
//! second, so replication resumes within about a second of a partition healing instead of
//! when a backoff grown during the partition fires (5.8 s measured after 20 s).
//!
//! Pure: `now` and the RNG are arguments. Used by the follower's reconnect loop.

use rand::Rng;
use std::time::{Duration, Instant};

/// The reconnect delay cap after a healthy link (500 ms, jittered ±20 %). Why: with the 2 s
/// connect timeout and the kernel's 1 s SYN retransmission, a partition that heals is seen
/// within about a second; a handful of replicas knocking twice a second costs the master
/// nothing (each attempt is one SYN, refused or allow-listed at once).
pub const HEALTHY_LINK_RECONNECT: Duration = Duration::from_millis(500);

/// How long after a healthy link was lost its reconnects stay fast (10 min). Why: covers any
/// partition or master restart worth waiting for; a master gone longer is a real outage, and
/// the ordinary backoff (up to 2 minutes) then spares the network.
pub const HEALTHY_LINK_WINDOW: Duration = Duration::from_secs(600);

/// When the last healthy link was lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pacing {
    healthy_lost_at: Option<Instant>,
}

impl Pacing {
    /// A link on which the master had been heard ended at `now`.
    pub fn healthy_link_lost(&mut self, now: Instant) {
        self.healthy_lost_at = Some(now);
    }

    /// The delay before the next attempt: `backoff` (the backoff's next delay), capped at
    /// about [`HEALTHY_LINK_RECONNECT`] within [`HEALTHY_LINK_WINDOW`] of a healthy link.
    pub fn delay(&self, backoff: Duration, now: Instant, rng: &mut impl Rng) -> Duration {
        match self.healthy_lost_at {
            Some(at) if now.saturating_duration_since(at) < HEALTHY_LINK_WINDOW => {
                backoff.min(HEALTHY_LINK_RECONNECT.mul_f64(rng.gen_range(0.8..=1.2)))
            }
            _ => backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn after_a_healthy_link_reconnects_stay_near_half_a_second_for_ten_minutes() {
        let mut rng = StdRng::seed_from_u64(1);
        let t0 = Instant::now();
        let mut pacing = Pacing::default();
        let grown = Duration::from_millis(6554); // the 5th backoff step
        assert_eq!(
            pacing.delay(grown, t0, &mut rng),
            grown,
            "never healthy: the backoff"
        );
        pacing.healthy_link_lost(t0);
        for s in [0, 20, 599] {
            let d = pacing.delay(grown, t0 + Duration::from_secs(s), &mut rng);
            assert!((400..=600).contains(&d.as_millis()), "{d:?}");
        }
        // A shorter backoff is kept as it is.
        let short = Duration::from_millis(300);
        assert_eq!(pacing.delay(short, t0, &mut rng), short);
        // After the window, the ordinary backoff again.
        let late = t0 + HEALTHY_LINK_WINDOW;
        assert_eq!(pacing.delay(grown, late, &mut rng), grown);
    }
}
