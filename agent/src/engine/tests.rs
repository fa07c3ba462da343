//! The engine against simulated servers (the real `ServerSession`), a manual clock and a
//! seeded RNG: every test is exact and replays the same way each run.

use super::*;
use crate::balance::Balancing;
use gatehouse_common::crypto::probe_auth::{open_probe, seal_reply};
use gatehouse_common::nodekeys::NodeKeyMap;
use gatehouse_common::session::{ServerInput, ServerSession};
use gatehouse_common::types::{ErrorCode, GoodbyeReason, Method};
use gatehouse_common::wire::frame::{decode_frame, FRAME_HEADER_LEN, MAX_FRAME_LEN};
use gatehouse_common::wire::{AuthorizeRequest, ProbeReply, Request, Response};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;

const KEY: NodeKey = NodeKey([3; 32]);

fn config(servers: usize, balancing: Balancing) -> EngineConfig {
    EngineConfig::with_defaults("web1", KEY, servers, balancing)
}

fn ssh() -> Request {
    Request::Authorize(AuthorizeRequest {
        method: Method::Ssh,
        from_host: "10.0.0.1".into(),
        from_user: "alice".into(),
        to_user: "alice".into(),
        to_host: "web1".into(),
    })
}

fn load(wait_us: u64) -> LoadReport {
    LoadReport {
        recommended_wait_us: wait_us,
        ..LoadReport::default()
    }
}

/// A manual clock, an RNG, the engine, and one server session per open connection.
struct Sim {
    now: Instant,
    rng: StdRng,
    engine: Engine,
    sessions: HashMap<ConnId, (usize, ServerSession)>,
    keys: NodeKeyMap,
    /// Outputs not yet looked at by the test.
    pending: Vec<Output>,
}

impl Sim {
    fn new(servers: usize, balancing: Balancing, seed: u64) -> Self {
        Self::with_config(config(servers, balancing), seed)
    }

    fn with_config(config: EngineConfig, seed: u64) -> Self {
        Sim {
            now: Instant::now(),
            rng: StdRng::seed_from_u64(seed),
            engine: Engine::new(config),
            sessions: HashMap::new(),
            keys: NodeKeyMap::from([("web1".to_string(), KEY)]),
            pending: Vec::new(),
        }
    }

    fn drain(&mut self) -> Vec<Output> {
        let mut out = std::mem::take(&mut self.pending);
        while let Some(o) = self.engine.poll_output() {
            out.push(o);
        }
        out
    }

    fn advance_to(&mut self, at: Instant) {
        self.now = at;
        self.engine.handle_timeout(self.now, &mut self.rng);
    }

    fn sleep(&mut self, d: Duration) {
        let at = self.now + d;
        self.advance_to(at);
    }

    /// Answers every probe in `outputs` with the given waits (None: stay silent).
    fn answer_probes(&mut self, outputs: &[Output], waits: &[Option<u64>]) {
        self.answer_probes_with(outputs, |server| waits[server].map(load));
    }

    /// Answers every probe in `outputs` with `report(server)` (None: stay silent).
    fn answer_probes_with(
        &mut self,
        outputs: &[Output],
        report: impl Fn(usize) -> Option<LoadReport>,
    ) {
        for o in outputs {
            if let Output::SendProbe {
                server, datagram, ..
            } = o
            {
                let (probe, key) = open_probe(datagram, |h| self.keys.get(h).cloned()).unwrap();
                if let Some(load) = report(*server) {
                    let reply = seal_reply(
                        &key,
                        &ProbeReply {
                            probe_id: probe.probe_id,
                            load,
                        },
                    );
                    self.engine
                        .handle_probe_reply(self.now, *server, &reply, &mut self.rng);
                }
            }
        }
    }

    /// Accepts a connect: the engine gets `handle_connected` and a server session is ready.
    fn accept(&mut self, conn: ConnId, server: usize) {
        // A server on this machine, as in production: the engine offers what this machine
        // prefers, so the connection uses AES-256-GCM exactly where it has AES hardware.
        let session = ServerSession::new(gatehouse_common::crypto::aes_hardware());
        self.sessions.insert(conn, (server, session));
        self.engine.handle_connected(self.now, conn, &mut self.rng);
    }

    /// Delivers what the engine sent on `conn` to its server session and returns the
    /// requests the server received; handshake replies go straight back.
    fn deliver(&mut self, conn: ConnId, mut bytes: &[u8]) -> Vec<(u32, Request)> {
        let mut requests = Vec::new();
        let mut back = Vec::new();
        let (_, session) = self.sessions.get_mut(&conn).expect("session");
        while let Some((consumed, _)) = decode_frame(bytes, MAX_FRAME_LEN).unwrap() {
            let mut frame = bytes[FRAME_HEADER_LEN..consumed].to_vec();
            match session
                .handle_frame(&mut frame, &self.keys, &mut self.rng, &mut back)
                .unwrap()
            {
                ServerInput::Request { id, body } => requests.push((id, body.into_owned())),
                ServerInput::Progress | ServerInput::Established => {}
                ServerInput::Replication(_) => panic!("agents never send replication messages"),
            }
            bytes = &bytes[consumed..];
        }
        if !back.is_empty() {
            self.engine
                .handle_data(self.now, conn, &back, &mut self.rng);
        }
        requests
    }

    /// Runs every `Send` in `outputs` through the servers; returns the requests they got.
    fn pump(&mut self, outputs: &[Output]) -> Vec<(ConnId, u32, Request)> {
        let mut got = Vec::new();
        for o in outputs {
            if let Output::Send { conn, bytes } = o {
                if self.sessions.contains_key(conn) {
                    got.extend(
                        self.deliver(*conn, bytes)
                            .into_iter()
                            .map(|(id, r)| (*conn, id, r)),
                    );
                }
            }
        }
        got
    }

    fn respond(&mut self, conn: ConnId, id: u32, response: Response) {
        let mut back = Vec::new();
        let (_, session) = self.sessions.get_mut(&conn).unwrap();
        session.write_response(id, response, &mut back).unwrap();
        self.engine
            .handle_data(self.now, conn, &back, &mut self.rng);
    }
}

fn connects(outputs: &[Output]) -> Vec<(ConnId, usize)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Connect { conn, server, .. } => Some((*conn, *server)),
            _ => None,
        })
        .collect()
}

fn probes(outputs: &[Output]) -> Vec<usize> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::SendProbe { server, .. } => Some(*server),
            _ => None,
        })
        .collect()
}

fn done(outputs: &[Output]) -> Vec<Outcome> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Done { outcome, .. } => Some(outcome.clone()),
            _ => None,
        })
        .collect()
}

fn allow() -> Response {
    Response::Allow {
        route: "SSH:*->alice@web*".into(),
    }
}

/// Submits, answers probes with `waits`, and returns the first connect the engine asks for.
fn probe_and_connect(sim: &mut Sim, waits: &[Option<u64>]) -> (ConnId, usize) {
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let out = sim.drain();
    assert_eq!(
        probes(&out),
        (0..waits.len()).collect::<Vec<_>>(),
        "probes every server"
    );
    sim.answer_probes(&out, waits);
    let out = sim.drain();
    connects(&out)[0]
}

/// Connects, handshakes and returns the request the server got.
fn establish(sim: &mut Sim, conn: ConnId, server: usize) -> u32 {
    sim.accept(conn, server);
    let hello = sim.drain();
    let finish_and_request = {
        sim.pump(&hello);
        sim.drain()
    };
    let got = sim.pump(&finish_and_request);
    assert_eq!(got.len(), 1, "the request follows the handshake");
    got[0].1
}

#[test]
fn a_request_goes_to_a_probed_server_and_is_answered() {
    let mut sim = Sim::new(3, Balancing::Probing, 1);
    let (conn, server) = probe_and_connect(&mut sim, &[Some(1000), Some(1000), Some(1000)]);
    let id = establish(&mut sim, conn, server);
    sim.respond(conn, id, allow());
    let outcome = done(&sim.drain()).remove(0);
    assert_eq!(outcome.result, Ok(allow()));
    assert_eq!(outcome.server, Some(server));
    assert_eq!(outcome.redirects, 0);
    assert_eq!(outcome.request, Some(ssh()), "handed back for reuse");
}

#[test]
fn the_next_requests_are_written_into_the_buffer_the_shell_handed_back() {
    let mut sim = Sim::new(1, Balancing::Probing, 1);
    let (conn, server) = probe_and_connect(&mut sim, &[Some(1000)]);
    let id = establish(&mut sim, conn, server);
    sim.respond(conn, id, allow());
    sim.drain();
    // The shell wrote the last bytes and hands their buffer back (4096 B: recognisable).
    sim.engine.recycle_send_buffer(Vec::with_capacity(4096));
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let out = sim.drain();
    let sent: Vec<&Vec<u8>> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send { bytes, .. } => Some(bytes),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 1, "the request goes out on the open connection");
    assert_eq!(sent[0].capacity(), 4096, "no new allocation");
    assert_eq!(sim.pump(&out).len(), 1, "and it is a whole, valid request");
}

#[test]
fn a_buffer_handed_back_over_the_limit_is_dropped_not_kept() {
    let mut sim = Sim::new(1, Balancing::Probing, 1);
    let (conn, server) = probe_and_connect(&mut sim, &[Some(1000)]);
    let id = establish(&mut sim, conn, server);
    sim.respond(conn, id, allow());
    sim.drain();
    sim.engine
        .recycle_send_buffer(Vec::with_capacity(super::MAX_SPARE_SEND_BUFFER + 1));
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let out = sim.drain();
    let capacity = out.iter().find_map(|o| match o {
        Output::Send { bytes, .. } => Some(bytes.capacity()),
        _ => None,
    });
    assert!(
        capacity.is_some_and(|c| c < super::MAX_SPARE_SEND_BUFFER),
        "a fresh small buffer, not the 64 KiB one: {capacity:?}"
    );
}

#[test]
fn the_choice_follows_inverse_estimated_wait() {
    // Server 0 reports 1 ms, server 1 reports 9 ms, server 2 stays silent: over many seeded
    // rounds, server 0 gets ~90 % of first choices, server 1 ~10 %, server 2 none.
    let mut firsts = [0usize; 3];
    for seed in 0..400 {
        let mut sim = Sim::new(3, Balancing::Probing, seed);
        let (_, server) = probe_and_connect(&mut sim, &[Some(1000), Some(9000), None]);
        firsts[server] += 1;
    }
    assert_eq!(firsts[2], 0, "a silent server is only a last resort");
    assert!((340..=380).contains(&firsts[0]), "{firsts:?}");
}

#[test]
fn busy_redirects_to_the_next_candidate_without_a_new_probe_round() {
    let mut sim = Sim::new(3, Balancing::Probing, 2);
    let (conn, server) = probe_and_connect(&mut sim, &[Some(1000), Some(2000), Some(3000)]);
    let id = establish(&mut sim, conn, server);
    let mut busy = gatehouse_common::wire::WireError::new(ErrorCode::Busy, "busy, go elsewhere");
    busy.estimate_us = 2_000_000;
    sim.respond(conn, id, Response::Error(busy));
    assert_redirected_within_the_round(&mut sim, conn, server);
}

/// After the server on `conn` sent the agent elsewhere: that connection is closed, the next
/// candidate of the same probe round is connected without probing again, and the request is
/// answered there, counted as one redirect and otherwise invisible to the caller.
fn assert_redirected_within_the_round(sim: &mut Sim, conn: ConnId, server: usize) {
    let out = sim.drain();
    assert!(
        out.contains(&Output::Close { conn }),
        "closes that connection"
    );
    assert!(probes(&out).is_empty(), "uses the same round's candidates");
    let (conn2, server2) = connects(&out)[0];
    assert_ne!(server2, server);
    let id = establish(sim, conn2, server2);
    sim.respond(conn2, id, allow());
    let outcome = done(&sim.drain()).remove(0);
    assert_eq!(
        outcome.result,
        Ok(allow()),
        "the caller sees only the answer"
    );
    assert_eq!((outcome.server, outcome.redirects), (Some(server2), 1));
}

#[test]
fn too_many_connections_redirects_and_the_full_server_is_avoided_for_a_while() {
    let mut sim = Sim::new(3, Balancing::Probing, 23);
    let (conn, server) = probe_and_connect(&mut sim, &[Some(1000), Some(2000), Some(3000)]);
    sim.accept(conn, server);
    // The hello goes out; a replica at its connection cap answers it in plaintext and closes.
    sim.drain();
    let full = gatehouse_common::wire::WireError::new(
        ErrorCode::TooManyConnections,
        "too many connections (cap 5), go elsewhere",
    );
    let mut frame = Vec::new();
    gatehouse_common::session::write_plain_error(&full, &mut frame);
    sim.engine.handle_data(sim.now, conn, &frame, &mut sim.rng);
    assert_redirected_within_the_round(&mut sim, conn, server);
    // The full server is avoided for `avoid_ms` (5 s), then eligible again.
    let avoided = |sim: &Sim| sim.engine.status(sim.now).servers[server].avoided;
    assert!(avoided(&sim));
    sim.sleep(Duration::from_millis(4999));
    assert!(avoided(&sim));
    sim.sleep(Duration::from_millis(1));
    assert!(!avoided(&sim));
}

#[test]
fn a_second_attempt_starts_after_250_ms_and_the_first_to_connect_wins() {
    let mut sim = Sim::new(2, Balancing::Ordered, 3);
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let out = sim.drain();
    assert!(probes(&out).is_empty(), "ordered mode sends no probes");
    assert_eq!(connects(&out).len(), 1);
    let (first, s0) = connects(&out)[0];
    assert_eq!(s0, 0, "list order");
    assert_eq!(
        sim.engine.poll_timeout(),
        Some(sim.now + Duration::from_millis(250))
    );
    sim.sleep(Duration::from_millis(250));
    let out = sim.drain();
    let (second, s1) = connects(&out)[0];
    assert_eq!(s1, 1);
    sim.accept(second, s1);
    let out = sim.drain();
    assert!(
        out.contains(&Output::Close { conn: first }),
        "the slower attempt is abandoned"
    );
}

#[test]
fn a_refused_connect_fails_over_at_once() {
    let mut sim = Sim::new(2, Balancing::Ordered, 4);
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let (first, _) = connects(&sim.drain())[0];
    sim.engine
        .handle_connect_failed(sim.now, first, &mut sim.rng);
    let out = sim.drain();
    assert_eq!(
        connects(&out).iter().map(|c| c.1).collect::<Vec<_>>(),
        vec![1],
        "no 250 ms wait"
    );
}

#[test]
fn a_server_killed_mid_request_loses_nothing() {
    let mut sim = Sim::new(2, Balancing::Ordered, 5);
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let (conn, server) = connects(&sim.drain())[0];
    establish(&mut sim, conn, server);
    // The server dies with the request in flight.
    sim.engine.handle_closed(sim.now, conn, &mut sim.rng);
    let out = sim.drain();
    let (conn2, server2) = connects(&out)[0];
    assert_eq!(server2, 1);
    let id = establish(&mut sim, conn2, server2);
    sim.respond(conn2, id, allow());
    assert_eq!(done(&sim.drain())[0].result, Ok(allow()));
}

/// Follows the engine's timers while nothing ever answers (no probe replies, connects that
/// hang) until the submitted request ends; returns its outcome and every output seen.
/// Asserts that no timer is set past `deadline`.
fn follow_timers_in_silence(sim: &mut Sim, deadline: Instant) -> (Outcome, Vec<Output>) {
    let mut seen = Vec::new();
    for _ in 0..1000 {
        let out = sim.drain();
        seen.extend(out.iter().cloned());
        if let Some(o) = done(&out).pop() {
            return (o, seen);
        }
        let at = sim
            .engine
            .poll_timeout()
            .expect("a timer while a request waits");
        assert!(at <= deadline, "no timer past the deadline");
        sim.advance_to(at);
    }
    panic!("the request never ended");
}

#[test]
fn when_nothing_answers_the_caller_hears_before_the_deadline_and_retries_spread() {
    let mut sim = Sim::new(3, Balancing::Probing, 6);
    let start = sim.now;
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let (outcome, seen) = follow_timers_in_silence(&mut sim, start + Duration::from_secs(5));
    assert_eq!(outcome.result, Err(AgentError::NoServerReachable));
    // One probe round (150 ms), then connects staggered by 250 ms, each given 1 s: the last
    // gives up at 150 + 2 × 250 + 1000 ms. Every server was tried once, nothing repeated.
    assert_eq!(outcome.latency, Duration::from_millis(1650));
    assert_eq!(probes(&seen).len(), 3, "one probe round");
    let mut tried: Vec<usize> = connects(&seen).iter().map(|&(_, s)| s).collect();
    tried.sort();
    assert_eq!(tried, vec![0, 1, 2], "each server tried once");
    // The agent keeps trying in the background, after a jittered backoff (gRPC: 1 s ± 20 %).
    let retry = sim
        .engine
        .poll_timeout()
        .expect("a background retry is scheduled");
    let delay = retry - sim.now;
    assert!(
        delay >= Duration::from_millis(800) && delay <= Duration::from_millis(1200),
        "{delay:?}"
    );
    sim.advance_to(retry);
    assert_eq!(probes(&sim.drain()).len(), 3, "background probes");
}

#[test]
fn a_deadline_shorter_than_one_try_still_says_no_server_is_reachable() {
    let mut config = config(2, Balancing::Ordered);
    config.request_deadline = Duration::from_millis(600);
    let mut sim = Sim::with_config(config, 21);
    let start = sim.now;
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let (outcome, _) = follow_timers_in_silence(&mut sim, start + Duration::from_millis(600));
    // Time ran out with both connects still hanging: nothing ever answered, so the caller is
    // told that, not only that time ran out.
    assert_eq!(outcome.result, Err(AgentError::NoServerReachable));
    assert_eq!(outcome.latency, Duration::from_millis(600));
}

#[test]
fn a_server_that_accepted_but_never_answered_ends_in_deadline_exceeded() {
    let mut config = config(1, Balancing::Ordered);
    config.request_deadline = Duration::from_millis(1500);
    let mut sim = Sim::with_config(config, 22);
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let (conn, server) = connects(&sim.drain())[0];
    establish(&mut sim, conn, server);
    // The server took the connection and the request, then went quiet (SIGSTOPped).
    sim.sleep(Duration::from_millis(1500));
    let outcome = done(&sim.drain()).remove(0);
    assert_eq!(outcome.result, Err(AgentError::DeadlineExceeded));
}

#[test]
fn an_idle_connection_is_closed_after_10_s_and_an_old_one_is_retired() {
    let mut sim = Sim::new(1, Balancing::Ordered, 7);
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let (conn, server) = connects(&sim.drain())[0];
    let id = establish(&mut sim, conn, server);
    sim.respond(conn, id, allow());
    sim.drain();
    assert_eq!(
        sim.engine.poll_timeout(),
        Some(sim.now + Duration::from_secs(10))
    );
    sim.sleep(Duration::from_secs(10));
    assert!(sim.drain().contains(&Output::Close { conn }));
}

#[test]
fn a_goodbye_reconnect_makes_the_next_request_re_probe() {
    let mut sim = Sim::new(2, Balancing::Probing, 8);
    let (conn, server) = probe_and_connect(&mut sim, &[Some(1000), Some(1000)]);
    let id = establish(&mut sim, conn, server);
    sim.respond(conn, id, allow());
    sim.drain();
    let mut back = Vec::new();
    sim.sessions
        .get_mut(&conn)
        .unwrap()
        .1
        .write_goodbye(GoodbyeReason::Reconnect, &mut back);
    sim.engine.handle_data(sim.now, conn, &back, &mut sim.rng);
    assert!(sim.drain().contains(&Output::Close { conn }));
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    assert_eq!(probes(&sim.drain()).len(), 2, "a new probe round");
}

#[test]
fn a_stalled_server_is_abandoned_after_the_response_timeout() {
    let mut sim = Sim::new(2, Balancing::Ordered, 9);
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let (conn, server) = connects(&sim.drain())[0];
    establish(&mut sim, conn, server);
    // SIGSTOPped server: accepts, never answers.
    sim.sleep(Duration::from_secs(2));
    let out = sim.drain();
    assert!(out.contains(&Output::Close { conn }));
    assert_eq!(connects(&out)[0].1, 1, "fails over to the other server");
}

/// Submits on a probing engine whose probes all go unanswered, lets the round end, and fails
/// every connect the engine asks for (refused), until the request ends or `limit` connects.
/// Returns the outputs seen and the number of probes sent.
fn refuse_everything(sim: &mut Sim, limit: usize) -> (Vec<Output>, usize) {
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let mut seen = sim.drain();
    let mut probes_sent = probes(&seen).len();
    sim.sleep(Duration::from_millis(150));
    for _ in 0..limit {
        let out = sim.drain();
        probes_sent += probes(&out).len();
        let connects = connects(&out);
        seen.extend(out);
        if !done(&seen).is_empty() {
            break;
        }
        match connects.first() {
            Some(&(conn, _)) => sim
                .engine
                .handle_connect_failed(sim.now, conn, &mut sim.rng),
            None => {
                let at = sim
                    .engine
                    .poll_timeout()
                    .expect("a timer while a request waits");
                sim.advance_to(at);
            }
        }
    }
    (seen, probes_sent)
}

#[test]
fn when_every_server_refuses_and_none_answers_probes_the_request_fails_at_once() {
    let mut sim = Sim::new(3, Balancing::Probing, 11);
    let (seen, probes_sent) = refuse_everything(&mut sim, 20);
    assert_eq!(connects(&seen).len(), 3, "each server is tried once");
    assert_eq!(probes_sent, 3, "one probe round, not one per try");
    let outcome = done(&seen).remove(0);
    assert_eq!(outcome.result, Err(AgentError::NoServerReachable));
    // The probe round's 150 ms, then three refusals at once: not 8 rounds (~1.4 s).
    assert_eq!(outcome.latency, Duration::from_millis(150));
    // The background retry takes over, spread by the backoff's jitter (1 s ± 20 %).
    let retry = sim.engine.poll_timeout().expect("a background retry");
    let delay = retry - sim.now;
    assert!(delay >= Duration::from_millis(800) && delay <= Duration::from_millis(1200));
}

#[test]
fn in_ordered_mode_refusals_everywhere_fail_after_one_pass() {
    let mut sim = Sim::new(2, Balancing::Ordered, 12);
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let mut seen = Vec::new();
    for _ in 0..20 {
        let out = sim.drain();
        let next = connects(&out).first().copied();
        seen.extend(out);
        match next {
            Some((conn, _)) => sim
                .engine
                .handle_connect_failed(sim.now, conn, &mut sim.rng),
            None => break,
        }
    }
    assert_eq!(connects(&seen).len(), 2);
    let outcome = done(&seen).remove(0);
    assert_eq!(outcome.result, Err(AgentError::NoServerReachable));
    assert_eq!(outcome.latency, Duration::ZERO);
}

/// Servers that answer probes but refuse every connect: after one pass over all of them the
/// caller hears "no server accepts connections", not a retry loop to the deadline.
#[test]
fn refusals_everywhere_while_probes_are_answered_end_after_one_pass() {
    let mut sim = Sim::new(2, Balancing::Probing, 13);
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let out = sim.drain();
    // Server 0 answers its probe (it is alive), yet both refuse the connect.
    sim.answer_probes(&out, &[Some(1000), None]);
    sim.sleep(Duration::from_millis(150));
    let mut out = sim.drain();
    for _ in 0..2 {
        let (conn, _) = connects(&out)[0];
        sim.engine
            .handle_connect_failed(sim.now, conn, &mut sim.rng);
        out = sim.drain();
    }
    let outcome = done(&out).remove(0);
    assert_eq!(outcome.result, Err(AgentError::NoServerAcceptsConnections));
    assert_eq!(outcome.latency, Duration::from_millis(150));
    assert!(probes(&out).is_empty(), "no new round");
}

#[test]
fn a_request_that_cannot_be_encoded_fails_at_once_and_the_connection_keeps_serving() {
    let mut sim = Sim::new(1, Balancing::Ordered, 14);
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let (conn, server) = connects(&sim.drain())[0];
    let id = establish(&mut sim, conn, server);
    sim.respond(conn, id, allow());
    assert_eq!(done(&sim.drain())[0].result, Ok(allow()));
    // A user name over the wire limit (255 bytes), then a good request.
    let Request::Authorize(mut bad) = ssh() else {
        unreachable!()
    };
    bad.from_user = "x".repeat(300);
    sim.engine
        .submit(sim.now, Request::Authorize(bad), &mut sim.rng);
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let out = sim.drain();
    let outcomes = done(&out);
    assert_eq!(outcomes.len(), 1);
    match &outcomes[0].result {
        Err(AgentError::Refused(e)) => {
            assert_eq!(e.code, ErrorCode::Malformed);
            assert!(e.message.contains("from_user"), "{}", e.message);
        }
        other => panic!("expected a Malformed refusal, got {other:?}"),
    }
    assert_eq!(outcomes[0].latency, Duration::ZERO);
    assert!(
        !out.contains(&Output::Close { conn }),
        "the connection stays"
    );
    assert_eq!(
        sim.engine.status(sim.now).in_flight,
        1,
        "only the good one is on the wire"
    );
    let got = sim.pump(&out);
    assert_eq!(got.len(), 1);
    sim.respond(conn, got[0].1, allow());
    assert_eq!(done(&sim.drain())[0].result, Ok(allow()));
    assert_eq!(sim.engine.status(sim.now).in_flight, 0);
}

#[test]
fn the_agents_own_age_limit_is_jittered_by_ten_percent() {
    let mut ages = Vec::new();
    for seed in 0..200 {
        let mut c = config(1, Balancing::Ordered);
        c.idle_close = Duration::from_secs(3600); // so the age is the next deadline
        let mut sim = Sim::with_config(c, seed);
        sim.engine.submit(sim.now, ssh(), &mut sim.rng);
        let (conn, server) = connects(&sim.drain())[0];
        let opened = sim.now;
        let id = establish(&mut sim, conn, server);
        sim.respond(conn, id, allow());
        sim.drain();
        let age = sim.engine.poll_timeout().expect("the age deadline") - opened;
        assert!(
            age >= Duration::from_secs(54) && age <= Duration::from_secs(66),
            "{age:?}"
        );
        ages.push(age);
    }
    let (min, max) = (ages.iter().min().unwrap(), ages.iter().max().unwrap());
    assert!(*min < Duration::from_secs(55) && *max > Duration::from_secs(65));
    // And the connection is indeed retired at its own limit.
    let mut c = config(1, Balancing::Ordered);
    c.idle_close = Duration::from_secs(3600);
    let mut sim = Sim::with_config(c, 3);
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let (conn, server) = connects(&sim.drain())[0];
    let id = establish(&mut sim, conn, server);
    sim.respond(conn, id, allow());
    sim.drain();
    let at = sim.engine.poll_timeout().unwrap();
    sim.advance_to(at - Duration::from_millis(1));
    assert!(!sim.drain().contains(&Output::Close { conn }));
    sim.advance_to(at);
    assert!(sim.drain().contains(&Output::Close { conn }));
}

#[test]
fn a_connection_retired_at_its_age_limit_makes_the_next_request_re_probe() {
    let mut c = config(2, Balancing::Probing);
    c.idle_close = Duration::from_secs(3600); // so the age is the next deadline
    let mut sim = Sim::with_config(c, 24);
    let (conn, server) = probe_and_connect(&mut sim, &[Some(1000), Some(1000)]);
    let id = establish(&mut sim, conn, server);
    sim.respond(conn, id, allow());
    sim.drain();
    // Refresh timers come first; an unused connection sends no refresh probe.
    let opened = sim.now;
    for _ in 0..100 {
        let next = sim.engine.poll_timeout().expect("the age deadline");
        sim.advance_to(next);
        let out = sim.drain();
        assert!(
            probes(&out).is_empty(),
            "no refresh of an unused connection"
        );
        if out.contains(&Output::Close { conn }) {
            break;
        }
    }
    let age = sim.now - opened;
    assert!(
        age >= Duration::from_secs(54),
        "retired at its age, not before: {age:?}"
    );
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let out = sim.drain();
    assert_eq!(
        probes(&out),
        vec![0, 1],
        "a new probe round, not the old choice"
    );
    assert!(connects(&out).is_empty(), "no connect before the replies");
}

#[test]
fn in_flight_counts_only_requests_on_the_wire() {
    let mut sim = Sim::new(2, Balancing::Ordered, 15);
    for _ in 0..10 {
        sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    }
    let (conn, server) = connects(&sim.drain())[0];
    let status = sim.engine.status(sim.now);
    assert_eq!((status.queued, status.in_flight), (10, 0));
    sim.accept(conn, server);
    let hello = sim.drain();
    sim.pump(&hello);
    let requests = sim.drain();
    let got = sim.pump(&requests);
    assert_eq!(got.len(), MAX_IN_FLIGHT);
    let status = sim.engine.status(sim.now);
    assert_eq!((status.queued, status.in_flight), (10, 8));
    // One answer: one more is sent in its place.
    sim.respond(conn, got[0].1, allow());
    let status = sim.engine.status(sim.now);
    assert_eq!((status.queued, status.in_flight), (9, 8));
    // The server dies: everything goes back to the queue, nothing is on the wire.
    sim.engine.handle_closed(sim.now, conn, &mut sim.rng);
    let status = sim.engine.status(sim.now);
    assert_eq!((status.queued, status.in_flight), (9, 0));
    // The deadline passes for all of them.
    sim.sleep(Duration::from_secs(5));
    let status = sim.engine.status(sim.now);
    assert_eq!((status.queued, status.in_flight), (0, 0));
}

#[test]
fn status_reports_a_background_retry_while_it_runs() {
    let mut sim = Sim::new(1, Balancing::Probing, 16);
    let (seen, _) = refuse_everything(&mut sim, 5);
    assert_eq!(done(&seen).len(), 1);
    let status = sim.engine.status(sim.now);
    assert!(!status.retrying);
    let retry_in = status.retry_in.expect("a retry is scheduled");
    assert!(retry_in >= Duration::from_millis(800), "{retry_in:?}");
    sim.sleep(retry_in);
    assert_eq!(probes(&sim.drain()).len(), 1, "the background round runs");
    let status = sim.engine.status(sim.now);
    assert!(status.retrying);
    assert_eq!(status.retry_in, Some(Duration::ZERO));
    // The round ends unanswered: the next retry is scheduled further out.
    sim.sleep(Duration::from_millis(150));
    let status = sim.engine.status(sim.now);
    assert!(!status.retrying);
    assert!(status
        .retry_in
        .is_some_and(|d| d >= Duration::from_millis(1280)));
}

#[test]
fn when_every_server_is_busy_the_next_try_waits_a_jittered_pause() {
    let mut sim = Sim::new(2, Balancing::Ordered, 11);
    sim.engine.submit(sim.now, ssh(), &mut sim.rng);
    let busy = || {
        let mut e = gatehouse_common::wire::WireError::new(ErrorCode::Busy, "busy, go elsewhere");
        e.estimate_us = 2_000_000;
        Response::Error(e)
    };
    // Both servers answer busy, one after the other.
    let (conn, server) = connects(&sim.drain())[0];
    let id = establish(&mut sim, conn, server);
    sim.respond(conn, id, busy());
    let (conn2, server2) = connects(&sim.drain())[0];
    assert_ne!(server2, server);
    let id = establish(&mut sim, conn2, server2);
    sim.respond(conn2, id, busy());
    // Now every server is avoided: no reconnect storm, a pause of 50–200 ms first.
    let out = sim.drain();
    assert!(
        connects(&out).is_empty() && probes(&out).is_empty(),
        "{out:?}"
    );
    assert!(
        done(&out).is_empty(),
        "the request is still waiting, within its deadline"
    );
    let wake = sim.engine.poll_timeout().expect("a timer for the pause");
    let pause = wake - sim.now;
    assert!(
        (RETRY_PAUSE_MIN..=RETRY_PAUSE_MAX).contains(&pause),
        "{pause:?}"
    );
    sim.advance_to(wake);
    assert_eq!(
        connects(&sim.drain()).len(),
        1,
        "tries again after the pause"
    );
}

#[path = "tests_failover.rs"]
mod failover;
