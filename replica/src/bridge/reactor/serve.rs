//! Serving a connection: reading whole frames within the per-turn bound (each one handled in
//! `frame.rs`), dispatching requests to the workers (or redirecting when overloaded), and
//! writing answers back once per turn. Part of the reactor; runs on its thread.

use super::super::conn::{CloseReason, ReadOutcome, WRITE_HIGH_WATER};
use super::super::host_limits::Refusal;
use super::super::stats::RequestKind;
use super::super::workers::{ConnId, Done, Job};
use super::{Reactor, FRAMES_PER_TURN};
use gatehouse_common::types::ErrorCode;
use gatehouse_common::wire::frame::decode_frame;
use gatehouse_common::wire::{Request, Response, WireError};
use std::cmp::Reverse;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl Reactor {
    pub(super) fn run_ready(&mut self, now: Instant) {
        for _ in 0..self.ready.len() {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            if let Some(conn) = self.conn_mut(id) {
                conn.ready = false;
                self.service(id, now);
            }
        }
    }

    /// Reads and handles up to [`FRAMES_PER_TURN`] frames from one connection.
    pub(super) fn service(&mut self, id: ConnId, now: Instant) {
        let max_in_flight = self.config.max_in_flight_per_connection;
        let mut frames = 0;
        loop {
            let Some(conn) = self
                .conns
                .get_mut(id.index)
                .filter(|c| c.generation == id.generation)
            else {
                return;
            };
            if conn.read_blocked(max_in_flight) {
                break;
            }
            match decode_frame(&conn.read_buf, conn.frame_cap()) {
                Err(e) => {
                    let message = e.to_string();
                    self.fail(id, ErrorCode::FrameTooLarge, &message, now);
                    return;
                }
                Ok(Some((consumed, _))) => {
                    if frames == FRAMES_PER_TURN {
                        self.push_ready(id);
                        break;
                    }
                    frames += 1;
                    self.handle_frame(id, consumed, now);
                }
                Ok(None) => {
                    if !conn.readable {
                        break;
                    }
                    let outcome = conn.read_once(&mut self.scratch);
                    match outcome {
                        Ok(ReadOutcome::Data) => {}
                        Ok(ReadOutcome::Drained) => break,
                        Ok(ReadOutcome::Closed) => {
                            self.close(id, CloseReason::PeerClosed);
                            return;
                        }
                        Err(e) => {
                            log::debug!("read from {} failed: {e}", conn.peer);
                            self.close(id, CloseReason::IoError);
                            return;
                        }
                    }
                }
            }
        }
        if let Some(conn) = self.conn_mut(id) {
            // Only a frame still arriving counts: complete frames left waiting because reading
            // is paused (backpressure, age) must not trip the trickle timer.
            let partial = matches!(decode_frame(&conn.read_buf, conn.frame_cap()), Ok(None))
                && !conn.read_buf.is_empty();
            conn.lifecycle.on_partial_frame(partial, now);
            self.arm(id);
        }
    }

    pub(super) fn dispatch(&mut self, id: ConnId, request_id: u32, request: Request, now: Instant) {
        let kind = RequestKind::of(&request);
        if self.shutdown_deadline.is_some() {
            let error = WireError::new(ErrorCode::ShuttingDown, "shutting down, go elsewhere");
            self.respond(id, request_id, kind, Response::Error(error));
            return;
        }
        let Some((host, peer)) = self
            .conn_mut(id)
            .and_then(|c| Some((c.host.clone()?, c.peer)))
        else {
            return;
        };
        // The queue serves hosts in turn: this request waits behind the jobs of its own host
        // and about one per other host's turn, not behind a flood from one host.
        let (queue_len, in_service) = (self.queue_len(), self.in_service());
        let ahead = self.host_limits.jobs_ahead(&host, queue_len);
        let estimate = self.estimator.estimate(ahead, in_service, self.workers());
        // An idle replica always takes the request: otherwise an estimate learned from slow
        // requests (argon2 against a small busy_wait_ms) could redirect everything forever,
        // and with nothing completing the estimate would never change.
        let idle = queue_len == 0 && in_service == 0;
        if estimate.recommended > self.config.busy_wait && !idle {
            self.redirect(id, request_id, kind, estimate.recommended);
            return;
        }
        let password_check = self.handler.is_password_check(request.view());
        if password_check {
            if let Err(refusal) = self.host_limits.admit_password_check(&host, now) {
                self.stats.password_checks_limited.inc();
                log::debug!("password check from host={host} over its limit: {refusal:?}");
                let wait = match refusal {
                    Refusal::InFlight => estimate.recommended,
                    Refusal::Rate { retry_after } => retry_after,
                };
                self.redirect(id, request_id, kind, wait);
                return;
            }
        }
        let job = Job {
            conn: id,
            request_id,
            host: host.clone(),
            peer,
            request,
            password_check,
            kind,
            enqueued_at: now,
        };
        match self.pool.try_submit(job) {
            Ok(()) => {
                self.host_limits.queued(&host, password_check, now);
                if let Some(conn) = self.conn_mut(id) {
                    conn.in_flight += 1;
                }
            }
            Err(_) => self.redirect(id, request_id, kind, estimate.recommended),
        }
    }

    pub(super) fn redirect(
        &mut self,
        id: ConnId,
        request_id: u32,
        kind: RequestKind,
        estimate: Duration,
    ) {
        self.stats.redirected.inc();
        let mut error = WireError::new(ErrorCode::Busy, "busy, go elsewhere");
        error.estimate_us = estimate.as_micros().try_into().unwrap_or(u64::MAX);
        self.respond(id, request_id, kind, Response::Error(error));
    }

    /// Seals `response` into the connection's write buffer and counts it.
    pub(super) fn respond(
        &mut self,
        id: ConnId,
        request_id: u32,
        kind: RequestKind,
        response: Response,
    ) {
        self.stats.answer(kind, &response);
        // Records made before this answer (its own among them) must be released first.
        let gate = self.audit.as_ref().map(|a| {
            let journal = a.journal();
            (journal.assigned_through(), journal.released_through())
        });
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let start = conn.write_buf.len();
        if let Err(failure) = conn
            .session
            .write_response(request_id, response, &mut conn.write_buf)
        {
            log::warn!("cannot answer {}: {}", conn.peer, failure.error.message);
        }
        if let Some((needed, released)) = gate {
            if needed > released && conn.holds.hold(needed, start) {
                self.held.push(Reverse((needed, id.index, id.generation)));
            }
        }
        self.mark_dirty(id);
    }

    /// Connections whose held answers the journal has released since: flushed this turn.
    pub(super) fn release_held(&mut self) {
        let Some(audit) = &self.audit else {
            return;
        };
        let released = audit.journal().released_through();
        while let Some(&Reverse((seq, index, generation))) = self.held.peek() {
            if seq > released {
                break;
            }
            self.held.pop();
            self.mark_dirty(ConnId { index, generation });
        }
    }

    pub(super) fn take_results(&mut self, now: Instant) {
        self.pool
            .counters
            .wake_pending
            .store(false, Ordering::Release);
        while let Ok(done) = self.pool.done.try_recv() {
            self.on_done(done, now);
        }
    }

    pub(super) fn on_done(&mut self, done: Done, now: Instant) {
        self.completed += 1;
        self.host_limits.done(&done.host, done.password_check);
        self.estimator.record(done.queue_time, done.service_time);
        self.stats.answered.inc();
        let latency = done.queue_time.saturating_add(done.service_time);
        self.stats.latency(done.kind, latency, 1);
        let id = done.conn;
        let Some(conn) = self.conn_mut(id) else {
            return; // the agent left; nothing to answer
        };
        conn.in_flight = conn.in_flight.saturating_sub(1);
        let finished = conn.in_flight == 0;
        self.respond(id, done.request_id, done.kind, done.response);
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if finished {
            if let Some(reason) = conn.retire {
                self.goodbye(id, reason, now);
                return;
            }
            if conn.lifecycle.is_aged() {
                self.goodbye(id, CloseReason::Aged, now);
                return;
            }
        }
        // Room again: more requests may be waiting in the socket or the buffer.
        if conn.readable || !conn.read_buf.is_empty() {
            self.push_ready(id);
        }
        self.arm(id);
    }

    pub(super) fn push_ready(&mut self, id: ConnId) {
        if let Some(conn) = self.conn_mut(id) {
            if !conn.ready {
                conn.ready = true;
                self.ready.push_back(id);
            }
        }
    }

    pub(super) fn mark_dirty(&mut self, id: ConnId) {
        if let Some(conn) = self.conn_mut(id) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(id);
            }
        }
    }

    /// Writes out what this turn produced: one write per connection per turn.
    pub(super) fn flush_dirty(&mut self, now: Instant) {
        let released = self.audit.as_ref().map(|a| a.journal().released_through());
        let dirty = std::mem::take(&mut self.dirty);
        for &id in &dirty {
            let Some(conn) = self.conn_mut(id) else {
                continue;
            };
            conn.dirty = false;
            let was_blocked = conn.write_buf.len() >= WRITE_HIGH_WATER;
            if let Err(e) = conn.flush(released) {
                log::debug!("write to {} failed: {e}", conn.peer);
                self.close(id, CloseReason::IoError);
                continue;
            }
            if let Some(reason) = conn.closing {
                if conn.write_buf.is_empty() {
                    self.close(id, reason);
                }
                continue;
            }
            if was_blocked && conn.write_buf.len() < WRITE_HIGH_WATER {
                self.push_ready(id);
            }
        }
        self.dirty = dirty;
        self.dirty.clear();
        let _ = now;
    }
}
