//! The master's side of the audit trail (docs/SECURITY.md, "The audit trail"): every server's
//! records stored once, durably, in their own SQLite file; the master's own decisions through
//! its own journal; admin actions and lockouts recorded after their outcome; queries for
//! `gatehouse-admin audit`; retention; forwarding to syslog.
//!
//! - [`config`]: the `audit` section.
//! - [`store`]: the SQLite store, deduplicated by (server, stream, sequence).
//! - [`ingest`]: replicas' batches in group commits, acknowledgements, the master's own relay.
//! - [`forward`]: RFC 5424 datagrams to a collector.
//! - [`admin`]: the admin actions' records (caller from the socket's peer credentials).

pub mod admin;
pub mod config;
pub mod forward;
pub mod ingest;
pub mod store;

pub use config::{MasterAuditConfig, MasterAuditFile};
pub use ingest::Audit;
pub use store::{AuditQuery, Stored};
