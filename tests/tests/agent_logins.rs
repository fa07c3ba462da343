//! The agent's login path against a real replica: identity lookups through the cache, and
//! offline answers once the replica is gone — identities from the cache, decisions younger
//! than the configured age, passwords from a verifier of the last online success (dropped by
//! any online refusal) only with `offline.passwords` on, a wrong password after the failure
//! delay — each counted in `gatehouse-agent status`. (Who may ask what, by uid:
//! tests/tests/local_sockets.rs.)

use gatehouse_common::identity::Lookup;
use gatehouse_common::types::Method;
use gatehouse_local::{LocalErrorKind, LocalRequest, LocalResponse};
use gatehouse_tests::agentd::Agentd;
use gatehouse_tests::*;
use std::time::{Duration, Instant};

fn lookup(l: Lookup) -> LocalRequest {
    LocalRequest::Lookup(l)
}

fn ssh_alice() -> LocalRequest {
    LocalRequest::Authorize {
        method: Method::Ssh,
        from_host: "10.0.0.1".into(),
        from_user: "alice".into(),
        to_user: "alice".into(),
        to_host: String::new(),
    }
}

fn authenticate(password: &str) -> LocalRequest {
    LocalRequest::Authenticate {
        user: "alice".into(),
        password: password.to_string().into(),
        host: String::new(),
    }
}

fn is_error(answer: &LocalResponse, expected: LocalErrorKind) -> bool {
    matches!(answer, LocalResponse::Error { kind, .. } if *kind == expected)
}

/// An agent for web1 (host index `agents`) asking one real replica.
fn setup(extra: &str) -> (ServerProcess, Agentd) {
    let (db, hosts) = test_database(1);
    let replica = start_replica(&db, "()");
    let web1 = hosts.last().unwrap().clone();
    let agent = Agentd::start(&web1, &[replica.addr], extra);
    (replica, agent)
}

fn kill(mut replica: ServerProcess) {
    replica.signal(libc::SIGKILL);
    replica.wait_exit(WAIT_LIMIT).expect("replica exits");
}

#[test]
fn identities_come_from_the_servers_then_the_cache_then_offline() {
    // TTL 0: every lookup asks the servers while they answer, so the offline path is exercised.
    let (replica, agent) = setup("cache: (identity_ttl_s: 0, negative_ttl_s: 0)");
    let LocalResponse::User(alice) = agent.ask(&lookup(Lookup::UserByName("alice".into()))) else {
        panic!("alice not found: {}", agent.log())
    };
    assert_eq!((alice.uid, alice.home.as_str()), (ALICE_UID, "/home/alice"));
    assert_eq!(
        agent.ask(&lookup(Lookup::GroupsOfUser("alice".into()))),
        LocalResponse::Groups(vec![OPS_GID])
    );
    assert_eq!(
        agent.ask(&lookup(Lookup::UserByName("bob".into()))),
        LocalResponse::NotFound
    );
    assert_eq!(agent.status().offline.cached_identities, 3);

    kill(replica);
    // Known answers, found or not, still come back; an unknown question has no answer.
    assert_eq!(
        agent.ask(&lookup(Lookup::UserByName("alice".into()))),
        LocalResponse::User(alice)
    );
    assert_eq!(
        agent.ask(&lookup(Lookup::UserByName("bob".into()))),
        LocalResponse::NotFound
    );
    let never_asked = agent.ask(&lookup(Lookup::UserByUid(4242)));
    assert!(
        is_error(&never_asked, LocalErrorKind::NoServerReachable),
        "{never_asked:?}"
    );
    let status = agent.status();
    assert_eq!(status.offline.identity_answers, 2);
    assert!(status.offline.last.is_some());
    assert!(agent
        .log()
        .contains("offline answer (no server reachable): identity"));
}

#[test]
fn a_fresh_cache_answers_without_any_server() {
    let (replica, agent) = setup("");
    let first = agent.ask(&lookup(Lookup::GroupByGid(OPS_GID)));
    assert!(
        matches!(first, LocalResponse::Group(ref g) if g.members == ["alice"]),
        "{first:?}"
    );
    kill(replica);
    // Within the 300 s TTL: a cache hit, not an offline answer.
    assert_eq!(agent.ask(&lookup(Lookup::GroupByGid(OPS_GID))), first);
    assert_eq!(agent.status().offline.identity_answers, 0);
}

#[test]
fn decisions_are_answered_offline_only_when_young_enough() {
    let (replica, agent) = setup("");
    let online = agent.ask(&ssh_alice());
    assert!(matches!(online, LocalResponse::Allow { .. }), "{online:?}");
    // A wrong password from a live server is final, whatever the offline settings.
    assert!(matches!(
        agent.ask(&authenticate("wrong")),
        LocalResponse::AuthFail { ref server } if !server.contains("offline")
    ));
    kill(replica);
    match agent.ask(&ssh_alice()) {
        LocalResponse::Allow { route, server } => {
            assert_eq!(route, "SSH:*->alice@web*");
            assert!(server.starts_with("offline cache ("), "{server}");
        }
        other => panic!("{other:?}"),
    }
    let other_from = LocalRequest::Authorize {
        method: Method::Ssh,
        from_host: "10.9.9.9".into(),
        from_user: "alice".into(),
        to_user: "alice".into(),
        to_host: String::new(),
    };
    assert!(is_error(
        &agent.ask(&other_from),
        LocalErrorKind::NoServerReachable
    ));
    // Passwords stay off by default.
    assert!(is_error(
        &agent.ask(&authenticate(ALICE_PASSWORD)),
        LocalErrorKind::NoServerReachable
    ));
    assert_eq!(agent.status().offline.authorize_answers, 1);

    let (replica, agent) = setup("offline: (authorize_max_age_s: 0)");
    assert!(matches!(
        agent.ask(&ssh_alice()),
        LocalResponse::Allow { .. }
    ));
    kill(replica);
    assert!(is_error(
        &agent.ask(&ssh_alice()),
        LocalErrorKind::NoServerReachable
    ));
}

#[test]
fn passwords_are_checked_offline_against_the_last_online_login_when_enabled() {
    let delay = Duration::from_millis(400);
    let (replica, agent) = setup("offline: (passwords: true, failure_delay_ms: 400)");
    let log_in_online = || {
        assert!(matches!(
            agent.ask(&authenticate(ALICE_PASSWORD)),
            LocalResponse::AuthOk { ref server } if !server.contains("offline")
        ));
        // The verifier is made on the agent's verifier thread after the answer.
        let start = Instant::now();
        while agent.status().offline.cached_verifiers == 0 {
            assert!(
                start.elapsed() < WAIT_LIMIT,
                "no verifier stored: {}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    log_in_online();
    // A live server's refusal says no more than "failed" (a typo, a lock, a changed
    // password): the verifier goes, so none of those can log in offline later.
    assert!(matches!(
        agent.ask(&authenticate("typo")),
        LocalResponse::AuthFail { ref server } if !server.contains("offline")
    ));
    assert_eq!(agent.status().offline.cached_verifiers, 0);
    // The next online success makes a new one.
    log_in_online();
    kill(replica);
    match agent.ask(&authenticate(ALICE_PASSWORD)) {
        LocalResponse::AuthOk { server } => assert!(server.starts_with("offline cache")),
        other => panic!("{other:?}: {}", agent.log()),
    }
    let start = Instant::now();
    assert!(matches!(
        agent.ask(&authenticate("guess")),
        LocalResponse::AuthFail { .. }
    ));
    assert!(
        start.elapsed() >= delay,
        "answered after {:?}",
        start.elapsed()
    );
    let status = agent.status();
    assert_eq!(status.offline.authenticate_answers, 2);
    assert!(status.offline.passwords);
    assert!(
        !agent.log().contains(ALICE_PASSWORD),
        "a password reached the log"
    );
}

#[test]
fn an_expired_password_is_told_online_and_never_accepted_offline() {
    let (mut db, hosts) = test_database(1);
    db.password_records
        .push(gatehouse_common::policy::PasswordRecord {
            user: "alice".into(),
            set_at: Some("1999-10-01T00:00:00Z".into()),
            expires: Some("2000-01-01T00:00:00Z".into()),
            warn_from: None,
            history: Vec::new(),
        });
    let replica = start_replica(&db, "()");
    let agent = Agentd::start(
        hosts.last().unwrap(),
        &[replica.addr],
        "offline: (passwords: true, failure_delay_ms: 400)",
    );
    match agent.ask(&authenticate(ALICE_PASSWORD)) {
        LocalResponse::AuthOkAging { aging, server } => {
            assert_eq!(aging, gatehouse_local::PasswordAging::Expired);
            assert!(!server.contains("offline"), "{server}");
        }
        other => panic!("{other:?}: {}", agent.log()),
    }
    // A wrong password is the one failure, expired account or not.
    assert!(matches!(
        agent.ask(&authenticate("wrong")),
        LocalResponse::AuthFail { .. }
    ));
    assert_eq!(agent.status().offline.cached_verifiers, 0);
    kill(replica);
    // No verifier was made from the expired password: offline it gets no answer.
    assert!(is_error(
        &agent.ask(&authenticate(ALICE_PASSWORD)),
        LocalErrorKind::NoServerReachable
    ));
}
