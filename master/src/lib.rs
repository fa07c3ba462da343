//! Gatehouse master: the authoritative security database and the admin interface.
//!
//! - [`store`]: the durable SQLite store with its change log.
//! - [`state`]: the running master's shared state: store, published snapshots, hooks.
//! - [`admin`]: the admin socket protocol, server, client and CLI.
//! - [`audit`]: every server's audit records stored once; admin actions recorded.
//! - [`config`]: the master's config file.
//! - [`identity`]: the master's Ed25519 key file (its identity on replication links).
//! - [`replication`]: links to replicas.
//! - [`lockout`]: the central lockout against password guessing.
//! - [`metrics`]: the replicas' links as metrics.
//! - [`passwords`]: the rules a new password must meet.
//! - [`set_password`]: the one path that sets a password (rules, history, age).
//! - [`self_service`]: a user's own password change (PAM chauthtok through an agent).

pub mod admin;
pub mod audit;
pub mod config;
pub mod hooks;
pub mod identity;
pub mod lockout;
pub mod metrics;
pub mod passwords;
pub mod replication;
pub mod self_service;
pub mod set_password;
pub mod state;
/// The durable store lives with the replica crate, which both the master and replicas use.
pub use gatehouse_replica::store;
