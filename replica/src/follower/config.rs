//! The `replication: (...)` section of a replica config: which masters to follow, as which
//! host, where the persisted copy lives, and the link timings.

use gatehouse_common::config::ConfigError;
use gatehouse_common::repl::liveness::{
    DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
    MIN_HEARTBEAT_INTERVAL,
};
use gatehouse_common::repl::{LinkTimings, MasterPublicKey};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A connect to a master gives up after 2 s: on a LAN a live master accepts in well under a
/// millisecond, and the next attempt (another master, or after the backoff) is better than
/// waiting out the kernel's two-minute SYN retries.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One master as written in the file: its replication address and its public key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterFile {
    pub address: SocketAddr,
    /// The master's Ed25519 public key, 64 hex digits (`gatehouse-master --public-key`).
    pub key: String,
}

/// A master this replica will follow: where it is, and the key it must prove it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedMaster {
    pub address: SocketAddr,
    pub key: MasterPublicKey,
}

/// As written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowFile {
    /// The master and any replica that may be promoted, in preference order: each one's
    /// replication address and public key.
    pub masters: Vec<MasterFile>,
    /// This replica's registered host name (on the master's replica allow-list).
    pub host: String,
    /// This replica's node key file (64 hex digits), relative to the config file.
    pub node_key_file: PathBuf,
    /// The persisted copy (SQLite), relative to the config file.
    pub store: PathBuf,
    /// Where to write the link status (RON) for admins and monitoring; optional.
    #[serde(default)]
    pub status_file: Option<PathBuf>,
    #[serde(default)]
    pub heartbeat_interval_ms: Option<u64>,
    #[serde(default)]
    pub heartbeat_timeout_ms: Option<u64>,
    #[serde(default)]
    pub request_timeout_ms: Option<u64>,
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
}

/// Checked follower settings.
#[derive(Debug, Clone)]
pub struct FollowConfig {
    pub masters: Vec<PinnedMaster>,
    pub host: String,
    pub node_key_file: PathBuf,
    pub store: PathBuf,
    pub status_file: Option<PathBuf>,
    pub timings: LinkTimings,
    pub connect_timeout: Duration,
}

impl FollowConfig {
    /// Applies defaults, resolves paths against `base` (the config's directory), checks.
    pub fn from_file(f: &FollowFile, file: &Path, base: &Path) -> Result<Self, ConfigError> {
        if f.masters.is_empty() {
            return Err(ConfigError::invalid(
                file,
                "replication.masters",
                "expected at least one master address",
            ));
        }
        let mut masters = Vec::with_capacity(f.masters.len());
        for (i, m) in f.masters.iter().enumerate() {
            let key = MasterPublicKey::from_hex(&m.key).map_err(|e| {
                ConfigError::invalid(
                    file,
                    &format!("replication.masters[{i}].key"),
                    e.to_string(),
                )
            })?;
            masters.push(PinnedMaster {
                address: m.address,
                key,
            });
        }
        let ms = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_millis);
        let timings = LinkTimings {
            heartbeat_interval: ms(f.heartbeat_interval_ms, DEFAULT_HEARTBEAT_INTERVAL),
            heartbeat_timeout: ms(f.heartbeat_timeout_ms, DEFAULT_HEARTBEAT_TIMEOUT),
            request_timeout: ms(f.request_timeout_ms, DEFAULT_REQUEST_TIMEOUT),
        };
        if timings.heartbeat_interval < MIN_HEARTBEAT_INTERVAL {
            return Err(ConfigError::invalid(
                file,
                "replication.heartbeat_interval_ms",
                format!(
                    "expected at least {} ms",
                    MIN_HEARTBEAT_INTERVAL.as_millis()
                ),
            ));
        }
        if timings.heartbeat_timeout <= timings.heartbeat_interval {
            return Err(ConfigError::invalid(
                file,
                "replication.heartbeat_timeout_ms",
                "expected more than heartbeat_interval_ms (a few intervals)",
            ));
        }
        Ok(FollowConfig {
            masters,
            host: f.host.clone(),
            node_key_file: base.join(&f.node_key_file),
            store: base.join(&f.store),
            status_file: f.status_file.as_ref().map(|p| base.join(p)),
            timings,
            connect_timeout: ms(f.connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT),
        })
    }
}
