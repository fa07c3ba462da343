//! The agent's configuration: a RON file with serde defaults for everything but the host
//! name, the node-key file and the server list, and cross-field checks after parsing.
//!
//! Reads the file (through `gatehouse_common::config`) and, for a server given by name rather
//! than IP literal, does one DNS lookup at load; everything else is pure. Called once by the
//! agent daemon at start-up and on reload.

use crate::balance::Balancing;
use crate::budget::MAX_REQUEST_DEADLINE;
use crate::config_failover::FailoverConfig;
use crate::config_servers::{resolve_all, Resolved};
use crate::connect_plan::{MAX_ATTEMPT_DELAY, MIN_ATTEMPT_DELAY};
use crate::offline::config::{self as offline_config, CacheConfig, OfflineConfig};
use gatehouse_common::config::{load_ron, parse_ron, ConfigError};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default probe fan-out (3 servers). Why: "power of d choices" — probing a few random servers
/// gets nearly all the benefit of probing every one, at a constant cost per request.
pub const DEFAULT_PROBE_FANOUT: usize = 3;
/// Default replies that end a probe round early (2). Why: two are enough to compare; waiting
/// for the third would add the slowest server's delay to every login.
pub const DEFAULT_PROBE_MIN_REPLIES: usize = 2;
/// Default probe timeout (150 ms). Why: covers a WAN round trip and a busy server's UDP path,
/// yet costs at most 3 % of the default request deadline when servers are silent.
pub const DEFAULT_PROBE_TIMEOUT_MS: u64 = 150;
/// Default per-attempt connect timeout (1000 ms). Why: the first SYN retransmit comes at 1 s,
/// so a handshake not done by then lost its SYN; staggered attempts already run meanwhile.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 1000;
/// Default delay between staggered connect attempts (250 ms, RFC 8305's recommendation; see
/// `connect_plan::ATTEMPT_DELAY`).
pub const DEFAULT_ATTEMPT_DELAY_MS: u64 = 250;
/// Default request deadline (5000 ms, from the seeds). Why: a login that has not been decided
/// in 5 s is better failed fast (and retried by the user) than left hanging.
pub const DEFAULT_REQUEST_DEADLINE_MS: u64 = 5000;
/// Default idle close (10 000 ms). Why: servers should not hold thousands of idle agents'
/// connections; reopening costs one handshake.
pub const DEFAULT_IDLE_CLOSE_MS: u64 = 10_000;
/// Default maximum connection age (60 000 ms). Why: reconnecting at least every minute moves
/// load onto replicas that were added or came back, instead of pinning it forever.
pub const DEFAULT_MAX_CONNECTION_AGE_MS: u64 = 60_000;
/// Default avoidance after busy / too-many-connections / reset (5000 ms). Why: long enough for
/// a burst to drain, short enough that a recovered server soon gets traffic back; equal to the
/// request deadline, so one request never returns to a server that just refused it.
pub const DEFAULT_AVOID_MS: u64 = 5000;
/// Default path of the local socket PAM and NSS modules talk to.
pub const DEFAULT_SOCKET_PATH: &str = gatehouse_local::DEFAULT_SOCKET_PATH;
/// Default directory of the agent's cache (identities, decisions, offline verifiers).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/gatehouse-agent";
/// Most uids in `trusted_uids` (64): a few admins and service accounts (root and the agent's
/// own uid are always trusted and need not be listed).
pub const MAX_TRUSTED_UIDS: usize = 64;

/// Most servers one agent may list (1024). Why: the avoid list and probe selection are sized
/// by the server count; a fleet needs a handful of replicas, never thousands.
pub const MAX_SERVERS: usize = 1024;
/// Largest probe fan-out (16). Why: each probe costs every probed server a UDP reply, and
/// beyond a few choices the balancing gain is nil.
pub const MAX_PROBE_FANOUT: usize = 16;

// The defaults must pass the checks in `AgentConfig::checked`.
const _: () = assert!(DEFAULT_PROBE_MIN_REPLIES <= DEFAULT_PROBE_FANOUT);
const _: () = assert!(DEFAULT_PROBE_FANOUT <= MAX_PROBE_FANOUT);
const _: () = assert!(DEFAULT_PROBE_TIMEOUT_MS < DEFAULT_REQUEST_DEADLINE_MS);

/// The agent's config file (conf/agent.ron).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// This host's name, as known to the servers' node-key map.
    pub host: String,
    /// File holding this host's node key (64 hex digits).
    pub node_key_file: PathBuf,
    /// Masters and replicas as "ip:port" (or "name:port", resolved once at load).
    pub servers: Vec<String>,
    #[serde(default)]
    pub balancing: Balancing,
    #[serde(default = "default_probe_fanout")]
    pub probe_fanout: usize,
    #[serde(default = "default_probe_min_replies")]
    pub probe_min_replies: usize,
    #[serde(default = "default_probe_timeout_ms")]
    pub probe_timeout_ms: u64,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_attempt_delay_ms")]
    pub attempt_delay_ms: u64,
    #[serde(default = "default_request_deadline_ms")]
    pub request_deadline_ms: u64,
    #[serde(default = "default_idle_close_ms")]
    pub idle_close_ms: u64,
    #[serde(default = "default_max_connection_age_ms")]
    pub max_connection_age_ms: u64,
    #[serde(default = "default_avoid_ms")]
    pub avoid_ms: u64,
    #[serde(default = "default_socket_path")]
    pub socket_path: PathBuf,
    /// Uids that may ask for decisions and status on the local socket, besides root and the
    /// agent's own uid (docs/AGENT.md, "Who may ask"). Numbers, not names: a name would be
    /// resolved through NSS, which on a managed host asks this agent. Identity lookups are open
    /// to every uid: NSS runs in every process. Default: none.
    #[serde(default)]
    pub trusted_uids: Vec<u32>,
    /// off, error, warn, info (the default), debug or trace; `RUST_LOG` overrides it. A
    /// reload (SIGHUP) applies a change.
    #[serde(default)]
    pub log_level: Option<String>,
    /// How the agent leaves a server that went silent, refuses TCP or got slow
    /// (`crate::config_failover`).
    #[serde(default)]
    pub failover: FailoverConfig,
    /// Where the cache lives (created 0700; the database file 0600).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub offline: OfflineConfig,
    /// `servers` resolved, same order; filled by `load` / `parse`.
    #[serde(skip)]
    server_addrs: Vec<SocketAddr>,
    /// Entries of `servers` that did not resolve (`config_servers`).
    #[serde(skip)]
    unresolved: Vec<(String, String)>,
}

fn default_probe_fanout() -> usize {
    DEFAULT_PROBE_FANOUT
}
fn default_probe_min_replies() -> usize {
    DEFAULT_PROBE_MIN_REPLIES
}
fn default_probe_timeout_ms() -> u64 {
    DEFAULT_PROBE_TIMEOUT_MS
}
fn default_connect_timeout_ms() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}
fn default_attempt_delay_ms() -> u64 {
    DEFAULT_ATTEMPT_DELAY_MS
}
fn default_request_deadline_ms() -> u64 {
    DEFAULT_REQUEST_DEADLINE_MS
}
fn default_idle_close_ms() -> u64 {
    DEFAULT_IDLE_CLOSE_MS
}
fn default_max_connection_age_ms() -> u64 {
    DEFAULT_MAX_CONNECTION_AGE_MS
}
fn default_avoid_ms() -> u64 {
    DEFAULT_AVOID_MS
}
fn default_socket_path() -> PathBuf {
    PathBuf::from(DEFAULT_SOCKET_PATH)
}
fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}

impl AgentConfig {
    /// The configured log level (checked when loaded); `None`: the default.
    pub fn log_level(&self) -> Option<log::LevelFilter> {
        self.log_level
            .as_deref()
            .and_then(|l| l.trim().parse().ok())
    }

    /// Reads, parses and checks `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        load_ron::<AgentConfig>(path)?.checked(path)
    }

    /// Parses and checks RON `text` that came from `path` (used in errors only).
    pub fn parse(path: &Path, text: &str) -> Result<AgentConfig, ConfigError> {
        parse_ron::<AgentConfig>(path, text)?.checked(path)
    }

    /// The servers' addresses, in configured order (index = server index everywhere else),
    /// without the names that did not resolve.
    pub fn server_addrs(&self) -> &[SocketAddr] {
        &self.server_addrs
    }

    pub fn probe_timeout(&self) -> Duration {
        Duration::from_millis(self.probe_timeout_ms)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn attempt_delay(&self) -> Duration {
        Duration::from_millis(self.attempt_delay_ms)
    }
    pub fn request_deadline(&self) -> Duration {
        Duration::from_millis(self.request_deadline_ms)
    }
    pub fn idle_close(&self) -> Duration {
        Duration::from_millis(self.idle_close_ms)
    }
    pub fn max_connection_age(&self) -> Duration {
        Duration::from_millis(self.max_connection_age_ms)
    }
    pub fn avoid(&self) -> Duration {
        Duration::from_millis(self.avoid_ms)
    }

    /// Cross-field checks, and resolving the server list.
    fn checked(mut self, file: &Path) -> Result<AgentConfig, ConfigError> {
        let bad = |field: &str, msg: String| Err(ConfigError::invalid(file, field, msg));
        if self.host.trim().is_empty() {
            return bad("host", "must not be empty".into());
        }
        if self.servers.is_empty() {
            return bad("servers", "at least one server is required".into());
        }
        if let Some(level) = &self.log_level {
            gatehouse_common::service::logging::parse_level(file, level)?;
        }
        if self.servers.len() > MAX_SERVERS {
            return bad("servers", format!("at most {MAX_SERVERS} servers"));
        }
        if !(1..=MAX_PROBE_FANOUT).contains(&self.probe_fanout) {
            return bad("probe_fanout", format!("must be 1..={MAX_PROBE_FANOUT}"));
        }
        if !(1..=self.probe_fanout).contains(&self.probe_min_replies) {
            let msg = format!("must be 1..=probe_fanout ({})", self.probe_fanout);
            return bad("probe_min_replies", msg);
        }
        let max_deadline_ms = MAX_REQUEST_DEADLINE.as_millis();
        if self.request_deadline_ms == 0 || u128::from(self.request_deadline_ms) > max_deadline_ms {
            return bad(
                "request_deadline_ms",
                format!("must be 1..={max_deadline_ms}"),
            );
        }
        if self.probe_timeout_ms == 0 || self.probe_timeout_ms >= self.request_deadline_ms {
            let msg = format!(
                "must be nonzero and below request_deadline_ms ({})",
                self.request_deadline_ms
            );
            return bad("probe_timeout_ms", msg);
        }
        let (lo, hi) = (MIN_ATTEMPT_DELAY.as_millis(), MAX_ATTEMPT_DELAY.as_millis());
        if !(lo..=hi).contains(&u128::from(self.attempt_delay_ms)) {
            return bad(
                "attempt_delay_ms",
                format!("must be {lo}..={hi} (RFC 8305)"),
            );
        }
        for (field, value) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("idle_close_ms", self.idle_close_ms),
            ("max_connection_age_ms", self.max_connection_age_ms),
            ("avoid_ms", self.avoid_ms),
        ] {
            if value == 0 {
                return bad(field, "must be nonzero".into());
            }
        }
        if let Err((field, msg)) = self.failover.check() {
            return bad(&format!("failover.{field}"), msg);
        }
        if self.socket_path.as_os_str().is_empty() {
            return bad("socket_path", "must not be empty".into());
        }
        if self.state_dir.as_os_str().is_empty() {
            return bad("state_dir", "must not be empty".into());
        }
        if self.trusted_uids.len() > MAX_TRUSTED_UIDS {
            return bad("trusted_uids", format!("at most {MAX_TRUSTED_UIDS} uids"));
        }
        if let Err((field, why)) = offline_config::check(&self.cache, &self.offline) {
            return bad(&field, why);
        }
        match resolve_all(&self.servers) {
            Ok(resolved) => self.set_resolved(resolved),
            Err((field, msg)) => return bad(&field, msg),
        }
        Ok(self)
    }

    /// Takes a resolution of `servers` (at load, and again when the daemon retries names
    /// that did not resolve).
    pub fn set_resolved(&mut self, resolved: Resolved) {
        self.server_addrs = resolved.addrs;
        self.unresolved = resolved.unresolved;
    }

    /// Entries of `servers` that did not resolve when last tried, with why (the agent runs
    /// with the others and retries these).
    pub fn unresolved_servers(&self) -> &[(String, String)] {
        &self.unresolved
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
