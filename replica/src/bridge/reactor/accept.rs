//! Accepting agent connections: up to [`ACCEPTS_PER_TURN`] per loop turn, refused with a
//! plaintext "too many connections" at the cap or when the admission caps say so (handshakes in
//! progress, per source: `bridge/admission.rs`), each registered under a generation-checked
//! token with its own spread age limit. Part of the reactor; runs on its thread.

use super::super::admission::{AdmissionLimits, Refused};
use super::super::conn::Conn;
use super::super::lifecycle::Lifecycle;
use super::super::workers::ConnId;
use super::{conn_token, Reactor, ACCEPTS_PER_TURN, INDEX_MASK, LISTEN_BACKLOG};
use gatehouse_common::types::ErrorCode;
use gatehouse_common::wire::WireError;
use mio::Interest;
use std::io;
use std::time::Instant;

impl Reactor {
    pub(super) fn accept(&mut self, now: Instant) {
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listener) = &self.listener else {
                return;
            };
            let (mut socket, peer) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: log and retry next turn rather than spin.
                    log::warn!("accept failed: {e}");
                    return;
                }
            };
            let counted = match self
                .admission
                .on_accept(peer.ip(), self.conns.len(), &mut self.rng)
            {
                Ok(counted) => counted,
                Err(refused) => {
                    let counter = match refused {
                        Refused::Full => &self.stats.rejected_at_cap,
                        _ => &self.stats.refused_by_limits,
                    };
                    counter.inc();
                    refuse(&mut socket, refused, &self.config.admission);
                    log::debug!("refused {peer}: {refused:?}");
                    continue;
                }
            };
            let _ = socket.set_nodelay(true);
            let generation = self.next_generation;
            self.next_generation += 1;
            let entry = self.conns.vacant_entry();
            let id = ConnId {
                index: entry.key(),
                generation,
            };
            if id.index > INDEX_MASK {
                log::error!("connection slab index overflow; refusing {peer}");
                self.admission.on_close(&counted);
                continue;
            }
            if let Err(e) = self.poll.registry().register(
                &mut socket,
                conn_token(id),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::warn!("cannot register {peer}: {e}");
                self.admission.on_close(&counted);
                continue;
            }
            // The age limit is spread per connection (±10 %, from the generation) so agents
            // that connected together do not all get the reconnect goodbye together.
            let lifecycle = Lifecycle::with_spread_age(self.config.timeouts, now, generation);
            let aes = self.config.aes_allowed;
            entry.insert(Conn::new(
                socket, peer, generation, lifecycle, aes, counted, now,
            ));
            self.stats.accepted.inc();
            log::debug!(
                "accept {peer} (conn {}, {} open)",
                id.index,
                self.conns.len()
            );
            self.arm(id);
        }
    }
}

/// Writes the plaintext "too many connections" error to a socket we will not keep. The socket
/// is fresh, so the few bytes fit in its send buffer; if not, the close alone tells the agent.
fn refuse(socket: &mut mio::net::TcpStream, refused: Refused, limits: &AdmissionLimits) {
    use std::io::Write;
    let message = match refused {
        Refused::Full => format!(
            "too many connections (cap {}), go elsewhere",
            limits.max_connections
        ),
        Refused::Source => format!(
            "too many connections from this address in the handshake (cap {}), go elsewhere",
            limits.max_handshakes_per_source
        ),
        _ => format!(
            "too many connections in the handshake (cap {}), go elsewhere",
            limits.max_handshakes
        ),
    };
    let error = WireError::new(ErrorCode::TooManyConnections, message);
    let mut frame = Vec::with_capacity(128);
    gatehouse_common::session::write_plain_error(&error, &mut frame);
    let _ = socket.write(&frame);
}

/// Re-issues listen(2) with a larger backlog; std binds with 128.
pub(super) fn raise_backlog(listener: &std::net::TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: listen(2) on a valid, bound socket descriptor we own; no memory is shared.
    let rc = unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) };
    if rc != 0 {
        log::warn!(
            "cannot raise the listen backlog: {}",
            io::Error::last_os_error()
        );
    }
}
