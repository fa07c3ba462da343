//! A real `gatehouse-agent run` for the login-path tests: its own directory (config, node key,
//! socket, cache), started by `agent::try_start` and asked through the shared local-protocol
//! client.

use crate::agent::{try_start, write_config, AgentDaemon};
use crate::process::{bin_path, TestDir};
use crate::TestHost;
use gatehouse_local::client::Asker;
use gatehouse_local::{LocalRequest, LocalResponse, StatusReport};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

/// A running agent daemon in its own directory, killed when dropped (before the directory is
/// removed).
pub struct Agentd {
    daemon: AgentDaemon,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub dir: TestDir,
}

impl Agentd {
    /// Starts an agent for `host` asking `servers`, with extra config fields `extra` (RON,
    /// e.g. `offline: (passwords: true)`); the socket is `DIR/run/agent.sock`, the cache
    /// `DIR/state`.
    pub fn start(host: &TestHost, servers: &[SocketAddr], extra: &str) -> Agentd {
        let dir = TestDir::new("agentd");
        let config = write_config(dir.path(), host, servers, extra);
        let daemon = try_start(&config, "agent.log").unwrap_or_else(|(status, log)| {
            panic!("the agent did not start ({status}); its log:\n{log}")
        });
        Agentd {
            socket: daemon.socket.clone(),
            daemon,
            config,
            dir,
        }
    }

    /// Asks the agent one request.
    pub fn ask(&self, request: &LocalRequest) -> LocalResponse {
        let mut asker = Asker::new(&self.socket);
        asker.max_answer = gatehouse_local::codec::MAX_STATUS_FRAME;
        asker.ask(request).expect("an answer from the agent")
    }

    /// The agent's status report.
    pub fn status(&self) -> StatusReport {
        match self.ask(&LocalRequest::Status) {
            LocalResponse::Status(report) => *report,
            other => panic!("status: {other:?}"),
        }
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// Stops the agent with SIGTERM and waits for it.
    pub fn stop(&mut self) {
        self.daemon.signal(libc::SIGTERM);
        self.daemon.wait_exit();
    }
}

/// Path of a workspace cdylib (`libpam_gatehouse.so`, `libnss_gatehouse.so`) next to the
/// binaries, built once per test process for the same profile.
pub fn module_path(file: &str) -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let dir = bin_path("gatehouse-agent")
        .parent()
        .expect("target dir")
        .to_path_buf();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args([
            "build",
            "-p",
            "pam_gatehouse",
            "-p",
            "nss_gatehouse",
            "--quiet",
        ]);
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        if let Some(target) = dir.parent() {
            build.env("CARGO_TARGET_DIR", target);
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building the PAM and NSS modules failed");
    });
    dir.join(file)
}

/// Whether every file in `paths` exists; if not, prints why the test is skipped.
pub fn have_tools(test: &str, paths: &[&str], install: &str) -> bool {
    let missing: Vec<&&str> = paths
        .iter()
        .filter(|p| !std::path::Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    eprintln!(
        "SKIPPED {test}: {missing:?} not installed (apt-get install {install}; .ci/run does)"
    );
    false
}
