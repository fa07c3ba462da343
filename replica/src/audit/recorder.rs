//! What a server records: the request handler's decisions (every authorize and authenticate
//! answered, every request refused for naming another host) and the reactor's refused
//! handshakes. A decision's record is appended before its answer is made, and if the journal
//! cannot take it the agent is told "busy, go elsewhere" instead ([`Recorder::busy`]): no
//! decision goes unrecorded. A refused handshake comes from a peer that has proven nothing,
//! so those are recorded under a budget (100 a second, then one `suppressed` record with the
//! count): a flood of forged hellos cannot fill the journal.
//!
//! Identity lookups (NSS: `ls -l`, `id`) are not recorded: they decide no access, they are
//! the most frequent request by far, and the metrics count them.
//!
//! Not pure: the journal, and the clock for the refusal budget. Called by the worker threads
//! and the reactor thread.

use super::journal::{Journal, Refusal};
use crate::auth_events::LineBudget;
use gatehouse_common::audit::{AuditEvent, AuditRecord};
use gatehouse_common::types::ErrorCode;
use gatehouse_common::wire::{Response, WireError};
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Refused handshakes are recorded one by one up to the log's budget
/// (`auth_events::LOG_LINES_PER_PERIOD`, 100 a second): the first ones, with the claimed host
/// and the address, are what an admin needs; the rest are counted in one record.
/// Milliseconds since the epoch (0 for a clock before it).
pub fn unix_ms(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// See the module docs.
pub struct Recorder {
    journal: Arc<Journal>,
    /// Refused handshakes recorded and suppressed in the current second.
    budget: Mutex<LineBudget>,
}

impl Recorder {
    pub fn new(journal: Arc<Journal>) -> Self {
        Recorder {
            journal,
            budget: Mutex::new(LineBudget::default()),
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
