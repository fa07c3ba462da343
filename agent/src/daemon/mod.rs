//! The agent daemon (`gatehouse-agent run --config FILE`): one engine in one driver, serving
//! local callers on a Unix socket (the only way in, mode 0666: identity lookups are open to
//! every uid; authorize, authenticate and status only to `trusted_uids`).
//!
//! Not pure: it reads files, binds the socket, handles signals and runs the event loop. Called
//! by `local::cli::main`. Start-up is in [`setup`], the event loop in [`serve`], the pure
//! mapping of engine results to local answers in [`answer`], who may ask what in [`access`].

pub mod access;
pub mod answer;
mod clients;
pub mod login;
mod reload;
mod resolver;
pub mod serve;
pub mod setup;

use crate::config::AgentConfig;
use crate::engine::{Engine, EngineConfig};
use gatehouse_common::config::ConfigError;
use gatehouse_common::service::{logging, Service};
use std::io;
use std::path::{Path, PathBuf};

/// Why the daemon could not start or stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The key file's own error names the file and the fix.
    #[error("{reason}")]
    NodeKey { path: PathBuf, reason: String },
    #[error("socket {}: {reason}", path.display())]
    Socket { path: PathBuf, reason: String },
    #[error("event loop: {0}")]
    Io(#[from] io::Error),
}

/// `path` from the config file `config`: relative paths are relative to the config file's
/// directory (as the replica does for its database), so a config and its key file can move
/// together.
pub fn resolve_path(config: &Path, path: &Path) -> PathBuf {
    match config.parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// `run --check`: loads the config (servers resolved) and the node key file (its mode and
/// owner checked), as a start would, and changes nothing.
pub fn check(config_path: &Path) -> Result<(), DaemonError> {
    let config = AgentConfig::load(config_path)?;
    setup::read_node_key(&resolve_path(config_path, &config.node_key_file))?;
    resolver::log_unresolved(&config);
    Ok(())
}

/// Loads the config and the node key, binds the socket, prints `listening on PATH` (and tells
/// a service manager it is ready), and serves until SIGTERM or SIGINT; SIGHUP reloads.
pub fn run(config_path: &Path) -> Result<(), DaemonError> {
    let config = AgentConfig::load(config_path)?;
    logging::set_level(config.log_level());
    let key_path = resolve_path(config_path, &config.node_key_file);
    let key = setup::read_node_key(&key_path)?;
    match setup::raise_nofile_limit() {
        Ok((soft, hard)) => log::debug!("open-file limit {soft} (hard {hard})"),
        Err(e) => log::warn!("cannot raise the open-file limit: {e}"),
    }
    let socket_path = resolve_path(config_path, &config.socket_path);
    let listener = setup::bind_socket(&socket_path)?;
    let verifier_key = crate::offline::verifier::VerifierKey::from_node_key(&key);
    let engine = Engine::new(EngineConfig::from_agent_config(&config, key));
    let state_dir = resolve_path(config_path, &config.state_dir);
    let login = |wake| login::Login::new(&config, &state_dir, verifier_key, wake);
    let mut daemon = serve::Daemon::new(&config, engine, listener, socket_path.clone(), login)?;
    let service = Service::from_env();
    daemon.attach_service(service.clone(), config_path.to_path_buf());
    log::info!(
        "agent {} serving local callers on {} ({} servers, balancing {:?})",
        config.host,
        socket_path.display(),
        config.server_addrs().len(),
        config.balancing
    );
    resolver::log_unresolved(&config);
    // Tests and scripts wait for this line.
    println!("listening on {}", socket_path.display());
    service.ready(&format!(
        "serving local callers on {}",
        socket_path.display()
    ));
    let result = daemon.run();
    setup::remove_socket(&socket_path);
    result
}
