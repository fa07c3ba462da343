//! The connected agent's periodic refresh: a probe round to its own server and a few others
//! every `failover.refresh_interval_ms` (jittered), then `crate::switch::decide` on what it
//! saw, and a move (a successor connection, `moves.rs`) when it says so. Also how a probe's
//! round trip is charged to a server's reported wait. Pure; part of the engine.

use super::{Engine, Phase};
use crate::balance::{Balancing, Candidate};
use crate::budget::Deadline;
use crate::probe_round::{ProbeParams, ProbeRound};
use crate::switch::{decide, Seen};
use rand::seq::SliceRandom;
use rand::Rng;
use std::time::{Duration, Instant};

impl Engine {
    /// The next refresh: the configured interval scaled by a factor uniform in [0.5, 1.5],
    /// so agents that connected together do not probe together. Only the probing modes
    /// refresh (the others have no probe to compare with).
    pub(super) fn schedule_refresh(&mut self, now: Instant, rng: &mut impl Rng) {
        self.refresh_at = self.config.balancing.needs_probes().then(|| {
            now + self
                .config
                .failover
                .refresh_interval
                .mul_f64(rng.gen_range(0.5..=1.5))
        });
    }

    /// When the refresh needs attention: its round's end, or the next refresh.
    pub(super) fn refresh_due(&self) -> Option<Instant> {
        match &self.refresh {
            Some(round) => Some(round.deadline()),
            None => self.refresh_at,
        }
    }

    /// Starts a due refresh round (if the connection was used since the last one and no move
    /// is under way), or finishes one that is over.
    pub(super) fn drive_refresh(&mut self, now: Instant, rng: &mut impl Rng) {
        if self.refresh.as_ref().is_some_and(|r| r.is_done(now)) {
            return self.finish_refresh(now, rng);
        }
        if self.refresh.is_some() || self.refresh_at.is_none_or(|at| now < at) {
            return;
        }
        self.schedule_refresh(now, rng);
        let Phase::Connected(live) = &self.phase else {
            return;
        };
        let used = self.refreshed_at.is_none_or(|at| live.last_used > at);
        if !used || self.successor.is_some() || self.draining.is_some() {
            return;
        }
        let current = live.server;
        self.refreshed_at = Some(now);
        // The current server and up to `fanout - 1` others at random, suspect ones included:
        // nothing waits for this round, and it is how a server that was silent (stopped,
        // restarted) is seen again while every agent holds a connection.
        let mut others: Vec<usize> = (0..self.config.servers).filter(|&s| s != current).collect();
        others.shuffle(rng);
        let mut servers = vec![current];
        servers.extend(
            others
                .into_iter()
                .take(self.config.probe.fanout.saturating_sub(1).max(1)),
        );
        servers.sort_unstable();
        let params = ProbeParams {
            min_replies: servers.len(),
            ..self.config.probe
        };
        let budget = Deadline::after(now, params.timeout);
        let round = ProbeRound::for_servers(now, servers, params, &budget, rng);
        self.send_probes(&round, now);
        self.refresh = Some(round);
    }

    /// A refresh round is over: keep its reports, and move if `switch::decide` says so.
    fn finish_refresh(&mut self, now: Instant, rng: &mut impl Rng) {
        let Some(round) = self.refresh.take() else {
            return;
        };
        let outcome = round.finish();
        outcome.record(&mut self.avoid);
        self.keep_reports(&outcome.candidates, now);
        let Phase::Connected(live) = &self.phase else {
            return;
        };
        let current = live.server;
        let seen: Vec<Seen> = outcome
            .candidates
            .iter()
            .filter_map(|c| {
                let load = c.load?;
                Some(Seen {
                    server: c.server,
                    cost: self.cost_of(&self.charged(*c)),
                    connections: load.connections,
                })
            })
            .collect();
        let current_latency = self.latency.get(current).and_then(|l| l.cheap.mean());
        let eligible =
            |s: usize| !self.avoid.is_avoided(s, now) && !self.avoid.is_unconnectable(s, now);
        let params = self.config.failover.switch;
        if let Some((target, _)) = decide(current, current_latency, &seen, eligible, &params, rng) {
            if self.successor.is_none() && self.draining.is_none() {
                self.start_successor(target, false, now);
            }
        }
    }

    /// Remembers the reports of a finished round.
    pub(super) fn keep_reports(&mut self, candidates: &[Candidate], now: Instant) {
        for c in candidates {
            if let (Some(load), Some(slot)) = (c.load, self.last_reports.get_mut(c.server)) {
                *slot = Some((load, now));
            }
        }
    }

    /// `c` with this agent's last probe round trip to it added to its reported waits, so the
    /// balancer weighs what a request would really cost (a server 200 ms away is not idle).
    pub(super) fn charged(&self, mut c: Candidate) -> Candidate {
        let rtt = self.probe_rtt.get(c.server).copied().flatten();
        let rtt_us = rtt.map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        if let Some(load) = c.load.as_mut() {
            load.recommended_wait_us = load.recommended_wait_us.saturating_add(rtt_us);
            load.seed_wait_us = load.seed_wait_us.saturating_add(rtt_us);
        }
        c
    }

    /// A charged candidate's cost: the wait the balancing mode weighs by.
    pub(super) fn cost_of(&self, c: &Candidate) -> Duration {
        let us = c.load.map_or(u64::MAX, |l| match self.config.balancing {
            Balancing::SeedEstimate => l.seed_wait_us,
            _ => l.recommended_wait_us,
        });
        Duration::from_micros(us)
    }
}
