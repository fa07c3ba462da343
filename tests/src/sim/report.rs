//! What a run measured, summaries over seeds, and their text forms (a per-seed report for
//! replays, a Markdown table for docs/BENCHMARKS.md). Pure; used by [`super::run`] and the
//! balance_sim tests.

use super::{Policy, Scenario, Staleness, SERVICE_TIME_US};
use std::fmt::Write;

/// One run's measurements (requests after the warm-up only).
#[derive(Debug, Clone)]
pub struct RunStats {
    pub policy: Policy,
    pub seed: u64,
    /// Sojourn (queue + service) of every measured request, µs; sorted once the run ends.
    sojourns_us: Vec<u64>,
    /// Measured requests queued at each replica.
    served: Vec<u64>,
    /// Measured requests each replica was the agent's first pick for (before redirects).
    picked: Vec<u64>,
    /// "Busy" answers that sent a measured request to its next candidate.
    pub redirects: u64,
    /// Measured requests that every candidate called busy (queued at the last one anyway).
    pub exhausted: u64,
}

impl RunStats {
    pub(super) fn new(policy: Policy, seed: u64, replicas: usize) -> Self {
        RunStats {
            policy,
            seed,
            sojourns_us: Vec::new(),
            served: vec![0; replicas],
            picked: vec![0; replicas],
            redirects: 0,
            exhausted: 0,
        }
    }

    pub(super) fn record_sojourn(&mut self, us: u64) {
        self.sojourns_us.push(us);
    }

    /// A measured request was first sent to `first` and queued at `served`.
    pub(super) fn record_share(&mut self, first: usize, served: usize) {
        if let Some(n) = self.picked.get_mut(first) {
            *n += 1;
        }
        if let Some(n) = self.served.get_mut(served) {
            *n += 1;
        }
    }

    pub(super) fn add_redirects(&mut self, measured: bool, n: usize) {
        if measured {
            self.redirects += n as u64;
        }
    }

    pub(super) fn add_exhausted(&mut self, measured: bool, redirects: usize) {
        if measured {
            self.redirects += redirects as u64;
            self.exhausted += 1;
        }
    }

    pub(super) fn finish(&mut self) {
        self.sojourns_us.sort_unstable();
    }

    /// Measured requests.
    pub fn requests(&self) -> usize {
        self.sojourns_us.len()
    }

    /// Mean sojourn, in service times.
    pub fn mean_sojourn(&self) -> f64 {
        let sum: u64 = self.sojourns_us.iter().sum();
        sum as f64 / self.requests().max(1) as f64 / SERVICE_TIME_US as f64
    }

    /// The `p`-th percentile sojourn (nearest rank), in service times.
    pub fn percentile(&self, p: usize) -> f64 {
        let n = self.requests();
        let rank = (n * p).div_ceil(100).clamp(1, n.max(1)) - 1;
        self.sojourns_us.get(rank).copied().unwrap_or(0) as f64 / SERVICE_TIME_US as f64
    }

    /// Fraction of the measured requests each replica served.
    pub fn shares(&self) -> Vec<f64> {
        fractions(&self.served)
    }

    /// Fraction of the measured requests each replica was the agent's first pick for.
    pub fn pick_shares(&self) -> Vec<f64> {
        fractions(&self.picked)
    }

    /// Combined share of the measured requests that the replicas in `which` served.
    pub fn share_of(&self, which: &[usize]) -> f64 {
        let shares = self.shares();
        which.iter().filter_map(|&i| shares.get(i)).sum()
    }

    /// Combined share of the measured requests first sent to the replicas in `which`.
    pub fn pick_share_of(&self, which: &[usize]) -> f64 {
        let shares = self.pick_shares();
        which.iter().filter_map(|&i| shares.get(i)).sum()
    }

    /// Redirects per 100 measured requests.
    pub fn redirects_per_100(&self) -> f64 {
        100.0 * self.redirects as f64 / self.requests().max(1) as f64
    }
}

fn fractions(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&n| n as f64 / total.max(1) as f64)
        .collect()
}

/// One policy's runs over several seeds, averaged.
#[derive(Debug, Clone)]
pub struct Summary {
    pub policy: Policy,
    pub seeds: usize,
    pub mean_sojourn: f64,
    /// Smallest and largest per-seed mean sojourn.
    pub mean_range: (f64, f64),
    pub p50: f64,
    pub p99: f64,
    pub shares: Vec<f64>,
    /// Combined first-pick share of each replica (see [`RunStats::pick_shares`]).
    pub pick_shares: Vec<f64>,
    pub redirects_per_100: f64,
    pub exhausted_per_100: f64,
}

impl Summary {
    /// Averages the runs of `policy` among `runs`; `None` when there are none.
    pub fn of(policy: Policy, runs: &[RunStats]) -> Option<Self> {
        let mine: Vec<&RunStats> = runs.iter().filter(|r| r.policy == policy).collect();
        let n = mine.len();
        let avg = |f: &dyn Fn(&RunStats) -> f64| mine.iter().map(|r| f(r)).sum::<f64>() / n as f64;
        let first = mine.first()?;
        let means = mine.iter().map(|r| r.mean_sojourn());
        let lo = means.clone().fold(f64::INFINITY, f64::min);
        let hi = means.fold(f64::NEG_INFINITY, f64::max);
        Some(Summary {
            policy,
            seeds: n,
            mean_sojourn: avg(&|r| r.mean_sojourn()),
            mean_range: (lo, hi),
            p50: avg(&|r| r.percentile(50)),
            p99: avg(&|r| r.percentile(99)),
            shares: (0..first.served.len())
                .map(|i| avg(&|r| r.shares().get(i).copied().unwrap_or(0.0)))
                .collect(),
            pick_shares: (0..first.picked.len())
                .map(|i| avg(&|r| r.pick_shares().get(i).copied().unwrap_or(0.0)))
                .collect(),
            redirects_per_100: avg(&|r| r.redirects_per_100()),
            exhausted_per_100: avg(&|r| 100.0 * r.exhausted as f64 / r.requests().max(1) as f64),
        })
    }
}

/// One line describing the scenario.
pub fn describe(s: &Scenario) -> String {
    let unit = |us: u64| us as f64 / SERVICE_TIME_US as f64;
    let staleness = match s.staleness {
        Staleness::Delayed(age) => format!("reports {} service times old", unit(age)),
        Staleness::Periodic(p) => format!("reports refreshed every {} service times", unit(p)),
    };
    let speeds: Vec<String> = s
        .replicas
        .iter()
        .map(|r| format!("{}w×{}", r.workers, unit(r.mean_service_us)))
        .collect();
    format!(
        "{} replicas (workers×mean service: {}), load {:.0} %, {staleness}, fanout {}, \
         busy limit {} service times, {} agents, {} requests per run ({} warm-up)",
        s.replicas.len(),
        speeds.join(" "),
        100.0 * s.load,
        s.fanout,
        unit(s.busy_limit_us),
        s.agents,
        s.arrivals,
        s.warmup,
    )
}

fn percents(shares: &[f64]) -> String {
    let parts: Vec<String> = shares.iter().map(|s| format!("{:.1}", 100.0 * s)).collect();
    parts.join(" ")
}

/// The full report of one seed's runs (for a replay).
pub fn seed_report(scenario: &Scenario, runs: &[RunStats]) -> String {
    let mut out = String::new();
    let seed = runs.first().map_or(0, |r| r.seed);
    let _ = writeln!(out, "seed {seed}: {}", describe(scenario));
    for r in runs {
        let _ = writeln!(
            out,
            "  {:<40} mean {:>7.2}  p50 {:>7.2}  p99 {:>7.2}  redirects/100 {:>6.2}  \
             exhausted {:>5}  served % [{}]  first pick % [{}]",
            r.policy.to_string(),
            r.mean_sojourn(),
            r.percentile(50),
            r.percentile(99),
            r.redirects_per_100(),
            r.exhausted,
            percents(&r.shares()),
            percents(&r.pick_shares()),
        );
    }
    out
}

/// A Markdown table of `summaries` (sojourns in service times).
pub fn markdown_table(scenario: &Scenario, summaries: &[Summary]) -> String {
    let slow = scenario.slow_replicas();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| policy | mean sojourn | per-seed means | p50 | p99 | slow replicas: first pick % | \
         slow replicas: served % | served per replica % | redirects /100 req | all busy /100 req |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|");
    for s in summaries {
        let slow_share: f64 = slow.iter().filter_map(|&i| s.shares.get(i)).sum();
        let slow_pick: f64 = slow.iter().filter_map(|&i| s.pick_shares.get(i)).sum();
        let _ = writeln!(
            out,
            "| {} | {:.2} | {:.2}–{:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {} | {:.2} | {:.2} |",
            s.policy,
            s.mean_sojourn,
            s.mean_range.0,
            s.mean_range.1,
            s.p50,
            s.p99,
            100.0 * slow_pick,
            100.0 * slow_share,
            percents(&s.shares),
            s.redirects_per_100,
            s.exhausted_per_100,
        );
    }
    out
}
