use super::*;
use crate::local::samples::{authenticate, authorize};
use crate::local::{ConnectionReport, LocalErrorKind, LocalResponse, ProbeSummary, ServerReport};
use crate::local::{OfflineReport, StatusReport};
use gatehouse_common::types::DenyReason;

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

#[test]
fn authorize_parses_with_the_socket_option_anywhere() {
    let expected = Command::Ask {
        socket: SocketChoice::Path("/tmp/a.sock".into()),
        ask: Ask::Authorize {
            method: Method::Sudo,
            from_host: "h".into(),
            from_user: "u".into(),
            to_user: "root".into(),
            to_host: "web1".into(),
        },
    };
    let line = "--socket /tmp/a.sock authorize sudo h u root web1";
    assert_eq!(parse_args(&args(line)).unwrap(), expected.clone());
    let line = "authorize SUDO h u root web1 --socket /tmp/a.sock";
    assert_eq!(parse_args(&args(line)).unwrap(), expected);
}

#[test]
fn the_socket_comes_from_socket_then_config_then_default() {
    let cmd = parse_args(&args("--config c.ron --socket s status")).unwrap();
    assert_eq!(
        cmd,
        Command::Ask {
            socket: SocketChoice::Path("s".into()),
            ask: Ask::Status
        }
    );
    let cmd = parse_args(&args("--config c.ron status")).unwrap();
    assert_eq!(
        cmd,
        Command::Ask {
            socket: SocketChoice::Config("c.ron".into()),
            ask: Ask::Status
        }
    );
    let cmd = parse_args(&args("status")).unwrap();
    assert_eq!(
        cmd,
        Command::Ask {
            socket: SocketChoice::Default,
            ask: Ask::Status
        }
    );
}

#[test]
fn authenticate_takes_no_password_argument() {
    assert_eq!(
        parse_args(&args("authenticate alice web1")).unwrap(),
        Command::Ask {
            socket: SocketChoice::Default,
            ask: Ask::Authenticate {
                user: "alice".into(),
                host: "web1".into()
            }
        }
    );
    let extra = parse_args(&args("authenticate alice web1 hunter2")).unwrap_err();
    assert_eq!(extra.kind(), clap::error::ErrorKind::UnknownArgument);
}

#[test]
fn bad_usage_is_an_error_with_the_reason() {
    let error = |line: &str| parse_args(&args(line)).unwrap_err().to_string();
    for (line, why) in [
        ("frobnicate", "unrecognized subcommand 'frobnicate'"),
        ("stauts", "a similar subcommand exists: 'status'"),
        (
            "authorize TELNET a b c d",
            "unknown method \"TELNET\" (LOGIN, SSH, SU, SUDO)",
        ),
        ("authorize SSH a b c", "<TO_HOST>"),
        (
            "status --socket",
            "a value is required for '--socket <PATH>'",
        ),
        ("status --verbose", "unexpected argument '--verbose'"),
        ("run", "run needs --config FILE"),
        ("--socket s run --config c", "not --socket"),
        ("lookup uid alice", "lookup uid: \"alice\" is not a number"),
        (
            "lookup host x",
            "[possible values: user, uid, group, gid, groups]",
        ),
        ("--json status", "unexpected argument '--json'"),
    ] {
        assert!(error(line).contains(why), "{line}: {}", error(line));
    }
    assert_eq!(
        parse_args(&args("")).unwrap_err().kind(),
        clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    assert_eq!(
        parse_args(&args("run --config conf/agent.ron")).unwrap(),
        Command::Run {
            config: "conf/agent.ron".into()
        }
    );
    assert_eq!(
        parse_args(&args("status --json")).unwrap(),
        Command::Ask {
            socket: SocketChoice::Default,
            ask: Ask::StatusJson
        }
    );
    command().debug_assert();
}

#[test]
fn one_trailing_newline_is_stripped_from_the_password() {
    assert_eq!(strip_newline("pw\n".into()), "pw");
    assert_eq!(strip_newline("pw\r\n".into()), "pw");
    assert_eq!(strip_newline("pw\n\n".into()), "pw\n");
    assert_eq!(strip_newline("pw".into()), "pw");
    assert_eq!(strip_newline(" pw ".into()), " pw ");
}

#[test]
fn each_answer_has_its_line_and_exit_code() {
    let server = "127.0.0.1:7701".to_string();
    let cases = [
        (
            authorize(),
            LocalResponse::Allow {
                route: "SSH:*->alice@web*".into(),
                server: server.clone(),
            },
            "allow (route \"SSH:*->alice@web*\") from 127.0.0.1:7701",
            0,
        ),
        (
            authorize(),
            LocalResponse::Deny {
                reason: DenyReason::Locked,
                server: server.clone(),
            },
            "deny (locked) from 127.0.0.1:7701",
            1,
        ),
        (
            authenticate(),
            LocalResponse::AuthOk {
                server: server.clone(),
            },
            "auth ok from 127.0.0.1:7701",
            0,
        ),
        (
            authenticate(),
            LocalResponse::AuthFail {
                server: server.clone(),
            },
            "auth failed from 127.0.0.1:7701",
            1,
        ),
        (
            authenticate(),
            LocalResponse::AuthOkAging {
                aging: gatehouse_local::PasswordAging::ExpiresIn { days: 4 },
                server: server.clone(),
            },
            "auth ok (password expires in 4 days) from 127.0.0.1:7701",
            0,
        ),
        (
            authorize(),
            LocalResponse::Error {
                kind: LocalErrorKind::NoServerReachable,
                message: "no server reachable".into(),
            },
            "error: no server reachable (no_server_reachable)",
            2,
        ),
        (
            authenticate(),
            LocalResponse::Allow {
                route: "r".into(),
                server,
            },
            "error: the daemon answered authenticate alice@web1 (password hidden) with \
             Allow { route: \"r\", server: \"127.0.0.1:7701\" }",
            2,
        ),
    ];
    for (request, response, text, code) in cases {
        assert_eq!(
            render(&request, &response),
            Rendered {
                text: text.into(),
                code
            }
        );
    }
}

#[test]
fn status_shows_estimates_suspects_and_the_connection() {
    let report = StatusReport {
        host: "web1".into(),
        balancing: "probing".into(),
        servers: vec![
            ServerReport {
                address: "127.0.0.1:7701".into(),
                last_probe: Some(ProbeSummary {
                    estimate_us: 150,
                    seed_estimate_us: 0,
                    queue_len: 0,
                    connections: 3,
                    age_ms: 1250,
                }),
                suspect: false,
                avoided: false,
            },
            ServerReport {
                address: "127.0.0.1:7702".into(),
                last_probe: None,
                suspect: true,
                avoided: true,
            },
        ],
        connection: Some(ConnectionReport {
            server: "127.0.0.1:7701".into(),
            age_ms: 2000,
            established: true,
        }),
        queued: 0,
        in_flight: 0,
        retry_in_ms: None,
        local_clients: 1,
        offline: OfflineReport {
            identities: true,
            authorize_max_age_s: 3600,
            authorize_answers: 2,
            last: Some(("authorize from offline cache (61 s old)".into(), 1500)),
            cached_decisions: 4,
            ..OfflineReport::default()
        },
    };
    let expected = "host web1, balancing probing, 2 server(s)
  127.0.0.1:7701           estimate 150 µs (seed 0 µs, queue 0, 3 connections) 1.250 s ago
  127.0.0.1:7702           no probe reply yet [suspect] [avoided]
connection: 127.0.0.1:7701 (established, 2.000 s old)
requests: 0 queued, 0 in flight; background retry: none; local callers: 1
offline: identities on, decisions up to 3600 s, passwords off; answered offline: 0 identities, \
2 authorize, 0 authenticate; cached: 0 identities, 4 decisions, 0 verifiers
last offline answer: authorize from offline cache (61 s old), 1.500 s ago";
    assert_eq!(render_status(&report), expected);
}

#[test]
fn version_and_help_are_printed_with_exit_0_and_json_is_for_status_only() {
    for line in ["--version", "-V", "--help", "status --help"] {
        let shown = parse_args(&args(line)).unwrap_err();
        assert!(!shown.use_stderr(), "{line}: printed to stdout, exit 0");
    }
    let err = parse_args(&args("authorize SSH h u u web1 --json")).unwrap_err();
    assert!(
        err.to_string().contains("unexpected argument '--json'"),
        "{err}"
    );
}
