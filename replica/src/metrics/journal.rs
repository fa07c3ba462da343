//! The audit journal as metrics: records made, synced and acknowledged by the master, the
//! journal's size against its limit, records refused and dropped, and the alarm when it is
//! within a segment of full (the master away too long). Read when scraped.

use super::collect::{counter, gauge};
use crate::audit::Journal;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::fmt;
use std::sync::Arc;

/// See the module docs.
#[derive(Clone)]
pub struct JournalCollector(pub Arc<Journal>);

impl fmt::Debug for JournalCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JournalCollector")
    }
}

impl Collector for JournalCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let s = self.0.status();
        counter(
            &mut e,
            "audit_records",
            "Audit records appended to the journal (the last sequence).",
            s.assigned,
        )?;
        counter(
            &mut e,
            "audit_records_synced",
            "Audit records synced to disk (the last sequence).",
            s.synced,
        )?;
        gauge(
            &mut e,
            "audit_records_unacknowledged",
            "Audit records the master has not stored yet.",
            s.assigned.saturating_sub(s.acked) as f64,
        )?;
        gauge(
            &mut e,
            "audit_journal_bytes",
            "Bytes of audit journal on disk.",
            s.disk_bytes as f64,
        )?;
        gauge(
            &mut e,
            "audit_journal_max_bytes",
            "The audit journal's size limit (audit.max_bytes).",
            s.max_bytes as f64,
        )?;
        gauge(
            &mut e,
            "audit_journal_full",
            "1 when the audit journal is within one segment of its limit: records will be dropped or requests refused (audit.when_full).",
            if s.full { 1.0 } else { 0.0 },
        )?;
        counter(
            &mut e,
            "audit_records_dropped",
            "Audit records deleted before the master had them (when_full: DropOldest).",
            s.dropped,
        )?;
        counter(
            &mut e,
            "audit_records_refused",
            "Requests answered busy because the journal could not take their record.",
            s.refused,
        )
    }
}
