//! The UDP probe and its reply: the body codec (docs/PROTOCOL.md, "Probe datagram layout").
//!
//! Pure. A datagram is `body || tag`, where the 16-byte tag (a truncated HMAC over the body)
//! is appended and checked by the crypto module; this module only builds and parses bodies.
//! The agent encodes probes and decodes replies; the replica does the reverse.
//!
//! Amplification: a probe is padded with zeros to at least [`PROBE_MIN_DATAGRAM`] bytes and a
//! probe shorter than that is rejected, while a reply is a fixed [`PROBE_REPLY_DATAGRAM_LEN`]
//! bytes, no larger — so a spoofed probe can never make a server send more bytes than it got.

#[cfg(test)]
mod tests;

use crate::wire::msg::MAX_HOST_LEN;
use crate::wire::reader::{DecodeError, Reader};
use crate::wire::writer::{put_short_string, EncodeError};

/// Length of the truncated HMAC tag on probes and replies, bytes.
pub const PROBE_TAG_LEN: usize = 16;
/// First two bytes of every probe body: tells a stray datagram from ours cheaply.
pub const PROBE_MAGIC: [u8; 2] = *b"GH";
/// Probe-format version this build speaks.
pub const PROBE_VERSION: u8 = 1;
/// Body kind byte of a probe.
pub const PROBE_KIND_PROBE: u8 = 1;
/// Body kind byte of a reply.
pub const PROBE_KIND_REPLY: u8 = 2;
/// Smallest probe datagram (body + tag), bytes (default 128). Probes are padded up to it and
/// shorter ones are dropped, so a reply ([`PROBE_REPLY_DATAGRAM_LEN`] = 96) is never larger
/// than the probe that caused it, leaving 32 bytes for future reply fields.
pub const PROBE_MIN_DATAGRAM: usize = 128;
/// Largest probe datagram (body + tag) accepted, bytes (default 512). The longest probe we
/// send is 292 bytes (255-byte host); the cap bounds the receive buffer and keeps every
/// datagram far below the 1280-byte IPv6 minimum MTU, so it is never fragmented.
pub const PROBE_MAX_DATAGRAM: usize = 512;
/// Bytes before the host in a probe body: magic, version, kind.
const HEADER_LEN: usize = 4;
/// Length of a reply body, bytes: header, probe id, six u64 and five u32 load fields.
pub const PROBE_REPLY_BODY_LEN: usize = HEADER_LEN + 8 + 6 * 8 + 5 * 4;
/// Length of a reply datagram (body + tag), bytes. Replies have no variable part.
pub const PROBE_REPLY_DATAGRAM_LEN: usize = PROBE_REPLY_BODY_LEN + PROBE_TAG_LEN;

/// Agent → server over UDP: "how long would I wait?" Authenticated with the host's node key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub host: String,
    /// Random id echoed in the reply (also makes each probe distinct).
    pub probe_id: u64,
    /// When the agent sent it, ms since the Unix epoch (its wall clock): a server answers only
    /// probes within its window of its own clock, so a captured probe cannot be replayed later.
    pub sent_unix_ms: u64,
}

/// The numbers behind a server's estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadReport {
    /// The server's recommended estimate of an arriving request's wait, µs (never 0).
    pub recommended_wait_us: u64,
    /// The seed's estimate: mean queue time of the last 10 × queue length, µs.
    pub seed_wait_us: u64,
    pub queue_len: u32,
    pub in_service: u32,
    pub workers: u32,
    /// Mean queue time of the last 10 requests, µs.
    pub mean_queue_us: u64,
    /// Mean service time, µs.
    pub mean_service_us: u64,
    /// Agent connections open now.
    pub connections: u32,
    pub max_connections: u32,
    /// Sequence number of the policy database this server holds (0 when loaded from a file).
    pub db_sequence: u64,
    /// How stale that copy is, ms (0 on the master; u64::MAX when unknown).
    pub db_age_ms: u64,
}

/// Server → agent over UDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReply {
    pub probe_id: u64,
    pub load: LoadReport,
}

impl Probe {
    /// Appends the probe body (zero-padded to the minimum datagram size, tag not included) to
    /// `out`. Refuses an empty host or one over [`MAX_HOST_LEN`] bytes; `out` is then unchanged.
    pub fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.host.is_empty() {
            return Err(EncodeError::Empty { field: "host" });
        }
        let start = out.len();
        put_header(out, PROBE_KIND_PROBE);
        put_short_string(out, "host", MAX_HOST_LEN, &self.host)
            .inspect_err(|_| out.truncate(start))?;
        out.extend_from_slice(&self.probe_id.to_be_bytes());
        out.extend_from_slice(&self.sent_unix_ms.to_be_bytes());
        let min_body = PROBE_MIN_DATAGRAM - PROBE_TAG_LEN;
        let body_len = out.len() - start;
        out.resize(start + body_len.max(min_body), 0);
        Ok(())
    }

    /// Parses a probe body (the datagram minus its tag). The padding may be any length but
    /// must be zeros, and the whole datagram must be within
    /// [`PROBE_MIN_DATAGRAM`]..=[`PROBE_MAX_DATAGRAM`].
    pub fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let datagram = body.len().saturating_add(PROBE_TAG_LEN);
        if datagram > PROBE_MAX_DATAGRAM {
            return Err(DecodeError::Invalid {
                field: "probe",
                why: "datagram over the 512-byte maximum",
            });
        }
        if datagram < PROBE_MIN_DATAGRAM {
            return Err(DecodeError::Invalid {
                field: "probe",
                why: "datagram under the 128-byte minimum",
            });
        }
        let mut r = Reader::new(body);
        read_header(&mut r, PROBE_KIND_PROBE)?;
        let host = r.short_string("host", MAX_HOST_LEN)?;
        if host.is_empty() {
            return Err(DecodeError::Invalid {
                field: "host",
                why: "empty",
            });
        }
        let probe_id = r.u64()?;
        let sent_unix_ms = r.u64()?;
        if r.rest().iter().any(|&b| b != 0) {
            return Err(DecodeError::Invalid {
                field: "padding",
                why: "not all zeros",
            });
        }
        Ok(Self {
            host,
            probe_id,
            sent_unix_ms,
        })
    }
}

impl ProbeReply {
    /// Appends the reply body ([`PROBE_REPLY_BODY_LEN`] bytes, tag not included) to `out`.
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        put_header(out, PROBE_KIND_REPLY);
        let l = &self.load;
        for v in [self.probe_id, l.recommended_wait_us, l.seed_wait_us] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for v in [l.queue_len, l.in_service, l.workers] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for v in [l.mean_queue_us, l.mean_service_us] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for v in [l.connections, l.max_connections] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for v in [l.db_sequence, l.db_age_ms] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    /// The probe id of a reply datagram, read without verifying it, so a client holding many
    /// agents' probes can find which agent's key to verify it with. `None` if it cannot be
    /// a reply.
    pub fn peek_probe_id(datagram: &[u8]) -> Option<u64> {
        if datagram.len() != PROBE_REPLY_DATAGRAM_LEN {
            return None;
        }
        let id = datagram.get(HEADER_LEN..HEADER_LEN + 8)?;
        Some(u64::from_be_bytes(id.try_into().ok()?))
    }

    /// Parses a reply body (the datagram minus its tag); it must be exactly
    /// [`PROBE_REPLY_BODY_LEN`] bytes.
    pub fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        read_header(&mut r, PROBE_KIND_REPLY)?;
        let reply = Self {
            probe_id: r.u64()?,
            load: LoadReport {
                recommended_wait_us: r.u64()?,
                seed_wait_us: r.u64()?,
                queue_len: r.u32()?,
                in_service: r.u32()?,
                workers: r.u32()?,
                mean_queue_us: r.u64()?,
                mean_service_us: r.u64()?,
                connections: r.u32()?,
                max_connections: r.u32()?,
                db_sequence: r.u64()?,
                db_age_ms: r.u64()?,
            },
        };
        r.finish()?;
        Ok(reply)
    }
}

/// A wall-clock time as a probe carries it: ms since the Unix epoch (0 for a clock set before
/// it, `u64::MAX` beyond what fits).
pub fn unix_ms(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}

fn put_header(out: &mut Vec<u8>, kind: u8) {
    out.extend_from_slice(&PROBE_MAGIC);
    out.extend_from_slice(&[PROBE_VERSION, kind]);
}

fn read_header(r: &mut Reader<'_>, want_kind: u8) -> Result<(), DecodeError> {
    if r.array::<2>()? != PROBE_MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let version = r.u8()?;
    if version != PROBE_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    match r.u8()? {
        k if k == want_kind => Ok(()),
        PROBE_KIND_PROBE | PROBE_KIND_REPLY => Err(DecodeError::Invalid {
            field: "probe kind",
            why: "a probe where a reply was expected, or the reverse",
        }),
        other => Err(DecodeError::UnknownCode {
            field: "probe kind",
            code: other.into(),
        }),
    }
}
