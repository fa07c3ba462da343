//! The real `gatehouse-loadgen` binary: a thousand simulated agents against two real replicas
//! (zero errors, both replicas used, a JSON summary with every field), the demo end to end (a
//! master and three replicas following it, all serving agents, every replica at the master's
//! sequence, and no process left running), an open-loop run at its rate, and command-line
//! mistakes (exit 2, a clear message).

use gatehouse_tests::loadgen_cli::{loadgen, num, read_json, text, Provisioned};
use gatehouse_tests::*;

#[test]
fn a_thousand_agents_against_two_replicas_get_every_answer_right() {
    let fleet = Provisioned::new("loadgen", 1000);
    let replicas: Vec<ServerProcess> = (0..2).map(|_| start_replica(&fleet.db, "()")).collect();
    let servers = format!("{},{}", replicas[0].addr, replicas[1].addr);
    let run = fleet.run(&servers, &["--duration", "2", "--think", "20"]);
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", text(&run.stderr));
    assert!(stdout.contains("req/s"), "no progress line: {stdout}");
    let summary = read_json(&fleet.json);
    assert_eq!(summary["agents"], 1000);
    assert_eq!(summary["mode"], "closed");
    assert_eq!(num(&summary, "/errors"), 0.0, "{summary}");
    assert_eq!(summary["errors_by_kind"], serde_json::json!({}));
    assert!(num(&summary, "/requests") >= 1000.0, "{summary}");
    assert_eq!(num(&summary, "/requests"), num(&summary, "/ok"));
    assert!(num(&summary, "/throughput_rps") > 0.0);
    for field in ["p50", "p90", "p99", "p999", "max", "mean"] {
        assert!(
            num(&summary, &format!("/latency_us/{field}")) > 0.0,
            "{field}"
        );
    }
    num(&summary, "/redirects");
    let shares: Vec<f64> = (0..2)
        .map(|i| num(&summary, &format!("/servers/{i}/share_percent")))
        .collect();
    assert!(
        shares.iter().all(|&s| s > 0.0),
        "a replica got nothing: {shares:?}"
    );
    assert!((shares.iter().sum::<f64>() - 100.0).abs() < 1e-6);
}

#[test]
fn open_loop_issues_at_the_rate_whatever_the_answers_do() {
    let fleet = Provisioned::new("loadgen-open", 100);
    let replica = start_replica(&fleet.db, "()");
    let servers = replica.addr.to_string();
    let run = fleet.run(
        &servers,
        &[
            "--mode",
            "open",
            "--rate",
            "200",
            "--arrivals",
            "even",
            "--duration",
            "2",
        ],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));
    let summary = read_json(&fleet.json);
    assert_eq!(summary["mode"], "open", "{summary}");
    assert_eq!(num(&summary, "/errors"), 0.0, "{summary}");
    // 200/s for 2 s, evenly spaced: 400 arrivals, less those due in the last moments if the
    // final turn wakes late on a busy machine (100 ms' worth allowed), all answered.
    let requests = num(&summary, "/requests");
    assert!((380.0..=400.0).contains(&requests), "{summary}");
    assert_eq!(num(&summary, "/ok"), requests, "{summary}");
}

fn alive(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn the_demo_runs_a_master_and_three_following_replicas_and_leaves_nothing_running() {
    let dir = TestDir::new("demo");
    let json = dir.path().join("demo.json");
    let json_arg = json.display().to_string();
    let demo = loadgen(
        &[
            "demo",
            "--duration",
            "3",
            "--agents",
            "200",
            "--json",
            &json_arg,
        ],
        WAIT_LIMIT * 2,
    );
    let stdout = text(&demo.stdout);
    assert!(demo.status.success(), "{stdout}\n{}", text(&demo.stderr));
    let pids: Vec<i32> = stdout
        .lines()
        .filter(|l| l.starts_with("started "))
        .filter_map(|l| l.split("(pid ").nth(1)?.split(')').next()?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 4, "master and three replicas: {stdout}");
    for pid in pids {
        assert!(!alive(pid), "server pid {pid} still running");
    }
    for line in [
        "gatehouse-admin import db.ron",
        "gatehouse-admin replica add replica2",
        "every replica established",
        "est. wait",
        "replication",
        "gatehouse-admin user lock carol -> ok",
    ] {
        assert!(stdout.contains(line), "no {line:?} in: {stdout}");
    }
    let summary = read_json(&json);
    assert_eq!(num(&summary, "/errors"), 0.0, "{summary}");
    assert!(num(&summary, "/requests") > 0.0);
    let servers = summary["servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 4, "the master serves agents too: {summary}");
    let answered: Vec<f64> = (0..4)
        .map(|i| num(&summary, &format!("/servers/{i}/requests")))
        .collect();
    assert!(
        answered.iter().all(|&n| n > 0.0),
        "a server got nothing: {answered:?}"
    );
    // Setup makes 8 changes (import, 3 host adds, 3 replica adds, user add); the run at least
    // one more, and every replica applied all of them.
    let master = num(&summary, "/replication/master_sequence");
    assert!(
        num(&summary, "/replication/admin_changes") >= 1.0,
        "{summary}"
    );
    assert!(master >= 9.0, "{summary}");
    let replicas = summary["replication"]["replicas"]
        .as_array()
        .expect("replicas");
    assert_eq!(replicas.len(), 3, "{summary}");
    for (i, r) in replicas.iter().enumerate() {
        assert_eq!(r["name"], format!("replica{i}"));
        assert_eq!(r["state"], "established", "{summary}");
        assert_eq!(r["applied_sequence"].as_f64(), Some(master), "{summary}");
        assert_eq!(r["lag"], 0);
    }
}

#[test]
fn command_line_mistakes_exit_2_with_a_message() {
    for (args, want) in [
        (&["run", "--identities", "x"][..], "--servers <A,B,C>"),
        (
            &["demo", "--agents", "lots"][..],
            "--agents: \"lots\" is not valid",
        ),
        (&["bench"][..], "unrecognized subcommand 'bench'"),
    ] {
        let out = loadgen(args, WAIT_LIMIT);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(stderr.contains("Usage:"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_missing_identities_file_is_a_runtime_error_naming_it() {
    let out = loadgen(
        &[
            "run",
            "--servers",
            "127.0.0.1:9",
            "--identities",
            "/nonexistent/ids.ron",
        ],
        WAIT_LIMIT,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/ids.ron"));
}
