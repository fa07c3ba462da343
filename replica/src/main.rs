//! gatehouse-replica: loads its config and database, binds TCP and UDP on one port, and runs
//! the bridge until SIGTERM or SIGINT has drained it; SIGHUP reloads the config (bridge limits,
//! log level). Tells a service manager when it is ready, reloading or stopping, and feeds its
//! watchdog from the bridge's loop. Exit codes: 0 after a clean drain, 2 for a bad command line
//! or config, 1 for a runtime failure.

use anyhow::Context;
use arc_swap::ArcSwap;
use clap::{CommandFactory, Parser};
use gatehouse_common::cli::{exit_for, print_generated, Generate, ManSection, DAEMON_AFTER_HELP};
use gatehouse_common::nodekeys::NodeKey;
use gatehouse_common::nodekeys::NodeKeyStore;
use gatehouse_common::os::key_file::read_node_key_file;
use gatehouse_common::os::secure_file;
use gatehouse_common::policy::{Database, PolicySnapshot};
use gatehouse_common::service::logging;
use gatehouse_replica::audit::{Journal, Recorder};
use gatehouse_replica::auth_events::LogThen;
use gatehouse_replica::bridge::{BridgeParts, DbStatus, Reactor};
use gatehouse_replica::config::{ReplicaConfig, Source};
use gatehouse_replica::follower::{self, FollowConfig, Published};
use gatehouse_replica::handler::PolicyHandler;
use gatehouse_replica::metrics::collect::{BridgeCollector, DbCollector, FollowerCollector};
use gatehouse_replica::metrics::journal::JournalCollector;
use gatehouse_replica::net::bind_tcp_and_udp;
use gatehouse_replica::reports::{ReportingEvents, Reports, ReportsCollector};
use gatehouse_replica::serving;
use gatehouse_replica::store::Store;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "gatehouse-replica",
    version,
    about = "A Gatehouse replica: serves agents from a read-only copy of the security database",
    after_help = DAEMON_AFTER_HELP
)]
struct ReplicaCli {
    /// The replica config (RON), e.g. /etc/gatehouse/replica.ron.
    #[arg(long, value_name = "FILE", required_unless_present = "generate")]
    config: Option<PathBuf>,
    /// Load and check the config and the database, then exit.
    #[arg(long)]
    check: bool,
    /// Print the man page or a shell's completions and exit.
    #[arg(long, value_name = "KIND", exclusive = true)]
    generate: Option<Generate>,
}

fn main() -> ExitCode {
    logging::init();
    let cli = match ReplicaCli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return exit_for(&e, 2),
    };
    if let Some(what) = cli.generate {
        return print_generated(ReplicaCli::command(), ManSection::Admin, what);
    }
    let check = cli.check;
    let Some(config) = cli.config else {
        eprintln!("gatehouse-replica: --config FILE is required");
        return ExitCode::from(2);
    };
    let path = config;
    let (config, loaded) = match load(&path) {
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
    logging::set_level(config.log_level);
    match run(&path, config, loaded) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-replica: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The database the replica starts with, and how it keeps it current.
// One value, once at start-up: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Loaded {
    File(PolicySnapshot),
    Follow(FollowConfig, NodeKey, Box<Store>),
}

fn load(path: &std::path::Path) -> anyhow::Result<(ReplicaConfig, Loaded)> {
    let config = ReplicaConfig::load(path)?;
    let loaded = match &config.source {
        Source::File(file) => {
            // The file holds every node key and password hash.
            secure_file::check_private_file(file, "database file")?;
            let db = Database::load(file)?;
            let policy = PolicySnapshot::compile(&db)
                .with_context(|| format!("{}: invalid database", file.display()))?;
            Loaded::File(policy)
        }
        Source::Follow(follow) => {
            if let Some(status_file) = &follow.status_file {
                check_status_dir(path, status_file)?;
            }
            let key = read_node_key_file(&follow.node_key_file)?;
            let store = Store::open(&follow.store)?;
            Loaded::Follow(follow.clone(), key, Box::new(store))
        }
    };
    Ok((config, loaded))
}

/// The status file's directory must exist and be writable: found at start (and by
/// `--check`) rather than as a failed write every second later.
fn check_status_dir(config: &Path, status_file: &Path) -> anyhow::Result<()> {
    let dir = match status_file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let problem = if !dir.is_dir() {
        Some("does not exist (create it, or change the path)")
    } else if !gatehouse_common::os::secure_file::writable_dir(dir) {
        Some("is not writable by this user")
    } else {
        None
    };
    match problem {
        Some(why) => anyhow::bail!(
            "{}: field replication.status_file: {}: directory {} {why}",
            config.display(),
            status_file.display(),
            dir.display()
        ),
        None => Ok(()),
    }
}

fn run(path: &Path, config: ReplicaConfig, loaded: Loaded) -> anyhow::Result<()> {
    let (service, control) = serving::start_service(path, &config)?;
    match gatehouse_common::os::raise_fd_limit() {
        Ok(n) if (n as usize) < config.bridge.max_connections.saturating_add(64) => log::warn!(
            "open-file limit {n} is below max_connections ({}) + 64: raise LimitNOFILE",
            config.bridge.max_connections
        ),
        Ok(_) => {}
        Err(e) => log::warn!("cannot raise the open-file limit: {e}"),
    }
    let (listener, udp) = bind_tcp_and_udp(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let db = Arc::new(DbStatus::from_file());
    let policy = match &loaded {
        Loaded::File(policy) => policy.clone(),
        Loaded::Follow(_, _, store) => {
            db.loaded(store.sequence());
            (*store.policy()).clone()
        }
    };
    let keys = Arc::new(NodeKeyStore::new(policy.node_keys()));
    let policy = Arc::new(ArcSwap::from_pointee(policy));
    let audit = match &config.audit {
        Some(audit) => {
            let journal = Journal::open(audit.clone()).with_context(|| {
                format!("cannot open the audit journal {}", audit.dir.display())
            })?;
            Some(Arc::new(Recorder::new(journal)))
        }
        None => None,
    };
    let mut handler = PolicyHandler::new(policy.clone());
    let mut follower_status = None;
    if let Loaded::Follow(follow, key, store) = loaded {
        // Failed password checks go to the master's central lockout.
        let reports = Arc::new(Reports::new());
        handler = PolicyHandler::with_events(
            policy.clone(),
            Arc::new(LogThen::new(ReportingEvents::new(reports.clone()))),
        );
        let masters: Vec<String> = follow
            .masters
            .iter()
            .map(|m| format!("{} (key {})", m.address, m.key))
            .collect();
        log::info!(
            "following {} as {} from sequence {}",
            masters.join(", "),
            follow.host,
            store.sequence()
        );
        let status = follower::spawn(
            follow,
            key,
            *store,
            Published {
                policy: policy.clone(),
                keys: keys.clone(),
                db: db.clone(),
                reports: reports.clone(),
                audit: audit.as_ref().map(|a| a.journal().clone()),
            },
        )?;
        follower_status = Some((status, reports));
    }
    if let Some(audit) = &audit {
        handler = handler.with_audit(audit.clone());
    }
    let reactor = Reactor::new(BridgeParts {
        control,
        listener,
        udp,
        handler: Arc::new(handler),
        keys,
        db: db.clone(),
        heartbeat: service.heartbeat("bridge"),
        audit: audit.clone(),
    })?;
    let mut collectors: Vec<Box<dyn prometheus_client::collector::Collector>> = vec![
        Box::new(BridgeCollector(reactor.stats())),
        Box::new(DbCollector(db)),
    ];
    if let Some((status, reports)) = follower_status {
        collectors.push(Box::new(FollowerCollector(status)));
        collectors.push(Box::new(ReportsCollector(reports)));
    }
    if let Some(audit) = &audit {
        collectors.push(Box::new(JournalCollector(audit.journal().clone())));
    }
    serving::start_metrics(config.metrics_listen, collectors)?;
    log::info!(
        "replica serving agents on {addr} (tcp + udp probes), cap {} connections, {} workers",
        config.bridge.max_connections,
        config.bridge.workers
    );
    // Tests and scripts read this line to learn the port when the config says port 0.
    println!("listening on {addr}");
    service.ready(&format!("serving agents on {addr}"));
    let result = reactor.run();
    // Every record of an answer sent is already durable; this syncs the rest.
    if let Some(audit) = &audit {
        audit.journal().shutdown();
    }
    result?;
    Ok(())
}
