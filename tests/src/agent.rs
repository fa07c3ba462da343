//! The real `gatehouse-agent run` daemon as a child process: started on a config, ready once
//! it prints `listening on PATH`, killed when dropped.

use crate::process::{wait_child, write_private};
use crate::{bin_path, TestHost, WAIT_LIMIT};
use gatehouse_local::codec::decode_response;
use gatehouse_local::LocalResponse;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
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

/// Writes an agent config for `host` asking `servers` (and the host's key file, private) into
/// `dir`, with extra RON fields `extra`: the socket at `dir/run/agent.sock` (a directory the
/// daemon must create, named relative to the config), the cache in `dir/state`.
pub fn write_config(dir: &Path, host: &TestHost, servers: &[SocketAddr], extra: &str) -> PathBuf {
    write_config_at(dir, host, servers, "run/agent.sock", extra)
}

/// [`write_config`] with the socket at `socket` (relative to `dir`).
pub fn write_config_at(
    dir: &Path,
    host: &TestHost,
    servers: &[SocketAddr],
    socket: &str,
    extra: &str,
) -> PathBuf {
    write_private(&dir.join("node.key"), &format!("{}\n", host.key.to_hex()));
    let servers: Vec<String> = servers
        .iter()
        .map(|a| format!("{:?}", a.to_string()))
        .collect();
    let config = dir.join("agent.ron");
    std::fs::write(
        &config,
        format!(
            r#"(host: {:?}, node_key_file: "node.key", servers: [{}], socket_path: {socket:?}, state_dir: "state", {extra})"#,
            host.name,
            servers.join(", ")
        ),
    )
    .unwrap();
    config
}

/// Starts the daemon on `config` and waits for `listening on PATH`; if it exits (or stays
/// silent) instead, its exit status and log.
pub fn try_start(config: &Path, log_name: &str) -> Result<AgentDaemon, (ExitStatus, String)> {
    try_start_with_env(config, log_name, &[])
}

/// [`try_start`] with extra environment variables (a service manager's, for example).
pub fn try_start_with_env(
    config: &Path,
    log_name: &str,
    env: &[(&str, String)],
) -> Result<AgentDaemon, (ExitStatus, String)> {
    let dir = config.parent().unwrap();
    let log = dir.join(log_name);
    let mut child = Command::new(bin_path("gatehouse-agent"))
        .args(["run", "--config"])
        .arg(config)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
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

/// Reads one answer frame from the daemon (a test's raw local connection).
pub fn read_response(stream: &mut impl Read) -> std::io::Result<LocalResponse> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix)?;
    let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut body)?;
    Ok(decode_response(&body).expect("a valid answer"))
}
