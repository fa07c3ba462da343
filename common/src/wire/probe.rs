//! The UDP probe and its reply. TODO(codec helper)

use crate::wire::reader::DecodeError;

/// Length of the truncated HMAC tag on probes and replies, bytes.
pub const PROBE_TAG_LEN: usize = 16;

/// Agent → server over UDP: "how long would I wait?" Authenticated with the host's probe key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub host: String,
    /// Random id echoed in the reply (also makes each probe distinct).
    pub probe_id: u64,
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
    /// Appends the probe body (without tag).
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        let _ = out;
        todo!()
    }
    /// Decodes a probe body (without tag).
    pub fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let _ = bytes;
        todo!()
    }
}

impl ProbeReply {
    /// Appends the reply body (without tag).
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        let _ = out;
        todo!()
    }
    /// Decodes a reply body (without tag).
    pub fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let _ = bytes;
        todo!()
    }
}
