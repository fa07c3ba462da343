//! The state of a replication link, as the UDM seed's communication states. One type for both
//! ends: the master's `gatehouse-admin status`, the replica's status file, and the demo that
//! reads it. Pure data.

use serde::{Deserialize, Serialize};

/// A replication link's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkState {
    /// Connecting or authenticating; no change exchanged yet.
    Started,
    /// Authenticated and subscribed; changes and heartbeats flowing.
    Established,
    /// The link is down (closed, timed out, refused).
    Disconnected,
    /// Down and waiting for the next attempt (backoff).
    Reconnecting,
}

impl LinkState {
    /// The lower-case name shown to admins.
    pub fn name(self) -> &'static str {
        match self {
            LinkState::Started => "started",
            LinkState::Established => "established",
            LinkState::Disconnected => "disconnected",
            LinkState::Reconnecting => "reconnecting",
        }
    }
}
