//! The deadlines of one agent connection: handshake, trickled frames, idle, age, and the
//! linger after a goodbye. Pure: `now` is passed in; the reactor arms one timer per connection
//! at [`Lifecycle::deadline`] and calls [`Lifecycle::on_timeout`] when it fires.
//!
//! The age limit is spread per connection by ±[`AGE_SPREAD`] ([`spread_age`]), derived from a
//! number the reactor gives (the connection's generation) rather than a clock or an RNG, so
//! agents that connected together are not all told to reconnect together, and the spread is
//! still exact in tests.

use std::time::{Duration, Instant};

/// The limits a lifecycle enforces (from the bridge config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A connection must finish its handshake within this.
    pub handshake: Duration,
    /// A frame that has started must be complete within this (stops trickling peers).
    pub frame: Duration,
    /// With nothing in flight and no complete request for this long, say goodbye (idle).
    pub idle: Duration,
    /// After this age, finish what is in flight and say goodbye (reconnect).
    pub max_age: Duration,
    /// After a goodbye or error, how long to wait for the bytes to drain before closing anyway.
    pub linger: Duration,
}

/// Relative spread of the per-connection age limit (0.1 = ±10 %). Why: thousands of agents
/// that connected in the same second (a deploy, a replica restart) would otherwise all get the
/// reconnect goodbye in the same second of every age period, and re-probe and reconnect in a
/// storm (a p99 spike each period); ±10 % spreads a 60 s period's goodbyes over 12 s.
pub const AGE_SPREAD: f64 = 0.1;

/// `max_age` scaled by a factor in `[1 - AGE_SPREAD, 1 + AGE_SPREAD]` chosen by `key`: cheap,
/// deterministic, and spread evenly for consecutive keys (a splitmix64 hash of the key).
pub fn spread_age(max_age: Duration, key: u64) -> Duration {
    let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // The top 53 bits as a fraction in [0, 1): exact in an f64.
    let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
    let factor = 1.0 - AGE_SPREAD + 2.0 * AGE_SPREAD * unit;
    // factor is in [0.9, 1.1) and max_age is a checked config value: the product is finite.
    max_age.mul_f64(factor)
}

/// What a fired deadline means for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Handshake not finished in time: send a timeout error and close.
    HandshakeTimeout,
    /// A partial frame sat too long: send a timeout error and close.
    FrameTimeout,
    /// No request for the idle timeout: send the idle goodbye and close.
    Idle,
    /// Age limit reached: stop reading, finish in-flight requests, then the reconnect goodbye.
    Aged,
    /// Aged, but in-flight requests did not finish within the idle timeout: close anyway.
    DrainOver,
    /// The linger after a goodbye is over: close now.
    LingerOver,
}

/// One connection's deadlines.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    timeouts: Timeouts,
    opened: Instant,
    established: bool,
    last_request: Instant,
    frame_started: Option<Instant>,
    aged_at: Option<Instant>,
    closing_since: Option<Instant>,
}

impl Lifecycle {
    /// A connection accepted at `now` whose age limit is `timeouts.max_age` spread by
    /// [`spread_age`] with `key` (the reactor passes the connection's generation).
    pub fn with_spread_age(mut timeouts: Timeouts, now: Instant, key: u64) -> Self {
        timeouts.max_age = spread_age(timeouts.max_age, key);
        Self::new(timeouts, now)
    }

    /// A connection accepted at `now`, with exactly `timeouts.max_age` as its age limit.
    pub fn new(timeouts: Timeouts, now: Instant) -> Self {
        Lifecycle {
            timeouts,
            opened: now,
            established: false,
            last_request: now,
            frame_started: None,
            aged_at: None,
            closing_since: None,
        }
    }

    /// The handshake finished at `now`; idle time counts from here.
    pub fn on_established(&mut self, now: Instant) {
        self.established = true;
        self.last_request = now;
    }

    /// A complete request arrived at `now`.
    pub fn on_request(&mut self, now: Instant) {
        self.last_request = now;
    }

    /// Whether a partial frame is sitting in the read buffer after the latest read.
    pub fn on_partial_frame(&mut self, partial: bool, now: Instant) {
        match (partial, self.frame_started) {
            (true, None) => self.frame_started = Some(now),
            (false, _) => self.frame_started = None,
            (true, Some(_)) => {}
        }
    }

    /// The connection sent its last words at `now` and waits only for them to drain.
    pub fn on_closing(&mut self, now: Instant) {
        self.closing_since.get_or_insert(now);
    }

    /// True once the age limit has passed (the connection reads no more requests).
    pub fn is_aged(&self) -> bool {
        self.aged_at.is_some()
    }

    /// The earliest instant at which something must happen, given the requests in flight.
    pub fn deadline(&self, in_flight: usize) -> Instant {
        if let Some(since) = self.closing_since {
            return since + self.timeouts.linger;
        }
        let mut deadline = if !self.established {
            self.opened + self.timeouts.handshake
        } else if let Some(aged_at) = self.aged_at {
            // Only in-flight requests remain; bound how long they may take.
            aged_at + self.timeouts.idle
        } else if in_flight == 0 {
            (self.opened + self.timeouts.max_age).min(self.last_request + self.timeouts.idle)
        } else {
            self.opened + self.timeouts.max_age
        };
        if let Some(started) = self.frame_started {
            deadline = deadline.min(started + self.timeouts.frame);
        }
        deadline
    }

    /// Called when the timer fires (or at any time); says what expired, if anything.
    pub fn on_timeout(&mut self, now: Instant, in_flight: usize) -> Option<Expiry> {
        if let Some(since) = self.closing_since {
            return (now >= since + self.timeouts.linger).then_some(Expiry::LingerOver);
        }
        // Invariant relied on by the reactor: when this returns None, deadline() is after now.
        if !self.established {
            if now >= self.opened + self.timeouts.handshake {
                return Some(Expiry::HandshakeTimeout);
            }
        } else if let Some(aged_at) = self.aged_at {
            if now >= aged_at + self.timeouts.idle {
                return Some(Expiry::DrainOver);
            }
        } else if now >= self.opened + self.timeouts.max_age {
            self.aged_at = Some(now);
            return Some(Expiry::Aged);
        } else if in_flight == 0 && now >= self.last_request + self.timeouts.idle {
            return Some(Expiry::Idle);
        }
        match self.frame_started {
            Some(started) if now >= started + self.timeouts.frame => Some(Expiry::FrameTimeout),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        handshake: Duration::from_secs(5),
        frame: Duration::from_secs(3),
        idle: Duration::from_secs(10),
        max_age: Duration::from_secs(60),
        linger: Duration::from_secs(1),
    };

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn an_unfinished_handshake_times_out() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(T, t0);
        assert_eq!(l.deadline(0), t0 + s(5));
        assert_eq!(l.on_timeout(t0 + s(4), 0), None);
        assert_eq!(l.on_timeout(t0 + s(5), 0), Some(Expiry::HandshakeTimeout));
    }

    #[test]
    fn idle_counts_from_the_last_request_and_waits_for_in_flight_work() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(T, t0);
        l.on_established(t0 + s(1));
        l.on_request(t0 + s(4));
        assert_eq!(l.deadline(0), t0 + s(14));
        assert_eq!(l.on_timeout(t0 + s(13), 0), None);
        // A request still in service keeps the connection from going idle.
        assert_eq!(l.deadline(1), t0 + s(60));
        assert_eq!(l.on_timeout(t0 + s(14), 1), None);
        assert_eq!(l.on_timeout(t0 + s(14), 0), Some(Expiry::Idle));
    }

    #[test]
    fn the_age_limit_fires_once_then_idle_no_longer_applies() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(T, t0);
        l.on_established(t0);
        for k in 1..=6 {
            l.on_request(t0 + s(9 * k));
        }
        assert_eq!(l.deadline(0), t0 + s(60));
        assert_eq!(l.on_timeout(t0 + s(60), 2), Some(Expiry::Aged));
        assert!(l.is_aged());
        // Draining: idle no longer applies, but the drain itself is bounded.
        assert_eq!(l.deadline(2), t0 + s(70));
        assert_eq!(l.on_timeout(t0 + s(69), 0), None);
        assert_eq!(l.on_timeout(t0 + s(70), 2), Some(Expiry::DrainOver));
    }

    #[test]
    fn when_nothing_expires_the_deadline_is_in_the_future() {
        // The reactor re-arms the timer at deadline(); a past deadline would spin.
        let t0 = Instant::now();
        for step in 0..200u64 {
            let mut l = Lifecycle::new(T, t0);
            if step % 2 == 0 {
                l.on_established(t0 + s(1));
            }
            if step % 3 == 0 {
                l.on_partial_frame(true, t0 + s(2));
            }
            let now = t0 + Duration::from_millis(step * 400);
            for in_flight in [0, 1] {
                if l.on_timeout(now, in_flight).is_none() {
                    assert!(
                        l.deadline(in_flight) > now,
                        "step {step} in_flight {in_flight}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_trickled_frame_times_out_and_a_completed_one_clears_the_timer() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(T, t0);
        l.on_established(t0);
        l.on_partial_frame(true, t0 + s(1));
        l.on_partial_frame(true, t0 + s(2)); // more bytes, same frame: the clock keeps running
        assert_eq!(l.deadline(0), t0 + s(4));
        assert_eq!(l.on_timeout(t0 + s(4), 0), Some(Expiry::FrameTimeout));
        l.on_partial_frame(false, t0 + s(4));
        assert_eq!(l.deadline(0), t0 + s(10));
    }

    #[test]
    fn the_age_limit_is_spread_by_ten_percent_per_connection() {
        let t0 = Instant::now();
        let ages: Vec<Duration> = (1..=1000u64).map(|g| spread_age(s(60), g)).collect();
        assert!(ages
            .iter()
            .all(|a| *a >= Duration::from_secs(54) && *a < Duration::from_secs(66)));
        // Consecutive generations spread evenly: each 1.2 s tenth of the range gets ~100.
        let mut buckets = [0usize; 10];
        for a in &ages {
            let tenth = ((a.as_secs_f64() - 54.0) / 1.2) as usize;
            buckets[tenth.min(9)] += 1;
        }
        assert!(
            buckets.iter().all(|&b| (70..=130).contains(&b)),
            "{buckets:?}"
        );
        // Deterministic: the same key always gives the same limit, and the lifecycle uses it.
        assert_eq!(spread_age(s(60), 7), spread_age(s(60), 7));
        let mut l = Lifecycle::with_spread_age(T, t0, 7);
        l.on_established(t0);
        let aged_at = t0 + spread_age(s(60), 7);
        assert_eq!(l.deadline(1), aged_at);
        assert_eq!(l.on_timeout(aged_at - Duration::from_millis(1), 1), None);
        assert_eq!(l.on_timeout(aged_at, 1), Some(Expiry::Aged));
    }

    #[test]
    fn after_a_goodbye_only_the_linger_matters() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(T, t0);
        l.on_closing(t0 + s(2));
        assert_eq!(l.deadline(0), t0 + s(3));
        assert_eq!(l.on_timeout(t0 + s(2), 0), None);
        assert_eq!(l.on_timeout(t0 + s(3), 0), Some(Expiry::LingerOver));
    }
}
