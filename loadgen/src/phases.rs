//! A run cut into phases (`--phases 10,30`: before a fault, during it, after it) and a
//! per-second timeline, for the fault benchmark (scripts/bench-faults.sh): each phase gets
//! its own summary (latency percentiles, worst request, errors, server shares), each second
//! its requests, errors, p99, worst and shares.
//!
//! Pure. Fed by `cli` with each second's merged counters as the run reports them. A second
//! belongs to the phase its start falls in: with a split at 10, seconds 1..=10 (0-10 s) are
//! the first phase and second 11 the next. Answers after the last full second (the drain)
//! are in the run's totals only.

use super::stats::{RunLabel, Stats, Summary};
use serde::Serialize;

/// Most phase splits (16): a fault benchmark needs two.
pub const MAX_PHASE_SPLITS: usize = 16;

/// One phase's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseSummary {
    /// Where the phase starts and ends, seconds from the run's start.
    pub from_s: u64,
    pub to_s: u64,
    #[serde(flatten)]
    pub summary: Summary,
}

/// One second of the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecondSummary {
    /// The second's end, seconds from the run's start.
    pub second: u64,
    pub requests: u64,
    pub errors: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Each server's share of the second's answers, percent.
    pub share_percent: Vec<f64>,
}

/// Phase counters and the timeline of a run.
#[derive(Debug, Clone)]
pub struct Phases {
    splits: Vec<u64>,
    stats: Vec<Stats>,
    last_second: Vec<u64>,
    seconds: Vec<SecondSummary>,
}

impl Phases {
    /// Phases split at `splits` (increasing seconds) for `servers` servers.
    pub fn new(splits: &[u64], servers: usize) -> Phases {
        Phases {
            splits: splits.to_vec(),
            stats: vec![Stats::new(servers); splits.len() + 1],
            last_second: vec![0; splits.len() + 1],
            seconds: Vec::new(),
        }
    }

    /// Counts second `second` (1-based: the interval `second - 1 .. second`).
    pub fn add_second(&mut self, second: u64, stats: &Stats) {
        let start = second.saturating_sub(1);
        let phase = self.splits.iter().filter(|&&split| split <= start).count();
        if let (Some(total), Some(last)) =
            (self.stats.get_mut(phase), self.last_second.get_mut(phase))
        {
            total.merge(stats);
            *last = (*last).max(second);
        }
        self.seconds.push(SecondSummary {
            second,
            requests: stats.requests(),
            errors: stats.errors_total(),
            p99_us: stats.latency.percentile(99.0),
            max_us: stats.latency.max(),
            share_percent: stats.shares().iter().map(|s| s * 100.0).collect(),
        });
    }

    /// The phases' summaries (labelled like the run) and the timeline.
    pub fn finish(self, label: &RunLabel) -> (Vec<PhaseSummary>, Vec<SecondSummary>) {
        let mut from = 0;
        let mut phases = Vec::with_capacity(self.stats.len());
        for (i, stats) in self.stats.iter().enumerate() {
            let to = match self.splits.get(i) {
                Some(&split) => split,
                None => self.last_second[i].max(from),
            };
            let elapsed = to.saturating_sub(from) as f64;
            phases.push(PhaseSummary {
                from_s: from,
                to_s: to,
                summary: Summary::new(label, stats, elapsed),
            });
            from = to;
        }
        (phases, self.seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label() -> RunLabel {
        RunLabel {
            mode: "closed".into(),
            agents: 1,
            threads: 1,
            balancing: "probing".into(),
            mix: "authorize=1".into(),
            servers: vec!["a".into(), "b".into()],
        }
    }

    fn second(latency_us: u64, server: usize, errors: u64) -> Stats {
        let mut s = Stats::new(2);
        s.answered(Some(server), latency_us, true);
        s.error(super::super::stats::ErrorKind::DeadlineExceeded, errors);
        s
    }

    #[test]
    fn seconds_fall_into_the_phase_their_start_is_in() {
        let mut phases = Phases::new(&[2, 4], 2);
        for s in 1..=5 {
            // Second 3 and 4 (the fault) are slow and on server 1.
            let (latency, server) = if (3..=4).contains(&s) {
                (900, 1)
            } else {
                (10, 0)
            };
            phases.add_second(s, &second(latency, server, u64::from(s == 4)));
        }
        let (phases, seconds) = phases.finish(&label());
        let spans: Vec<(u64, u64)> = phases.iter().map(|p| (p.from_s, p.to_s)).collect();
        assert_eq!(spans, [(0, 2), (2, 4), (4, 5)]);
        let during = &phases[1].summary;
        assert_eq!(
            (during.requests, during.errors, during.latency_us.max),
            (3, 1, 900)
        );
        assert_eq!(during.servers[1].share_percent, 100.0);
        assert_eq!(phases[0].summary.latency_us.max, 10);
        assert_eq!(phases[0].summary.throughput_rps, 1.0);
        assert_eq!(seconds.len(), 5);
        assert_eq!(
            (seconds[3].second, seconds[3].errors, seconds[3].p99_us),
            (4, 1, 900)
        );
        assert_eq!(seconds[0].share_percent, [100.0, 0.0]);
    }
}
