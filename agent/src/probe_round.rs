//! One probe round as a pure state machine: which servers to probe, with which probe ids,
//! which replies count, when the round is over, and what it found.
//!
//! Pure: `now` and the RNG are arguments; the caller sends the UDP probes listed by
//! [`ProbeRound::targets`], feeds replies to [`ProbeRound::handle_reply`], sleeps at most
//! [`ProbeRound::poll_timeout`], and calls [`ProbeRound::finish`] once [`ProbeRound::is_done`].
//! Called by the agent's request path when the balancing mode needs probes.
//!
//! The round ends as soon as `min_replies` replies arrived (waiting for the slowest of several
//! servers would add its delay to every login) or at the probe deadline, whichever is first.

use crate::avoid::AvoidList;
use crate::balance::Candidate;
use crate::budget::Deadline;
use gatehouse_common::wire::probe::LoadReport;
use rand::seq::SliceRandom;
use rand::Rng;
use std::time::{Duration, Instant};

/// How a round probes: the config's `probe_fanout`, `probe_min_replies`, `probe_timeout_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeParams {
    /// How many servers to probe (all of them when there are no more than this).
    pub fanout: usize,
    /// Replies after which the round ends early (clamped to `1..=probed`).
    pub min_replies: usize,
    /// How long to wait for replies (capped by the request deadline).
    pub timeout: Duration,
}

/// One probe to send: to which server, with which id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTarget {
    pub server: usize,
    pub probe_id: u64,
}

/// What became of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// Counted.
    Accepted,
    /// This probe was already answered; ignored.
    Duplicate,
    /// No probe with this id went to this server in this round (stale, spoofed, or from an
    /// earlier round); ignored.
    Unknown,
}

/// What a finished round found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// Servers that answered (with their reports) in server order, then the probed servers
    /// that did not (load `None`), in server order. The silent ones are kept as a last resort:
    /// the balancer picks them only after every answered one, so lost UDP never blocks a login
    /// while TCP still works.
    pub candidates: Vec<Candidate>,
    /// Probed servers that did not answer, to mark suspect.
    pub silent: Vec<usize>,
}

impl ProbeOutcome {
    /// Records the round in `avoid`: silent servers become suspect, answering ones not.
    pub fn record(&self, avoid: &mut AvoidList) {
        for c in &self.candidates {
            if c.load.is_some() {
                avoid.clear_suspect(c.server);
            }
        }
        for &s in &self.silent {
            avoid.mark_suspect(s);
        }
    }
}

#[derive(Debug, Clone)]
struct Slot {
    target: ProbeTarget,
    load: Option<LoadReport>,
}

/// One round of probes.
#[derive(Debug, Clone)]
pub struct ProbeRound {
    slots: Vec<Slot>,
    /// When the probes went out (a reply's round trip is measured from here).
    started: Instant,
    deadline: Instant,
    min_replies: usize,
    replies: usize,
}

impl ProbeRound {
    /// Starts a round over servers `0..server_count` at `now`. Probes all of them when there
    /// are at most `fanout`; otherwise a random `fanout` of them, taken from healthy servers
    /// first, then suspect ones, then avoided ones (so avoided servers are probed only when
    /// there are not enough others). The round's deadline is `now + timeout`, capped by
    /// `budget`.
    pub fn new(
        now: Instant,
        server_count: usize,
        avoid: &AvoidList,
        params: ProbeParams,
        budget: &Deadline,
        rng: &mut impl Rng,
    ) -> Self {
        let fanout = params.fanout.max(1);
        let mut chosen: Vec<usize> = if server_count <= fanout {
            (0..server_count).collect()
        } else {
            let all: Vec<usize> = (0..server_count).collect();
            let mut healthy: Vec<usize> = Vec::new();
            let mut suspect: Vec<usize> = Vec::new();
            let mut avoided: Vec<usize> = Vec::new();
            for s in all {
                if avoid.is_avoided(s, now) {
                    avoided.push(s);
                } else if avoid.is_suspect(s) {
                    suspect.push(s);
                } else {
                    healthy.push(s);
                }
            }
            healthy.shuffle(rng);
            suspect.shuffle(rng);
            avoided.shuffle(rng);
            healthy
                .into_iter()
                .chain(suspect)
                .chain(avoided)
                .take(fanout)
                .collect()
        };
        chosen.sort_unstable();
        Self::for_servers(now, chosen, params, budget, rng)
    }

    /// A round over exactly `servers` (sorted, distinct), ending after `params.min_replies`
    /// replies or `params.timeout` (capped by `budget`). The connected agent's refresh round
    /// probes its own server and a few others this way.
    pub fn for_servers(
        now: Instant,
        servers: Vec<usize>,
        params: ProbeParams,
        budget: &Deadline,
        rng: &mut impl Rng,
    ) -> Self {
        let mut slots: Vec<Slot> = Vec::with_capacity(servers.len());
        for server in servers {
            let mut probe_id: u64 = rng.gen();
            // Ids must be distinct within a round; a collision is astronomically rare, and
            // stepping past it terminates because there are at most `fanout` ids.
            while slots.iter().any(|s| s.target.probe_id == probe_id) {
                probe_id = probe_id.wrapping_add(1);
            }
            slots.push(Slot {
                target: ProbeTarget { server, probe_id },
                load: None,
            });
        }
        let timeout = budget.cap(params.timeout, now);
        let min_replies = params.min_replies.clamp(1, slots.len().max(1));
        ProbeRound {
            slots,
            started: now,
            deadline: now + timeout,
            min_replies,
            replies: 0,
        }
    }

    /// The probes to send.
    pub fn targets(&self) -> Vec<ProbeTarget> {
        self.slots.iter().map(|s| s.target).collect()
    }

    /// When the probes went out.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// When the round ends at the latest.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Replies counted so far.
    pub fn replies(&self) -> usize {
        self.replies
    }

    /// Feeds a reply from `server`. Only the first reply to a probe this round sent to that
    /// server counts; a reply that arrives after the deadline but before `finish` still counts
    /// (it is fresh information and costs nothing).
    pub fn handle_reply(&mut self, server: usize, probe_id: u64, load: LoadReport) -> ReplyOutcome {
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.target.probe_id == probe_id && s.target.server == server);
        match slot {
            None => ReplyOutcome::Unknown,
            Some(slot) if slot.load.is_some() => ReplyOutcome::Duplicate,
            Some(slot) => {
                slot.load = Some(load);
                self.replies += 1;
                ReplyOutcome::Accepted
            }
        }
    }

    /// Whether the round is over: enough replies, every probe answered, or the deadline.
    pub fn is_done(&self, now: Instant) -> bool {
        self.replies >= self.min_replies || self.replies == self.slots.len() || now >= self.deadline
    }

    /// How long the caller may sleep waiting for replies; zero once done.
    pub fn poll_timeout(&self, now: Instant) -> Duration {
        if self.is_done(now) {
            Duration::ZERO
        } else {
            self.deadline.saturating_duration_since(now)
        }
    }

    /// Ends the round: answered candidates, then unanswered ones, and the silent list. A
    /// server counts as silent only when the round waited its whole timeout for it: a round
    /// that ended early on `min_replies` did not give the others their time, and marking a
    /// healthy server that was merely slower than two others "suspect" would be untrue (it
    /// showed as `[suspect]` in `gatehouse-agent status`).
    pub fn finish(self) -> ProbeOutcome {
        let answered = self.slots.iter().filter(|s| s.load.is_some());
        let unanswered = self.slots.iter().filter(|s| s.load.is_none());
        let candidates = answered
            .chain(unanswered.clone())
            .map(|s| Candidate {
                server: s.target.server,
                load: s.load,
            })
            .collect();
        let waited_out = self.replies < self.min_replies;
        let silent = match waited_out {
            true => unanswered.map(|s| s.target.server).collect(),
            false => Vec::new(),
        };
        ProbeOutcome { candidates, silent }
    }
}

/// Candidates for the modes that need no probes: all servers with no report, healthy first,
/// then suspect, then avoided, configured order kept within each group.
pub fn unprobed_candidates(server_count: usize, avoid: &AvoidList, now: Instant) -> Vec<Candidate> {
    let all: Vec<usize> = (0..server_count).collect();
    avoid
        .deprioritise(&all, now)
        .into_iter()
        .map(|server| Candidate { server, load: None })
        .collect()
}

#[cfg(test)]
#[path = "probe_round_tests.rs"]
mod tests;
