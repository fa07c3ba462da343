//! Administration of the master over a local Unix socket.
//!
//! - [`proto`]: the request/response types and framing, shared by both binaries.
//! - [`server`]: the socket and its threads (master side).
//! - [`handler`]: what each request does (master side); [`unix`]: the Unix identity requests.
//! - [`client`]: connecting and asking (CLI side).
//! - [`cli`]: command-line parsing for `gatehouse-admin` (clap; pure); [`output`]: its text
//!   and JSON; [`tty`]: reading a new password (twice, without echo, on a terminal).
//! - [`lists`]: the list and show answers (master side); [`diff`]: what an import would change.
//! - [`batch`]: admin batches; [`status`]: the status answer and the audit trail's queries.

pub mod batch;
pub mod cli;
pub mod client;
pub mod diff;
pub mod handler;
pub mod lists;
pub mod output;
pub mod proto;
pub mod server;
pub mod status;
pub mod tty;
pub mod unix;
