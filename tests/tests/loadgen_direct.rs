//! The load generator's lean closed-loop client (`gatehouse-loadgen direct`, the client of the
//! throughput benchmark) against a real replica: every simulated agent completes the real
//! handshake with its own node key, every sealed authorize is answered Allow, nothing fails,
//! and the summary says what ran.

use gatehouse_common::policy::Database;
use gatehouse_tests::loadgen_cli::{loadgen, num, read_json, text};
use gatehouse_tests::*;

#[test]
fn the_lean_client_gets_every_authorize_answered_by_a_real_replica() {
    let dir = TestDir::new("loadgen-direct");
    let out = dir.path().display().to_string();
    let provisioned = loadgen(&["provision", "--agents", "50", "--out", &out], WAIT_LIMIT);
    assert!(
        provisioned.status.success(),
        "{}",
        text(&provisioned.stderr)
    );
    let db = Database::load(&dir.path().join("db.ron")).expect("provisioned db");
    let replica = start_replica(&db, "()");
    let server = replica.addr.to_string();
    let identities = dir.path().join("identities.ron").display().to_string();
    let json = dir.path().join("summary.json");
    let json_arg = json.display().to_string();
    let run = loadgen(
        &[
            "direct",
            "--server",
            &server,
            "--identities",
            &identities,
            "--agents",
            "50",
            "--duration",
            "1",
            "--json",
            &json_arg,
        ],
        WAIT_LIMIT,
    );
    assert!(
        run.status.success(),
        "{}\n{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    let summary = read_json(&json);
    assert_eq!(summary["mode"], "direct");
    assert_eq!(summary["agents"], 50);
    assert_eq!(num(&summary, "/errors"), 0.0, "{summary}");
    assert!(num(&summary, "/requests") >= 50.0, "{summary}");
    assert_eq!(
        num(&summary, "/requests"),
        num(&summary, "/ok"),
        "every answer is the Allow an authorize of alice gets"
    );
}

#[test]
fn asking_for_more_agents_than_identities_is_an_error_naming_the_file() {
    let dir = TestDir::new("loadgen-direct-few");
    let out = dir.path().display().to_string();
    assert!(
        loadgen(&["provision", "--agents", "3", "--out", &out], WAIT_LIMIT)
            .status
            .success()
    );
    let identities = dir.path().join("identities.ron").display().to_string();
    let run = loadgen(
        &[
            "direct",
            "--server",
            "127.0.0.1:9",
            "--identities",
            &identities,
            "--agents",
            "4",
            "--duration",
            "1",
        ],
        WAIT_LIMIT,
    );
    assert_eq!(run.status.code(), Some(1));
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("--agents 4") && stderr.contains("identities.ron"),
        "{stderr}"
    );
}
