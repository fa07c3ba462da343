//! What a following replica reports to its master: every failed password check for a user its
//! database knows, for the master's central lockout (docs/SECURITY.md, "Password checks").
//! [`ReportingEvents`] is the handler's event sink on such a replica: it logs as
//! [`LogEvents`] does (behind a `LogThen`) and queues a record in the shared [`Reports`] outbox, which the follower
//! thread sends over the replication link and forgets once the master acknowledges it
//! (`gatehouse_common::repl::report_stream`: numbered, resent after a reconnect, counted once).
//!
//! Not pure: a mutex around the outbox (held for a push, microseconds), the wall clock for
//! each record's time, the log. [`ReportsCollector`] shows the outbox in metrics. Called by the worker threads (password checks) and the
//! follower thread (sending, acks).

use crate::auth_events::{AuthEvent, AuthEvents};
use crate::metrics::collect::{counter, gauge};
use gatehouse_common::repl::{PasswordFailure, Report, ReportOutbox};
use gatehouse_common::types::AuthFailure;
use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Dropped records are logged on the first drop and then once per this many (1024): a master
/// away for long must not turn every failed login into a log line.
const DROP_LOG_EVERY: u64 = 1024;

/// The outbox shared by the workers (push) and the follower (send, ack).
#[derive(Debug)]
pub struct Reports {
    outbox: Mutex<ReportOutbox>,
}

impl Reports {
    /// An empty outbox for a fresh stream: a random number, so this run's records are never
    /// taken for an earlier run's (which started its numbers at 1 too).
    pub fn new() -> Self {
        Self::with_outbox(ReportOutbox::new(rand::random::<u64>()))
    }

    pub fn with_outbox(outbox: ReportOutbox) -> Self {
        Reports {
            outbox: Mutex::new(outbox),
        }
    }

    /// Queues a record (dropping the oldest when full).
    pub fn push(&self, report: Report) {
        let mut outbox = self.outbox.lock();
        if !outbox.push(report) {
            let dropped = outbox.dropped();
            if dropped % DROP_LOG_EVERY == 1 {
                log::warn!(
                    "the master has not acknowledged {} failure reports: dropped the oldest ({dropped} so far); the lockout will not count them",
                    outbox.pending()
                );
            }
        }
    }

    /// Runs `f` on the outbox (the follower: send, ack, reconnect).
    pub fn with<R>(&self, f: impl FnOnce(&mut ReportOutbox) -> R) -> R {
        f(&mut self.outbox.lock())
    }
}

impl Default for Reports {
    fn default() -> Self {
        Self::new()
    }
}

/// The event sink of a replica that follows a master: reports failed password checks of
/// known users (wrap it in a `LogThen` to log them too).
pub struct ReportingEvents {
    reports: Arc<Reports>,
}

impl ReportingEvents {
    pub fn new(reports: Arc<Reports>) -> Self {
        ReportingEvents { reports }
    }
}

impl AuthEvents for ReportingEvents {
    fn record(&self, event: &AuthEvent<'_>) {
        let AuthEvent::PasswordChecked {
            agent,
            host,
            user,
            outcome: Err(reason),
        } = *event
        else {
            return;
        };
        // A name the database does not know is the guesser's own string: nothing to count,
        // and not worth the master's memory.
        if reason == AuthFailure::UnknownUser {
            return;
        }
        self.reports.push(Report::PasswordFailure(PasswordFailure {
            at_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            agent: agent.to_string(),
            host: host.to_string(),
            user: user.to_string(),
            reason,
        }));
    }
}

/// The outbox as metrics: records waiting for the master's ack, and records dropped because
/// it was full (an alarm: the lockout did not count them).
#[derive(Debug)]
pub struct ReportsCollector(pub Arc<Reports>);

impl Collector for ReportsCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let (pending, dropped) = self.0.with(|o| (o.pending(), o.dropped()));
        gauge(
            &mut e,
            "reports_pending",
            "Failure reports the master has not acknowledged yet.",
            pending as f64,
        )?;
        counter(
            &mut e,
            "reports_dropped",
            "Failure reports dropped, oldest first, because the queue was full.",
            dropped,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_shows_in_metrics() {
        use crate::metrics::collect::{encode, registry};
        let reports = Arc::new(Reports::with_outbox(ReportOutbox::with_capacity(1, 1)));
        for user in ["bob", "carol"] {
            ReportingEvents::new(reports.clone()).record(&AuthEvent::PasswordChecked {
                agent: "web1",
                host: "web1",
                user,
                outcome: Err(AuthFailure::BadPassword),
            });
        }
        let text = encode(&registry(vec![Box::new(ReportsCollector(reports))]));
        assert!(text.contains("gatehouse_reports_pending 1.0\n"), "{text}");
        assert!(
            text.contains("gatehouse_reports_dropped_total 1\n"),
            "{text}"
        );
    }

    #[test]
    fn failures_of_known_users_are_queued_with_their_hosts_and_nothing_else_is() {
        let reports = Arc::new(Reports::with_outbox(ReportOutbox::new(1)));
        let events = ReportingEvents::new(reports.clone());
        let checked = |user, outcome| AuthEvent::PasswordChecked {
            agent: "jump1",
            host: "web1",
            user,
            outcome,
        };
        events.record(&checked("bob", Ok(())));
        events.record(&checked("ghost", Err(AuthFailure::UnknownUser)));
        events.record(&checked("bob", Err(AuthFailure::BadPassword)));
        events.record(&checked("bob", Err(AuthFailure::LockedOut)));
        let message = reports.with(|outbox| outbox.next_message()).unwrap();
        let gatehouse_common::repl::ReplMessage::Report { first, records, .. } = message else {
            panic!("a report");
        };
        assert_eq!(first, 1);
        let seen: Vec<_> = records
            .iter()
            .filter_map(|r| match r {
                Report::PasswordFailure(f) => Some((f.agent.as_str(), f.host.as_str(), f.reason)),
                Report::Audit(_) => None,
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("jump1", "web1", AuthFailure::BadPassword),
                ("jump1", "web1", AuthFailure::LockedOut)
            ]
        );
    }
}
