//! The engine's public inputs and outputs (see the module header for the calling order).

use super::{
    AgentError, ConnId, Engine, EngineConfig, Outcome, Output, Phase, RequestId,
    MAX_SPARE_SEND_BUFFER,
};
use crate::avoid::AvoidList;
use crate::backoff::Backoff;
use crate::balance::RoundRobinState;
use crate::probe_round::ReplyOutcome;
use gatehouse_common::crypto::probe_auth::open_reply;
use gatehouse_common::wire::{LoadReport, Request};
use rand::Rng;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the agent knows about one server (for `status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    pub server: usize,
    /// The last probe report and how long ago it came.
    pub last_report: Option<(LoadReport, Duration)>,
    pub suspect: bool,
    pub avoided: bool,
}

/// A snapshot of the engine for `gatehouse-agent status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineStatus {
    pub servers: Vec<ServerStatus>,
    /// The server connected to, the connection's age, and whether the handshake is done.
    pub connection: Option<(usize, Duration, bool)>,
    pub queued: usize,
    pub in_flight: usize,
    /// When the background retry runs, if nothing was reachable; `Some(0)` while it runs.
    pub retry_in: Option<Duration>,
    /// A background retry (a probe round no request asked for) is under way now.
    pub retrying: bool,
}

impl Engine {
    /// A new engine with no connection.
    pub fn new(config: EngineConfig) -> Self {
        let servers = config.servers;
        let retry_backoff = config.failover.retry_backoff;
        Engine {
            config,
            phase: Phase::Idle,
            remaining: Vec::new(),
            requests: Default::default(),
            avoid: AvoidList::new(servers),
            round_robin: RoundRobinState::default(),
            backoff: Backoff::with_limits(retry_backoff.0, retry_backoff.1),
            retry_at: None,
            pause_until: None,
            retry_wanted: false,
            last_reports: vec![None; servers],
            last_refusal: None,
            key_refused: false,
            failed: vec![false; servers],
            heard: false,
            connect_failed: vec![false; servers],
            latency: vec![Default::default(); servers],
            probe_rtt: vec![None; servers],
            draining: None,
            draining_silent_since: None,
            successor: None,
            refresh: None,
            refresh_at: None,
            refreshed_at: None,
            last_hedge: None,
            next_conn: 0,
            outputs: VecDeque::new(),
            spare_send_buffer: Vec::new(),
            wall_clock: None,
        }
    }

    /// The wall clock read `unix_ms` (ms since the Unix epoch) at `now`: the engine stamps its
    /// probes with it (a server answers only probes sent within its time window). The shell
    /// refreshes it now and then; between refreshes the monotonic clock carries it forward.
    pub fn set_wall_clock(&mut self, now: Instant, unix_ms: u64) {
        self.wall_clock = Some((now, unix_ms));
    }

    /// The wall clock at `now`, ms since the epoch; 0 if the shell never set it.
    pub(super) fn wall_ms(&self, now: Instant) -> u64 {
        let Some((at, unix_ms)) = self.wall_clock else {
            return 0;
        };
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        match now.checked_duration_since(at) {
            Some(later) => unix_ms.saturating_add(ms(later)),
            None => unix_ms.saturating_sub(ms(at.duration_since(now))),
        }
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Submits a request with the configured deadline. A full queue answers at once (through
    /// `poll_output`) with [`AgentError::QueueFull`].
    pub fn submit(&mut self, now: Instant, request: Request, rng: &mut impl Rng) -> RequestId {
        self.submit_with_deadline(now, request, self.config.request_deadline, rng)
    }

    /// Submits a request that must be answered within `budget`.
    pub fn submit_with_deadline(
        &mut self,
        now: Instant,
        request: Request,
        budget: Duration,
        rng: &mut impl Rng,
    ) -> RequestId {
        match self.requests.submit(now, request, budget) {
            Some(id) => {
                self.advance(now, rng);
                id
            }
            None => {
                let id = RequestId(u64::MAX);
                self.outputs.push_back(Output::Done {
                    request: id,
                    outcome: Outcome {
                        result: Err(AgentError::QueueFull),
                        server: None,
                        redirects: 0,
                        latency: Duration::ZERO,
                        request: None,
                    },
                });
                id
            }
        }
    }

    /// A UDP datagram arrived from `server`'s probe port. Returns whether it verified as a
    /// reply tagged with this engine's key: only then may the shell forget the probe it
    /// answers (a forged datagram echoing a probe id must not cost the genuine reply).
    pub fn handle_probe_reply(
        &mut self,
        now: Instant,
        server: usize,
        datagram: &[u8],
        rng: &mut impl Rng,
    ) -> bool {
        // Replies that do not verify with our key are not from a genuine server: ignored.
        let reply = open_reply(&self.config.key, datagram).ok();
        // The request's round, or else the refresh round of a connected agent.
        let round = match &mut self.phase {
            Phase::Probing { round, .. } => round,
            _ => match &mut self.refresh {
                Some(round) => round,
                None => return reply.is_some(),
            },
        };
        if let Some(reply) = &reply {
            if round.handle_reply(server, reply.probe_id, reply.load) == ReplyOutcome::Accepted {
                let rtt = now.saturating_duration_since(round.started());
                if let Some(slot) = self.probe_rtt.get_mut(server) {
                    *slot = Some(rtt);
                }
                self.note_heard();
            }
        }
        self.advance(now, rng);
        reply.is_some()
    }

    /// A connection asked for with `Output::Connect` is established.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId, rng: &mut impl Rng) {
        if self.successor_connected(conn, now, rng) {
            return self.advance(now, rng);
        }
        let accepted = match &mut self.phase {
            Phase::Connecting { plan, attempts, .. } => attempts
                .iter()
                .find(|(_, c, _)| *c == conn)
                .is_some_and(|&(attempt, _, _)| plan.attempt_connected(attempt)),
            _ => false,
        };
        if accepted {
            self.note_heard();
        } else {
            self.outputs.push_back(Output::Close { conn });
        }
        self.advance(now, rng);
    }

    /// A connection attempt failed (refused, reset, timed out in the kernel).
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId, rng: &mut impl Rng) {
        self.successor_failed(conn, now);
        if let Phase::Connecting { plan, attempts, .. } = &mut self.phase {
            if let Some(pos) = attempts.iter().position(|(_, c, _)| *c == conn) {
                let (attempt, _, _) = attempts.swap_remove(pos);
                let server = plan.server_of(attempt);
                plan.attempt_failed(attempt);
                if let Some(server) = server {
                    self.avoid.avoid_for(server, now, self.config.avoid);
                    self.note_connect_failed(server, now);
                    self.note_failed(server, true);
                }
            }
        }
        self.advance(now, rng);
    }

    /// Bytes arrived on `conn`.
    pub fn handle_data(&mut self, now: Instant, conn: ConnId, bytes: &[u8], rng: &mut impl Rng) {
        self.on_data(conn, bytes, now, rng);
        self.advance(now, rng);
    }

    /// `conn` was closed by the peer or failed (EOF, reset, write error).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId, rng: &mut impl Rng) {
        if self.side_connection_closed(conn, now) {
            return self.advance(now, rng);
        }
        match &self.phase {
            Phase::Connected(live) if live.conn == conn => self.drop_connection(now, true, false),
            Phase::Connecting { .. } => return self.handle_connect_failed(now, conn, rng),
            _ => {}
        }
        self.advance(now, rng);
    }

    /// The instant from `poll_timeout` has come (calling it early is harmless).
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut impl Rng) {
        self.check_side_connections(now);
        self.check_connection(now, rng);
        self.advance(now, rng);
    }

    /// Hands back the bytes of an `Output::Send` once written (the shell keeps its own buffer
    /// otherwise): the engine writes later requests into it instead of a new allocation.
    pub fn recycle_send_buffer(&mut self, mut buffer: Vec<u8>) {
        buffer.clear();
        if buffer.capacity() <= MAX_SPARE_SEND_BUFFER {
            self.spare_send_buffer = buffer;
        }
    }

    /// The next thing for the shell to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When `handle_timeout` must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match &self.phase {
            Phase::Idle if self.requests.has_unsent() => self.pause_until,
            Phase::Idle => self.retry_at.filter(|_| self.requests.is_empty()),
            Phase::Probing { round, .. } => Some(round.deadline()),
            Phase::Connecting { wait_until, .. } => *wait_until,
            Phase::Connected(live) => Some(self.connection_deadline(live)),
        };
        let deadline = self.requests.earliest_deadline().map(|d| d.at());
        [phase, deadline, self.side_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// What the engine knows, for status displays.
    pub fn status(&self, now: Instant) -> EngineStatus {
        let retrying = matches!(
            self.phase,
            Phase::Probing {
                background: true,
                ..
            }
        );
        EngineStatus {
            servers: (0..self.config.servers)
                .map(|server| ServerStatus {
                    server,
                    last_report: self.last_reports[server]
                        .map(|(r, at)| (r, now.saturating_duration_since(at))),
                    suspect: self.avoid.is_suspect(server),
                    avoided: self.avoid.is_avoided(server, now),
                })
                .collect(),
            connection: match &self.phase {
                Phase::Connected(live) => Some((
                    live.server,
                    now.saturating_duration_since(live.opened),
                    live.established,
                )),
                _ => None,
            },
            queued: self.requests.len(),
            in_flight: self.requests.in_flight(),
            // While the background round runs, `retry_at` is already spent: the retry is
            // happening now, not "never".
            retry_in: if retrying {
                Some(Duration::ZERO)
            } else {
                self.retry_at.map(|at| at.saturating_duration_since(now))
            },
            retrying,
        }
    }

    /// Ends requests whose deadline passed.
    pub(super) fn expire(&mut self, now: Instant) {
        // Nothing answered during this episode (no probe reply, no accepted connection): the
        // caller hears that no server is reachable, not merely that time ran out.
        let error = if self.heard {
            AgentError::DeadlineExceeded
        } else {
            AgentError::NoServerReachable
        };
        let expired = self.requests.take_expired(now);
        if !expired.is_empty() && self.requests.on_draining() == 0 {
            self.close_draining();
        }
        for p in expired {
            self.finish(p, Err(error.clone()), None, now);
        }
    }

    /// Reports a finished request. Failing for lack of servers schedules a background retry.
    pub(super) fn finish(
        &mut self,
        p: super::requests::Pending,
        result: Result<gatehouse_common::wire::Response, AgentError>,
        server: Option<usize>,
        now: Instant,
    ) {
        if matches!(
            result,
            Err(AgentError::NoServerReachable | AgentError::DeadlineExceeded)
        ) {
            // `advance` turns this into a jittered retry time (it has the RNG).
            self.retry_wanted = true;
        }
        self.outputs.push_back(Output::Done {
            request: p.id,
            outcome: Outcome {
                result,
                server,
                redirects: p.redirects,
                latency: now.saturating_duration_since(p.submitted),
                request: Some(p.request),
            },
        });
    }
}
