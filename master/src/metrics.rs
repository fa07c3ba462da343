//! The master's own metrics: each registered replica's link (connected, acknowledged
//! sequence, lag in changes, time since last heard), read from the link table on each scrape,
//! the central lockout's counts ([`LockoutCollector`]) and the audit store's ingest
//! ([`AuditCollector`]).
//! The bridge's and the database's families come from `gatehouse_replica::metrics`.

use crate::hooks::LinkState;
use crate::state::MasterState;
use gatehouse_replica::metrics::collect::{counter, family, gauge};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use std::fmt;
use std::sync::Arc;

/// Every replica link the master knows.
pub struct LinksCollector(pub Arc<MasterState>);

impl fmt::Debug for LinksCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinksCollector")
    }
}

impl Collector for LinksCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let links = self.0.replica_links();
        let rows = |value: &dyn Fn(&crate::hooks::ReplicaLinkStatus) -> Option<f64>| {
            links
                .iter()
                .filter_map(|l| Some(([("replica", l.host.as_str())], value(l)?)))
                .collect::<Vec<_>>()
        };
        let connected = rows(&|l| {
            Some(if l.state == LinkState::Established {
                1.0
            } else {
                0.0
            })
        });
        family(
            &mut e,
            "replica_connected",
            "1 while the replica's link is established.",
            MetricType::Gauge,
            &connected,
        )?;
        let acked = rows(&|l| Some(l.acked_seq as f64));
        family(
            &mut e,
            "replica_acked_sequence",
            "The last change the replica acknowledged as applied and persisted.",
            MetricType::Gauge,
            &acked,
        )?;
        let lag = rows(&|l| Some(l.lag as f64));
        family(
            &mut e,
            "replica_lag_changes",
            "Changes the replica is behind the master.",
            MetricType::Gauge,
            &lag,
        )?;
        let heard = rows(&|l| l.last_heard_ms.map(|ms| ms as f64 / 1e3));
        family(
            &mut e,
            "replica_last_heard_seconds",
            "Seconds since anything (data or heartbeat) arrived from the replica.",
            MetricType::Gauge,
            &heard,
        )
    }
}

/// The central lockout: failures reported and counted, lockouts decided, users locked out now.
pub struct LockoutCollector(pub Arc<MasterState>);

impl fmt::Debug for LockoutCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockoutCollector")
    }
}

impl Collector for LockoutCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let stats = self.0.lockout().stats();
        let now = crate::lockout::unix_ms(std::time::SystemTime::now()) / 1000;
        let now = gatehouse_common::policy::PolicyTime::from_unix(now as i64);
        let locked_out = self.0.policy().load().active_lockouts(now).len();
        counter(
            &mut e,
            "password_failures_reported",
            "Failed password checks replicas reported (each once).",
            stats.reported,
        )?;
        counter(
            &mut e,
            "password_failures_counted",
            "Wrong passwords, here or reported, counted toward a lockout.",
            stats.counted,
        )?;
        counter(
            &mut e,
            "lockouts_decided",
            "Users locked out after too many wrong passwords.",
            stats.decided,
        )?;
        gauge(
            &mut e,
            "users_locked_out",
            "Users whose password checks are refused now by a lockout.",
            locked_out as f64,
        )
    }
}

/// The audit store's ingest: records stored, batches, and batches refused for a full queue.
pub struct AuditCollector(pub Arc<crate::audit::Audit>);

impl fmt::Debug for AuditCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditCollector")
    }
}

impl Collector for AuditCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = &self.0.stats;
        counter(
            &mut e,
            "audit_records_stored",
            "Audit records stored by the master (every server's, each once).",
            stats.stored.load(Relaxed),
        )?;
        counter(
            &mut e,
            "audit_batches_stored",
            "Audit batches from servers stored (one group commit holds many).",
            stats.batches.load(Relaxed),
        )?;
        counter(
            &mut e,
            "audit_batches_refused",
            "Audit batches not taken because the ingest queue was full (sent again later).",
            stats.queue_full.load(Relaxed),
        )
    }
}
