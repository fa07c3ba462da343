//! Request builders shared by the integration tests.

use gatehouse_common::types::Method;
use gatehouse_common::wire::{AuthenticateRequest, AuthorizeRequest, Request};

/// authorize(method, from host, from user, to user, to host).
pub fn authorize(method: Method, from: &str, user: &str, to_user: &str, to_host: &str) -> Request {
    Request::Authorize(AuthorizeRequest {
        method,
        from_host: from.into(),
        from_user: user.into(),
        to_user: to_user.into(),
        to_host: to_host.into(),
    })
}

/// `user` logging in to itself on `host` over SSH from a client address. A server answers
/// only the agent of `host` itself (or one allowed to ask for others): send it on a connection
/// made as `host`.
pub fn ssh_as(user: &str, host: &str) -> Request {
    authorize(Method::Ssh, "10.1.2.3", user, user, host)
}

/// alice over SSH to `host`: allowed by every test database for web1 and the agent hosts.
pub fn ssh_on(host: &str) -> Request {
    ssh_as("alice", host)
}

/// authenticate(user, password, host).
pub fn authenticate(user: &str, password: &str, host: &str) -> Request {
    Request::Authenticate(AuthenticateRequest {
        user: user.into(),
        password: password.into(),
        host: host.into(),
    })
}
