//! Administration of the master over a local Unix socket.
//!
//! - [`proto`]: the request/response types and framing, shared by both binaries.
//! - [`server`]: the socket and its threads (master side).
//! - [`handler`]: what each request does (master side); [`unix`]: the Unix identity requests.
//! - [`client`]: connecting and asking (CLI side).
//! - [`cli`]: command-line parsing and output for `gatehouse-admin` (pure); [`tty`]: reading
//!   a new password (twice, without echo, on a terminal).

pub mod cli;
pub mod client;
pub mod handler;
pub mod output;
pub mod proto;
pub mod server;
pub mod tty;
pub mod unix;
