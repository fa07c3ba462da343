//! The follower's view of its link, as the UDM seed's communication states: what `status`
//! shows from the replica's side, written to the optional status file.

use serde::Serialize;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

pub use gatehouse_common::repl::LinkState;

/// What the follower reports.
#[derive(Debug, Clone)]
pub struct FollowerStatus {
    pub phase: LinkState,
    pub master: Option<SocketAddr>,
    pub applied: u64,
    pub master_head: u64,
    pub epoch: u64,
    pub last_heard: Option<Instant>,
    pub snapshots: u64,
}

#[derive(Serialize)]
struct StatusFile<'a> {
    state: LinkState,
    master: Option<String>,
    applied: u64,
    master_head: u64,
    lag: u64,
    epoch: u64,
    last_heard_ms: Option<u64>,
    stale_ms: Option<u64>,
    snapshots: u64,
    #[serde(skip)]
    _p: std::marker::PhantomData<&'a ()>,
}

impl FollowerStatus {
    pub fn new(applied: u64, epoch: u64) -> Self {
        FollowerStatus {
            phase: LinkState::Started,
            master: None,
            applied,
            master_head: applied,
            epoch,
            last_heard: None,
            snapshots: 0,
        }
    }

    /// RON text for the status file; `age_ms` is how stale the copy is (u64::MAX unknown).
    pub fn render(&self, age_ms: u64) -> String {
        let file = StatusFile {
            state: self.phase,
            master: self.master.map(|m| m.to_string()),
            applied: self.applied,
            master_head: self.master_head,
            lag: self.master_head.saturating_sub(self.applied),
            epoch: self.epoch,
            last_heard_ms: self.last_heard.map(|at| at.elapsed().as_millis() as u64),
            stale_ms: (age_ms != u64::MAX).then_some(age_ms),
            snapshots: self.snapshots,
            _p: std::marker::PhantomData,
        };
        ron::ser::to_string_pretty(&file, ron::ser::PrettyConfig::default()).unwrap_or_default()
    }
}

/// Writes via a private temporary file and a rename, so a reader never sees half a file; the
/// file is 0600 like every file a replica writes (it names the master and the copy's state).
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    gatehouse_common::os::secure_file::write_private_atomically(path, text.as_bytes())
}
