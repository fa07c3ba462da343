//! The central lockout against the real binaries: wrong passwords spread over two replicas
//! and the master lock a user out on every server, with the same wire answer a wrong password
//! gets; `gatehouse-admin user unlock` (or the lockout's own end time, with no message) lets
//! the right password in again everywhere; a replica that sends its reports again after a
//! reconnect does not have them counted twice.

use gatehouse_common::repl::{MasterPublicKey, PasswordFailure, ReplMessage, Report};
use gatehouse_common::types::AuthFailure;
use gatehouse_common::wire::Response;
use gatehouse_tests::admin::{run_admin, run_admin_on};
use gatehouse_tests::metrics::{scrape, value};
use gatehouse_tests::repl_peer::{receive, replica_link};
use gatehouse_tests::replication::Cluster;
use gatehouse_tests::requests::authenticate;
use gatehouse_tests::*;
use std::time::{Duration, Instant, SystemTime};

const PASSWORD: &str = "right-password-42";

/// A master (with `lockout` settings) and followers `replicas`; alice has a password.
fn cluster(replicas: &[&str], lockout: &str) -> Cluster {
    let cluster = Cluster::start_with(replicas, "127.0.0.1:0", &format!("lockout: {lockout},"));
    let run = run_admin_on(
        &cluster.files.socket,
        &["user", "passwd", "alice"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(run.code, 0, "{run:?}");
    cluster
}

/// One password check by web1's agent on the server at `client`.
fn check(client: &mut Client, id: u32, password: &str) -> Response {
    client
        .request(id, authenticate("alice", password, "web1"))
        .expect("an answer")
}

/// Polls `gatehouse-admin lockout list` (bounded) until alice's line satisfies `ok`.
fn wait_for_lockout_line(cluster: &Cluster, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let out = cluster.admin_ok(&["lockout", "list"]);
        if let Some(line) = out.lines().find(|l| l.starts_with("alice\t") && ok(l)) {
            return line.to_string();
        }
        assert!(start.elapsed() < WAIT_LIMIT, "never saw {what}: {out:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_user_is_locked_out_everywhere_after_failures_at_several_servers_until_the_admin_unlocks() {
    let cluster = cluster(
        &["r1", "r2"],
        r#"(failures: 4, window_s: 60, lock_s: 600), metrics_listen: "127.0.0.1:0""#,
    );
    let replicas = [cluster.start_replica("r1"), cluster.start_replica("r2")];
    for name in ["r1", "r2"] {
        cluster.wait_caught_up(name);
    }
    let web1 = cluster.test_host("web1");
    // Fresh connections for each step, so no wait in between meets an idle timeout.
    let connect = || -> Vec<Client> {
        [cluster.master.addr, replicas[0].addr, replicas[1].addr]
            .iter()
            .map(|addr| Client::connect(*addr, &web1).unwrap())
            .collect()
    };
    let mut servers = connect();
    for server in &mut servers {
        assert_eq!(check(server, 1, PASSWORD), Response::AuthOk);
    }
    // Four wrong passwords: two at r1, one at r2, one at the master.
    let wrong_answer = check(&mut servers[1], 2, "guess-1");
    assert_eq!(wrong_answer, Response::AuthFail);
    for (server, id) in [(1, 3), (2, 4), (0, 5)] {
        assert_eq!(check(&mut servers[server], id, "guess"), wrong_answer);
    }
    let line = wait_for_lockout_line(&cluster, "alice locked out", |l| {
        l.contains("locked out until")
    });
    // The master's metrics, before anything else is reported: three failures came from the
    // replicas, all four counted, one lockout.
    let text = scrape(cluster.master.metrics.expect("the master serves metrics"));
    for (series, want) in [
        ("gatehouse_password_failures_reported_total", 3.0),
        ("gatehouse_password_failures_counted_total", 4.0),
        ("gatehouse_lockouts_decided_total", 1.0),
        ("gatehouse_users_locked_out", 1.0),
    ] {
        assert_eq!(value(&text, series), want, "{series}");
    }
    let log = cluster.master.log();
    let decided = log
        .lines()
        .find(|l| l.contains("user locked out: user=alice until="))
        .unwrap_or_else(|| panic!("the master logs the lockout: {log}"));
    // Which host the guesses came from, through which servers.
    assert!(
        decided.contains("failures=4 window_s=60 sources=\"web1 x4 via "),
        "{decided}"
    );
    for server in ["r1", "r2", "master"] {
        assert!(decided.contains(server), "{decided}");
    }
    // The lockout is in the audit trail, with each wrong password that led to it (bounded
    // poll: each server's records are on their way).
    let start = Instant::now();
    loop {
        let trail = cluster.admin_ok(&["audit", "--user", "alice"]);
        let lockout =
            trail.contains("kind=lockout outcome=locked_out") && trail.contains("failures=4");
        if lockout && trail.matches("reason=bad_password").count() == 4 {
            break;
        }
        assert!(start.elapsed() < WAIT_LIMIT, "{trail}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The lockout is a replicated change: every server refuses the right password, with the
    // answer a wrong one gets, and its log has the reason.
    for name in ["r1", "r2"] {
        cluster.wait_caught_up(name);
    }
    for server in &mut connect() {
        assert_eq!(check(server, 6, PASSWORD), wrong_answer, "{line}");
    }
    for replica in &replicas {
        assert!(
            replica
                .log()
                .contains("password refused: user=alice host=web1 agent=web1 reason=locked_out"),
            "{}",
            replica.log()
        );
    }
    assert!(cluster
        .admin_ok(&["status"])
        .contains("users: 1 (0 locked, 1 locked out)"));
    let shown = cluster.admin_ok(&["user", "show", "alice"]);
    assert!(shown.contains("locked out: until "), "{shown}");

    cluster.admin_ok(&["user", "unlock", "alice"]);
    assert!(!cluster.admin_ok(&["lockout", "list"]).contains("alice"));
    for name in ["r1", "r2"] {
        cluster.wait_caught_up(name);
    }
    for server in &mut connect() {
        assert_eq!(check(server, 7, PASSWORD), Response::AuthOk);
    }
}

#[test]
fn a_lockout_ends_by_itself_at_its_time_on_every_server() {
    let cluster = cluster(&["r1"], "(failures: 2, window_s: 60, lock_s: 3)");
    let replica = cluster.start_replica("r1");
    cluster.wait_caught_up("r1");
    let mut agent = Client::connect(replica.addr, &cluster.test_host("web1")).unwrap();
    for id in 1..=2 {
        assert_eq!(check(&mut agent, id, "guess"), Response::AuthFail);
    }
    let line = wait_for_lockout_line(&cluster, "alice locked out", |l| {
        l.contains("locked out until")
    });
    cluster.wait_caught_up("r1");
    let locked_at = cluster.sequence();
    let until = line.split("locked out until ").nth(1).unwrap().trim();
    let until = gatehouse_common::policy::PolicyTime::parse_utc(until).unwrap();
    let left = || {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
        Duration::from_secs(until.unix() as u64).saturating_sub(now.unwrap())
    };
    // Refused while the lockout lasts (the first test shows that on every server; here it
    // is checked only if a loaded machine left time for it).
    if left() > Duration::from_millis(500) {
        assert_eq!(check(&mut agent, 3, PASSWORD), Response::AuthFail);
    }
    // Wait out the lockout by the clock (its end is what this test is about), then a little.
    std::thread::sleep(left() + Duration::from_millis(100));
    assert_eq!(check(&mut agent, 4, PASSWORD), Response::AuthOk);
    // No message was needed: the master's database did not change.
    assert_eq!(cluster.sequence(), locked_at);
}

#[test]
fn reports_sent_again_after_a_reconnect_are_counted_once() {
    let cluster = cluster(&["r1"], "(failures: 3, window_s: 60, lock_s: 600)");
    let r1 = cluster.test_host("r1");
    let addr = cluster.master.replication.expect("replication");
    let key = MasterPublicKey::from_hex(&cluster.pinned().1).unwrap();
    let now_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let failure = |n: u64| {
        Report::PasswordFailure(PasswordFailure {
            at_unix_ms: now_ms + n,
            agent: "web1".into(),
            host: "web1".into(),
            user: "alice".into(),
            reason: AuthFailure::BadPassword,
        })
    };
    // Sends `records` as `first..` of stream 77 on a fresh link and returns the ack.
    let send = |first: u64, records: Vec<Report>| -> u64 {
        let (mut link, epoch) = replica_link(addr, &r1, &key).unwrap();
        let subscribe = ReplMessage::Subscribe {
            applied: 0,
            epoch,
            heartbeat_ms: 1000,
        };
        link.send_replication(&subscribe).unwrap();
        link.send_replication(&ReplMessage::Report {
            stream: 77,
            first,
            records,
        })
        .unwrap();
        loop {
            match receive(&mut link).unwrap() {
                ReplMessage::ReportAck {
                    stream: 77,
                    through,
                } => return through,
                ReplMessage::Refused { reason } => panic!("refused: {reason}"),
                _ => {} // the master's head and its changes
            }
        }
    };
    assert_eq!(send(1, vec![failure(1), failure(2)]), 2);
    // The ack is taken as lost: a new link sends both again.
    assert_eq!(send(1, vec![failure(1), failure(2)]), 2);
    let line = wait_for_lockout_line(&cluster, "two failures", |l| l.contains("wrong"));
    assert_eq!(line, "alice\t2 wrong passwords: web1 x2 via r1");
    let shown = cluster.admin_ok(&["user", "show", "alice"]);
    assert!(
        shown.contains("locked out: no\nwrong passwords: 2 (web1 x2 via r1)\n"),
        "{shown}"
    );
    // The third is new: alice is locked out.
    assert_eq!(send(3, vec![failure(3)]), 3);
    wait_for_lockout_line(&cluster, "alice locked out", |l| {
        l.contains("locked out until")
    });
    let log = run_admin(&cluster.files, &["lockout", "list"]).stdout;
    assert!(!log.contains("wrong passwords"), "{log}");
}
