//! The real `gatehouse-agent run` daemon as a child process: started on a config, ready once
//! it prints `listening on PATH`, killed when dropped.

use crate::process::wait_child;
use crate::{bin_path, WAIT_LIMIT};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;

/// A running `gatehouse-agent run`, killed when dropped.
pub struct AgentDaemon {
    child: Child,
    pub socket: PathBuf,
    pub config: PathBuf,
    log: PathBuf,
}

impl AgentDaemon {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        wait_child(&mut self.child, WAIT_LIMIT).expect("daemon did not exit")
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for AgentDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the daemon on `config` and waits for `listening on PATH`; if it exits (or stays
/// silent) instead, its exit status and log.
pub fn try_start(config: &Path, log_name: &str) -> Result<AgentDaemon, (ExitStatus, String)> {
    let dir = config.parent().unwrap();
    let log = dir.join(log_name);
    let mut child = Command::new(bin_path("gatehouse-agent"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(path) = line.strip_prefix("listening on ") {
                let _ = tx.send(PathBuf::from(path.trim()));
            }
        }
    });
    match rx.recv_timeout(WAIT_LIMIT) {
        Ok(socket) => Ok(AgentDaemon {
            child,
            socket,
            config: config.to_path_buf(),
            log,
        }),
        Err(_) => {
            let _ = child.kill();
            let status = child.wait().unwrap();
            Err((status, std::fs::read_to_string(&log).unwrap_or_default()))
        }
    }
}
