//! The engine's open connection: the protocol session, its read buffer, and what happens on
//! each frame (answers, redirects, goodbyes, errors) and when it stalls past its response
//! timeout (derived from the server's recent answers). Pure.

use super::requests::SendNext;
use super::{AgentError, ConnId, Engine, Output, Phase, MAX_IN_FLIGHT, SEND_BUFFER_INITIAL};
use crate::latency::AnswerClass;
use gatehouse_common::crypto::CipherSuite;
use gatehouse_common::nodekeys::NodeKey;
use gatehouse_common::session::{ClientError, ClientEvent, ClientSession};
use gatehouse_common::types::{ErrorCode, GoodbyeReason};
use gatehouse_common::wire::frame::{decode_frame, FRAME_HEADER_LEN, MAX_FRAME_LEN};
use gatehouse_common::wire::{Response, WireError, SUPPORTED_VERSIONS};
use rand::Rng;
use std::time::{Duration, Instant};

/// A connection from TCP connect onwards.
pub(super) struct Live {
    pub conn: ConnId,
    pub server: usize,
    session: ClientSession,
    inbuf: Vec<u8>,
    pub opened: Instant,
    pub last_used: Instant,
    pub established: bool,
    /// This connection's own age limit: the configured one with ±[`AGE_JITTER`] drawn when it
    /// opened, so agents that connected together do not all retire (and re-probe) together.
    pub max_age: Duration,
}

/// Relative jitter on the agent's own connection age limit (0.1 = ±10 %, uniform). Why:
/// thousands of agents started together would otherwise all retire their connections in the
/// same instant every age period, a reconnect (and latency) spike; ±10 % spreads a 60 s
/// period's retirements over 12 s while keeping the limit's meaning.
pub const AGE_JITTER: f64 = 0.1;

/// `max_age` scaled by a factor uniform in `[1 - AGE_JITTER, 1 + AGE_JITTER]`.
pub(super) fn jittered_age(max_age: Duration, rng: &mut impl Rng) -> Duration {
    let factor = 1.0 + rng.gen_range(-AGE_JITTER..=AGE_JITTER);
    // factor is in [0.9, 1.1] and max_age is a config value: the product is finite.
    max_age.mul_f64(factor)
}

impl Live {
    /// Starts the handshake on a connected socket, offering `ciphers`; the hello goes into
    /// `out`. The connection retires after `max_age` jittered by ±[`AGE_JITTER`].
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        conn: ConnId,
        server: usize,
        host: &str,
        key: &NodeKey,
        ciphers: &[CipherSuite],
        max_age: Duration,
        now: Instant,
        rng: &mut impl Rng,
        out: &mut Vec<u8>,
    ) -> Result<Self, ClientError> {
        let session =
            ClientSession::start(host, key.clone(), SUPPORTED_VERSIONS, ciphers, rng, out)?;
        let max_age = jittered_age(max_age, rng);
        Ok(Live {
            conn,
            server,
            session,
            inbuf: Vec::new(),
            opened: now,
            last_used: now,
            established: false,
            max_age,
        })
    }

    /// The event of the next complete frame in the read buffer (`Ok(None)`: none complete
    /// yet; `Err(())`: the byte stream is broken and the connection must go). Protocol
    /// replies (handshake) are written to `out`.
    #[allow(clippy::result_unit_err)]
    pub fn next_event(&mut self, out: &mut Vec<u8>) -> Result<Option<Event>, ()> {
        let consumed = match decode_frame(&self.inbuf, MAX_FRAME_LEN) {
            Ok(Some((consumed, _))) => consumed,
            Ok(None) => return Ok(None),
            Err(_) => return Err(()),
        };
        let event = self
            .session
            .handle_frame(&mut self.inbuf[FRAME_HEADER_LEN..consumed], out);
        self.inbuf.drain(..consumed);
        Ok(Some(event))
    }

    /// Appends bytes read from the socket.
    pub fn take_bytes(&mut self, bytes: &[u8]) {
        self.inbuf.extend_from_slice(bytes);
    }

    /// The handshake finished at `now`; keeps the cipher built when `prepare_cipher`.
    /// Returns how long the handshake took (one round trip and the server's key lookup).
    pub fn mark_established(&mut self, now: Instant, prepare_cipher: bool) -> Duration {
        self.established = true;
        if prepare_cipher {
            self.session.prepare_cipher();
        }
        self.last_used = now;
        now.saturating_duration_since(self.opened)
    }
}

/// What one frame said.
pub(super) type Event = Result<ClientEvent, ClientError>;

/// What to do with the connection after a frame.
enum Next {
    Keep,
    /// Close; `avoid` the server for a while; `redirected` counts a redirect on the requests.
    Drop {
        avoid: bool,
        redirected: bool,
    },
}

impl Engine {
    /// Bytes arrived on `conn`: the current connection, the draining one or the successor.
    pub(super) fn on_data(&mut self, conn: ConnId, bytes: &[u8], now: Instant, rng: &mut impl Rng) {
        if self.on_side_data(conn, bytes, now, rng) {
            return;
        }
        let Phase::Connected(live) = &mut self.phase else {
            return;
        };
        if live.conn != conn {
            return;
        }
        live.take_bytes(bytes);
        loop {
            let Phase::Connected(live) = &mut self.phase else {
                return;
            };
            let mut out = Vec::new();
            let event = match live.next_event(&mut out) {
                Ok(Some(event)) => event,
                Ok(None) => return,
                Err(()) => return self.drop_connection(now, true, false),
            };
            if !out.is_empty() {
                self.outputs.push_back(Output::Send { conn, bytes: out });
            }
            match self.on_event(event, now, rng) {
                Next::Keep => {}
                Next::Drop { avoid, redirected } => {
                    return self.drop_connection(now, avoid, redirected);
                }
            }
        }
    }

    fn on_event(&mut self, event: Event, now: Instant, rng: &mut impl Rng) -> Next {
        let Phase::Connected(live) = &mut self.phase else {
            return Next::Keep;
        };
        let server = live.server;
        match event {
            Ok(ClientEvent::Established { .. }) => {
                self.key_refused = false;
                let handshake = live.mark_established(now, self.config.prepare_cipher);
                self.note_established(server, handshake, now, rng);
                self.write_requests(now);
                Next::Keep
            }
            Ok(ClientEvent::Response { id, body }) => {
                live.last_used = now;
                if let Response::Error(e) = &body {
                    if e.code.means_go_elsewhere() || e.code == ErrorCode::Internal {
                        return Next::Drop {
                            avoid: true,
                            redirected: true,
                        };
                    }
                }
                if let Some((p, sent)) = self.requests.take_answered(id, false) {
                    self.note_answer(server, p.class(), sent, now);
                    let result = match body {
                        Response::Error(e) => Err(AgentError::Refused(e)),
                        other => Ok(other),
                    };
                    self.finish(p, result, Some(server), now);
                }
                self.write_requests(now);
                Next::Keep
            }
            Ok(ClientEvent::Replication(_)) => Next::Drop {
                avoid: true,
                redirected: false,
            },
            Ok(ClientEvent::Goodbye(reason)) => Next::Drop {
                avoid: reason == GoodbyeReason::ShuttingDown,
                redirected: false,
            },
            Err(ClientError::BadServerProof) => {
                // The server's proof used another key for this host than ours: one of the
                // two keys is wrong (the session still sent our proof, so the server logs
                // the host that failed it).
                self.key_refused = true;
                Next::Drop {
                    avoid: true,
                    redirected: true,
                }
            }
            Err(ClientError::Server(e)) => {
                if !live.established
                    && matches!(e.code, ErrorCode::UnknownHost | ErrorCode::AuthFailed)
                {
                    self.key_refused = true;
                }
                if !e.code.means_go_elsewhere() {
                    // Unknown host, failed authentication...: remembered in case every
                    // server says the same, so the caller learns why.
                    self.last_refusal = Some(e);
                }
                Next::Drop {
                    avoid: true,
                    redirected: true,
                }
            }
            Err(_) => Next::Drop {
                avoid: true,
                redirected: false,
            },
        }
    }

    /// Writes queued requests on the established connection, up to the in-flight cap, unless
    /// the connection is past its age (it then only finishes what is in flight). A request is
    /// marked sent only once it is encoded; one that cannot be encoded (a field over its wire
    /// limit) ends at once with a `Malformed` refusal and the connection is unaffected.
    pub(super) fn write_requests(&mut self, now: Instant) {
        let Phase::Connected(live) = &mut self.phase else {
            return;
        };
        if !live.established || now >= live.opened + live.max_age {
            return;
        }
        let mut out = std::mem::take(&mut self.spare_send_buffer);
        out.clear();
        out.reserve(SEND_BUFFER_INITIAL);
        let mut invalid = Vec::new();
        while self.requests.in_flight() < MAX_IN_FLIGHT {
            let session = &mut live.session;
            match self.requests.send_next(now, |wire_id, request| {
                session.write_request(wire_id, request, &mut out)
            }) {
                SendNext::Nothing => break,
                SendNext::Sent => live.last_used = now,
                SendNext::Invalid(p, e) => invalid.push((*p, e)),
            }
        }
        if out.is_empty() {
            // Nothing to send (called on every answer): keep the buffer for next time.
            self.spare_send_buffer = out;
        } else {
            self.outputs.push_back(Output::Send {
                conn: live.conn,
                bytes: out,
            });
        }
        for (p, e) in invalid {
            let error = WireError::new(ErrorCode::Malformed, format!("invalid request: {e}"));
            self.finish(p, Err(AgentError::Refused(error)), None, now);
        }
    }

    /// Closes the current connection; requests on it go back to the queue and on to the next
    /// candidate at once (failover). A move under way (successor, refresh) is abandoned.
    pub(super) fn drop_connection(&mut self, now: Instant, avoid: bool, redirected: bool) {
        let Phase::Connected(live) = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        self.outputs.push_back(Output::Close { conn: live.conn });
        self.abandon_successor();
        self.refresh = None;
        self.refresh_at = None;
        if avoid {
            self.avoid.avoid_for(live.server, now, self.config.avoid);
        }
        self.requests.requeue_sent(redirected);
        if avoid {
            self.fail_over(now);
        }
    }

    /// When the open connection next needs attention: a sent request's response timeout
    /// (derived from the server's recent answers), a hedge, a refresh, idling or ageing.
    pub(super) fn connection_deadline(&self, live: &Live) -> Instant {
        if !live.established {
            return live.opened + self.timeout_on(live.server, AnswerClass::Cheap);
        }
        let moves = [self.hedge_at(live), self.refresh_due()];
        let stall = self.stall_at(live.server, false);
        let retire = if stall.is_some() {
            None
        } else if self.requests.is_empty() {
            Some((live.last_used + self.config.idle_close).min(live.opened + live.max_age))
        } else {
            Some(live.opened + live.max_age)
        };
        [stall, retire]
            .into_iter()
            .chain(moves)
            .flatten()
            .min()
            .unwrap_or(live.opened + live.max_age)
    }

    /// The earliest response timeout of the requests awaited on the current connection
    /// (`draining` false) or the draining one, on `server`.
    pub(super) fn stall_at(&self, server: usize, draining: bool) -> Option<Instant> {
        self.requests
            .awaited(draining)
            .map(|(at, class)| at + self.timeout_on(server, class))
            .min()
    }

    /// The response timeout for a request of `class` on `server`.
    pub(super) fn timeout_on(&self, server: usize, class: AnswerClass) -> Duration {
        let latency = self.latency.get(server).cloned().unwrap_or_default();
        self.config.failover.response.timeout(&latency, class)
    }

    /// Handles a stalled, idle or aged connection at `now`, and the hedge and refresh timers.
    pub(super) fn check_connection(&mut self, now: Instant, rng: &mut impl Rng) {
        let Phase::Connected(live) = &self.phase else {
            return;
        };
        let stalled = if live.established {
            self.stall_at(live.server, false)
                .is_some_and(|at| now >= at)
        } else {
            now >= live.opened + self.timeout_on(live.server, AnswerClass::Cheap)
        };
        if stalled {
            // A server silent past its response timeout is treated like a dead one: its
            // requests go elsewhere now, not when TCP gives up.
            return self.drop_connection(now, true, false);
        }
        if !live.established {
            return;
        }
        let aged = now >= live.opened + live.max_age;
        let idle = self.requests.is_empty() && now >= live.last_used + self.config.idle_close;
        if self.requests.in_flight() == 0 && (aged || idle) {
            // An idle or aged connection is simply retired (the next request re-probes).
            return self.drop_connection(now, false, false);
        }
        self.maybe_hedge(now);
        self.drive_refresh(now, rng);
    }
}
