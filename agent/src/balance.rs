//! Choosing which server to ask, and the full order to try servers in (for redirects).
//!
//! Pure: no clocks or sockets, the RNG is an argument. Called by the agent's request path
//! after a probe round ([`crate::probe_round`]), or directly on the server list for the modes
//! that need no probes ([`Balancing::needs_probes`]).
//!
//! With probes, a server is picked at random with weight `1 / wait`, where `wait` is the
//! server's estimated queue wait clamped to `[MIN_WAIT_US, MAX_WAIT_US]`. Random rather than
//! "least wait" so that many agents reading the same reports do not all pile onto the same
//! server (the herd effect); inverse weighting so that a server twice as busy gets half as much.

use gatehouse_common::wire::probe::LoadReport;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Smallest wait used for weighting, µs (100 µs). Why: an idle server's seed estimate is exactly
/// 0 (empty queue), so without a floor its weight would be infinite and it would take every
/// request; the floor makes all idle servers equal and bounds the preference ratio between two
/// servers at `MAX_WAIT_US / MIN_WAIT_US`. 100 µs is below any real service time, so it never
/// flattens a real difference.
pub const MIN_WAIT_US: u64 = 100;

/// Largest wait used for weighting, µs (10 s). Why: beyond twice the default request deadline
/// (5 s) every wait is equally hopeless; the cap keeps the weight above zero so an overloaded
/// server still gets a trickle and is not starved forever on a stale report.
pub const MAX_WAIT_US: u64 = 10_000_000;

/// How the agent spreads requests over its servers. RON names are snake_case (`probing`,
/// `seed_estimate`, `round_robin`, `random`, `ordered`); the run-together forms
/// `seedestimate` and `roundrobin` are accepted too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balancing {
    /// Probe, then weight by `1 / recommended_wait_us` (the server's recommended estimate).
    #[default]
    Probing,
    /// Probe, then weight by `1 / seed_wait_us` (the seed's mean-queue-time × queue-length).
    #[serde(alias = "seedestimate")]
    SeedEstimate,
    /// No probes: rotate through the servers by server index.
    #[serde(alias = "roundrobin")]
    RoundRobin,
    /// No probes: uniform at random.
    Random,
    /// No probes: always the first usable server in configured order (primary/fallback).
    Ordered,
}

impl Balancing {
    /// Whether this mode uses load reports (so a probe round must run before choosing).
    pub fn needs_probes(self) -> bool {
        matches!(self, Balancing::Probing | Balancing::SeedEstimate)
    }
}

/// One server the agent may ask, with its load report when it answered a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Index into the configured server list.
    pub server: usize,
    /// The probe reply's report; `None` when not probed or no answer.
    pub load: Option<LoadReport>,
}

/// Round-robin position kept across requests: the server index served last. Rotating by
/// server index (not by position in the candidate list) keeps the rotation fair when the
/// candidate set changes between requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundRobinState {
    last: Option<usize>,
}

/// The weight of a server whose estimated wait is `wait_us`: `1 / clamp(wait_us)`. Always
/// finite and positive.
pub fn weight(wait_us: u64) -> f64 {
    1.0 / wait_us.clamp(MIN_WAIT_US, MAX_WAIT_US) as f64
}

/// Picks one candidate; returns its position in `candidates`, `None` when empty.
///
/// In the probing modes, candidates without a report are picked only when no candidate with a
/// report exists (then uniformly among them). `Ordered` and `RoundRobin` use no randomness.
pub fn choose(
    candidates: &[Candidate],
    mode: Balancing,
    state: &mut RoundRobinState,
    rng: &mut impl Rng,
) -> Option<usize> {
    let all: Vec<usize> = (0..candidates.len()).collect();
    let pick = pick_among(candidates, &all, mode, state.last, rng)?;
    if mode == Balancing::RoundRobin {
        state.last = candidates.get(pick).map(|c| c.server);
    }
    Some(pick)
}

/// The full order to try candidates in (positions in `candidates`): first the pick `choose`
/// would make, then the remaining ones by the same rule without replacement. The redirect path
/// walks this list when a server says "busy" or "too many connections". Advances the
/// round-robin state by one request only.
pub fn order_candidates(
    candidates: &[Candidate],
    mode: Balancing,
    state: &mut RoundRobinState,
    rng: &mut impl Rng,
) -> Vec<usize> {
    let mut remaining: Vec<usize> = (0..candidates.len()).collect();
    let mut order = Vec::with_capacity(candidates.len());
    let mut rr_last = state.last;
    while let Some(pick) = pick_among(candidates, &remaining, mode, rr_last, rng) {
        let server = candidates.get(pick).map(|c| c.server);
        if order.is_empty() && mode == Balancing::RoundRobin {
            state.last = server;
        }
        rr_last = server;
        order.push(pick);
        remaining.retain(|&i| i != pick);
    }
    order
}

/// The wait a probing mode weights by, when the candidate has a report.
fn wait_of(candidate: &Candidate, mode: Balancing) -> Option<u64> {
    let load = candidate.load?;
    match mode {
        Balancing::Probing => Some(load.recommended_wait_us),
        Balancing::SeedEstimate => Some(load.seed_wait_us),
        _ => None,
    }
}

/// Picks among `remaining` (positions in `candidates`, in list order).
fn pick_among(
    candidates: &[Candidate],
    remaining: &[usize],
    mode: Balancing,
    rr_last: Option<usize>,
    rng: &mut impl Rng,
) -> Option<usize> {
    if remaining.is_empty() {
        return None;
    }
    let server_of = |i: usize| candidates.get(i).map_or(usize::MAX, |c| c.server);
    match mode {
        Balancing::Ordered => remaining.first().copied(),
        Balancing::Random => uniform(remaining, rng),
        Balancing::RoundRobin => {
            // The next server index after the last one served, wrapping to the smallest.
            let after = remaining
                .iter()
                .copied()
                .filter(|&i| rr_last.is_none_or(|last| server_of(i) > last))
                .min_by_key(|&i| server_of(i));
            after.or_else(|| remaining.iter().copied().min_by_key(|&i| server_of(i)))
        }
        Balancing::Probing | Balancing::SeedEstimate => {
            let weighted: Vec<(usize, f64)> = remaining
                .iter()
                .filter_map(|&i| {
                    let c = candidates.get(i)?;
                    wait_of(c, mode).map(|w| (i, weight(w)))
                })
                .collect();
            if weighted.is_empty() {
                return uniform(remaining, rng);
            }
            let total: f64 = weighted.iter().map(|&(_, w)| w).sum();
            let mut r = rng.gen::<f64>() * total;
            for &(i, w) in &weighted {
                if r < w {
                    return Some(i);
                }
                r -= w;
            }
            // Floating-point rounding can leave `r` a hair above the last weight.
            weighted.last().map(|&(i, _)| i)
        }
    }
}

fn uniform(remaining: &[usize], rng: &mut impl Rng) -> Option<usize> {
    if remaining.is_empty() {
        return None;
    }
    remaining.get(rng.gen_range(0..remaining.len())).copied()
}

#[cfg(test)]
#[path = "balance_tests.rs"]
mod tests;
