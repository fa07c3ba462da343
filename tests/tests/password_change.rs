//! A user's own password change through the agent, with the real binaries: a master with
//! password rules, a replica following it, and an agent on web1 asking only the replica
//! (the change goes agent → replica, which checks the old password, → master over the
//! replication link, and back). A wrong old password changes nothing and is counted by the
//! central lockout; a weak new one is refused naming the rule; a good one works on the replica
//! once replicated, and the old one no longer does; the master's audit trail has the change
//! without the password; the master applies a change itself when an agent asks it; passwd
//! through the real PAM module (pamtester) shows the rule and the mismatch; a caller that is
//! not root is refused by the agent; with the master gone the answer is "unavailable", at
//! once.

use gatehouse_local::client::Asker;
use gatehouse_local::{ChangeOutcome, LocalErrorKind, LocalRequest, LocalResponse};
use gatehouse_tests::admin::run_admin;
use gatehouse_tests::agentd::Agentd;
use gatehouse_tests::local_users::{root_or_skip, NOBODY};
use gatehouse_tests::replication::Cluster;
use gatehouse_tests::WAIT_LIMIT;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Instant;

const OLD: &str = "Old-Passw0rd-2026";
const NEW: &str = "New-Passw0rd-2027";

/// Set when this binary is re-run as `nobody`: the agent socket to send a change to.
const AS_NOBODY_ENV: &str = "GATEHOUSE_TEST_CHANGE_AS_NOBODY";

fn change(old: &str, new: &str) -> LocalRequest {
    LocalRequest::ChangePassword {
        user: "alice".into(),
        old_password: old.to_string().into(),
        new_password: new.to_string().into(),
    }
}

fn authenticate(password: &str) -> LocalRequest {
    LocalRequest::Authenticate {
        user: "alice".into(),
        password: password.to_string().into(),
        host: String::new(),
    }
}

/// Master (rules: 12 characters, 3 classes) + replica r1 + an agent for web1 asking r1 only.
fn setup() -> (Cluster, gatehouse_tests::ServerProcess, Agentd) {
    let cluster = Cluster::start_with(
        &["r1"],
        "127.0.0.1:0",
        "password_policy: (min_length: 12, min_classes: 3),",
    );
    let run = gatehouse_tests::admin::run_admin_on(
        &cluster.files.socket,
        &["user", "passwd", "alice"],
        &format!("{OLD}\n"),
    );
    assert_eq!(run.code, 0, "{run:?}");
    let replica = cluster.start_replica("r1");
    cluster.wait_caught_up("r1");
    let agent = Agentd::start(&cluster.test_host("web1"), &[replica.addr], "");
    (cluster, replica, agent)
}

/// Polls `gatehouse-admin lockout list` (bounded) until alice has a wrong password counted;
/// returns her line.
fn wait_for_wrong_password(cluster: &Cluster) -> String {
    let start = Instant::now();
    loop {
        let out = cluster.admin_ok(&["lockout", "list"]);
        if let Some(line) = out.lines().find(|l| l.starts_with("alice\t")) {
            return line.to_string();
        }
        assert!(start.elapsed() < WAIT_LIMIT, "never counted: {out:?}");
        // A bounded poll of the master's view (the report travels replica -> master).
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The master's admin audit records, which must show alice's own change on web1, checked
/// `via` a replica (or `master`).
fn own_changes_audited(cluster: &Cluster, via: &str) -> String {
    let audit = run_admin(&cluster.files, &["audit", "--kind", "admin"]);
    assert_eq!(audit.code, 0, "{audit:?}");
    let out = audit.stdout;
    assert!(
        out.contains("alice (own password, through host web1)"),
        "{out}"
    );
    assert!(out.contains("by=self"), "{out}");
    assert!(out.contains(&format!("via={via}")), "{out}");
    out
}

fn is_auth_ok(answer: &LocalResponse) -> bool {
    matches!(answer, LocalResponse::AuthOk { .. })
}

#[test]
fn a_user_changes_their_own_password_through_a_replica() {
    let (cluster, _replica, agent) = setup();
    assert!(is_auth_ok(&agent.ask(&authenticate(OLD))));
    let seq = cluster.sequence();

    // A wrong old password: the one failure answer, and nothing changed on the master.
    assert_eq!(
        agent.ask(&change("Not-The-Passw0rd", NEW)),
        LocalResponse::PasswordChange(ChangeOutcome::Failed)
    );
    assert_eq!(cluster.sequence(), seq, "nothing committed");
    // ...counted by the central lockout as a failed login is (the replica reports it).
    let line = wait_for_wrong_password(&cluster);
    assert!(line.contains("web1") && line.contains("r1"), "{line}");

    // A new password that breaks a rule: refused, naming it.
    let LocalResponse::PasswordChange(ChangeOutcome::Refused { rule }) =
        agent.ask(&change(OLD, "short"))
    else {
        panic!("not refused: {}", agent.log())
    };
    assert!(
        rule.contains("rule min_length: at least 12 characters"),
        "{rule}"
    );
    assert_eq!(cluster.sequence(), seq, "nothing committed");

    // A good one: changed once the master committed it; it replicates as any change.
    assert_eq!(
        agent.ask(&change(OLD, NEW)),
        LocalResponse::PasswordChange(ChangeOutcome::Changed)
    );
    assert_eq!(cluster.sequence(), seq + 1);
    cluster.wait_caught_up("r1");
    assert!(is_auth_ok(&agent.ask(&authenticate(NEW))));
    assert!(matches!(
        agent.ask(&authenticate(OLD)),
        LocalResponse::AuthFail { .. }
    ));

    // The master's audit trail: who, through which host, the outcome, and no password.
    let audit = own_changes_audited(&cluster, "r1");
    for secret in [OLD, NEW, "short"] {
        assert!(!audit.contains(secret), "{audit}");
    }
}

#[test]
fn with_the_master_gone_a_change_is_unavailable_at_once() {
    let (mut cluster, _replica, agent) = setup();
    cluster.master.signal(libc::SIGKILL);
    cluster.master.wait_exit(WAIT_LIMIT).expect("master exits");
    // The replica notices the link is gone within its heartbeat timeout; until then a change
    // handed to the dead link is answered when it breaks. Either way: unavailable, and the
    // replica still answers logins.
    let asked = Instant::now();
    let LocalResponse::PasswordChange(ChangeOutcome::Unavailable { why }) =
        agent.ask(&change(OLD, NEW))
    else {
        panic!("not unavailable: {}", agent.log())
    };
    assert!(
        asked.elapsed() < gatehouse_replica::password_change::MASTER_ANSWER_TIMEOUT * 2,
        "{:?}",
        asked.elapsed()
    );
    assert!(why.contains("master"), "{why}");
    assert!(is_auth_ok(&agent.ask(&authenticate(OLD))));
}

/// Not a test of its own: when this binary is re-run as `nobody` with [`AS_NOBODY_ENV`] set,
/// it sends one password change to that socket and prints the answer.
#[test]
fn helper_change_as_nobody_runs_only_when_asked() {
    let Some(socket) = std::env::var_os(AS_NOBODY_ENV) else {
        return;
    };
    let answer = Asker::new(std::path::Path::new(&socket)).ask(&change(OLD, NEW));
    println!("as-nobody answer: {answer:?}");
}

#[test]
fn a_caller_that_is_not_root_may_not_change_a_password() {
    if !root_or_skip("a_caller_that_is_not_root_may_not_change_a_password") {
        return;
    }
    let (cluster, _replica, agent) = setup();
    let seq = cluster.sequence();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_change_as_nobody_runs_only_when_asked",
            "--nocapture",
        ])
        .env(AS_NOBODY_ENV, &agent.socket)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .expect("the helper runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let denied = format!("{:?}", LocalErrorKind::PermissionDenied);
    assert!(
        stdout.contains("as-nobody answer") && stdout.contains(&denied),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(cluster.sequence(), seq, "nothing changed");
    assert!(is_auth_ok(&agent.ask(&authenticate(OLD))));
}

const PAM_WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so";
const PAMTESTER: &str = "/usr/bin/pamtester";

/// `pamtester passwd USER chauthtok` under pam_wrapper with a `password` line for the real
/// module, typing `typed` (one answer a line): (exit code, stdout + stderr).
fn pamtester_chauthtok(agent: &Agentd, user: &str, typed: &[&str]) -> (i32, String) {
    use std::io::Write;
    let dir = gatehouse_tests::TestDir::new("pam-passwd");
    let module = gatehouse_tests::agentd::module_path("libpam_gatehouse.so");
    std::fs::write(
        dir.path().join("passwd"),
        format!(
            "password required {} socket={}\n",
            module.display(),
            agent.socket.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(PAMTESTER)
        .args(["passwd", user, "chauthtok"])
        .env("LD_PRELOAD", PAM_WRAPPER)
        .env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run pamtester");
    let input: String = typed.iter().map(|t| format!("{t}\n")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn passwd_through_the_real_pam_module_shows_the_broken_rule_then_changes() {
    if !gatehouse_tests::agentd::have_tools(
        "pamtester chauthtok test",
        &[PAMTESTER, PAM_WRAPPER],
        "pamtester libpam-wrapper",
    ) {
        return;
    }
    let (cluster, _replica, agent) = setup();
    // A wrong current password: stopped in the first pass, before new ones are asked.
    let (code, out) = pamtester_chauthtok(&agent, "alice", &["Not-The-Passw0rd"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("current Gatehouse password is not accepted"),
        "{out}"
    );
    // A weak new password: the master's rule, shown to the user.
    let (code, out) = pamtester_chauthtok(&agent, "alice", &[OLD, "short", "short"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("rule min_length: at least 12 characters"),
        "{out}"
    );
    // Two that differ.
    let (code, out) = pamtester_chauthtok(&agent, "alice", &[OLD, NEW, "New-Passw0rd-2028"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("do not match"), "{out}");
    // A good one.
    let (code, out) = pamtester_chauthtok(&agent, "alice", &[OLD, NEW, NEW]);
    assert_eq!(code, 0, "{out}");
    cluster.wait_caught_up("r1");
    assert!(is_auth_ok(&agent.ask(&authenticate(NEW))));
    // An expired password (`user expire`) is right, and passwd changes it.
    cluster.admin_ok(&["user", "expire", "alice"]);
    cluster.wait_caught_up("r1");
    let newer = "Newer-Passw0rd-2028";
    let (code, out) = pamtester_chauthtok(&agent, "alice", &[NEW, newer, newer]);
    assert_eq!(code, 0, "{out}");
    cluster.wait_caught_up("r1");
    assert!(is_auth_ok(&agent.ask(&authenticate(newer))));
    // A user Gatehouse does not know is left to the other modules (PAM_IGNORE: with no
    // other module in this stack, libpam fails the stack; nothing was asked of the user).
    let (_, out) = pamtester_chauthtok(&agent, "carol", &["x", "y", "y"]);
    assert!(!out.contains("Gatehouse password"), "{out}");
}

#[test]
fn the_master_applies_a_change_itself_when_an_agent_asks_it() {
    let (cluster, _replica, _agent) = setup();
    let agent = Agentd::start(&cluster.test_host("web1"), &[cluster.master.addr], "");
    let seq = cluster.sequence();
    assert_eq!(
        agent.ask(&change("Not-The-Passw0rd", NEW)),
        LocalResponse::PasswordChange(ChangeOutcome::Failed)
    );
    assert_eq!(
        agent.ask(&change(OLD, NEW)),
        LocalResponse::PasswordChange(ChangeOutcome::Changed)
    );
    assert_eq!(cluster.sequence(), seq + 1);
    assert!(is_auth_ok(&agent.ask(&authenticate(NEW))));
    own_changes_audited(&cluster, "master");
}
