//! A stand-in for systemd in tests: a notification socket the daemon under test sends its
//! `READY=1`, `RELOADING=1`, `STATUS=`, `WATCHDOG=1` and `STOPPING=1` datagrams to, and the
//! environment that points the daemon at it (`NOTIFY_SOCKET`, `WATCHDOG_USEC`).

use crate::process::TestDir;
use crate::WAIT_LIMIT;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// The fake manager's socket, in a directory of its own.
pub struct FakeManager {
    socket: UnixDatagram,
    path: String,
    _dir: TestDir,
}

impl FakeManager {
    pub fn new() -> FakeManager {
        let dir = TestDir::new("notify");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notification socket");
        FakeManager {
            socket,
            path: path.to_string_lossy().into_owned(),
            _dir: dir,
        }
    }

    /// The environment for a daemon: `NOTIFY_SOCKET`, and `WATCHDOG_USEC` when `watchdog`.
    pub fn env(&self, watchdog: Option<Duration>) -> Vec<(&'static str, String)> {
        let mut env = vec![("NOTIFY_SOCKET", self.path.clone())];
        if let Some(interval) = watchdog {
            env.push(("WATCHDOG_USEC", interval.as_micros().to_string()));
        }
        env
    }

    /// The next datagram, waiting at most `limit`.
    pub fn next(&self, limit: Duration) -> Option<String> {
        self.socket
            .set_read_timeout(Some(limit.max(Duration::from_millis(1))))
            .ok()?;
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned())
    }

    /// Datagrams until one has the line `line` (that one included); panics after the wait
    /// limit with what arrived.
    pub fn until(&self, line: &str) -> Vec<String> {
        let start = Instant::now();
        let mut seen = Vec::new();
        while let Some(left) = WAIT_LIMIT.checked_sub(start.elapsed()) {
            match self.next(left) {
                Some(message) => {
                    let done = message.lines().any(|l| l == line);
                    seen.push(message);
                    if done {
                        return seen;
                    }
                }
                None => break,
            }
        }
        panic!("no {line:?} from the daemon; got {seen:?}");
    }

    /// Every datagram that arrives within `window` (waiting out the whole window).
    pub fn during(&self, window: Duration) -> Vec<String> {
        let start = Instant::now();
        let mut seen = Vec::new();
        while let Some(left) = window.checked_sub(start.elapsed()) {
            match self.next(left) {
                Some(message) => seen.push(message),
                None => break,
            }
        }
        seen
    }
}

impl FakeManager {
    /// With a daemon pinging its watchdog of `interval`: pings keep coming, none while
    /// `signal` has stopped the process (SIGSTOP) for four intervals, and they resume after
    /// SIGCONT.
    pub fn pings_only_while_running(&self, interval: Duration, signal: impl Fn(i32)) {
        for _ in 0..3 {
            self.until("WATCHDOG=1");
        }
        signal(libc::SIGSTOP);
        // What was sent before the stop took hold.
        let _ = self.during(Duration::from_millis(100));
        let while_stopped = self.during(interval * 4);
        signal(libc::SIGCONT);
        assert!(
            while_stopped.is_empty(),
            "pinged while stopped: {while_stopped:?}"
        );
        self.until("WATCHDOG=1");
    }
}

impl Default for FakeManager {
    fn default() -> Self {
        Self::new()
    }
}
