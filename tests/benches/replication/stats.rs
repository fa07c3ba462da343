//! Percentiles of measured durations, and formatting them. Pure.

use std::time::Duration;

/// Nearest-rank percentiles of a set of durations.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    sorted: Vec<Duration>,
}

impl Summary {
    pub fn of(mut values: Vec<Duration>) -> Summary {
        values.sort_unstable();
        Summary { sorted: values }
    }

    pub fn count(&self) -> usize {
        self.sorted.len()
    }

    /// The nearest-rank `p`th percentile (0 < p ≤ 100); zero for an empty set.
    pub fn pct(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    pub fn max(&self) -> Duration {
        self.sorted.last().copied().unwrap_or_default()
    }
}

/// A duration in ms with µs resolution (`12.345`).
pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}
