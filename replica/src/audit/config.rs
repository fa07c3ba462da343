//! The `audit` section of a server's config (replica and master alike): where the journal
//! lives, when an answer may leave (after its record is synced to disk, or written), how big
//! the journal may grow while the master is away and what happens then. Read once at start
//! (a reload names it as needing a restart).

use super::segment::SEGMENT_BYTES;
use gatehouse_common::config::ConfigError;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The journal's directory when the config names none is named after the server's store with
/// this suffix, beside it (`master.sqlite` -> `master-audit/`, where the service may write): a
/// master and replicas whose stores share a directory (one host, a demo, /var/lib/gatehouse)
/// get a journal each by default. A standalone replica (no store) uses `replica-audit/` beside
/// its config file.
pub const DEFAULT_DIR_SUFFIX: &str = "-audit";
/// Most bytes of journal on disk (2 GiB): about ten million records, a week of a busy
/// fleet's logins (about 17 decisions a second) with the master away.
pub const DEFAULT_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// The smallest `max_bytes` accepted (128 KiB): eight segments of the smallest size.
pub const MIN_MAX_BYTES: u64 = 128 * 1024;
/// The smallest segment (16 KiB). A journal's segments are an eighth of `max_bytes`, between
/// this and [`SEGMENT_BYTES`], so a full journal drops (or frees) about an eighth at a time.
pub const MIN_SEGMENT_BYTES: u64 = 16 * 1024;
/// With `answer_after: Written`, how often the writer syncs (10 ms): what a power loss can
/// take from the journal's tail in that mode.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(10);
/// When an answer leaves unless the config says otherwise: `Written`. It keeps the promise the
/// trail is for (a crash of the server process, the SIGKILL tests' case, loses no decision an
/// agent saw) at 0.2-0.6 µs of server CPU a request (docs/BENCHMARKS.md, "Audit": about 0.9x
/// of journal-off on a saturated core, where `Synced` reaches 0.28x at 50 agents, bound by
/// the ~2 ms a sync takes). `Synced` is the choice for sites that must keep every answered
/// decision through a power failure too (docs/SECURITY.md, "The audit trail").
pub const DEFAULT_ANSWER_AFTER: AnswerAfter = AnswerAfter::Written;

/// The journal's directory for a server whose store is `store` when the config names none:
/// `<store's stem>-audit` beside it.
pub fn default_dir(store: &Path) -> PathBuf {
    let stem = store
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gatehouse".into());
    store.with_file_name(format!("{stem}{DEFAULT_DIR_SUFFIX}"))
}

/// When an answer may leave for the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AnswerAfter {
    /// Once its record is on disk (fdatasync): no decision an agent saw is lost, even to a
    /// power failure. Each answer waits for the next group commit (one sync for every record
    /// that arrived meanwhile), so with few agents throughput follows the disk's sync time.
    Synced,
    /// Once its record is written to the journal file (the kernel has it; the default): no
    /// decision an agent saw is lost to a crash of the server process (SIGKILL, a panic, the
    /// OOM killer); a power failure or kernel crash can lose the last `sync_interval_ms`
    /// (the writer syncs that often while records arrive).
    Written,
}

/// What happens when the journal holds `max_bytes` (the master has been away long).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum WhenFull {
    /// Delete the oldest unrelayed records to make room: decisions go on, the trail has a
    /// gap (counted, logged, shown in metrics and to the master).
    DropOldest,
    /// Refuse requests the journal cannot record: agents are told "busy, go elsewhere" (a
    /// replica with room answers), so no decision goes unrecorded.
    RefuseNew,
}

/// The section as written (every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFile {
    /// Whether to keep the journal. Default: yes on a server that reports to a master (a
    /// following replica, the master itself), no on a standalone replica (nobody reads it).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The journal's directory, relative to the config file (created, mode 0700); default
    /// the store's name with [`DEFAULT_DIR_SUFFIX`], beside the store.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    #[serde(default)]
    pub answer_after: Option<AnswerAfter>,
    #[serde(default)]
    pub max_bytes: Option<u64>,
    #[serde(default)]
    pub when_full: Option<WhenFull>,
    #[serde(default)]
    pub sync_interval_ms: Option<u64>,
}

/// Checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    pub dir: PathBuf,
    pub answer_after: AnswerAfter,
    pub max_bytes: u64,
    pub when_full: WhenFull,
    pub sync_interval: Duration,
    /// Bytes after which a segment is closed: an eighth of `max_bytes`, within
    /// [`MIN_SEGMENT_BYTES`]..=[`SEGMENT_BYTES`].
    pub segment_bytes: u64,
}

impl AuditConfig {
    /// Settings for a journal in `dir` with every default.
    pub fn in_dir(dir: PathBuf) -> Self {
        AuditConfig {
            dir,
            answer_after: DEFAULT_ANSWER_AFTER,
            max_bytes: DEFAULT_MAX_BYTES,
            when_full: WhenFull::DropOldest,
            sync_interval: DEFAULT_SYNC_INTERVAL,
            segment_bytes: SEGMENT_BYTES,
        }
    }

    /// Checks the section of the config file `path` (whose directory is `base`); `store` is
    /// the server's store, which names the default directory ([`default_dir`]).
    pub fn from_file(
        file: &AuditFile,
        path: &Path,
        base: &Path,
        store: &Path,
    ) -> Result<Self, ConfigError> {
        let max_bytes = file.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
        if max_bytes < MIN_MAX_BYTES {
            return Err(ConfigError::invalid(
                path,
                "audit.max_bytes",
                format!("{max_bytes} is below the minimum of {MIN_MAX_BYTES} bytes"),
            ));
        }
        let sync_ms = file
            .sync_interval_ms
            .unwrap_or(DEFAULT_SYNC_INTERVAL.as_millis() as u64);
        if !(1..=10_000).contains(&sync_ms) {
            return Err(ConfigError::invalid(
                path,
                "audit.sync_interval_ms",
                format!("{sync_ms} is outside 1..=10000"),
            ));
        }
        Ok(AuditConfig {
            dir: match &file.dir {
                Some(dir) => base.join(dir),
                None => default_dir(store),
            },
            answer_after: file.answer_after.unwrap_or(DEFAULT_ANSWER_AFTER),
            max_bytes,
            when_full: file.when_full.unwrap_or(WhenFull::DropOldest),
            sync_interval: Duration::from_millis(sync_ms),
            segment_bytes: (max_bytes / 8).clamp(MIN_SEGMENT_BYTES, SEGMENT_BYTES),
        })
    }
}
