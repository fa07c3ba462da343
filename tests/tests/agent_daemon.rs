//! The real `gatehouse-agent` daemon and CLI on loopback: decisions from a real replica with
//! the CLI's exit codes, garbage on the local socket, every server down, a dead server listed
//! first, the socket's mode, stale sockets and clean shutdown. (Identities, peer credentials
//! and offline answers: tests/tests/agent_logins.rs.)

use gatehouse_agent::local::{LocalErrorKind, LocalRequest, LocalResponse};
use gatehouse_local::codec::encode_request;
use gatehouse_tests::agent::{read_response, try_start, write_config, AgentDaemon};
use gatehouse_tests::*;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn start_agent(dir: &TestDir, host: &TestHost, servers: &[SocketAddr], extra: &str) -> AgentDaemon {
    let config = write_config(dir.path(), host, servers, extra);
    try_start(&config, "agent.log").unwrap_or_else(|(status, log)| {
        panic!("agent daemon did not start ({status}); its log:\n{log}")
    })
}

struct CliResult {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs the CLI with `args`, feeding `stdin`, bounded by the wait limit.
fn cli(args: &[&str], stdin: &str) -> CliResult {
    let start = Instant::now();
    let mut child = Command::new(bin_path("gatehouse-agent"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = rx
        .recv_timeout(WAIT_LIMIT)
        .expect("the CLI did not finish")
        .unwrap();
    CliResult {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

fn ask(agent: &AgentDaemon, args: &[&str], stdin: &str) -> CliResult {
    let socket = agent.socket.to_str().unwrap();
    let mut all = vec!["--socket", socket];
    all.extend_from_slice(args);
    cli(&all, stdin)
}

fn raw_frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[test]
fn the_cli_gets_decisions_from_a_real_replica_through_the_daemon() {
    let (db, hosts) = test_database(1);
    let replica = start_replica(&db, "()");
    let dir = TestDir::new("agentd");
    // The agent of web1: a server answers an agent only about its own host.
    let web1 = hosts.last().unwrap();
    let agent = start_agent(&dir, web1, &[replica.addr], "");
    let from = replica.addr;

    let r = ask(
        &agent,
        &["authorize", "SSH", "10.0.0.1", "alice", "alice", "web1"],
        "",
    );
    assert_eq!(r.code, 0, "{}{}", r.stderr, agent.log());
    assert_eq!(
        r.stdout.trim(),
        format!("allow (route \"SSH:*->alice@web*\") from {from}")
    );

    let r = ask(
        &agent,
        &["authorize", "su", "10.0.0.1", "alice", "alice", "web1"],
        "",
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        r.stdout.trim(),
        format!("deny (no_matching_route) from {from}")
    );

    let r = ask(
        &agent,
        &["authorize", "SSH", "10.0.0.1", "bob", "bob", "web1"],
        "",
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), format!("deny (locked) from {from}"));

    let r = ask(
        &agent,
        &["authenticate", "alice", "web1"],
        &format!("{ALICE_PASSWORD}\n"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), format!("auth ok from {from}"));

    let r = ask(&agent, &["authenticate", "alice", "web1"], "wrong\n");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), format!("auth failed from {from}"));

    // The CLI finds the socket through the config too.
    let config = agent.config.to_str().unwrap();
    let r = cli(&["--config", config, "status"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "host web1, balancing probing, 1 server(s)");
    assert!(
        lines[1].contains(&from.to_string()) && lines[1].contains(" estimate "),
        "{}",
        r.stdout
    );
    assert!(!lines[1].contains("suspect"), "{}", r.stdout);
    assert!(
        lines[2].starts_with(&format!("connection: {from} (established, ")),
        "{}",
        r.stdout
    );
    // Every request was logged, the password never.
    let log = agent.log();
    assert!(
        log.contains("authenticate alice@web1 (password hidden)"),
        "{log}"
    );
    assert!(!log.contains(ALICE_PASSWORD), "{log}");
}

#[test]
fn a_caller_sending_garbage_gets_an_error_and_the_daemon_keeps_serving() {
    let (_, hosts) = test_database(1);
    let dir = TestDir::new("agentd-garbage");
    let agent = start_agent(&dir, &hosts[0], &[dead_port()], "");
    let garbage: [(Vec<u8>, LocalErrorKind); 4] = [
        (
            vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
            LocalErrorKind::BadRequest,
        ),
        (raw_frame(&[1, 0x63]), LocalErrorKind::BadRequest),
        (
            raw_frame(&[1, 2, 0x00, 0x09, b'a']),
            LocalErrorKind::BadRequest,
        ),
        (
            raw_frame(b"Launch(missiles: true)"),
            LocalErrorKind::UnsupportedVersion,
        ),
    ];
    // A caller holding half a frame does not block anyone.
    let mut half = UnixStream::connect(&agent.socket).unwrap();
    half.write_all(&raw_frame(&[1, 8])[..5]).unwrap();
    for (bytes, expected) in garbage {
        let mut stream = UnixStream::connect(&agent.socket).unwrap();
        stream.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
        stream.write_all(&bytes).unwrap();
        match read_response(&mut stream).unwrap() {
            LocalResponse::Error { kind, .. } => assert_eq!(kind, expected),
            other => panic!("{other:?}"),
        }
        // ... and is disconnected.
        let mut rest = Vec::new();
        assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0);
    }
    // Two requests one after the other on one connection.
    let mut stream = UnixStream::connect(&agent.socket).unwrap();
    stream.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    for _ in 0..2 {
        let frame = encode_request(&LocalRequest::Status).unwrap();
        stream.write_all(&frame).unwrap();
        assert!(matches!(
            read_response(&mut stream).unwrap(),
            LocalResponse::Status(report) if report.local_clients == 2
        ));
    }
    let r = ask(&agent, &["status"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("local callers: 3"), "{}", r.stdout);
    let log = agent.log();
    assert!(log.contains("sent a bad frame"), "{log}");
}

#[test]
fn with_every_server_down_the_cli_hears_no_server_reachable_at_once() {
    let (_, hosts) = test_database(1);
    let dir = TestDir::new("agentd-down");
    let mut agent = start_agent(&dir, &hosts[0], &[dead_port(), dead_port()], "");
    let r = ask(
        &agent,
        &["authorize", "SSH", "10.0.0.1", "alice", "alice", "web1"],
        "",
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stderr.trim(),
        "error: no server reachable (no_server_reachable)"
    );
    // Every server refused its connect and none answered a probe: the request fails after
    // one probe round (150 ms), well inside the 5 s deadline.
    assert!(r.elapsed < Duration::from_secs(2), "{:?}", r.elapsed);
    // The daemon is still there, and retrying in the background.
    assert!(agent.is_running());
    let r = ask(&agent, &["status"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("connection: none"), "{}", r.stdout);
    assert!(r.stdout.contains("background retry: in "), "{}", r.stdout);
    let r = ask(&agent, &["authenticate", "alice", "web1"], "pw");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no server reachable"), "{}", r.stderr);
    assert!(agent.is_running());
}

#[test]
fn a_dead_server_listed_first_does_not_stop_the_request() {
    let (db, hosts) = test_database(1);
    let replica = start_replica(&db, "()");
    let dir = TestDir::new("agentd-failover");
    // Ordered: the dead server is always tried first.
    let agent = start_agent(
        &dir,
        hosts.last().unwrap(),
        &[dead_port(), replica.addr],
        "balancing: ordered",
    );
    let r = ask(
        &agent,
        &["authorize", "SSH", "10.0.0.1", "alice", "alice", "web1"],
        "",
    );
    assert_eq!(r.code, 0, "{}{}", r.stderr, agent.log());
    assert_eq!(
        r.stdout.trim(),
        format!("allow (route \"SSH:*->alice@web*\") from {}", replica.addr)
    );
    assert!(r.elapsed < Duration::from_secs(2), "{:?}", r.elapsed);
}

#[test]
fn the_socket_is_0666_one_daemon_owns_it_and_sigterm_exits_cleanly() {
    let (_, hosts) = test_database(1);
    let dir = TestDir::new("agentd-socket");
    let mut first = start_agent(&dir, &hosts[0], &[dead_port()], "");
    assert_eq!(first.socket, dir.path().join("run/agent.sock"));
    let meta = std::fs::metadata(&first.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o666);

    // A second daemon on the same socket refuses to start.
    let (status, log) = match try_start(&first.config, "second.log") {
        Ok(_) => panic!("a second daemon started on a live socket"),
        Err(failure) => failure,
    };
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains("another agent daemon is listening on it"),
        "{log}"
    );
    assert!(first.is_running());

    // A crashed daemon leaves a stale socket; the next one replaces it.
    first.signal(libc::SIGKILL);
    first.wait_exit();
    assert!(first.socket.exists());
    let mut next = try_start(&first.config, "next.log")
        .unwrap_or_else(|(s, log)| panic!("restart over a stale socket failed ({s}): {log}"));
    let r = ask(&next, &["status"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);

    next.signal(libc::SIGTERM);
    assert_eq!(next.wait_exit().code(), Some(0), "{}", next.log());
    assert!(!next.socket.exists(), "socket left behind");
}

#[test]
fn cli_and_start_up_errors_exit_2_with_a_reason() {
    let r = cli(&["frobnicate"], "");
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("error: unrecognized subcommand 'frobnicate'"),
        "{}",
        r.stderr
    );
    let r = cli(&["stauts"], "");
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("tip: a similar subcommand exists: 'status'"),
        "{}",
        r.stderr
    );

    let dir = TestDir::new("agentd-errors");
    let missing = dir.path().join("nobody-home.sock");
    let r = cli(&["--socket", missing.to_str().unwrap(), "status"], "");
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.starts_with(&format!(
            "error: cannot reach the agent daemon at {}",
            missing.display()
        )),
        "{}",
        r.stderr
    );

    // A missing node key file is named.
    let (_, hosts) = test_database(1);
    let config = write_config(dir.path(), &hosts[0], &[dead_port()], "");
    std::fs::remove_file(dir.path().join("node.key")).unwrap();
    let r = cli(&["run", "--config", config.to_str().unwrap()], "");
    assert_eq!(r.code, 2);
    let key = dir.path().join("node.key");
    assert!(
        r.stderr
            .contains(&format!("node key file {}: ", key.display())),
        "{}",
        r.stderr
    );
    // ... and a bad one.
    write_private(&key, "not hex\n");
    let r = cli(&["run", "--config", config.to_str().unwrap()], "");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("expected 64 hex digits"), "{}", r.stderr);
}

#[test]
fn callers_beyond_the_cap_get_an_error_and_the_rest_are_still_served() {
    use gatehouse_agent::daemon::serve::MAX_LOCAL_CLIENTS;
    let (_, hosts) = test_database(1);
    let dir = TestDir::new("agentd-cap");
    let agent = start_agent(&dir, &hosts[0], &[dead_port()], "");
    let mut held: Vec<UnixStream> = (0..MAX_LOCAL_CLIENTS)
        .map(|_| UnixStream::connect(&agent.socket).unwrap())
        .collect();
    let mut extra = UnixStream::connect(&agent.socket).unwrap();
    extra.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    match read_response(&mut extra).unwrap() {
        LocalResponse::Error { kind, .. } => assert_eq!(kind, LocalErrorKind::TooManyClients),
        other => panic!("{other:?}"),
    }
    // One of the held callers is served normally, and once one leaves a new caller gets in.
    let status = encode_request(&LocalRequest::Status).unwrap();
    let first = &mut held[0];
    first.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    first.write_all(&status).unwrap();
    assert!(matches!(
        read_response(first).unwrap(),
        LocalResponse::Status(report) if report.local_clients == MAX_LOCAL_CLIENTS
    ));
    held.pop();
    // The daemon notices the hang-up when it next polls; the CLI may race it once.
    let start = Instant::now();
    loop {
        let r = ask(&agent, &["status"], "");
        if r.code == 0 {
            break;
        }
        assert!(r.stderr.contains("too_many_clients"), "{}", r.stderr);
        assert!(start.elapsed() < WAIT_LIMIT);
    }
}
