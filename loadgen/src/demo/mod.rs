//! `gatehouse-loadgen demo`: a whole deployment on loopback. Provisions a fleet into a
//! temporary directory; starts `gatehouse-master` (replication on a free port, its admin
//! socket in that directory); imports the fleet and registers three replica hosts on the
//! replica allow-list through the real `gatehouse-admin`; starts three `gatehouse-replica`
//! processes following the master and waits until each has the link established and the
//! master's sequence applied. Then it runs the simulated agents against all four servers
//! (closed loop with a think time), makes an admin change every few seconds, prints the live
//! per-server table every second (load, share, p99, and each replica's replication), and ends
//! by itself: the agents stop, every process it started — master too — gets SIGTERM and is
//! waited for (also on errors and Ctrl-C: the [`Children`] guard), the temporary directory is
//! removed, and the final report is printed.
//!
//! Not pure: processes, files, sockets, the clock. Called by [`super::cli`]. Pure parts:
//! [`table`] (the text) and [`status::parse_status`].

pub mod admin;
pub mod deploy;
pub mod status;
pub mod table;

use super::args::{DemoArgs, Mode};
use super::cli::{CliError, Shared};
use super::mix::Mix;
use super::monitor::Monitor;
use super::procs::Children;
use super::provision::{provision, write_files};
use super::report::{final_report, fmt_us};
use super::run::{Run, RunEvent, RunPlan};
use super::stats::{RunLabel, Summary};
use admin::Admin;
use deploy::{ReplicaProc, DEMO_USER};
use gatehouse_agent::balance::Balancing;
use gatehouse_common::wire::LoadReport;
use rand::rngs::StdRng;
use rand::SeedableRng;
use status::{read_status, ReplicaSummary, ReplicationSummary};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use table::{live_table, replication_report, Copy, Row};

/// Replicas the demo starts (three: enough to see the shares move, few enough for 2 cores).
pub const DEMO_REPLICAS: usize = 3;
/// The servers' connection age limit in the demo (5 s, default 60 s): agents are told to
/// reconnect and re-probe every few seconds, so the balancing is seen working during a short
/// demo rather than once at the start.
pub const DEMO_CONNECTION_AGE_MS: u64 = 5000;
/// The servers' drain on SIGTERM in the demo (1 s, default 5 s): the demo's agents have
/// stopped by then, so there is nothing to wait for.
pub const DEMO_DRAIN_MS: u64 = 1000;
/// Handshakes in progress one source address may hold on the demo's servers: 512 (the whole
/// default handshake cap; default a quarter of it). Every simulated agent connects from
/// 127.0.0.1, where a real fleet spreads over thousands of addresses.
pub const DEMO_HANDSHAKES_PER_SOURCE: usize = 512;
/// How long the table's probes wait for replies (200 ms): a reply slower than that is itself
/// a sign of overload and shows as "no reply".
pub const MONITOR_PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// How long the replicas may take to establish their links and apply the imported fleet
/// before the agents start (15 s): a snapshot of thousands of hosts applies in well under a
/// second; the rest is room for a busy machine.
pub const REPLICATION_LIMIT: Duration = Duration::from_secs(15);
/// How long the replicas may take to apply the last admin change once the agents stop (5 s):
/// on loopback a change reaches them in milliseconds.
pub const FINAL_REPLICATION_LIMIT: Duration = Duration::from_secs(5);
/// How long the demo watches an admin change travel to the replicas before it prints the
/// table (1 s): on loopback it takes milliseconds; a change still not everywhere after a
/// second is worth showing as such.
pub const PROPAGATION_LIMIT: Duration = Duration::from_secs(1);
/// Seconds between the admin changes made while the agents run (3 s): often enough to see
/// the sequence move on every replica in a 20 s demo, rare enough to read each one.
pub const ADMIN_CHANGE_EVERY_S: u64 = 3;
/// The second of the first admin change (2): after the agents' start-up ramp, and early
/// enough that even a very short demo makes one.
const FIRST_ADMIN_CHANGE_S: u64 = 2;
/// Seed of the demo's keys (fixed, so the temporary database is the same every run).
const DEMO_SEED: u64 = 2024;

/// A directory removed when dropped, unless the demo failed: then its logs are what the
/// error message points to, so they stay.
struct TempDir(PathBuf, bool);

impl TempDir {
    fn new() -> Result<TempDir, CliError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("gatehouse-demo-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(|e| CliError::Runtime(format!("{}: {e}", path.display())))?;
        Ok(TempDir(path, false))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The admin change made at `second`, if one is due: lock, then unlock, then lock... the
/// demo user (`n` changes made so far).
fn admin_change_due(second: u64, n: u64) -> Option<[&'static str; 3]> {
    let due = second >= FIRST_ADMIN_CHANGE_S
        && (second - FIRST_ADMIN_CHANGE_S).is_multiple_of(ADMIN_CHANGE_EVERY_S);
    let verb = if n.is_multiple_of(2) {
        "lock"
    } else {
        "unlock"
    };
    due.then_some(["user", verb, DEMO_USER])
}

/// Runs the demo; returns its summary (already printed). On failure the temporary directory
/// is kept (every process has been stopped by then) and the error says where it is.
pub fn run_demo(args: &DemoArgs, shared: &Shared) -> Result<Summary, CliError> {
    shared.prepare(args.agents, None)?;
    let binaries = deploy::binaries()?;
    let mut dir = TempDir::new()?;
    match deploy_and_run(args, shared, &binaries, &dir) {
        Err(CliError::Runtime(e)) => {
            dir.1 = true;
            Err(CliError::Runtime(format!(
                "{e}\n(the demo's files and logs are kept in {})",
                dir.0.display()
            )))
        }
        other => other,
    }
}

fn deploy_and_run(
    args: &DemoArgs,
    shared: &Shared,
    binaries: &deploy::Binaries,
    dir: &TempDir,
) -> Result<Summary, CliError> {
    let (db, identities) =
        provision(args.agents, DEMO_SEED).map_err(|e| CliError::Runtime(e.to_string()))?;
    write_files(&dir.0, &db, &identities).map_err(|e| CliError::Runtime(e.to_string()))?;
    // Dropped when this function returns, before the caller removes (or keeps) the files.
    let mut children = Children::new();
    let master = deploy::start_master(&dir.0, &binaries.master, &mut children)?;
    println!(
        "started master   (pid {}) on {}, replication on {}",
        master.started.pid, master.started.addr, master.replication
    );
    let admin = Admin::new(
        binaries.admin.clone(),
        master.admin_socket.clone(),
        master.log.clone(),
        dir.0.join("admin.log"),
    );
    let mut master_seq = deploy::register(&admin, &dir.0, DEMO_REPLICAS)?;
    let mut replicas: Vec<ReplicaProc> = Vec::new();
    for i in 0..DEMO_REPLICAS {
        let r = deploy::start_replica(
            &dir.0,
            i,
            (master.replication, master.key),
            &binaries.replica,
            &mut children,
        )?;
        println!(
            "started {:<8} (pid {}) on {}, following the master",
            r.name, r.started.pid, r.started.addr
        );
        replicas.push(r);
    }
    deploy::wait_replicated(&replicas, master_seq, REPLICATION_LIMIT, &shared.stop)?;
    println!("every replica established and at sequence {master_seq}");
    let mut servers = vec![master.started.addr];
    servers.extend(replicas.iter().map(|r| r.started.addr));
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
        "running {} agents (closed loop, think {} ms) on the master and {DEMO_REPLICAS} \
         replicas for {:.0} s;\nan admin change every {ADMIN_CHANGE_EVERY_S} s; Ctrl-C stops early",
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
    let rows_for = |probes: Vec<Option<LoadReport>>| -> Vec<Row> {
        let mut copies = vec![Copy::Source];
        copies.extend(
            replicas
                .iter()
                .map(|r| Copy::Replica(read_status(&r.status_file))),
        );
        let names =
            std::iter::once("master".to_string()).chain(replicas.iter().map(|r| r.name.clone()));
        names
            .zip(&servers)
            .zip(copies)
            .zip(probes)
            .map(|(((name, addr), copy), probe)| Row {
                name,
                addr: *addr,
                probe,
                copy,
            })
            .collect()
    };
    let mut run = Run::start(plan, shared.stop.clone())
        .map_err(|e| CliError::Runtime(format!("cannot start workers: {e}")))?;
    let mut rng = StdRng::seed_from_u64(DEMO_SEED);
    let mut admin_changes = 0;
    let mut propagation_us = Vec::new();
    let (stats, elapsed) = loop {
        match run.next(Duration::from_secs(2)) {
            Some(RunEvent::Tick {
                second,
                stats,
                connections,
            }) => {
                if let Some(change) = admin_change_due(second, admin_changes) {
                    master_seq = admin
                        .change(&change)
                        .map_err(|e| CliError::Runtime(e.to_string()))?;
                    let acked = Instant::now();
                    admin_changes += 1;
                    let took =
                        deploy::propagation_time(&replicas, master_seq, acked, PROPAGATION_LIMIT);
                    propagation_us.push(took.map(|d| d.as_micros() as u64));
                    let seen = match took {
                        Some(d) => format!("on every replica in {}", fmt_us(d.as_micros() as u64)),
                        None => format!("not on every replica after {PROPAGATION_LIMIT:?}"),
                    };
                    println!(
                        "[{second:>3}s] gatehouse-admin {} -> ok (sequence {master_seq}), {seen}",
                        change.join(" ")
                    );
                }
                let probes = monitor.probe_all(MONITOR_PROBE_TIMEOUT, &mut rng);
                let rows = rows_for(probes);
                print!(
                    "{}",
                    live_table(second, &stats, connections, master_seq, &rows)
                );
            }
            Some(RunEvent::Done { stats, elapsed }) => break (stats, elapsed),
            Some(RunEvent::Failed(e)) => return Err(CliError::Runtime(e)),
            None => {}
        }
    };
    drop(run);
    // The last change may still be on its way: wait (bounded) so the summary shows where the
    // replicas ended, not a race. A replica still behind is reported as it is.
    let _ = deploy::wait_replicated(&replicas, master_seq, FINAL_REPLICATION_LIMIT, &shared.stop);
    let replication = ReplicationSummary {
        master_sequence: master_seq,
        admin_changes,
        propagation_us,
        replicas: replicas
            .iter()
            .map(|r| {
                let status = read_status(&r.status_file);
                ReplicaSummary::new(
                    &r.name,
                    &r.started.addr.to_string(),
                    status.as_ref(),
                    master_seq,
                )
            })
            .collect(),
    };
    let pids = children.pids();
    children.stop_all();
    println!(
        "stopped {} processes (master and {DEMO_REPLICAS} replicas): pids {pids:?}",
        pids.len()
    );
    let mut summary = Summary::new(&label, &stats, elapsed.as_secs_f64());
    summary.replication = Some(replication);
    print!("{}", final_report(&summary));
    if let Some(r) = &summary.replication {
        print!("{}", replication_report(r));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_changes_come_every_few_seconds_and_alternate() {
        let due: Vec<(u64, Option<[&str; 3]>)> = (0..9)
            .map(|s| (s, admin_change_due(s, s / ADMIN_CHANGE_EVERY_S)))
            .filter(|(_, c)| c.is_some())
            .collect();
        assert_eq!(
            due,
            [
                (2, Some(["user", "lock", "carol"])),
                (5, Some(["user", "unlock", "carol"])),
                (8, Some(["user", "lock", "carol"])),
            ]
        );
    }
}
