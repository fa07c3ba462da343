//! The real `pam_gatehouse.so` and `libnss_gatehouse.so.2` against a real agent and replica:
//! `pamtester` under pam_wrapper (a PAM service file in a scratch directory, no /etc/pam.d
//! change) and `getent` under nss_wrapper (no /etc/nsswitch.conf change). Skipped, with a
//! message, where Debian's pamtester, libpam-wrapper or libnss-wrapper are missing (.ci/run
//! installs them).

use gatehouse_tests::agentd::{have_tools, module_path, Agentd};
use gatehouse_tests::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const PAM_WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so";
const NSS_WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so";
const PAMTESTER: &str = "/usr/bin/pamtester";
const GETENT: &str = "/usr/bin/getent";

fn setup() -> (ServerProcess, Agentd) {
    let (db, hosts) = test_database(1);
    let replica = start_replica(&db, "()");
    let web1 = hosts.last().unwrap().clone();
    let agent = Agentd::start(&web1, &[replica.addr], "");
    (replica, agent)
}

/// Writes PAM service file `name` (auth + account through pam_gatehouse with `args`, then the
/// `extra` lines) into `dir`.
fn service(dir: &Path, name: &str, agent: &Agentd, args: &str, extra: &str) {
    let module = module_path("libpam_gatehouse.so");
    let socket = agent.socket.display();
    let text = format!(
        "auth     required {m} socket={socket} {args}\n\
         account  required {m} socket={socket} {args}\n{extra}",
        m = module.display()
    );
    std::fs::write(dir.join(name), text).unwrap();
}

/// `pamtester -I ITEM=VALUE... SERVICE USER authenticate acct_mgmt`, typing `password`.
fn pamtester(dir: &Path, service: &str, user: &str, items: &[&str], password: &str) -> Output {
    let items = items.iter().flat_map(|item| ["-I", item]);
    let mut child = Command::new(PAMTESTER)
        .args(items)
        .args([service, user, "authenticate", "acct_mgmt"])
        .env("LD_PRELOAD", PAM_WRAPPER)
        .env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pamtester");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn pamtester_logs_in_through_the_real_module() {
    if !have_tools(
        "pamtester test",
        &[PAMTESTER, PAM_WRAPPER],
        "pamtester libpam-wrapper",
    ) {
        return;
    }
    let (_replica, agent) = setup();
    let dir = TestDir::new("pam");
    service(dir.path(), "sshd", &agent, "", "");
    service(dir.path(), "su", &agent, "", "");
    service(
        dir.path(),
        "login",
        &agent,
        "ignore_unknown_user",
        "auth     required pam_permit.so\naccount  required pam_permit.so\n",
    );

    let ok = pamtester(
        dir.path(),
        "sshd",
        "alice",
        &["rhost=10.0.0.1"],
        ALICE_PASSWORD,
    );
    assert!(ok.status.success(), "{}\n{}", text(&ok), agent.log());
    assert!(
        text(&ok).contains("successfully authenticated"),
        "{}",
        text(&ok)
    );

    let wrong = pamtester(dir.path(), "sshd", "alice", &["rhost=10.0.0.1"], "wrong");
    assert!(!wrong.status.success());
    assert!(
        text(&wrong).contains("Authentication failure"),
        "{}",
        text(&wrong)
    );

    // Right password, but alice has no SU route: account management refuses.
    let denied = pamtester(dir.path(), "su", "alice", &["ruser=alice"], ALICE_PASSWORD);
    assert!(!denied.status.success());
    assert!(
        text(&denied).contains("Permission denied"),
        "{}",
        text(&denied)
    );

    // bob is locked.
    let locked = pamtester(dir.path(), "sshd", "bob", &["rhost=10.0.0.1"], "anything");
    assert!(!locked.status.success());

    // An unknown user: refused on sshd; with ignore_unknown_user the module steps aside
    // (PAM_IGNORE) and the next line (pam_permit) decides, as a local account's would.
    let unknown = pamtester(dir.path(), "sshd", "carol", &["rhost=10.0.0.1"], "x");
    assert!(!unknown.status.success());
    assert!(
        text(&unknown).contains("User not known"),
        "{}",
        text(&unknown)
    );
    let ignored = pamtester(dir.path(), "login", "carol", &["tty=/dev/tty1"], "x");
    assert!(ignored.status.success(), "{}", text(&ignored));
    // A refused password is one answer; the module asks whether Gatehouse knows the user
    // and steps aside only for one it does not: bob (locked) and alice (a wrong password)
    // never reach pam_permit.
    for (user, password) in [("bob", "anything"), ("alice", "wrong")] {
        let kept = pamtester(dir.path(), "login", user, &["tty=/dev/tty1"], password);
        assert!(!kept.status.success(), "{user}: {}", text(&kept));
        assert!(
            text(&kept).contains("Authentication failure"),
            "{user}: {}",
            text(&kept)
        );
    }
}

fn getent(agent: &Agentd, args: &[&str]) -> Output {
    let dir = agent.dir.path();
    std::fs::write(dir.join("passwd"), "").unwrap();
    std::fs::write(dir.join("group"), "").unwrap();
    Command::new(GETENT)
        .args(args)
        .env("LD_PRELOAD", NSS_WRAPPER)
        .env("NSS_WRAPPER_PASSWD", dir.join("passwd"))
        .env("NSS_WRAPPER_GROUP", dir.join("group"))
        .env(
            "NSS_WRAPPER_MODULE_SO_PATH",
            module_path("libnss_gatehouse.so"),
        )
        .env("NSS_WRAPPER_MODULE_FN_PREFIX", "gatehouse")
        .env("GATEHOUSE_AGENT_SOCKET", &agent.socket)
        .output()
        .expect("run getent")
}

#[test]
fn getent_sees_gatehouse_identities_through_the_real_module() {
    if !have_tools("getent test", &[GETENT, NSS_WRAPPER], "libnss-wrapper") {
        return;
    }
    let (_replica, agent) = setup();
    let line = |args: &[&str]| {
        let out = getent(&agent, args);
        assert!(
            out.status.success(),
            "getent {args:?}: {}\n{}",
            text(&out),
            agent.log()
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let alice = format!("alice:x:{ALICE_UID}:{ALICE_UID}:Alice:/home/alice:/bin/sh\n");
    assert_eq!(line(&["passwd", "alice"]), alice);
    assert_eq!(line(&["passwd", &ALICE_UID.to_string()]), alice);
    let ops = format!("ops:x:{OPS_GID}:alice\n");
    assert_eq!(line(&["group", "ops"]), ops);
    assert_eq!(line(&["group", &OPS_GID.to_string()]), ops);
    // (nss_wrapper answers getgrouplist by enumerating groups, which the module does not do,
    // so initgroups_dyn is tested by calling it directly: nss/src/ffi_tests.rs.)
    // getent exits 2 for a key that is not found; bob has no Unix identity.
    for args in [["passwd", "bob"], ["passwd", "nosuch"], ["group", "web"]] {
        let out = getent(&agent, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
}

#[test]
fn pamtester_is_asked_for_a_new_password_once_it_expired_and_warned_before() {
    if !have_tools(
        "pamtester password age test",
        &[PAMTESTER, PAM_WRAPPER],
        "pamtester libpam-wrapper",
    ) {
        return;
    }
    let (mut db, hosts) = test_database(1);
    // erin: alice's password and routes under another name, expired; alice: warned.
    let mut erin = db.users[0].clone();
    erin.name = "erin".into();
    erin.unix = None;
    erin.routes[0].rule = "SSH:*->erin@web*".into();
    db.users.push(erin);
    let record = |user: &str, expires: &str, warn_from: Option<&str>| {
        gatehouse_common::policy::PasswordRecord {
            user: user.into(),
            set_at: None,
            expires: Some(expires.into()),
            warn_from: warn_from.map(Into::into),
            history: Vec::new(),
        }
    };
    db.password_records = vec![
        record("erin", "2000-01-01T00:00:00Z", None),
        record(
            "alice",
            "2100-01-01T00:00:00Z",
            Some("2000-01-01T00:00:00Z"),
        ),
    ];
    let replica = start_replica(&db, "()");
    let agent = Agentd::start(hosts.last().unwrap(), &[replica.addr], "");
    let dir = TestDir::new("pam");
    service(dir.path(), "sshd", &agent, "", "");

    let expired = pamtester(
        dir.path(),
        "sshd",
        "erin",
        &["rhost=10.0.0.1"],
        ALICE_PASSWORD,
    );
    assert!(!expired.status.success(), "{}", text(&expired));
    assert!(
        text(&expired).contains("successfully authenticated"),
        "auth succeeds: {}",
        text(&expired)
    );
    assert!(
        text(&expired).contains("Your password has expired"),
        "{}",
        text(&expired)
    );
    // pam_strerror(PAM_NEW_AUTHTOK_REQD).
    assert!(
        text(&expired).contains("new one required"),
        "{}",
        text(&expired)
    );
    // A wrong password on the expired account: the plain failure.
    let wrong = pamtester(dir.path(), "sshd", "erin", &["rhost=10.0.0.1"], "wrong");
    assert!(
        text(&wrong).contains("Authentication failure"),
        "{}",
        text(&wrong)
    );
    assert!(!text(&wrong).contains("expired"), "{}", text(&wrong));

    let warned = pamtester(
        dir.path(),
        "sshd",
        "alice",
        &["rhost=10.0.0.1"],
        ALICE_PASSWORD,
    );
    assert!(warned.status.success(), "{}", text(&warned));
    assert!(
        text(&warned).contains("Your password expires in "),
        "{}",
        text(&warned)
    );
}
