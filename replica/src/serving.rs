//! What the replica and master daemons share about living as a service: the signal thread
//! (SIGHUP reloads, SIGTERM and SIGINT drain the bridge), the reload's report, the metrics
//! endpoint, and the status line the service manager shows. Each daemon's `main` supplies
//! what is its own: how to read its config and which of its fields need a restart.

use crate::bridge::control::Plan;
use crate::bridge::BridgeControl;
use crate::metrics;
use gatehouse_common::service::{logging, signals, Service};
use log::LevelFilter;
use prometheus_client::collector::Collector;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::Arc;

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
