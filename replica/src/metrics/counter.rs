//! Counters, gauges and a latency histogram for numbers that one thread writes (the bridge's
//! reactor) and any thread reads (a metrics scrape). A single writer needs no locked
//! instruction: an increment is a relaxed load and a relaxed store, as cheap as a plain
//! `u64` add, and a reader sees each value whole. Pure data; no I/O.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A monotonic count with one writer.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one. Only the owning thread may call this (see the module header).
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`. Only the owning thread may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        let value = self.0.load(Ordering::Relaxed).wrapping_add(n);
        self.0.store(value, Ordering::Relaxed);
    }

    /// The count now, from any thread.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value with one writer that may go up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Sets the value. Only the owning thread may call this.
    #[inline]
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// The value now, from any thread.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency buckets, seconds: 100 µs (an authorize answered on the reactor
/// is a few µs; a busy turn tens) to 5 s (the agent's whole deadline), roughly ×2.5 apart.
pub const LATENCY_BOUNDS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Observations per bucket (not cumulative; the last is +Inf), their count and sum.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [Counter; LATENCY_BOUNDS.len() + 1],
    count: Counter,
    sum_us: Counter,
}

/// What a scrape reads from a [`Histogram`].
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// (upper bound, count in this bucket alone) for each bound, the last `+Inf`; the
    /// encoder makes them cumulative.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    /// Records `n` observations of `latency` each. Only the owning thread may call this.
    #[inline]
    pub fn observe(&self, latency: Duration, n: u64) {
        if n == 0 {
            return;
        }
        let seconds = latency.as_secs_f64();
        let index = LATENCY_BOUNDS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BOUNDS.len());
        if let Some(bucket) = self.buckets.get(index) {
            bucket.add(n);
        }
        self.count.add(n);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.add(micros.saturating_mul(n));
    }

    /// The buckets, their count and sum, now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets = LATENCY_BOUNDS
            .iter()
            .chain(std::iter::once(&f64::INFINITY))
            .zip(&self.buckets)
            .map(|(&bound, bucket)| (bound, bucket.get()))
            .collect();
        HistogramSnapshot {
            buckets,
            count: self.count.get(),
            sum_seconds: self.sum_us.get() as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_read_what_was_written() {
        let c = Counter::default();
        c.inc();
        c.add(4);
        assert_eq!(c.get(), 5);
        let g = Gauge::default();
        g.set(7);
        g.set(3);
        assert_eq!(g.get(), 3);
    }

    #[test]
    fn the_histogram_sorts_observations_into_buckets_with_exact_sums() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(80), 3); // ≤ 100 µs
        h.observe(Duration::from_millis(2), 1); // ≤ 2.5 ms
        h.observe(Duration::from_secs(9), 1); // +Inf only
        h.observe(Duration::from_secs(1), 0); // nothing
        let s = h.snapshot();
        assert_eq!(s.count, 5);
        assert!(
            (s.sum_seconds - (0.00024 + 0.002 + 9.0)).abs() < 1e-9,
            "{}",
            s.sum_seconds
        );
        assert_eq!(s.buckets[0], (0.0001, 3));
        assert_eq!(s.buckets[3], (0.001, 0));
        assert_eq!(s.buckets[4], (0.0025, 1));
        assert_eq!(s.buckets.len(), LATENCY_BOUNDS.len() + 1);
        assert_eq!(s.buckets.last(), Some(&(f64::INFINITY, 1)));
    }
}
