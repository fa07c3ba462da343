//! Whether an agent that holds a connection should move to another server, decided after each
//! periodic refresh probe (see `engine::refresh`). Two reasons, each with hysteresis so that
//! agents do not flap between servers that are about equal:
//!
//! - **Faster**: the current server is clearly worse: its cost (the mean of its recent cheap
//!   answers as this agent measured them, network included; its probe cost when none) exceeds
//!   `latency_factor` × the best other server's cost plus `latency_margin`, where a probed
//!   server's cost is the probe's round trip plus its reported wait. Deterministic: a server
//!   200 ms away loses every agent at its next refresh.
//! - **Rebalance**: a server with clearly fewer agent connections (a replica that came back or
//!   was added) and a cost not clearly worse. Every agent on a crowded server moves to the
//!   emptiest with probability `excess / current's connections`, where the excess is how far
//!   the current server is above the mean of the servers seen: the agents above the mean
//!   move, spread over every crowded server, so the counts meet near the mean in a refresh
//!   period or two without overshooting; a gap under [`REBALANCE_MIN_GAP`] connections or
//!   [`REBALANCE_MIN_GAP_PERCENT`] % of the current count moves nobody (the dead band that
//!   keeps equal servers still).
//!
//! Pure: observations and an RNG in, a verdict out.

use rand::Rng;
use std::time::Duration;

/// A connection-count gap below this (2 connections) never moves an agent. Why: counts read
/// by different agents at different instants differ by a connection or two on equal servers.
pub const REBALANCE_MIN_GAP: u32 = 2;
/// A gap below this share of the current server's count (10 %) never moves an agent. Why:
/// with hundreds of agents per server the counts of equal servers drift by a few percent;
/// only a server clearly below its share (restarted, added) should attract agents, and it
/// should end within about 10 % of it (20 % left a restarted replica at 22 % of the load
/// where 25 % was fair).
pub const REBALANCE_MIN_GAP_PERCENT: u32 = 10;

/// The hysteresis of the "faster" rule (config `switch_latency_factor`,
/// `switch_latency_margin_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchParams {
    pub latency_factor: u32,
    pub latency_margin: Duration,
}

/// A server as the refresh round saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub server: usize,
    /// Probe round trip plus the server's reported wait.
    pub cost: Duration,
    /// Agent connections the server reported.
    pub connections: u32,
}

/// Why to move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Faster,
    Rebalance,
}

/// The server to move to, if any. `current_latency` is the mean of the current server's
/// recent cheap answers; `seen` are the servers that answered the refresh probe (the current
/// one among them if it answered); `eligible` says whether a server may be moved to (not
/// avoided, not in its connect backoff).
pub fn decide(
    current: usize,
    current_latency: Option<Duration>,
    seen: &[Seen],
    eligible: impl Fn(usize) -> bool,
    params: &SwitchParams,
    rng: &mut impl Rng,
) -> Option<(usize, Reason)> {
    let current_seen = seen.iter().find(|s| s.server == current);
    let current_cost = current_latency.or(current_seen.map(|s| s.cost))?;
    let others: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.server != current && eligible(s.server))
        .collect();
    let clearly_worse_than = |cost: Duration| {
        cost.checked_mul(params.latency_factor)
            .and_then(|c| c.checked_add(params.latency_margin))
            .unwrap_or(Duration::MAX)
    };
    let best = others.iter().min_by_key(|s| (s.cost, s.server))?;
    if current_cost > clearly_worse_than(best.cost) {
        return Some((best.server, Reason::Faster));
    }
    let here = current_seen?.connections;
    let least = others
        .iter()
        .filter(|s| s.cost <= clearly_worse_than(current_cost))
        .min_by_key(|s| (s.connections, s.cost, s.server))?;
    let gap = here.saturating_sub(least.connections);
    let dead_band = REBALANCE_MIN_GAP.max(here / (100 / REBALANCE_MIN_GAP_PERCENT));
    if gap < dead_band {
        return None;
    }
    let counted: Vec<u32> = std::iter::once(here)
        .chain(others.iter().map(|s| s.connections))
        .collect();
    let mean = counted.iter().map(|&c| f64::from(c)).sum::<f64>() / counted.len() as f64;
    let p = (f64::from(here) - mean) / f64::from(here);
    rng.gen_bool(p.clamp(0.0, 1.0))
        .then_some((least.server, Reason::Rebalance))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const MS: Duration = Duration::from_millis(1);
    const PARAMS: SwitchParams = SwitchParams {
        latency_factor: 2,
        latency_margin: Duration::from_millis(50),
    };

    fn seen(server: usize, cost_ms: u64, connections: u32) -> Seen {
        Seen {
            server,
            cost: Duration::from_millis(cost_ms),
            connections,
        }
    }

    fn moves(current_latency: Option<Duration>, seen: &[Seen], runs: u64) -> u64 {
        (0..runs)
            .filter(|&seed| {
                let mut rng = StdRng::seed_from_u64(seed);
                decide(0, current_latency, seen, |_| true, &PARAMS, &mut rng).is_some()
            })
            .count() as u64
    }

    #[test]
    fn a_server_200_ms_away_loses_its_agent_at_once() {
        let mut rng = StdRng::seed_from_u64(1);
        let others = [seen(1, 3, 80), seen(2, 1, 80)];
        let verdict = decide(0, Some(201 * MS), &others, |_| true, &PARAMS, &mut rng);
        assert_eq!(verdict, Some((2, Reason::Faster)));
        // ... unless the faster one may not be used (in its connect backoff): the next best.
        let verdict = decide(0, Some(201 * MS), &others, |s| s != 2, &PARAMS, &mut rng);
        assert_eq!(verdict, Some((1, Reason::Faster)));
    }

    #[test]
    fn equal_or_slightly_different_servers_keep_their_agents() {
        // Same cost, same connections: never.
        assert_eq!(
            moves(Some(2 * MS), &[seen(0, 2, 75), seen(1, 2, 75)], 1000),
            0
        );
        // Three times as slow but within the margin, counts 7.5 % apart: never.
        let near = [seen(0, 30, 80), seen(1, 10, 74)];
        assert_eq!(moves(Some(30 * MS), &near, 1000), 0);
        // The current one did not answer the probe and nothing was measured: no basis.
        assert_eq!(moves(None, &[seen(1, 1, 0)], 100), 0);
    }

    #[test]
    fn a_restarted_server_draws_the_agents_above_the_mean() {
        // 100 agents here, 0 there: the mean is 50, each moves with probability 1/2.
        let n = moves(Some(MS), &[seen(0, 1, 100), seen(1, 1, 0)], 1000);
        assert!((450..=550).contains(&n), "{n}");
        // 100 against 70: the mean is 85, probability 0.15.
        let n = moves(Some(MS), &[seen(0, 1, 100), seen(1, 1, 70)], 1000);
        assert!((110..=190).contains(&n), "{n}");
        // Three servers, one empty: the mean is 66.7, probability 1/3 (every crowded server
        // sends its third, together the mean's worth, not half the gap each).
        let n = moves(
            Some(MS),
            &[seen(0, 1, 100), seen(1, 1, 0), seen(2, 1, 100)],
            1000,
        );
        assert!((290..=380).contains(&n), "{n}");
        // A server clearly slower than this one does not attract agents by being empty.
        assert_eq!(moves(Some(MS), &[seen(0, 1, 100), seen(1, 60, 0)], 100), 0);
    }
}
