//! The demo's view of each server: one authenticated UDP probe per server (sent as one
//! registered identity, exactly as an agent does) and the load reports that come back.
//!
//! Not pure: owns a UDP socket and waits on it (at most the timeout given). Called once a
//! second by the demo's main thread, which runs no agents, so the wait delays nothing.

use gatehouse_common::crypto::probe_auth::{open_reply, seal_probe};
use gatehouse_common::nodekeys::NodeKey;
use gatehouse_common::wire::probe::PROBE_MAX_DATAGRAM;
use gatehouse_common::wire::unix_ms;
use gatehouse_common::wire::{LoadReport, Probe};
use rand::Rng;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Probes a fixed set of servers as one identity.
pub struct Monitor {
    socket: UdpSocket,
    host: String,
    key: NodeKey,
    servers: Vec<SocketAddr>,
}

impl Monitor {
    pub fn new(host: String, key: NodeKey, servers: Vec<SocketAddr>) -> io::Result<Monitor> {
        let bind = match servers.first() {
            Some(SocketAddr::V6(_)) => "[::]:0",
            _ => "0.0.0.0:0",
        };
        Ok(Monitor {
            socket: UdpSocket::bind(bind)?,
            host,
            key,
            servers,
        })
    }

    /// Probes every server and waits up to `timeout` for the replies; a server that did not
    /// answer in time (or answered with a bad tag) gets `None`.
    pub fn probe_all(&self, timeout: Duration, rng: &mut impl Rng) -> Vec<Option<LoadReport>> {
        let mut reports = vec![None; self.servers.len()];
        let mut ids = Vec::with_capacity(self.servers.len());
        for addr in &self.servers {
            let probe_id: u64 = rng.gen();
            ids.push(probe_id);
            let probe = Probe {
                host: self.host.clone(),
                probe_id,
                sent_unix_ms: unix_ms(std::time::SystemTime::now()),
            };
            if let Ok(datagram) = seal_probe(&self.key, &probe) {
                let _ = self.socket.send_to(&datagram, addr);
            }
        }
        let until = Instant::now() + timeout;
        let mut buf = [0u8; PROBE_MAX_DATAGRAM];
        while reports.iter().any(Option::is_none) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.socket.set_read_timeout(Some(left)).is_err() {
                break;
            }
            let Ok((n, from)) = self.socket.recv_from(&mut buf) else {
                break;
            };
            let Some(server) = self.servers.iter().position(|a| *a == from) else {
                continue;
            };
            let Some(datagram) = buf.get(..n) else {
                continue;
            };
            if let Ok(reply) = open_reply(&self.key, datagram) {
                if ids.get(server) == Some(&reply.probe_id) {
                    if let Some(slot) = reports.get_mut(server) {
                        *slot = Some(reply.load);
                    }
                }
            }
        }
        reports
    }
}
