//! The load generator's lean closed-loop client (`gatehouse-loadgen direct`, the client of the
//! throughput benchmark) against a real replica: every simulated agent completes the real
//! handshake with its own node key, every sealed authorize is answered Allow, nothing fails,
//! and the summary says what ran.

use gatehouse_tests::loadgen_cli::{loadgen, num, read_json, text, Provisioned};
use gatehouse_tests::*;

#[test]
fn the_lean_client_gets_every_authorize_answered_by_a_real_replica() {
    let fleet = Provisioned::new("loadgen-direct", 50);
    let replica = start_replica(&fleet.db, "()");
    let server = replica.addr.to_string();
    let json_arg = fleet.json_arg();
    let run = loadgen(
        &[
            "direct",
            "--server",
            &server,
            "--identities",
            &fleet.identities,
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
    let summary = read_json(&fleet.json);
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
    let fleet = Provisioned::new("loadgen-direct-few", 3);
    let run = loadgen(
        &[
            "direct",
            "--server",
            "127.0.0.1:9",
            "--identities",
            &fleet.identities,
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
