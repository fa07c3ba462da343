//! The seams replication plugs into: a listener told about every committed change, and a
//! source of replica link states for `gatehouse-admin status`. A master configured without
//! `replication_listen` runs with no listeners and [`NoReplication`] (an empty list).
//!
//! Pure data and traits. Implemented by the replication module (`master/src/replication`); called
//! by `MasterState` (commits) and the admin handler (status).

use serde::{Deserialize, Serialize};

/// A replica link's state (shared with the replica's side).
pub use gatehouse_common::repl::LinkState;

/// One replica link as the master sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaLinkStatus {
    /// The replica's registered host name.
    pub host: String,
    pub state: LinkState,
    /// The last sequence the replica acknowledged as applied and persisted.
    pub acked_seq: u64,
    /// Changes the replica is behind: master sequence − `acked_seq`.
    pub lag: u64,
    /// Milliseconds since anything (data or heartbeat) arrived from it; `None` = never.
    pub last_heard_ms: Option<u64>,
}

/// Supplies link states for status reports. Implemented by replication.
pub trait ReplicaLinks: Send + Sync {
    /// The current state of every known replica link.
    fn links(&self) -> Vec<ReplicaLinkStatus>;
}

/// The hook before replication exists: no links.
#[derive(Debug, Default)]
pub struct NoReplication;

impl ReplicaLinks for NoReplication {
    fn links(&self) -> Vec<ReplicaLinkStatus> {
        Vec::new()
    }
}

/// Told about every committed change, in sequence order, right after it is durable and
/// published. Called with the store locked: it must not block or call back into the master
/// state (wake a thread, store a number). Replication uses it to wake its sender threads,
/// which then read `MasterState::changes_after`.
pub trait CommitListener: Send + Sync {
    fn committed(&self, seq: u64);
}
