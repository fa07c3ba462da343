//! Password age with a manual clock: schedules, the expiry and warning boundaries, history
//! kept by `SetPassword`, and no oracle (a wrong password on an expired account is the same
//! answer at the same cost as on a live one).

use super::*;
use crate::policy::password::runs;
use crate::policy::{apply, hash_password, Change, ChangeError, HashCost, User};
use crate::wire::AuthenticateRequest;
use rand::{rngs::StdRng, SeedableRng};

fn at(text: &str) -> PolicyTime {
    PolicyTime::parse_utc(text).unwrap()
}

#[test]
fn a_schedule_is_the_set_time_plus_the_maximum_age_and_warns_before_it() {
    let now = at("2026-12-01T12:00:00Z");
    assert_eq!(schedule(now, 0, 7), (None, None), "0 days: never expires");
    assert_eq!(
        schedule(now, 90, 7),
        (
            Some(at("2027-03-01T12:00:00Z")),
            Some(at("2027-02-22T12:00:00Z"))
        )
    );
    assert_eq!(
        schedule(now, 90, 0),
        (Some(at("2027-03-01T12:00:00Z")), None)
    );
    // A warning longer than the age: warns from the start (before `now`, even).
    let (expires, warn) = schedule(now, 1, 3);
    assert_eq!(expires, Some(at("2026-12-02T12:00:00Z")));
    assert!(warn.unwrap() < now);
}

#[test]
fn expiry_and_warning_boundaries_fall_on_their_second() {
    let (expires, warn) = (
        Some(at("2027-03-01T12:00:00Z")),
        Some(at("2027-02-22T12:00:00Z")),
    );
    let aging = |t| aging_at(expires, warn, at(t));
    assert_eq!(aging("2027-02-22T11:59:59Z"), None);
    assert_eq!(
        aging("2027-02-22T12:00:00Z"),
        Some(PasswordAging::ExpiresIn { days: 7 })
    );
    assert_eq!(
        aging("2027-02-22T12:00:01Z"),
        Some(PasswordAging::ExpiresIn { days: 7 })
    );
    assert_eq!(
        aging("2027-02-28T12:00:00Z"),
        Some(PasswordAging::ExpiresIn { days: 1 })
    );
    assert_eq!(
        aging("2027-03-01T11:59:59Z"),
        Some(PasswordAging::ExpiresIn { days: 1 })
    );
    assert_eq!(aging("2027-03-01T12:00:00Z"), Some(PasswordAging::Expired));
    assert_eq!(aging("2030-01-01T00:00:00Z"), Some(PasswordAging::Expired));
    // No expiry: nothing, whatever the warning says.
    assert_eq!(aging_at(None, warn, at("2030-01-01T00:00:00Z")), None);
    // No warning: silent until the expiry.
    assert_eq!(aging_at(expires, None, at("2027-03-01T11:59:59Z")), None);
}

fn db_with(users: &[&str]) -> Database {
    let user = |name: &str| User {
        name: name.into(),
        password_hash: String::new(),
        locked: false,
        classes: Vec::new(),
        routes: Vec::new(),
        unix: None,
    };
    Database {
        hosts: vec![crate::policy::Host {
            name: "web1".into(),
            addresses: Vec::new(),
            node_key: "ab".repeat(32),
            groups: Vec::new(),
            may_ask_for_others: false,
        }],
        users: users.iter().map(|u| user(u)).collect(),
        ..Database::default()
    }
}

fn set(user: &str, hash: &str, history: u8) -> Change {
    Change::SetPassword {
        user: user.into(),
        hash: hash.into(),
        set_at: "2026-12-01T12:00:00Z".into(),
        expires: Some("2027-03-01T12:00:00Z".into()),
        warn_from: None,
        history,
    }
}

#[test]
fn set_password_keeps_the_last_n_minus_one_earlier_hashes_newest_first() {
    let mut db = db_with(&["alice", "bob"]);
    for (i, hash) in ["h1", "h2", "h3", "h4"].into_iter().enumerate() {
        apply(&mut db, &set("alice", hash, 3)).unwrap();
        assert_eq!(db.users[0].password_hash, hash, "step {i}");
    }
    let record = &db.password_records[0];
    // The current (h4) is the first of the last 3: two earlier ones are kept.
    assert_eq!(record.history, ["h3", "h2"]);
    assert_eq!(record.expires.as_deref(), Some("2027-03-01T12:00:00Z"));
    assert_eq!(record.set_at.as_deref(), Some("2026-12-01T12:00:00Z"));
    // History 0 (or 1) keeps none.
    apply(&mut db, &set("alice", "h5", 0)).unwrap();
    assert!(db.password_records[0].history.is_empty());
    // Expire: an imported user without a record gets one; an unknown user is refused.
    let expire = |user: &str| Change::ExpirePassword {
        user: user.into(),
        at: "2026-12-05T00:00:00Z".into(),
    };
    apply(&mut db, &expire("bob")).unwrap();
    let bob = db
        .password_records
        .iter()
        .find(|r| r.user == "bob")
        .unwrap();
    assert_eq!(
        (bob.set_at.as_deref(), bob.expires.as_deref()),
        (None, Some("2026-12-05T00:00:00Z"))
    );
    assert!(matches!(
        apply(&mut db, &expire("ghost")),
        Err(ChangeError::NotFound { .. })
    ));
    // A removed user's record goes with it.
    apply(&mut db, &Change::RemoveUser { name: "bob".into() }).unwrap();
    assert!(db.password_records.iter().all(|r| r.user != "bob"));
    // A bad time is refused when compiled, naming the user; the database stays as it was.
    let before = db.clone();
    let bad = Change::ExpirePassword {
        user: "alice".into(),
        at: "tomorrow".into(),
    };
    let err = apply(&mut db, &bad).unwrap_err().to_string();
    assert!(err.contains("password record of user `alice`"), "{err}");
    assert_eq!(db, before);
}

#[test]
fn an_expired_account_answers_a_wrong_password_exactly_as_a_live_one() {
    let hash = hash_password("right", &mut StdRng::seed_from_u64(5), HashCost::Fast).unwrap();
    let mut db = db_with(&["live", "old"]);
    for user in ["live", "old"] {
        apply(&mut db, &set(user, &hash, 5)).unwrap();
    }
    apply(
        &mut db,
        &Change::ExpirePassword {
            user: "old".into(),
            at: "2026-12-02T00:00:00Z".into(),
        },
    )
    .unwrap();
    let snapshot = PolicySnapshot::compile(&db).unwrap();
    let now = at("2026-12-03T00:00:00Z");
    let answer = |user: &str, password: &str| {
        runs::take();
        let request = AuthenticateRequest::<&str> {
            user,
            password,
            host: "web1",
        };
        let outcome = snapshot.authenticate(&request, now);
        let answer = snapshot.authenticate_answer(user, outcome, now);
        (outcome, answer, runs::take())
    };
    // Wrong password: the same outcome, answer and argon2 work for both.
    assert_eq!(answer("old", "wrong"), answer("live", "wrong"));
    assert_eq!(answer("old", "wrong").1, Response::AuthFail);
    // Right password: the expired state is told, and only then.
    assert_eq!(
        answer("old", "right"),
        (
            Ok(()),
            Response::AuthOkAging(PasswordAging::Expired),
            vec![1024]
        )
    );
    assert_eq!(
        answer("live", "right"),
        (Ok(()), Response::AuthOk, vec![1024])
    );
    // In its warning period (expires 2027-03-01T12:00:00Z, warns 10 days before):
    let mut warned = db.clone();
    let mut change = set("live", &hash, 5);
    if let Change::SetPassword { warn_from, .. } = &mut change {
        *warn_from = Some("2027-02-19T12:00:00Z".into());
    }
    // Setting the same hash again is the master's business to refuse (history); here it only
    // moves the times.
    apply(&mut warned, &change).unwrap();
    let snapshot = PolicySnapshot::compile(&warned).unwrap();
    assert_eq!(
        snapshot.password_aging("live", at("2027-02-27T12:00:00Z")),
        Some(PasswordAging::ExpiresIn { days: 2 })
    );
    assert_eq!(snapshot.password_aging("ghost", now), None);
}
