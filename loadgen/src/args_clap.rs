//! clap's definition of `gatehouse-loadgen`: the subcommands and their options, for parsing
//! (help, suggestions for a mistyped subcommand or option, required options) and for the
//! man page and completions. Every value is taken as text here and checked by the typed
//! parsers in [`super`], whose messages name the option and the rule (`--agents: "0" is not
//! valid: must be 1..=100000`). Pure; part of [`super`].

use clap::{Args, Parser, Subcommand};
use gatehouse_common::cli::Generate;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "gatehouse-loadgen",
    version,
    about = "Simulated Gatehouse agents, fleet provisioning, a lean load client and the loopback demo",
    after_help = "Exit codes: 0 done, 1 the run failed, 2 a bad command line. docs/LOADGEN.md describes every option.",
    arg_required_else_help = true
)]
pub struct LoadgenCli {
    /// Print the man page or a shell's completions and exit.
    #[arg(long, value_name = "KIND", exclusive = true)]
    pub generate: Option<Generate>,
    #[command(subcommand)]
    pub command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Write a fleet: db.ron (hosts with node keys, users, routes) and identities.ron.
    Provision(ProvisionOpts),
    /// Run simulated agents (the real agent engine) against servers.
    Run(Box<RunOpts>),
    /// A master, three following replicas and simulated agents on loopback, with a live table.
    Demo(DemoOpts),
    /// The lean closed-loop client against redis (RESP GET), for a side-by-side peer.
    Redis(RedisOpts),
    /// The lean closed-loop client with Gatehouse's handshake and sealed authorize requests.
    Direct(DirectOpts),
}

#[derive(Debug, Args)]
pub struct ProvisionOpts {
    /// Hosts (agents) to provision.
    #[arg(long, value_name = "N", required = true)]
    pub agents: Option<String>,
    /// Directory to write db.ron and identities.ron into.
    #[arg(long, value_name = "DIR", required = true)]
    pub out: Option<String>,
    /// Seed of the keys (default 1).
    #[arg(long, value_name = "S")]
    pub seed: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunOpts {
    /// Server addresses, comma-separated (IP:PORT,...).
    #[arg(long, value_name = "A,B,C", required = true)]
    pub servers: Option<String>,
    /// identities.ron written by `provision`.
    #[arg(long, value_name = "FILE", required = true)]
    pub identities: Option<String>,
    /// Use the first N identities (default all).
    #[arg(long, value_name = "N")]
    pub agents: Option<String>,
    /// Worker threads (default 1).
    #[arg(long, value_name = "T")]
    pub threads: Option<String>,
    /// closed (each agent waits for its answers) or open (a fixed rate).
    #[arg(long, value_name = "closed|open")]
    pub mode: Option<String>,
    /// Open loop: requests per second in total (`5000` or `5000/s`).
    #[arg(long, value_name = "R/s")]
    pub rate: Option<String>,
    /// Open loop: poisson or even arrivals.
    #[arg(long, value_name = "poisson|even")]
    pub arrivals: Option<String>,
    /// Closed loop: requests each agent keeps outstanding (default 1).
    #[arg(long, value_name = "C")]
    pub concurrency: Option<String>,
    /// Closed loop: ms between an answer and the next request (default 0).
    #[arg(long, value_name = "MS")]
    pub think: Option<String>,
    /// Request mix (default authorize=90,authenticate=10,deny=20).
    #[arg(long, value_name = "MIX")]
    pub mix: Option<String>,
    /// probing, seed_estimate, round_robin, random or ordered.
    #[arg(long, value_name = "MODE")]
    pub balancing: Option<String>,
    /// Seconds at which the report starts a new phase (e.g. 10,30).
    #[arg(long, value_name = "SECS,SECS")]
    pub phases: Option<String>,
    /// Seed of the request mix (default 1).
    #[arg(long, value_name = "S")]
    pub seed: Option<String>,
    /// Length, output and CPU of the run.
    #[command(flatten)]
    pub measure: MeasureOpts,
}

#[derive(Debug, Args)]
pub struct DemoOpts {
    /// Seconds to run (default 20).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<String>,
    /// Simulated agents (default 2000).
    #[arg(long, value_name = "N")]
    pub agents: Option<String>,
    /// ms between an answer and an agent's next request (default 100).
    #[arg(long, value_name = "MS")]
    pub think: Option<String>,
    /// Write the summary as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    pub json: Option<String>,
}

#[derive(Debug, Args)]
pub struct RedisOpts {
    /// redis-server's address.
    #[arg(long, value_name = "HOST:PORT", required = true)]
    pub addr: Option<String>,
    /// Connections, one GET in flight on each.
    #[arg(long, value_name = "N", required = true)]
    pub connections: Option<String>,
    /// Length, output and CPU of the run.
    #[command(flatten)]
    pub measure: MeasureOpts,
}

#[derive(Debug, Args)]
pub struct DirectOpts {
    /// The server's address.
    #[arg(long, value_name = "HOST:PORT", required = true)]
    pub server: Option<String>,
    /// identities.ron written by `provision`.
    #[arg(long, value_name = "FILE", required = true)]
    pub identities: Option<String>,
    /// Connections, one agent identity each.
    #[arg(long, value_name = "N", required = true)]
    pub agents: Option<String>,
    /// Seed (default 1).
    #[arg(long, value_name = "S")]
    pub seed: Option<String>,
    /// Length, output and CPU of the run.
    #[command(flatten)]
    pub measure: MeasureOpts,
}

/// The clap command, for the man page and completions.
pub fn command() -> clap::Command {
    <LoadgenCli as clap::CommandFactory>::command()
}

/// The options every measuring subcommand (`run`, `redis`, `direct`) shares.
#[derive(Debug, Args)]
pub struct MeasureOpts {
    /// Seconds to run (default 10).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<String>,
    /// Write the summary as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    pub json: Option<String>,
    /// Pin the process to this CPU (Linux).
    #[arg(long, value_name = "N")]
    pub pin_cpu: Option<String>,
}
