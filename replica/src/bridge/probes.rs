//! Answering UDP probes: authenticate, then report the estimated wait and the numbers behind
//! it. Runs on the reactor thread (it reads the reactor's estimator and counters); the pure
//! parts are `estimator` and `gatehouse_common::crypto::probe_auth`.
//!
//! No reply is ever sent to an unauthenticated probe, nor to one sent outside the time window
//! or already answered (`probe_guard`: a captured probe cannot be replayed), a reply is never
//! larger than its probe (no amplification), and above the configured queue length the
//! replica stays silent so agents choose someone else.

use super::probe_guard::ProbeRefusal;
use super::reactor::{Reactor, PROBES_PER_TURN};
use gatehouse_common::crypto::probe_auth::{open_probe, seal_reply};
use gatehouse_common::wire::{unix_ms, LoadReport, ProbeReply, PROBE_TAG_LEN};
use std::io;
use std::time::{Duration, Instant};

/// At most one warning a minute about a probe outside the time window (a host whose clock is
/// off); the others are counted (`probes_stale`) and logged at debug.
pub const STALE_PROBE_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Receive buffer for one datagram; larger probes are truncated and then fail to verify.
pub const DATAGRAM_BUF: usize = 2048;

fn micros(d: std::time::Duration) -> u64 {
    d.as_micros().try_into().unwrap_or(u64::MAX)
}

impl Reactor {
    /// The load report a probe reply carries right now.
    pub(super) fn load_report(&self) -> LoadReport {
        let (queue_len, in_service) = (self.queue_len(), self.in_service());
        let estimate = self
            .estimator
            .estimate(queue_len, in_service, self.workers());
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        LoadReport {
            recommended_wait_us: micros(estimate.recommended),
            seed_wait_us: micros(estimate.seed),
            queue_len: clamp(queue_len),
            in_service: clamp(in_service),
            workers: clamp(self.workers()),
            mean_queue_us: micros(estimate.mean_queue),
            mean_service_us: micros(estimate.mean_service),
            connections: clamp(self.connections()),
            max_connections: clamp(self.config.max_connections),
            db_sequence: self.db.sequence(),
            db_age_ms: self.db.age_ms(),
        }
    }

    /// Counts and logs a verified probe that gets no reply.
    fn refused_probe(&mut self, host: &str, from: std::net::SocketAddr, refusal: ProbeRefusal) {
        match refusal {
            ProbeRefusal::Replayed => {
                self.stats.probes_replayed.inc();
                log::debug!("replayed probe from {from} host={host}: no reply");
            }
            ProbeRefusal::OutsideWindow { skew_ms } => {
                self.stats.probes_stale.inc();
                let now = Instant::now();
                let warn = self
                    .stale_probe_warned
                    .is_none_or(|at| now.duration_since(at) >= STALE_PROBE_WARNING_INTERVAL);
                let window = self.config.probe_window;
                if warn {
                    self.stale_probe_warned = Some(now);
                    log::warn!(
                        "probe from {from} host={host} sent {skew_ms} ms from this server's clock \
                         (window ±{window:?}): no reply; replayed, or that host's clock is off"
                    );
                } else {
                    log::debug!("probe from {from} host={host} outside the window: {skew_ms} ms");
                }
            }
        }
    }

    /// Reads and answers up to [`PROBES_PER_TURN`] datagrams.
    pub(super) fn answer_probes(&mut self) {
        let mut buf = [0u8; DATAGRAM_BUF];
        for _ in 0..PROBES_PER_TURN {
            let Some(udp) = &self.udp else {
                return;
            };
            let (len, from) = match udp.recv_from(&mut buf) {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("probe socket error: {e}");
                    return;
                }
            };
            let datagram = &buf[..len];
            if self.queue_len() >= self.config.probe_silence_queue_len {
                self.stats.probes_silenced.inc();
                continue;
            }
            let keys = self.keys.snapshot();
            let (probe, key) = match open_probe(datagram, |host| keys.get(host).cloned()) {
                Ok(pair) => pair,
                Err(e) => {
                    self.stats.probes_rejected.inc();
                    log::debug!("dropped probe from {from}: {e}");
                    continue;
                }
            };
            // The tag is verified: check the time and the replay cache (in that order, so only
            // genuine probes of the window take cache places).
            let tag: [u8; PROBE_TAG_LEN] = datagram
                .get(len.saturating_sub(PROBE_TAG_LEN)..)
                .and_then(|t| t.try_into().ok())
                .unwrap_or_default();
            if let Err(refusal) =
                self.probe_guard
                    .admit(probe.sent_unix_ms, tag, unix_ms(self.turn_wall))
            {
                self.refused_probe(&probe.host, from, refusal);
                continue;
            }
            let reply = seal_reply(
                &key,
                &ProbeReply {
                    probe_id: probe.probe_id,
                    load: self.load_report(),
                },
            );
            if reply.len() > len {
                // Never amplify: the codec guarantees this cannot happen for a valid probe.
                continue;
            }
            self.stats.probes_answered.inc();
            if let Some(udp) = &self.udp {
                if let Err(e) = udp.send_to(&reply, from) {
                    log::debug!("probe reply to {from} failed: {e}");
                }
            }
        }
    }
}
