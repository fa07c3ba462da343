//! A log-linear latency histogram (HdrHistogram-style): exact below 2^[`SUB_BITS`], then each
//! power of two is split into 2^[`SUB_BITS`] equal buckets, so a reported value is never more
//! than 1/64 (1.6 %) above the true one. Fixed size, no allocation per record, and mergeable
//! (element-wise sum), so each load-generator thread keeps its own and the totals are merged.
//!
//! Pure: values are plain `u64` (the load generator records microseconds). Called by
//! [`super::stats`].

/// Mantissa bits: 2^6 = 64 buckets per power of two, values below 64 are exact. Why 6: a
/// reported percentile within 1.6 % is finer than run-to-run noise, and the whole histogram
/// stays at 2240 counters (17.5 KiB), cheap to copy once a second per server.
pub const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Largest value kept in its own bucket: 2^40 - 1 (µs: about 12.7 days). Larger values are
/// counted in the last bucket (the exact maximum is still tracked separately).
pub const MAX_TRACKED: u64 = (1 << 40) - 1;
/// Bucket count: one group of 64 exact buckets, then 64 per power of two from 2^6 to 2^39.
const BUCKETS: usize = ((40 - SUB_BITS + 1) as usize) << SUB_BITS;

/// Counts of values in log-linear buckets, plus the exact count, sum, min and max.
#[derive(Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min())
            .field("max", &self.max)
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket a value falls in.
fn bucket_of(value: u64) -> usize {
    let v = value.min(MAX_TRACKED);
    if v < SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    let mantissa = v >> shift; // in [SUB, 2 * SUB)
    (((shift + 1) as u64 * SUB) + (mantissa - SUB)) as usize
}

/// The largest value that falls in `bucket`.
fn bucket_high(bucket: usize) -> u64 {
    let b = bucket as u64;
    if b < SUB {
        return b;
    }
    let shift = b / SUB - 1;
    let mantissa = SUB + b % SUB;
    ((mantissa + 1) << shift) - 1
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Counts one value.
    pub fn record(&mut self, value: u64) {
        if let Some(c) = self.counts.get_mut(bucket_of(value)) {
            *c += 1;
        }
        self.count += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds every value counted in `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Forgets every value.
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.count = 0;
        self.sum = 0;
        self.min = u64::MAX;
        self.max = 0;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest value recorded (exact); 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest value recorded (exact); 0 when empty.
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    /// The mean of the values recorded (exact); 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at percentile `p` (0..=100) by nearest rank: the smallest recorded value `v`
    /// such that at least `p` % of the values are ≤ `v`, reported as the top of its bucket
    /// (exact below 128, within 1.6 % above) and never above the true maximum. 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let p = if p.is_nan() {
            100.0
        } else {
            p.clamp(0.0, 100.0)
        };
        let rank = ((p / 100.0 * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (bucket, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(bucket).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact_percentiles_by_nearest_rank() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.percentile(50.0), 50);
        assert_eq!(h.percentile(90.0), 90);
        assert_eq!(h.percentile(99.0), 99);
        assert_eq!(h.percentile(99.9), 100);
        assert_eq!(h.percentile(100.0), 100);
        assert_eq!(h.percentile(0.0), 1);
        assert_eq!((h.count(), h.min(), h.max()), (100, 1, 100));
        assert_eq!(h.mean(), 50.5);
    }

    #[test]
    fn large_values_are_reported_at_most_one_sixty_fourth_high() {
        let mut h = Histogram::new();
        h.record(1_000_000);
        h.record(1_000);
        // 1000 lies in [1000, 1007] (width 8 between 2^9 and 2^10): its bucket's top is 1007.
        assert_eq!(h.percentile(50.0), 1007);
        // The top value is clamped to the exact maximum.
        assert_eq!(h.percentile(100.0), 1_000_000);
        for v in [
            64u64,
            127,
            128,
            129,
            1 << 20,
            (1 << 20) + 12345,
            MAX_TRACKED,
        ] {
            let high = bucket_high(bucket_of(v));
            assert!(high >= v && high - v <= v / 64, "{v} -> {high}");
        }
    }

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        for b in 1..BUCKETS {
            assert_eq!(bucket_of(bucket_high(b - 1) + 1), b);
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn merged_histograms_equal_one_that_saw_every_value() {
        let (mut a, mut b, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        for v in 0..5000u64 {
            let v = v * 37 % 10_007;
            if v % 3 == 0 { &mut a } else { &mut b }.record(v);
            all.record(v);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(a.percentile(99.0), all.percentile(99.0));
    }

    #[test]
    fn an_empty_histogram_reports_zeros() {
        let mut h = Histogram::new();
        assert_eq!(
            (h.percentile(99.0), h.max(), h.min(), h.mean()),
            (0, 0, 0, 0.0)
        );
        h.record(7);
        h.clear();
        assert_eq!(h, Histogram::new());
    }
}
