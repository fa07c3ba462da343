//! The local side of the agent: the protocol its callers speak on the daemon's socket (the
//! messages and codec live in the shared `gatehouse-local` crate, which the PAM and NSS modules
//! use too; docs/AGENT.md, "The local protocol"), the blocking caller and the command line.
//!
//! - [`client`]: ask the daemon once (the CLI's side);
//! - [`cli`]: the `gatehouse-agent` command line;
//! - the daemon's side is `crate::daemon`.

pub mod cli;
pub mod client;

pub use gatehouse_local::{
    ConnectionReport, LocalErrorKind, LocalRequest, LocalResponse, OfflineReport, ProbeSummary,
    ServerReport, StatusReport,
};
