//! gatehouse-master: opens (or creates) the SQLite store, publishes the database to its
//! bridge, serves the admin socket, and serves agents exactly like a replica until SIGTERM or
//! SIGINT has drained it; SIGHUP reloads the config (bridge limits, log level). Tells a service
//! manager when it is ready, reloading or stopping, and feeds its watchdog from the bridge's
//! and the replication loops. Exit codes: 0 after a clean drain, 2 for a bad command line or
//! config, 1 for a runtime failure (store refused, socket in use).

use anyhow::Context;
use clap::{CommandFactory, Parser};
use gatehouse_common::cli::{exit_for, print_generated, Generate, ManSection, DAEMON_AFTER_HELP};
use gatehouse_common::os::peer::AllowedUids;
use gatehouse_common::repl::LinkTimings;
use gatehouse_common::service::logging;
use gatehouse_master::admin::handler::AdminServices;
use gatehouse_master::admin::server;
use gatehouse_master::audit::Audit;
use gatehouse_master::config::MasterConfig;
use gatehouse_master::identity;
use gatehouse_master::lockout::{self, MasterEvents};
use gatehouse_master::metrics::{AuditCollector, LinksCollector, LockoutCollector};
use gatehouse_master::replication;
use gatehouse_master::state::MasterState;
use gatehouse_master::store::Store;
use gatehouse_replica::audit::{Journal, Recorder};
use gatehouse_replica::auth_events::LogThen;
use gatehouse_replica::bridge::{BridgeParts, Reactor};
use gatehouse_replica::handler::PolicyHandler;
use gatehouse_replica::metrics::collect::{BridgeCollector, DbCollector};
use gatehouse_replica::metrics::journal::JournalCollector;
use gatehouse_replica::net::bind_tcp_and_udp;
use gatehouse_replica::serving;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "gatehouse-master",
    version,
    about = "The Gatehouse master: the security database, its admin socket, replication, and agents served like a replica",
    after_help = DAEMON_AFTER_HELP
)]
struct MasterCli {
    /// The master config (RON), e.g. /etc/gatehouse/master.ron.
    #[arg(long, value_name = "FILE", required_unless_present_any = ["generate_key", "generate"])]
    config: Option<PathBuf>,
    /// Load and check the config and the store, then exit.
    #[arg(long)]
    check: bool,
    /// Make this store the master's at the next epoch: for promoting a replica's copy when the
    /// old master is lost for good (README, "Promoting a replica").
    #[arg(long)]
    promote: bool,
    /// Do not wait for a replica to confirm this master's epoch after a restart (only when
    /// you know no replica has been promoted).
    #[arg(long)]
    accept_writes: bool,
    /// Print the public half of the configured master key (created if missing) and exit:
    /// replicas pin it in their config.
    #[arg(long)]
    public_key: bool,
    /// Create a new master key in FILE (mode 0600) and print its public key: for a replica
    /// that may be promoted one day, so others can pin it in advance.
    #[arg(long, value_name = "FILE", exclusive = true)]
    generate_key: Option<PathBuf>,
    /// Print the man page or a shell's completions and exit.
    #[arg(long, value_name = "KIND", exclusive = true)]
    generate: Option<Generate>,
}

fn main() -> ExitCode {
    logging::init();
    let cli = match MasterCli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return exit_for(&e, 2),
    };
    if let Some(what) = cli.generate {
        return print_generated(MasterCli::command(), ManSection::Admin, what);
    }
    if let Some(path) = cli.generate_key {
        return generate_key(&path);
    }
    let MasterCli {
        config,
        check,
        promote,
        accept_writes,
        public_key,
        ..
    } = cli;
    let Some(config) = config else {
        eprintln!("gatehouse-master: --config FILE is required");
        return ExitCode::from(2);
    };
    let path = config;
    let config = match MasterConfig::load(&path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("gatehouse-master: {e}");
            return ExitCode::from(2);
        }
    };
    if public_key {
        return match identity::load_or_create(&config.master_key) {
            Ok(key) => {
                println!("{}", key.public());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gatehouse-master: {e}");
                ExitCode::from(1)
            }
        };
    }
    let result = Store::open(&config.database)
        .with_context(|| "cannot open the store".to_string())
        .and_then(|mut store| {
            if promote || store.epoch() == 0 {
                let was = store.epoch();
                let epoch = store.promote().context("cannot record the new epoch")?;
                if promote {
                    log::warn!(
                        "promoted {} from epoch {was} to master epoch {epoch}",
                        config.database.display()
                    );
                }
            }
            if check {
                println!("config and store OK (sequence {})", store.sequence());
                return Ok(());
            }
            logging::set_level(config.log_level);
            run(&path, config, store, accept_writes)
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-master: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `--generate-key FILE`: a new key, never over an existing file.
fn generate_key(path: &Path) -> ExitCode {
    match identity::create(path) {
        Ok(key) => {
            println!(
                "master key {} created; public key {}",
                path.display(),
                key.public()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gatehouse-master: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(path: &Path, config: MasterConfig, store: Store, accept_writes: bool) -> anyhow::Result<()> {
    let (service, control) = serving::start_service(path, &config)?;
    let sequence = store.sequence();
    let state = Arc::new(
        MasterState::with_lockout(store, config.lockout.clone()).with_unix_ids(config.unix_ids),
    );
    // The audit trail: every server's records stored once; this master's own decisions in
    // its own journal first, like a replica's.
    let audit = Audit::open(config.audit.clone())?;
    let journal =
        match &config.audit.journal {
            Some(journal) => Some(Journal::open(journal.clone()).with_context(|| {
                format!("cannot open the audit journal {}", journal.dir.display())
            })?),
            None => None,
        };
    audit.spawn(journal.clone())?;
    lockout::spawn_applier(state.clone(), Some(audit.clone()))?;
    let recorder = journal.clone().map(|j| Arc::new(Recorder::new(j)));
    let admin = server::bind(&config.admin_socket)?;
    let (listener, udp) = bind_tcp_and_udp(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let mut handler = PolicyHandler::with_events(
        state.policy(),
        Arc::new(LogThen::new(MasterEvents::new(state.lockout().clone()))),
    );
    if let Some(recorder) = &recorder {
        handler = handler.with_audit(recorder.clone());
    }
    let reactor = Reactor::new(BridgeParts {
        control,
        listener,
        udp,
        handler: Arc::new(handler),
        keys: state.keys(),
        db: state.db_status(),
        heartbeat: service.heartbeat("bridge"),
        audit: recorder.clone(),
    })?;
    server::spawn(
        admin,
        state.clone(),
        AllowedUids::for_this_process(&config.admin_uids),
        AdminServices {
            audit: Some(audit.clone()),
            passwords: Arc::new(config.password_policy.clone()),
        },
    )?;
    if let Some(listen) = config.replication_listen {
        let key = identity::load_or_create(&config.master_key)?;
        let public = key.public();
        let link = replication::LinkConfig {
            timings: LinkTimings::default(),
            key,
            write_confirm_wait: config.write_confirm_wait,
            heartbeat: service.heartbeat("replication"),
            audit: Some(audit.clone()),
        };
        let addr = replication::start(listen, state.clone(), link)
            .with_context(|| format!("cannot listen for replicas on {listen}"))?;
        log::info!(
            "replication on {addr} (master epoch {}, master key {public})",
            state.epoch()
        );
        // Tests and the demo read the key from this line to pin it in replicas' configs.
        println!("master key {public}");
        println!("replication on {addr}");
        if accept_writes {
            log::warn!("--accept-writes: not waiting for a replica to confirm this master's epoch");
            state.accept_writes();
        }
    }
    log::info!(
        "master at sequence {sequence}, serving agents on {addr} (tcp + udp probes), admin socket {}",
        config.admin_socket.display()
    );
    let mut collectors: Vec<Box<dyn prometheus_client::collector::Collector>> = vec![
        Box::new(BridgeCollector(reactor.stats())),
        Box::new(DbCollector(state.db_status())),
        Box::new(LinksCollector(state.clone())),
        Box::new(LockoutCollector(state.clone())),
        Box::new(AuditCollector(audit.clone())),
    ];
    if let Some(journal) = &journal {
        collectors.push(Box::new(JournalCollector(journal.clone())));
    }
    serving::start_metrics(config.metrics_listen, collectors)?;
    // Tests and scripts read this line to learn the port when the config says port 0.
    println!("listening on {addr}");
    service.ready(&format!("serving agents on {addr}, sequence {sequence}"));
    let result = reactor.run();
    let _ = std::fs::remove_file(&config.admin_socket);
    if let Some(journal) = &journal {
        journal.shutdown();
    }
    result?;
    Ok(())
}
