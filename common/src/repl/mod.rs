//! Replication between the master and its replicas: the link messages and snapshot chunking
//! ([`msg`]) and link liveness ([`liveness`]). Pure; the master's and the replica's link
//! threads are the shells.

pub mod link_state;
pub mod liveness;
pub mod msg;

pub use link_state::LinkState;
pub use liveness::{LinkTimings, Liveness, Verdict};
pub use msg::{ReplError, ReplMessage, SnapshotAssembler};
