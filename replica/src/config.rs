//! The replica's config file (RON): where to listen, which database file to load until
//! replication exists, and the bridge settings. Reads one file; errors name file and field.

use crate::bridge::{BridgeConfig, BridgeFile};
use gatehouse_common::config::{load_ron, ConfigError};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplicaFile {
    /// TCP address for agents; UDP probes use the same port.
    listen: SocketAddr,
    /// The security database (RON), relative to the config file's directory.
    database: PathBuf,
    #[serde(default)]
    bridge: BridgeFile,
}

/// Checked replica settings.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    pub listen: SocketAddr,
    pub database: PathBuf,
    pub bridge: BridgeConfig,
}

impl ReplicaConfig {
    /// Loads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file: ReplicaFile = load_ron(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Ok(ReplicaConfig {
            listen: file.listen,
            database: base.join(file.database),
            bridge: BridgeConfig::from_file(&file.bridge, path)?,
        })
    }
}
