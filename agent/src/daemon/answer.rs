//! Pure mappings between the engine and the local protocol: a request checked before it is
//! submitted, an engine outcome as a local answer, an engine status as a status report.
//! Called by `daemon::serve`.

use crate::balance::Balancing;
use crate::engine::{AgentError, EngineStatus, Outcome};
use crate::local::{
    ConnectionReport, LocalErrorKind, LocalRequest, LocalResponse, OfflineReport, ProbeSummary,
    ServerReport, StatusReport,
};
use gatehouse_common::wire::{
    AuthenticateRequest, AuthorizeRequest, ChangeOutcome, ChangePasswordRequest, Request, Response,
    Session,
};
use std::net::SocketAddr;
use std::time::Duration;
use zeroize::Zeroize;

/// The request for the servers; `None` for a status, which the daemon answers itself. An empty
/// `to_host` (authorize) or `host` (authenticate) means this host: `own_host`.
pub fn to_wire(request: &LocalRequest, own_host: &str) -> Option<Request> {
    let or_own = |host: &str| {
        if host.is_empty() {
            own_host.to_string()
        } else {
            host.to_string()
        }
    };
    Some(match request {
        LocalRequest::Authorize {
            method,
            from_host,
            from_user,
            to_user,
            to_host,
        } => Request::Authorize(AuthorizeRequest {
            method: *method,
            // A request from this host (su, sudo, a console login) names it.
            from_host: or_own(from_host),
            from_user: from_user.clone(),
            to_user: to_user.clone(),
            to_host: or_own(to_host),
        }),
        LocalRequest::Authenticate {
            user,
            password,
            host,
        } => Request::Authenticate(AuthenticateRequest {
            user: user.clone(),
            // The wire copy is wiped by `Request::wipe_password` once the daemon is done.
            password: password.as_str().to_owned(),
            host: or_own(host),
        }),
        LocalRequest::ChangePassword {
            user,
            old_password,
            new_password,
        } => Request::ChangePassword(ChangePasswordRequest {
            user: user.clone(),
            // Wiped by `Request::wipe_password` once the daemon is done, as for authenticate.
            old_password: old_password.as_str().to_owned(),
            new_password: new_password.as_str().to_owned(),
            // A user changes the password on the host they are on.
            host: own_host.to_string(),
        }),
        LocalRequest::Lookup(lookup) => Request::Lookup(lookup.clone()),
        LocalRequest::Status => return None,
    })
}

/// Refuses a request the wire encoder would refuse (an over-long name or password), so it
/// never reaches the engine, where it could not be sent to any server. `Err` says why.
pub fn check_request(request: &Request) -> Result<(), String> {
    let mut probe = Session::Request {
        id: 0,
        body: request.clone(),
    };
    let mut encoded = Vec::new();
    let result = probe.encode(&mut encoded).map_err(|e| e.to_string());
    // Both copies may hold the password.
    if let Session::Request { body, .. } = &mut probe {
        body.wipe_password();
    }
    encoded.zeroize();
    result
}

/// The local answer for an engine outcome; `servers` maps server indexes to addresses.
pub fn outcome_response(outcome: &Outcome, servers: &[SocketAddr]) -> LocalResponse {
    let server = outcome
        .server
        .and_then(|i| servers.get(i))
        .map_or_else(|| "unknown".to_string(), SocketAddr::to_string);
    if matches!(outcome.request, Some(Request::ChangePassword(_))) {
        return change_response(outcome, &server);
    }
    match &outcome.result {
        Ok(Response::Allow { route }) => LocalResponse::Allow {
            route: route.to_string(),
            server,
        },
        Ok(Response::Deny { reason }) => LocalResponse::Deny {
            reason: *reason,
            server,
        },
        Ok(Response::AuthOk) => LocalResponse::AuthOk { server },
        Ok(Response::AuthOkAging(aging)) => LocalResponse::AuthOkAging {
            aging: *aging,
            server,
        },
        Ok(Response::AuthFail) => LocalResponse::AuthFail { server },
        Ok(Response::Error(e)) => LocalResponse::Error {
            kind: LocalErrorKind::ServerError,
            message: format!("{server} answered {:?}: {}", e.code, e.message),
        },
        Ok(Response::User(entry)) => LocalResponse::User((**entry).clone()),
        Ok(Response::Group(entry)) => LocalResponse::Group((**entry).clone()),
        Ok(Response::Groups(gids)) => LocalResponse::Groups(gids.to_vec()),
        Ok(Response::NotFound) => LocalResponse::NotFound,
        Ok(Response::PasswordChange(outcome)) => LocalResponse::PasswordChange(outcome.clone()),
        Err(error) => LocalResponse::Error {
            kind: match error {
                AgentError::NoServerReachable => LocalErrorKind::NoServerReachable,
                AgentError::NoServerAcceptsConnections => {
                    LocalErrorKind::NoServerAcceptsConnections
                }
                // Only a password change is lost rather than retried, and its answer is
                // `change_response`'s; were another, it is a deadline that ran out unanswered.
                AgentError::DeadlineExceeded | AgentError::LostAfterSending => {
                    LocalErrorKind::DeadlineExceeded
                }
                AgentError::Refused(_) | AgentError::NodeKeyRefused => LocalErrorKind::Refused,
                AgentError::QueueFull => LocalErrorKind::QueueFull,
            },
            message: error.to_string(),
        },
    }
}

/// The answer to a password change: its outcome, and every way of getting none (no server,
/// a connection lost after sending, a server error) as `Unavailable` with the reason, so the
/// PAM module shows the user one sentence and passwd can be run again.
fn change_response(outcome: &Outcome, server: &str) -> LocalResponse {
    let why = match &outcome.result {
        Ok(Response::PasswordChange(outcome)) => {
            return LocalResponse::PasswordChange(outcome.clone())
        }
        Ok(Response::Error(e)) => format!("{server} answered {:?}: {}", e.code, e.message),
        Ok(other) => format!("{server} answered {other:?} to a password change"),
        // Sent, and no answer came back: its fate is unknown.
        Err(AgentError::LostAfterSending | AgentError::DeadlineExceeded) => {
            "no answer in time; the password may have been changed: try it, or run passwd again"
                .to_string()
        }
        Err(error) => format!("{error}; the password was not changed, try again later"),
    };
    LocalResponse::PasswordChange(ChangeOutcome::Unavailable { why })
}

/// The status report for `status`.
pub fn status_report(
    host: &str,
    balancing: Balancing,
    status: &EngineStatus,
    servers: &[SocketAddr],
    local_clients: usize,
    offline: OfflineReport,
) -> StatusReport {
    let address = |i: usize| {
        servers
            .get(i)
            .map_or_else(|| format!("server #{i}"), SocketAddr::to_string)
    };
    StatusReport {
        host: host.to_string(),
        balancing: ron::to_string(&balancing).unwrap_or_else(|_| format!("{balancing:?}")),
        servers: status
            .servers
            .iter()
            .map(|s| ServerReport {
                address: address(s.server),
                last_probe: s.last_report.map(|(load, age)| ProbeSummary {
                    estimate_us: load.recommended_wait_us,
                    seed_estimate_us: load.seed_wait_us,
                    queue_len: load.queue_len,
                    connections: load.connections,
                    age_ms: millis(age),
                }),
                suspect: s.suspect,
                avoided: s.avoided,
            })
            .collect(),
        connection: status
            .connection
            .map(|(server, age, established)| ConnectionReport {
                server: address(server),
                age_ms: millis(age),
                established,
            }),
        queued: status.queued,
        in_flight: status.in_flight,
        retry_in_ms: status.retry_in.map(millis),
        local_clients,
        offline,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
