//! A demo replica's replication status, as its status file reports it (the RON the replica
//! rewrites, atomically, on every change of link state and every applied batch:
//! `replica/src/follower/status.rs`).
//!
//! [`parse_status`] is pure; [`read_status`] reads the file. Called by [`super`] to wait for
//! the replicas and to fill the live table and the summary.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The link's state, as the replica names it (one type for every end of a link).
pub use gatehouse_common::repl::LinkState;

/// The fields of the status file the demo shows; others are ignored, so a replica that
/// reports more still parses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReplicaStatus {
    pub state: LinkState,
    /// The last sequence the replica applied and persisted.
    pub applied: u64,
    /// The master's sequence as the replica last heard it.
    pub master_head: u64,
    /// Full snapshots received (a new replica gets one when the log holds an import).
    #[serde(default)]
    pub snapshots: u64,
}

/// The demo's replication at its end, in the summary (text and `--json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicationSummary {
    /// The master's sequence after the last admin change.
    pub master_sequence: u64,
    /// Admin changes made while the agents ran.
    pub admin_changes: u64,
    /// For each of those changes, µs from the master's acknowledgement until every replica's
    /// status file showed it applied (polled every millisecond); `null` when one replica had
    /// not applied it within a second.
    pub propagation_us: Vec<Option<u64>>,
    pub replicas: Vec<ReplicaSummary>,
}

/// One replica as its status file last reported it (after the agents stopped, before it was).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaSummary {
    pub name: String,
    pub addr: String,
    /// `started`, `established`, `disconnected`, `reconnecting`, or `unknown` (no status).
    pub state: String,
    pub applied_sequence: u64,
    /// `master_sequence - applied_sequence`.
    pub lag: u64,
    pub snapshots: u64,
}

impl ReplicaSummary {
    pub fn new(
        name: &str,
        addr: &str,
        status: Option<&ReplicaStatus>,
        master: u64,
    ) -> ReplicaSummary {
        let applied = status.map_or(0, |s| s.applied);
        ReplicaSummary {
            name: name.to_string(),
            addr: addr.to_string(),
            state: status.map_or("unknown", |s| s.state.name()).to_string(),
            applied_sequence: applied,
            lag: master.saturating_sub(applied),
            snapshots: status.map_or(0, |s| s.snapshots),
        }
    }
}

/// Parses the text of a status file; `None` when it is not one.
pub fn parse_status(text: &str) -> Option<ReplicaStatus> {
    ron::from_str(text).ok()
}

/// Reads a status file; `None` while it does not exist yet or cannot be parsed.
pub fn read_status(path: &Path) -> Option<ReplicaStatus> {
    parse_status(&std::fs::read_to_string(path).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_file_as_the_replica_writes_it_parses() {
        let text = "(\n    state: Established,\n    master: Some(\"127.0.0.1:7710\"),\n    \
                    applied: 9,\n    master_head: 11,\n    lag: 2,\n    epoch: 1,\n    \
                    last_heard_ms: Some(12),\n    stale_ms: Some(0),\n    snapshots: 1,\n)";
        assert_eq!(
            parse_status(text),
            Some(ReplicaStatus {
                state: LinkState::Established,
                applied: 9,
                master_head: 11,
                snapshots: 1,
            })
        );
        assert_eq!(parse_status("(state: Bogus, applied: 1)"), None);
        assert_eq!(parse_status(""), None);
    }
}
