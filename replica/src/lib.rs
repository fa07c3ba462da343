//! The Gatehouse bridge and replica daemon. The bridge (`bridge`) is shared with the master;
//! the replica-specific parts are its config (`config`) and its request handler (`handler`),
//! which reports what the agent is not told in detail to `auth_events`.

pub mod auth_events;
pub mod bridge;
pub mod config;
pub mod follower;
pub mod handler;
pub mod net;
pub mod store;
