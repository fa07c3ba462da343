//! A real gatehouse-replica answers authorize requests on its reactor thread, so a password
//! check (argon2, on a worker) never holds them up; with `inline_cheap_requests: false` every
//! request goes through the worker queue in order, as in the seed's design.

use gatehouse_common::wire::Response;
use gatehouse_tests::requests::*;
use gatehouse_tests::*;
use std::io::Write;

/// Sends an authenticate (id 1) and an authorize (id 2) in one write, so the replica reads
/// both in the same loop turn, and returns the ids in the order their answers arrive.
fn answer_order(bridge: &str) -> Vec<u32> {
    let (db, hosts) = test_database(1);
    let replica = start_replica(&db, bridge);
    let mut agent = Client::connect(replica.addr, &hosts[0]).unwrap();
    let mut both = agent.seal(1, authenticate("alice", ALICE_PASSWORD, &hosts[0].name));
    both.extend(agent.seal(2, ssh_on(&hosts[0].name)));
    agent.stream.write_all(&both).unwrap();
    let mut order = Vec::new();
    for _ in 0..2 {
        match agent.next_event().unwrap() {
            gatehouse_common::session::ClientEvent::Response { id, body } => {
                let expected = if id == 1 {
                    matches!(body, Response::AuthOk)
                } else {
                    matches!(body, Response::Allow { .. })
                };
                assert!(expected, "request {id} answered {body:?}");
                order.push(id);
            }
            other => panic!("expected a response, got {other:?}"),
        }
    }
    order
}

#[test]
fn an_authorize_is_answered_while_a_password_check_is_still_running() {
    // One worker, busy with the argon2 check: the authorize read after it is answered first.
    assert_eq!(answer_order("(workers: 1)"), vec![2, 1]);
}

#[test]
fn with_inline_answers_off_requests_are_answered_in_queue_order() {
    assert_eq!(
        answer_order("(workers: 1, inline_cheap_requests: false)"),
        vec![1, 2]
    );
}
