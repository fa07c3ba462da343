//! The service manager's notification protocol (sd_notify(3)): one datagram of `KEY=VALUE`
//! lines to the Unix socket named by `NOTIFY_SOCKET` — a path, or with a leading `@` a Linux
//! abstract socket. Without `NOTIFY_SOCKET` (started by hand, by SMF, by a test) every call is
//! a no-op. Message text is pure ([`message`]); [`Notifier`] does the one system call.
//!
//! A tiny implementation rather than the `sd-notify` crate: that crate (0.5) cannot reach an
//! abstract socket (`NOTIFY_SOCKET=@...`, which systemd uses in containers and user
//! managers), and the protocol is one `sendto` of a few lines.

use std::ffi::OsStr;
use std::io;
use std::os::unix::net::UnixDatagram;

/// The environment variable the service manager sets.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// Longest STATUS= text sent (bytes): systemd shows one line in `systemctl status`; a longer
/// text is cut at a character boundary.
pub const MAX_STATUS_LEN: usize = 200;

/// One state change told to the service manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State<'a> {
    /// Start-up finished (or a reload finished): the service is serving.
    Ready,
    /// A reload began. systemd 253+ wants `MONOTONIC_USEC` with it (the clock the reload
    /// started at), so a reload's READY=1 is matched to this reload and not an earlier one.
    Reloading { monotonic_usec: u64 },
    /// A graceful stop began.
    Stopping,
    /// A one-line human status (`systemctl status`).
    Status(&'a str),
    /// The watchdog keep-alive.
    Watchdog,
}

/// The datagram for `states`: one `KEY=VALUE` line each. Status text is kept to one line
/// (newlines would start new assignments) and to [`MAX_STATUS_LEN`] bytes.
pub fn message(states: &[State]) -> String {
    let mut out = String::new();
    for state in states {
        match state {
            State::Ready => out.push_str("READY=1\n"),
            State::Reloading { monotonic_usec } => {
                out.push_str(&format!("RELOADING=1\nMONOTONIC_USEC={monotonic_usec}\n"));
            }
            State::Stopping => out.push_str("STOPPING=1\n"),
            State::Watchdog => out.push_str("WATCHDOG=1\n"),
            State::Status(text) => {
                let mut line: String = text
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                if line.len() > MAX_STATUS_LEN {
                    let mut cut = MAX_STATUS_LEN;
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    line.truncate(cut);
                }
                out.push_str("STATUS=");
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    out
}

/// A connection to the service manager's notification socket, or nothing.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<UnixDatagram>,
}

impl Notifier {
    /// The socket `NOTIFY_SOCKET` names; disabled when it is unset or cannot be reached (a
    /// warning says why: a daemon must start even if its manager's socket is broken).
    pub fn from_env() -> Notifier {
        match std::env::var_os(NOTIFY_SOCKET) {
            None => Notifier::disabled(),
            Some(address) => Notifier::connect(&address).unwrap_or_else(|e| {
                log::warn!("NOTIFY_SOCKET={address:?} cannot be reached ({e}); not notifying");
                Notifier::disabled()
            }),
        }
    }

    /// Sends nothing.
    pub fn disabled() -> Notifier {
        Notifier { socket: None }
    }

    /// Connects to `address`: a path, or `@name` for an abstract socket (Linux only).
    pub fn connect(address: &OsStr) -> io::Result<Notifier> {
        let socket = UnixDatagram::unbound()?;
        let bytes = address.as_encoded_bytes();
        match bytes.split_first() {
            Some((b'@', name)) => connect_abstract(&socket, name)?,
            Some(_) => socket.connect(address)?,
            None => return Err(io::Error::other("empty address")),
        }
        Ok(Notifier {
            socket: Some(socket),
        })
    }

    /// True when notifications go somewhere.
    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends `states` in one datagram; a no-op when disabled.
    pub fn notify(&self, states: &[State]) -> io::Result<()> {
        let Some(socket) = &self.socket else {
            return Ok(());
        };
        let text = message(states);
        let sent = socket.send(text.as_bytes())?;
        if sent == text.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "datagram cut short",
            ))
        }
    }

    /// [`Notifier::notify`], logging a failure instead of returning it: a lost notification
    /// must never stop the daemon (systemd then acts on its own timeouts).
    pub fn tell(&self, states: &[State]) {
        if let Err(e) = self.notify(states) {
            log::warn!("cannot notify the service manager: {e}");
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn connect_abstract(socket: &UnixDatagram, name: &[u8]) -> io::Result<()> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.connect_addr(&address)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn connect_abstract(_socket: &UnixDatagram, _name: &[u8]) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets exist on Linux only",
    ))
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
pub fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC always exists.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } != 0 {
        return 0;
    }
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let micros = u64::try_from(now.tv_nsec / 1000).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_is_one_line() {
        let text = message(&[
            State::Reloading { monotonic_usec: 42 },
            State::Status("reloading"),
        ]);
        assert_eq!(text, "RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=reloading\n");
        assert_eq!(
            message(&[State::Ready, State::Stopping, State::Watchdog]),
            "READY=1\nSTOPPING=1\nWATCHDOG=1\n"
        );
    }

    #[test]
    fn status_text_cannot_start_another_assignment() {
        let text = message(&[State::Status("bad\nREADY=1")]);
        assert_eq!(text, "STATUS=bad READY=1\n");
        let long = "é".repeat(MAX_STATUS_LEN);
        let text = message(&[State::Status(&long)]);
        assert!(
            text.len() <= "STATUS=\n".len() + MAX_STATUS_LEN,
            "{}",
            text.len()
        );
    }

    #[test]
    fn a_path_socket_receives_the_datagram() {
        let dir = std::env::temp_dir().join(format!("gh-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let manager = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::connect(path.as_os_str()).unwrap();
        notifier.notify(&[State::Ready]).unwrap();
        let mut buf = [0u8; 64];
        let n = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_abstract_socket_receives_the_datagram() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("gatehouse-notify-test-{}", std::process::id());
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let manager = UnixDatagram::bind_addr(&address).unwrap();
        let notifier = Notifier::connect(OsStr::new(&format!("@{name}"))).unwrap();
        notifier.notify(&[State::Watchdog]).unwrap();
        let mut buf = [0u8; 64];
        let n = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1\n");
    }

    #[test]
    fn without_a_socket_nothing_is_sent() {
        let notifier = Notifier::disabled();
        assert!(!notifier.enabled());
        notifier.notify(&[State::Ready]).unwrap();
    }

    #[test]
    fn the_monotonic_clock_moves_forward() {
        let a = monotonic_usec();
        let b = monotonic_usec();
        assert!(a > 0 && b >= a);
    }
}
