//! A master with followers for the replication tests: the real `gatehouse-master` and
//! `gatehouse-replica` binaries, set up through the real `gatehouse-admin`, waiting on the
//! replicas' status files (bounded polls: a replica reports progress only through them).

use crate::admin::{ask, run_admin};
use crate::process::{start_master, MasterFiles, ServerProcess};
use crate::WAIT_LIMIT;
use gatehouse_common::nodekeys::NodeKey;
use gatehouse_master::admin::proto::{AdminRequest, AdminResponse};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a status file is re-read while waiting (a bounded poll of a file).
const POLL: Duration = Duration::from_millis(10);

/// The link timings the tests give replicas: fast, so failures show within a second.
pub const TEST_HEARTBEAT_MS: u64 = 200;
pub const TEST_HEARTBEAT_TIMEOUT_MS: u64 = 800;

/// A master plus the names of the replicas registered on it.
pub struct Cluster {
    pub files: MasterFiles,
    pub master: ServerProcess,
}

impl Cluster {
    /// Starts a master and registers `replicas` (host + allow-list) and an agent host `web1`
    /// with user alice allowed to SSH to web*.
    pub fn start(replicas: &[&str]) -> Cluster {
        Self::start_on(replicas, "127.0.0.1:0")
    }

    /// [`Cluster::start`] with the master's replication on a fixed address.
    pub fn start_on(replicas: &[&str], replication: &str) -> Cluster {
        Self::start_with(replicas, replication, "")
    }

    /// [`Cluster::start_on`] with more master settings (see [`MasterFiles::with_settings`]).
    pub fn start_with(replicas: &[&str], replication: &str, settings: &str) -> Cluster {
        let files = MasterFiles::with_settings("()", replication, settings);
        let master = start_master(&files);
        let cluster = Cluster { files, master };
        for name in replicas.iter().copied().chain(["web1"]) {
            let key = cluster.key_path(name);
            cluster.admin_ok(&[
                "host",
                "add",
                name,
                "--key-file",
                key.to_str().expect("utf-8 path"),
            ]);
        }
        for name in replicas {
            cluster.admin_ok(&["replica", "add", name]);
        }
        cluster.admin_ok(&["user", "add", "alice"]);
        cluster.admin_ok(&["route", "add", "--user", "alice", "SSH:*->alice@web*"]);
        cluster
    }

    pub fn key_path(&self, host: &str) -> PathBuf {
        self.files.dir.path().join(format!("{host}.key"))
    }

    /// The node key of a host added by [`Cluster::start`].
    pub fn key(&self, host: &str) -> NodeKey {
        let text = std::fs::read_to_string(self.key_path(host)).expect("key file");
        NodeKey::from_hex(&text).expect("node key")
    }

    /// A host added by [`Cluster::start`], as an agent (or a test replica) holds it.
    pub fn test_host(&self, host: &str) -> crate::TestHost {
        crate::TestHost {
            name: host.into(),
            key: self.key(host),
        }
    }

    /// Waits (bounded) until the replica `host` has applied everything the master has.
    pub fn wait_caught_up(&self, host: &str) {
        let seq = self.sequence();
        ReplicaStatus::wait_for(&self.replica_dir(host), "the master's sequence", |s| {
            s.state == "Established" && s.applied >= seq
        });
    }

    /// Runs `gatehouse-admin` and expects success.
    pub fn admin_ok(&self, args: &[&str]) -> String {
        let run = run_admin(&self.files, args);
        assert_eq!(
            run.code, 0,
            "gatehouse-admin {args:?}: {}{}",
            run.stdout, run.stderr
        );
        run.stdout
    }

    /// The master's sequence.
    pub fn sequence(&self) -> u64 {
        match ask(&self.files, &AdminRequest::Status) {
            AdminResponse::Status(report) => report.sequence,
            other => panic!("status: {other:?}"),
        }
    }

    /// The master's replication address and public key, as a replica pins them.
    pub fn pinned(&self) -> (String, String) {
        let addr = self.master.replication.expect("the test master replicates");
        let key = self
            .master
            .master_key
            .clone()
            .expect("the master printed its key");
        (addr.to_string(), key)
    }

    /// Starts (or restarts) a follower named `host` in its own directory under the master's.
    pub fn start_replica(&self, host: &str) -> ServerProcess {
        let (addr, key) = self.pinned();
        self.start_replica_following(host, &[(&addr, &key)])
    }

    /// Starts a follower of the given masters (replication address, public key), in
    /// preference order.
    pub fn start_replica_following(&self, host: &str, masters: &[(&str, &str)]) -> ServerProcess {
        self.start_replica_with(host, masters, "")
    }

    /// [`Cluster::start_replica_following`] with more top-level settings (RON fields, each
    /// followed by a comma, for example `audit: (max_bytes: 131072),`).
    pub fn start_replica_with(
        &self,
        host: &str,
        masters: &[(&str, &str)],
        settings: &str,
    ) -> ServerProcess {
        self.start_replica_configured(host, masters, &self.replica_dir(host), settings)
    }

    /// [`Cluster::start_replica_following`] in the directory `dir` (a second process with
    /// the same replica name, say).
    pub fn start_replica_in(
        &self,
        host: &str,
        masters: &[(&str, &str)],
        dir: &Path,
    ) -> ServerProcess {
        self.start_replica_configured(host, masters, dir, "")
    }

    /// A follower named `host` in `dir` with extra top-level `settings` (see
    /// [`Cluster::start_replica_with`]).
    fn start_replica_configured(
        &self,
        host: &str,
        masters: &[(&str, &str)],
        dir: &Path,
        settings: &str,
    ) -> ServerProcess {
        std::fs::create_dir_all(dir).expect("replica dir");
        let repl = masters
            .iter()
            .map(|(addr, key)| format!("(address: {addr:?}, key: {key:?})"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = dir.join("replica.ron");
        std::fs::write(
            &config,
            format!(
                r#"(listen: "127.0.0.1:0", replication: (masters: [{repl}], host: "{host}",
                    node_key_file: "{key}", store: "replica.sqlite", status_file: "status.ron",
                    heartbeat_interval_ms: {TEST_HEARTBEAT_MS}, heartbeat_timeout_ms: {TEST_HEARTBEAT_TIMEOUT_MS}),
                    {settings} bridge: ())"#,
                key = self.key_path(host).display()
            ),
        )
        .expect("replica config");
        let config = config.to_string_lossy().to_string();
        ServerProcess::start_in("gatehouse-replica", &["--config", &config], dir, &[])
    }

    pub fn replica_dir(&self, host: &str) -> PathBuf {
        self.files.dir.path().join(format!("replica-{host}"))
    }
}

/// Makes a master key at `path` with `gatehouse-master --generate-key` (as an admin does for
/// a replica that may be promoted) and returns its public key, 64 hex digits.
pub fn generate_master_key(path: &Path) -> String {
    let out = std::process::Command::new(crate::bin_path("gatehouse-master"))
        .arg("--generate-key")
        .arg(path)
        .output()
        .expect("run gatehouse-master --generate-key");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .split("public key ")
        .nth(1)
        .map(|k| k.trim().to_string())
        .expect("the public key is printed")
}

/// A free 127.0.0.1 address (bound, then released) for a server that must keep its port
/// across restarts.
pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

/// A replica's status file, parsed loosely (field: value lines of RON).
#[derive(Debug, Clone, Default)]
pub struct ReplicaStatus {
    pub state: String,
    pub applied: u64,
    pub snapshots: u64,
    pub epoch: u64,
    pub stale_ms: Option<u64>,
}

impl ReplicaStatus {
    pub fn read(dir: &Path) -> Option<ReplicaStatus> {
        let text = std::fs::read_to_string(dir.join("status.ron")).ok()?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
                .map(|v| v.trim_end_matches(',').trim().to_string())
        };
        let number = |name: &str| field(name).and_then(|v| v.parse().ok());
        Some(ReplicaStatus {
            state: field("state")?,
            applied: number("applied")?,
            snapshots: number("snapshots")?,
            epoch: number("epoch").unwrap_or(0),
            stale_ms: field("stale_ms")
                .and_then(|v| v.strip_prefix("Some(")?.strip_suffix(')')?.parse().ok()),
        })
    }

    /// Waits (bounded) until the status satisfies `ok`; returns it.
    pub fn wait_for(dir: &Path, what: &str, ok: impl Fn(&ReplicaStatus) -> bool) -> ReplicaStatus {
        Self::wait_within(dir, what, WAIT_LIMIT, ok)
    }

    /// [`ReplicaStatus::wait_for`] with another bound (a large snapshot takes longer).
    pub fn wait_within(
        dir: &Path,
        what: &str,
        limit: Duration,
        ok: impl Fn(&ReplicaStatus) -> bool,
    ) -> ReplicaStatus {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < limit {
            if let Some(status) = ReplicaStatus::read(dir) {
                if ok(&status) {
                    return status;
                }
                last = Some(status);
            }
            std::thread::sleep(POLL);
        }
        panic!(
            "replica in {} never reached {what}; last status {last:?}",
            dir.display()
        );
    }
}
