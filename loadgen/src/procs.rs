//! Server processes the demo starts: spawned with their stderr in a log file, ready when they
//! print `listening on ADDR` (a master prints `master key HEX` and `replication on ADDR` first), and always stopped — SIGTERM, a bounded wait for the drain, then
//! SIGKILL — when the [`Children`] guard is dropped, whichever way the demo ends (its end, an
//! error, Ctrl-C). On Linux each child also gets SIGTERM from the kernel if the load generator
//! itself dies without running its destructors (PR_SET_PDEATHSIG). Each child runs in its own
//! process group, so a terminal's Ctrl-C goes to the load generator alone.
//!
//! Not pure: processes, pipes, a reader thread per child. Called by [`super::demo`].

use gatehouse_common::repl::MasterPublicKey;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server may take to print its ready line (10 s): loading a database of
/// thousands of hosts takes well under a second even in a debug build.
pub const READY_LIMIT: Duration = Duration::from_secs(10);
/// How long a server may take to exit after SIGTERM before it is killed (7 s): above the
/// replica's default 5 s drain, so a clean drain is never cut short.
pub const STOP_LIMIT: Duration = Duration::from_secs(7);
/// How often an exiting child is checked (10 ms): there is no portable event to wait on.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("cannot create log {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
    #[error("{name} exited or did not print `listening on ADDR` within {limit:?}; its log {log}:\n{tail}")]
    NotReady {
        name: String,
        limit: Duration,
        log: String,
        tail: String,
    },
}

/// A server that printed its ready line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// Where agents connect (`listening on ADDR`).
    pub addr: SocketAddr,
    /// A master's replication address (`replication on ADDR`), when it printed one.
    pub replication: Option<SocketAddr>,
    /// A master's public key (`master key HEX`), which its replicas pin.
    pub master_key: Option<MasterPublicKey>,
    pub pid: u32,
}

/// The processes started so far; all are stopped on drop.
#[derive(Default)]
pub struct Children {
    list: Vec<(String, Child)>,
}

impl Children {
    pub fn new() -> Self {
        Children::default()
    }

    /// Starts `binary args`, logging its stderr to `log`, and waits for its ready line.
    pub fn start_server(
        &mut self,
        name: &str,
        binary: &Path,
        args: &[String],
        log: &Path,
    ) -> Result<Started, SpawnError> {
        let log_file = std::fs::File::create(log).map_err(|source| SpawnError::Log {
            path: log.display().to_string(),
            source,
        })?;
        let mut command = Command::new(binary);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        die_with_parent(&mut command);
        // Its own process group: Ctrl-C in the terminal reaches only the load generator, which
        // stops the agents first and then every server, in order, with the report intact.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().map_err(|source| SpawnError::Spawn {
            binary: binary.display().to_string(),
            source,
        })?;
        let stdout = child.stdout.take();
        let pid = child.id();
        self.list.push((name.to_string(), child));
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = stdout {
            // Reads every line until the child exits, so its stdout pipe never fills.
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let wanted = ["listening on ", "replication on ", "master key "];
                    if wanted.iter().any(|w| line.starts_with(w)) {
                        let _ = tx.send(line);
                    }
                }
            });
        }
        let not_ready = || SpawnError::NotReady {
            name: name.to_string(),
            limit: READY_LIMIT,
            log: log.display().to_string(),
            tail: log_tail(log),
        };
        let until = Instant::now() + READY_LIMIT;
        let mut replication = None;
        let mut master_key = None;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).map_err(|_| not_ready())?;
            let parse = |rest: &str| rest.trim().parse::<SocketAddr>().map_err(|_| not_ready());
            if let Some(rest) = line.strip_prefix("replication on ") {
                replication = Some(parse(rest)?);
            } else if let Some(rest) = line.strip_prefix("master key ") {
                master_key = Some(MasterPublicKey::from_hex(rest).map_err(|_| not_ready())?);
            } else if let Some(rest) = line.strip_prefix("listening on ") {
                return Ok(Started {
                    addr: parse(rest)?,
                    replication,
                    master_key,
                    pid,
                });
            }
        }
    }

    /// Process ids of the children still running.
    pub fn pids(&self) -> Vec<u32> {
        self.list.iter().map(|(_, c)| c.id()).collect()
    }

    /// SIGTERM to every child, wait up to [`STOP_LIMIT`] for all, SIGKILL the rest; reaps all.
    pub fn stop_all(&mut self) {
        for (_, child) in &self.list {
            signal(child, libc::SIGTERM);
        }
        let until = Instant::now() + STOP_LIMIT;
        while !self.list.is_empty() && Instant::now() < until {
            self.list
                .retain_mut(|(_, child)| !matches!(child.try_wait(), Ok(Some(_))));
            if !self.list.is_empty() {
                std::thread::sleep(EXIT_POLL);
            }
        }
        for (name, mut child) in self.list.drain(..) {
            log::warn!("{name} did not exit after SIGTERM within {STOP_LIMIT:?}: killing it");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on our own child's pid (not yet reaped, so not reused).
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

#[cfg(target_os = "linux")]
pub(super) fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which
    // is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn die_with_parent(_command: &mut Command) {}

/// The last lines of a log, for an error message.
pub(super) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
