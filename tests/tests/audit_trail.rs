//! The audit trail against the real binaries: a replica's and the master's decisions reach
//! the master's store with their agent, address, reason and route; `gatehouse-admin audit`
//! filters by time, user, host, outcome, kind and server, prints text or JSON lines, and
//! follows new records; an admin change records the caller's uid and its true outcome
//! (refused changes as refused, never a password); stored records go to syslog as RFC 5424.

use gatehouse_common::types::Method;
use gatehouse_common::wire::Response;
use gatehouse_tests::admin::run_admin_on;
use gatehouse_tests::audit::audit_json;
use gatehouse_tests::process::{bin_path, start_master, MasterFiles};
use gatehouse_tests::replication::Cluster;
use gatehouse_tests::requests::{authenticate, authorize, ssh_on};
use gatehouse_tests::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `audit --json ARGS` (bounded) until it shows at least `n` records.
fn wait_audit(cluster: &Cluster, args: &[&str], n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let records = audit_json(&cluster.files, args);
        if records.len() >= n {
            return records;
        }
        assert!(
            start.elapsed() < WAIT_LIMIT,
            "audit {args:?}: {} records, wanted {n}: {records:?}",
            records.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn decisions_everywhere_reach_the_master_with_who_where_and_why_and_filter() {
    let cluster = Cluster::start(&["r1"]);
    let db1_key = cluster.key_path("db1");
    cluster.admin_ok(&[
        "host",
        "add",
        "db1",
        "--key-file",
        db1_key.to_str().unwrap(),
    ]);
    let r1 = cluster.start_replica("r1");
    cluster.wait_caught_up("r1");
    let web1 = cluster.test_host("web1");
    let mut at_r1 = Client::connect(r1.addr, &web1).unwrap();
    let mut at_master = Client::connect(cluster.master.addr, &web1).unwrap();
    let local = at_r1.stream.local_addr().unwrap();
    // Allowed at r1; denied (unknown user) at the master; a wrong password at r1; a question
    // about another host at r1.
    let allowed = at_r1.request(1, ssh_on("web1")).unwrap();
    assert!(matches!(allowed, Response::Allow { .. }), "{allowed:?}");
    let denied = authorize(Method::Ssh, "10.9.9.9", "mallory", "mallory", "web1");
    assert!(matches!(
        at_master.request(2, denied).unwrap(),
        Response::Deny { .. }
    ));
    let wrong = authenticate("alice", "not-her-password", "web1");
    assert_eq!(at_r1.request(3, wrong).unwrap(), Response::AuthFail);
    assert!(matches!(
        at_r1.request(4, ssh_on("db1")).unwrap(),
        Response::Deny { .. }
    ));
    let records = wait_audit(&cluster, &["--kind", "authorize"], 2);
    wait_audit(&cluster, &["--server", "r1"], 3);
    let allow = records
        .iter()
        .find(|r| r["outcome"] == "allow")
        .expect("the allowed login");
    assert_eq!(allow["server"], "r1");
    assert_eq!(allow["agent"], "web1");
    assert_eq!(allow["address"], local.to_string());
    assert_eq!(allow["route"], "SSH:*->alice@web*");
    assert_eq!(
        (&allow["to_user"], &allow["method"]),
        (&"alice".into(), &"SSH".into())
    );
    let deny = records.iter().find(|r| r["outcome"] == "deny").unwrap();
    assert_eq!(deny["server"], "master");
    assert_eq!(
        (&deny["user"], &deny["reason"]),
        (&Value::Null, &"unknown_user".into())
    );
    let failed = wait_audit(&cluster, &["--kind", "authenticate"], 1);
    assert_eq!(
        failed[0]["reason"], "bad_password",
        "the detail the agent never saw"
    );
    let foreign = wait_audit(&cluster, &["--kind", "foreign_host"], 1);
    assert_eq!(
        (&foreign[0]["agent"], &foreign[0]["host"]),
        (&"web1".into(), &"db1".into())
    );

    // Filters.
    let count = |args: &[&str]| audit_json(&cluster.files, args).len();
    assert_eq!(count(&["--user", "alice", "--outcome", "allow"]), 1);
    assert_eq!(count(&["--user", "mallory"]), 1);
    assert_eq!(
        count(&["--server", "r1"]),
        3,
        "allow, bad password, other host"
    );
    assert_eq!(count(&["--host", "db1"]), 1, "the refusal, no decision");
    assert_eq!(count(&["--outcome", "fail"]), 1);
    assert_eq!(count(&["--since", "1h", "--kind", "authorize"]), 2);
    assert_eq!(count(&["--until", "2000-01-01", "--kind", "authorize"]), 0);
    // Text lines by default.
    let text = cluster.admin_ok(&["audit", "--user", "alice", "--outcome", "allow"]);
    assert!(
        text.contains(&format!(
            "server=r1 seq=1 kind=authorize outcome=allow agent=web1 address={local} method=SSH"
        )),
        "{text}"
    );
}

#[test]
fn follow_mode_prints_each_new_record_as_it_is_stored() {
    let cluster = Cluster::start(&[]);
    let web1 = cluster.test_host("web1");
    let mut agent = Client::connect(cluster.master.addr, &web1).unwrap();
    agent.request(1, ssh_on("web1")).unwrap();
    let mut follow = Command::new(bin_path("gatehouse-admin"))
        .arg("--socket")
        .arg(&cluster.files.socket)
        .args(["audit", "--follow", "--json", "--kind", "authorize"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gatehouse-admin audit --follow");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Each new decision shows up, in order, without asking again.
    for (n, user) in ["carol", "dave"].into_iter().enumerate() {
        let request = authorize(Method::Ssh, "10.0.0.1", user, user, "web1");
        agent.request(2 + n as u32, request).unwrap();
        let line = loop {
            let line = rx.recv_timeout(WAIT_LIMIT).expect("a followed record");
            if line.contains(user) {
                break line;
            }
        };
        let record: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (&record["to_user"], &record["outcome"]),
            (&user.into(), &"deny".into())
        );
    }
    let _ = follow.kill();
    let _ = follow.wait();
}

#[test]
fn an_admin_change_records_the_callers_uid_and_its_true_outcome() {
    let cluster = Cluster::start(&[]);
    let secret = "correct-horse-battery";
    let passwd = run_admin_on(
        &cluster.files.socket,
        &["user", "passwd", "alice"],
        &format!("{secret}\n"),
    );
    assert_eq!(passwd.code, 0, "{passwd:?}");
    let refused = run_admin_on(&cluster.files.socket, &["user", "lock", "ghost"], "");
    assert_eq!(refused.code, 1, "{refused:?}");
    let admin = wait_audit(&cluster, &["--kind", "admin"], 1);
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let lock = admin
        .iter()
        .find(|r| r["command"] == "kind=UserLock name=ghost")
        .unwrap_or_else(|| panic!("{admin:?}"));
    assert_eq!(lock["outcome"], "refused", "refused, never shown as done");
    assert_eq!(lock["uid"], uid);
    assert!(lock["detail"].as_str().unwrap().contains("ghost"), "{lock}");
    let set = admin
        .iter()
        .find(|r| r["command"] == "kind=UserPasswd name=alice")
        .unwrap();
    assert_eq!(set["outcome"], "done");
    assert!(set["detail"].as_str().unwrap().starts_with("seq="), "{set}");
    assert!(set["caller"].as_str().is_some_and(|c| !c.is_empty()));
    // The setup's changes are there too; queries are not; the password is nowhere.
    assert!(admin.iter().any(|r| r["command"]
        .as_str()
        .is_some_and(|c| c.starts_with("kind=HostAdd"))));
    assert!(admin.iter().all(|r| r["command"] != "kind=Status"));
    let everything = cluster.admin_ok(&["audit", "--limit", "10000"]);
    assert!(!everything.contains(secret));
    // The log line is written after the outcome, with it.
    let log = cluster.master.log();
    assert!(
        log.contains(&format!(
            "admin request kind=UserLock name=ghost uid={uid} caller="
        )) && log.contains("outcome=refused"),
        "{log}"
    );
}

#[test]
fn stored_records_are_forwarded_to_syslog_as_rfc_5424() {
    let collector = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    collector.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    let settings = format!(
        r#"audit: (syslog: (address: "{}", facility: 16)),"#,
        collector.local_addr().unwrap()
    );
    let files = MasterFiles::with_settings("()", "127.0.0.1:0", &settings);
    let _master = start_master(&files);
    let run = run_admin_on(&files.socket, &["user", "lock", "ghost"], "");
    assert_eq!(run.code, 1);
    let mut buf = [0u8; 8192];
    let message = loop {
        let n = collector.recv(&mut buf).expect("a syslog datagram");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.contains("UserLock") {
            break text;
        }
    };
    // local0.warning: a refused admin request.
    assert!(message.starts_with("<132>1 "), "{message}");
    assert!(
        message.contains(" master gatehouse - admin [audit@32473 "),
        "{message}"
    );
    assert!(
        message.contains(r#"command="kind=UserLock name=ghost""#)
            && message.contains(r#"outcome="refused""#),
        "{message}"
    );
}
