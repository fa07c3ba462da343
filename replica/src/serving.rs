//! What the replica and master daemons share about living as a service: the signal thread
//! (SIGHUP reloads, SIGTERM and SIGINT drain the bridge), the reload's report, the metrics
//! endpoint, and the status line the service manager shows. Each daemon's `main` supplies
//! what is its own: how to read its config and which of its fields need a restart.

use crate::bridge::control::Plan;
use crate::bridge::{BridgeConfig, BridgeControl};
use crate::metrics;
use gatehouse_common::service::{logging, signals, Service};
use log::LevelFilter;
use prometheus_client::collector::Collector;
use std::fmt::{Debug, Display};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// What a reload needs from a server daemon's config.
pub trait ServerConfig: Send + 'static {
    type Error: Display;
    /// Reads and checks the file, as at start.
    fn load(path: &Path) -> Result<Self, Self::Error>
    where
        Self: Sized;
    fn bridge(&self) -> &BridgeConfig;
    fn log_level(&self) -> Option<LevelFilter>;
    /// Adds (with [`restart_only`]) each field outside `bridge` that differs in `new` and
    /// takes effect only after a restart.
    fn restart_only(&self, new: &Self, out: &mut Vec<String>);
}

/// What SIGHUP does for a server: reads the config again; applies the log level and the
/// bridge limits (`control::plan`); names what changed that only a restart applies (compared
/// with `started`, since those fields never change while running); keeps everything as it
/// was if the file does not load.
pub fn reloader<C: ServerConfig>(
    path: &Path,
    started: C,
    service: Service,
    control: Arc<BridgeControl>,
) -> impl FnMut() + Send + 'static {
    let path = path.to_path_buf();
    let mut level = started.log_level();
    move || {
        service.reload(
            &path,
            || C::load(&path),
            |new| {
                let mut restart = Vec::new();
                started.restart_only(&new, &mut restart);
                let plan = control.reload(new.bridge());
                let summary = finish_reload(level, new.log_level(), plan, restart);
                level = new.log_level();
                summary
            },
        )
    }
}

/// Adds `NAME old -> new` to `out` when a restart-only field changed.
pub fn restart_only<T: PartialEq + Debug>(out: &mut Vec<String>, name: &str, old: &T, new: &T) {
    if old != new {
        out.push(format!("{name} {old:?} -> {new:?}"));
    }
}

/// Applies a reloaded log level and the bridge's plan, logs each change that waits for a
/// restart as a warning, and returns the one-line summary for the reload's log line.
pub fn finish_reload(
    old_level: Option<LevelFilter>,
    new_level: Option<LevelFilter>,
    plan: Plan,
    mut needs_restart: Vec<String>,
) -> String {
    let mut changed = plan.changed;
    if old_level != new_level {
        let show = |l: Option<LevelFilter>| l.map_or("default".to_string(), |l| l.to_string());
        if logging::set_level(new_level) {
            changed.push(format!(
                "log_level {} -> {}",
                show(old_level),
                show(new_level)
            ));
        } else {
            changed.push("log_level (not applied: RUST_LOG is set)".into());
        }
    }
    needs_restart.extend(plan.needs_restart);
    for field in &needs_restart {
        log::warn!(
            "reload: {field} takes effect only after a restart; still running with the old value"
        );
    }
    match (changed.is_empty(), needs_restart.is_empty()) {
        (true, true) => "nothing changed".into(),
        (false, true) => format!("applied {}", changed.join(", ")),
        (true, false) => format!(
            "nothing applied; needs a restart: {}",
            needs_restart.join(", ")
        ),
        (false, false) => format!(
            "applied {}; needs a restart: {}",
            changed.join(", "),
            needs_restart.join(", ")
        ),
    }
}

/// The service manager link, the bridge's control and the signal thread for a server started
/// with `config` from `path`: SIGHUP reloads ([`reloader`]), SIGTERM or SIGINT drains.
pub fn start_service<C: ServerConfig + Clone>(
    path: &Path,
    config: &C,
) -> std::io::Result<(Service, Arc<BridgeControl>)> {
    let service = Service::from_env();
    let control = BridgeControl::new(config.bridge().clone());
    let reload = reloader(path, config.clone(), service.clone(), control.clone());
    handle_signals(service.clone(), control.clone(), reload)?;
    Ok((service, control))
}

/// Starts the signal thread: SIGHUP calls `reload`; SIGTERM or SIGINT tells the service
/// manager the daemon is stopping and drains the bridge (a second one is logged and ignored:
/// the drain has its own deadline).
pub fn handle_signals(
    service: Service,
    control: Arc<BridgeControl>,
    mut reload: impl FnMut() + Send + 'static,
) -> std::io::Result<()> {
    let mut stopping = false;
    signals::spawn(move |request| match request {
        signals::Request::Reload => reload(),
        signals::Request::Stop(name) if stopping => {
            log::info!("{name} while draining: the drain goes on");
        }
        signals::Request::Stop(name) => {
            stopping = true;
            service.stopping(&format!("{name}: draining"));
            control.stop();
        }
    })
}

/// Starts the metrics endpoint on `listen` with `collectors`, printing `metrics on ADDR`
/// (tests and scripts read it when the port is 0).
pub fn start_metrics(
    listen: Option<SocketAddr>,
    collectors: Vec<Box<dyn Collector>>,
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(listen) = listen else {
        return Ok(None);
    };
    let registry = metrics::collect::registry(collectors);
    let addr = metrics::http::start(listen, registry)
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {listen}: {e}"))?;
    log::info!("metrics on http://{addr}/metrics");
    println!("metrics on {addr}");
    Ok(Some(addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::control::plan;
    use crate::bridge::{BridgeConfig, BridgeFile};
    use std::path::Path;

    #[test]
    fn the_summary_names_what_was_applied_and_what_waits() {
        let old = BridgeConfig::default();
        let new = BridgeConfig::from_file(
            &BridgeFile {
                max_connections: Some(5),
                queue_capacity: Some(10),
                ..Default::default()
            },
            Path::new("r.ron"),
        )
        .unwrap();
        let mut restart = Vec::new();
        restart_only(&mut restart, "listen", &"127.0.0.1:1", &"127.0.0.1:2");
        let summary = finish_reload(None, None, plan(&old, &new), restart);
        assert!(
            summary.starts_with("applied bridge.max_connections 9950 -> 5"),
            "{summary}"
        );
        assert!(
            summary.ends_with("needs a restart: listen \"127.0.0.1:1\" -> \"127.0.0.1:2\", bridge.queue_capacity 2048 -> 10"),
            "{summary}"
        );
        let same = finish_reload(None, None, plan(&old, &old), Vec::new());
        assert_eq!(same, "nothing changed");
    }
}
