use super::*;
use crate::engine::ServerStatus;
use gatehouse_common::types::{DenyReason, ErrorCode, Method};
use gatehouse_common::wire::{AuthenticateRequest, AuthorizeRequest, LoadReport, WireError};

fn servers() -> Vec<SocketAddr> {
    vec![
        "127.0.0.1:7701".parse().unwrap(),
        "127.0.0.1:7702".parse().unwrap(),
    ]
}

fn outcome(result: Result<Response, AgentError>, server: Option<usize>) -> Outcome {
    Outcome {
        request: None,
        result,
        server,
        redirects: 0,
        latency: Duration::from_millis(3),
    }
}

#[test]
fn decisions_name_the_server_that_answered() {
    let allow = outcome(
        Ok(Response::Allow {
            route: "SSH:*->alice@web*".into(),
        }),
        Some(1),
    );
    assert_eq!(
        outcome_response(&allow, &servers()),
        LocalResponse::Allow {
            route: "SSH:*->alice@web*".into(),
            server: "127.0.0.1:7702".into()
        }
    );
    let deny = outcome(
        Ok(Response::Deny {
            reason: DenyReason::NoMatchingRoute,
        }),
        Some(0),
    );
    assert_eq!(
        outcome_response(&deny, &servers()),
        LocalResponse::Deny {
            reason: DenyReason::NoMatchingRoute,
            server: "127.0.0.1:7701".into()
        }
    );
}

#[test]
fn agent_errors_become_typed_local_errors() {
    let cases = [
        (
            AgentError::NoServerReachable,
            LocalErrorKind::NoServerReachable,
            "no server reachable",
        ),
        (
            AgentError::NoServerAcceptsConnections,
            LocalErrorKind::NoServerAcceptsConnections,
            "no server accepts connections",
        ),
        (
            AgentError::DeadlineExceeded,
            LocalErrorKind::DeadlineExceeded,
            "deadline exceeded before any server answered",
        ),
        (
            AgentError::QueueFull,
            LocalErrorKind::QueueFull,
            "too many requests waiting",
        ),
        (
            AgentError::Refused(WireError::new(ErrorCode::UnknownHost, "who?")),
            LocalErrorKind::Refused,
            "refused by the servers: UnknownHost: who?",
        ),
    ];
    for (error, kind, message) in cases {
        assert_eq!(
            outcome_response(&outcome(Err(error), None), &servers()),
            LocalResponse::Error {
                kind,
                message: message.into()
            }
        );
    }
}

#[test]
fn an_empty_host_is_the_agents_own_and_a_named_one_is_passed_on() {
    let authorize = |from_host: &str, to_host: &str| LocalRequest::Authorize {
        method: Method::Su,
        from_host: from_host.into(),
        from_user: "bob".into(),
        to_user: "alice".into(),
        to_host: to_host.into(),
    };
    let wire = |from_host: &str, to_host: &str| {
        Some(Request::Authorize(AuthorizeRequest {
            method: Method::Su,
            from_host: from_host.into(),
            from_user: "bob".into(),
            to_user: "alice".into(),
            to_host: to_host.into(),
        }))
    };
    // What the modules send: this host, both ways.
    assert_eq!(to_wire(&authorize("", ""), "web1"), wire("web1", "web1"));
    // The CLI may name a host; the servers refuse it unless this host may ask for others.
    assert_eq!(
        to_wire(&authorize("10.0.0.1", "db1"), "web1"),
        wire("10.0.0.1", "db1")
    );
    let authenticate = LocalRequest::Authenticate {
        user: "alice".into(),
        password: "pw".to_string().into(),
        host: String::new(),
    };
    assert_eq!(
        to_wire(&authenticate, "web1"),
        Some(Request::Authenticate(AuthenticateRequest {
            user: "alice".into(),
            password: "pw".into(),
            host: "web1".into(),
        }))
    );
    let lookup = gatehouse_common::identity::Lookup::UserByName("alice".into());
    assert_eq!(
        to_wire(&LocalRequest::Lookup(lookup.clone()), "web1"),
        Some(Request::Lookup(lookup))
    );
    assert_eq!(to_wire(&LocalRequest::Status, "web1"), None);
}

#[test]
fn an_over_long_user_is_refused_before_the_engine() {
    let request = Request::Authorize(AuthorizeRequest {
        method: Method::Ssh,
        from_host: "h".into(),
        from_user: "u".repeat(256),
        to_user: "u".into(),
        to_host: "web1".into(),
    });
    assert_eq!(
        check_request(&request),
        Err("from_user is 256 bytes, over the limit of 255 bytes".into())
    );
    let ok = Request::Authenticate(AuthenticateRequest {
        user: "alice".into(),
        password: "p".repeat(1024),
        host: "web1".into(),
    });
    assert_eq!(check_request(&ok), Ok(()));
}

#[test]
fn status_lists_every_server_with_its_last_estimate() {
    let load = LoadReport {
        recommended_wait_us: 150,
        seed_wait_us: 40,
        queue_len: 2,
        in_service: 1,
        workers: 4,
        mean_queue_us: 20,
        mean_service_us: 100,
        connections: 7,
        max_connections: 100,
        db_sequence: 0,
        db_age_ms: 0,
    };
    let status = EngineStatus {
        servers: vec![
            ServerStatus {
                server: 0,
                last_report: Some((load, Duration::from_millis(1500))),
                suspect: false,
                avoided: false,
            },
            ServerStatus {
                server: 1,
                last_report: None,
                suspect: true,
                avoided: true,
            },
        ],
        connection: Some((0, Duration::from_secs(2), true)),
        queued: 1,
        in_flight: 1,
        retry_in: Some(Duration::from_millis(900)),
        retrying: false,
    };
    let report = status_report(
        "web1",
        Balancing::SeedEstimate,
        &status,
        &servers(),
        3,
        OfflineReport::default(),
    );
    assert_eq!(
        report,
        StatusReport {
            host: "web1".into(),
            balancing: "seed_estimate".into(),
            servers: vec![
                ServerReport {
                    address: "127.0.0.1:7701".into(),
                    last_probe: Some(ProbeSummary {
                        estimate_us: 150,
                        seed_estimate_us: 40,
                        queue_len: 2,
                        connections: 7,
                        age_ms: 1500
                    }),
                    suspect: false,
                    avoided: false
                },
                ServerReport {
                    address: "127.0.0.1:7702".into(),
                    last_probe: None,
                    suspect: true,
                    avoided: true
                },
            ],
            connection: Some(ConnectionReport {
                server: "127.0.0.1:7701".into(),
                age_ms: 2000,
                established: true
            }),
            queued: 1,
            in_flight: 1,
            retry_in_ms: Some(900),
            local_clients: 3,
            offline: OfflineReport::default(),
        }
    );
}

#[test]
fn a_password_change_gets_its_outcome_or_unavailable_never_an_error() {
    use crate::local::samples::change_password;
    let wire = to_wire(&change_password(), "web1").unwrap();
    let Request::ChangePassword(sent) = &wire else {
        panic!("{wire:?}")
    };
    // The user changes it on this host.
    assert_eq!(sent.host, "web1");
    let with = |result| Outcome {
        request: Some(wire.clone()),
        ..outcome(result, Some(0))
    };
    let refused = ChangeOutcome::Refused {
        rule: "rule min_length".into(),
    };
    assert_eq!(
        outcome_response(
            &with(Ok(Response::PasswordChange(refused.clone()))),
            &servers()
        ),
        LocalResponse::PasswordChange(refused)
    );
    for result in [
        Err(AgentError::LostAfterSending),
        Err(AgentError::NoServerReachable),
        Ok(Response::Error(WireError::busy(5))),
        Ok(Response::AuthOk),
    ] {
        let answer = outcome_response(&with(result.clone()), &servers());
        assert!(
            matches!(
                answer,
                LocalResponse::PasswordChange(ChangeOutcome::Unavailable { .. })
            ),
            "{result:?}: {answer:?}"
        );
    }
}
