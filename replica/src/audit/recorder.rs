//! What a server records: the request handler's decisions (every authorize and authenticate
//! answered, every request refused for naming another host) and the reactor's refused
//! handshakes. A decision's record is appended before its answer is made, and if the journal
//! cannot take it the agent is told "busy, go elsewhere" instead ([`Recorder::busy`]): no
//! decision goes unrecorded. A refused handshake comes from a peer that has proven nothing,
//! so those are recorded under a budget ([`REFUSALS_PER_PERIOD`] a second, then one
//! `suppressed` record with the count): a flood of forged hellos cannot fill the journal.
//!
//! Identity lookups (NSS: `ls -l`, `id`) are not recorded: they decide no access, they are
//! the most frequent request by far, and the metrics count them.
//!
//! Not pure: the journal, and the clock for the refusal budget. Called by the worker threads
//! and the reactor thread.

use super::journal::{Journal, Refusal};
use gatehouse_common::audit::{AuditEvent, AuditRecord};
use gatehouse_common::types::ErrorCode;
use gatehouse_common::wire::{Response, WireError};
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Refused handshakes recorded one by one per [`REFUSAL_PERIOD`]: 100. The first ones, with
/// the claimed host and the address, are what an admin needs; the rest are counted.
pub const REFUSALS_PER_PERIOD: u32 = 100;
/// The refusal budget's period: 1 s.
pub const REFUSAL_PERIOD: Duration = Duration::from_secs(1);

/// Milliseconds since the epoch (0 for a clock before it).
pub fn unix_ms(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// See the module docs.
pub struct Recorder {
    journal: Arc<Journal>,
    budget: Mutex<Budget>,
}

/// Refusals recorded and suppressed in the current period (pure: `now` is passed in).
#[derive(Debug, Default)]
struct Budget {
    period_start: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl Budget {
    /// Whether one more may be recorded now, and the count suppressed in the period that
    /// just ended (once, when a new period starts).
    fn take(&mut self, now: Instant) -> (bool, u64) {
        let mut ended = 0;
        if self
            .period_start
            .is_none_or(|start| now.saturating_duration_since(start) >= REFUSAL_PERIOD)
        {
            ended = std::mem::take(&mut self.suppressed);
            self.period_start = Some(now);
            self.used = 0;
        }
        if self.used < REFUSALS_PER_PERIOD {
            self.used += 1;
            (true, ended)
        } else {
            self.suppressed += 1;
            (false, ended)
        }
    }
}

impl Recorder {
    pub fn new(journal: Arc<Journal>) -> Self {
        Recorder {
            journal,
            budget: Mutex::new(Budget::default()),
        }
    }

    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// Appends a decision's record.
    pub fn record<S: AsRef<str>>(&self, record: &AuditRecord<S>) -> Result<u64, Refusal> {
        self.journal.append(record)
    }

    /// The answer to a request whose record the journal refused: go elsewhere (another
    /// server's journal has room), never an unrecorded decision.
    pub fn busy(refusal: Refusal) -> Response {
        let message = match refusal {
            Refusal::Full => "audit journal full, go elsewhere",
            Refusal::Backlog => "audit journal busy, go elsewhere",
        };
        Response::Error(WireError::new(ErrorCode::Busy, message))
    }

    /// A handshake refused with `code` for a peer at `address` that claimed to be `claimed`,
    /// within the budget.
    pub fn refused_handshake(
        &self,
        claimed: &str,
        address: SocketAddr,
        code: ErrorCode,
        now: SystemTime,
    ) {
        let (record, suppressed) = self.budget.lock().take(Instant::now());
        let at_unix_ms = unix_ms(now);
        if suppressed > 0 {
            let _ = self.journal.append(&AuditRecord {
                at_unix_ms,
                agent: "",
                address: None,
                event: AuditEvent::Suppressed { count: suppressed },
            });
        }
        if record {
            let _ = self.journal.append(&AuditRecord {
                at_unix_ms,
                agent: claimed,
                address: Some(address),
                event: AuditEvent::HostRefused { code },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_records_a_hundred_a_second_and_counts_the_rest_once() {
        let mut budget = Budget::default();
        let t0 = Instant::now();
        let recorded = (0..250).filter(|_| budget.take(t0).0).count();
        assert_eq!(recorded, 100);
        let next = t0 + REFUSAL_PERIOD;
        assert_eq!(budget.take(next), (true, 150));
        assert_eq!(budget.take(next), (true, 0));
    }
}
