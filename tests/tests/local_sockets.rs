//! The local sockets, checked both ways with the real binaries: gatehouse-admin and the agent
//! CLI send nothing (no password) to a socket or a listener that belongs to another uid; the
//! master and the agent answer decisions only to the uids they are configured for (the
//! agent's identity lookups to anyone); both refuse to start in a socket directory that others
//! can write to or that another user owns.
//!
//! Playing the other user needs root (a listener or a client running as `nobody`, a socket
//! given away with chown); those tests print SKIPPED and return when not root.

use gatehouse_tests::admin::{run_admin_on, Admin};
use gatehouse_tests::agent::{try_start, write_config, AgentDaemon};
use gatehouse_tests::local_users::{root_or_skip, run_as, NOBODY};
use gatehouse_tests::process::{refused_start, run_with_stdin};
use gatehouse_tests::*;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Set in the environment of this test binary when it is re-run as `nobody` to be the fake
/// listener: the socket path to listen on.
const FAKE_LISTENER_ENV: &str = "GATEHOUSE_TEST_FAKE_LISTENER";

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
}

/// Not a test of its own: when this binary is re-run as another user with
/// [`FAKE_LISTENER_ENV`] set, it listens there, says `ready`, takes one connection and
/// reports how many bytes the client sent before hanging up. Otherwise it does nothing.
#[test]
fn helper_fake_listener_runs_only_when_asked() {
    let Some(path) = std::env::var_os(FAKE_LISTENER_ENV) else {
        return;
    };
    let listener = UnixListener::bind(&path).unwrap();
    println!("fake-listener: ready");
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    println!("fake-listener: received {} bytes", got.len());
}

#[test]
fn gatehouse_admin_sends_no_password_to_a_socket_another_uid_owns() {
    if !root_or_skip("gatehouse_admin_sends_no_password_to_a_socket_another_uid_owns") {
        return;
    }
    let dir = TestDir::new("fake-admin-socket");
    let path = dir.path().join("admin.sock");
    let listener = UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    chown(&path, NOBODY);
    let run = run_admin_on(&path, &["user", "passwd", "alice"], "hunter2\n");
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains(&format!("owned by uid {NOBODY}")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--master-uid"), "{}", run.stderr);
    // It never even connected.
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );

    // Told that the master runs as that uid, it talks to it (and gives up when it hangs up).
    let mut trusting = Command::new(bin_path("gatehouse-admin"))
        .arg("--socket")
        .arg(&path)
        .args(["--master-uid", &NOBODY.to_string(), "status"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    listener.set_nonblocking(false).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(WAIT_LIMIT)).unwrap();
    let mut header = [0u8; 4];
    conn.read_exact(&mut header).unwrap();
    drop(conn);
    assert_eq!(trusting.wait().unwrap().code(), Some(3));
    listener.set_nonblocking(true).unwrap();

    // The agent CLI likewise keeps the password to itself.
    let mut cli = Command::new(bin_path("gatehouse-agent"));
    cli.arg("--socket")
        .arg(&path)
        .args(["authenticate", "alice", "web1"]);
    let run = run_with_stdin(&mut cli, "hunter2\n");
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains(&format!("owned by uid {NOBODY}")),
        "{}",
        run.stderr
    );
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
}

#[test]
fn gatehouse_admin_sends_nothing_to_a_listener_running_as_another_uid() {
    if !root_or_skip("gatehouse_admin_sends_nothing_to_a_listener_running_as_another_uid") {
        return;
    }
    let dir = TestDir::new("fake-admin-listener");
    let sub = dir.path().join("nobody");
    std::fs::create_dir(&sub).unwrap();
    chown(&sub, NOBODY);
    let path = sub.join("admin.sock");
    // This test binary again, as nobody, running only the helper above.
    let mut listener = Command::new(std::env::current_exe().unwrap())
        .args([
            "helper_fake_listener_runs_only_when_asked",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FAKE_LISTENER_ENV, &path)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Its lines, read on a thread so every wait below is bounded.
    let stdout = listener.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest may print the test's name first on the same line.
            if let Some((_, said)) = line.split_once("fake-listener: ") {
                let _ = tx.send(said.to_string());
            }
        }
    });
    let said = lines.recv_timeout(WAIT_LIMIT);
    if said.as_deref() != Ok("ready") {
        let _ = listener.kill();
        panic!("the fake listener did not start: {said:?}");
    }
    // The file looks right (root's); the process behind it is not.
    chown(&path, 0);
    let run = run_admin_on(&path, &["user", "passwd", "alice"], "hunter2\n");
    let said = lines.recv_timeout(WAIT_LIMIT);
    let _ = listener.kill();
    let _ = listener.wait();
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains(&format!("runs as uid {NOBODY}")),
        "{}",
        run.stderr
    );
    assert_eq!(said.as_deref(), Ok("received 0 bytes"));
}

#[test]
fn the_master_answers_only_the_uids_it_is_configured_for() {
    if !root_or_skip("the_master_answers_only_the_uids_it_is_configured_for") {
        return;
    }
    let admin = Admin::start();
    let socket = admin.files.socket.clone();
    // Let nobody reach the socket at all, so the master's own check is what refuses.
    chmod(&socket, 0o666);
    let args = ["--socket", socket.to_str().unwrap(), "status"];
    let run = run_as(NOBODY, "gatehouse-admin", &args, "");
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "permission denied: uid {NOBODY} may not use the admin socket"
        )),
        "{}",
        run.stderr
    );
    // Root is served as before.
    admin.ok(&["status"]);
}

#[test]
fn admin_uids_lets_another_uid_in() {
    if !root_or_skip("admin_uids_lets_another_uid_in") {
        return;
    }
    let files = MasterFiles::new("()");
    let text = std::fs::read_to_string(&files.config).unwrap();
    let text = text.replace("bridge:", &format!("admin_uids: [{NOBODY}], bridge:"));
    std::fs::write(&files.config, text).unwrap();
    let _master = start_master(&files);
    chmod(&files.socket, 0o666);
    let args = ["--socket", files.socket.to_str().unwrap(), "status"];
    let run = run_as(NOBODY, "gatehouse-admin", &args, "");
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("sequence"), "{}", run.stdout);
}

/// An agent config in `dir` asking a dead port (key file private, socket at
/// `dir/run/agent.sock`).
fn agent_config(dir: &Path, extra: &str) -> String {
    let (_, hosts) = test_database(1);
    let config = write_config(dir, &hosts[0], &[dead_port()], extra);
    config.to_string_lossy().into_owned()
}

#[test]
fn the_agent_answers_decisions_only_to_trusted_uids() {
    if !root_or_skip("the_agent_answers_decisions_only_to_trusted_uids") {
        return;
    }
    for (extra, allowed) in [("", false), (&*format!("trusted_uids: [{NOBODY}]"), true)] {
        let dir = TestDir::new("agent-uids");
        let config = agent_config(dir.path(), extra);
        let agent = start_agent(&config);
        // The socket is 0666 for NSS: the daemon's own check decides.
        let mode = std::fs::metadata(&agent.socket)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o666);
        let socket = agent.socket.to_str().unwrap();
        let status = run_as(
            NOBODY,
            "gatehouse-agent",
            &["--socket", socket, "status"],
            "",
        );
        let authorize = run_as(
            NOBODY,
            "gatehouse-agent",
            &[
                "--socket",
                socket,
                "authorize",
                "SSH",
                "10.0.0.1",
                "alice",
                "alice",
                "agent0000",
            ],
            "",
        );
        // Identity lookups are for everyone (NSS in every process): asked, not refused. The
        // only server is dead, so the answer is "no server reachable".
        let lookup = run_as(
            NOBODY,
            "gatehouse-agent",
            &["--socket", socket, "lookup", "user", "alice"],
            "",
        );
        assert_eq!(lookup.code, 2, "{lookup:?}");
        assert!(lookup.stderr.contains("no_server_reachable"), "{lookup:?}");
        assert!(!lookup.stderr.contains("permission_denied"), "{lookup:?}");
        if allowed {
            assert_eq!(status.code, 0, "{status:?}");
        } else {
            for run in [&status, &authorize] {
                assert_eq!(run.code, 2, "{run:?}");
                assert!(run.stderr.contains("permission_denied"), "{run:?}");
                assert!(
                    run.stderr.contains(&format!("uid {NOBODY} may not ask")),
                    "{run:?}"
                );
            }
        }
    }
}

fn start_agent(config: &str) -> AgentDaemon {
    try_start(Path::new(config), "agent.log")
        .unwrap_or_else(|(status, log)| panic!("agent did not start ({status}): {log}"))
}

#[test]
fn daemons_refuse_a_socket_directory_others_can_write_to() {
    // The master.
    let files = MasterFiles::new("()");
    let text = std::fs::read_to_string(&files.config).unwrap();
    let text = text.replace(
        "admin_socket: \"admin.sock\"",
        "admin_socket: \"run/admin.sock\"",
    );
    std::fs::write(&files.config, text).unwrap();
    let run_dir = files.dir.path().join("run");
    std::fs::create_dir(&run_dir).unwrap();
    chmod(&run_dir, 0o777);
    let config = files.config.to_string_lossy().into_owned();
    let stderr = refused_start("gatehouse-master", &["--config", &config]);
    assert!(stderr.contains("writable by group or others"), "{stderr}");
    assert!(
        stderr.contains(&format!("chmod go-w {}", run_dir.display())),
        "{stderr}"
    );
    if gatehouse_tests::local_users::root_or_skip("the master's other-owner case") {
        chmod(&run_dir, 0o755);
        chown(&run_dir, NOBODY);
        let stderr = refused_start("gatehouse-master", &["--config", &config]);
        assert!(
            stderr.contains(&format!("owned by uid {NOBODY}")),
            "{stderr}"
        );
    }

    // The agent.
    let dir = TestDir::new("agent-socket-dir");
    let config = agent_config(dir.path(), "");
    let run_dir = dir.path().join("run");
    std::fs::create_dir(&run_dir).unwrap();
    chmod(&run_dir, 0o777);
    let stderr = refused_start("gatehouse-agent", &["run", "--config", &config]);
    assert!(stderr.contains("writable by group or others"), "{stderr}");
    chmod(&run_dir, 0o755);
    let _agent = start_agent(&config);
}
