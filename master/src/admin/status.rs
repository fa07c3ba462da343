//! The `status` answer (from the published snapshot and counters, never the store lock) and
//! the audit trail's queries and status. Not pure: reads the clock and the audit store.

use super::handler::{error, now_unix};
use super::proto::{AdminErrorKind, AdminResponse, AuditEntry, AuditStatus, StatusReport};
use crate::audit::admin::to_hex;
use crate::audit::{Audit, AuditQuery};
use crate::state::MasterState;
use gatehouse_common::policy::{PolicySnapshot, PolicyTime};

/// `status`: from the published snapshot and counters, never the store lock, so it answers
/// at once while an import or a batch is being written.
pub(super) fn status(state: &MasterState, db: &PolicySnapshot) -> AdminResponse {
    let now = PolicyTime::from_unix(now_unix());
    AdminResponse::Status(StatusReport {
        sequence: state.db_status().sequence(),
        oldest_log_seq: state.oldest_log_seq(),
        hosts: db.host_count(),
        host_groups: db.host_group_count(),
        users: db.user_count(),
        locked_users: db.locked_user_count(),
        locked_out_users: db.active_lockouts(now).len(),
        classes: db.class_count(),
        routes: db.route_count(),
        replicas_allowed: db.replicas().map(String::from).collect(),
        replica_links: state.replica_links(),
        audit: AuditStatus::default(),
    })
}

/// The records `query` selects, each in its binary encoding.
pub(super) fn audit_records(audit: &Audit, query: &AuditQuery) -> AdminResponse {
    match audit.query(query) {
        Ok(stored) => AdminResponse::AuditRecords(
            stored
                .into_iter()
                .map(|s| {
                    let mut bytes = Vec::new();
                    gatehouse_common::audit::encode_record(&mut bytes, &s.record);
                    AuditEntry {
                        id: s.id,
                        server: s.server,
                        seq: s.seq,
                        record: to_hex(&bytes),
                    }
                })
                .collect(),
        ),
        Err(e) => error(AdminErrorKind::Internal, e.to_string()),
    }
}

/// The audit part of `status` (empty where the store cannot be read: logged).
pub(super) fn audit_status(audit: &Audit) -> AuditStatus {
    let mut status = AuditStatus::default();
    match (audit.count(), audit.streams()) {
        (Ok(records), Ok(streams)) => {
            status.records = records;
            status.streams = streams;
        }
        (Err(e), _) | (_, Err(e)) => log::error!("audit status: {e}"),
    }
    if let Some(journal) = audit.journal() {
        let j = journal.status();
        status.journal_unstored = j.assigned.saturating_sub(j.acked);
        status.journal_bytes = j.disk_bytes;
        status.journal_max_bytes = j.max_bytes;
        status.journal_dropped = j.dropped;
        status.journal_refused = j.refused;
        status.journal_full = j.full;
    }
    status
}
