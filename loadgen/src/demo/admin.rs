//! The demo's admin: runs the real `gatehouse-admin` binary (built next to the load
//! generator) against the demo master's admin socket, one bounded command at a time, and
//! reads the sequence the master acknowledged from its `ok (sequence N)` line.
//!
//! Not pure: child processes and a log file; [`acknowledged_sequence`] is pure. Called by
//! [`super`] (set-up, and the admin change every few seconds while the agents run).
//!
//! The binary rather than `gatehouse_master::admin::client`: the demo shows the commands an
//! admin really types, and the load generator stays clear of the master crate (SQLite).

use super::super::procs::die_with_parent;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one admin command may take before it is killed (10 s). Each is one request on a
/// local socket answered in milliseconds; the import of a large fleet takes well under a
/// second. Far below the CLI's own 120 s client timeout, so a stuck master fails the demo
/// with a clear message rather than hanging it.
pub const ADMIN_LIMIT: Duration = Duration::from_secs(10);
/// How often a running admin command is checked for exit (5 ms): there is no portable event
/// to wait on, and most commands finish within a few of these.
const ADMIN_POLL: Duration = Duration::from_millis(5);

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("gatehouse-admin {command} did not finish within {limit:?} (killed); the master's log is {log}")]
    Timeout {
        command: String,
        limit: Duration,
        log: String,
    },
    #[error("gatehouse-admin {command} failed (exit {code}): {stderr}; the master's log is {log}")]
    Failed {
        command: String,
        code: String,
        stderr: String,
        log: String,
    },
}

/// Runs `gatehouse-admin --socket SOCKET ...`.
pub struct Admin {
    binary: PathBuf,
    socket: PathBuf,
    /// The master's log, named in errors: that is where a refused change is explained.
    master_log: PathBuf,
    /// Every command and its output, appended (`admin.log` in the demo directory).
    log: PathBuf,
}

impl Admin {
    pub fn new(binary: PathBuf, socket: PathBuf, master_log: PathBuf, log: PathBuf) -> Admin {
        Admin {
            binary,
            socket,
            master_log,
            log,
        }
    }

    /// Runs one command; returns its standard output, or why it failed.
    pub fn run(&self, args: &[&str]) -> Result<String, AdminError> {
        let command = args.join(" ");
        let mut child = {
            let mut c = Command::new(&self.binary);
            c.arg("--socket")
                .arg(&self.socket)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            die_with_parent(&mut c);
            c.spawn().map_err(|source| AdminError::Spawn {
                binary: self.binary.display().to_string(),
                source,
            })?
        };
        // Read both pipes on threads so a long answer cannot block the child.
        let reader = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_string(&mut text);
                }
                text
            })
        };
        let out = reader(child.stdout.take().map(|p| Box::new(p) as _));
        let err = reader(child.stderr.take().map(|p| Box::new(p) as _));
        let until = Instant::now() + ADMIN_LIMIT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < until => std::thread::sleep(ADMIN_POLL),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        self.append_log(&command, &stdout, &stderr);
        let master_log = self.master_log.display().to_string();
        match status {
            None => Err(AdminError::Timeout {
                command,
                limit: ADMIN_LIMIT,
                log: master_log,
            }),
            Some(s) if s.success() => Ok(stdout),
            Some(s) => Err(AdminError::Failed {
                command,
                code: s.code().map_or("by a signal".into(), |c| c.to_string()),
                stderr: stderr.trim().to_string(),
                log: master_log,
            }),
        }
    }

    /// Runs a command that changes the database; returns the sequence the master gave it.
    pub fn change(&self, args: &[&str]) -> Result<u64, AdminError> {
        let stdout = self.run(args)?;
        acknowledged_sequence(&stdout).ok_or_else(|| AdminError::Failed {
            command: args.join(" "),
            code: "0".into(),
            stderr: format!("no `ok (sequence N)` in its output: {}", stdout.trim()),
            log: self.master_log.display().to_string(),
        })
    }

    fn append_log(&self, command: &str, stdout: &str, stderr: &str) {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log);
        if let Ok(mut file) = file {
            // The log is for a post-mortem only; failing to write it changes nothing.
            let _ = write!(file, "$ gatehouse-admin {command}\n{stdout}{stderr}");
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

/// The sequence in the `ok (sequence N)` line every change prints (an import prints it too).
pub fn acknowledged_sequence(stdout: &str) -> Option<u64> {
    let rest = stdout.split("(sequence ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acknowledged_sequence_is_read_from_the_ok_line() {
        assert_eq!(acknowledged_sequence("ok (sequence 12)\n"), Some(12));
        assert_eq!(
            acknowledged_sequence("ok (sequence 3); node key written to /tmp/r.key"),
            Some(3)
        );
        assert_eq!(acknowledged_sequence("sequence 4"), None);
        assert_eq!(acknowledged_sequence("ok (sequence )"), None);
    }
}
