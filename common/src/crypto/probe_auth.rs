//! Authentication of UDP probes and replies. Pure.
//!
//! datagram = body ‖ tag, tag = first 16 bytes of HMAC-SHA256(node key, label ‖ body), with
//! label "gatehouse v1 probe" for probes and "gatehouse v1 probe reply" for replies, so a
//! probe can never pass as a reply. The server parses the body (a bounds-checked decoder) to
//! learn the host, looks up its key, and checks the tag before doing anything else: an
//! unauthenticated probe gets no reply at all.

use crate::nodekeys::NodeKey;
use crate::wire::probe::{Probe, ProbeReply, PROBE_TAG_LEN};
use crate::wire::reader::DecodeError;
use crate::wire::writer::EncodeError;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PROBE_LABEL: &[u8] = b"gatehouse v1 probe";
const REPLY_LABEL: &[u8] = b"gatehouse v1 probe reply";

/// Why a datagram was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("datagram shorter than its tag")]
    TooShort,
    #[error("malformed probe: {0}")]
    Malformed(#[from] DecodeError),
    #[error("probe from unknown host {0:?}")]
    UnknownHost(String),
    #[error("probe tag did not verify")]
    BadTag,
}

fn tag_mac(key: &NodeKey, label: &[u8], body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.0).expect("HMAC takes any key length");
    mac.update(label);
    mac.update(body);
    mac
}

fn append_tag(key: &NodeKey, label: &[u8], mut body: Vec<u8>) -> Vec<u8> {
    let tag = tag_mac(key, label, &body).finalize().into_bytes();
    body.extend_from_slice(&tag[..PROBE_TAG_LEN]);
    body
}

fn split_tag(datagram: &[u8]) -> Result<(&[u8], &[u8]), ProbeError> {
    let split = datagram
        .len()
        .checked_sub(PROBE_TAG_LEN)
        .ok_or(ProbeError::TooShort)?;
    Ok(datagram.split_at(split))
}

fn verify(key: &NodeKey, label: &[u8], body: &[u8], tag: &[u8]) -> Result<(), ProbeError> {
    tag_mac(key, label, body)
        .verify_truncated_left(tag)
        .map_err(|_| ProbeError::BadTag)
}

/// Encodes and tags a probe; fails only for a host name the wire cannot carry.
pub fn seal_probe(key: &NodeKey, probe: &Probe) -> Result<Vec<u8>, EncodeError> {
    let mut body = Vec::with_capacity(128);
    probe.encode_body(&mut body)?;
    Ok(append_tag(key, PROBE_LABEL, body))
}

/// Parses a probe, finds its host's key with `lookup`, and verifies the tag.
pub fn open_probe(
    datagram: &[u8],
    lookup: impl FnOnce(&str) -> Option<NodeKey>,
) -> Result<(Probe, NodeKey), ProbeError> {
    let (body, tag) = split_tag(datagram)?;
    let probe = Probe::decode_body(body)?;
    let key = lookup(&probe.host).ok_or_else(|| ProbeError::UnknownHost(probe.host.clone()))?;
    verify(&key, PROBE_LABEL, body, tag)?;
    Ok((probe, key))
}

/// Encodes and tags a reply.
pub fn seal_reply(key: &NodeKey, reply: &ProbeReply) -> Vec<u8> {
    let mut body = Vec::with_capacity(128);
    reply.encode_body(&mut body);
    append_tag(key, REPLY_LABEL, body)
}

/// Verifies and parses a reply.
pub fn open_reply(key: &NodeKey, datagram: &[u8]) -> Result<ProbeReply, ProbeError> {
    let (body, tag) = split_tag(datagram)?;
    verify(key, REPLY_LABEL, body, tag)?;
    Ok(ProbeReply::decode_body(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::strategies::hex;

    /// The worked example of docs/PROTOCOL.md ("Probe datagram layout"), tagged with the key
    /// 32 × 07; the tag was also computed with Python's hmac module.
    #[test]
    fn wire_vector_probe_datagram() {
        let probe = Probe {
            host: "web-01".into(),
            probe_id: 0x0102_0304_0506_0708,
            sent_unix_ms: 1_796_083_200_000,
        };
        let key = NodeKey([7; 32]);
        let datagram = seal_probe(&key, &probe).unwrap();
        assert_eq!(datagram.len(), 128);
        assert_eq!(datagram[112..], hex("430fe512985807d950a1ed0f81c44c71"));
        let (opened, _) = open_probe(&datagram, |_| Some(key.clone())).unwrap();
        assert_eq!(opened, probe);
    }
}
