//! The `gatehouse-loadgen` command line: subcommands and their options (clap, in
//! `args_clap.rs`), parsed into typed settings with a clear message for every mistake (the
//! binary prints it and exits 2).
//!
//! Pure: takes the argument list, touches nothing. Called by the binary.

use super::mix::{Mix, MixError, DEFAULT_MIX};
use gatehouse_agent::balance::Balancing;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[path = "args_options.rs"]
mod options;
use options::{invalid, Options};
#[path = "args_lean.rs"]
mod lean;
use lean::{parse_direct, parse_redis};
#[path = "args_clap.rs"]
mod definition;
pub use definition::{command, LoadgenCli};
use gatehouse_common::cli::Generate;

/// Longest run accepted, seconds (default 1 day): a typo such as 36000 still stops by itself.
pub const MAX_DURATION_S: f64 = 86_400.0;
/// Most worker threads (default 64): far more than the cores of any load machine.
pub const MAX_THREADS: usize = 64;
/// Highest open-loop rate, requests/s (default 10 million): far beyond one machine.
pub const MAX_RATE: f64 = 10_000_000.0;
/// Longest think time, ms (default 60 000).
pub const MAX_THINK_MS: u64 = 60_000;
/// Most redis connections (default 100 000).
pub const MAX_CONNECTIONS: usize = 100_000;
/// Default run duration, seconds.
pub const DEFAULT_DURATION_S: f64 = 10.0;
/// Default demo duration, seconds: long enough to watch, short enough to end by itself.
pub const DEFAULT_DEMO_DURATION_S: f64 = 20.0;
/// Default demo agents: "a couple of thousand", what the issue asks the demo to show.
pub const DEFAULT_DEMO_AGENTS: usize = 2000;
/// Default demo think time, ms: each agent asks about ten times a second, so 2000 agents offer
/// up to 20 000 requests/s, more than three replicas on two cores serve: queues form and the
/// probes have something to balance, yet it is not a pure hammer.
pub const DEFAULT_DEMO_THINK_MS: u64 = 100;

/// Closed or open loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Each agent keeps `concurrency` requests outstanding, resubmitting after `think`.
    Closed { concurrency: usize, think: Duration },
    /// Requests arrive at `rate` per second in total, whatever the answers do.
    Open { rate: f64, poisson: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionArgs {
    pub agents: usize,
    pub out: PathBuf,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunArgs {
    pub servers: Vec<SocketAddr>,
    pub identities: PathBuf,
    pub agents: Option<usize>,
    pub threads: usize,
    pub mode: Mode,
    pub duration: Duration,
    pub mix: Mix,
    pub balancing: Balancing,
    pub json: Option<PathBuf>,
    /// Seconds at which the report starts a new phase (increasing).
    pub phases: Vec<u64>,
    pub pin_cpu: Option<usize>,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DemoArgs {
    pub duration: Duration,
    pub agents: usize,
    pub think: Duration,
    pub json: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RedisArgs {
    pub addr: SocketAddr,
    pub connections: usize,
    pub duration: Duration,
    pub json: Option<PathBuf>,
    pub pin_cpu: Option<usize>,
}

/// `direct`: the lean closed-loop client with sealed authorize requests, one connection per
/// agent identity, against one server.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectArgs {
    pub server: SocketAddr,
    pub identities: PathBuf,
    pub agents: usize,
    pub duration: Duration,
    pub json: Option<PathBuf>,
    pub pin_cpu: Option<usize>,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Provision(ProvisionArgs),
    Run(RunArgs),
    Demo(DemoArgs),
    Redis(RedisArgs),
    Direct(DirectArgs),
    /// `--generate KIND`: a man page or completions.
    Generate(Generate),
}

/// A command-line mistake the typed parsers find (clap finds the rest: unknown subcommands
/// and options, missing values and required options).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error("{0} is required")]
    Required(&'static str),
    #[error("{option}: {value:?} is not valid: {why}")]
    Invalid {
        option: String,
        value: String,
        why: String,
    },
    #[error("--mix: {0}")]
    Mix(#[from] MixError),
}

/// Parses the arguments after the program name. `Err` is clap's error, printed as it prints
/// its own (with the usage; help and version are "errors" printed to stdout, exit 0).
pub fn parse(args: &[String]) -> Result<Command, clap::Error> {
    use clap::FromArgMatches;
    let program = std::iter::once("gatehouse-loadgen".to_string());
    let matches = command().try_get_matches_from(program.chain(args.iter().cloned()))?;
    let cli = LoadgenCli::from_arg_matches(&matches)?;
    if let Some(what) = cli.generate {
        return Ok(Command::Generate(what));
    }
    let invalid = |e: ArgError| command().error(clap::error::ErrorKind::ValueValidation, e);
    let Some((name, sub)) = matches.subcommand() else {
        return Err(command().error(
            clap::error::ErrorKind::MissingSubcommand,
            "missing subcommand (provision, run, demo, redis or direct)",
        ));
    };
    let o = Options::from_matches(sub);
    match name {
        "provision" => parse_provision(&o).map(Command::Provision),
        "run" => parse_run(&o).map(Command::Run),
        "demo" => parse_demo(&o).map(Command::Demo),
        "redis" => parse_redis(&o).map(Command::Redis),
        _ => parse_direct(&o).map(Command::Direct),
    }
    .map_err(invalid)
}

fn parse_provision(o: &Options) -> Result<ProvisionArgs, ArgError> {
    Ok(ProvisionArgs {
        agents: o
            .number("--agents", 1, super::provision::MAX_AGENTS)?
            .ok_or(ArgError::Required("--agents"))?,
        out: o.path("--out").ok_or(ArgError::Required("--out"))?,
        seed: o.number("--seed", 0, u64::MAX)?.unwrap_or(1),
    })
}

fn parse_balancing(text: &str) -> Result<Balancing, ArgError> {
    match text {
        "probing" => Ok(Balancing::Probing),
        "seed_estimate" | "seedestimate" => Ok(Balancing::SeedEstimate),
        "round_robin" | "roundrobin" => Ok(Balancing::RoundRobin),
        "random" => Ok(Balancing::Random),
        "ordered" => Ok(Balancing::Ordered),
        _ => Err(invalid(
            "--balancing",
            text,
            "expected probing, seed_estimate, round_robin, random or ordered",
        )),
    }
}

/// The name `--balancing` takes for `b`.
pub fn balancing_name(b: Balancing) -> &'static str {
    match b {
        Balancing::Probing => "probing",
        Balancing::SeedEstimate => "seed_estimate",
        Balancing::RoundRobin => "round_robin",
        Balancing::Random => "random",
        Balancing::Ordered => "ordered",
    }
}

fn parse_run(o: &Options) -> Result<RunArgs, ArgError> {
    let servers_text = o.get("--servers").ok_or(ArgError::Required("--servers"))?;
    let servers = servers_text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| o.addr("--servers", s))
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() || servers.len() > gatehouse_agent::config::MAX_SERVERS {
        return Err(invalid(
            "--servers",
            servers_text,
            format!(
                "give 1..={} addresses",
                gatehouse_agent::config::MAX_SERVERS
            ),
        ));
    }
    let mode = match o.get("--mode").unwrap_or("closed") {
        "closed" => {
            if let Some(rate) = o.get("--rate") {
                return Err(invalid("--rate", rate, "only with --mode open"));
            }
            Mode::Closed {
                concurrency: o
                    .number(
                        "--concurrency",
                        1,
                        gatehouse_agent::engine::MAX_QUEUED_REQUESTS,
                    )?
                    .unwrap_or(1),
                think: Duration::from_millis(o.number("--think", 0, MAX_THINK_MS)?.unwrap_or(0)),
            }
        }
        "open" => {
            let text = o.get("--rate").ok_or(ArgError::Required("--rate"))?;
            let number = text.strip_suffix("/s").unwrap_or(text);
            let rate: f64 = number
                .parse()
                .map_err(|_| invalid("--rate", text, "not a number (requests/s)"))?;
            if !(rate > 0.0 && rate <= MAX_RATE) {
                return Err(invalid(
                    "--rate",
                    text,
                    format!("must be > 0 and <= {MAX_RATE}"),
                ));
            }
            let poisson = match o.get("--arrivals").unwrap_or("poisson") {
                "poisson" => true,
                "even" => false,
                other => return Err(invalid("--arrivals", other, "expected poisson or even")),
            };
            Mode::Open { rate, poisson }
        }
        other => return Err(invalid("--mode", other, "expected closed or open")),
    };
    Ok(RunArgs {
        servers,
        identities: o
            .path("--identities")
            .ok_or(ArgError::Required("--identities"))?,
        agents: o.number("--agents", 1, super::provision::MAX_AGENTS)?,
        threads: o.number("--threads", 1, MAX_THREADS)?.unwrap_or(1),
        mode,
        duration: o.seconds("--duration", DEFAULT_DURATION_S)?,
        mix: Mix::parse(o.get("--mix").unwrap_or(DEFAULT_MIX))?,
        balancing: parse_balancing(o.get("--balancing").unwrap_or("probing"))?,
        json: o.path("--json"),
        phases: o.increasing_seconds("--phases", super::phases::MAX_PHASE_SPLITS)?,
        pin_cpu: o.number("--pin-cpu", 0, 1023)?,
        seed: o.number("--seed", 0, u64::MAX)?.unwrap_or(1),
    })
}

fn parse_demo(o: &Options) -> Result<DemoArgs, ArgError> {
    Ok(DemoArgs {
        duration: o.seconds("--duration", DEFAULT_DEMO_DURATION_S)?,
        agents: o
            .number("--agents", 1, super::provision::MAX_AGENTS)?
            .unwrap_or(DEFAULT_DEMO_AGENTS),
        think: Duration::from_millis(
            o.number("--think", 0, MAX_THINK_MS)?
                .unwrap_or(DEFAULT_DEMO_THINK_MS),
        ),
        json: o.path("--json"),
    })
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
