//! Liveness of a replication link, for either end: when to send a heartbeat, when the peer
//! has been silent too long, and when an expected answer is overdue (the ClearSCADA seed's
//! poll requests with a timeout, in both directions). Pure: `now` is passed in.

use std::time::{Duration, Instant};

/// Heartbeat interval: each side sends something at least this often (1 s).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Silence after which the peer is taken for gone and the link closed (3 s: three missed
/// heartbeats, so one lost or late packet is not a disconnect).
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an expected answer (the first batch after a subscribe, an ack after a batch) may
/// take (5 s: a snapshot of a large database is applied and persisted before the ack).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The shortest heartbeat interval a peer may ask for (50 ms): bounds the traffic a
/// misconfigured replica can cause.
pub const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(50);

/// The link's timing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTimings {
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for LinkTimings {
    fn default() -> Self {
        LinkTimings {
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// What the link should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Healthy; nothing due.
    Quiet,
    /// Healthy; nothing was sent for a heartbeat interval: send a heartbeat.
    SendHeartbeat,
    /// Nothing heard within the heartbeat timeout: close the link.
    PeerSilent,
    /// An expected answer did not come within the request timeout: close the link.
    AnswerOverdue,
}

/// One end's view of the link's liveness.
#[derive(Debug, Clone)]
pub struct Liveness {
    timings: LinkTimings,
    last_sent: Instant,
    last_heard: Instant,
    awaiting_since: Option<Instant>,
    /// Extra time the answer awaited now may take (a large snapshot being installed).
    grace: Duration,
}

impl Liveness {
    /// A link that just came up at `now`.
    pub fn new(timings: LinkTimings, now: Instant) -> Self {
        Liveness {
            timings,
            last_sent: now,
            last_heard: now,
            awaiting_since: None,
            grace: Duration::ZERO,
        }
    }

    pub fn timings(&self) -> LinkTimings {
        self.timings
    }

    /// Adapts to the peer's heartbeat interval: send at least as often as the peer does (so
    /// its timeout fits), and allow three of its intervals of silence before giving up.
    pub fn match_peer_interval(&mut self, peer_interval: Duration) {
        let peer = peer_interval.clamp(MIN_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_TIMEOUT);
        self.timings.heartbeat_interval = self.timings.heartbeat_interval.min(peer);
        self.timings.heartbeat_timeout = self.timings.heartbeat_timeout.max(peer * 3);
    }

    /// Anything was sent.
    pub fn on_sent(&mut self, now: Instant) {
        self.last_sent = now;
    }

    /// Anything was received.
    pub fn on_heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// A message that needs an answer was sent (keeps the earliest outstanding one).
    pub fn expect_answer(&mut self, now: Instant) {
        self.awaiting_since.get_or_insert(now);
    }

    /// As [`Liveness::expect_answer`], for an answer that needs up to `grace` more than the
    /// request timeout: the ack of a snapshot, which the replica installs (every row written
    /// and compiled) before it acknowledges; its heartbeats meanwhile show it is alive.
    pub fn expect_answer_within(&mut self, now: Instant, grace: Duration) {
        self.expect_answer(now);
        self.grace = self.grace.max(grace);
    }

    /// Every outstanding answer has come.
    pub fn on_answered(&mut self) {
        self.awaiting_since = None;
        self.grace = Duration::ZERO;
    }

    /// When the peer was last heard from.
    pub fn last_heard(&self) -> Instant {
        self.last_heard
    }

    /// The verdict at `now`; failures take precedence over a due heartbeat.
    pub fn poll(&self, now: Instant) -> Verdict {
        if now >= self.last_heard + self.timings.heartbeat_timeout {
            Verdict::PeerSilent
        } else if self
            .awaiting_since
            .is_some_and(|since| now >= since + self.timings.request_timeout + self.grace)
        {
            Verdict::AnswerOverdue
        } else if now >= self.last_sent + self.timings.heartbeat_interval {
            Verdict::SendHeartbeat
        } else {
            Verdict::Quiet
        }
    }

    /// The next instant `poll` can change its answer.
    pub fn next_deadline(&self) -> Instant {
        let mut at = (self.last_sent + self.timings.heartbeat_interval)
            .min(self.last_heard + self.timings.heartbeat_timeout);
        if let Some(since) = self.awaiting_since {
            at = at.min(since + self.timings.request_timeout + self.grace);
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn heartbeats_are_due_every_interval_of_quiet_sending() {
        let t0 = Instant::now();
        let mut l = Liveness::new(LinkTimings::default(), t0);
        assert_eq!(l.poll(t0 + ms(999)), Verdict::Quiet);
        assert_eq!(l.poll(t0 + ms(1000)), Verdict::SendHeartbeat);
        l.on_sent(t0 + ms(1000));
        l.on_heard(t0 + ms(1000));
        assert_eq!(l.next_deadline(), t0 + ms(2000));
    }

    #[test]
    fn the_master_follows_a_replicas_faster_heartbeat_and_tolerates_a_slower_one() {
        let t0 = Instant::now();
        let mut l = Liveness::new(LinkTimings::default(), t0);
        l.match_peer_interval(ms(200));
        assert_eq!(l.timings().heartbeat_interval, ms(200));
        assert_eq!(l.timings().heartbeat_timeout, ms(3000));
        let mut slow = Liveness::new(LinkTimings::default(), t0);
        slow.match_peer_interval(ms(2000));
        assert_eq!(slow.timings().heartbeat_interval, ms(1000));
        assert_eq!(slow.timings().heartbeat_timeout, ms(6000));
        let mut silly = Liveness::new(LinkTimings::default(), t0);
        silly.match_peer_interval(ms(1));
        assert_eq!(silly.timings().heartbeat_interval, ms(50));
    }

    #[test]
    fn a_snapshot_ack_may_take_its_grace_and_no_longer() {
        let t0 = Instant::now();
        let mut l = Liveness::new(LinkTimings::default(), t0);
        l.expect_answer_within(t0, ms(20_000));
        for k in 1..=24 {
            l.on_sent(t0 + ms(1000 * k));
            l.on_heard(t0 + ms(1000 * k)); // the replica's heartbeats while it installs
        }
        assert_eq!(l.poll(t0 + ms(24_500)), Verdict::Quiet);
        assert_eq!(l.poll(t0 + ms(25_000)), Verdict::AnswerOverdue);
        l.on_answered();
        l.expect_answer(t0 + ms(25_000));
        l.on_heard(t0 + ms(29_000));
        assert_eq!(
            l.poll(t0 + ms(30_000)),
            Verdict::AnswerOverdue,
            "the grace is gone"
        );
    }

    #[test]
    fn a_silent_peer_is_declared_gone_after_the_timeout() {
        let t0 = Instant::now();
        let mut l = Liveness::new(LinkTimings::default(), t0);
        for k in 1..=5 {
            l.on_sent(t0 + ms(1000 * k)); // we keep sending; the peer says nothing
        }
        assert_eq!(l.poll(t0 + ms(2999)), Verdict::Quiet);
        assert_eq!(l.poll(t0 + ms(3000)), Verdict::PeerSilent);
    }

    #[test]
    fn an_overdue_answer_closes_the_link_even_if_heartbeats_flow() {
        let t0 = Instant::now();
        let mut l = Liveness::new(LinkTimings::default(), t0);
        l.expect_answer(t0);
        l.expect_answer(t0 + ms(2000)); // the earliest outstanding one counts
        for k in 1..=5 {
            l.on_heard(t0 + ms(1000 * k));
            l.on_sent(t0 + ms(1000 * k));
        }
        assert_eq!(l.next_deadline(), t0 + ms(5000));
        assert_eq!(l.poll(t0 + ms(5000)), Verdict::AnswerOverdue);
        l.on_answered();
        assert_eq!(l.poll(t0 + ms(5000)), Verdict::Quiet);
    }
}
