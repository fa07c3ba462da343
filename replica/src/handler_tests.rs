//! The request handler against a compiled test database: hosts asking about themselves,
//! identity lookups, the one failure answer, and a user's own password change.

use super::*;
use gatehouse_common::identity::Lookup;
use gatehouse_common::policy::{hash_password, Database, HashCost, Host, UnixAccount, User};
use gatehouse_common::types::{AuthFailure, Method};
use gatehouse_common::wire::{AuthenticateRequest, AuthorizeRequest};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Keeps every event as text.
#[derive(Default)]
struct Recorded(Mutex<Vec<String>>);

impl AuthEvents for Recorded {
    fn record(&self, event: &AuthEvent<'_>) {
        self.0.lock().push(format!("{event:?}"));
    }
}

fn handler() -> (PolicyHandler, Arc<Recorded>) {
    let host = |name: &str, key: u8, proxy| Host {
        name: name.into(),
        addresses: Vec::new(),
        node_key: hex(key),
        groups: Vec::new(),
        may_ask_for_others: proxy,
    };
    let db = Database {
        hosts: vec![
            host("web1", 1, false),
            host("db1", 2, false),
            host("jump1", 3, true),
        ],
        users: vec![User {
            name: "root".into(),
            password_hash: hash_password("pw", &mut StdRng::seed_from_u64(1), HashCost::Fast)
                .unwrap(),
            locked: false,
            classes: Vec::new(),
            routes: Vec::new(),
            unix: Some(UnixAccount {
                uid: 100_001,
                gid: 100_001,
                gecos: String::new(),
                home: "/root".into(),
                shell: "/bin/sh".into(),
            }),
        }],
        ..Database::default()
    };
    let snapshot = PolicySnapshot::compile(&db).unwrap();
    let events = Arc::new(Recorded::default());
    let policy = Arc::new(ArcSwap::from_pointee(snapshot));
    (PolicyHandler::with_events(policy, events.clone()), events)
}

fn caller(host: &str) -> Caller<'_> {
    Caller {
        host,
        address: "10.0.0.7:40112".parse().unwrap(),
    }
}

fn hex(byte: u8) -> String {
    format!("{byte:02x}").repeat(32)
}

fn authenticate(host: &str) -> Request {
    Request::Authenticate(AuthenticateRequest {
        user: "root".into(),
        password: "pw".into(),
        host: host.into(),
    })
}

fn authorize(to_host: &str) -> Request {
    Request::Authorize(AuthorizeRequest {
        method: Method::Ssh,
        from_host: "10.0.0.1".into(),
        from_user: "root".into(),
        to_user: "root".into(),
        to_host: to_host.into(),
    })
}

#[test]
fn a_host_asks_only_about_itself_and_refusals_are_reported_with_both_hosts() {
    let (handler, events) = handler();
    let now = SystemTime::now();
    let ask = |agent: &str, request: Request| handler.handle(caller(agent), request.view(), now);
    assert_eq!(ask("db1", authenticate("db1")), Response::AuthOk);
    assert_eq!(ask("web1", authenticate("db1")), Response::AuthFail);
    let unknown = Response::Deny {
        reason: DenyReason::UnknownHost,
    };
    assert_eq!(ask("web1", authorize("db1")), unknown);
    // A jump host may ask for others.
    assert_eq!(ask("jump1", authenticate("db1")), Response::AuthOk);
    let no_route = Response::Deny {
        reason: DenyReason::NoMatchingRoute,
    };
    assert_eq!(ask("jump1", authorize("db1")), no_route);
    assert_eq!(
        *events.0.lock(),
        [
            "PasswordChecked { agent: \"db1\", host: \"db1\", user: \"root\", outcome: Ok(()) }",
            "ForeignHost { agent: \"web1\", host: \"db1\", asked: Authenticate }",
            "ForeignHost { agent: \"web1\", host: \"db1\", asked: Authorize }",
            "PasswordChecked { agent: \"jump1\", host: \"db1\", user: \"root\", outcome: Ok(()) }",
        ]
    );
}

#[test]
fn identity_lookups_are_cheap_name_no_host_and_are_no_password_check() {
    let (handler, events) = handler();
    let now = SystemTime::now();
    let lookups = [
        Lookup::UserByName("root".into()),
        Lookup::UserByUid(100_001),
        Lookup::GroupsOfUser("root".into()),
    ];
    for lookup in lookups {
        let request = Request::Lookup(lookup);
        assert!(handler.is_cheap(request.view()));
        assert!(!handler.is_password_check(request.view()));
        // Any registered host may look up any identity (NSS on every host shows the
        // fleet's users); no host is named, so none is refused as foreign.
        for agent in ["web1", "db1"] {
            let answer = handler.handle(caller(agent), request.view(), now);
            assert_ne!(answer, Response::NotFound, "{request:?} from {agent}");
        }
    }
    assert!(events.0.lock().is_empty(), "{:?}", events.0.lock());
    assert!(handler.is_password_check(authenticate("web1").view()));
    assert!(!handler.is_password_check(authorize("web1").view()));
}

#[test]
fn every_failed_password_is_one_answer_and_the_detail_goes_to_the_events() {
    let (handler, events) = handler();
    let now = SystemTime::now();
    let with = |user: &str, password: &str| {
        let request = Request::Authenticate(AuthenticateRequest {
            user: user.into(),
            password: password.into(),
            host: "web1".into(),
        });
        handler.handle(caller("web1"), request.view(), now)
    };
    assert_eq!(with("root", "wrong"), Response::AuthFail);
    assert_eq!(with("ghost", "pw"), Response::AuthFail);
    let events = events.0.lock();
    let reason = |failure: AuthFailure| format!("outcome: Err({failure:?})");
    assert!(
        events[0].contains(&reason(AuthFailure::BadPassword)),
        "{events:?}"
    );
    assert!(
        events[1].contains(&reason(AuthFailure::UnknownUser)),
        "{events:?}"
    );
}

/// Keeps the changes it is given and answers `Changed`.
#[derive(Default)]
struct Changes(Mutex<Vec<String>>);

impl PasswordChanger for Changes {
    fn change(&self, agent: &str, r: ChangePasswordRequest<&str>) -> ChangeOutcome {
        self.0.lock().push(format!(
            "{agent}: {}@{} -> {}",
            r.user, r.host, r.new_password
        ));
        ChangeOutcome::Changed
    }
}

#[test]
fn a_change_needs_the_right_old_password_and_a_wrong_one_is_a_counted_failure() {
    let (handler, events) = handler();
    let changes = Arc::new(Changes::default());
    let handler = handler.with_password_changes(changes.clone());
    let now = SystemTime::now();
    let change = |agent: &str, user: &str, old: &str, host: &str| {
        let request = Request::ChangePassword(ChangePasswordRequest {
            user: user.into(),
            old_password: old.into(),
            new_password: "new one".into(),
            host: host.into(),
        });
        assert!(handler.is_password_check(request.view()));
        assert!(!handler.is_cheap(request.view()));
        handler.handle(caller(agent), request.view(), now)
    };
    let failed = Response::PasswordChange(ChangeOutcome::Failed);
    // A wrong old password, an unknown user, another host: one answer, nothing changed.
    assert_eq!(change("web1", "root", "wrong", "web1"), failed);
    assert_eq!(change("web1", "ghost", "pw", "web1"), failed);
    assert_eq!(change("web1", "root", "pw", "db1"), failed);
    assert!(changes.0.lock().is_empty());
    assert_eq!(
        change("web1", "root", "pw", "web1"),
        Response::PasswordChange(ChangeOutcome::Changed)
    );
    assert_eq!(*changes.0.lock(), ["web1: root@web1 -> new one"]);
    // The wrong old password is a password check like any other (the central lockout
    // counts it).
    let events = events.0.lock();
    assert!(
        events[0].contains("user: \"root\"") && events[0].contains("BadPassword"),
        "{events:?}"
    );
    assert!(events[2].contains("ForeignHost"), "{events:?}");
}

#[test]
fn without_a_changer_a_verified_change_is_unavailable() {
    let (handler, _) = handler();
    let request = Request::ChangePassword(ChangePasswordRequest {
        user: "root".into(),
        old_password: "pw".into(),
        new_password: "new one".into(),
        host: "web1".into(),
    });
    let answer = handler.handle(caller("web1"), request.view(), SystemTime::now());
    assert!(
        matches!(
            answer,
            Response::PasswordChange(ChangeOutcome::Unavailable { .. })
        ),
        "{answer:?}"
    );
}
