//! SIGHUP in the agent daemon: the config is read again and what may change while running is
//! applied — the log level, `trusted_uids`, `cache` and `offline` at once, the servers,
//! balancing and timings by a
//! new engine that takes every new request while the old one finishes its own (no local caller
//! is dropped, no request is lost; the old engine's slot is reused by a later reload once it is
//! idle and closed). `host`, `node_key_file`, `socket_path` and `state_dir` need a restart and
//! are named in the log. A file that fails to load is logged with its error and nothing changes. Runs on the
//! daemon's loop thread.

use super::serve::Daemon;
use crate::config::AgentConfig;
use crate::engine::{Engine, EngineConfig};
use gatehouse_common::os::peer::AllowedUids;
use gatehouse_common::service::logging;
use std::time::Instant;

/// Engines replaced by reloads that may still be finishing their requests (8): each reload
/// that changes the servers or timings needs one while its predecessor drains (at most the
/// request deadline, 5 s by default). Beyond it a reload keeps the running engine and says so.
pub const MAX_RETIRED_ENGINES: usize = 8;

/// Fields whose change needs a restart: the host's identity, the socket it serves on and the
/// directory of its open cache.
const RESTART_ONLY: [&str; 4] = ["host", "node_key_file", "socket_path", "state_dir"];

/// `NAME old -> new` for each top-level field that differs (pure).
pub fn changed_fields(old: &AgentConfig, new: &AgentConfig) -> Vec<(String, String)> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|name| a.get(*name) != b.get(*name))
        .map(|name| {
            let show = |v: Option<&serde_json::Value>| v.map_or("-".into(), |v| v.to_string());
            (
                name.clone(),
                format!("{name} {} -> {}", show(a.get(name)), show(b.get(name))),
            )
        })
        .collect()
}

impl Daemon {
    /// Reads the config file again and applies it (see the module header).
    pub(super) fn reload(&mut self) {
        let Some(path) = self.config_path.clone() else {
            log::warn!("SIGHUP ignored: this daemon was started without a config file");
            return;
        };
        let service = self.service.clone();
        service.reload(&path, || AgentConfig::load(&path), |new| self.apply(new));
    }

    pub(super) fn apply(&mut self, new: AgentConfig) -> String {
        let old = self.running.clone();
        let mut applied = Vec::new();
        let mut restart = Vec::new();
        for (name, change) in changed_fields(&old, &new) {
            if RESTART_ONLY.contains(&name.as_str()) {
                log::warn!("reload: {change} takes effect only after a restart; still running with the old value");
                restart.push(change);
            } else if name == "log_level" && !logging::set_level(new.log_level()) {
                applied.push("log_level (not applied: RUST_LOG is set)".to_string());
            } else {
                applied.push(change);
            }
        }
        let mut effective = new;
        effective.host = old.host.clone();
        effective.node_key_file = old.node_key_file.clone();
        effective.socket_path = old.socket_path.clone();
        effective.state_dir = old.state_dir.clone();
        self.trusted = AllowedUids::for_this_process(&effective.trusted_uids);
        self.login.reconfigure(&effective.cache, &effective.offline);
        // These never reach the engine.
        let mut engine_view = effective.clone();
        engine_view.trusted_uids = old.trusted_uids.clone();
        engine_view.log_level = old.log_level.clone();
        engine_view.cache = old.cache.clone();
        engine_view.offline = old.offline.clone();
        if engine_view != old && !self.swap_engine(&effective) {
            applied.retain(|c| {
                ["log_level", "trusted_uids", "cache", "offline"]
                    .iter()
                    .any(|name| c.starts_with(name))
            });
            let mut kept = old;
            kept.trusted_uids = effective.trusted_uids;
            kept.log_level = effective.log_level;
            kept.cache = effective.cache;
            kept.offline = effective.offline;
            effective = kept;
        }
        self.running = effective;
        match (applied.is_empty(), restart.is_empty()) {
            (true, true) => "nothing changed".into(),
            (false, true) => format!("applied {}", applied.join(", ")),
            (true, false) => format!("nothing applied; needs a restart: {}", restart.join(", ")),
            (false, false) => format!(
                "applied {}; needs a restart: {}",
                applied.join(", "),
                restart.join(", ")
            ),
        }
    }

    /// A new engine for `config` takes new requests; the current one retires and finishes its
    /// own. False (nothing changed) when [`MAX_RETIRED_ENGINES`] are still busy.
    fn swap_engine(&mut self, config: &AgentConfig) -> bool {
        let now = Instant::now();
        let idle = |d: &Daemon, index: usize| {
            let status = d.driver.engine(index).status(now);
            status.queued == 0 && status.in_flight == 0 && d.driver.engine_connections(index) == 0
        };
        let reusable = self.retired.iter().position(|&i| idle(self, i));
        if reusable.is_none() && self.retired.len() >= MAX_RETIRED_ENGINES {
            log::error!(
                "reload: {MAX_RETIRED_ENGINES} earlier engines are still finishing their requests; servers and timings unchanged (send SIGHUP again in a few seconds)"
            );
            return false;
        }
        let key = self.driver.engine(self.engine).config().key.clone();
        let engine = Engine::new(EngineConfig::from_agent_config(config, key));
        let servers = config.server_addrs().to_vec();
        let index = match reusable {
            Some(position) => {
                let index = self.retired.swap_remove(position);
                self.driver.replace_engine(index, engine, servers.clone());
                index
            }
            None => self.driver.add_engine_for(engine, servers.clone()),
        };
        self.retired.push(self.engine);
        self.engine = index;
        self.servers = servers;
        self.balancing = config.balancing;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_common::config::parse_ron;
    use std::path::Path;

    fn config(extra: &str) -> AgentConfig {
        let text =
            format!(r#"(host: "web1", node_key_file: "k", servers: ["127.0.0.1:7701"], {extra})"#);
        parse_ron(Path::new("a.ron"), &text).unwrap()
    }

    #[test]
    fn changed_fields_are_named_with_old_and_new_values() {
        let old = config("request_deadline_ms: 5000");
        let new = config(r#"request_deadline_ms: 3000, log_level: "debug""#);
        let changes: Vec<String> = changed_fields(&old, &new)
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        assert_eq!(
            changes,
            vec![
                "log_level null -> \"debug\"".to_string(),
                "request_deadline_ms 5000 -> 3000".to_string()
            ]
        );
        assert!(changed_fields(&old, &old).is_empty());
    }
}
