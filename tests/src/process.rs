//! Starting and stopping the real server binaries, in their own temporary directories.

use crate::WAIT_LIMIT;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A directory removed when dropped.
pub struct TestDir(PathBuf);

impl TestDir {
    /// A fresh directory under the system temp dir, unique to this process and call.
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("gatehouse-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create test dir");
        TestDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        // GATEHOUSE_KEEP_TEST_DIRS=1 keeps logs and stores for a post-mortem.
        if std::env::var_os("GATEHOUSE_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Writes `text` to `path` as a private file (0600): the daemons refuse key files and
/// databases that group or others can read.
pub fn write_private(path: &Path, text: &str) {
    use gatehouse_common::os::secure_file::{create_private_file, Existing};
    use std::io::Write;
    create_private_file(path, Existing::Replace)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Path of a workspace binary, built next to this test executable (target/<profile>/NAME).
///
/// `cargo test` builds a bin target only in test mode, and only for its own package's tests,
/// so the first call in each test process runs `cargo build --bins` for the same profile: a
/// no-op when they are current, and never a stale binary under test.
pub fn bin_path(name: &str) -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--workspace", "--bins", "--quiet"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        if let Some(target) = dir.parent() {
            build.env("CARGO_TARGET_DIR", target);
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cargo build --bins failed");
    });
    let path = dir.join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Waits for `child` to exit, at most `limit`; `None` if it is still running then.
pub fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if start.elapsed() > limit {
            return None;
        }
        // Polling another process's exit: there is no event to wait on portably.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a program run to its end did.
#[derive(Debug)]
pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to its end with `stdin` fed to it and its output captured.
pub fn run_with_stdin(command: &mut Command, stdin: &str) -> Finished {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let Some(mut input) = child.stdin.take() {
        let _ = std::io::Write::write_all(&mut input, stdin.as_bytes());
    }
    let out = child.wait_with_output().expect("output");
    Finished {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a daemon that must refuse to start: it exits (non-zero) within the wait limit, and
/// its standard error is returned. A daemon that starts instead fails the test.
pub fn refused_start(binary: &str, args: &[&str]) -> String {
    let mut child = Command::new(bin_path(binary))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn daemon");
    let Some(status) = wait_child(&mut child, WAIT_LIMIT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{binary} {args:?} started instead of refusing");
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    assert!(!status.success(), "{binary} {args:?} exited 0: {stderr}");
    stderr
}

/// A running server process that prints `listening on ADDR` on stdout when it is ready.
pub struct ServerProcess {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// A master's replication address (`replication on ADDR`, printed before the ready line).
    pub replication: Option<SocketAddr>,
    /// A master's public key (`master key HEX`, printed before the ready line), 64 hex digits.
    pub master_key: Option<String>,
    /// The metrics endpoint (`metrics on ADDR`, printed before the ready line), if configured.
    pub metrics: Option<SocketAddr>,
    log: PathBuf,
    _dir: Option<TestDir>,
}

impl ServerProcess {
    /// Starts `binary` with `args`, logging to `dir/NAME.log`, and waits for its ready line.
    pub fn start(binary: &str, args: &[&str], dir: TestDir, env: &[(&str, &str)]) -> Self {
        let mut server = Self::start_in(binary, args, dir.path(), env);
        server._dir = Some(dir);
        server
    }

    /// [`ServerProcess::start`] in a directory the caller keeps (so a restarted server finds
    /// its files). The log is appended to, so it shows every run.
    pub fn start_in(binary: &str, args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_wrapped_in(&[], binary, args, dir, env)
    }

    /// [`ServerProcess::start`] under a wrapper that execs it (for example `ip netns exec
    /// NS`), so the process (and its pid, for signals) is the server itself.
    pub fn start_wrapped(wrapper: &[&str], binary: &str, args: &[&str], dir: TestDir) -> Self {
        let mut server = Self::start_wrapped_in(wrapper, binary, args, dir.path(), &[]);
        server._dir = Some(dir);
        server
    }

    fn start_wrapped_in(
        wrapper: &[&str],
        binary: &str,
        args: &[&str],
        dir: &Path,
        env: &[(&str, &str)],
    ) -> Self {
        let log = dir.join(format!("{binary}.log"));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin_path(binary));
                c
            }
            None => Command::new(bin_path(binary)),
        };
        let mut child = command
            .args(args)
            .envs(env.iter().copied())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("debug".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let wanted = [
                    "listening on ",
                    "replication on ",
                    "master key ",
                    "metrics on ",
                ];
                if wanted.iter().any(|w| line.starts_with(w)) {
                    let _ = tx.send(line);
                }
            }
        });
        let mut replication = None;
        let mut master_key = None;
        let mut metrics = None;
        let addr = loop {
            match rx.recv_timeout(WAIT_LIMIT) {
                Ok(line) => {
                    if let Some(key) = line.strip_prefix("master key ") {
                        master_key = Some(key.trim().to_string());
                    } else if let Some(addr) = line.strip_prefix("replication on ") {
                        replication = Some(addr.trim().parse().expect("replication address"));
                    } else if let Some(addr) = line.strip_prefix("metrics on ") {
                        metrics = Some(addr.trim().parse().expect("metrics address"));
                    } else if let Some(addr) = line.strip_prefix("listening on ") {
                        break addr.trim().parse().expect("address in ready line");
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    panic!("{binary} did not become ready; its log:\n{log}");
                }
            }
        };
        ServerProcess {
            child: Some(child),
            addr,
            replication,
            master_key,
            metrics,
            log,
            _dir: None,
        }
    }

    /// Sends a signal (SIGTERM, SIGSTOP, ...).
    pub fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe {
                libc::kill(child.id() as i32, signal);
            }
        }
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let status = wait_child(self.child.as_mut()?, limit)?;
        self.child = None;
        Some(status)
    }

    /// The server's log so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `gatehouse-replica` on 127.0.0.1 (a port the kernel picks) serving `db`, with the
/// given `bridge: (...)` settings (RON, for example `(max_connections: 5)`).
pub fn start_replica(db: &gatehouse_common::policy::Database, bridge: &str) -> ServerProcess {
    start_replica_wrapped(db, bridge, &[])
}

/// [`start_replica`] under a wrapper that execs it (`ip netns exec NS`: 127.0.0.1 is then the
/// namespace's own loopback).
pub fn start_replica_wrapped(
    db: &gatehouse_common::policy::Database,
    bridge: &str,
    wrapper: &[&str],
) -> ServerProcess {
    let dir = TestDir::new("replica");
    let db_text = ron::ser::to_string_pretty(db, ron::ser::PrettyConfig::default())
        .expect("serialise database");
    write_private(&dir.path().join("db.ron"), &db_text);
    let config = dir.path().join("replica.ron");
    std::fs::write(
        &config,
        format!(r#"(listen: "127.0.0.1:0", database: "db.ron", bridge: {bridge})"#),
    )
    .expect("write config");
    let config = config.to_string_lossy().to_string();
    ServerProcess::start_wrapped(wrapper, "gatehouse-replica", &["--config", &config], dir)
}

/// How long a test master's writes wait for a replica to confirm its epoch after a restart
/// (3 s): a replica on loopback confirms within its first reconnect (about 1 s), and a test
/// that expects the refusal does not wait the default 30 s for it.
pub const TEST_WRITE_CONFIRM_WAIT_MS: u64 = 3000;

/// A master's files — config, SQLite store, admin socket — in one directory that outlives
/// the process, so a test can kill and restart the master on the same store.
pub struct MasterFiles {
    pub dir: TestDir,
    pub config: PathBuf,
    pub store: PathBuf,
    pub socket: PathBuf,
}

impl MasterFiles {
    /// A fresh directory with a config listening on 127.0.0.1 (a port the kernel picks) and
    /// the given `bridge: (...)` settings (RON).
    pub fn new(bridge: &str) -> Self {
        Self::with_replication(bridge, "127.0.0.1:0")
    }

    /// Like [`MasterFiles::new`] with a fixed replication address, so replicas find a
    /// restarted master again.
    pub fn with_replication(bridge: &str, replication: &str) -> Self {
        let dir = TestDir::new("master");
        let config = dir.path().join("master.ron");
        std::fs::write(
            &config,
            format!(
                r#"(listen: "127.0.0.1:0", database: "master.sqlite", admin_socket: "admin.sock",
                    replication_listen: Some("{replication}"),
                    write_confirm_wait_ms: {TEST_WRITE_CONFIRM_WAIT_MS}, bridge: {bridge})"#
            ),
        )
        .expect("write config");
        MasterFiles {
            store: dir.path().join("master.sqlite"),
            socket: dir.path().join("admin.sock"),
            config,
            dir,
        }
    }
}

/// Starts `gatehouse-master` on `files` and waits until it is ready (agents and the admin
/// socket are served once it prints its ready line).
pub fn start_master(files: &MasterFiles) -> ServerProcess {
    let config = files.config.to_string_lossy().to_string();
    ServerProcess::start_in(
        "gatehouse-master",
        &["--config", &config],
        files.dir.path(),
        &[],
    )
}
