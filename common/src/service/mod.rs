//! Living under a service manager (systemd, SMF) as a Unix daemon: readiness, reload and
//! stop notifications ([`notify`]), the watchdog fed by the event loops ([`watchdog`]), log
//! lines the journal files at the right priority ([`logging`]) with `key=value` fields
//! ([`kv`]), and the signals that ask for a reload or a stop ([`signals`]). [`Service`] bundles what a daemon's `main` holds.
//!
//! Not pure: environment, sockets, signals. The rules inside (message text, the watchdog's
//! decision, the log style) are pure functions with their own tests.

pub mod kv;
pub mod logging;
pub mod notify;
pub mod signals;
pub mod watchdog;

use notify::{Notifier, State};
use std::fmt::Display;
use std::path::Path;
use std::sync::Arc;
use watchdog::{Heartbeat, Watchdog};

/// The daemon's link to its service manager: notifications and the watchdog.
#[derive(Debug, Clone)]
pub struct Service {
    notifier: Arc<Notifier>,
    watchdog: Option<Arc<Watchdog>>,
}

impl Service {
    /// From the environment the manager set (`NOTIFY_SOCKET`, `WATCHDOG_USEC`); a service
    /// that notifies nobody without them.
    pub fn from_env() -> Service {
        let notifier = Arc::new(Notifier::from_env());
        let watchdog = Watchdog::from_env(notifier.clone());
        if let Some(dog) = &watchdog {
            log::info!("watchdog: pinging every {:?} at most", dog.interval() / 2);
        }
        Service { notifier, watchdog }
    }

    /// A service that tells nobody anything.
    pub fn disabled() -> Service {
        Service {
            notifier: Arc::new(Notifier::disabled()),
            watchdog: None,
        }
    }

    /// A heartbeat for the loop `name` (does nothing without a watchdog).
    pub fn heartbeat(&self, name: &'static str) -> Heartbeat {
        Heartbeat::on(self.watchdog.as_ref(), name)
    }

    /// Serving: READY=1 with a status line.
    pub fn ready(&self, status: &str) {
        self.notifier.tell(&[State::Ready, State::Status(status)]);
    }

    /// Stopping: STOPPING=1 with a status line.
    pub fn stopping(&self, status: &str) {
        self.notifier
            .tell(&[State::Stopping, State::Status(status)]);
    }

    /// A reload of `file`: RELOADING=1 (with MONOTONIC_USEC), then `load`; a failure is
    /// logged with its error and the running config stays; a success goes to `apply`, whose
    /// summary is logged. READY=1 follows either way, with a status saying what happened.
    pub fn reload<T, E: Display>(
        &self,
        file: &Path,
        load: impl FnOnce() -> Result<T, E>,
        apply: impl FnOnce(T) -> String,
    ) {
        let reloading = State::Reloading {
            monotonic_usec: notify::monotonic_usec(),
        };
        let status = format!("reloading {}", file.display());
        self.notifier.tell(&[reloading, State::Status(&status)]);
        match load() {
            Err(e) => {
                log::error!("reload refused, still running with the previous config: {e}");
                let status = format!("reload refused ({e}); previous config kept");
                self.notifier.tell(&[State::Ready, State::Status(&status)]);
            }
            Ok(config) => {
                let summary = apply(config);
                log::info!("reloaded {}: {summary}", file.display());
                let status = format!("reloaded {}", file.display());
                self.notifier.tell(&[State::Ready, State::Status(&status)]);
            }
        }
    }
}
