//! gatehouse-replica: loads its config and database, binds TCP and UDP on one port, and runs
//! the bridge until SIGTERM or SIGINT has drained it. Exit codes: 0 after a clean drain, 2 for
//! a bad command line or config, 1 for a runtime failure.

use anyhow::Context;
use arc_swap::ArcSwap;
use gatehouse_common::nodekeys::NodeKeyStore;
use gatehouse_common::policy::{Database, PolicySnapshot};
use gatehouse_replica::bridge::{BridgeParts, DbStatus, Reactor};
use gatehouse_replica::config::ReplicaConfig;
use gatehouse_replica::handler::PolicyHandler;
use gatehouse_replica::net::bind_tcp_and_udp;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

const USAGE: &str = "usage: gatehouse-replica --config FILE [--check]
  --config FILE   the replica config (RON), e.g. conf/replica.ron
  --check         load and check the config and database, then exit
Logging: RUST_LOG=debug shows every accept and close (default: info).";

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut config = None;
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = args.next().map(PathBuf::from),
            "--check" => check = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("gatehouse-replica: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(config) = config else {
        eprintln!("gatehouse-replica: --config FILE is required\n{USAGE}");
        return ExitCode::from(2);
    };
    let (config, policy) = match load(&config) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("gatehouse-replica: {e:#}");
            return ExitCode::from(2);
        }
    };
    if check {
        println!("config and database OK");
        return ExitCode::SUCCESS;
    }
    match run(config, policy) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-replica: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<(ReplicaConfig, PolicySnapshot)> {
    let config = ReplicaConfig::load(path)?;
    let db = Database::load(&config.database)?;
    let policy = PolicySnapshot::compile(&db)
        .with_context(|| format!("{}: invalid database", config.database.display()))?;
    Ok((config, policy))
}

fn run(config: ReplicaConfig, policy: PolicySnapshot) -> anyhow::Result<()> {
    match gatehouse_common::os::raise_fd_limit() {
        Ok(n) if (n as usize) < config.bridge.max_connections + 64 => log::warn!(
            "open-file limit {n} is below max_connections ({}) + 64: raise LimitNOFILE",
            config.bridge.max_connections
        ),
        Ok(_) => {}
        Err(e) => log::warn!("cannot raise the open-file limit: {e}"),
    }
    let (listener, udp) = bind_tcp_and_udp(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let keys = Arc::new(NodeKeyStore::new(policy.node_keys()));
    let policy = Arc::new(ArcSwap::from_pointee(policy));
    let reactor = Reactor::new(BridgeParts {
        config: config.bridge.clone(),
        listener,
        udp,
        handler: Arc::new(PolicyHandler::new(policy)),
        keys,
        db: Arc::new(DbStatus::from_file()),
        handle_signals: true,
    })?;
    log::info!(
        "replica serving agents on {addr} (tcp + udp probes), cap {} connections, {} workers",
        config.bridge.max_connections,
        config.bridge.workers
    );
    // Tests and scripts read this line to learn the port when the config says port 0.
    println!("listening on {addr}");
    reactor.run()?;
    Ok(())
}
