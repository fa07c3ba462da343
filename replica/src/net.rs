//! Binding the agent-facing sockets: TCP for requests and UDP for probes on the same port.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};

/// Attempts at finding a port free for both TCP and UDP when the config asks for port 0.
const EPHEMERAL_BIND_ATTEMPTS: usize = 16;

/// Binds TCP on `addr` and UDP on the same address and port. With port 0 the kernel picks a
/// TCP port; if that port is taken for UDP, another is tried.
pub fn bind_tcp_and_udp(addr: SocketAddr) -> io::Result<(TcpListener, UdpSocket)> {
    let attempts = if addr.port() == 0 {
        EPHEMERAL_BIND_ATTEMPTS
    } else {
        1
    };
    let mut last = io::Error::other("no attempt made");
    for _ in 0..attempts {
        let tcp = TcpListener::bind(addr)?;
        match UdpSocket::bind(tcp.local_addr()?) {
            Ok(udp) => return Ok((tcp, udp)),
            Err(e) => last = e,
        }
    }
    Err(last)
}
