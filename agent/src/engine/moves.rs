//! Moving a connected agent to another server without making anything wait: the successor
//! connection (opened beside the current one; when its handshake is done it becomes current),
//! the draining connection (the one moved away from, kept until the answers it owes arrive or
//! its response timeout passes), and hedging a late authorize; `refresh.rs` decides switches.
//! Pure; part of the engine.
//!
//! At most three connections per agent: the current one, one draining, one successor; a move
//! is not started while another is under way or a connection still drains.

use super::live::{Event, Live};
use super::{ConnId, Engine, Output, Phase};
use crate::balance::Candidate;
use crate::latency::AnswerClass;
use gatehouse_common::session::ClientEvent;
use gatehouse_common::wire::Response;
use rand::Rng;
use std::time::{Duration, Instant};

/// A connection being opened to move to.
pub(super) struct Successor {
    conn: ConnId,
    server: usize,
    started: Instant,
    /// Set once TCP connected (the handshake is under way).
    live: Option<Live>,
    /// A hedge: on arrival, the current connection's authorize requests are sent again on it.
    hedge: bool,
}

impl Engine {
    /// A connection to `server` is established (handshake done, `handshake` long): records
    /// the sign of life and the round trip, and schedules the first refresh.
    pub(super) fn note_established(
        &mut self,
        server: usize,
        handshake: Duration,
        now: Instant,
        rng: &mut impl Rng,
    ) {
        self.backoff.reset();
        self.retry_at = None;
        self.avoid.clear_suspect(server);
        self.avoid.connect_succeeded(server);
        if let Some(latency) = self.latency.get_mut(server) {
            latency.record(AnswerClass::Cheap, handshake);
        }
        self.refreshed_at = Some(now);
        self.schedule_refresh(now, rng);
    }

    /// An answer of `class` came from `server` for a request sent at `sent`.
    pub(super) fn note_answer(
        &mut self,
        server: usize,
        class: AnswerClass,
        sent: Instant,
        now: Instant,
    ) {
        if let Some(latency) = self.latency.get_mut(server) {
            latency.record(class, now.saturating_duration_since(sent));
        }
    }

    /// When the draining connection is given up: the response timeout of what it still owes,
    /// or, if nothing at all came on it since, of the authorize requests hedged away from it
    /// (answered elsewhere since, but the proof that this server went silent: a server's
    /// reactor answers authorize at once, never behind its password queue).
    fn draining_deadline(&self) -> Option<Instant> {
        let d = self.draining.as_ref()?;
        let owed = self.stall_at(d.server, true);
        let hedged = self
            .draining_silent_since
            .map(|at| at + self.timeout_on(d.server, AnswerClass::Cheap));
        owed.into_iter().chain(hedged).min()
    }

    /// The earliest instant the draining connection or the successor needs attention.
    pub(super) fn side_deadline(&self) -> Option<Instant> {
        let draining = self.draining_deadline();
        let successor = self.successor.as_ref().map(|s| match &s.live {
            None => s.started + self.config.connect_timeout,
            Some(live) => live.opened + self.timeout_on(s.server, AnswerClass::Cheap),
        });
        draining.into_iter().chain(successor).min()
    }

    /// Gives up a draining connection or a successor that stayed silent too long.
    pub(super) fn check_side_connections(&mut self, now: Instant) {
        if let Some(d) = &self.draining {
            if self.draining_deadline().is_some_and(|at| now >= at) {
                let server = d.server;
                self.avoid.avoid_for(server, now, self.config.avoid);
                self.close_draining(now);
            }
        }
        let Some(s) = &self.successor else {
            return;
        };
        match &s.live {
            None if now >= s.started + self.config.connect_timeout => {
                let server = s.server;
                self.abandon_successor();
                self.note_connect_failed(server, now);
            }
            Some(live) if now >= live.opened + self.timeout_on(s.server, AnswerClass::Cheap) => {
                let server = s.server;
                self.abandon_successor();
                self.avoid.avoid_for(server, now, self.config.avoid);
            }
            _ => {}
        }
    }

    /// The successor's TCP connect succeeded: its handshake starts. False when `conn` is not
    /// the successor.
    pub(super) fn successor_connected(
        &mut self,
        conn: ConnId,
        now: Instant,
        rng: &mut impl Rng,
    ) -> bool {
        let Some(server) = self
            .successor
            .as_ref()
            .filter(|s| s.conn == conn)
            .map(|s| s.server)
        else {
            return false;
        };
        match self.start_live(conn, server, now, rng) {
            Ok(live) => {
                if let Some(s) = self.successor.as_mut() {
                    s.live = Some(live);
                }
            }
            Err(_) => self.abandon_successor(),
        }
        true
    }

    /// The successor's TCP connect failed: that server goes into its connect backoff.
    pub(super) fn successor_failed(&mut self, conn: ConnId, now: Instant) -> bool {
        let Some(s) = self.successor.take_if(|s| s.conn == conn) else {
            return false;
        };
        self.note_connect_failed(s.server, now);
        true
    }

    /// `conn` (the draining connection or the successor) was closed by the peer. False when it
    /// is neither.
    pub(super) fn side_connection_closed(&mut self, conn: ConnId, now: Instant) -> bool {
        if self.draining.as_ref().is_some_and(|d| d.conn == conn) {
            self.close_draining(now);
            return true;
        }
        match self.successor.as_ref().filter(|s| s.conn == conn) {
            Some(s) if s.live.is_none() => self.successor_failed(conn, now),
            Some(s) => {
                self.avoid.avoid_for(s.server, now, self.config.avoid);
                self.abandon_successor();
                true
            }
            None => false,
        }
    }

    /// Bytes for the draining connection or the successor; false when `conn` is neither.
    pub(super) fn on_side_data(
        &mut self,
        conn: ConnId,
        bytes: &[u8],
        now: Instant,
        rng: &mut impl Rng,
    ) -> bool {
        if let Some(d) = self.draining.as_mut().filter(|d| d.conn == conn) {
            d.take_bytes(bytes);
            self.drain_answers(now);
            return true;
        }
        let Some(live) = self
            .successor
            .as_mut()
            .filter(|s| s.conn == conn)
            .and_then(|s| s.live.as_mut())
        else {
            return false;
        };
        live.take_bytes(bytes);
        let mut out = Vec::new();
        let event = live.next_event(&mut out);
        if !out.is_empty() {
            self.outputs.push_back(Output::Send { conn, bytes: out });
        }
        match event {
            Ok(None) => {}
            Ok(Some(Ok(ClientEvent::Established { .. }))) => self.promote_successor(now, rng),
            // Refused at the handshake (busy, full, unknown host) or garbage: not there.
            Ok(Some(_)) | Err(()) => {
                if let Some(s) = &self.successor {
                    self.avoid.avoid_for(s.server, now, self.config.avoid);
                }
                self.abandon_successor();
            }
        }
        true
    }

    /// The successor's handshake is done: it becomes the current connection, and the current
    /// one drains (with a hedge, its authorize requests are sent again on the new one).
    fn promote_successor(&mut self, now: Instant, rng: &mut impl Rng) {
        let Some(Successor {
            live: Some(mut live),
            server,
            hedge,
            ..
        }) = self.successor.take()
        else {
            return;
        };
        let handshake = live.mark_established(now, self.config.prepare_cipher);
        let old = match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Connected(old) => old,
            other => {
                // Not connected any more (cannot happen: a drop abandons the successor).
                self.phase = other;
                self.outputs.push_back(Output::Close { conn: live.conn });
                return;
            }
        };
        self.phase = Phase::Connected(live);
        self.note_established(server, handshake, now, rng);
        self.close_draining(now);
        self.draining_silent_since = if hedge {
            self.requests.oldest_hedgeable()
        } else {
            None
        };
        self.requests.retire_current(hedge);
        if self.requests.on_draining() > 0 {
            self.draining = Some(old);
        } else {
            self.outputs.push_back(Output::Close { conn: old.conn });
        }
        self.write_requests(now);
    }

    /// Reads the answers owed on the draining connection; anything but an answer ends it.
    fn drain_answers(&mut self, now: Instant) {
        loop {
            let Some(d) = self.draining.as_mut() else {
                return;
            };
            let server = d.server;
            let event: Event = match d.next_event(&mut Vec::new()) {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(()) => return self.close_draining(now),
            };
            // It spoke: slow, not silent.
            self.draining_silent_since = None;
            match event {
                Ok(ClientEvent::Response { id, body }) if !matches!(body, Response::Error(_)) => {
                    if let Some((p, sent)) = self.requests.take_answered(id, true) {
                        self.note_answer(server, p.class(), sent, now);
                        self.finish(p, Ok(body), Some(server), now);
                    }
                }
                // An error answer (busy...), a goodbye or a broken session: its requests are
                // sent again on the current connection.
                _ => return self.close_draining(now),
            }
        }
        if self.requests.on_draining() == 0 {
            self.close_draining(now);
        }
    }

    /// Closes the draining connection, if any; what it still owed is sent elsewhere (but a
    /// request never sent twice ends with `LostAfterSending`).
    pub(super) fn close_draining(&mut self, now: Instant) {
        self.draining_silent_since = None;
        if let Some(d) = self.draining.take() {
            self.outputs.push_back(Output::Close { conn: d.conn });
            self.requests.release_draining();
            self.fail_lost(now);
        }
    }

    /// Closes the successor, if any.
    pub(super) fn abandon_successor(&mut self) {
        if let Some(s) = self.successor.take() {
            self.outputs.push_back(Output::Close { conn: s.conn });
        }
    }

    /// When to hedge the oldest authorize awaited on `live`, if hedging applies now.
    pub(super) fn hedge_at(&self, live: &Live) -> Option<Instant> {
        let policy = self.config.failover.hedge?;
        if self.successor.is_some() || self.draining.is_some() || !live.established {
            return None;
        }
        let latency = self.latency.get(live.server)?;
        let delay = policy.delay(latency, &self.config.failover.response)?;
        let oldest = self.requests.oldest_hedgeable()?;
        let allowed = self.last_hedge.map_or(oldest, |t| t + policy.interval);
        Some((oldest + delay).max(allowed))
    }

    /// Starts a hedge when its time has come: a successor to the best other server; its
    /// authorize requests are sent again there once it is up.
    pub(super) fn maybe_hedge(&mut self, now: Instant) {
        let Phase::Connected(live) = &self.phase else {
            return;
        };
        if self.hedge_at(live).is_none_or(|at| now < at) {
            return;
        }
        let current = live.server;
        // Counted even when no server is left to hedge on, so the timer does not spin.
        self.last_hedge = Some(now);
        if let Some(target) = self.move_targets(current, now).first() {
            self.start_successor(*target, true, now);
        }
    }

    /// Other servers to move to, best first: by their last probe (round trip included), then
    /// the rest in configured order; never avoided or unconnectable ones, nor `current`.
    fn move_targets(&self, current: usize, now: Instant) -> Vec<usize> {
        let eligible = |s: usize| {
            s != current && !self.avoid.is_avoided(s, now) && !self.avoid.is_unconnectable(s, now)
        };
        let reported: Vec<Candidate> = (0..self.config.servers)
            .filter(|&s| eligible(s) && !self.avoid.is_suspect(s))
            .filter_map(|s| {
                let (load, _) = self.last_reports.get(s).copied().flatten()?;
                Some(self.charged(Candidate {
                    server: s,
                    load: Some(load),
                }))
            })
            .collect();
        // Deterministic here (no RNG): the least estimated cost first.
        let mut order: Vec<usize> = reported
            .iter()
            .min_by_key(|c| self.cost_of(c))
            .map(|c| c.server)
            .into_iter()
            .collect();
        let first = order.first().copied();
        order.extend((0..self.config.servers).filter(|&s| eligible(s) && Some(s) != first));
        order
    }

    pub(super) fn start_successor(&mut self, server: usize, hedge: bool, now: Instant) {
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        self.outputs.push_back(Output::Connect {
            conn,
            server,
            timeout: self.config.connect_timeout,
        });
        self.successor = Some(Successor {
            conn,
            server,
            started: now,
            live: None,
            hedge,
        });
    }
}
