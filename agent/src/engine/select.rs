//! Choosing and reaching a server: probe rounds, the balancer's order, staggered connects,
//! failover to the next candidate, and giving up. Pure; part of the engine.

use super::live::Live;
use super::{AgentError, Engine, Output, Phase, MAX_TRIES_PER_REQUEST};
use crate::balance::order_candidates;
use crate::budget::Deadline;
use crate::connect_plan::{AbandonReason, Action, ConnectPlan};
use crate::probe_round::{unprobed_candidates, ProbeRound};
use gatehouse_common::crypto::probe_auth::seal_probe;
use gatehouse_common::wire::Probe;
use rand::Rng;
use std::time::Instant;

impl Engine {
    /// Moves forward as far as possible without new input.
    pub(super) fn advance(&mut self, now: Instant, rng: &mut impl Rng) {
        self.expire(now);
        self.schedule_retry(now, rng);
        self.advance_phases(now, rng);
        if matches!(self.phase, Phase::Connected(_)) {
            // A refresh round may have had its last reply.
            self.drive_refresh(now, rng);
        }
        // Requests that failed on the way (no server, tries used up) want a retry time now,
        // or `poll_timeout` would not ask to be woken for it.
        self.schedule_retry(now, rng);
    }

    /// True while a retry must wait: every server is avoided (each just said busy, refused or
    /// failed) and a waiting request has already been tried. Starts the jittered pause.
    fn must_pause(&mut self, now: Instant, rng: &mut impl Rng) -> bool {
        let all_avoided = (0..self.config.servers).all(|s| self.avoid.is_avoided(s, now));
        if !all_avoided || !self.requests.has_retry_waiting() {
            self.pause_until = None;
            return false;
        }
        let (min, max) = self.config.failover.retry_pause;
        let until = *self.pause_until.get_or_insert_with(|| {
            now + min + max.saturating_sub(min).mul_f64(rng.gen_range(0.0..=1.0))
        });
        if now < until {
            return true;
        }
        self.pause_until = None;
        false
    }

    fn advance_phases(&mut self, now: Instant, rng: &mut impl Rng) {
        // Each pass either returns or changes phase; a change of phase only loops back for
        // phases that make progress without input, and every new episode counts a try, so
        // this ends.
        for _ in 0..4 * (MAX_TRIES_PER_REQUEST as usize + 2) {
            match &mut self.phase {
                Phase::Idle => {
                    if self.requests.has_unsent() {
                        if self.must_pause(now, rng) {
                            return;
                        }
                        self.start_selection(now, rng, false);
                        continue;
                    }
                    if self.requests.is_empty() && self.retry_at.is_some_and(|at| at <= now) {
                        self.retry_at = None;
                        self.start_selection(now, rng, true);
                    }
                    return;
                }
                Phase::Probing { round, .. } => {
                    if !round.is_done(now) {
                        return;
                    }
                    self.finish_round(now, rng);
                    self.schedule_retry(now, rng);
                }
                Phase::Connecting { .. } => {
                    if !self.drive_plan(now, rng) {
                        return;
                    }
                }
                Phase::Connected(live) => {
                    if live.established {
                        self.write_requests(now);
                    }
                    return;
                }
            }
        }
    }

    /// Spreads background retries: thousands of agents that lost their servers together do
    /// not come back in step.
    fn schedule_retry(&mut self, now: Instant, rng: &mut impl Rng) {
        if std::mem::take(&mut self.retry_wanted) && self.retry_at.is_none() {
            self.retry_at = Some(now + self.backoff.next_delay(rng));
        }
    }

    /// Starts choosing servers: a probe round, or the configured order without probes. A
    /// background round only checks reachability (nothing is waiting).
    fn start_selection(&mut self, now: Instant, rng: &mut impl Rng, background: bool) {
        if !background {
            self.heard = false;
            self.connect_failed.fill(false);
        }
        if !self.config.balancing.needs_probes() {
            if background {
                return; // nothing to learn without probes; the next request will try
            }
            let candidates = unprobed_candidates(self.config.servers, &self.avoid, now);
            let order = order_candidates(
                &candidates,
                self.config.balancing,
                &mut self.round_robin,
                rng,
            );
            let servers = order.into_iter().map(|i| candidates[i].server).collect();
            self.start_connecting(servers, now);
            return;
        }
        let budget = match self.requests.earliest_deadline() {
            Some(deadline) if !background => deadline,
            _ => Deadline::after(now, self.config.probe.timeout),
        };
        let round = ProbeRound::new(
            now,
            self.config.servers,
            &self.avoid,
            self.config.probe,
            &budget,
            rng,
        );
        self.send_probes(&round, now);
        self.phase = Phase::Probing { round, background };
    }

    /// Asks the shell to send `round`'s probes.
    pub(super) fn send_probes(&mut self, round: &ProbeRound, now: Instant) {
        for target in round.targets() {
            let probe = Probe {
                host: self.config.host.clone(),
                probe_id: target.probe_id,
                sent_unix_ms: self.wall_ms(now),
            };
            // The config checks the host name fits the wire; a failure skips the probe and
            // the server is then tried as a silent candidate.
            if let Ok(datagram) = seal_probe(&self.config.key, &probe) {
                self.outputs.push_back(Output::SendProbe {
                    server: target.server,
                    probe_id: target.probe_id,
                    datagram,
                });
            }
        }
    }

    fn finish_round(&mut self, now: Instant, rng: &mut impl Rng) {
        let Phase::Probing { round, background } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        let outcome = round.finish();
        outcome.record(&mut self.avoid);
        self.keep_reports(&outcome.candidates, now);
        let answered = outcome.candidates.iter().any(|c| c.load.is_some());
        if background {
            if answered {
                self.backoff.reset();
            } else {
                self.retry_at = Some(now + self.backoff.next_delay(rng));
            }
            return;
        }
        let charged: Vec<_> = outcome
            .candidates
            .iter()
            .map(|c| self.charged(*c))
            .collect();
        let order = order_candidates(&charged, self.config.balancing, &mut self.round_robin, rng);
        let mut servers: Vec<usize> = order.into_iter().map(|i| charged[i].server).collect();
        // The servers this round did not probe come last: one pass over every server before
        // the request hears that none accepts connections.
        let unprobed: Vec<usize> = (0..self.config.servers)
            .filter(|s| !servers.contains(s))
            .collect();
        servers.extend(unprobed);
        let servers = self.avoid.deprioritise(&servers, now);
        self.start_connecting(servers, now);
    }

    /// Starts staggered connects over `servers`; every waiting request counts one try.
    pub(super) fn start_connecting(&mut self, servers: Vec<usize>, now: Instant) {
        for p in self.requests.count_try(MAX_TRIES_PER_REQUEST) {
            let error = self.no_server_error();
            self.finish(p, Err(error), None, now);
        }
        if !self.requests.has_unsent() {
            self.phase = Phase::Idle;
            return;
        }
        let deadline = self
            .requests
            .earliest_deadline()
            .unwrap_or_else(|| Deadline::after(now, self.config.request_deadline));
        self.remaining = servers.clone();
        self.phase = Phase::Connecting {
            plan: ConnectPlan::new(
                servers,
                self.config.attempt_delay,
                self.config.connect_timeout,
                deadline,
            ),
            attempts: Vec::new(),
            wait_until: None,
        };
    }

    /// Runs the connect plan's actions; true when the phase changed and the caller should
    /// look again.
    fn drive_plan(&mut self, now: Instant, rng: &mut impl Rng) -> bool {
        loop {
            let Phase::Connecting {
                plan,
                attempts,
                wait_until,
            } = &mut self.phase
            else {
                return true;
            };
            match plan.next_action(now) {
                Action::Start {
                    attempt,
                    server,
                    timeout,
                } => {
                    self.next_conn += 1;
                    let conn = super::ConnId(self.next_conn);
                    attempts.push((attempt, conn, now));
                    self.outputs.push_back(Output::Connect {
                        conn,
                        server,
                        timeout,
                    });
                }
                Action::Abandon {
                    attempt,
                    server,
                    reason,
                } => {
                    let mut started = now;
                    if let Some(pos) = attempts.iter().position(|(a, _, _)| *a == attempt) {
                        let (_, conn, at) = attempts.swap_remove(pos);
                        self.outputs.push_back(Output::Close { conn });
                        started = at;
                    }
                    // A connect that ran out its own timeout failed as surely as a refused
                    // one; one cut short (another connected first, or the deadline) did not,
                    // and is no sign against the server (it was suspect in `status` before).
                    let timed_out = reason == AbandonReason::TimedOut;
                    if timed_out {
                        self.avoid.mark_suspect(server);
                    }
                    self.note_failed(server, timed_out);
                    // Still pending after the attempt delay while another server connected:
                    // as good as blocked for the next connections (its connect backoff).
                    let slow = reason == AbandonReason::Superseded
                        && now.saturating_duration_since(started) >= self.config.attempt_delay;
                    if timed_out {
                        self.note_connect_failed(server, now);
                    } else if slow {
                        let backoff = self.config.failover.connect_backoff;
                        self.avoid.connect_failed(server, now, &backoff);
                    }
                }
                Action::WaitUntil(at) => {
                    *wait_until = Some(at);
                    return false;
                }
                Action::Connected { attempt, server } => {
                    let Some(&(_, conn, _)) = attempts.iter().find(|(a, _, _)| *a == attempt)
                    else {
                        self.phase = Phase::Idle;
                        return true;
                    };
                    self.remaining.retain(|&s| s != server);
                    self.open_session(conn, server, now, rng);
                    return true;
                }
                Action::GiveUp(_) => {
                    self.remaining.clear();
                    if self.all_failed() {
                        self.fail_unreachable(now, AgentError::NoServerReachable);
                    } else if self.connect_failed.iter().all(|&f| f) {
                        self.fail_unreachable(now, AgentError::NoServerAcceptsConnections);
                    } else {
                        self.fail_over(now);
                    }
                    return true;
                }
            }
        }
    }

    /// Starts the handshake on a connected `conn` to `server`: the hello goes out.
    pub(super) fn start_live(
        &mut self,
        conn: super::ConnId,
        server: usize,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Result<Live, gatehouse_common::session::ClientError> {
        let mut hello = Vec::new();
        let live = Live::start(
            conn,
            server,
            &self.config.host,
            &self.config.key,
            &self.config.ciphers,
            self.config.max_connection_age,
            now,
            rng,
            &mut hello,
        )?;
        self.outputs.push_back(Output::Send { conn, bytes: hello });
        Ok(live)
    }

    fn open_session(
        &mut self,
        conn: super::ConnId,
        server: usize,
        now: Instant,
        rng: &mut impl Rng,
    ) {
        match self.start_live(conn, server, now, rng) {
            Ok(live) => self.phase = Phase::Connected(live),
            Err(e) => {
                // Our own host name cannot be encoded: no server can help.
                self.outputs.push_back(Output::Close { conn });
                self.phase = Phase::Idle;
                let error = AgentError::Refused(gatehouse_common::wire::WireError::new(
                    gatehouse_common::types::ErrorCode::Malformed,
                    e.to_string(),
                ));
                for p in self.requests.take_unsent() {
                    self.finish(p, Err(error.clone()), None, now);
                }
            }
        }
    }

    /// The current server is no good: try the next candidate of this round, or a new round.
    pub(super) fn fail_over(&mut self, now: Instant) {
        self.phase = Phase::Idle;
        if !self.requests.has_unsent() {
            return;
        }
        let next: Vec<usize> = self
            .remaining
            .iter()
            .copied()
            .filter(|&s| !self.avoid.is_avoided(s, now))
            .collect();
        if !next.is_empty() {
            self.start_connecting(next, now);
        }
        // Otherwise the next `advance` starts a new round from Idle.
    }

    /// Records whether `server`'s latest connect failed (`true`: refused, reset, or timed
    /// out), or was cut short (`false`: superseded, or the deadline ran out).
    pub(super) fn note_failed(&mut self, server: usize, failed: bool) {
        if let Some(slot) = self.failed.get_mut(server) {
            *slot = failed;
        }
    }

    /// A TCP connect to `server` failed (refused, reset, timed out): it goes into its connect
    /// backoff (which probe replies do not clear) and counts for "no server accepts
    /// connections" in this episode.
    pub(super) fn note_connect_failed(&mut self, server: usize, now: Instant) {
        let backoff = self.config.failover.connect_backoff;
        self.avoid.connect_failed(server, now, &backoff);
        if let Some(slot) = self.connect_failed.get_mut(server) {
            *slot = true;
        }
    }

    /// A server showed signs of life (a probe reply, an accepted connection).
    pub(super) fn note_heard(&mut self) {
        self.heard = true;
        self.failed.fill(false);
    }

    /// True when nothing is reachable: every server's connect failed (refused, reset or timed
    /// out), none has answered a probe or accepted a connection since, and none did during
    /// this episode. Another round would only repeat that — at a probe timeout and a connect
    /// timeout per try, silent servers would hold the caller to its deadline — so waiting
    /// requests fail at once. When a server answered, bounded retries go on as before.
    pub(super) fn all_failed(&self) -> bool {
        !self.heard && self.failed.iter().all(|&f| f)
    }

    /// Nothing is reachable, or no server accepts connections: the waiting requests end now
    /// with `error` (and for `NoServerReachable` the background retry, with backoff, takes
    /// over) instead of burning their remaining tries and the deadline.
    fn fail_unreachable(&mut self, now: Instant, error: AgentError) {
        self.phase = Phase::Idle;
        for p in self.requests.take_unsent() {
            self.finish(p, Err(error.clone()), None, now);
        }
    }

    /// The error for requests that ran out of servers.
    fn no_server_error(&self) -> AgentError {
        if self.key_refused {
            return AgentError::NodeKeyRefused;
        }
        match &self.last_refusal {
            Some(e) => AgentError::Refused(e.clone()),
            None => AgentError::NoServerReachable,
        }
    }
}
