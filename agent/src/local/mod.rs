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

/// Requests the local module's tests and the daemon's share.
#[cfg(test)]
pub(crate) mod samples {
    use super::LocalRequest;
    use gatehouse_common::types::Method;

    /// alice over SSH from 10.0.0.1 to web1.
    pub(crate) fn authorize() -> LocalRequest {
        LocalRequest::Authorize {
            method: Method::Ssh,
            from_host: "10.0.0.1".into(),
            from_user: "alice".into(),
            to_user: "alice".into(),
            to_host: "web1".into(),
        }
    }

    /// alice's password "pw" on web1.
    pub(crate) fn authenticate() -> LocalRequest {
        LocalRequest::Authenticate {
            user: "alice".into(),
            password: "pw".to_string().into(),
            host: "web1".into(),
        }
    }

    /// alice changes her password from "pw" to "a longer one".
    pub(crate) fn change_password() -> LocalRequest {
        LocalRequest::ChangePassword {
            user: "alice".into(),
            old_password: "pw".to_string().into(),
            new_password: "a longer one".to_string().into(),
        }
    }
}
