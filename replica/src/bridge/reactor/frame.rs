//! One whole frame from an agent: run it through the protocol session and act on what it
//! was — handshake progress, a request to answer on this thread or to queue, or a failure.
//! Part of the reactor; runs on its thread.
//!
//! A request is read in place: its strings borrow from the connection's read buffer, so a
//! cheap request answered here (`inline_cheap_requests`) costs no allocation; a request for
//! the workers is copied out before the frame is consumed (and a password check's frame is
//! wiped first).

use super::super::admission::Counted;
use super::super::stats::RequestKind;
use super::super::workers::{answer_in_place, Caller, ConnId, InPlace};
use super::{Reactor, MAX_PREPARED_SESSIONS};
use gatehouse_common::nodekeys::NodeKeyMap;
use gatehouse_common::session::ServerInput;
use gatehouse_common::types::ErrorCode;
use gatehouse_common::wire::frame::FRAME_HEADER_LEN;
use gatehouse_common::wire::{Request, Response};
use std::sync::{Arc, LazyLock};
use std::time::Instant;
use zeroize::Zeroize;

/// What one frame from the agent amounted to, once the frame is consumed.
enum Frame {
    Progress,
    Established,
    /// A cheap request answered on this thread (`inline_cheap_requests`).
    Answered {
        request_id: u32,
        kind: RequestKind,
        response: Response,
    },
    /// A request for the workers (or a redirect).
    Request {
        request_id: u32,
        body: Request,
    },
    /// A protocol failure: the code and message to send before closing.
    Failed(ErrorCode, String),
}

/// The keys an established session is given: it never looks one up.
static NO_KEYS: LazyLock<NodeKeyMap> = LazyLock::new(NodeKeyMap::new);

impl Reactor {
    pub(super) fn handle_frame(&mut self, id: ConnId, consumed: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(id.index) else {
            return;
        };
        // Only the hello looks a node key up: an established session's frames skip loading
        // the key snapshot (an atomic read-modify-write per request otherwise, ~1 % of the
        // replica's CPU).
        let snapshot;
        let keys: &NodeKeyMap = if conn.session.is_established() {
            &NO_KEYS
        } else {
            snapshot = self.keys.snapshot();
            &snapshot
        };
        let payload = &mut conn.read_buf[FRAME_HEADER_LEN..consumed];
        let input = conn
            .session
            .handle_frame(payload, keys, &mut self.rng, &mut conn.write_buf);
        // A request borrows its strings from the frame: a cheap one is answered now, before
        // the frame is consumed, so it costs no allocation; any other is copied to be queued.
        let frame = match input {
            Ok(ServerInput::Request {
                id: request_id,
                body,
            }) => {
                let kind = RequestKind::of(&body);
                self.stats.request(kind);
                let draining = self.shutdown_deadline.is_some();
                let inline = self.inline_handler.as_deref().filter(|_| !draining);
                let caller = conn.host.as_deref().map(|host| Caller {
                    host,
                    address: conn.peer,
                });
                match answer_in_place(inline, caller, body, self.turn_wall) {
                    InPlace::Answered(response) => Frame::Answered {
                        request_id,
                        kind,
                        response,
                    },
                    InPlace::Queue(body) => Frame::Request { request_id, body },
                }
            }
            Ok(ServerInput::Progress) => Frame::Progress,
            Ok(ServerInput::Established) => Frame::Established,
            Ok(ServerInput::Replication(_)) => Frame::Failed(
                ErrorCode::UnexpectedMessage,
                "replication messages go to the master's replication port".to_owned(),
            ),
            Err(failure) => Frame::Failed(failure.error.code, failure.error.message),
        };
        if let Frame::Request {
            body: Request::Authenticate(_),
            ..
        } = &frame
        {
            // The frame was opened in place: its password, now copied into the request,
            // must not stay behind in the read buffer. Password checks only; authorize
            // frames hold no secret and keep the hot path untouched.
            conn.read_buf[..consumed].zeroize();
        }
        conn.consume(consumed);
        if matches!(frame, Frame::Answered { .. } | Frame::Request { .. }) {
            conn.lifecycle.on_request(now);
            conn.requests += 1;
            // The first connections to send requests keep their cipher built, up to the
            // bound, until they close; the rest build it per frame.
            if !conn.cipher_prepared
                && self.prepared_sessions < MAX_PREPARED_SESSIONS
                && conn.session.prepare_cipher()
            {
                conn.cipher_prepared = true;
                self.prepared_sessions += 1;
            }
        }
        match frame {
            Frame::Progress => self.mark_dirty(id),
            Frame::Established => {
                self.stats.handshakes_ok.inc();
                conn.lifecycle.on_established(now);
                let host: Arc<str> = Arc::from(conn.session.host().unwrap_or_default());
                conn.host = Some(host.clone());
                let counted = std::mem::replace(&mut conn.counted, Counted::Nothing);
                match self.admission.on_established(&counted, &host) {
                    Ok(counted) => conn.counted = counted,
                    Err(refused) => {
                        self.stats.refused_by_limits.inc();
                        let cap = self.config.admission.max_connections_per_host;
                        let message = format!(
                            "too many connections from host {host} (cap {cap}), go elsewhere"
                        );
                        log::debug!("refused {} host={host}: {refused:?}", conn.peer);
                        self.fail(id, ErrorCode::TooManyConnections, &message, now);
                        return;
                    }
                }
                log::debug!(
                    "established {} host={} in {:?}",
                    conn.peer,
                    conn.host_for_log(),
                    now - conn.opened_at
                );
            }
            Frame::Answered {
                request_id,
                kind,
                response,
            } => {
                // Never queued, so neither redirected for the queue's predicted wait nor
                // recorded in its queue times; the turn reports its inline answers to the
                // estimator (`Reactor::run`).
                self.stats.answered.inc();
                self.stats.answered_inline.inc();
                self.turn_inline += 1;
                if let Some(n) = self.turn_inline_kinds.get_mut(kind as usize) {
                    *n += 1;
                }
                self.respond(id, request_id, kind, response);
            }
            Frame::Request { request_id, body } => self.dispatch(id, request_id, body, now),
            Frame::Failed(code, message) => {
                // A host refused at the handshake: recorded (under the recorder's budget).
                if let (Some(audit), ErrorCode::UnknownHost | ErrorCode::AuthFailed) =
                    (&self.audit, code)
                {
                    if let Some(conn) = self.conns.get(id.index) {
                        let claimed = conn.session.host().unwrap_or_default();
                        audit.refused_handshake(claimed, conn.peer, code, self.turn_wall);
                    }
                }
                self.fail(id, code, &message, now)
            }
        }
    }
}
