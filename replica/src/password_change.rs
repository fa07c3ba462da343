//! Where a server sends a user's own password change once it has verified the old password
//! ([`crate::handler`]): the [`PasswordChanger`] trait, and [`Forwarder`], a replica's
//! implementation, which hands the change to the follower thread for the master and waits
//! for the master's answer. (The master's own implementation applies it directly: in the
//! master crate.)
//!
//! Not pure: the caller (a bridge worker) blocks on a condition variable until the follower
//! thread delivers the answer, at most [`MASTER_ANSWER_TIMEOUT`]. Bounded: at most
//! [`MAX_CHANGES_IN_FLIGHT`] changes wait at once; one more is answered "unavailable" at once.
//!
//! Never retried: a change handed to a link that then breaks is answered "unavailable" (the
//! master may or may not have applied it), never sent again on the next link. The user sees
//! "try again", and passwd run again is safe (the old password is then the new one if it was
//! applied, and the change fails with the one "failed" answer: the user logs in with the new).

use gatehouse_common::repl::msg::MAX_CHANGES_IN_FLIGHT;
use gatehouse_common::repl::ReplMessage;
use gatehouse_common::wire::{ChangeOutcome, ChangePasswordRequest};
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long a replica waits for the master's answer to a change (3 s): a commit takes
/// milliseconds and an argon2 hash tens of them; a master that takes longer is not answering.
/// Well under what the agent gives a sent change (10 s, `CHANGE_ANSWER_TIMEOUT` in the
/// agent), so the replica's "unavailable" reaches the user rather than a lost connection.
pub const MASTER_ANSWER_TIMEOUT: Duration = Duration::from_secs(3);

/// Applies or forwards a password change whose old password the caller has verified.
pub trait PasswordChanger: Send + Sync + 'static {
    /// Changes `request.user`'s password to `request.new_password`, asked by `agent` (the host
    /// its node key proved) for `request.host`. Blocks at most the implementation's own
    /// timeout. `request.old_password` is not looked at.
    fn change(&self, agent: &str, request: ChangePasswordRequest<&str>) -> ChangeOutcome;
}

/// What the answer to a change says when the link to the master is down.
pub const MASTER_UNREACHABLE: &str =
    "the master is unreachable, so passwords cannot be changed now; try again later";

/// A replica's changer: changes go to the master over the replication link.
#[derive(Default)]
pub struct Forwarder {
    inner: Mutex<Inner>,
    answered: Condvar,
}

#[derive(Default)]
struct Inner {
    /// Whether a link to the master is up (subscribed).
    link_up: bool,
    next_id: u64,
    /// Changes not yet sent, oldest first.
    unsent: VecDeque<(u64, ChangePasswordRequest)>,
    /// Every change not yet answered (sent or not): `Some` once its answer is in.
    waiting: HashMap<u64, Option<ChangeOutcome>>,
}

impl PasswordChanger for Forwarder {
    fn change(&self, agent: &str, request: ChangePasswordRequest<&str>) -> ChangeOutcome {
        self.change_by(agent, request, Instant::now() + MASTER_ANSWER_TIMEOUT)
    }
}

impl Forwarder {
    /// A forwarder whose change ids start at a random number: a replica that restarts while
    /// the master still works on one of its changes must not take that change's late answer
    /// for a new change with the same id (the master answers by replica host and id).
    pub fn new() -> Self {
        Self::with_first_id(rand::random::<u64>() >> 1)
    }

    /// A forwarder whose first change gets id `first + 1`.
    pub fn with_first_id(first: u64) -> Self {
        let forwarder = Self::default();
        forwarder.inner.lock().next_id = first;
        forwarder
    }

    /// [`PasswordChanger::change`] with the deadline given.
    pub fn change_by(
        &self,
        _agent: &str,
        request: ChangePasswordRequest<&str>,
        deadline: Instant,
    ) -> ChangeOutcome {
        let mut inner = self.inner.lock();
        if !inner.link_up {
            return ChangeOutcome::unavailable(MASTER_UNREACHABLE);
        }
        if inner.waiting.len() >= MAX_CHANGES_IN_FLIGHT {
            return ChangeOutcome::unavailable(
                "too many password changes are under way on this server; try again in a moment",
            );
        }
        inner.next_id = inner.next_id.wrapping_add(1);
        let id = inner.next_id;
        let mut owned = request.to_owned();
        // The master does not need it: this server has checked it.
        zeroize::Zeroize::zeroize(&mut owned.old_password);
        inner.unsent.push_back((id, owned));
        inner.waiting.insert(id, None);
        loop {
            if let Some(Some(outcome)) = inner.waiting.get(&id) {
                let outcome = outcome.clone();
                inner.waiting.remove(&id);
                return outcome;
            }
            if self.answered.wait_until(&mut inner, deadline).timed_out() {
                break;
            }
        }
        // No answer in time: never sent again (see the module docs).
        inner.waiting.remove(&id);
        let sent = !inner.unsent.iter().any(|(i, _)| *i == id);
        inner.unsent.retain_mut(|(i, r)| {
            let keep = *i != id;
            if !keep {
                r.wipe();
            }
            keep
        });
        ChangeOutcome::unavailable(if sent {
            "the master did not answer in time; the password may have been changed: try it, or run passwd again"
        } else {
            MASTER_UNREACHABLE
        })
    }

    /// The follower: a link is up (subscribed) and takes changes.
    pub fn on_link_up(&self) {
        self.inner.lock().link_up = true;
    }

    /// The follower: the link is gone. Every change waiting is answered now: those not yet
    /// sent were not made; those sent may have been.
    pub fn on_link_down(&self) {
        let mut inner = self.inner.lock();
        inner.link_up = false;
        let unsent: Vec<u64> = inner
            .unsent
            .drain(..)
            .map(|(id, mut r)| {
                r.wipe();
                id
            })
            .collect();
        for (id, answer) in inner.waiting.iter_mut() {
            if answer.is_none() {
                *answer = Some(ChangeOutcome::unavailable(if unsent.contains(id) {
                    MASTER_UNREACHABLE
                } else {
                    "the link to the master broke before its answer; the password may have been changed: try it, or run passwd again"
                }));
            }
        }
        self.answered.notify_all();
    }

    /// The follower: the next change to send, as its message (the caller wipes it once sent:
    /// [`wipe_message`]).
    pub fn next_message(&self) -> Option<ReplMessage> {
        let (id, request) = self.inner.lock().unsent.pop_front()?;
        Some(ReplMessage::PasswordChange { id, request })
    }

    /// The follower: the master's answer to change `id` (ignored if nobody waits for it any
    /// more: its caller timed out).
    pub fn on_result(&self, id: u64, outcome: ChangeOutcome) {
        let mut inner = self.inner.lock();
        if let Some(answer) = inner.waiting.get_mut(&id) {
            *answer = Some(outcome);
            self.answered.notify_all();
        }
    }

    /// Changes sent or queued and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.inner.lock().waiting.len()
    }
}

/// Wipes the new password in a sent `PasswordChange` message.
pub fn wipe_message(message: &mut ReplMessage) {
    if let ReplMessage::PasswordChange { request, .. } = message {
        request.wipe();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn request() -> ChangePasswordRequest<&'static str> {
        ChangePasswordRequest {
            user: "bob",
            old_password: "old",
            new_password: "correct horse battery",
            host: "web1",
        }
    }

    #[test]
    fn without_a_link_a_change_is_unavailable_at_once() {
        let f = Forwarder::new();
        assert_eq!(
            f.change("web1", request()),
            ChangeOutcome::unavailable(MASTER_UNREACHABLE)
        );
        assert_eq!(f.in_flight(), 0);
    }

    #[test]
    fn a_change_goes_to_the_link_without_its_old_password_and_gets_the_masters_answer() {
        let f = Arc::new(Forwarder::new());
        f.on_link_up();
        let caller = {
            let f = f.clone();
            std::thread::spawn(move || f.change("web1", request()))
        };
        // The follower's side: wait (bounded) for the change to be queued, then answer it.
        let message = loop {
            if let Some(m) = f.next_message() {
                break m;
            }
            std::thread::yield_now();
        };
        let ReplMessage::PasswordChange { id, request } = &message else {
            panic!("{message:?}")
        };
        assert_eq!(request.old_password, "");
        assert_eq!(request.new_password, "correct horse battery");
        f.on_result(*id, ChangeOutcome::Changed);
        assert_eq!(caller.join().unwrap(), ChangeOutcome::Changed);
        assert_eq!(f.in_flight(), 0);
    }

    #[test]
    fn a_broken_link_answers_every_waiting_change_and_nothing_is_sent_again() {
        let f = Arc::new(Forwarder::new());
        f.on_link_up();
        let caller = {
            let f = f.clone();
            std::thread::spawn(move || f.change("web1", request()))
        };
        while f.next_message().is_none() {
            std::thread::yield_now();
        }
        f.on_link_down();
        let ChangeOutcome::Unavailable { why } = caller.join().unwrap() else {
            panic!("not unavailable")
        };
        assert!(why.contains("may have been changed"), "{why}");
        f.on_link_up();
        assert!(
            f.next_message().is_none(),
            "a sent change is never sent again"
        );
    }

    #[test]
    fn no_answer_by_the_deadline_is_unavailable_and_in_flight_changes_are_capped() {
        let f = Forwarder::new();
        f.on_link_up();
        let past = Instant::now();
        let outcome = f.change_by("web1", request(), past);
        assert!(matches!(outcome, ChangeOutcome::Unavailable { .. }));
        // It was never sent: dropped from the queue, so a later link does not send it.
        assert!(f.next_message().is_none());
        // The cap: fill the table by hand and see the next one refused at once.
        {
            let mut inner = f.inner.lock();
            for id in 100..100 + MAX_CHANGES_IN_FLIGHT as u64 {
                inner.waiting.insert(id, None);
            }
        }
        let ChangeOutcome::Unavailable { why } = f.change_by("web1", request(), past) else {
            panic!("not unavailable")
        };
        assert!(why.contains("too many"), "{why}");
    }
}
