//! The engine under real faults, on the manual clock: a connection that goes silent, a server
//! whose TCP is blocked while its probes are answered, every server like that, switching with
//! hysteresis, and a hedged authorize. Exact instants, seeded RNGs.

use super::*;
use gatehouse_common::wire::AuthenticateRequest;

const MS: Duration = Duration::from_millis(1);

fn password() -> Request {
    Request::Authenticate(AuthenticateRequest {
        user: "alice".into(),
        password: "secret".into(),
        host: "web1".into(),
    })
}

/// Delivers what the engine wrote; the requests the servers got.
fn sent(sim: &mut Sim) -> Vec<(ConnId, u32, Request)> {
    let out = sim.drain();
    sim.pump(&out)
}

/// A connected ordered engine on server 0 whose answers have taken `answer` each (three
/// answered requests), with hedging set by `hedge`.
fn warmed(servers: usize, answer: Duration, hedge: bool, seed: u64) -> (Sim, ConnId) {
    let mut c = config(servers, Balancing::Ordered);
    if !hedge {
        c.failover.hedge = None;
    }
    let mut sim = Sim::with_config(c, seed);
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let (conn, server) = connects(&sim.drain())[0];
    assert_eq!(server, 0);
    let mut id = establish(&mut sim, conn, server);
    for _ in 0..3 {
        sim.sleep(answer);
        sim.respond(conn, id, allow());
        sim.engine.submit(sim.now, ssh(), &mut sim.rng);
        id = sent(&mut sim)[0].1;
    }
    sim.sleep(answer);
    sim.respond(conn, id, allow());
    assert_eq!(done(&sim.drain()).len(), 1);
    (sim, conn)
}

/// One password check on `conn`, answered after `took`.
fn check_password(sim: &mut Sim, conn: ConnId, took: Duration) {
    sim.engine.submit(sim.now, password(), &mut sim.rng);
    let id = sent(sim)[0].1;
    sim.sleep(took);
    sim.respond(conn, id, Response::AuthOk);
    sim.drain();
}

#[test]
fn a_silent_connection_has_its_requests_moved_at_the_derived_timeout() {
    // Answers took 40 ms: the response timeout is 3 × 40 = 120 ms (above the 100 ms floor).
    let (mut sim, conn) = warmed(2, 40 * MS, false, 31);
    let start = sim.now;
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    assert_eq!(sent(&mut sim).len(), 1, "sent on the connection");
    assert_eq!(sim.engine.poll_timeout(), Some(start + 120 * MS));
    sim.advance_to(start + 119 * MS);
    assert!(sim.drain().is_empty(), "still waiting at 119 ms");
    // The server went silent (SIGSTOP): at 120 ms the request moves, long before TCP notices.
    sim.advance_to(start + 120 * MS);
    let out = sim.drain();
    assert!(out.contains(&Output::Close { conn }));
    let (conn1, server) = connects(&out)[0];
    assert_eq!(server, 1);
    let id = establish(&mut sim, conn1, server);
    sim.respond(conn1, id, allow());
    let outcome = done(&sim.drain()).remove(0);
    assert_eq!((outcome.result, outcome.server), (Ok(allow()), Some(1)));
    assert_eq!(outcome.latency, 120 * MS);
}

#[test]
fn a_password_check_gets_its_own_longer_timeout() {
    let (mut sim, conn) = warmed(2, MS, false, 32);
    // One password check answered in 90 ms: its class's timeout is 270 ms, authorize's 100.
    check_password(&mut sim, conn, 90 * MS);
    let start = sim.now;
    sim.engine.submit(sim.now, password(), &mut sim.rng);
    sent(&mut sim);
    assert_eq!(sim.engine.poll_timeout(), Some(start + 270 * MS));
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    sent(&mut sim);
    assert_eq!(sim.engine.poll_timeout(), Some(start + 100 * MS));
}

#[test]
fn a_probe_reply_does_not_clear_a_connect_failure() {
    let mut sim = Sim::new(2, Balancing::Probing, 33);
    let t0 = sim.now;
    // Server 0 looks far better by its probe, but its TCP is blocked: its connect hangs, the
    // second attempt (after 250 ms) reaches server 1.
    let waits = [Some(100), Some(100_000)];
    let (conn0, server) = probe_and_connect(&mut sim, &waits);
    assert_eq!(server, 0);
    sim.advance_to(t0 + 250 * MS);
    let (conn1, server) = connects(&sim.drain())[0];
    assert_eq!(server, 1);
    let id = establish(&mut sim, conn1, 1);
    sim.respond(conn1, id, allow());
    let _ = conn0;
    assert_eq!(done(&sim.drain())[0].server, Some(1));
    // The next connection: server 0 answers its probe again, with the better estimate, and
    // is still tried only after server 1 (its connect backoff: 1 s).
    let reconnect = |sim: &mut Sim, conn: ConnId| {
        let mut back = Vec::new();
        let (_, session) = sim.sessions.get_mut(&conn).unwrap();
        session.write_goodbye(GoodbyeReason::Reconnect, &mut back);
        sim.engine.handle_data(sim.now, conn, &back, &mut sim.rng);
        sim.drain();
        sim.engine.submit(sim.now, ssh(), &mut sim.rng);
        let out = sim.drain();
        sim.answer_probes(&out, &waits);
        connects(&sim.drain())[0]
    };
    let (conn2, server) = reconnect(&mut sim, conn1);
    assert_eq!(server, 1, "a probe reply did not clear the connect failure");
    assert!(!sim.engine.status(sim.now).servers[0].suspect);
    // After the backoff (1 s) it is on probation: still after server 1 for new connections...
    let id = establish(&mut sim, conn2, 1);
    sim.respond(conn2, id, allow());
    sim.advance_to(t0 + 1250 * MS);
    sim.drain();
    let (conn3, server) = reconnect(&mut sim, conn2);
    assert_eq!(server, 1, "on probation until a connection to it succeeds");
    // ...until one does (here: server 1 refuses, server 0 is tried at once and accepts).
    sim.engine
        .handle_connect_failed(sim.now, conn3, &mut sim.rng);
    let (conn4, server) = connects(&sim.drain())[0];
    assert_eq!(server, 0);
    let id = establish(&mut sim, conn4, 0);
    sim.respond(conn4, id, allow());
    sim.advance_to(t0 + 6500 * MS); // server 1's refusal avoidance (5 s) is over too
    sim.drain();
    let (_, server) = reconnect(&mut sim, conn4);
    assert_eq!(server, 0, "cleared: chosen by its probe again");
}

#[test]
fn when_every_server_drops_tcp_but_answers_probes_the_caller_hears_in_one_pass() {
    let mut sim = Sim::new(4, Balancing::Probing, 34);
    let start = sim.now;
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let out = sim.drain();
    sim.answer_probes(&out, &[Some(1000); 4]);
    // Connects never complete: staggered 250 ms apart over all four servers (the probe round
    // asked three; the fourth is appended), each given 1 s.
    let (outcome, seen) = follow_timers_in_silence(&mut sim, start + Duration::from_secs(5));
    assert_eq!(outcome.result, Err(AgentError::NoServerAcceptsConnections));
    assert_eq!(
        outcome.latency,
        1750 * MS,
        "3 x 250 ms + 1 s, not the 5 s deadline"
    );
    let mut tried: Vec<usize> = connects(&seen).iter().map(|&(_, s)| s).collect();
    tried.sort();
    assert_eq!(tried, vec![0, 1, 2, 3], "each server once");
}

/// Keeps a connected probing agent busy for up to `refreshes` refresh periods, answering
/// every refresh probe with `report(server)`, until it moves; returns where it moved.
fn refresh_for(
    sim: &mut Sim,
    mut conn: ConnId,
    refreshes: usize,
    report: impl Fn(usize) -> Option<LoadReport>,
) -> Vec<usize> {
    let mut moved = Vec::new();
    let mut done_refreshes = 0;
    for _ in 0..refreshes * 20 {
        // One request per turn keeps the connection in use.
        sim.engine.submit(sim.now, ssh(), &mut sim.rng);
        let out = sim.drain();
        for (c, id, _) in sim.pump(&out) {
            sim.respond(c, id, allow());
        }
        let at = sim.engine.poll_timeout().expect("a refresh is always due");
        sim.advance_to(at);
        let out = sim.drain();
        if !probes(&out).is_empty() {
            done_refreshes += 1;
            sim.answer_probes_with(&out, &report);
        }
        let out = sim.drain();
        for (c, server) in connects(&out) {
            moved.push(server);
            establish_successor(sim, c, server);
            conn = c;
        }
        if done_refreshes >= refreshes || !moved.is_empty() {
            break;
        }
    }
    let _ = conn;
    assert!(
        done_refreshes == refreshes || !moved.is_empty(),
        "only {done_refreshes} refreshes"
    );
    moved
}

/// Accepts and handshakes a successor connection; the requests sent on it once it is up
/// (hedged ones).
fn establish_successor(sim: &mut Sim, conn: ConnId, server: usize) -> Vec<(ConnId, u32, Request)> {
    sim.accept(conn, server);
    let hello = sim.drain();
    sim.pump(&hello);
    let rest = sim.drain();
    sim.pump(&rest)
}

fn report(wait_us: u64, connections: u32) -> LoadReport {
    LoadReport {
        recommended_wait_us: wait_us,
        connections,
        ..LoadReport::default()
    }
}

fn connected_prober(seed: u64) -> (Sim, ConnId, usize) {
    let mut c = config(2, Balancing::Probing);
    c.max_connection_age = Duration::from_secs(3600);
    c.idle_close = Duration::from_secs(3600);
    let mut sim = Sim::with_config(c, seed);
    let (conn, server) = probe_and_connect(&mut sim, &[Some(1000), Some(1000)]);
    let id = establish(&mut sim, conn, server);
    sim.respond(conn, id, allow());
    sim.drain();
    (sim, conn, server)
}

#[test]
fn two_equal_servers_keep_their_agents_through_many_refreshes() {
    for seed in 0..20 {
        let (mut sim, conn, _) = connected_prober(100 + seed);
        // Equal, then a little apart (costs 1 and 1.5 ms, 75 and 70 connections): no move.
        let moved = refresh_for(&mut sim, conn, 30, |_| Some(report(1000, 75)));
        assert!(moved.is_empty(), "seed {seed}: flapped to {moved:?}");
        let moved = refresh_for(&mut sim, conn, 30, |s| {
            Some(report(1000 + 500 * s as u64, 75 - 5 * s as u32))
        });
        assert!(moved.is_empty(), "seed {seed}: flapped to {moved:?}");
    }
}

#[test]
fn a_restarted_server_draws_agents_within_a_few_refreshes_and_keeps_them() {
    let mut moved_within_4 = 0;
    for seed in 0..40 {
        let (mut sim, conn, server) = connected_prober(200 + seed);
        let other = 1 - server;
        // The other server just restarted: no connections. Here: 100.
        let counts = move |s: usize| if s == other { 0 } else { 100 };
        let moved = refresh_for(&mut sim, conn, 4, |s| Some(report(1000, counts(s))));
        assert!(moved.iter().all(|&s| s == other), "{moved:?}");
        moved_within_4 += moved.len();
    }
    // Each refresh moves an agent with probability 1/2: within 4 refreshes, 15 in 16.
    assert!(moved_within_4 >= 32, "{moved_within_4} of 40");
}

#[test]
fn a_hedged_authorize_counts_once_and_a_password_check_is_never_sent_twice() {
    // Answers took 1 ms: a late authorize is hedged after 50 ms (the floor; the response
    // timeout is 100 ms).
    let (mut sim, conn0) = warmed(2, MS, true, 35);
    let start = sim.now;
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    sim.engine.submit(sim.now, password(), &mut sim.rng);
    let got0 = sent(&mut sim);
    assert_eq!(got0.len(), 2, "both on server 0");
    assert_eq!(sim.engine.poll_timeout(), Some(start + 50 * MS));
    sim.advance_to(start + 50 * MS);
    let out = sim.drain();
    let (conn1, server) = connects(&out)[0];
    assert_eq!(
        server, 1,
        "the hedge opens a connection to the other server"
    );
    assert!(
        !out.contains(&Output::Close { conn: conn0 }),
        "server 0 is still owed"
    );
    // Once it is up, only the authorize is sent again there.
    let got1 = establish_successor(&mut sim, conn1, 1);
    assert_eq!(got1.len(), 1, "{got1:?}");
    assert!(matches!(got1[0].2, Request::Authorize(_)));
    sim.advance_to(start + 60 * MS);
    sim.respond(conn1, got1[0].1, allow());
    let first = done(&sim.drain());
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].server, first[0].redirects), (Some(1), 1));
    assert_eq!(first[0].latency, 60 * MS);
    // Server 0 wakes up and answers both: the authorize's second answer is dropped, the
    // password check (checked once, on server 0 only) is answered from there.
    sim.advance_to(start + 80 * MS);
    sim.respond(conn0, got0[0].1, allow());
    sim.respond(conn0, got0[1].1, Response::AuthOk);
    let out = sim.drain();
    let second = done(&out);
    assert_eq!(second.len(), 1, "one answer per request: {second:?}");
    assert_eq!(
        (second[0].result.clone(), second[0].server),
        (Ok(Response::AuthOk), Some(0))
    );
    assert!(
        out.contains(&Output::Close { conn: conn0 }),
        "drained, then closed"
    );
}

#[test]
fn a_password_check_on_a_server_gone_silent_moves_when_its_hedged_authorize_proves_it() {
    // Answers took 1 ms; one password check took 400 ms, so its own timeout is 1.2 s.
    let (mut sim, conn0) = warmed(2, MS, true, 36);
    check_password(&mut sim, conn0, 400 * MS);
    // The server goes silent with an authorize and a password check on the wire.
    let start = sim.now;
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    sim.engine.submit(sim.now, password(), &mut sim.rng);
    assert_eq!(sent(&mut sim).len(), 2);
    sim.advance_to(start + 50 * MS);
    let (conn1, _) = connects(&sim.drain())[0];
    let got1 = establish_successor(&mut sim, conn1, 1);
    assert_eq!(got1.len(), 1, "only the authorize is hedged");
    sim.respond(conn1, got1[0].1, allow());
    assert_eq!(done(&sim.drain()).len(), 1);
    // Nothing came on server 0 within the authorize's timeout (100 ms): it is silent, not
    // slow, and the password check moves then, not at its own 1.2 s.
    assert_eq!(sim.engine.poll_timeout(), Some(start + 100 * MS));
    sim.advance_to(start + 100 * MS);
    let out = sim.drain();
    assert!(out.contains(&Output::Close { conn: conn0 }));
    let got = sim.pump(&out);
    assert_eq!(got.len(), 1);
    assert!(matches!(got[0].2, Request::Authenticate(_)));
    sim.respond(conn1, got[0].1, Response::AuthOk);
    let outcome = done(&sim.drain()).remove(0);
    assert_eq!((outcome.server, outcome.latency), (Some(1), 100 * MS));
}

#[test]
fn a_password_change_is_never_sent_twice_when_its_connection_goes() {
    use gatehouse_common::wire::ChangePasswordRequest;
    let change = || {
        Request::ChangePassword(ChangePasswordRequest {
            user: "alice".into(),
            old_password: "old".into(),
            new_password: "a new one".into(),
            host: "web1".into(),
        })
    };
    // Silent after sending: the connection is dropped at the timeout, and the change ends
    // there (it may have been applied) while an authorize sent with it moves on.
    let (mut sim, conn) = warmed(2, MS, false, 37);
    sim.engine.submit(sim.now, change(), &mut sim.rng);
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    assert_eq!(sent(&mut sim).len(), 2);
    let deadline = sim.engine.poll_timeout().unwrap();
    sim.advance_to(deadline);
    let out = sim.drain();
    assert!(out.contains(&Output::Close { conn }));
    let lost = done(&out);
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].result, Err(AgentError::LostAfterSending));
    assert!(matches!(lost[0].request, Some(Request::ChangePassword(_))));
    let (conn1, server) = connects(&out)[0];
    let id = establish(&mut sim, conn1, server);
    sim.respond(conn1, id, allow());
    assert_eq!(
        done(&sim.drain()).len(),
        1,
        "only the authorize was sent again"
    );
    // Closed by the server after sending: the same.
    let (mut sim, conn) = warmed(2, MS, false, 38);
    sim.engine.submit(sim.now, change(), &mut sim.rng);
    assert_eq!(sent(&mut sim).len(), 1);
    sim.engine.handle_closed(sim.now, conn, &mut sim.rng);
    let lost = done(&sim.drain());
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].result, Err(AgentError::LostAfterSending));
}

#[test]
fn a_password_change_waits_for_the_master_longer_than_a_password_check_would() {
    use crate::latency::CHANGE_ANSWER_TIMEOUT;
    use gatehouse_common::wire::{ChangeOutcome, ChangePasswordRequest};
    // Password checks answered in 1 ms: their timeout is the 100 ms floor.
    let (mut sim, conn) = warmed(2, MS, false, 39);
    check_password(&mut sim, conn, MS);
    let start = sim.now;
    sim.engine.submit(
        sim.now,
        Request::ChangePassword(ChangePasswordRequest {
            user: "alice".into(),
            old_password: "old".into(),
            new_password: "a new one".into(),
            host: "web1".into(),
        }),
        &mut sim.rng,
    );
    let id = sent(&mut sim)[0].1;
    // The change's own timeout, not the checks': the master may take seconds.
    assert_eq!(
        sim.engine.poll_timeout(),
        Some(start + CHANGE_ANSWER_TIMEOUT)
    );
    sim.advance_to(start + 3000 * MS);
    assert!(sim.drain().is_empty(), "still waiting after 3 s");
    sim.respond(conn, id, Response::PasswordChange(ChangeOutcome::Changed));
    let outcome = done(&sim.drain()).remove(0);
    assert_eq!(
        outcome.result,
        Ok(Response::PasswordChange(ChangeOutcome::Changed))
    );
}
