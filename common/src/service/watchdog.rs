//! The service manager's watchdog (`WatchdogSec=`): the daemon sends `WATCHDOG=1` at least
//! every half interval, and only while *every* event loop it registered keeps turning, so a
//! hung loop — the bridge reactor, the replication loop, the agent's loop — stops the pings and
//! systemd restarts the service.
//!
//! Each loop holds a [`Heartbeat`] and calls [`Heartbeat::beat`] once per turn (a relaxed
//! store, and a comparison); an idle loop wakes at least every [`Heartbeat::max_sleep`]. The
//! beat that finds a ping due checks the other loops ([`decide`], pure) and sends it, so no
//! extra thread is needed and a loop that stops turning cannot ping. Without `WATCHDOG_USEC`
//! (or with it meant for another pid) heartbeats do nothing and loops sleep as before.

use super::notify::{Notifier, State};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shortest watchdog interval honoured (20 ms): below it loops would spin on their timeouts.
pub const MIN_INTERVAL: Duration = Duration::from_millis(20);

/// What the beat that found a ping due should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not yet: the last ping is recent.
    Wait,
    /// Every loop turned recently: send WATCHDOG=1.
    Ping,
    /// This loop (by index) has not turned for too long: send nothing.
    Withhold(usize),
}

/// The rule, on milliseconds since start: a ping is due half an interval after the last one;
/// it is sent only if every loop beat within the last half interval. A loop beats at least
/// every quarter interval, so a healthy process pings at most 3/4 of an interval apart.
pub fn decide(interval_ms: u64, now_ms: u64, last_ping_ms: u64, beats_ms: &[u64]) -> Decision {
    let half = interval_ms / 2;
    if now_ms.saturating_sub(last_ping_ms) < half {
        return Decision::Wait;
    }
    match beats_ms
        .iter()
        .position(|&beat| now_ms.saturating_sub(beat) > half)
    {
        Some(stale) => Decision::Withhold(stale),
        None => Decision::Ping,
    }
}

/// The process's watchdog: its interval, its loops and the last ping.
#[derive(Debug)]
pub struct Watchdog {
    interval: Duration,
    start: Instant,
    notifier: Arc<Notifier>,
    loops: Mutex<Vec<(&'static str, Arc<AtomicU64>)>>,
    last_ping_ms: AtomicU64,
    /// A withheld ping was logged (once per stall, not once per turn).
    stall_logged: AtomicBool,
}

impl Watchdog {
    /// The watchdog `WATCHDOG_USEC` asks for (if `WATCHDOG_PID` is unset or this process),
    /// pinging through `notifier`; `None` without one or without a notification socket.
    pub fn from_env(notifier: Arc<Notifier>) -> Option<Arc<Watchdog>> {
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID") {
            if pid.parse::<u32>().ok() != Some(std::process::id()) {
                return None;
            }
        }
        if !notifier.enabled() {
            return None;
        }
        Some(Watchdog::new(Duration::from_micros(usec), notifier))
    }

    /// A watchdog with `interval` (at least [`MIN_INTERVAL`]).
    pub fn new(interval: Duration, notifier: Arc<Notifier>) -> Arc<Watchdog> {
        Arc::new(Watchdog {
            interval: interval.max(MIN_INTERVAL),
            start: Instant::now(),
            notifier,
            loops: Mutex::new(Vec::new()),
            last_ping_ms: AtomicU64::new(0),
            stall_logged: AtomicBool::new(false),
        })
    }

    /// The interval systemd kills after.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Registers a loop named `name` (for the log); it counts as having beaten now.
    pub fn register(self: &Arc<Self>, name: &'static str) -> Heartbeat {
        let slot = Arc::new(AtomicU64::new(self.millis(Instant::now())));
        self.loops.lock().push((name, slot.clone()));
        Heartbeat {
            inner: Some((self.clone(), slot)),
        }
    }

    fn millis(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
    }

    fn interval_ms(&self) -> u64 {
        u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX)
    }

    /// Called by a beat that found a ping due.
    fn try_ping(&self, now_ms: u64) {
        let loops = self.loops.lock();
        let beats: Vec<u64> = loops
            .iter()
            .map(|(_, b)| b.load(Ordering::Relaxed))
            .collect();
        let last = self.last_ping_ms.load(Ordering::Relaxed);
        match decide(self.interval_ms(), now_ms, last, &beats) {
            Decision::Wait => {}
            Decision::Ping => {
                self.last_ping_ms.store(now_ms, Ordering::Relaxed);
                self.stall_logged.store(false, Ordering::Relaxed);
                self.notifier.tell(&[State::Watchdog]);
            }
            Decision::Withhold(index) => {
                if !self.stall_logged.swap(true, Ordering::Relaxed) {
                    let name = loops.get(index).map_or("?", |(name, _)| name);
                    let silent = now_ms.saturating_sub(beats.get(index).copied().unwrap_or(0));
                    log::error!(
                        "the {name} loop has not turned for {silent} ms: withholding the watchdog ping (the service manager restarts the daemon after {:?})",
                        self.interval
                    );
                }
            }
        }
    }
}

/// One loop's handle on the watchdog; does nothing when there is no watchdog.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    inner: Option<(Arc<Watchdog>, Arc<AtomicU64>)>,
}

impl Heartbeat {
    /// A heartbeat without a watchdog.
    pub fn none() -> Heartbeat {
        Heartbeat::default()
    }

    /// A heartbeat for `name` on `watchdog`, or none.
    pub fn on(watchdog: Option<&Arc<Watchdog>>, name: &'static str) -> Heartbeat {
        watchdog.map_or_else(Heartbeat::none, |w| w.register(name))
    }

    /// This loop turned at `now`; sends the ping if one is due and every loop is turning.
    pub fn beat(&self, now: Instant) {
        let Some((dog, slot)) = &self.inner else {
            return;
        };
        let now_ms = dog.millis(now);
        slot.store(now_ms, Ordering::Relaxed);
        let last = dog.last_ping_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= dog.interval_ms() / 2 {
            dog.try_ping(now_ms);
        }
    }

    /// The longest a loop may sleep between beats: a quarter interval; `None` without a
    /// watchdog.
    pub fn max_sleep(&self) -> Option<Duration> {
        self.inner.as_ref().map(|(dog, _)| dog.interval / 4)
    }

    /// `timeout` capped by [`Heartbeat::max_sleep`], for a loop's poll.
    pub fn cap(&self, timeout: Option<Duration>) -> Option<Duration> {
        match (timeout, self.max_sleep()) {
            (Some(t), Some(cap)) => Some(t.min(cap)),
            (t, cap) => t.or(cap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn pings_every_half_interval_while_all_loops_turn() {
        // Interval 1000 ms; two loops beating.
        assert_eq!(decide(1000, 400, 0, &[390, 380]), Decision::Wait);
        assert_eq!(decide(1000, 500, 0, &[490, 300]), Decision::Ping);
        assert_eq!(decide(1000, 1000, 500, &[990, 990]), Decision::Ping);
    }

    #[test]
    fn one_silent_loop_withholds_the_ping() {
        assert_eq!(decide(1000, 1200, 600, &[1190, 650]), Decision::Withhold(1));
        // It turns again: pings resume.
        assert_eq!(decide(1000, 1300, 600, &[1290, 1295]), Decision::Ping);
    }

    #[test]
    fn a_loop_that_never_beat_counts_from_registration() {
        assert_eq!(decide(1000, 700, 0, &[100]), Decision::Withhold(0));
    }

    #[test]
    fn heartbeats_ping_through_the_notifier_and_stop_when_a_loop_hangs() {
        let dir = std::env::temp_dir().join(format!("gh-watchdog-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let manager = UnixDatagram::bind(&path).unwrap();
        manager.set_nonblocking(true).unwrap();
        let notifier = Arc::new(Notifier::connect(path.as_os_str()).unwrap());
        let dog = Watchdog::new(Duration::from_millis(1000), notifier);
        let reactor = dog.register("reactor");
        let replication = dog.register("replication");
        assert_eq!(reactor.max_sleep(), Some(Duration::from_millis(250)));
        let t0 = dog.start;
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let pings = || {
            let mut buf = [0u8; 64];
            let mut n = 0;
            while manager.recv(&mut buf).is_ok() {
                n += 1;
            }
            n
        };
        replication.beat(at(450));
        reactor.beat(at(500));
        assert_eq!(pings(), 1);
        // Only the reactor turns from now on: no more pings.
        reactor.beat(at(1000));
        reactor.beat(at(1500));
        assert_eq!(pings(), 0);
        replication.beat(at(1600));
        assert_eq!(pings(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_a_watchdog_a_heartbeat_does_nothing() {
        let beat = Heartbeat::none();
        beat.beat(Instant::now());
        assert_eq!(beat.max_sleep(), None);
        assert_eq!(beat.cap(None), None);
        assert_eq!(
            beat.cap(Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
    }
}
