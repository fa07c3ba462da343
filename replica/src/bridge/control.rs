//! The bridge's running config and the requests other threads make of its reactor: a reload
//! (a new config, swapped in atomically and picked up at the start of the next loop turn) and
//! a stop (the graceful drain). Both set a flag and wake the reactor; a stop does not block,
//! a reload waits (at most [`RELOAD_APPLY_WAIT`]) until the reactor has applied it, so the
//! READY=1 that follows a reload means the new limits are in force.
//!
//! What a reload may change is decided here, purely ([`plan`]): limits, waits and the
//! password-check rates apply at once (timeouts to connections accepted from then on); the
//! worker count, the queue's capacity, the probe replay cache's size and the benchmark delay
//! size threads and buffers made at start, so a change to them is named and waits for a restart.

use super::config::BridgeConfig;
use arc_swap::ArcSwap;
use parking_lot::{Condvar, Mutex};
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Longest a reload waits for the reactor to apply it, 2 s: a turn takes microseconds to
/// milliseconds, so only a hung reactor runs this out (the watchdog then stops too); the
/// reload is still applied at the reactor's next turn.
pub const RELOAD_APPLY_WAIT: Duration = Duration::from_secs(2);

/// What a reload does to the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The config the bridge runs with from now: the new one, with the restart-only fields
    /// kept as they were.
    pub applied: BridgeConfig,
    /// `bridge.FIELD old -> new` for each change applied now.
    pub changed: Vec<String>,
    /// `bridge.FIELD old -> new` for each change that needs a restart.
    pub needs_restart: Vec<String>,
}

/// Compares a field of two configs, by name.
fn compare<T: PartialEq + Debug>(out: &mut Vec<String>, name: &str, old: &T, new: &T) {
    if old != new {
        out.push(format!("bridge.{name} {old:?} -> {new:?}"));
    }
}

/// Which of `new`'s differences from `old` apply now and which wait for a restart.
pub fn plan(old: &BridgeConfig, new: &BridgeConfig) -> Plan {
    let mut needs_restart = Vec::new();
    let r = &mut needs_restart;
    compare(r, "workers", &old.workers, &new.workers);
    compare(
        r,
        "queue_capacity",
        &old.queue_capacity,
        &new.queue_capacity,
    );
    compare(
        r,
        "probe_replay_cache",
        &old.probe_replay_cache,
        &new.probe_replay_cache,
    );
    compare(
        r,
        "benchmark_service_delay_ms",
        &old.benchmark_service_delay,
        &new.benchmark_service_delay,
    );
    let mut applied = new.clone();
    applied.workers = old.workers;
    applied.queue_capacity = old.queue_capacity;
    applied.probe_replay_cache = old.probe_replay_cache;
    applied.benchmark_service_delay = old.benchmark_service_delay;
    applied.aes_allowed = old.aes_allowed;
    // Checked against the new capacity when parsed; the running queue keeps the old one.
    applied.probe_silence_queue_len = new.probe_silence_queue_len.min(old.queue_capacity);
    applied.inline_cheap_requests &= old.benchmark_service_delay.is_zero();

    let mut changed = Vec::new();
    let c = &mut changed;
    let (o, n) = (old, &applied);
    compare(c, "max_connections", &o.max_connections, &n.max_connections);
    let (oa, na) = (&o.admission, &n.admission);
    compare(c, "max_handshakes", &oa.max_handshakes, &na.max_handshakes);
    compare(
        c,
        "handshake_drop_start",
        &oa.handshake_drop_start,
        &na.handshake_drop_start,
    );
    compare(
        c,
        "handshake_drop_rate_percent",
        &oa.handshake_drop_rate_percent,
        &na.handshake_drop_rate_percent,
    );
    compare(
        c,
        "max_handshakes_per_source",
        &oa.max_handshakes_per_source,
        &na.max_handshakes_per_source,
    );
    compare(
        c,
        "max_connections_per_host",
        &oa.max_connections_per_host,
        &na.max_connections_per_host,
    );
    compare(c, "busy_wait_ms", &o.busy_wait, &n.busy_wait);
    compare(
        c,
        "probe_silence_queue_len",
        &o.probe_silence_queue_len,
        &n.probe_silence_queue_len,
    );
    compare(c, "probe_window_ms", &o.probe_window, &n.probe_window);
    let (ot, nt) = (&o.timeouts, &n.timeouts);
    compare(c, "handshake_timeout_ms", &ot.handshake, &nt.handshake);
    compare(c, "frame_timeout_ms", &ot.frame, &nt.frame);
    compare(c, "idle_timeout_ms", &ot.idle, &nt.idle);
    compare(c, "max_connection_age_ms", &ot.max_age, &nt.max_age);
    compare(c, "drain_timeout_ms", &o.drain_timeout, &n.drain_timeout);
    compare(
        c,
        "max_in_flight_per_connection",
        &o.max_in_flight_per_connection,
        &n.max_in_flight_per_connection,
    );
    let (op, np) = (&o.password_limits, &n.password_limits);
    compare(
        c,
        "max_password_checks_in_flight_per_host",
        &op.in_flight,
        &np.in_flight,
    );
    compare(
        c,
        "password_checks_per_second_per_host",
        &op.per_second,
        &np.per_second,
    );
    compare(c, "password_check_burst_per_host", &op.burst, &np.burst);
    compare(
        c,
        "inline_cheap_requests",
        &o.inline_cheap_requests,
        &n.inline_cheap_requests,
    );
    Plan {
        applied,
        changed,
        needs_restart,
    }
}

/// Reloads stored by [`BridgeControl::reload`] and applied by the reactor.
#[derive(Debug, Default)]
struct ReloadCount {
    stored: u64,
    applied: u64,
}

/// Shared between the reactor and the thread that handles signals.
#[derive(Debug)]
pub struct BridgeControl {
    config: ArcSwap<BridgeConfig>,
    /// A config was stored that the reactor has not applied yet.
    reload_pending: AtomicBool,
    /// Reloads stored and reloads applied by the reactor, counted, so a reload can wait for
    /// its own to be applied.
    reloads: Mutex<ReloadCount>,
    reload_applied: Condvar,
    stop: AtomicBool,
    waker: OnceLock<Arc<mio::Waker>>,
}

impl BridgeControl {
    /// Control for a bridge that starts with `config`.
    pub fn new(config: BridgeConfig) -> Arc<BridgeControl> {
        Arc::new(BridgeControl {
            config: ArcSwap::from_pointee(config),
            reload_pending: AtomicBool::new(false),
            reloads: Mutex::new(ReloadCount::default()),
            reload_applied: Condvar::new(),
            stop: AtomicBool::new(false),
            waker: OnceLock::new(),
        })
    }

    /// The config the bridge runs with (or will at its next turn).
    pub fn config(&self) -> Arc<BridgeConfig> {
        self.config.load_full()
    }

    /// Swaps in what `new` may change now ([`plan`]), wakes the reactor and waits (at most
    /// [`RELOAD_APPLY_WAIT`]) until it has applied the new config; returns the plan for the
    /// log. A bridge whose reactor never started is not waited for.
    pub fn reload(&self, new: &BridgeConfig) -> Plan {
        let mut count = self.reloads.lock();
        let plan = plan(&self.config.load(), new);
        self.config.store(Arc::new(plan.applied.clone()));
        count.stored += 1;
        let mine = count.stored;
        self.reload_pending.store(true, Ordering::Release);
        self.wake();
        if self.waker.get().is_some() {
            let timed_out = self
                .reload_applied
                .wait_while_for(&mut count, |c| c.applied < mine, RELOAD_APPLY_WAIT)
                .timed_out();
            if timed_out {
                log::warn!(
                    "reload: the bridge has not applied the new config within {RELOAD_APPLY_WAIT:?}; it will at its next turn"
                );
            }
        }
        plan
    }

    /// Asks the reactor to drain and stop.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake();
    }

    /// Called by the reactor once per turn: the new config, if one waits, with its ticket
    /// for [`BridgeControl::applied`].
    pub(super) fn take_reload(&self) -> Option<(Arc<BridgeConfig>, u64)> {
        if !(self.reload_pending.load(Ordering::Relaxed)
            && self.reload_pending.swap(false, Ordering::AcqRel))
        {
            return None;
        }
        let count = self.reloads.lock();
        Some((self.config.load_full(), count.stored))
    }

    /// Called by the reactor once it has applied the config `take_reload` gave with `ticket`:
    /// the reloads waiting for it return.
    pub(super) fn applied(&self, ticket: u64) {
        let mut count = self.reloads.lock();
        count.applied = count.applied.max(ticket);
        self.reload_applied.notify_all();
    }

    /// Called by the reactor once per turn: true once a stop was asked for.
    pub(super) fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub(super) fn set_waker(&self, waker: Arc<mio::Waker>) {
        let _ = self.waker.set(waker);
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.get() {
            if let Err(e) = waker.wake() {
                log::error!("cannot wake the bridge: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::BridgeFile;
    use std::path::Path;
    use std::time::Duration;

    fn config(f: BridgeFile) -> BridgeConfig {
        BridgeConfig::from_file(&f, Path::new("r.ron")).unwrap()
    }

    #[test]
    fn limits_apply_now_and_thread_counts_wait_for_a_restart() {
        let old = config(BridgeFile {
            max_connections: Some(100),
            workers: Some(2),
            busy_wait_ms: Some(1000),
            ..Default::default()
        });
        let new = config(BridgeFile {
            max_connections: Some(200),
            workers: Some(4),
            busy_wait_ms: Some(500),
            ..Default::default()
        });
        let plan = plan(&old, &new);
        assert_eq!(plan.applied.max_connections, 200);
        assert_eq!(plan.applied.admission.max_connections, 200);
        assert_eq!(plan.applied.busy_wait, Duration::from_millis(500));
        assert_eq!(plan.applied.workers, 2);
        assert!(plan
            .changed
            .contains(&"bridge.max_connections 100 -> 200".to_string()));
        assert!(plan
            .changed
            .contains(&"bridge.busy_wait_ms 1s -> 500ms".to_string()));
        assert_eq!(
            plan.needs_restart,
            vec!["bridge.workers 2 -> 4".to_string()]
        );
    }

    #[test]
    fn the_same_config_changes_nothing() {
        let c = BridgeConfig::default();
        let plan = plan(&c, &c);
        assert_eq!(plan.applied, c);
        assert!(plan.changed.is_empty() && plan.needs_restart.is_empty());
    }

    #[test]
    fn probe_silence_stays_within_the_running_queue() {
        let old = config(BridgeFile {
            queue_capacity: Some(100),
            ..Default::default()
        });
        let new = config(BridgeFile {
            queue_capacity: Some(1000),
            probe_silence_queue_len: Some(900),
            ..Default::default()
        });
        let plan = plan(&old, &new);
        assert_eq!(plan.applied.queue_capacity, 100);
        assert_eq!(plan.applied.probe_silence_queue_len, 100);
    }

    #[test]
    fn a_reload_is_taken_once_and_a_stop_stays() {
        let control = BridgeControl::new(BridgeConfig::default());
        assert!(control.take_reload().is_none());
        let new = config(BridgeFile {
            max_connections: Some(7),
            ..Default::default()
        });
        control.reload(&new);
        let (config, ticket) = control.take_reload().unwrap();
        assert_eq!((config.max_connections, ticket), (7, 1));
        assert!(control.take_reload().is_none());
        assert!(!control.stop_requested());
        control.stop();
        assert!(control.stop_requested());
        assert!(control.stop_requested());
    }

    #[test]
    fn a_reload_returns_once_the_reactor_applied_it() {
        let control = BridgeControl::new(BridgeConfig::default());
        let poll = mio::Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
        control.set_waker(Arc::new(waker));
        let reactor = Arc::clone(&control);
        // The stand-in reactor applies whatever it finds, as the real one does each turn.
        let turns = std::thread::spawn(move || loop {
            if let Some((config, ticket)) = reactor.take_reload() {
                reactor.applied(ticket);
                return config.max_connections;
            }
            std::thread::yield_now();
        });
        let new = config(BridgeFile {
            max_connections: Some(9),
            ..Default::default()
        });
        control.reload(&new);
        // reload returned: the reactor has taken and applied it.
        let count = control.reloads.lock();
        assert_eq!((count.stored, count.applied), (1, 1));
        drop(count);
        assert_eq!(turns.join().unwrap(), 9);
    }
}
