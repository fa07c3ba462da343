//! The `gatehouse-loadgen` subcommands: parse, set the process up (open-file limit, CPU pin,
//! Ctrl-C), run, print the report, write `--json`. Exit codes: 0 done, 1 the run failed,
//! 2 a bad command line.
//!
//! Not pure: this is the program. The binary's `main` only calls [`main`].

use super::args::{self, parse, Command, DirectArgs, Mode, ProvisionArgs, RedisArgs, RunArgs};
use super::demo::run_demo;
use super::direct::run_direct;
use super::phases::Phases;
use super::provision::{
    load_identities, provision, write_files, Identity, DB_FILE, IDENTITIES_FILE,
};
use super::redis::run_redis;
use super::report::{final_report, progress_line};
use super::run::{Run, RunEvent, RunPlan};
use super::stats::{RunLabel, Stats, Summary};
use super::sys::{check_descriptors, pin_to_cpu, raise_nofile_limit};
use gatehouse_common::cli::{exit_for, print_generated, ManSection};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Runtime(String),
}

/// What every running subcommand shares: the Ctrl-C flag.
pub struct Shared {
    pub stop: Arc<AtomicBool>,
}

impl Shared {
    fn new() -> Shared {
        let stop = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // If registration fails, Ctrl-C simply kills the process the default way.
            let _ = signal_hook::flag::register(signal, stop.clone());
        }
        Shared { stop }
    }

    /// Before any thread starts: pin to a CPU if asked, raise the open-file limit, and check
    /// that `sockets` agent connections fit.
    pub fn prepare(&self, sockets: usize, pin_cpu: Option<usize>) -> Result<(), CliError> {
        if let Some(cpu) = pin_cpu {
            pin_to_cpu(cpu).map_err(|e| CliError::Runtime(format!("--pin-cpu {cpu}: {e}")))?;
        }
        let limit = raise_nofile_limit()
            .map_err(|e| CliError::Runtime(format!("cannot raise the open-file limit: {e}")))?;
        check_descriptors(sockets, limit).map_err(CliError::Runtime)
    }
}

/// Runs the program with the arguments after its name.
pub fn main(args: &[String]) -> ExitCode {
    let command = match parse(args) {
        Ok(c) => c,
        Err(e) => return exit_for(&e, 2),
    };
    let result = match command {
        Command::Generate(what) => {
            return print_generated(args::command(), ManSection::User, what);
        }
        Command::Provision(p) => run_provision(&p),
        Command::Run(r) => run_load(&r, &Shared::new()),
        Command::Demo(d) => {
            run_demo(&d, &Shared::new()).and_then(|s| write_json(d.json.as_deref(), &s))
        }
        Command::Redis(r) => run_redis_load(&r, &Shared::new()),
        Command::Direct(r) => run_direct_load(&r, &Shared::new()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Runtime(e)) => {
            eprintln!("gatehouse-loadgen: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_provision(p: &ProvisionArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let (db, identities) =
        provision(p.agents, p.seed).map_err(|e| CliError::Runtime(e.to_string()))?;
    write_files(&p.out, &db, &identities).map_err(|e| CliError::Runtime(e.to_string()))?;
    println!(
        "wrote {} and {} ({} agents) in {:.2} s",
        p.out.join(DB_FILE).display(),
        p.out.join(IDENTITIES_FILE).display(),
        p.agents,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes the summary as JSON when `--json` was given.
pub fn write_json(path: Option<&Path>, summary: &Summary) -> Result<(), CliError> {
    let Some(path) = path else {
        return Ok(());
    };
    let text = serde_json::to_string_pretty(summary)
        .map_err(|e| CliError::Runtime(format!("cannot serialise the summary: {e}")))?;
    std::fs::write(path, text + "\n")
        .map_err(|e| CliError::Runtime(format!("{}: {e}", path.display())))
}

/// The first `agents` identities of the file (all of them when `None`).
fn agent_identities(path: &Path, agents: Option<usize>) -> Result<Vec<Identity>, CliError> {
    let mut identities = load_identities(path).map_err(|e| CliError::Runtime(e.to_string()))?;
    if let Some(n) = agents {
        if n > identities.len() {
            return Err(CliError::Runtime(format!(
                "--agents {n}, but {} has only {} identities",
                path.display(),
                identities.len()
            )));
        }
        identities.truncate(n);
    }
    Ok(identities)
}

fn run_load(r: &RunArgs, shared: &Shared) -> Result<(), CliError> {
    let identities = agent_identities(&r.identities, r.agents)?;
    shared.prepare(identities.len(), r.pin_cpu)?;
    let label = RunLabel {
        mode: match r.mode {
            Mode::Closed { .. } => "closed".into(),
            Mode::Open { .. } => "open".into(),
        },
        agents: identities.len(),
        threads: r.threads.min(identities.len()),
        balancing: super::args::balancing_name(r.balancing).into(),
        mix: r.mix.to_text(),
        servers: r.servers.iter().map(ToString::to_string).collect(),
    };
    let plan = RunPlan {
        servers: r.servers.clone(),
        identities,
        threads: r.threads,
        mode: r.mode,
        duration: r.duration,
        mix: r.mix,
        balancing: r.balancing,
        seed: r.seed,
    };
    let mut run = Run::start(plan, shared.stop.clone())
        .map_err(|e| CliError::Runtime(format!("cannot start workers: {e}")))?;
    let mut phases = Phases::new(&r.phases, r.servers.len());
    let (stats, elapsed) = loop {
        match run.next(Duration::from_secs(2)) {
            Some(RunEvent::Tick {
                second,
                stats,
                connections,
            }) => {
                println!("{}", progress_line(second, &stats, connections));
                phases.add_second(second, &stats);
            }
            Some(RunEvent::Done { stats, elapsed }) => break (stats, elapsed),
            Some(RunEvent::Failed(e)) => return Err(CliError::Runtime(e)),
            None => {}
        }
    };
    let mut summary = Summary::new(&label, &stats, elapsed.as_secs_f64());
    if !r.phases.is_empty() {
        (summary.phases, summary.seconds) = phases.finish(&label);
    }
    print!("{}", final_report(&summary));
    write_json(r.json.as_deref(), &summary)
}

/// Prints a progress line per second of a closed-loop client run.
fn print_tick(second: u64, stats: &Stats, open: usize) {
    println!("{}", progress_line(second, stats, open));
}

/// Reports a finished closed-loop client run (`redis`, `direct`) like a `run`.
fn report_closed_loop(
    result: std::io::Result<(Stats, Duration)>,
    label: &RunLabel,
    json: Option<&Path>,
) -> Result<(), CliError> {
    let (stats, elapsed) =
        result.map_err(|e| CliError::Runtime(format!("{} load: {e}", label.mode)))?;
    let summary = Summary::new(label, &stats, elapsed.as_secs_f64());
    print!("{}", final_report(&summary));
    write_json(json, &summary)
}

fn run_redis_load(r: &RedisArgs, shared: &Shared) -> Result<(), CliError> {
    shared.prepare(r.connections, r.pin_cpu)?;
    let result = run_redis(
        r.addr,
        r.connections,
        r.duration,
        &shared.stop,
        &mut print_tick,
    );
    let label = RunLabel {
        mode: "redis".into(),
        agents: r.connections,
        threads: 1,
        balancing: "-".into(),
        mix: "GET k".into(),
        servers: vec![r.addr.to_string()],
    };
    report_closed_loop(result, &label, r.json.as_deref())
}

fn run_direct_load(r: &DirectArgs, shared: &Shared) -> Result<(), CliError> {
    let identities = agent_identities(&r.identities, Some(r.agents))?;
    shared.prepare(identities.len(), r.pin_cpu)?;
    let result = run_direct(
        r.server,
        &identities,
        r.duration,
        r.seed,
        &shared.stop,
        &mut print_tick,
    );
    let label = RunLabel {
        mode: "direct".into(),
        agents: identities.len(),
        threads: 1,
        balancing: "-".into(),
        mix: "authorize=100".into(),
        servers: vec![r.server.to_string()],
    };
    report_closed_loop(result, &label, r.json.as_deref())
}
