//! Which authenticated probes get a reply: only those sent within the window of this server's
//! wall clock, and each at most once. A probe carries its sending time under its tag, so a
//! probe captured on the wire is worth nothing after the window; within the window, a cache of
//! the tags already answered refuses it a second time.
//!
//! Pure: the wall clock (`now_unix_ms`) is passed in. Called on the reactor thread after a
//! probe's tag has verified (an unauthenticated datagram never reaches the cache). Memory: at
//! most `capacity` entries of about 50 bytes with the hash set's overhead (3.3 MiB at the
//! default 65,536, and only while that many probes arrive within one window). When the cache is full the oldest entry goes and the guard's horizon rises to its
//! sending time: probes sent at or before the horizon are refused, so a probe can never be
//! answered twice, whatever the load; only an agent whose clock lags by more than the cache's
//! span loses its replies (at the default window and capacity, that needs over 2,000 probes a
//! second on one server).

use std::collections::{HashSet, VecDeque};

/// Why a verified probe gets no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeRefusal {
    /// Sent outside the window: `skew_ms` is the sending time minus this server's clock
    /// (negative: in the past).
    OutsideWindow { skew_ms: i64 },
    /// Answered before (or sent at or before the horizon of a cache that overflowed).
    Replayed,
}

/// The window and the replay cache.
#[derive(Debug)]
pub struct ProbeGuard {
    window_ms: u64,
    capacity: usize,
    seen: HashSet<u128>,
    /// Entries in the order they were answered: (sending time, tag).
    order: VecDeque<(u64, u128)>,
    /// Probes sent at or before this time are refused (the cache no longer knows them).
    horizon_ms: u64,
}

impl ProbeGuard {
    /// Answers probes sent within `window_ms` of the server's clock (either side, for clocks
    /// that differ), remembering up to `capacity` of them.
    pub fn new(window_ms: u64, capacity: usize) -> Self {
        ProbeGuard {
            window_ms,
            capacity: capacity.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
            horizon_ms: 0,
        }
    }

    /// A new window (a reload); the replay cache keeps what it holds.
    pub fn set_window(&mut self, window_ms: u64) {
        self.window_ms = window_ms;
    }

    /// Whether the verified probe with this `tag`, sent at `sent_unix_ms`, may be answered at
    /// `now_unix_ms`; on `Ok` it is remembered.
    pub fn admit(
        &mut self,
        sent_unix_ms: u64,
        tag: [u8; 16],
        now_unix_ms: u64,
    ) -> Result<(), ProbeRefusal> {
        if sent_unix_ms.abs_diff(now_unix_ms) > self.window_ms {
            let skew = i128::from(sent_unix_ms) - i128::from(now_unix_ms);
            let skew_ms = i64::try_from(skew).unwrap_or(if skew < 0 { i64::MIN } else { i64::MAX });
            return Err(ProbeRefusal::OutsideWindow { skew_ms });
        }
        // Entries sent before the window can go: their probes fail the window check anyway.
        let oldest_in_window = now_unix_ms.saturating_sub(self.window_ms);
        while let Some(&(sent, tag)) = self.order.front() {
            if sent >= oldest_in_window {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&tag);
        }
        let tag = u128::from_be_bytes(tag);
        if sent_unix_ms <= self.horizon_ms || self.seen.contains(&tag) {
            return Err(ProbeRefusal::Replayed);
        }
        if self.order.len() >= self.capacity {
            if let Some((sent, evicted)) = self.order.pop_front() {
                self.seen.remove(&evicted);
                self.horizon_ms = self.horizon_ms.max(sent);
            }
        }
        self.order.push_back((sent_unix_ms, tag));
        self.seen.insert(tag);
        Ok(())
    }

    /// Probes remembered now.
    pub fn remembered(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_796_083_200_000;

    fn tag(n: u8) -> [u8; 16] {
        [n; 16]
    }

    #[test]
    fn a_probe_is_answered_once_and_only_within_the_window() {
        let mut guard = ProbeGuard::new(30_000, 100);
        assert_eq!(guard.admit(T, tag(1), T + 5), Ok(()));
        assert_eq!(guard.admit(T, tag(1), T + 10), Err(ProbeRefusal::Replayed));
        // A clock 20 s ahead or behind is within the window; 31 s is not.
        assert_eq!(guard.admit(T + 20_000, tag(2), T), Ok(()));
        assert_eq!(guard.admit(T - 20_000, tag(3), T), Ok(()));
        assert_eq!(
            guard.admit(T, tag(4), T + 31_000),
            Err(ProbeRefusal::OutsideWindow { skew_ms: -31_000 })
        );
        assert_eq!(
            guard.admit(u64::MAX, tag(5), T),
            Err(ProbeRefusal::OutsideWindow {
                skew_ms: i64::try_from(u64::MAX - T).unwrap_or(i64::MAX)
            })
        );
        // Replayed a minute later: outside the window, whatever the cache holds.
        assert!(matches!(
            guard.admit(T, tag(1), T + 60_000),
            Err(ProbeRefusal::OutsideWindow { .. })
        ));
    }

    #[test]
    fn entries_leave_with_the_window_so_the_cache_holds_only_the_window() {
        let mut guard = ProbeGuard::new(1_000, 100);
        for n in 0..10u8 {
            guard
                .admit(T + u64::from(n) * 100, tag(n), T + u64::from(n) * 100)
                .unwrap();
        }
        assert_eq!(guard.remembered(), 10);
        guard.admit(T + 2_500, tag(99), T + 2_500).unwrap();
        assert_eq!(guard.remembered(), 1);
    }

    #[test]
    fn a_full_cache_raises_its_horizon_and_never_answers_a_probe_twice() {
        let mut guard = ProbeGuard::new(30_000, 3);
        for n in 0..3u8 {
            guard.admit(T + u64::from(n), tag(n), T + 10).unwrap();
        }
        // A fourth evicts the first: its time becomes the horizon.
        guard.admit(T + 5, tag(3), T + 10).unwrap();
        assert_eq!(guard.remembered(), 3);
        assert_eq!(guard.admit(T, tag(0), T + 10), Err(ProbeRefusal::Replayed));
        // Older than the horizon: refused even though never seen.
        assert_eq!(guard.admit(T, tag(50), T + 10), Err(ProbeRefusal::Replayed));
        // Still-remembered ones are refused as replays; newer ones are answered.
        assert_eq!(
            guard.admit(T + 1, tag(1), T + 10),
            Err(ProbeRefusal::Replayed)
        );
        assert_eq!(guard.admit(T + 6, tag(6), T + 10), Ok(()));
    }
}
