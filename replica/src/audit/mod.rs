//! The audit trail on a server (replica or master): every decision it makes becomes a record
//! (`gatehouse_common::audit`) in a durable local journal before its answer leaves, and the
//! journal's records go to the master, which stores each once.
//!
//! - [`config`]: the `audit` section (directory, when answers may leave, size, when full).
//! - [`segment`]: the journal's files, entry framing and crash recovery.
//! - [`journal`]: appending, the writer thread (group commit), acknowledgement and trimming.
//! - `mapped` (Linux): a segment mapped into memory, which the journal copies records into.
//! - [`relay`]: reading synced records back as `Report` messages for the master.
//! - [`recorder`]: the request handler's side: which decisions become which records.
//!
//! docs/SECURITY.md, "The audit trail", says what is guaranteed and how it is tested.

pub mod config;
pub mod journal;
#[cfg(target_os = "linux")]
mod mapped;
pub mod recorder;
pub mod relay;
pub mod segment;

pub use config::{AnswerAfter, AuditConfig, AuditFile, WhenFull};
pub use journal::{Journal, JournalStatus, Refusal};
pub use recorder::Recorder;
pub use relay::Relay;
