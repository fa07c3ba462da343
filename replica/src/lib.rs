//! The Gatehouse bridge and replica daemon. The bridge (`bridge`) is shared with the master;
//! the replica-specific parts are its config (`config`) and its request handler (`handler`),
//! which reports what the agent is not told in detail to `auth_events`, and on a following
//! replica its failed password checks to the master (`reports`). `serving` and `metrics` are
//! what a server daemon needs to live under a service manager.

pub mod audit;
pub mod auth_events;
pub mod bridge;
pub mod config;
pub mod follower;
pub mod handler;
pub mod metrics;
pub mod net;
pub mod reports;
pub mod serving;
pub mod store;
