//! The policies compared, and how one agent turns a probe round into the order it tries
//! replicas in. Pure; the RNG is an argument. Called by [`super::run`] for every arrival.
//!
//! The agent's own modes go through the REAL `gatehouse_agent::balance::order_candidates`
//! (whose first pick is what `balance::choose` returns, and whose rest is the redirect order).
//! "Least reported wait" is implemented here only for comparison: it is the rule
//! Mitzenmacher (2000) and FACTS.md warn about.

use gatehouse_agent::balance::{order_candidates, Balancing, Candidate, RoundRobinState};
use gatehouse_common::wire::probe::LoadReport;
use rand::Rng;
use std::fmt;

/// How the simulated agents choose a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// The agent's default: probe `fanout` replicas, weight by `1 / recommended_wait_us`.
    Probing,
    /// Probe `fanout` replicas, weight by `1 / seed_wait_us` (the seed's rule).
    SeedEstimate,
    /// No probes; each agent rotates through all replicas.
    RoundRobin,
    /// No probes; uniform over all replicas.
    Random,
    /// Probe `fanout` replicas, take the lowest `recommended_wait_us` (ties: probe order,
    /// which is random). Sim-only, for comparison.
    LeastReported,
}

impl Policy {
    /// Every policy, in table order.
    pub const ALL: [Policy; 5] = [
        Policy::Probing,
        Policy::SeedEstimate,
        Policy::LeastReported,
        Policy::RoundRobin,
        Policy::Random,
    ];

    /// Whether the agent probes before choosing (and so reads possibly stale reports).
    pub fn probes(self) -> bool {
        matches!(
            self,
            Policy::Probing | Policy::SeedEstimate | Policy::LeastReported
        )
    }

    /// The agent's balancing mode, for the policies the agent really implements.
    pub fn balancing(self) -> Option<Balancing> {
        match self {
            Policy::Probing => Some(Balancing::Probing),
            Policy::SeedEstimate => Some(Balancing::SeedEstimate),
            Policy::RoundRobin => Some(Balancing::RoundRobin),
            Policy::Random => Some(Balancing::Random),
            Policy::LeastReported => None,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Probing => "probing (recommended estimate, default)",
            Policy::SeedEstimate => "seed estimate",
            Policy::LeastReported => "least reported wait (sim only)",
            Policy::RoundRobin => "round robin",
            Policy::Random => "random",
        })
    }
}

/// The replicas (indices) to try, in order: the first is the pick, the rest are where a
/// "busy" redirect goes next. `probed` pairs each probed replica with its report, in probe
/// order; it is ignored by the policies that do not probe, which consider all `replicas`.
pub fn order(
    policy: Policy,
    replicas: usize,
    probed: &[(usize, LoadReport)],
    round_robin: &mut RoundRobinState,
    rng: &mut impl Rng,
) -> Vec<usize> {
    let candidates: Vec<Candidate> = if policy.probes() {
        probed
            .iter()
            .map(|&(server, load)| Candidate {
                server,
                load: Some(load),
            })
            .collect()
    } else {
        (0..replicas)
            .map(|server| Candidate { server, load: None })
            .collect()
    };
    let Some(mode) = policy.balancing() else {
        // Least reported wait: a stable sort keeps the (random) probe order among ties.
        let mut sorted = probed.to_vec();
        sorted.sort_by_key(|&(_, load)| load.recommended_wait_us);
        return sorted.into_iter().map(|(server, _)| server).collect();
    };
    order_candidates(&candidates, mode, round_robin, rng)
        .into_iter()
        .filter_map(|i| candidates.get(i).map(|c| c.server))
        .collect()
}
