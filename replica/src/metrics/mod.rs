//! The metrics endpoint: what the bridge, the database copy and replication count, in the
//! Prometheus/OpenMetrics text format, served over HTTP on the opt-in `metrics_listen`
//! address of a master's or replica's config.
//!
//! - [`counter`]: single-writer counters, gauges and the latency histogram (pure);
//! - [`collect`]: the metric families read on each scrape (`prometheus-client` encodes them);
//! - [`http`]: the small HTTP server (one thread, one bounded request at a time);
//! - [`journal`]: the audit journal's size, progress and alarm.
//!
//! Nothing is computed on the request path beyond a counter increment: every number is
//! aggregated when a scrape asks.

pub mod collect;
pub mod counter;
pub mod http;
pub mod journal;
