//! Pure mappings between the engine and the local protocol: a request checked before it is
//! submitted, an engine outcome as a local answer, an engine status as a status report.
//! Called by `daemon::serve`.

use crate::balance::Balancing;
use crate::engine::{AgentError, EngineStatus, Outcome};
use crate::local::{
    ConnectionReport, LocalErrorKind, LocalResponse, ProbeSummary, ServerReport, StatusReport,
};
use gatehouse_common::wire::{Request, Response, Session};
use std::net::SocketAddr;
use std::time::Duration;

/// Refuses a request the wire encoder would refuse (an over-long name or password), so it
/// never reaches the engine, where it could not be sent to any server. `Err` says why.
pub fn check_request(request: &Request) -> Result<(), String> {
    let probe = Session::Request {
        id: 0,
        body: request.clone(),
    };
    probe.encode(&mut Vec::new()).map_err(|e| e.to_string())
}

/// The local answer for an engine outcome; `servers` maps server indexes to addresses.
pub fn outcome_response(outcome: &Outcome, servers: &[SocketAddr]) -> LocalResponse {
    let server = outcome
        .server
        .and_then(|i| servers.get(i))
        .map_or_else(|| "unknown".to_string(), SocketAddr::to_string);
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
        Ok(Response::AuthFail { reason }) => LocalResponse::AuthFail {
            reason: *reason,
            server,
        },
        Ok(Response::Error(e)) => LocalResponse::Error {
            kind: LocalErrorKind::ServerError,
            message: format!("{server} answered {:?}: {}", e.code, e.message),
        },
        Ok(other) => LocalResponse::Error {
            kind: LocalErrorKind::ServerError,
            message: format!("{server} answered {other:?}, which this caller did not ask for"),
        },
        Err(error) => LocalResponse::Error {
            kind: match error {
                AgentError::NoServerReachable => LocalErrorKind::NoServerReachable,
                AgentError::DeadlineExceeded => LocalErrorKind::DeadlineExceeded,
                AgentError::Refused(_) => LocalErrorKind::Refused,
                AgentError::QueueFull => LocalErrorKind::QueueFull,
            },
            message: error.to_string(),
        },
    }
}

/// The status report for `status`.
pub fn status_report(
    host: &str,
    balancing: Balancing,
    status: &EngineStatus,
    servers: &[SocketAddr],
    local_clients: usize,
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
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
