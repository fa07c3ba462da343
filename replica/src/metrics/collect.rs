//! The metric families, read on each scrape from the shared counters and encoded by
//! `prometheus-client` (OpenMetrics text): the bridge's ([`BridgeCollector`]), the database
//! copy's ([`DbCollector`]) and a replica's replication link ([`FollowerCollector`]). The
//! master adds its replicas' links the same way (`gatehouse_master::metrics`). Names carry the
//! `gatehouse_` prefix; counters get `_total` from the encoder.

use super::counter::HistogramSnapshot;
use crate::bridge::stats::{Outcome, RequestKind};
use crate::bridge::{BridgeStats, DbStatus};
use crate::follower::{FollowerStatus, LinkState};
use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::Arc;

/// The prefix of every metric name.
pub const PREFIX: &str = "gatehouse";

/// A registry holding `collectors`, ready to encode.
pub fn registry(collectors: Vec<Box<dyn Collector>>) -> Registry {
    let mut registry = Registry::with_prefix(PREFIX);
    for collector in collectors {
        registry.register_collector(collector);
    }
    registry
}

/// The text a scrape gets.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail; an encoder error would leave a partial text.
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

/// One counter without labels.
pub fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// One gauge without labels.
pub fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// A family of counters or gauges, one per label set.
pub fn family<const N: usize>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    rows: &[([(&str, &str); N], f64)],
) -> fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in rows {
        let metric = family.encode_family(labels)?;
        match metric_type {
            MetricType::Counter => ConstCounter::new(*value as u64).encode(metric)?,
            _ => ConstGauge::new(*value).encode(metric)?,
        }
    }
    Ok(())
}

/// A histogram read from a snapshot.
struct ConstHistogram<'a>(&'a HistogramSnapshot);

impl EncodeMetric for ConstHistogram<'_> {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        encoder.encode_histogram::<NoLabelSet>(
            self.0.sum_seconds,
            self.0.count,
            &self.0.buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The bridge's counters.
#[derive(Debug)]
pub struct BridgeCollector(pub Arc<BridgeStats>);

impl Collector for BridgeCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let s = &self.0;
        gauge(
            &mut e,
            "connections",
            "Agent connections open now.",
            s.connections.get() as f64,
        )?;
        gauge(
            &mut e,
            "max_connections",
            "The connection cap (bridge.max_connections).",
            s.max_connections.get() as f64,
        )?;
        counter(
            &mut e,
            "connections_accepted",
            "Agent connections accepted.",
            s.accepted.get(),
        )?;
        let refused = [
            ([("reason", "cap")], s.rejected_at_cap.get() as f64),
            ([("reason", "limits")], s.refused_by_limits.get() as f64),
        ];
        family(
            &mut e,
            "connections_refused",
            "Agent connections refused: at the cap, or by the handshake, per-source or per-host caps.",
            MetricType::Counter,
            &refused,
        )?;
        counter(
            &mut e,
            "connections_closed",
            "Agent connections closed.",
            s.closed.get(),
        )?;
        let handshakes = [
            ([("outcome", "ok")], s.handshakes_ok.get() as f64),
            ([("outcome", "failed")], s.handshakes_failed.get() as f64),
        ];
        family(
            &mut e,
            "handshakes",
            "Handshakes finished, and connections closed by an error before theirs finished.",
            MetricType::Counter,
            &handshakes,
        )?;
        let requests: Vec<_> = RequestKind::ALL
            .iter()
            .map(|&k| ([("kind", k.label())], s.requests_of(k) as f64))
            .collect();
        family(
            &mut e,
            "requests",
            "Requests received, by kind.",
            MetricType::Counter,
            &requests,
        )?;
        let answers: Vec<_> = RequestKind::ALL
            .iter()
            .flat_map(|&k| {
                Outcome::ALL.iter().map(move |&o| {
                    (
                        [("kind", k.label()), ("outcome", o.label())],
                        s.answers_of(k, o) as f64,
                    )
                })
            })
            .collect();
        family(
            &mut e,
            "answers",
            "Answers sent, by request kind and outcome (busy: redirected elsewhere).",
            MetricType::Counter,
            &answers,
        )?;
        counter(
            &mut e,
            "redirects",
            "Requests answered 'busy, go elsewhere' (predicted wait, full queue, password-check limits).",
            s.redirected.get(),
        )?;
        counter(
            &mut e,
            "password_checks_limited",
            "Of the redirects, password checks over their host's limits.",
            s.password_checks_limited.get(),
        )?;
        let probes = [
            ([("outcome", "answered")], s.probes_answered.get() as f64),
            ([("outcome", "rejected")], s.probes_rejected.get() as f64),
            ([("outcome", "silenced")], s.probes_silenced.get() as f64),
            ([("outcome", "stale")], s.probes_stale.get() as f64),
            ([("outcome", "replayed")], s.probes_replayed.get() as f64),
        ];
        family(
            &mut e,
            "probes",
            "UDP probes, by what became of them (answered; rejected: unverifiable; silenced: queue too long; stale or replayed: no reply).",
            MetricType::Counter,
            &probes,
        )?;
        gauge(
            &mut e,
            "queue_length",
            "Requests waiting for a worker.",
            s.queue_len.get() as f64,
        )?;
        gauge(
            &mut e,
            "in_service",
            "Requests a worker is serving.",
            s.in_service.get() as f64,
        )?;
        gauge(&mut e, "workers", "Worker threads.", s.workers.get() as f64)?;
        gauge(
            &mut e,
            "estimated_wait_seconds",
            "The wait a new request is predicted (what probe replies recommend).",
            s.estimated_wait_us.get() as f64 / 1e6,
        )?;
        let mut latency = e.encode_descriptor(
            "request_duration_seconds",
            "From reading a request to its answer, by kind (answers given on the reactor thread count their whole loop turn).",
            None,
            MetricType::Histogram,
        )?;
        for kind in RequestKind::ALL {
            if let Some(h) = s.latency_of(kind) {
                let snapshot = h.snapshot();
                let labels = [("kind", kind.label())];
                ConstHistogram(&snapshot).encode(latency.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The database copy this server answers from.
#[derive(Debug)]
pub struct DbCollector(pub Arc<DbStatus>);

impl Collector for DbCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        gauge(
            &mut e,
            "db_sequence",
            "The change sequence of the database copy held.",
            self.0.sequence() as f64,
        )?;
        let age = self.0.age_ms();
        if age != u64::MAX {
            gauge(
                &mut e,
                "db_age_seconds",
                "How long ago the copy was last confirmed current (0 on the master).",
                age as f64 / 1e3,
            )?;
        }
        Ok(())
    }
}

/// A replica's link to its master.
#[derive(Debug)]
pub struct FollowerCollector(pub Arc<Mutex<FollowerStatus>>);

impl Collector for FollowerCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let status = self.0.lock().clone();
        gauge(
            &mut e,
            "replication_applied_sequence",
            "The last change applied and persisted from the master.",
            status.applied as f64,
        )?;
        gauge(
            &mut e,
            "replication_lag_changes",
            "Changes the master has that this replica has not applied.",
            status.master_head.saturating_sub(status.applied) as f64,
        )?;
        let streaming = matches!(status.phase, LinkState::Established);
        gauge(
            &mut e,
            "replication_connected",
            "1 while the link to the master streams changes.",
            if streaming { 1.0 } else { 0.0 },
        )?;
        if let Some(heard) = status.last_heard {
            gauge(
                &mut e,
                "replication_last_heard_seconds",
                "Seconds since the master was last heard (data or heartbeat).",
                heard.elapsed().as_secs_f64(),
            )?;
        }
        Ok(())
    }
}
