//! The follower's side of the report channel: after each turn of the link loop it sends what
//! the outbox holds (within its in-flight cap) and, on a replica with an audit journal, the
//! journal's synced records (`audit::Relay`), and it applies the master's acks to whichever
//! stream they name. A report the master does not acknowledge within the link's request
//! timeout closes the link, and the next link sends it again.
//!
//! Not pure: sends on the link. Driven by the follower thread.

use super::link::{Link, LinkError};
use super::Follower;
use gatehouse_common::repl::Liveness;
use std::time::{Duration, Instant};

/// How long a failure waits at most before the follower looks at the outbox (50 ms): the
/// follower blocks in a read with this as its longest timeout, so a failure reaches the master
/// within it plus a round trip, and failures that come together go in one message.
pub const REPORT_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The same for a replica with an audit journal (10 ms): how long a synced record waits at
/// most before it is sent, part of the delay from a decision to its record on the master.
pub const AUDIT_POLL_INTERVAL: Duration = Duration::from_millis(10);

impl Follower {
    /// Sends every report the outbox lets go now.
    pub(super) fn send_reports(
        &mut self,
        link: &mut Link,
        liveness: &mut Liveness,
    ) -> Result<(), LinkError> {
        while let Some(report) = self.published.reports.with(|outbox| outbox.next_message()) {
            link.send(&report)?;
            let now = Instant::now();
            liveness.on_sent(now);
            liveness.expect_answer(now);
        }
        while let Some(relay) = self.relay.as_mut() {
            let message = relay
                .next_message()
                .map_err(|e| LinkError::Store(format!("cannot read the audit journal: {e}")))?;
            let Some(message) = message else {
                break;
            };
            link.send(&message)?;
            let now = Instant::now();
            liveness.on_sent(now);
            liveness.expect_answer(now);
        }
        Ok(())
    }

    /// The master counted everything of `stream` up to `through`. Progress restarts the
    /// answer timer (as the master's does for acks of changes).
    pub(super) fn on_report_ack(
        &mut self,
        stream: u64,
        through: u64,
        liveness: &mut Liveness,
        now: Instant,
    ) {
        let mut awaiting = self.published.reports.with(|outbox| {
            outbox.on_ack(stream, through);
            outbox.awaiting_ack()
        });
        if let Some(relay) = self.relay.as_mut() {
            relay.on_ack(stream, through);
            awaiting |= relay.awaiting_ack();
        }
        liveness.on_answered();
        if awaiting {
            liveness.expect_answer(now);
        }
    }
}
