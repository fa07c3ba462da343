//! A real sshd asking Gatehouse: in a mount namespace this test creates (`unshare -m`), a
//! scratch directory is bind-mounted over /etc/pam.d (an sshd service using the real
//! pam_gatehouse.so) and a scratch nsswitch.conf over /etc/nsswitch.conf (`passwd: files
//! gatehouse`), and sshd listens on a high port of 127.0.0.1; `sshpass` + `ssh` log in. The
//! host's own /etc is never touched. Cases: allowed by the routes, denied by the routes, a
//! wrong password, and — after the replica is killed — an offline login with
//! `offline.passwords` on, refused with it off. Skipped, with a message, without root,
//! namespaces, sshd or sshpass.

use gatehouse_tests::agentd::{have_tools, module_path, Agentd};
use gatehouse_tests::*;
use std::io::{BufRead, BufReader};

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TOOLS: [&str; 5] = [
    "/usr/sbin/sshd",
    "/usr/bin/ssh",
    "/usr/bin/ssh-keygen",
    "/usr/bin/sshpass",
    "/usr/bin/unshare",
];

/// Whether this test can run here: root, the tools, and a mount namespace.
fn can_run(test: &str) -> bool {
    if !have_tools(test, &TOOLS, "openssh-server sshpass") {
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED {test}: needs root (a mount namespace and bind mounts over /etc)");
        return false;
    }
    let probe = Command::new("unshare").args(["-m", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED {test}: `unshare -m` is not permitted here");
        return false;
    }
    true
}

/// sshd in its own mount namespace, asking `agent`; killed when dropped.
struct Sshd {
    child: Child,
    port: u16,
    _dir: TestDir,
}

impl Sshd {
    fn start(agent: &Agentd) -> Sshd {
        let dir = TestDir::new("sshd");
        let d = dir.path();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let keygen = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(d.join("host_key"))
            .status()
            .unwrap();
        assert!(keygen.success());
        std::fs::create_dir(d.join("pam.d")).unwrap();
        let module = module_path("libpam_gatehouse.so");
        let socket = agent.socket.display();
        std::fs::write(
            d.join("pam.d/sshd"),
            format!(
                "auth     required {m} socket={socket}\n\
                 account  required {m} socket={socket}\n\
                 session  required pam_permit.so\n\
                 password required pam_deny.so\n",
                m = module.display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("nsswitch.conf"),
            "passwd: files gatehouse\ngroup: files gatehouse\nshadow: files\nhosts: files\n",
        )
        .unwrap();
        // glibc finds NSS modules by their soname on the library path.
        std::fs::create_dir(d.join("lib")).unwrap();
        std::fs::copy(
            module_path("libnss_gatehouse.so"),
            d.join("lib/libnss_gatehouse.so.2"),
        )
        .unwrap();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {key}\nPidFile {pid}\n\
                 UsePAM yes\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication no\nPermitRootLogin no\nStrictModes no\n\
                 LogLevel VERBOSE\n",
                key = d.join("host_key").display(),
                pid = d.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        let script = format!(
            "set -e; mount --make-rprivate /; \
             mount --bind {d}/pam.d /etc/pam.d; \
             mount --bind {d}/nsswitch.conf /etc/nsswitch.conf; \
             mount -t tmpfs tmpfs /run; mkdir -p /run/sshd; \
             exec /usr/sbin/sshd -D -e -f {d}/sshd_config",
            d = d.display()
        );
        let mut child = Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .env("LD_LIBRARY_PATH", d.join("lib"))
            .env("GATEHOUSE_AGENT_SOCKET", &agent.socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let log = d.join("sshd.log");
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(log).unwrap();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                use std::io::Write;
                let _ = writeln!(file, "{line}");
                if line.contains("Server listening on") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(WAIT_LIMIT).is_err() {
            let _ = child.kill();
            let log = std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default();
            panic!("sshd did not start: {log}");
        }
        Sshd {
            child,
            port,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Logs in as `user` with `password` and runs `echo logged-in`; true if it printed that.
    fn login(&self, user: &str, password: &str) -> bool {
        let out = Command::new("sshpass")
            .args(["-p", password, "ssh", "-p", &self.port.to_string()])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "PreferredAuthentications=password",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "ConnectTimeout=10",
            ])
            .arg(format!("{user}@127.0.0.1"))
            .arg("echo logged-in")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("logged-in")
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // sshd is the exec'd child of unshare: the pid is sshd's own.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A replica and an agent for `host` (index into the test database's hosts). alice may SSH
/// to web* only here (the test database also lets her into agent*).
fn fleet(host: usize, extra: &str) -> (ServerProcess, Agentd) {
    let (mut db, hosts) = test_database(1);
    for user in &mut db.users {
        user.routes.retain(|r| !r.rule.ends_with("@agent*"));
    }
    let replica = start_replica(&db, "()");
    let agent = Agentd::start(&hosts[host], &[replica.addr], extra);
    (replica, agent)
}

fn kill(mut replica: ServerProcess) {
    replica.signal(libc::SIGKILL);
    replica.wait_exit(WAIT_LIMIT).expect("replica exits");
}

fn wait_for_verifier(agent: &Agentd) {
    let start = Instant::now();
    while agent.status().offline.cached_verifiers == 0 {
        assert!(start.elapsed() < WAIT_LIMIT, "no verifier: {}", agent.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sshd_logins_follow_routes_passwords_and_offline_settings() {
    if !can_run("sshd login test") {
        return;
    }
    // web1: alice may SSH to web* (test database); offline passwords on.
    let (replica, agent) = fleet(1, "offline: (passwords: true, failure_delay_ms: 100)");
    let sshd = Sshd::start(&agent);
    // A wrong password first: a refusal from a live server drops any offline verifier, so
    // the successful login after it is the one that makes it.
    assert!(
        !sshd.login("alice", "wrong password"),
        "a wrong password got in"
    );
    assert!(
        sshd.login("alice", ALICE_PASSWORD),
        "allowed login failed: {}\n{}",
        sshd.log(),
        agent.log()
    );
    wait_for_verifier(&agent);
    kill(replica);
    assert!(
        sshd.login("alice", ALICE_PASSWORD),
        "offline login failed: {}\n{}",
        sshd.log(),
        agent.log()
    );
    assert!(
        !sshd.login("alice", "wrong password"),
        "a wrong password got in offline"
    );
    let status = agent.status();
    assert!(status.offline.authenticate_answers >= 2, "{status:?}");
    assert!(status.offline.authorize_answers >= 1, "{status:?}");
    drop(sshd);

    // agent0000: alice has no route there.
    let (_replica, agent) = fleet(0, "");
    let sshd = Sshd::start(&agent);
    assert!(
        !sshd.login("alice", ALICE_PASSWORD),
        "a login without a route got in"
    );
    assert!(
        agent.log().contains("Deny { reason: NoMatchingRoute"),
        "{}",
        agent.log()
    );
    drop(sshd);

    // Offline passwords off (the default): once the replica is gone, no login.
    let (replica, agent) = fleet(1, "");
    let sshd = Sshd::start(&agent);
    assert!(sshd.login("alice", ALICE_PASSWORD), "{}", sshd.log());
    kill(replica);
    assert!(
        !sshd.login("alice", ALICE_PASSWORD),
        "offline login with passwords off"
    );
    assert_eq!(agent.status().offline.authenticate_answers, 0);
}
