//! The servers as Unix daemons under a service manager: readiness and the watchdog through a
//! fake `NOTIFY_SOCKET` (pings while the loops turn, none while the process is stopped),
//! SIGHUP with a changed config (the new limit applies, connections stay up, restart-only
//! fields are named) and with a broken one (the error is logged, the old config stays),
//! journald priority prefixes under `JOURNAL_STREAM`, and the metrics endpoint's counters
//! after a known sequence of requests.

use gatehouse_common::policy::Database;
use gatehouse_common::types::ErrorCode;
use gatehouse_common::wire::{Handshake, Response};
use gatehouse_tests::client::{raw_connect, read_plain_frame};
use gatehouse_tests::requests::*;
use gatehouse_tests::service_manager::FakeManager;
use gatehouse_tests::*;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A short watchdog so a test sees several pings quickly; pings come at most every 150 ms.
const WATCHDOG: Duration = Duration::from_millis(300);

/// A replica's database and config in a directory the test keeps.
struct ReplicaFiles {
    dir: TestDir,
    config: PathBuf,
}

impl ReplicaFiles {
    fn new(db: &Database, fields: &str) -> Self {
        let dir = TestDir::new("replica-svc");
        let text = ron::ser::to_string_pretty(db, ron::ser::PrettyConfig::default()).unwrap();
        write_private(&dir.path().join("db.ron"), &text);
        let files = ReplicaFiles {
            config: dir.path().join("replica.ron"),
            dir,
        };
        files.write_config(fields);
        files
    }

    /// Rewrites the config with `fields` after `database`.
    fn write_config(&self, fields: &str) {
        let text = format!(r#"(listen: "127.0.0.1:0", database: "db.ron", {fields})"#);
        std::fs::write(&self.config, text).unwrap();
    }

    fn start(&self, env: &[(&str, String)]) -> ServerProcess {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let config = self.config.to_string_lossy().to_string();
        ServerProcess::start_in(
            "gatehouse-replica",
            &["--config", &config],
            self.dir.path(),
            &env,
        )
    }
}

/// Waits for READY=1 with the serving status.
fn wait_ready(manager: &FakeManager) {
    let ready = manager.until("READY=1");
    let status = ready.last().unwrap();
    assert!(status.contains("STATUS=serving agents on "), "{status}");
}

/// After ready: pinging while idle, silent while stopped, pinging again after SIGCONT,
/// STOPPING=1 on SIGTERM and a clean exit.
fn watchdog_follows_the_process(mut server: ServerProcess, manager: &FakeManager) {
    manager.pings_only_while_running(WATCHDOG, |s| server.signal(s));
    server.signal(libc::SIGTERM);
    manager.until("STOPPING=1");
    let status = server.wait_exit(WAIT_LIMIT).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(server.log().contains("signal SIGTERM: stopping"));
}

#[test]
fn a_replica_reports_ready_and_feeds_the_watchdog_only_while_it_runs() {
    let (db, _) = test_database(1);
    let manager = FakeManager::new();
    let files = ReplicaFiles::new(&db, "bridge: ()");
    let replica = files.start(&manager.env(Some(WATCHDOG)));
    wait_ready(&manager);
    watchdog_follows_the_process(replica, &manager);
}

#[test]
fn a_master_reports_ready_reloads_and_feeds_the_watchdog_from_both_loops() {
    let manager = FakeManager::new();
    let files = MasterFiles::new("()");
    let env = manager.env(Some(WATCHDOG));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = files.config.to_string_lossy().to_string();
    let master = ServerProcess::start_in(
        "gatehouse-master",
        &["--config", &config],
        files.dir.path(),
        &env,
    );
    wait_ready(&manager);
    // SIGHUP used to kill it with status 129: now a reload, and it keeps serving.
    master.signal(libc::SIGHUP);
    manager.until("RELOADING=1");
    let reloaded = manager.until("READY=1");
    assert!(
        reloaded.last().unwrap().contains("STATUS=reloaded "),
        "{reloaded:?}"
    );
    assert!(master.log().contains("nothing changed"), "{}", master.log());
    let log = master.log();
    assert!(log.contains("watchdog: pinging every"), "{log}");
    watchdog_follows_the_process(master, &manager);
}

/// The answer to a connection attempt over the cap.
fn refused_at_cap(addr: SocketAddr) -> bool {
    let mut stream = raw_connect(addr).unwrap();
    matches!(read_plain_frame(&mut stream), Some(Handshake::Error(e)) if e.code == ErrorCode::TooManyConnections)
}

#[test]
fn sighup_applies_a_new_limit_and_keeps_the_old_config_when_the_new_one_is_broken() {
    let (db, hosts) = test_database(4);
    let manager = FakeManager::new();
    let files = ReplicaFiles::new(&db, "bridge: (max_connections: 2)");
    let replica = files.start(&manager.env(None));
    manager.until("READY=1");
    let mut agents: Vec<Client> = hosts[..2]
        .iter()
        .map(|h| Client::connect(replica.addr, h).unwrap())
        .collect();
    assert!(refused_at_cap(replica.addr));

    // A changed config: a higher cap (applied) and a new address (needs a restart).
    let text = r#"(listen: "127.0.0.1:1", database: "db.ron", bridge: (max_connections: 3))"#;
    std::fs::write(&files.config, text).unwrap();
    replica.signal(libc::SIGHUP);
    manager.until("RELOADING=1");
    manager.until("READY=1");
    agents.push(Client::connect(replica.addr, &hosts[2]).expect("the new cap admits a third"));
    assert!(refused_at_cap(replica.addr));
    let log = replica.log();
    assert!(log.contains("bridge.max_connections 2 -> 3"), "{log}");
    assert!(
        log.contains("reload: listen 127.0.0.1:0 -> 127.0.0.1:1 takes effect only after a restart"),
        "{log}"
    );

    // A broken config: refused with the parser's error, and the running one stays.
    std::fs::write(
        &files.config,
        "(listen: \"127.0.0.1:0\", bridge: (max_connections: 9)",
    )
    .unwrap();
    replica.signal(libc::SIGHUP);
    manager.until("RELOADING=1");
    let ready = manager.until("READY=1");
    assert!(
        ready.last().unwrap().contains("STATUS=reload refused"),
        "{ready:?}"
    );
    let log = replica.log();
    let refusal = format!(
        "reload refused, still running with the previous config: {}:1:",
        files.config.display()
    );
    assert!(log.contains(&refusal), "{log}");
    assert!(refused_at_cap(replica.addr), "the cap is still 3");

    // Every connection made before either reload still answers.
    for (n, agent) in agents.iter_mut().enumerate() {
        let answer = agent.request(1, ssh_on(&hosts[n].name)).unwrap();
        assert!(matches!(answer, Response::Allow { .. }), "{answer:?}");
    }
}

/// Device and inode of a file, as `JOURNAL_STREAM` names a stream.
fn dev_ino(path: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap();
    format!("{}:{}", meta.dev(), meta.ino())
}

#[test]
fn under_journald_lines_carry_priorities_and_no_timestamps() {
    let (db, _) = test_database(1);
    let manager = FakeManager::new();
    let files = ReplicaFiles::new(&db, "bridge: ()");
    // The daemon's stderr is this file (ServerProcess appends to it), so JOURNAL_STREAM can
    // name it as systemd names the journal's stream.
    let log = files.dir.path().join("gatehouse-replica.log");
    std::fs::write(&log, "").unwrap();
    let mut env = manager.env(None);
    env.push(("JOURNAL_STREAM", dev_ino(&log)));
    let replica = files.start(&env);
    manager.until("READY=1");
    std::fs::write(&files.config, "(listen: ").unwrap();
    replica.signal(libc::SIGHUP);
    manager.until("RELOADING=1");
    manager.until("READY=1");
    let text = replica.log();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>") && l.contains("replica serving agents on")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<3>") && l.contains("reload refused")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with('<') && !l.starts_with("<6>[")),
        "every line has a priority and no timestamp: {text}"
    );
}

/// The value of the series `series` (name and labels exactly as exposed) in `text`.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

fn scrape(addr: SocketAddr) -> String {
    let mut stream = raw_connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    answer
}

#[test]
fn the_metrics_endpoint_counts_a_known_sequence_of_requests() {
    let (db, hosts) = test_database(1);
    let files = ReplicaFiles::new(&db, r#"metrics_listen: "127.0.0.1:0", bridge: ()"#);
    let replica = files.start(&[]);
    let metrics = replica.metrics.expect("metrics address printed");
    let host = &hosts[0];
    assert!(probe(replica.addr, host, WAIT_LIMIT).is_some());
    let mut agent = Client::connect(replica.addr, host).unwrap();
    for id in 0..3 {
        let answer = agent.request(id, ssh_on(&host.name)).unwrap();
        assert!(matches!(answer, Response::Allow { .. }), "{answer:?}");
    }
    for id in 3..5 {
        let answer = agent.request(id, ssh_as("mallory", &host.name)).unwrap();
        assert!(matches!(answer, Response::Deny { .. }), "{answer:?}");
    }
    let ok = agent.request(5, authenticate("alice", ALICE_PASSWORD, &host.name));
    assert_eq!(ok.unwrap(), Response::AuthOk);
    let fail = agent.request(6, authenticate("alice", "wrong", &host.name));
    assert_eq!(fail.unwrap(), Response::AuthFail);

    let text = scrape(metrics);
    let at = |series: &str| value(&text, series);
    let expected = [
        (r#"gatehouse_requests_total{kind="authorize"}"#, 5.0),
        (r#"gatehouse_requests_total{kind="authenticate"}"#, 2.0),
        (
            r#"gatehouse_answers_total{kind="authorize",outcome="allow"}"#,
            3.0,
        ),
        (
            r#"gatehouse_answers_total{kind="authorize",outcome="deny"}"#,
            2.0,
        ),
        (
            r#"gatehouse_answers_total{kind="authorize",outcome="busy"}"#,
            0.0,
        ),
        (
            r#"gatehouse_answers_total{kind="authenticate",outcome="auth_ok"}"#,
            1.0,
        ),
        (
            r#"gatehouse_answers_total{kind="authenticate",outcome="auth_fail"}"#,
            1.0,
        ),
        (r#"gatehouse_handshakes_total{outcome="ok"}"#, 1.0),
        (r#"gatehouse_probes_total{outcome="answered"}"#, 1.0),
        ("gatehouse_connections_accepted_total", 1.0),
        ("gatehouse_connections", 1.0),
        ("gatehouse_redirects_total", 0.0),
        (
            r#"gatehouse_request_duration_seconds_count{kind="authorize"}"#,
            5.0,
        ),
        (
            r#"gatehouse_request_duration_seconds_count{kind="authenticate"}"#,
            2.0,
        ),
        (
            r#"gatehouse_request_duration_seconds_bucket{le="+Inf",kind="authenticate"}"#,
            2.0,
        ),
    ];
    for (series, want) in expected {
        assert_eq!(at(series), want, "{series}");
    }
    assert!(at("gatehouse_estimated_wait_seconds") > 0.0);
    assert_eq!(at("gatehouse_queue_length"), 0.0);
    assert_eq!(at("gatehouse_db_sequence"), 0.0);
}

#[test]
fn every_binary_prints_its_version() {
    for binary in [
        "gatehouse-master",
        "gatehouse-replica",
        "gatehouse-agent",
        "gatehouse-admin",
        "gatehouse-loadgen",
    ] {
        let out = std::process::Command::new(bin_path(binary))
            .arg("--version")
            .output()
            .unwrap();
        assert!(out.status.success(), "{binary}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.trim(),
            format!("{binary} {}", env!("CARGO_PKG_VERSION"))
        );
    }
}
