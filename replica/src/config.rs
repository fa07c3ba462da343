//! The replica's config file (RON): where to listen, where its copy of the security database
//! comes from (a master to follow, or a fixed file), the bridge settings, the audit journal,
//! the metrics endpoint and the log level. Reads one file;
//! errors name file and field.

use crate::audit::{AuditConfig, AuditFile};
use crate::bridge::{BridgeConfig, BridgeFile};
use crate::follower::{FollowConfig, FollowFile};
use crate::serving::{restart_only, ServerConfig};
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
    /// The audit journal (`crate::audit::config`); on by default when following a master.
    #[serde(default)]
    audit: AuditFile,
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
    pub audit: Option<AuditConfig>,
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
            bridge: BridgeConfig::from_file(&file.bridge, path)?,
            metrics_listen: file.metrics_listen,
            log_level,
            audit: match (file.audit.enabled, &source) {
                (Some(true), _) | (None, Source::Follow(_)) => {
                    // Named after the replica's store, beside it (a directory the service may
                    // write); a standalone replica's beside its config.
                    let store = match &source {
                        Source::Follow(f) => f.store.clone(),
                        Source::File(_) => base.join("replica"),
                    };
                    Some(AuditConfig::from_file(&file.audit, path, base, &store)?)
                }
                (Some(false), _) | (None, Source::File(_)) => None,
            },
            source,
        })
    }
}

impl ServerConfig for ReplicaConfig {
    type Error = ConfigError;

    fn load(path: &Path) -> Result<Self, ConfigError> {
        ReplicaConfig::load(path)
    }

    fn bridge(&self) -> &BridgeConfig {
        &self.bridge
    }

    fn log_level(&self) -> Option<LevelFilter> {
        self.log_level
    }

    /// The address, the metrics address, the audit journal and the whole database source.
    fn restart_only(&self, new: &Self, out: &mut Vec<String>) {
        restart_only(out, "listen", &self.listen, &new.listen);
        restart_only(out, "audit", &self.audit, &new.audit);
        restart_only(
            out,
            "metrics_listen",
            &self.metrics_listen,
            &new.metrics_listen,
        );
        match (&self.source, &new.source) {
            (Source::File(a), Source::File(b)) => restart_only(out, "database", a, b),
            (Source::Follow(a), Source::Follow(b)) => {
                let masters = |f: &FollowConfig| -> Vec<String> {
                    f.masters
                        .iter()
                        .map(|m| format!("{} (key {})", m.address, m.key))
                        .collect()
                };
                restart_only(out, "replication.masters", &masters(a), &masters(b));
                restart_only(out, "replication.host", &a.host, &b.host);
                restart_only(out, "replication.store", &a.store, &b.store);
                let (ka, kb) = (&a.node_key_file, &b.node_key_file);
                restart_only(out, "replication.node_key_file", ka, kb);
                let (sa, sb) = (&a.status_file, &b.status_file);
                restart_only(out, "replication.status_file", sa, sb);
                let timings = |f: &FollowConfig| (f.timings, f.connect_timeout);
                restart_only(out, "replication timings", &timings(a), &timings(b));
            }
            _ => out.push("database / replication (the source of the database)".into()),
        }
    }
}
