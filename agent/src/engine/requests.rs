//! The engine's requests: queued ones waiting for a connection, those sent on the current
//! connection, and those still awaited on a draining one (the connection the agent moved away
//! from). Pure bookkeeping; bounded by `MAX_QUEUED_REQUESTS`. The number on the wire is kept
//! as a counter (it is asked for on every request sent), and is unique across connections, so
//! an answer names its request whichever connection it comes on.

use super::{RequestId, MAX_QUEUED_REQUESTS};
use crate::budget::Deadline;
use crate::latency::AnswerClass;
use gatehouse_common::wire::Request;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One request the caller is waiting for.
pub(super) struct Pending {
    pub id: RequestId,
    pub request: Request,
    pub deadline: Deadline,
    pub submitted: Instant,
    /// Connections this request has been sent on or redirected from.
    pub tries: u32,
    pub redirects: u32,
    /// Set while the request is on the current connection.
    pub sent: Option<Sent>,
    /// Set while the request is awaited on the draining connection.
    pub draining: Option<Sent>,
    /// Awaited on the draining connection *and* to be sent on the current one (a hedged
    /// authorize): the first answer wins, the other is ignored.
    pub hedged: bool,
    /// Sent once on a connection that went away before its answer, and never to be sent
    /// again ([`sent_at_most_once`]): waits to be taken by [`Requests::take_lost`].
    pub lost: bool,
}

/// Whether a request, once sent, is never sent again: a password change, which the server
/// may have applied before the connection went away (docs/PROTOCOL.md, "Password change").
/// Everything else is a question, safe to ask twice.
pub(super) fn sent_at_most_once(request: &Request) -> bool {
    matches!(request, Request::ChangePassword(_))
}

impl Pending {
    /// Which latency window its answer belongs to.
    pub fn class(&self) -> AnswerClass {
        class_of(&self.request)
    }

    /// Waiting to be written on the current connection.
    fn wants_sending(&self) -> bool {
        !self.lost && self.sent.is_none() && (self.draining.is_none() || self.hedged)
    }

    /// On no connection at all.
    fn unplaced(&self) -> bool {
        self.sent.is_none() && self.draining.is_none()
    }

    /// Marks it lost if it was on a connection that went away and may not be sent again.
    fn note_connection_gone(&mut self, was_on_it: bool) {
        if was_on_it && sent_at_most_once(&self.request) {
            self.lost = true;
        }
    }
}

/// The latency class of a request: password checks and password changes apart from
/// everything else (authorize and identity lookups, both answered from the compiled policy on
/// the servers' event loop, and both safe to hedge).
pub(super) fn class_of(request: &Request) -> AnswerClass {
    match request {
        Request::Authenticate(_) => AnswerClass::Password,
        Request::ChangePassword(_) => AnswerClass::Change,
        Request::Authorize(_) | Request::Lookup(_) => AnswerClass::Cheap,
    }
}

#[derive(Clone, Copy)]
pub(super) struct Sent {
    pub wire_id: u32,
    pub at: Instant,
}

/// What [`Requests::send_next`] did.
pub(super) enum SendNext<E> {
    /// No request is waiting to be sent.
    Nothing,
    /// The next request was encoded and is now on the wire.
    Sent,
    /// The next request cannot be encoded: it was removed (never sent) and is returned.
    Invalid(Box<Pending>, E),
}

#[derive(Default)]
pub(super) struct Requests {
    items: VecDeque<Pending>,
    /// Items with `sent` set: always equal to counting them (checked on every read in debug
    /// builds), kept because the send loop asks for it before every request.
    in_flight: usize,
    next_id: u64,
    next_wire: u32,
}

impl Requests {
    /// Queues a request; `None` when the queue is full.
    pub fn submit(
        &mut self,
        now: Instant,
        request: Request,
        budget: Duration,
    ) -> Option<RequestId> {
        if self.items.len() >= MAX_QUEUED_REQUESTS {
            return None;
        }
        self.next_id += 1;
        let id = RequestId(self.next_id);
        self.items.push_back(Pending {
            id,
            request,
            deadline: Deadline::after(now, budget),
            submitted: now,
            tries: 0,
            redirects: 0,
            sent: None,
            draining: None,
            hedged: false,
            lost: false,
        });
        Some(id)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// True when a waiting request has already been tried on some server (a redirect or a
    /// failover is pending).
    pub fn has_retry_waiting(&self) -> bool {
        self.items.iter().any(|p| p.wants_sending() && p.tries > 0)
    }

    /// A request is waiting to be written on the current connection.
    pub fn has_unsent(&self) -> bool {
        self.items.iter().any(Pending::wants_sending)
    }

    /// Requests sent on the current connection and not yet answered.
    pub fn in_flight(&self) -> usize {
        debug_assert_eq!(
            self.in_flight,
            self.items.iter().filter(|p| p.sent.is_some()).count(),
            "the in-flight count drifted from the queue"
        );
        self.in_flight
    }

    /// Encodes the next unsent request with `encode(wire_id, request)` and, only if that
    /// succeeds, marks it sent now. A request that cannot be encoded is taken out and
    /// returned, so it can neither jam the queue nor look like a request awaiting an answer.
    pub fn send_next<E>(
        &mut self,
        now: Instant,
        encode: impl FnOnce(u32, &Request) -> Result<(), E>,
    ) -> SendNext<E> {
        let wire_id = self.next_wire;
        let Some(pos) = self.items.iter().position(Pending::wants_sending) else {
            return SendNext::Nothing;
        };
        let Some(pending) = self.items.get_mut(pos) else {
            return SendNext::Nothing;
        };
        if let Err(e) = encode(wire_id, &pending.request) {
            return match self.items.remove(pos) {
                Some(p) => SendNext::Invalid(Box::new(p), e),
                None => SendNext::Nothing,
            };
        }
        self.next_wire = self.next_wire.wrapping_add(1);
        pending.sent = Some(Sent { wire_id, at: now });
        self.in_flight += 1;
        SendNext::Sent
    }

    /// Removes the request answered under `wire_id` on the current connection (`draining`
    /// false) or the draining one, with when it was sent there (None: not ours, e.g. already
    /// expired, or answered first by the other connection of a hedge).
    pub fn take_answered(&mut self, wire_id: u32, draining: bool) -> Option<(Pending, Instant)> {
        let on = |p: &Pending| if draining { p.draining } else { p.sent };
        let pos = self
            .items
            .iter()
            .position(|p| on(p).is_some_and(|s| s.wire_id == wire_id))?;
        let p = self.items.remove(pos)?;
        if p.sent.is_some() {
            self.in_flight -= 1;
        }
        let at = on(&p).map_or(p.submitted, |s| s.at);
        Some((p, at))
    }

    /// The current connection becomes the draining one: what was sent on it is awaited
    /// there. With `hedge`, its authorize requests are also sent again on the next connection
    /// (each counts a redirect); everything else waits for its answer there.
    pub fn retire_current(&mut self, hedge: bool) {
        for p in self.items.iter_mut() {
            p.draining = p.sent.take();
            p.hedged = hedge && p.draining.is_some() && p.class() == AnswerClass::Cheap;
            if p.hedged {
                p.redirects += 1;
            }
        }
        self.in_flight = 0;
    }

    /// When the oldest authorize on the current connection was sent (what a hedge would
    /// send again).
    pub fn oldest_hedgeable(&self) -> Option<Instant> {
        self.awaited(false)
            .filter(|&(_, class)| class == AnswerClass::Cheap)
            .map(|(at, _)| at)
            .min()
    }

    /// The draining connection is gone (silent, closed): its requests wait for the current
    /// or the next connection like any other.
    pub fn release_draining(&mut self) {
        for p in self.items.iter_mut() {
            p.note_connection_gone(p.draining.is_some());
            p.draining = None;
            p.hedged = false;
        }
    }

    /// Requests still awaited on the draining connection.
    pub fn on_draining(&self) -> usize {
        self.items.iter().filter(|p| p.draining.is_some()).count()
    }

    /// The connection is gone: sent requests go back to the queue. When the server sent the
    /// agent elsewhere (`redirected`), every waiting request counts a redirect: those sent on
    /// the connection, and those still waiting for it (a server that refuses at the handshake,
    /// at its connection cap, redirects requests it never saw).
    pub fn requeue_sent(&mut self, redirected: bool) {
        for p in self.items.iter_mut() {
            p.note_connection_gone(p.sent.is_some());
            p.sent = None;
            if redirected && p.draining.is_none() {
                p.redirects += 1;
            }
        }
        self.in_flight = 0;
    }

    /// Counts a new connection attempt for every waiting request; returns those that have
    /// used all their tries.
    pub fn count_try(&mut self, max_tries: u32) -> Vec<Pending> {
        for p in self.items.iter_mut().filter(|p| p.wants_sending()) {
            p.tries += 1;
        }
        self.take_where(|p| p.unplaced() && p.tries > max_tries)
    }

    /// Removes the requests sent on a connection that went away and never to be sent again.
    pub fn take_lost(&mut self) -> Vec<Pending> {
        self.take_where(|p| p.lost)
    }

    /// Removes the requests whose deadline has passed.
    pub fn take_expired(&mut self, now: Instant) -> Vec<Pending> {
        self.take_where(|p| p.deadline.expired(now))
    }

    /// Removes every request on no connection (a hedged one still awaited on the draining
    /// connection stays: its answer may yet come).
    pub fn take_unsent(&mut self) -> Vec<Pending> {
        self.take_where(Pending::unplaced)
    }

    fn take_where(&mut self, mut pred: impl FnMut(&Pending) -> bool) -> Vec<Pending> {
        // Called on every event (deadline checks): the common case takes nothing and must not
        // rebuild the queue.
        if !self.items.iter().any(&mut pred) {
            return Vec::new();
        }
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.items.len());
        for p in self.items.drain(..) {
            if pred(&p) {
                if p.sent.is_some() {
                    self.in_flight -= 1;
                }
                taken.push(p);
            } else {
                kept.push_back(p);
            }
        }
        self.items = kept;
        taken
    }

    /// The earliest deadline of any request.
    pub fn earliest_deadline(&self) -> Option<Deadline> {
        self.items.iter().map(|p| p.deadline).min_by_key(|d| d.at())
    }

    /// The requests on the current connection (`draining` false) or the draining one: when
    /// each was sent there and its latency class.
    pub fn awaited(&self, draining: bool) -> impl Iterator<Item = (Instant, AnswerClass)> + '_ {
        self.items.iter().filter_map(move |p| {
            let sent = if draining { p.draining } else { p.sent };
            sent.map(|s| (s.at, p.class()))
        })
    }
}
