//! The master's config file (RON): where agents connect, the SQLite store, the admin socket,
//! the address reserved for replication, the central lockout's policy (`lockout`), the bridge
//! settings (the same section as a replica's), the metrics endpoint and the log level. Reads
//! one file; errors name the file and the field.

use crate::audit::{MasterAuditConfig, MasterAuditFile};
use crate::lockout::config::{LockoutConfig, LockoutFile};
use crate::passwords::{PasswordPolicy, PasswordPolicyFile};
use gatehouse_common::config::{load_ron, ConfigError};
use gatehouse_common::service::logging;
use gatehouse_replica::bridge::{BridgeConfig, BridgeFile};
use gatehouse_replica::serving::{restart_only, ServerConfig};
use log::LevelFilter;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the admin socket lives unless the config says otherwise.
pub const DEFAULT_ADMIN_SOCKET: &str = "/run/gatehouse-master/admin.sock";
/// The master key's file name, beside the store, unless the config says otherwise.
pub const DEFAULT_MASTER_KEY_FILE: &str = "master.key";
/// How long an admin write waits, after a restart, for a replica to confirm this master's
/// epoch before it is refused (30 s): a replica reconnects within its backoff (1 s, then
/// 1.6 s...), and the CLI's own 120 s timeout is far above it.
pub const DEFAULT_WRITE_CONFIRM_WAIT: Duration = Duration::from_secs(30);

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MasterFile {
    /// TCP address for agents; UDP probes use the same port.
    listen: SocketAddr,
    /// The SQLite store, relative to the config file's directory. Created when missing.
    database: PathBuf,
    /// The admin socket path, relative to the config file's directory.
    #[serde(default)]
    admin_socket: Option<PathBuf>,
    /// Where replicas connect to follow this master (TCP); `None`: no replication.
    #[serde(default)]
    replication_listen: Option<SocketAddr>,
    /// The master's Ed25519 secret key (replicas pin its public key), relative to the config
    /// file's directory. Default: `master.key` beside the store. Created on first start.
    #[serde(default)]
    master_key: Option<PathBuf>,
    /// How long an admin write waits after a restart for a replica to confirm this master's
    /// epoch, milliseconds (default 30000).
    #[serde(default)]
    write_confirm_wait_ms: Option<u64>,
    /// Uids allowed on the admin socket besides root and the master's own uid.
    #[serde(default)]
    admin_uids: Vec<u32>,
    /// The central lockout (see `lockout::config`); every field optional.
    #[serde(default)]
    lockout: LockoutFile,
    #[serde(default)]
    bridge: BridgeFile,
    /// Serve metrics (Prometheus text) on this address; absent: no endpoint.
    #[serde(default)]
    metrics_listen: Option<SocketAddr>,
    /// off, error, warn, info (the default), debug or trace; `RUST_LOG` overrides it.
    #[serde(default)]
    log_level: Option<String>,
    /// Where `gatehouse-admin` may assign uids and gids.
    #[serde(default)]
    unix_ids: Option<UnixIdsFile>,
    /// The audit trail (`crate::audit::config`); every field optional.
    #[serde(default)]
    audit: MasterAuditFile,
    /// What a new password must be (`crate::passwords`); every field optional.
    #[serde(default)]
    password_policy: PasswordPolicyFile,
}

/// The `unix_ids` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnixIdsFile {
    uid_min: u32,
    uid_max: u32,
    gid_min: u32,
    gid_max: u32,
}

/// Lowest uid and gid the master assigns by default (100000). Why: above Debian's local user
/// range (1000-59999) and systemd's dynamic users (61184-65519), so directory ids never meet
/// local ones on a managed host.
pub const DEFAULT_UNIX_ID_MIN: u32 = 100_000;
/// Highest uid and gid assigned by default (199999): room for 100,000 users and groups, well
/// below the ranges container runtimes hand out (524288 and up).
pub const DEFAULT_UNIX_ID_MAX: u32 = 199_999;

/// The inclusive ranges uids and gids set through the admin socket must fall in; also where
/// the master picks the next free one when the admin gives none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnixIdRanges {
    pub uids: (u32, u32),
    pub gids: (u32, u32),
}

impl Default for UnixIdRanges {
    fn default() -> Self {
        UnixIdRanges {
            uids: (DEFAULT_UNIX_ID_MIN, DEFAULT_UNIX_ID_MAX),
            gids: (DEFAULT_UNIX_ID_MIN, DEFAULT_UNIX_ID_MAX),
        }
    }
}

impl UnixIdRanges {
    fn from_file(file: &UnixIdsFile, path: &Path) -> Result<Self, ConfigError> {
        let ranges = [
            ("uid", file.uid_min, file.uid_max),
            ("gid", file.gid_min, file.gid_max),
        ];
        for (kind, min, max) in ranges {
            if min == 0 || min > max || max == u32::MAX {
                return Err(ConfigError::invalid(
                    path,
                    "unix_ids",
                    format!(
                        "{kind}_min {min} .. {kind}_max {max} must be a non-empty range \
                         above 0 and below 4294967295"
                    ),
                ));
            }
        }
        Ok(UnixIdRanges {
            uids: (file.uid_min, file.uid_max),
            gids: (file.gid_min, file.gid_max),
        })
    }
}

/// Checked master settings.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    pub listen: SocketAddr,
    pub database: PathBuf,
    pub admin_socket: PathBuf,
    pub replication_listen: Option<SocketAddr>,
    pub master_key: PathBuf,
    pub write_confirm_wait: Duration,
    /// Uids allowed on the admin socket besides root and the master's own uid (numbers, not
    /// names: no NSS lookup at start). Default: none.
    pub admin_uids: Vec<u32>,
    pub lockout: LockoutConfig,
    pub bridge: BridgeConfig,
    pub unix_ids: UnixIdRanges,
    pub metrics_listen: Option<SocketAddr>,
    pub log_level: Option<LevelFilter>,
    pub audit: MasterAuditConfig,
    pub password_policy: PasswordPolicy,
}

impl MasterConfig {
    /// Loads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file: MasterFile = load_ron(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let admin_socket = file
            .admin_socket
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ADMIN_SOCKET));
        let database = base.join(file.database);
        let master_key = match file.master_key {
            Some(path) => base.join(path),
            None => database
                .parent()
                .unwrap_or(Path::new("."))
                .join(DEFAULT_MASTER_KEY_FILE),
        };
        let audit = MasterAuditConfig::from_file(&file.audit, path, base, &database)?;
        let password_policy = PasswordPolicy::from_file(&file.password_policy, path, base)?;
        Ok(MasterConfig {
            audit,
            password_policy,
            listen: file.listen,
            database,
            master_key,
            write_confirm_wait: file
                .write_confirm_wait_ms
                .map_or(DEFAULT_WRITE_CONFIRM_WAIT, Duration::from_millis),
            admin_socket: base.join(admin_socket),
            replication_listen: file.replication_listen,
            admin_uids: file.admin_uids,
            lockout: LockoutConfig::from_file(&file.lockout, path)?,
            bridge: BridgeConfig::from_file(&file.bridge, path)?,
            unix_ids: match &file.unix_ids {
                Some(ids) => UnixIdRanges::from_file(ids, path)?,
                None => UnixIdRanges::default(),
            },
            metrics_listen: file.metrics_listen,
            log_level: match &file.log_level {
                Some(text) => Some(logging::parse_level(path, text)?),
                None => None,
            },
        })
    }
}

impl ServerConfig for MasterConfig {
    type Error = ConfigError;

    fn load(path: &Path) -> Result<Self, ConfigError> {
        MasterConfig::load(path)
    }

    fn bridge(&self) -> &BridgeConfig {
        &self.bridge
    }

    fn log_level(&self) -> Option<LevelFilter> {
        self.log_level
    }

    /// Everything outside `bridge` and `log_level`: addresses, files, the admin uids, the
    /// Unix id ranges, the lockout policy.
    fn restart_only(&self, new: &Self, out: &mut Vec<String>) {
        let (a, b) = (self, new);
        restart_only(out, "listen", &a.listen, &b.listen);
        restart_only(out, "database", &a.database, &b.database);
        restart_only(out, "admin_socket", &a.admin_socket, &b.admin_socket);
        let (ra, rb) = (&a.replication_listen, &b.replication_listen);
        restart_only(out, "replication_listen", ra, rb);
        restart_only(out, "master_key", &a.master_key, &b.master_key);
        let (wa, wb) = (&a.write_confirm_wait, &b.write_confirm_wait);
        restart_only(out, "write_confirm_wait_ms", wa, wb);
        restart_only(out, "admin_uids", &a.admin_uids, &b.admin_uids);
        restart_only(out, "metrics_listen", &a.metrics_listen, &b.metrics_listen);
        restart_only(out, "unix_ids", &a.unix_ids, &b.unix_ids);
        restart_only(out, "lockout", &a.lockout, &b.lockout);
        restart_only(out, "audit", &a.audit, &b.audit);
        let rules = |c: &Self| (c.password_policy.default, c.password_policy.classes.clone());
        restart_only(out, "password_policy", &rules(a), &rules(b));
    }
}
