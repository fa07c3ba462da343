//! Forwarding stored records to syslog as RFC 5424 messages (`common::audit::syslog`): one
//! datagram per record to a UDP collector (RFC 5426) or a local datagram socket such as
//! `/dev/log`. Best effort: a collector that is down loses datagrams, never the store's
//! records; a failure is logged at most once a minute.
//!
//! Not pure: a socket. Called by whoever stored the records (ingest thread, admin threads).

use super::config::{SyslogConfig, SyslogTarget};
use super::store::Stored;
use gatehouse_common::audit::render::Origin;
use gatehouse_common::audit::syslog::message;
use parking_lot::Mutex;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// A failed send is logged at most this often (60 s).
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// See the module docs.
pub struct Forwarder {
    config: SyslogConfig,
    socket: Mutex<Option<Socket>>,
    last_failure_log: Mutex<Option<Instant>>,
}

enum Socket {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl Forwarder {
    pub fn new(config: &SyslogConfig) -> Forwarder {
        Forwarder {
            config: config.clone(),
            socket: Mutex::new(None),
            last_failure_log: Mutex::new(None),
        }
    }

    fn connect(&self) -> std::io::Result<Socket> {
        Ok(match &self.config.target {
            SyslogTarget::Udp(addr) => {
                let bind = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(bind)?;
                socket.connect(addr)?;
                Socket::Udp(socket)
            }
            SyslogTarget::Unix(path) => {
                let socket = UnixDatagram::unbound()?;
                socket.connect(path)?;
                Socket::Unix(socket)
            }
        })
    }

    /// Sends one record.
    pub fn send(&self, stored: &Stored) {
        let origin = Origin {
            id: stored.id,
            server: &stored.server,
            seq: stored.seq,
        };
        let text = message(&stored.record, origin, self.config.format);
        let mut socket = self.socket.lock();
        let result = match socket.as_ref() {
            Some(s) => Ok(s),
            None => self.connect().map(|s| &*socket.insert(s)),
        }
        .and_then(|s| match s {
            Socket::Udp(s) => s.send(text.as_bytes()),
            Socket::Unix(s) => s.send(text.as_bytes()),
        });
        if let Err(e) = result {
            // Reconnect next time (a restarted local syslog has a new socket).
            *socket = None;
            let mut last = self.last_failure_log.lock();
            if last.is_none_or(|t| t.elapsed() >= FAILURE_LOG_INTERVAL) {
                *last = Some(Instant::now());
                log::warn!(
                    "audit: cannot forward to syslog {:?}: {e}",
                    self.config.target
                );
            }
        }
    }
}
