//! `gatehouse-loadgen demo`: a whole deployment on loopback. Provisions a database into a
//! temporary directory, starts three `gatehouse-replica` processes on free ports from generated
//! configs, runs the simulated agents against them (closed loop with a think time), prints the
//! live per-server table every second, and ends by itself: the agents stop, every process it
//! started gets SIGTERM and is waited for (also on errors and Ctrl-C: the [`Children`] guard),
//! the temporary directory is removed, and the final report is printed.
//!
//! Not pure: processes, files, sockets, the clock. Called by [`super::cli`].

use super::args::{DemoArgs, Mode};
use super::cli::{CliError, Shared};
use super::mix::Mix;
use super::monitor::Monitor;
use super::procs::Children;
use super::provision::{provision, write_files, DB_FILE};
use super::report::{final_report, server_table};
use super::run::{Run, RunEvent, RunPlan};
use super::stats::{RunLabel, Summary};
use crate::balance::Balancing;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Replicas the demo starts (three: enough to see the shares move, few enough for 2 cores).
pub const DEMO_REPLICAS: usize = 3;
/// The replicas' connection age limit in the demo (5 s, default 60 s): agents are told to
/// reconnect and re-probe every few seconds, so the balancing is seen working during a short
/// demo rather than once at the start.
pub const DEMO_CONNECTION_AGE_MS: u64 = 5000;
/// The replicas' drain on SIGTERM in the demo (1 s, default 5 s): the demo's agents have
/// stopped by then, so there is nothing to wait for.
pub const DEMO_DRAIN_MS: u64 = 1000;
/// How long the table's probes wait for replies (200 ms): a reply slower than that is itself
/// a sign of overload and shows as "no reply".
pub const MONITOR_PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// Seed of the demo's keys (fixed, so the temporary database is the same every run).
const DEMO_SEED: u64 = 2024;

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, CliError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("gatehouse-demo-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(|e| CliError::Runtime(format!("{}: {e}", path.display())))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The replica binary: built next to this executable.
fn replica_binary() -> Result<PathBuf, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Runtime(format!("cannot find this executable: {e}")))?;
    let path = exe.with_file_name("gatehouse-replica");
    if !path.exists() {
        return Err(CliError::Runtime(format!(
            "{} not found: build it first (cargo build --release --bins)",
            path.display()
        )));
    }
    Ok(path)
}

/// Extra replica arguments. HOOK: once the master exists, the demo starts it first (with
/// [`Children::start_server`] and a generated master config) and returns
/// `["--master", ADDR]` here so every replica replicates from it.
fn replica_extra_args(master: Option<SocketAddr>) -> Vec<String> {
    master.map_or_else(Vec::new, |m| vec!["--master".into(), m.to_string()])
}

fn write_replica_config(dir: &Path, index: usize) -> Result<PathBuf, CliError> {
    let path = dir.join(format!("replica{index}.ron"));
    let text = format!(
        "(listen: \"127.0.0.1:0\", database: \"{DB_FILE}\", bridge: (\
         max_connection_age_ms: {DEMO_CONNECTION_AGE_MS}, drain_timeout_ms: {DEMO_DRAIN_MS}))"
    );
    std::fs::write(&path, text)
        .map_err(|e| CliError::Runtime(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// Runs the demo; returns its summary (already printed).
pub fn run_demo(args: &DemoArgs, shared: &Shared) -> Result<Summary, CliError> {
    shared.prepare(args.agents, None)?;
    let dir = TempDir::new()?;
    let (db, identities) =
        provision(args.agents, DEMO_SEED).map_err(|e| CliError::Runtime(e.to_string()))?;
    write_files(&dir.0, &db, &identities).map_err(|e| CliError::Runtime(e.to_string()))?;
    let binary = replica_binary()?;
    // Declared after `dir` so it is dropped first: processes stop before their files go.
    let mut children = Children::new();
    let master = None; // the master is not built yet: see `replica_extra_args`.
    let mut servers = Vec::new();
    for i in 0..DEMO_REPLICAS {
        let config = write_replica_config(&dir.0, i)?;
        let mut replica_args = vec!["--config".to_string(), config.display().to_string()];
        replica_args.extend(replica_extra_args(master));
        let log = dir.0.join(format!("replica{i}.log"));
        let addr = children
            .start_server(&format!("replica {i}"), &binary, &replica_args, &log)
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        let pid = children.pids().last().copied().unwrap_or(0);
        println!("started replica {i} (pid {pid}) on {addr}");
        servers.push(addr);
    }
    let first = identities
        .first()
        .ok_or_else(|| CliError::Runtime("no identities".into()))?;
    let monitor = Monitor::new(first.host.clone(), first.key.clone(), servers.clone())
        .map_err(|e| CliError::Runtime(format!("monitor socket: {e}")))?;
    let mix = Mix::default();
    let plan = RunPlan {
        servers: servers.clone(),
        identities,
        threads: 1,
        mode: Mode::Closed {
            concurrency: 1,
            think: args.think,
        },
        duration: args.duration,
        mix,
        balancing: Balancing::Probing,
        seed: DEMO_SEED,
    };
    println!(
        "running {} agents (closed loop, think {} ms) for {:.0} s; Ctrl-C stops early",
        args.agents,
        args.think.as_millis(),
        args.duration.as_secs_f64()
    );
    let label = RunLabel {
        mode: "closed".into(),
        agents: args.agents,
        threads: 1,
        balancing: "probing".into(),
        mix: mix.to_text(),
        servers: servers.iter().map(ToString::to_string).collect(),
    };
    let names = label.servers.clone();
    let mut run = Run::start(plan, shared.stop.clone())
        .map_err(|e| CliError::Runtime(format!("cannot start workers: {e}")))?;
    let mut rng = StdRng::seed_from_u64(DEMO_SEED);
    let (stats, elapsed) = loop {
        match run.next(Duration::from_secs(2)) {
            Some(RunEvent::Tick {
                second,
                stats,
                connections,
            }) => {
                let probes = monitor.probe_all(MONITOR_PROBE_TIMEOUT, &mut rng);
                print!(
                    "{}",
                    server_table(second, &stats, connections, &names, &probes)
                );
            }
            Some(RunEvent::Done { stats, elapsed }) => break (stats, elapsed),
            Some(RunEvent::Failed(e)) => return Err(CliError::Runtime(e)),
            None => {}
        }
    };
    drop(run);
    let pids = children.pids();
    children.stop_all();
    println!("stopped {} replica process(es): pids {pids:?}", pids.len());
    let summary = Summary::new(&label, &stats, elapsed.as_secs_f64());
    print!("{}", final_report(&summary));
    Ok(summary)
}
