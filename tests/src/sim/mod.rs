//! A deterministic discrete-event simulation of replicas, their queues and the agents'
//! balancer, to compare replica-selection policies (docs/BENCHMARKS.md, "Balancing
//! simulation"; the anchors are in ../shared/docs/FACTS.md).
//!
//! Pure: virtual time in µs, seeded `StdRng`s, a binary-heap event queue; no clocks, threads
//! or sockets. Called by tests/tests/balance_sim.rs (the sweep over seeds, the replay of one
//! seed, and the table for the docs).
//!
//! Model:
//! - `R` replicas, each with its own worker count and exponential service times of its own
//!   mean; sojourns are reported in units of [`SERVICE_TIME_US`], the fast replicas' mean.
//! - Poisson arrivals at `load` × total capacity (Σ workers / mean service time).
//! - Each arrival comes from one of `agents` agents. A probing agent probes `fanout` distinct
//!   random replicas and reads reports that are stale by [`Staleness`]; the others consider
//!   every replica. The agent orders its candidates (see [`policy::order`]).
//! - The chosen replica applies the bridge's redirect check on its exact current estimate: if
//!   the recommended estimate exceeds `busy_limit_us` the request goes to the next candidate
//!   (one redirect counted). When every candidate is busy the request queues at the last one
//!   (counted as `exhausted`): the real agent would retry within its deadline, and queueing
//!   there is the simplest stand-in. Redirects and probes take no time (no network delay).
//! - Probe silence above a queue length (the bridge's DEFAULT_PROBE_SILENCE_QUEUE_LEN = 1536)
//!   is not modelled: the busy limit keeps queues far below it.
//!
//! Random streams are separate so that every policy sees the same arrival times and the same
//! work per request (common random numbers): the differences between policies are then the
//! policies', not the dice's.

pub mod events;
pub mod policy;
pub mod replica;
pub mod report;

pub use policy::Policy;
pub use report::{RunStats, Summary};

use events::{EventKind, EventQueue};
use gatehouse_agent::balance::RoundRobinState;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use replica::{Job, SimReplica};

/// The time unit of every reported sojourn, µs (1000): the fast replicas' mean service time.
/// 1 ms is also the estimator's prior (DEFAULT_PRIOR_SERVICE), so a fresh replica's prior is
/// right for the fast replicas and half the truth for the slow ones.
pub const SERVICE_TIME_US: u64 = 1000;

/// How old the reports an agent reads are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staleness {
    /// Every report is exactly this old, µs: the replica's state at `now − age`. This is
    /// FACTS.md's "information 8 service times old" and the default here.
    Delayed(u64),
    /// Reports are refreshed every this many µs and read from the last refresh (age uniform
    /// between 0 and the period): Mitzenmacher's periodic-update board.
    Periodic(u64),
}

impl Staleness {
    /// The time whose state an agent asking at `now_us` sees. Non-decreasing in `now_us`.
    fn seen_at(self, now_us: u64) -> u64 {
        match self {
            Staleness::Delayed(age) => now_us.saturating_sub(age),
            Staleness::Periodic(period) => now_us - now_us % period.max(1),
        }
    }
}

/// One replica's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicaSpec {
    pub workers: usize,
    /// Mean service time, µs.
    pub mean_service_us: u64,
}

/// Everything a run depends on besides the policy and the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub replicas: Vec<ReplicaSpec>,
    /// Offered load as a fraction of total capacity.
    pub load: f64,
    pub staleness: Staleness,
    /// Replicas probed per request (the agent's `probe_fanout`; default 3).
    pub fanout: usize,
    /// The replica's busy limit on its recommended estimate, µs (the bridge's `busy_wait`).
    pub busy_limit_us: u64,
    /// Independent agents (each has its own round-robin position).
    pub agents: usize,
    /// Requests simulated per run.
    pub arrivals: usize,
    /// The first this many requests warm the queues and estimators up and are not measured.
    pub warmup: usize,
}

impl Scenario {
    /// FACTS.md's scenario: 8 replicas of 1 worker, two at half speed, 90 % load, reports 8
    /// service times old. Fanout 3 (the agent's default), 64 agents, and a busy limit of 50
    /// service times (the bridge's 1 s default is 50× a 20 ms request; for 10 µs requests it
    /// would never trigger, and the sim would only measure unbounded queues).
    pub fn facts(arrivals: usize) -> Self {
        let fast = ReplicaSpec {
            workers: 1,
            mean_service_us: SERVICE_TIME_US,
        };
        let slow = ReplicaSpec {
            mean_service_us: 2 * SERVICE_TIME_US,
            ..fast
        };
        let mut replicas = vec![fast; 6];
        replicas.extend([slow; 2]);
        Scenario {
            replicas,
            load: 0.9,
            staleness: Staleness::Delayed(8 * SERVICE_TIME_US),
            fanout: 3,
            busy_limit_us: 50 * SERVICE_TIME_US,
            agents: 64,
            arrivals,
            warmup: arrivals / 10,
        }
    }

    /// Requests the replicas can serve per µs.
    fn capacity_per_us(&self) -> f64 {
        self.replicas
            .iter()
            .map(|r| r.workers as f64 / r.mean_service_us.max(1) as f64)
            .sum()
    }

    /// Indices of the replicas slower than the fastest (the ones a balancer should spare).
    pub fn slow_replicas(&self) -> Vec<usize> {
        let fastest = self.replicas.iter().map(|r| r.mean_service_us).min();
        (0..self.replicas.len())
            .filter(|&i| self.replicas.get(i).map(|r| r.mean_service_us) > fastest)
            .collect()
    }
}

/// A unit-mean exponential draw.
fn exp1(rng: &mut impl Rng) -> f64 {
    -(1.0 - rng.gen::<f64>()).ln()
}

/// Simulates `scenario` under `policy` with `seed`.
pub fn run(scenario: &Scenario, policy: Policy, seed: u64) -> RunStats {
    // Separate streams (see the module doc): arrivals, work per request, choices.
    let mut arrival_rng = StdRng::seed_from_u64(seed.wrapping_mul(3));
    let mut work_rng = StdRng::seed_from_u64(seed.wrapping_mul(3).wrapping_add(1));
    let mut choice_rng = StdRng::seed_from_u64(seed.wrapping_mul(3).wrapping_add(2));
    let n = scenario.replicas.len();
    let mut replicas: Vec<SimReplica> = scenario
        .replicas
        .iter()
        .map(|r| SimReplica::new(r.workers))
        .collect();
    let mut round_robin = vec![RoundRobinState::default(); scenario.agents.max(1)];
    let mean_gap_us = 1.0 / (scenario.load * scenario.capacity_per_us());
    let mut stats = RunStats::new(policy, seed, n);
    let mut events = EventQueue::default();
    let mut arrived = 0usize;
    events.push(0, EventKind::Arrival);

    while let Some((now, kind)) = events.pop() {
        match kind {
            EventKind::Completion { replica, done } => {
                if done.job.index >= scenario.warmup {
                    stats.record_sojourn(now.saturating_sub(done.job.arrived_us));
                }
                if let Some(next) = replicas
                    .get_mut(replica)
                    .and_then(|r| r.complete(now, done))
                {
                    events.push(
                        next.finish_us(),
                        EventKind::Completion {
                            replica,
                            done: next,
                        },
                    );
                }
            }
            EventKind::Arrival => {
                let index = arrived;
                arrived += 1;
                if arrived < scenario.arrivals {
                    let gap = (exp1(&mut arrival_rng) * mean_gap_us).round() as u64;
                    events.push(now + gap, EventKind::Arrival);
                }
                let work = exp1(&mut work_rng);
                let seen_at = scenario.staleness.seen_at(now);
                let probed: Vec<_> = if policy.probes() {
                    let k = scenario.fanout.clamp(1, n);
                    rand::seq::index::sample(&mut choice_rng, n, k)
                        .into_iter()
                        .filter_map(|i| replicas.get_mut(i).map(|r| (i, r.report_at(seen_at))))
                        .collect()
                } else {
                    Vec::new()
                };
                let agent = choice_rng.gen_range(0..round_robin.len());
                let Some(rr) = round_robin.get_mut(agent) else {
                    continue;
                };
                let order = policy::order(policy, n, &probed, rr, &mut choice_rng);
                // The bridge's redirect check, on each candidate's exact current estimate.
                let busy = |r: &SimReplica| {
                    r.estimate_now().recommended.as_micros() > u128::from(scenario.busy_limit_us)
                };
                let fallback = order.last().copied();
                let target = order
                    .iter()
                    .copied()
                    .position(|i| replicas.get(i).is_some_and(|r| !busy(r)));
                let measured = index >= scenario.warmup;
                let chosen = match target {
                    Some(pos) => {
                        stats.add_redirects(measured, pos);
                        order.get(pos).copied()
                    }
                    None => {
                        stats.add_exhausted(measured, order.len().saturating_sub(1));
                        fallback
                    }
                };
                let Some(chosen) = chosen else { continue };
                let mean = scenario
                    .replicas
                    .get(chosen)
                    .map_or(1, |r| r.mean_service_us);
                let job = Job {
                    index,
                    arrived_us: now,
                    enqueued_us: now,
                    service_us: ((work * mean as f64).round() as u64).max(1),
                };
                if measured {
                    stats.record_share(order.first().copied().unwrap_or(chosen), chosen);
                }
                if let Some(done) = replicas.get_mut(chosen).and_then(|r| r.admit(now, job)) {
                    let replica = chosen;
                    events.push(done.finish_us(), EventKind::Completion { replica, done });
                }
            }
        }
    }
    stats.finish();
    stats
}

/// Runs every policy in [`Policy::ALL`] on one seed.
pub fn run_all(scenario: &Scenario, seed: u64) -> Vec<RunStats> {
    Policy::ALL
        .iter()
        .map(|&p| run(scenario, p, seed))
        .collect()
}
