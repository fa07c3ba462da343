//! Which servers to keep away from for now: servers that said "busy, go elsewhere", "too many
//! connections", or reset a connection are avoided until an instant; servers that did not
//! answer their last probe are suspect until they answer one again; servers whose TCP connect
//! failed (refused, reset, timed out, or still pending when another server had connected) are
//! *unconnectable* until their connect backoff ends, and then *on probation* until a
//! connection to them is established, whatever their probes say: a firewall that drops TCP
//! but lets UDP through must not make new connections wait for it. A server on probation is
//! tried after every other one, and proves itself through a move in the background (a
//! successor connection, which no request waits for).
//!
//! Pure: `now` is an argument. One entry per configured server (memory bounded by the server
//! count, itself capped by `config::MAX_SERVERS`); server indices outside the list are
//! ignored. Called by the probe round (to choose whom to probe), the redirect path (to order
//! retries) and the request path (to record refusals).

use std::time::{Duration, Instant};

/// Avoid-until instants, suspect marks and connect backoffs, one per server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvoidList {
    until: Vec<Option<Instant>>,
    suspect: Vec<bool>,
    /// Connect failures in a row, and until when the server is not to be connected to first.
    connect: Vec<(u32, Option<Instant>)>,
}

/// How long a server whose connect failed is tried only after every other one: `initial`
/// after the first failure, doubled per failure in a row, at most `max`. Only an established
/// connection to it clears this (never a probe reply: probes are UDP, the failure was TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectBackoff {
    pub initial: Duration,
    pub max: Duration,
}

impl ConnectBackoff {
    /// The backoff after `failures` (≥ 1) failures in a row.
    pub fn after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

impl AvoidList {
    /// Nothing avoided, nothing suspect, for `server_count` servers.
    pub fn new(server_count: usize) -> Self {
        AvoidList {
            until: vec![None; server_count],
            suspect: vec![false; server_count],
            connect: vec![(0, None); server_count],
        }
    }

    /// How many servers this list covers.
    pub fn server_count(&self) -> usize {
        self.until.len()
    }

    /// Avoid `server` for `duration` from `now`. An existing longer avoidance is kept (a
    /// second "busy" never shortens the first). Returns false for an unknown server.
    pub fn avoid_for(&mut self, server: usize, now: Instant, duration: Duration) -> bool {
        let until = now.checked_add(duration).unwrap_or(now);
        self.avoid_until(server, until)
    }

    /// Avoid `server` until `until` (keeping a later existing instant). False when unknown.
    pub fn avoid_until(&mut self, server: usize, until: Instant) -> bool {
        match self.until.get_mut(server) {
            Some(slot) => {
                *slot = Some(slot.map_or(until, |old| old.max(until)));
                true
            }
            None => false,
        }
    }

    /// Whether `server` is avoided at `now` (unknown servers count as avoided).
    pub fn is_avoided(&self, server: usize, now: Instant) -> bool {
        match self.until.get(server) {
            Some(Some(until)) => now < *until,
            Some(None) => false,
            None => true,
        }
    }

    /// Marks `server` suspect (it did not answer a probe). False when unknown.
    pub fn mark_suspect(&mut self, server: usize) -> bool {
        self.set_suspect(server, true)
    }

    /// Clears the suspect mark (it answered a probe or accepted a connection).
    pub fn clear_suspect(&mut self, server: usize) -> bool {
        self.set_suspect(server, false)
    }

    /// Whether `server` is suspect (unknown servers count as suspect).
    pub fn is_suspect(&self, server: usize) -> bool {
        self.suspect.get(server).copied().unwrap_or(true)
    }

    /// Neither avoided nor suspect at `now`.
    pub fn is_healthy(&self, server: usize, now: Instant) -> bool {
        !self.is_avoided(server, now) && !self.is_suspect(server)
    }

    /// A connect to `server` failed at `now`: it is unconnectable for the next backoff step.
    /// False when unknown.
    pub fn connect_failed(
        &mut self,
        server: usize,
        now: Instant,
        backoff: &ConnectBackoff,
    ) -> bool {
        match self.connect.get_mut(server) {
            Some((failures, until)) => {
                *failures = failures.saturating_add(1);
                *until = now.checked_add(backoff.after(*failures));
                true
            }
            None => false,
        }
    }

    /// A connection to `server` was established: its connect backoff starts over.
    pub fn connect_succeeded(&mut self, server: usize) {
        if let Some(slot) = self.connect.get_mut(server) {
            *slot = (0, None);
        }
    }

    /// Whether `server`'s last connect failed and none succeeded since (in its backoff or
    /// on probation after it).
    pub fn connect_failing(&self, server: usize) -> bool {
        self.connect
            .get(server)
            .is_none_or(|(failures, _)| *failures > 0)
    }

    /// Whether `server` is in its connect backoff at `now` (unknown servers count as such).
    pub fn is_unconnectable(&self, server: usize, now: Instant) -> bool {
        match self.connect.get(server) {
            Some((_, Some(until))) => now < *until,
            Some((_, None)) => false,
            None => true,
        }
    }

    /// The earliest instant after `now` at which an avoidance ends, if any (for a caller that
    /// wants to wake up when a server becomes usable again).
    pub fn next_expiry(&self, now: Instant) -> Option<Instant> {
        self.until
            .iter()
            .flatten()
            .copied()
            .filter(|&t| t > now)
            .min()
    }

    /// `servers` reordered for trying: healthy first, then suspect, then avoided, then on
    /// probation (a connect failed, backoff over), then unconnectable (in their connect
    /// backoff); the given order kept within each group. Unknown server indices are dropped.
    /// Nothing is removed otherwise, so when every server is avoided the caller can still try
    /// them as a last resort within its deadline.
    pub fn deprioritise(&self, servers: &[usize], now: Instant) -> Vec<usize> {
        let rank = |s: usize| {
            if self.is_unconnectable(s, now) {
                4
            } else if self.connect_failing(s) {
                3
            } else if self.is_avoided(s, now) {
                2
            } else if self.is_suspect(s) {
                1
            } else {
                0
            }
        };
        let mut known: Vec<usize> = servers
            .iter()
            .copied()
            .filter(|&s| s < self.server_count())
            .collect();
        known.sort_by_key(|&s| rank(s)); // stable: the given order within a group
        known
    }

    fn set_suspect(&mut self, server: usize, value: bool) -> bool {
        match self.suspect.get_mut(server) {
            Some(slot) => {
                *slot = value;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_busy_server_is_avoided_for_the_given_time_only() {
        let t0 = Instant::now();
        let mut a = AvoidList::new(3);
        assert!(a.avoid_for(1, t0, 5000 * MS));
        assert!(a.is_avoided(1, t0));
        assert!(a.is_avoided(1, t0 + 4999 * MS));
        assert!(!a.is_avoided(1, t0 + 5000 * MS));
        assert!(!a.is_avoided(0, t0) && !a.is_avoided(2, t0));
    }

    #[test]
    fn a_second_refusal_never_shortens_the_first() {
        let t0 = Instant::now();
        let mut a = AvoidList::new(2);
        a.avoid_for(0, t0, 5000 * MS);
        a.avoid_for(0, t0 + 100 * MS, 1000 * MS);
        assert!(a.is_avoided(0, t0 + 4000 * MS));
        a.avoid_for(0, t0 + 4000 * MS, 5000 * MS);
        assert!(a.is_avoided(0, t0 + 8000 * MS));
        assert_eq!(a.next_expiry(t0), Some(t0 + 9000 * MS));
        assert_eq!(a.next_expiry(t0 + 9000 * MS), None);
    }

    #[test]
    fn suspect_marks_come_and_go_with_probe_answers() {
        let t0 = Instant::now();
        let mut a = AvoidList::new(2);
        assert!(a.is_healthy(1, t0));
        a.mark_suspect(1);
        assert!(a.is_suspect(1) && !a.is_healthy(1, t0) && !a.is_avoided(1, t0));
        a.clear_suspect(1);
        assert!(a.is_healthy(1, t0));
    }

    #[test]
    fn unknown_servers_are_ignored_and_never_usable() {
        let t0 = Instant::now();
        let mut a = AvoidList::new(2);
        assert!(!a.avoid_for(2, t0, MS));
        assert!(!a.mark_suspect(99));
        assert!(a.is_avoided(2, t0) && a.is_suspect(2));
        assert_eq!(a.server_count(), 2);
        assert_eq!(a.deprioritise(&[5, 1, 0], t0), vec![1, 0]);
    }

    #[test]
    fn deprioritise_puts_healthy_then_suspect_then_avoided() {
        let t0 = Instant::now();
        let mut a = AvoidList::new(5);
        a.avoid_for(0, t0, 1000 * MS);
        a.mark_suspect(3);
        a.mark_suspect(0);
        assert_eq!(a.deprioritise(&[0, 1, 2, 3, 4], t0), vec![1, 2, 4, 3, 0]);
        assert_eq!(a.deprioritise(&[4, 3, 0, 2], t0), vec![4, 2, 3, 0]);
        // After the avoidance ends, 0 is merely suspect.
        assert_eq!(a.deprioritise(&[0, 1, 3], t0 + 1000 * MS), vec![1, 0, 3]);
    }

    #[test]
    fn a_failed_connect_puts_a_server_last_until_its_backoff_ends() {
        let t0 = Instant::now();
        let backoff = ConnectBackoff {
            initial: 1000 * MS,
            max: 3000 * MS,
        };
        let mut a = AvoidList::new(3);
        assert!(a.connect_failed(1, t0, &backoff));
        // Avoided and suspect servers still come before one whose TCP connects fail.
        a.avoid_for(2, t0, 5000 * MS);
        assert_eq!(a.deprioritise(&[1, 0, 2], t0), vec![0, 2, 1]);
        assert!(a.is_unconnectable(1, t0 + 999 * MS));
        assert!(!a.is_unconnectable(1, t0 + 1000 * MS));
        // Its backoff over, it is on probation: still after the avoided one, until it connects.
        assert_eq!(a.deprioritise(&[1, 0, 2], t0 + 1000 * MS), vec![0, 2, 1]);
        a.mark_suspect(0);
        assert_eq!(a.deprioritise(&[1, 0], t0 + 1000 * MS), vec![0, 1]);
        a.clear_suspect(0);
        // Failures in a row double the backoff, up to its maximum.
        a.connect_failed(1, t0, &backoff);
        assert!(a.is_unconnectable(1, t0 + 1999 * MS));
        a.connect_failed(1, t0, &backoff);
        a.connect_failed(1, t0, &backoff);
        assert!(a.is_unconnectable(1, t0 + 2999 * MS) && !a.is_unconnectable(1, t0 + 3000 * MS));
        // Probe answers do not touch it; an established connection does.
        a.clear_suspect(1);
        assert!(a.is_unconnectable(1, t0));
        a.connect_succeeded(1);
        assert!(!a.is_unconnectable(1, t0) && !a.connect_failing(1));
        assert_eq!(a.deprioritise(&[1, 0], t0), vec![1, 0]);
        assert_eq!(backoff.after(1), 1000 * MS);
        assert_eq!(backoff.after(u32::MAX), 3000 * MS);
    }
}
