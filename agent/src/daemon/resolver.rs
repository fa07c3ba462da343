//! Retrying server names that did not resolve: every [`RESOLVE_RETRY`] while some are
//! unresolved, a short-lived thread resolves the whole `servers` list again (getaddrinfo
//! blocks, so never on the loop thread) and the loop picks the result up on a later turn;
//! when the addresses changed, the daemon applies them like a reload (a new engine takes new
//! requests, `reload.rs`). At most one lookup runs at a time.
//!
//! Not pure: a thread and the system resolver. Driven by the daemon's loop.

use crate::config::AgentConfig;
use crate::config_servers::{resolve_all, Resolved, ServersError, RESOLVE_RETRY};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Instant;

/// The retry state.
pub struct Resolver {
    running: Option<Receiver<Result<Resolved, ServersError>>>,
    next_try: Instant,
}

impl Resolver {
    pub fn new(now: Instant) -> Resolver {
        Resolver {
            running: None,
            next_try: now + RESOLVE_RETRY,
        }
    }

    /// Called every loop turn: starts a lookup when one is due and `config` has names that
    /// did not resolve; returns a finished lookup's result when its addresses differ from
    /// `config`'s.
    pub fn poll(&mut self, config: &AgentConfig, now: Instant) -> Option<Resolved> {
        if let Some(rx) = &self.running {
            let result = match rx.try_recv() {
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => None,
                Ok(result) => Some(result),
            };
            self.running = None;
            self.next_try = now + RESOLVE_RETRY;
            return match result? {
                Ok(resolved) if resolved.addrs != config.server_addrs() => Some(resolved),
                Ok(_) => None,
                Err((_, why)) => {
                    log::warn!("servers: {why}; still running with the addresses resolved before");
                    None
                }
            };
        }
        if config.unresolved_servers().is_empty() || now < self.next_try {
            return None;
        }
        let (tx, rx) = mpsc::channel();
        let servers = config.servers.clone();
        let spawned = std::thread::Builder::new()
            .name("resolve".into())
            .spawn(move || {
                let _ = tx.send(resolve_all(&servers));
            });
        match spawned {
            Ok(_) => self.running = Some(rx),
            Err(e) => {
                log::warn!("cannot start a thread to resolve the servers again: {e}");
                self.next_try = now + RESOLVE_RETRY;
            }
        }
        None
    }
}

/// Logs the servers that did not resolve, each with why.
pub fn log_unresolved(config: &AgentConfig) {
    for (name, why) in config.unresolved_servers() {
        log::warn!(
            "server {name:?} does not resolve ({why}): running with the others, retrying every {} s",
            RESOLVE_RETRY.as_secs()
        );
    }
}
