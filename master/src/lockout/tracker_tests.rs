//! The lockout decision with a manual clock: exact counts, window edges, the lockout's end
//! rounded up to the second, and what is never counted.

use super::*;

/// 2026-11-23T10:00:00Z in unix milliseconds.
const T0: u64 = 1_795_428_000_000;

fn at(ms_after_t0: u64) -> u64 {
    T0 + ms_after_t0
}

fn wrong<'a>(user: &'a str, agent: &'a str, server: &'a str, at_unix_ms: u64) -> Failure<'a> {
    Failure {
        user,
        agent,
        server,
        reason: AuthFailure::BadPassword,
        at_unix_ms,
    }
}

fn time(text: &str) -> PolicyTime {
    PolicyTime::parse_utc(text).unwrap()
}

#[test]
fn six_failures_within_a_minute_lock_for_ten_minutes() {
    let policy = LockoutPolicy::default();
    let mut tracker = FailureTracker::default();
    let servers = ["r1", "r2", "master", "r1", "r2", "r1"];
    for (n, server) in servers.iter().enumerate().take(5) {
        let now = at(n as u64 * 10_000);
        let verdict = tracker.record(&wrong("bob", "web1", server, now), &policy, None, now);
        assert_eq!(verdict, Verdict::Counted(n as u32 + 1));
    }
    // The sixth, 50.5 s after the first: locked until 10 minutes later, rounded up.
    let now = at(50_500);
    let Verdict::Lock { until, failures } =
        tracker.record(&wrong("bob", "web2", servers[5], now), &policy, None, now)
    else {
        panic!("six failures in a minute must lock");
    };
    assert_eq!(until, time("2026-11-23T10:10:51Z"));
    assert_eq!(failures.len(), 6);
    assert_eq!(
        sources(&failures),
        "web1 x5 via r1,r2,master; web2 x1 via r1"
    );
    // The count starts afresh.
    assert_eq!(tracker.users(), 0);
}

#[test]
fn the_window_slides_and_a_failure_older_than_it_no_longer_counts() {
    let policy = LockoutPolicy::default();
    let mut tracker = FailureTracker::default();
    for n in 0..5 {
        let now = at(n * 1000);
        tracker.record(&wrong("bob", "web1", "r1", now), &policy, None, now);
    }
    // 60 s after the first, it has left the window: 4 + this one.
    let now = at(60_000);
    let verdict = tracker.record(&wrong("bob", "web1", "r1", now), &policy, None, now);
    assert_eq!(verdict, Verdict::Counted(5));
    // A report delayed past the window (a partition healed) counts for nothing now...
    let stale = wrong("bob", "web1", "r2", at(500));
    assert_eq!(
        tracker.record(&stale, &policy, None, at(60_500)),
        Verdict::Ignored
    );
    // ...but one still inside it counts at its own time, and locks.
    let late = wrong("bob", "web1", "r2", at(59_000));
    assert!(matches!(
        tracker.record(&late, &policy, None, at(60_500)),
        Verdict::Lock { .. }
    ));
}

#[test]
fn only_wrong_passwords_of_users_not_locked_out_count() {
    let policy = LockoutPolicy {
        failures: 1,
        ..LockoutPolicy::default()
    };
    let mut tracker = FailureTracker::default();
    let now = at(0);
    for reason in [
        AuthFailure::Locked,
        AuthFailure::LockedOut,
        AuthFailure::UnknownHost,
        AuthFailure::UnknownUser,
    ] {
        let failure = Failure {
            reason,
            ..wrong("bob", "web1", "r1", now)
        };
        assert_eq!(
            tracker.record(&failure, &policy, None, now),
            Verdict::Ignored
        );
    }
    // Locked out until after now: failures do not extend it.
    let until = Some(time("2026-11-23T10:00:01Z"));
    let failure = wrong("bob", "web1", "r1", now);
    assert_eq!(
        tracker.record(&failure, &policy, until, now),
        Verdict::Ignored
    );
    // From that second on, the lockout has expired and failures count again.
    let later = at(1000);
    let failure = wrong("bob", "web1", "r1", later);
    assert!(matches!(
        tracker.record(&failure, &policy, until, later),
        Verdict::Lock { .. }
    ));
    // Lockout off.
    let off = LockoutPolicy {
        failures: 0,
        ..policy
    };
    assert_eq!(
        tracker.record(&failure, &off, None, later),
        Verdict::Ignored
    );
}

#[test]
fn a_time_ahead_of_the_masters_clock_is_taken_as_now() {
    let policy = LockoutPolicy {
        failures: 2,
        window: Duration::from_secs(10),
        lock_for: Duration::from_secs(2),
    };
    let mut tracker = FailureTracker::default();
    // A replica's clock an hour ahead cannot keep a failure in the window for an hour.
    let ahead = wrong("bob", "web1", "r1", at(3_600_000));
    tracker.record(&ahead, &policy, None, at(0));
    let now = at(10_000);
    let verdict = tracker.record(&wrong("bob", "web1", "r1", now), &policy, None, now);
    assert_eq!(verdict, Verdict::Counted(1));
    // A short lockout (as the end-to-end test configures): 2 s, rounded up.
    let Verdict::Lock { until, .. } =
        tracker.record(&wrong("bob", "web1", "r1", now), &policy, None, now)
    else {
        panic!("two failures lock");
    };
    assert_eq!(until, time("2026-11-23T10:00:12Z"));
}

#[test]
fn recent_lists_users_with_failures_in_their_window_and_forget_clears_one() {
    let policy = LockoutPolicy::default();
    let mut tracker = FailureTracker::default();
    tracker.record(&wrong("carol", "web2", "r2", at(0)), &policy, None, at(0));
    tracker.record(
        &wrong("bob", "web1", "r1", at(30_000)),
        &policy,
        None,
        at(30_000),
    );
    let names = |t: &FailureTracker, now| {
        t.recent(now)
            .into_iter()
            .map(|(user, seen)| (user, seen.len()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&tracker, at(30_000)),
        [("bob".to_string(), 1), ("carol".to_string(), 1)]
    );
    assert_eq!(names(&tracker, at(60_000)), [("bob".to_string(), 1)]);
    tracker.forget("bob");
    assert!(names(&tracker, at(60_000)).is_empty());
}

#[test]
fn users_whose_failures_left_the_window_are_swept_away() {
    let policy = LockoutPolicy::default();
    let mut tracker = FailureTracker::default();
    for n in 0..2000u64 {
        let user = format!("user{n}");
        let failure = wrong(&user, "web1", "r1", at(n * 100));
        tracker.record(&failure, &policy, None, at(n * 100));
    }
    // 200 s of failures, one user each 100 ms: at most the last minute's users (600) plus
    // what accumulated since the last sweep (1024 records) are kept.
    assert!(tracker.users() <= 600 + 1024, "{}", tracker.users());
}
