//! Password age and history against the real master, `gatehouse-admin` and an agent's
//! connection: a password set under a maximum age answers "expires in N days" after the right
//! password (the warning period here is longer than the age, so it warns at once: the servers'
//! clock cannot be moved), `user expire` makes it "expired", and in both states a wrong
//! password gets the one AuthFail. `user show` (text and --json) shows the times; the last N
//! passwords may not be set again, named by the rule `history`. A replica, which has no
//! password policy, answers the same from the times and history replicated with the user.

use gatehouse_common::types::PasswordAging;
use gatehouse_common::wire::Response;
use gatehouse_tests::admin::{import, run_admin, run_admin_on};
use gatehouse_tests::client::Client;
use gatehouse_tests::process::{start_master, MasterFiles};
use gatehouse_tests::replication::Cluster;
use gatehouse_tests::requests::authenticate;
use gatehouse_tests::{test_database, ALICE_PASSWORD};

const FIRST: &str = "Tr0ub4dor&3-first";
const SECOND: &str = "Tr0ub4dor&3-second";

#[test]
fn expiry_warning_and_history_reach_the_agent_only_after_the_right_password() {
    let files = MasterFiles::with_settings(
        "()",
        "127.0.0.1:0",
        "password_policy: (max_age_days: 2, warn_days: 10, history: 3),",
    );
    let master = start_master(&files);
    let (db, hosts) = test_database(0);
    import(&files, &db);
    let web1 = hosts.last().unwrap();
    let mut agent = Client::connect(master.addr, web1).unwrap();
    let mut id = 0;
    let mut auth = |password: &str| {
        id += 1;
        agent
            .request(id, authenticate("alice", password, "web1"))
            .unwrap()
    };
    let passwd = |password: &str| {
        run_admin_on(
            &files.socket,
            &["user", "passwd", "alice"],
            &format!("{password}\n"),
        )
    };

    // Imported: no recorded time, never expires.
    assert_eq!(auth(ALICE_PASSWORD), Response::AuthOk);
    let show = run_admin(&files, &["user", "show", "alice"]);
    assert!(show.stdout.contains("password: set\n"), "{show:?}");
    assert!(
        show.stdout.contains("password set at: not recorded"),
        "{show:?}"
    );
    assert!(show.stdout.contains("password expires: never"), "{show:?}");

    // Set under a 2-day maximum age with a 10-day warning: warned at once.
    assert_eq!(passwd(FIRST).code, 0);
    assert_eq!(
        auth(FIRST),
        Response::AuthOkAging(PasswordAging::ExpiresIn { days: 2 })
    );
    assert_eq!(auth("wrong-password"), Response::AuthFail);
    assert_eq!(
        auth(ALICE_PASSWORD),
        Response::AuthFail,
        "the old one is gone"
    );

    // Expired now by the admin: still the one failure for a wrong password.
    let expire = run_admin(&files, &["user", "expire", "alice"]);
    assert_eq!(expire.code, 0, "{expire:?}");
    assert_eq!(auth(FIRST), Response::AuthOkAging(PasswordAging::Expired));
    assert_eq!(auth("wrong-password"), Response::AuthFail);
    let json = run_admin(&files, &["--json", "user", "show", "alice"]);
    let shown: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let user = shown.get("User").unwrap_or(&shown);
    assert!(user["password_set_at"].is_string(), "{shown}");
    assert!(user["password_expires"].is_string(), "{shown}");
    assert_eq!(
        user["password_history"], 1,
        "the imported hash is remembered: {shown}"
    );

    // History 3: the current password may not be set again...
    let refused_as_reused = |password: &str| {
        let run = passwd(password);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stderr.contains("rule history"), "{}", run.stderr);
    };
    refused_as_reused(FIRST);
    // ...a new one is accepted, and expiry starts again from now...
    assert_eq!(passwd(SECOND).code, 0);
    assert_eq!(
        auth(SECOND),
        Response::AuthOkAging(PasswordAging::ExpiresIn { days: 2 })
    );
    // ...and the one before it is still remembered.
    refused_as_reused(FIRST);
    let show = run_admin(&files, &["user", "show", "alice"]);
    assert!(show.stdout.contains("password history: 2 kept"), "{show:?}");
}

#[test]
fn a_replica_answers_the_age_from_what_was_replicated_with_the_user() {
    let cluster = Cluster::start_with(
        &["r1"],
        "127.0.0.1:0",
        "password_policy: (max_age_days: 2, warn_days: 10, history: 3),",
    );
    let replica = cluster.start_replica("r1");
    let passwd = |password: &str| {
        let args = ["user", "passwd", "alice"];
        run_admin_on(&cluster.files.socket, &args, &format!("{password}\n"))
    };
    assert_eq!(passwd(FIRST).code, 0);
    assert_eq!(passwd(SECOND).code, 0);
    cluster.admin_ok(&["user", "expire", "alice"]);
    cluster.wait_caught_up("r1");
    let mut agent = Client::connect(replica.addr, &cluster.test_host("web1")).unwrap();
    let mut ask = |id: u32, password: &str| {
        agent
            .request(id, authenticate("alice", password, "web1"))
            .unwrap()
    };
    assert_eq!(
        ask(1, SECOND),
        Response::AuthOkAging(PasswordAging::Expired)
    );
    assert_eq!(ask(2, FIRST), Response::AuthFail);
    // The replica's copy holds the history a promoted replica would check.
    let path = cluster.replica_dir("r1").join("replica.sqlite");
    drop(replica);
    let store = gatehouse_replica::store::Store::open(&path).unwrap();
    let db = store.load_database().unwrap();
    let record = db
        .password_records
        .iter()
        .find(|r| r.user == "alice")
        .unwrap();
    assert_eq!(record.history.len(), 1, "FIRST's hash is remembered");
}
