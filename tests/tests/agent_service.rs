//! The agent daemon under a service manager: READY=1 once its socket listens, WATCHDOG=1 from
//! its loop (none while the process is stopped), SIGHUP with a changed config (a new server
//! list answers the next request on a local connection opened before the reload; the socket
//! path is named as needing a restart, offline settings apply at once) and with a broken one (logged, the old config stays),
//! STOPPING=1 and the socket removed on SIGTERM; `status --json`.

use gatehouse_agent::local::{LocalErrorKind, LocalRequest, LocalResponse};
use gatehouse_common::types::Method;
use gatehouse_local::codec::encode_request;
use gatehouse_tests::agent::{read_response, try_start_with_env, write_config_at, AgentDaemon};
use gatehouse_tests::process::run_with_stdin;
use gatehouse_tests::service_manager::FakeManager;
use gatehouse_tests::*;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The host's key and an agent config listing `servers`, its socket at `socket` (relative to
/// `dir`), in `dir`.
fn write_config(dir: &Path, host: &TestHost, servers: &[SocketAddr], socket: &str) -> PathBuf {
    write_config_at(dir, host, servers, socket, "")
}

/// A short watchdog so a test sees several pings quickly.
const WATCHDOG: Duration = Duration::from_millis(300);

/// Where the daemon's socket is, relative to its config.
const SOCKET: &str = "run/agent.sock";

fn start(config: &Path, manager: &FakeManager, watchdog: Option<Duration>) -> AgentDaemon {
    try_start_with_env(config, "agent.log", &manager.env(watchdog))
        .unwrap_or_else(|(status, log)| panic!("agent did not start ({status}):\n{log}"))
}

/// A replica, web1 (the host the agent serves), a directory and a fake service manager.
struct Setup {
    replica: ServerProcess,
    web1: TestHost,
    dir: TestDir,
    manager: FakeManager,
}

fn setup() -> Setup {
    let (db, hosts) = test_database(1);
    Setup {
        replica: start_replica(&db, "()"),
        web1: hosts.last().unwrap().clone(),
        dir: TestDir::new("agent-svc"),
        manager: FakeManager::new(),
    }
}

/// web1's SSH request for alice, on a local connection that stays open.
fn ask(caller: &mut UnixStream) -> LocalResponse {
    let request = LocalRequest::Authorize {
        method: Method::Ssh,
        from_host: "10.0.0.1".into(),
        from_user: "alice".into(),
        to_user: "alice".into(),
        to_host: "web1".into(),
    };
    caller
        .write_all(&encode_request(&request).unwrap())
        .unwrap();
    read_response(caller).unwrap()
}

#[test]
fn the_agent_reports_ready_and_feeds_the_watchdog_only_while_it_runs() {
    let Setup {
        replica,
        web1,
        dir,
        manager,
    } = setup();
    let config = write_config(dir.path(), &web1, &[replica.addr], SOCKET);
    let mut agent = start(&config, &manager, Some(WATCHDOG));
    let ready = manager.until("READY=1");
    assert!(
        ready
            .last()
            .unwrap()
            .contains("STATUS=serving local callers on"),
        "{ready:?}"
    );
    manager.pings_only_while_running(WATCHDOG, |s| agent.signal(s));
    agent.signal(libc::SIGTERM);
    manager.until("STOPPING=1");
    assert!(agent.wait_exit().success());
    assert!(!agent.socket.exists(), "the socket is removed");
}

#[test]
fn sighup_reloads_the_servers_without_dropping_local_callers_and_keeps_them_on_a_broken_file() {
    let Setup {
        replica,
        web1,
        dir,
        manager,
    } = setup();
    let web1 = &web1;
    let config = write_config(dir.path(), web1, &[dead_port()], SOCKET);
    let mut agent = start(&config, &manager, None);
    manager.until("READY=1");
    let mut caller = UnixStream::connect(&agent.socket).unwrap();
    caller.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    match ask(&mut caller) {
        LocalResponse::Error { kind, .. } => assert_eq!(kind, LocalErrorKind::NoServerReachable),
        other => panic!("expected no server reachable, got {other:?}"),
    }

    // The live replica instead of the dead port; a new socket path (needs a restart); offline
    // passwords on (applied at once, like trusted_uids).
    let offline = "offline: (passwords: true)";
    write_config_at(dir.path(), web1, &[replica.addr], "run/other.sock", offline);
    agent.signal(libc::SIGHUP);
    manager.until("RELOADING=1");
    manager.until("READY=1");
    let answer = ask(&mut caller);
    assert!(
        matches!(answer, LocalResponse::Allow { .. }),
        "{answer:?}\n{}",
        agent.log()
    );
    let log = agent.log();
    assert!(log.contains("applied offline"), "{log}");
    assert!(log.contains(", servers ["), "{log}");
    assert!(log.contains("reload: socket_path"), "{log}");
    assert!(agent.socket.exists(), "still serving on the first socket");
    caller
        .write_all(&encode_request(&LocalRequest::Status).unwrap())
        .unwrap();
    match read_response(&mut caller).unwrap() {
        LocalResponse::Status(report) => assert!(report.offline.passwords, "{report:?}"),
        other => panic!("status: {other:?}"),
    }

    // A broken file: refused, logged with the parser's error, the running config stays.
    std::fs::write(&config, "(host: ").unwrap();
    agent.signal(libc::SIGHUP);
    manager.until("RELOADING=1");
    let ready = manager.until("READY=1");
    assert!(
        ready.last().unwrap().contains("STATUS=reload refused"),
        "{ready:?}"
    );
    let refusal = format!(
        "reload refused, still running with the previous config: {}:1:",
        config.display()
    );
    assert!(agent.log().contains(&refusal), "{}", agent.log());
    let answer = ask(&mut caller);
    assert!(matches!(answer, LocalResponse::Allow { .. }), "{answer:?}");
    assert!(agent.is_running());
}

#[test]
fn status_json_is_the_whole_report() {
    let s = setup();
    let config = write_config(s.dir.path(), &s.web1, &[s.replica.addr], SOCKET);
    let agent = start(&config, &s.manager, None);
    let socket = agent.socket.to_string_lossy().to_string();
    let mut command = std::process::Command::new(bin_path("gatehouse-agent"));
    command.args(["--socket", &socket, "status", "--json"]);
    let out = run_with_stdin(&mut command, "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["host"], "web1");
    assert_eq!(json["servers"][0]["address"], s.replica.addr.to_string());
    assert_eq!(json["local_clients"], 1);
}
