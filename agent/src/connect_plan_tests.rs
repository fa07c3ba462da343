use super::*;

const MS: Duration = Duration::from_millis(1);

fn plan(servers: Vec<usize>, t0: Instant, budget_ms: u32) -> ConnectPlan {
    ConnectPlan::new(
        servers,
        ATTEMPT_DELAY,
        1000 * MS,
        Deadline::after(t0, budget_ms * MS),
    )
}

fn start(attempt: usize, server: usize, timeout_ms: u32) -> Action {
    Action::Start {
        attempt,
        server,
        timeout: timeout_ms * MS,
    }
}

#[test]
fn attempts_are_staggered_by_250_ms_while_the_first_hangs() {
    let t0 = Instant::now();
    let mut p = plan(vec![7, 3, 5], t0, 5000);
    assert_eq!(p.next_action(t0), start(0, 7, 1000));
    assert_eq!(p.next_action(t0), Action::WaitUntil(t0 + 250 * MS));
    assert_eq!(
        p.next_action(t0 + 249 * MS),
        Action::WaitUntil(t0 + 250 * MS)
    );
    assert_eq!(p.next_action(t0 + 250 * MS), start(1, 3, 1000));
    assert_eq!(
        p.next_action(t0 + 250 * MS),
        Action::WaitUntil(t0 + 500 * MS)
    );
    assert_eq!(p.next_action(t0 + 500 * MS), start(2, 5, 1000));
    assert_eq!(p.untried(), &[] as &[usize]);
    // Nothing left to start: wake at the first attempt's timeout.
    assert_eq!(
        p.next_action(t0 + 500 * MS),
        Action::WaitUntil(t0 + 1000 * MS)
    );
    assert_eq!(
        p.next_action(t0 + 1000 * MS),
        Action::Abandon {
            attempt: 0,
            server: 7,
            reason: AbandonReason::TimedOut
        }
    );
    assert_eq!(
        p.next_action(t0 + 1000 * MS),
        Action::WaitUntil(t0 + 1250 * MS)
    );
}

#[test]
fn a_failure_starts_the_next_attempt_at_once() {
    let t0 = Instant::now();
    let mut p = plan(vec![0, 1, 2], t0, 5000);
    assert_eq!(p.next_action(t0), start(0, 0, 1000));
    assert!(p.attempt_failed(0));
    assert!(!p.attempt_failed(0), "a second report changes nothing");
    assert_eq!(p.next_action(t0 + 10 * MS), start(1, 1, 1000));
    assert_eq!(
        p.next_action(t0 + 10 * MS),
        Action::WaitUntil(t0 + 260 * MS)
    );
    // Two in flight; one resets: the third starts without waiting for the stagger.
    assert_eq!(p.next_action(t0 + 260 * MS), start(2, 2, 1000));
    assert!(p.attempt_failed(1));
    assert!(p.attempt_failed(2));
    assert_eq!(
        p.next_action(t0 + 300 * MS),
        Action::GiveUp(GiveUpReason::AllFailed)
    );
}

#[test]
fn the_first_to_connect_wins_and_the_rest_are_closed() {
    let t0 = Instant::now();
    let mut p = plan(vec![4, 5, 6], t0, 5000);
    p.next_action(t0);
    p.next_action(t0 + 250 * MS);
    assert!(p.attempt_connected(1));
    assert!(!p.attempt_connected(0), "a late second connect is refused");
    assert_eq!(
        p.next_action(t0 + 260 * MS),
        Action::Abandon {
            attempt: 0,
            server: 4,
            reason: AbandonReason::Superseded
        }
    );
    assert_eq!(
        p.next_action(t0 + 260 * MS),
        Action::Connected {
            attempt: 1,
            server: 5
        }
    );
    assert_eq!(p.untried(), &[6]);
}

#[test]
fn every_timeout_is_capped_by_the_request_deadline() {
    let t0 = Instant::now();
    let mut p = plan(vec![0, 1, 2], t0, 600);
    assert_eq!(p.next_action(t0), start(0, 0, 600));
    assert_eq!(p.next_action(t0 + 250 * MS), start(1, 1, 350));
    assert_eq!(p.next_action(t0 + 500 * MS), start(2, 2, 100));
    assert_eq!(
        p.next_action(t0 + 500 * MS),
        Action::WaitUntil(t0 + 600 * MS)
    );
    for attempt in 0..3 {
        assert_eq!(
            p.next_action(t0 + 600 * MS),
            Action::Abandon {
                attempt,
                server: attempt,
                reason: AbandonReason::DeadlineExpired
            }
        );
    }
    assert_eq!(
        p.next_action(t0 + 600 * MS),
        Action::GiveUp(GiveUpReason::DeadlineExpired)
    );
}

#[test]
fn an_empty_plan_gives_up_at_once() {
    let t0 = Instant::now();
    let mut p = plan(vec![], t0, 5000);
    assert_eq!(p.next_action(t0), Action::GiveUp(GiveUpReason::AllFailed));
}

#[test]
fn the_attempt_delay_is_kept_within_rfc_8305_bounds() {
    let t0 = Instant::now();
    let d = Deadline::after(t0, 5000 * MS);
    let p = ConnectPlan::new(vec![0], 10 * MS, 1000 * MS, d);
    assert_eq!(p.attempt_delay(), MIN_ATTEMPT_DELAY);
    let p = ConnectPlan::new(vec![0], 9000 * MS, 1000 * MS, d);
    assert_eq!(p.attempt_delay(), MAX_ATTEMPT_DELAY);
}

#[test]
fn reports_for_unknown_attempts_are_ignored() {
    let t0 = Instant::now();
    let mut p = plan(vec![0], t0, 5000);
    assert!(!p.attempt_failed(0), "not started yet");
    assert!(!p.attempt_connected(5));
    assert_eq!(p.next_action(t0), start(0, 0, 1000));
    assert!(!p.attempt_failed(9));
    assert_eq!(p.next_action(t0), Action::WaitUntil(t0 + 1000 * MS));
}
