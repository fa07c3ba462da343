//! The master's `audit` section: its own decisions' journal (the same settings as a
//! replica's), where every server's records are stored, how long they are kept, and where
//! they are forwarded. Read at start (a reload names it as needing a restart).

use gatehouse_common::audit::syslog::{SyslogFormat, DEFAULT_ENTERPRISE_NUMBER, DEFAULT_FACILITY};
use gatehouse_common::config::ConfigError;
use gatehouse_replica::audit::{AuditConfig, AuditFile};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The store's file when the config names none: `audit.sqlite` beside the security database.
pub const DEFAULT_STORE_FILE: &str = "audit.sqlite";
/// The server name of the master's own records when the config names none.
pub const DEFAULT_SERVER_NAME: &str = "master";
/// How long records are kept (365 days): a year of history, what most audit regimes ask.
pub const DEFAULT_RETENTION_DAYS: u64 = 365;
/// Most records kept (50 million, roughly 15 GiB with the indexes): the oldest go first.
pub const DEFAULT_MAX_RECORDS: u64 = 50_000_000;

/// The section as written (every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterAuditFile {
    /// The journal of the master's own decisions (as a replica's `audit`).
    #[serde(default)]
    journal: AuditFile,
    /// The store of every server's records, relative to the config file.
    #[serde(default)]
    store: Option<PathBuf>,
    /// The server name the master's own records carry.
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    retention_days: Option<u64>,
    #[serde(default)]
    max_records: Option<u64>,
    #[serde(default)]
    syslog: Option<SyslogFile>,
}

/// `syslog: (address: "HOST:PORT")` (UDP) or `(socket: "/dev/log")`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyslogFile {
    #[serde(default)]
    address: Option<SocketAddr>,
    #[serde(default)]
    socket: Option<PathBuf>,
    #[serde(default)]
    facility: Option<u8>,
    #[serde(default)]
    enterprise_number: Option<u32>,
}

/// Where syslog messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    Udp(SocketAddr),
    Unix(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogConfig {
    pub target: SyslogTarget,
    pub format: SyslogFormat,
}

/// Checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterAuditConfig {
    /// `None`: the master's own decisions are not journaled (`journal: (enabled: false)`).
    pub journal: Option<AuditConfig>,
    pub store: PathBuf,
    pub server_name: String,
    pub retention: Duration,
    pub max_records: u64,
    pub syslog: Option<SyslogConfig>,
}

impl MasterAuditConfig {
    /// Checks the section of config file `path` (directory `base`); the store defaults to
    /// beside `database`.
    pub fn from_file(
        file: &MasterAuditFile,
        path: &Path,
        base: &Path,
        database: &Path,
    ) -> Result<Self, ConfigError> {
        let journal = match file.journal.enabled {
            Some(false) => None,
            _ => Some(AuditConfig::from_file(&file.journal, path, base, database)?),
        };
        let store = match &file.store {
            Some(store) => base.join(store),
            None => database
                .parent()
                .unwrap_or(Path::new("."))
                .join(DEFAULT_STORE_FILE),
        };
        let server_name = file
            .server_name
            .clone()
            .unwrap_or_else(|| DEFAULT_SERVER_NAME.into());
        if server_name.is_empty() || server_name.len() > 255 {
            return Err(ConfigError::invalid(
                path,
                "audit.server_name",
                "must be 1 to 255 bytes",
            ));
        }
        let days = file.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS);
        if days == 0 {
            return Err(ConfigError::invalid(
                path,
                "audit.retention_days",
                "must be at least 1",
            ));
        }
        let syslog = match &file.syslog {
            None => None,
            Some(s) => Some(syslog_config(s, path, base)?),
        };
        Ok(MasterAuditConfig {
            journal,
            store,
            server_name,
            retention: Duration::from_secs(days.saturating_mul(86_400)),
            max_records: file.max_records.unwrap_or(DEFAULT_MAX_RECORDS).max(1),
            syslog,
        })
    }
}

fn syslog_config(s: &SyslogFile, path: &Path, base: &Path) -> Result<SyslogConfig, ConfigError> {
    let target = match (&s.address, &s.socket) {
        (Some(addr), None) => SyslogTarget::Udp(*addr),
        (None, Some(socket)) => SyslogTarget::Unix(base.join(socket)),
        _ => {
            return Err(ConfigError::invalid(
                path,
                "audit.syslog",
                "give exactly one of address (UDP) or socket (a local datagram socket)",
            ))
        }
    };
    let facility = s.facility.unwrap_or(DEFAULT_FACILITY);
    if facility > 23 {
        return Err(ConfigError::invalid(
            path,
            "audit.syslog.facility",
            format!("{facility} is not a syslog facility (0..=23)"),
        ));
    }
    Ok(SyslogConfig {
        target,
        format: SyslogFormat {
            facility,
            enterprise_number: s.enterprise_number.unwrap_or(DEFAULT_ENTERPRISE_NUMBER),
        },
    })
}
