//! Replication between the master and its replicas: the link messages and their binary
//! encoding ([`msg`], [`codec`]), batching and snapshot chunking ([`batch`]), the proof of the
//! master's identity ([`link_auth`]), link liveness ([`liveness`]) and the replica → master
//! report channel ([`report`], [`report_stream`]). Pure; the master's and the replica's link
//! threads are the shells.

pub mod batch;
pub mod codec;
pub mod link_auth;
pub mod link_state;
pub mod liveness;
pub mod msg;
pub mod report;
pub mod report_stream;

pub use batch::{pack_changes, snapshot_chunks, SnapshotAssembler, SNAPSHOT_CHUNK_BYTES};
pub use link_auth::{LinkAuth, LinkAuthError, LinkHello, MasterPublicKey, MasterSecretKey};
pub use link_state::LinkState;
pub use liveness::{LinkTimings, Liveness, Verdict};
pub use msg::{ReplError, ReplMessage};
pub use report::{PasswordFailure, Report};
pub use report_stream::{ReportLedger, ReportOutbox};
