//! The replica's config file (RON): where to listen, where its copy of the security database
//! comes from (a master to follow, or a fixed file), the bridge settings, the metrics
//! endpoint and the log level. Reads one file;
//! errors name file and field.

use crate::bridge::{BridgeConfig, BridgeFile};
use crate::follower::{FollowConfig, FollowFile};
use gatehouse_common::config::{load_ron, ConfigError};
use gatehouse_common::service::logging;
use log::LevelFilter;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplicaFile {
    /// TCP address for agents; UDP probes use the same port.
    listen: SocketAddr,
    /// A fixed database file (RON), relative to the config file: for a standalone replica.
    #[serde(default)]
    database: Option<PathBuf>,
    /// Follow a master (the normal deployment).
    #[serde(default)]
    replication: Option<FollowFile>,
    #[serde(default)]
    bridge: BridgeFile,
    /// Serve metrics (Prometheus text) on this address; absent: no endpoint.
    #[serde(default)]
    metrics_listen: Option<SocketAddr>,
    /// off, error, warn, info (the default), debug or trace; `RUST_LOG` overrides it.
    #[serde(default)]
    log_level: Option<String>,
}

/// Where the replica's database comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Loaded once from a RON file.
    File(PathBuf),
    /// Replicated from a master and persisted locally.
    Follow(FollowConfig),
}

/// Checked replica settings.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    pub listen: SocketAddr,
    pub source: Source,
    pub bridge: BridgeConfig,
    pub metrics_listen: Option<SocketAddr>,
    pub log_level: Option<LevelFilter>,
}

impl ReplicaConfig {
    /// Loads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file: ReplicaFile = load_ron(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let source = match (file.database, file.replication) {
            (Some(db), None) => Source::File(base.join(db)),
            (None, Some(follow)) => Source::Follow(FollowConfig::from_file(&follow, path, base)?),
            _ => {
                return Err(ConfigError::invalid(
                    path,
                    "database / replication",
                    "expected exactly one: `replication: (...)` to follow a master, or `database: FILE`",
                ))
            }
        };
        let log_level = match &file.log_level {
            Some(text) => Some(logging::parse_level(path, text)?),
            None => None,
        };
        Ok(ReplicaConfig {
            listen: file.listen,
            source,
            bridge: BridgeConfig::from_file(&file.bridge, path)?,
            metrics_listen: file.metrics_listen,
            log_level,
        })
    }
}
