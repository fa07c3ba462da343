//! Ending connections: per-connection timers, protocol errors, goodbyes, the linger before a
//! close, the close itself (the open count is the slab length, exact by construction), and the
//! drain (asked for through `BridgeControl::stop`). Part of the reactor; runs on its thread.

use super::super::conn::CloseReason;
use super::super::lifecycle::Expiry;
use super::super::workers::ConnId;
use super::{Reactor, METRICS_PUBLISH_INTERVAL};
use gatehouse_common::types::{ErrorCode, GoodbyeReason};
use gatehouse_common::wire::WireError;
use std::cmp::Reverse;
use std::time::Instant;

impl Reactor {
    pub(super) fn arm(&mut self, id: ConnId) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let deadline = conn.lifecycle.deadline(conn.in_flight);
        if conn.armed.is_none_or(|armed| deadline < armed) {
            conn.armed = Some(deadline);
            self.timers
                .push(Reverse((deadline, id.index, id.generation)));
        }
    }

    pub(super) fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, index, generation))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let id = ConnId { index, generation };
            let Some(conn) = self.conn_mut(id) else {
                continue; // a timer for a closed connection: a no-op
            };
            if conn.armed == Some(at) {
                conn.armed = None;
            }
            let expiry = conn.lifecycle.on_timeout(now, conn.in_flight);
            match expiry {
                None => {}
                Some(Expiry::HandshakeTimeout) => self.fail(
                    id,
                    ErrorCode::Timeout,
                    "handshake not finished in time",
                    now,
                ),
                Some(Expiry::FrameTimeout) => {
                    self.fail(id, ErrorCode::Timeout, "frame not completed in time", now)
                }
                Some(Expiry::Idle) => self.goodbye(id, CloseReason::Idle, now),
                Some(Expiry::Aged) if conn.in_flight == 0 => {
                    self.goodbye(id, CloseReason::Aged, now)
                }
                // Requests in flight: `on_done` says goodbye after the last one.
                Some(Expiry::Aged) => {}
                Some(Expiry::DrainOver) => self.close(id, CloseReason::DrainTimeout),
                Some(Expiry::LingerOver) => {
                    let reason = conn.closing.unwrap_or(CloseReason::IoError);
                    self.close(id, reason);
                }
            }
            self.arm(id);
        }
    }

    /// Sends an error, then closes once it is out.
    pub(super) fn fail(&mut self, id: ConnId, code: ErrorCode, message: &str, now: Instant) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let level = match code {
            ErrorCode::AuthFailed | ErrorCode::UnknownHost | ErrorCode::Malformed => {
                log::Level::Warn
            }
            _ => log::Level::Debug,
        };
        let failed_handshake = !conn.session.is_established();
        if code == ErrorCode::AuthFailed && failed_handshake {
            // The one line an admin needs for an agent with the wrong key: the host that
            // failed (the agent itself hears only that its key was refused).
            log::warn!(
                "node key refused: host={} peer={}: its proof does not match the host's registered node key (a wrong node_key_file on that host, or the host re-added with a new key)",
                conn.host_for_log(),
                conn.peer
            );
        } else {
            log::log!(
                level,
                "closing {} host={}: {:?}: {message}",
                conn.peer,
                conn.host_for_log(),
                code
            );
        }
        let reason = match code {
            ErrorCode::Timeout if conn.session.is_established() => CloseReason::FrameTimeout,
            ErrorCode::Timeout => CloseReason::HandshakeTimeout,
            ErrorCode::ShuttingDown => CloseReason::ShuttingDown,
            _ => CloseReason::ProtocolError,
        };
        let mut error = WireError::new(code, message);
        if code == ErrorCode::UnsupportedVersion {
            error.versions = gatehouse_common::wire::SUPPORTED_VERSIONS.to_vec();
        }
        conn.session.write_error(&error, &mut conn.write_buf);
        if failed_handshake {
            self.stats.handshakes_failed.inc();
        }
        self.start_closing(id, reason, now);
    }

    /// Sends a sealed goodbye (or a plaintext error before the handshake), then closes.
    pub(super) fn goodbye(&mut self, id: ConnId, reason: CloseReason, now: Instant) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let wire_reason = match reason {
            CloseReason::Idle => GoodbyeReason::Idle,
            CloseReason::Aged => GoodbyeReason::Reconnect,
            _ => GoodbyeReason::ShuttingDown,
        };
        if conn.session.is_established() {
            conn.session.write_goodbye(wire_reason, &mut conn.write_buf);
        } else {
            let error = WireError::new(ErrorCode::ShuttingDown, "shutting down, go elsewhere");
            conn.session.write_error(&error, &mut conn.write_buf);
        }
        self.start_closing(id, reason, now);
    }

    pub(super) fn start_closing(&mut self, id: ConnId, reason: CloseReason, now: Instant) {
        if let Some(conn) = self.conn_mut(id) {
            conn.closing.get_or_insert(reason);
            conn.lifecycle.on_closing(now);
            self.mark_dirty(id);
            self.arm(id);
        }
    }

    /// Removes the connection; the count of open connections is the slab's length, so it is
    /// exact by construction.
    pub(super) fn close(&mut self, id: ConnId, reason: CloseReason) {
        if self.conn_mut(id).is_none() {
            return;
        }
        let mut conn = self.conns.remove(id.index);
        self.admission.on_close(&conn.counted);
        if conn.cipher_prepared {
            self.prepared_sessions -= 1;
        }
        let _ = self.poll.registry().deregister(&mut conn.socket);
        self.stats.closed.inc();
        log::debug!(
            "close {} host={} after {:?}, {} requests: {reason:?}",
            conn.peer,
            conn.host_for_log(),
            conn.opened_at.elapsed(),
            conn.requests
        );
    }

    /// Stops accepting and probing, tells every agent to go elsewhere, and lets in-flight
    /// requests finish within the drain timeout.
    pub(super) fn begin_shutdown(&mut self, now: Instant) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        self.shutdown_deadline = Some(now + self.config.drain_timeout);
        log::info!(
            "draining: no new connections or probes; {} open connections finish within {:?}",
            self.conns.len(),
            self.config.drain_timeout
        );
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        if let Some(mut u) = self.udp.take() {
            let _ = self.poll.registry().deregister(&mut u);
        }
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .map(|(index, c)| ConnId {
                index,
                generation: c.generation,
            })
            .collect();
        for id in ids {
            let Some(conn) = self.conn_mut(id) else {
                continue;
            };
            if conn.in_flight == 0 {
                self.goodbye(id, CloseReason::ShuttingDown, now);
            } else {
                conn.retire = Some(CloseReason::ShuttingDown);
            }
        }
    }

    pub(super) fn finish_shutdown(self) {
        let open = self.conns.len();
        log::info!(
            "bridge stopped: {} accepted, {} refused at the cap, {} answered, {} redirected, {} still open",
            self.stats.accepted.get(),
            self.stats.rejected_at_cap.get(),
            self.stats.answered.get(),
            self.stats.redirected.get(),
            open
        );
        if open == 0 {
            self.pool.shutdown();
        }
    }

    /// Publishes the gauges: the connection count every turn (a store), the queue and the
    /// estimated wait every [`METRICS_PUBLISH_INTERVAL`].
    pub(super) fn publish_stats(&mut self, now: Instant) {
        self.stats.connections.set(self.conns.len() as u64);
        if self
            .published_at
            .is_some_and(|at| now.saturating_duration_since(at) < METRICS_PUBLISH_INTERVAL)
        {
            return;
        }
        self.published_at = Some(now);
        let (queue_len, in_service, workers) =
            (self.queue_len(), self.in_service(), self.workers());
        let estimate = self.estimator.estimate(queue_len, in_service, workers);
        let s = &self.stats;
        s.queue_len.set(queue_len as u64);
        s.in_service.set(in_service as u64);
        s.workers.set(workers as u64);
        s.max_connections.set(self.config.max_connections as u64);
        s.estimated_wait_us.set(
            estimate
                .recommended
                .as_micros()
                .try_into()
                .unwrap_or(u64::MAX),
        );
    }
}
