//! Answers that used to mislead, now true (issue 14): a wrong node key is named as such on
//! both sides (never "no server reachable"; the server logs the host that failed its proof),
//! a registered host off the replica allow-list is told so, a second process with a live
//! replica's name is refused while the real one stays established, `--check` finds a status
//! file's missing directory, an unresolvable server name does not stop the agent, and
//! healthy servers are not `[suspect]` in `gatehouse-agent status`.

use gatehouse_common::nodekeys::NodeKey;
use gatehouse_tests::agent::{try_start, write_config, AgentDaemon};
use gatehouse_tests::process::ServerProcess;
use gatehouse_tests::replication::Cluster;
use gatehouse_tests::*;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Instant;

/// Waits (bounded by the wait limit) until `log()` contains `needle`; the log on failure.
fn wait_log(what: &str, log: impl Fn() -> String, needle: &str) -> String {
    let until = Instant::now() + WAIT_LIMIT;
    loop {
        let text = log();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < until,
            "{what} never logged {needle:?}:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn agent(dir: &TestDir, host: TestHost, servers: &[SocketAddr], extra: &str) -> AgentDaemon {
    let config = write_config(dir.path(), &host, servers, extra);
    try_start(&config, "agent.log").unwrap_or_else(|(s, log)| panic!("agent ({s}): {log}"))
}

/// `gatehouse-agent --socket S authorize SSH 10.0.0.7 alice alice ''`: (exit code, stderr).
fn authorize(agent: &AgentDaemon) -> (i32, String, String) {
    let out = Command::new(bin_path("gatehouse-agent"))
        .arg("--socket")
        .arg(&agent.socket)
        .args(["authorize", "SSH", "10.0.0.7", "alice", "alice", ""])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const KEY_REFUSED: &str =
    "the servers refused this host's node key (wrong key or unregistered host)";

#[test]
fn a_wrong_node_key_is_named_on_both_sides_and_so_is_an_unregistered_host() {
    let cluster = Cluster::start(&[]);
    let master = cluster.master.addr;
    let wrong = TestHost {
        name: "web1".into(),
        key: NodeKey::generate(&mut rand::thread_rng()),
    };
    let dir = TestDir::new("wrong-key");
    let a = agent(&dir, wrong, &[master], "");
    let (code, _, stderr) = authorize(&a);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(KEY_REFUSED), "{stderr}\n{}", a.log());
    assert!(!stderr.contains("no server reachable"), "{stderr}");
    wait_log(
        "the master",
        || cluster.master.log(),
        "node key refused: host=web1 peer=127.0.0.1:",
    );

    // A host the master does not know gets the same answer (which of the two is not told).
    let ghost = TestHost {
        name: "ghost".into(),
        key: NodeKey::generate(&mut rand::thread_rng()),
    };
    let dir = TestDir::new("ghost-key");
    let a = agent(&dir, ghost, &[master], "");
    let (code, _, stderr) = authorize(&a);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(KEY_REFUSED), "{stderr}");

    // The right key still works, and the status shows the healthy server without [suspect].
    let dir = TestDir::new("right-key");
    let a = agent(&dir, cluster.test_host("web1"), &[master], "");
    let (code, stdout, stderr) = authorize(&a);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[test]
fn healthy_servers_are_not_suspect_in_the_status() {
    let cluster = Cluster::start(&["r1", "r2"]);
    let replicas: Vec<ServerProcess> = ["r1", "r2"]
        .iter()
        .map(|r| {
            let p = cluster.start_replica(r);
            cluster.wait_caught_up(r);
            p
        })
        .collect();
    let servers: Vec<SocketAddr> = std::iter::once(cluster.master.addr)
        .chain(replicas.iter().map(|r| r.addr))
        .collect();
    let dir = TestDir::new("status-suspect");
    // Probe fanout 3 and min_replies 2: the third server's reply is often later than the
    // round's end; it was marked suspect for that.
    let a = agent(&dir, cluster.test_host("web1"), &servers, "");
    for _ in 0..20 {
        let (code, stdout, stderr) = authorize(&a);
        assert_eq!(code, 0, "{stdout}{stderr}");
    }
    let out = Command::new(bin_path("gatehouse-agent"))
        .arg("--socket")
        .arg(&a.socket)
        .arg("status")
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{status}");
    assert!(!status.contains("[suspect]"), "{status}\n{}", a.log());
}

#[test]
fn a_registered_host_off_the_allow_list_is_told_so() {
    let cluster = Cluster::start(&[]);
    let key = cluster.key_path("r9");
    cluster.admin_ok(&["host", "add", "r9", "--key-file", key.to_str().unwrap()]);
    let replica = cluster.start_replica("r9");
    wait_log(
        "the replica",
        || replica.log(),
        "host `r9` is not on the replica allow-list (gatehouse-admin replica add r9)",
    );
    assert!(!replica.log().contains("host is not registered"));
}

#[test]
fn a_second_process_with_a_live_replicas_name_is_refused_and_the_first_stays() {
    let cluster = Cluster::start(&["r1"]);
    let _first = cluster.start_replica("r1");
    cluster.wait_caught_up("r1");
    let (addr, key) = cluster.pinned();
    let other = cluster.files.dir.path().join("replica-r1-copy");
    let second = cluster.start_replica_in("r1", &[(&addr, &key)], &other);
    wait_log(
        "the second replica",
        || second.log(),
        "already has a live link to this master: is a second process running with this replica's host and node key?",
    );
    wait_log(
        "the master",
        || cluster.master.log(),
        "already has a live link",
    );
    // The first replica's link is untouched: established, and it still follows changes.
    cluster.admin_ok(&["user", "add", "carol"]);
    cluster.wait_caught_up("r1");
    let status = cluster.admin_ok(&["replica", "show", "r1"]);
    assert!(status.starts_with("r1\testablished"), "{status}");
}

#[test]
fn check_refuses_a_status_file_in_a_missing_directory() {
    let cluster = Cluster::start(&["r1"]);
    let (addr, key) = cluster.pinned();
    let dir = TestDir::new("status-dir");
    let config = dir.path().join("replica.ron");
    std::fs::write(
        &config,
        format!(
            r#"(listen: "127.0.0.1:0", replication: (masters: [(address: {addr:?}, key: {key:?})], host: "r1",
                node_key_file: {:?}, store: "replica.sqlite", status_file: "nodir/status.ron"))"#,
            cluster.key_path("r1")
        ),
    )
    .unwrap();
    let out = Command::new(bin_path("gatehouse-replica"))
        .arg("--config")
        .arg(&config)
        .arg("--check")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("field replication.status_file: ")
            && stderr.contains("nodir does not exist"),
        "{stderr}"
    );
    std::fs::create_dir(dir.path().join("nodir")).unwrap();
    let out = Command::new(bin_path("gatehouse-replica"))
        .arg("--config")
        .arg(&config)
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unresolvable_server_name_does_not_stop_the_agent() {
    let cluster = Cluster::start(&[]);
    let dir = TestDir::new("unresolvable");
    let host = cluster.test_host("web1");
    let config = write_config(dir.path(), &host, &[cluster.master.addr], "");
    // `.invalid` never resolves (RFC 6761); it is listed first.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("servers: [", "servers: [\"nosuch.invalid:7701\", ");
    std::fs::write(&config, text).unwrap();
    let a = try_start(&config, "agent.log").unwrap_or_else(|(s, log)| panic!("({s}) {log}"));
    assert!(
        a.log()
            .contains("server \"nosuch.invalid:7701\" does not resolve"),
        "{}",
        a.log()
    );
    let (code, stdout, stderr) = authorize(&a);
    assert_eq!(code, 0, "{stdout}{stderr}");
    // A list where nothing resolves is still an error, at start.
    let text = std::fs::read_to_string(&config).unwrap();
    let start = text.find("servers: [").unwrap();
    let end = start + text[start..].find(']').unwrap();
    let none = format!(
        "{}servers: [\"nosuch.invalid:7701\"{}",
        &text[..start],
        &text[end..]
    );
    std::fs::write(&config, none).unwrap();
    let (status, log) = match try_start(&config, "agent2.log") {
        Ok(_) => panic!("started with no server resolving"),
        Err(failure) => failure,
    };
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("no server resolves"), "{log}");
}
