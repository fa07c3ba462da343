//! Setting up the demo's deployment in its temporary directory: finds (or, under `cargo run`,
//! builds) the server binaries, starts `gatehouse-master` with replication on a free port,
//! imports the provisioned fleet and registers the replicas through the real
//! `gatehouse-admin`, starts the `gatehouse-replica` followers, and waits until every one
//! reports the link established and the master's sequence applied.
//!
//! Not pure: files, processes, polling status files. Called by [`super::run_demo`]; every
//! process goes into the caller's [`Children`] guard before anything can fail.

use super::admin::Admin;
use super::status::{read_status, LinkState, ReplicaStatus};
use super::{DEMO_CONNECTION_AGE_MS, DEMO_DRAIN_MS, DEMO_HANDSHAKES_PER_SOURCE};
use crate::cli::CliError;
use crate::procs::{Children, Started};
use crate::provision::DB_FILE;
use gatehouse_common::repl::MasterPublicKey;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the replicas' status files are re-read while waiting (20 ms): a poll of three
/// small files, cheap, and well below the time a snapshot takes to apply.
const STATUS_POLL: Duration = Duration::from_millis(20);
/// The user the demo locks and unlocks while the agents run. The request mix never names
/// her, so the changes replicate without changing any agent's answer.
pub const DEMO_USER: &str = "carol";
/// The binaries the demo runs, built next to `gatehouse-loadgen`.
const SERVER_BINARIES: [&str; 3] = ["gatehouse-master", "gatehouse-replica", "gatehouse-admin"];

/// Where the server binaries are.
pub struct Binaries {
    pub master: PathBuf,
    pub replica: PathBuf,
    pub admin: PathBuf,
}

fn runtime(e: impl std::fmt::Display) -> CliError {
    CliError::Runtime(e.to_string())
}

/// The server binaries next to this executable. Under `cargo run -p gatehouse-loadgen` (cargo
/// sets `CARGO` and `CARGO_PKG_NAME` for the program it runs) they are built first, so the
/// README's one command works on a fresh clone and never runs stale servers.
pub fn binaries() -> Result<Binaries, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| runtime(format!("cannot find this executable: {e}")))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let under_cargo_run = std::env::var("CARGO_PKG_NAME").ok().as_deref()
        == Some(env!("CARGO_PKG_NAME"))
        && std::env::var_os("CARGO").is_some();
    if under_cargo_run {
        build_servers(dir)?;
    }
    let find = |name: &str| {
        let path = dir.join(name);
        if path.exists() {
            Ok(path)
        } else {
            Err(runtime(format!(
                "{} not found: build the servers first (cargo build --release --bins)",
                path.display()
            )))
        }
    };
    Ok(Binaries {
        master: find(SERVER_BINARIES[0])?,
        replica: find(SERVER_BINARIES[1])?,
        admin: find(SERVER_BINARIES[2])?,
    })
}

/// `cargo build` of the master and replica packages, same profile and target directory as
/// this executable: a no-op when they are current. Cargo's own progress shows on stderr.
fn build_servers(bin_dir: &Path) -> Result<(), CliError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args([
        "build",
        "--locked",
        "--bins",
        "-p",
        "gatehouse-master",
        "-p",
        "gatehouse-replica",
    ]);
    match bin_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(profile) => {
            build.args(["--profile", profile]);
        }
    }
    if let Some(target) = bin_dir.parent() {
        build.env("CARGO_TARGET_DIR", target);
    }
    if let Some(manifest) = std::env::var_os("CARGO_MANIFEST_DIR") {
        build.current_dir(manifest);
    }
    println!("building the servers the demo runs (gatehouse-master, -replica, -admin)...");
    let status = build
        .status()
        .map_err(|e| runtime(format!("cannot run cargo build: {e}")))?;
    if !status.success() {
        return Err(runtime(format!(
            "cargo build of gatehouse-master and gatehouse-replica failed ({status})"
        )));
    }
    Ok(())
}

/// The running master.
pub struct MasterProc {
    pub started: Started,
    /// Where replicas connect (`replication_listen`, a free port).
    pub replication: SocketAddr,
    /// The master's public key, pinned in every replica's config.
    pub key: MasterPublicKey,
    pub log: PathBuf,
    pub admin_socket: PathBuf,
}

/// Writes `master.ron` and starts the master: agents and replication on free loopback ports,
/// the store and the admin socket in `dir`.
pub fn start_master(
    dir: &Path,
    binary: &Path,
    children: &mut Children,
) -> Result<MasterProc, CliError> {
    let config = dir.join("master.ron");
    let admin_socket = dir.join("admin.sock");
    let text = format!(
        "(listen: \"127.0.0.1:0\", database: \"master.sqlite\", admin_socket: \"admin.sock\", \
         replication_listen: Some(\"127.0.0.1:0\"), bridge: (\
         max_connection_age_ms: {DEMO_CONNECTION_AGE_MS}, drain_timeout_ms: {DEMO_DRAIN_MS}, \
         max_handshakes_per_source: {DEMO_HANDSHAKES_PER_SOURCE}))"
    );
    std::fs::write(&config, text).map_err(|e| runtime(format!("{}: {e}", config.display())))?;
    let log = dir.join("master.log");
    let args = vec!["--config".to_string(), config.display().to_string()];
    let started = children
        .start_server("gatehouse-master", binary, &args, &log)
        .map_err(runtime)?;
    let (Some(replication), Some(key)) = (started.replication, started.master_key) else {
        return Err(runtime(format!(
            "gatehouse-master printed no `replication on ADDR` or `master key HEX` line; its \
             log is {}",
            log.display()
        )));
    };
    Ok(MasterProc {
        started,
        replication,
        key,
        log,
        admin_socket,
    })
}

/// The replica host names: `replica0`, `replica1`...
pub fn replica_name(index: usize) -> String {
    format!("replica{index}")
}

/// Imports the provisioned fleet, registers `replicas` hosts (key files in `dir`) and puts
/// them on the replica allow-list, and adds [`DEMO_USER`]; each command is printed as an
/// admin would type it. Returns the master's sequence after the last change.
pub fn register(admin: &Admin, dir: &Path, replicas: usize) -> Result<u64, CliError> {
    let db = dir.join(DB_FILE).display().to_string();
    let mut commands: Vec<Vec<String>> = vec![vec!["import".into(), db]];
    for i in 0..replicas {
        let name = replica_name(i);
        let key = dir.join(format!("{name}.key")).display().to_string();
        commands.push(vec![
            "host".into(),
            "add".into(),
            name,
            "--key-file".into(),
            key,
        ]);
    }
    for i in 0..replicas {
        commands.push(vec!["replica".into(), "add".into(), replica_name(i)]);
    }
    commands.push(vec!["user".into(), "add".into(), DEMO_USER.into()]);
    let mut seq = 0;
    for command in &commands {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        seq = admin.change(&args).map_err(runtime)?;
        println!(
            "  gatehouse-admin {:<42} ok (sequence {seq})",
            shorten(&args)
        );
    }
    Ok(seq)
}

/// The command as shown: file paths reduced to their file name, so lines stay short.
fn shorten(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if a.starts_with('/') {
                Path::new(a)
                    .file_name()
                    .map_or(a.to_string(), |n| n.to_string_lossy().into_owned())
            } else {
                a.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A running follower.
pub struct ReplicaProc {
    pub name: String,
    pub started: Started,
    pub status_file: PathBuf,
    pub log: PathBuf,
}

/// Writes `replicaN.ron` and starts a replica following `master` (its address and pinned
/// key) as host `replicaN`, with its store, key and status file in `dir`.
pub fn start_replica(
    dir: &Path,
    index: usize,
    master: (SocketAddr, MasterPublicKey),
    binary: &Path,
    children: &mut Children,
) -> Result<ReplicaProc, CliError> {
    let name = replica_name(index);
    let config = dir.join(format!("{name}.ron"));
    let status_file = dir.join(format!("{name}-status.ron"));
    let (address, key) = master;
    let text = format!(
        "(listen: \"127.0.0.1:0\", replication: (masters: [(address: \"{address}\", \
         key: \"{key}\")], host: \"{name}\", \
         node_key_file: \"{name}.key\", store: \"{name}.sqlite\", \
         status_file: \"{name}-status.ron\"), bridge: (\
         max_connection_age_ms: {DEMO_CONNECTION_AGE_MS}, drain_timeout_ms: {DEMO_DRAIN_MS}, \
         max_handshakes_per_source: {DEMO_HANDSHAKES_PER_SOURCE}))"
    );
    std::fs::write(&config, text).map_err(|e| runtime(format!("{}: {e}", config.display())))?;
    let log = dir.join(format!("{name}.log"));
    let args = vec!["--config".to_string(), config.display().to_string()];
    let started = children
        .start_server(&name, binary, &args, &log)
        .map_err(runtime)?;
    Ok(ReplicaProc {
        name,
        started,
        status_file,
        log,
    })
}

/// Waits (at most `limit`, or until Ctrl-C) until every replica reports its link established
/// and `seq` applied; returns their statuses. The error names the replica still behind, what
/// it last reported, and its log file.
pub fn wait_replicated(
    replicas: &[ReplicaProc],
    seq: u64,
    limit: Duration,
    stop: &AtomicBool,
) -> Result<Vec<ReplicaStatus>, CliError> {
    let until = Instant::now() + limit;
    loop {
        let statuses: Vec<Option<ReplicaStatus>> = replicas
            .iter()
            .map(|r| read_status(&r.status_file))
            .collect();
        let behind = statuses.iter().position(|s| {
            !s.as_ref()
                .is_some_and(|s| s.state == LinkState::Established && s.applied >= seq)
        });
        match behind {
            None => return Ok(statuses.into_iter().flatten().collect()),
            Some(i) => {
                if stop.load(Ordering::Relaxed) {
                    return Err(runtime("interrupted while waiting for the replicas"));
                }
                if Instant::now() >= until {
                    let (name, log) = replicas.get(i).map_or((String::new(), String::new()), |r| {
                        (r.name.clone(), r.log.display().to_string())
                    });
                    let last = match statuses.get(i).cloned().flatten() {
                        Some(s) => format!(
                            "{}, applied {} of the master's {seq}",
                            s.state.name(),
                            s.applied
                        ),
                        None => "no status file yet".into(),
                    };
                    return Err(runtime(format!(
                        "{name} did not replicate sequence {seq} within {limit:?} (last status: \
                         {last}); its log is {log}"
                    )));
                }
                std::thread::sleep(STATUS_POLL);
            }
        }
    }
}

/// How often the status files are re-read while timing an admin change's propagation (1 ms):
/// on loopback a change reaches every replica within milliseconds, and three small reads a
/// millisecond cost nothing on the demo's main thread, which runs no agents.
const PROPAGATION_POLL: Duration = Duration::from_millis(1);

/// How long after the master acknowledged change `seq` every replica reported it applied, as
/// seen by polling their status files (at most `limit`; `None` when one was still behind).
pub fn propagation_time(
    replicas: &[ReplicaProc],
    seq: u64,
    acked: Instant,
    limit: Duration,
) -> Option<Duration> {
    loop {
        let all = replicas
            .iter()
            .all(|r| read_status(&r.status_file).is_some_and(|s| s.applied >= seq));
        let elapsed = acked.elapsed();
        if all {
            return Some(elapsed);
        }
        if elapsed >= limit {
            return None;
        }
        std::thread::sleep(PROPAGATION_POLL);
    }
}
