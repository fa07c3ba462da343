//! Replication-link messages and their binary encoding (docs/PROTOCOL.md, "Replication
//! messages"). Pure; `decode` never panics and rejects unknown tags, bad lengths and trailing
//! bytes; encoding is canonical.
//!
//! The link: the replica connects to the master's replication port and completes the usual
//! node-key handshake; inside the sealed session it sends [`ReplMessage::LinkHello`], the master
//! proves its identity with [`ReplMessage::LinkAuth`] (`link_auth`), and both switch to the
//! link's own keys. Then the replica sends `Subscribe` with the last sequence it has durably
//! applied; the master answers with every change after it in `Changes` batches, or a
//! `SnapshotChunk` series. The replica applies each batch atomically, persists it, and sends
//! `Ack`. Both sides send `Heartbeat` when they have been quiet for the interval.

use super::codec::{put_bytes, put_change, read_bytes, read_change, read_len};
use super::link_auth::{LinkAuth, LinkHello};
use crate::policy::change::Change;
use crate::wire::frame::MAX_FRAME_LEN;
use crate::wire::reader::{DecodeError, Reader};
use crate::wire::writer::{put_string, truncate_utf8, EncodeError};

/// Largest encoded message, bytes: a frame minus the AEAD tag (16) and the session message's
/// tag and length (5), so every message fits one sealed frame.
pub const MAX_MESSAGE_BYTES: usize = MAX_FRAME_LEN - 16 - 5;
/// Longest `Refused` reason, bytes (256): a sentence for the replica's log.
pub const MAX_REASON_LEN: usize = 256;

/// Message tags (the first byte of every replication message).
pub mod tag {
    pub const LINK_HELLO: u8 = 0x01;
    pub const LINK_AUTH: u8 = 0x02;
    pub const SUBSCRIBE: u8 = 0x03;
    pub const CHANGES: u8 = 0x04;
    pub const SNAPSHOT_CHUNK: u8 = 0x05;
    pub const ACK: u8 = 0x06;
    pub const HEARTBEAT: u8 = 0x07;
    pub const REFUSED: u8 = 0x08;
}

/// One message on a replication link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplMessage {
    /// Replica → master, first: a fresh X25519 key for the link's key exchange.
    LinkHello(LinkHello),
    /// Master → replica, answering the hello: the master's signed identity and epoch. After
    /// it both directions use the link's keys.
    LinkAuth(LinkAuth),
    /// Replica → master, first after the switch: "I have everything up to `applied`,
    /// durably". `epoch` is the highest master epoch the replica has followed (0 at first).
    /// `heartbeat_ms` is the replica's heartbeat interval: the master heartbeats this link at
    /// least that often, so the replica's timeout always fits.
    Subscribe {
        applied: u64,
        epoch: u64,
        heartbeat_ms: u64,
    },
    /// Master → replica: consecutive changes following what was sent before; `head` is the
    /// master's latest sequence.
    Changes {
        head: u64,
        changes: Vec<(u64, Change)>,
    },
    /// Master → replica: part `index` (from 0) of the encoded database at sequence `seq`;
    /// `last` on the final part.
    SnapshotChunk {
        seq: u64,
        index: u32,
        last: bool,
        data: Vec<u8>,
    },
    /// Replica → master: everything up to `applied` is applied and durable, and the replica
    /// now holds master epoch `epoch`.
    Ack { applied: u64, epoch: u64 },
    /// Either way, after a quiet heartbeat interval (the master also sends one at once after a
    /// subscribe): the master's head, or the replica's applied sequence.
    Heartbeat { seq: u64 },
    /// Master → replica: the link is refused; the master closes after it.
    Refused { reason: String },
}

/// A message that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplError {
    #[error("replication message of {0} bytes exceeds the {MAX_MESSAGE_BYTES}-byte cap")]
    TooLarge(usize),
    #[error("malformed replication message: {0}")]
    Malformed(#[from] DecodeError),
    #[error("cannot encode a replication message: {0}")]
    Encode(#[from] EncodeError),
    #[error("snapshot chunk out of order: expected {expected}, got {got}")]
    ChunkOutOfOrder { expected: u32, got: u32 },
    #[error("snapshot larger than {} bytes", super::batch::MAX_SNAPSHOT_BYTES)]
    SnapshotTooLarge,
}

impl ReplMessage {
    /// Encodes; fails for a message over the cap (the sender splits batches to avoid it).
    pub fn encode(&self) -> Result<Vec<u8>, ReplError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        if out.len() > MAX_MESSAGE_BYTES {
            return Err(ReplError::TooLarge(out.len()));
        }
        Ok(out)
    }

    fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            ReplMessage::LinkHello(hello) => {
                out.push(tag::LINK_HELLO);
                out.extend_from_slice(&hello.ephemeral);
            }
            ReplMessage::LinkAuth(auth) => {
                out.push(tag::LINK_AUTH);
                out.extend_from_slice(&auth.master_key);
                out.extend_from_slice(&auth.ephemeral);
                out.extend_from_slice(&auth.epoch.to_be_bytes());
                out.extend_from_slice(&auth.signature);
            }
            ReplMessage::Subscribe {
                applied,
                epoch,
                heartbeat_ms,
            } => {
                out.push(tag::SUBSCRIBE);
                for n in [applied, epoch, heartbeat_ms] {
                    out.extend_from_slice(&n.to_be_bytes());
                }
            }
            ReplMessage::Changes { head, changes } => {
                out.push(tag::CHANGES);
                out.extend_from_slice(&head.to_be_bytes());
                super::codec::put_len(out, "changes", changes.len())?;
                for (seq, change) in changes {
                    out.extend_from_slice(&seq.to_be_bytes());
                    put_change(out, change)?;
                }
            }
            ReplMessage::SnapshotChunk {
                seq,
                index,
                last,
                data,
            } => {
                out.push(tag::SNAPSHOT_CHUNK);
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(&index.to_be_bytes());
                out.push(u8::from(*last));
                put_bytes(out, "data", data)?;
            }
            ReplMessage::Ack { applied, epoch } => {
                out.push(tag::ACK);
                out.extend_from_slice(&applied.to_be_bytes());
                out.extend_from_slice(&epoch.to_be_bytes());
            }
            ReplMessage::Heartbeat { seq } => {
                out.push(tag::HEARTBEAT);
                out.extend_from_slice(&seq.to_be_bytes());
            }
            ReplMessage::Refused { reason } => {
                out.push(tag::REFUSED);
                // Sent on failure paths: cut to the limit rather than fail.
                let reason = truncate_utf8(reason, MAX_REASON_LEN);
                put_string(out, "reason", MAX_REASON_LEN, reason)?;
            }
        }
        Ok(())
    }

    /// The message's name, for logs (never its contents: a batch or snapshot is large).
    pub fn name(&self) -> &'static str {
        match self {
            ReplMessage::LinkHello(_) => "LinkHello",
            ReplMessage::LinkAuth(_) => "LinkAuth",
            ReplMessage::Subscribe { .. } => "Subscribe",
            ReplMessage::Changes { .. } => "Changes",
            ReplMessage::SnapshotChunk { .. } => "SnapshotChunk",
            ReplMessage::Ack { .. } => "Ack",
            ReplMessage::Heartbeat { .. } => "Heartbeat",
            ReplMessage::Refused { .. } => "Refused",
        }
    }

    /// Decodes one message; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Self, ReplError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(ReplError::TooLarge(bytes.len()));
        }
        let mut r = Reader::new(bytes);
        let msg = decode_from(&mut r)?;
        r.finish()?;
        Ok(msg)
    }
}

fn decode_from(r: &mut Reader<'_>) -> Result<ReplMessage, DecodeError> {
    Ok(match r.u8()? {
        tag::LINK_HELLO => ReplMessage::LinkHello(LinkHello {
            ephemeral: r.array()?,
        }),
        tag::LINK_AUTH => ReplMessage::LinkAuth(LinkAuth {
            master_key: r.array()?,
            ephemeral: r.array()?,
            epoch: r.u64()?,
            signature: r.array()?,
        }),
        tag::SUBSCRIBE => ReplMessage::Subscribe {
            applied: r.u64()?,
            epoch: r.u64()?,
            heartbeat_ms: r.u64()?,
        },
        tag::CHANGES => {
            let head = r.u64()?;
            // Each entry is at least a sequence and a one-name change: 8 + 1 + 4 bytes.
            let count = read_len(r, 13)?;
            let mut changes = Vec::with_capacity(count);
            for _ in 0..count {
                let seq = r.u64()?;
                changes.push((seq, read_change(r)?));
            }
            ReplMessage::Changes { head, changes }
        }
        tag::SNAPSHOT_CHUNK => ReplMessage::SnapshotChunk {
            seq: r.u64()?,
            index: r.u32()?,
            last: super::codec::read_bool(r, "last")?,
            data: read_bytes(r)?.to_vec(),
        },
        tag::ACK => ReplMessage::Ack {
            applied: r.u64()?,
            epoch: r.u64()?,
        },
        tag::HEARTBEAT => ReplMessage::Heartbeat { seq: r.u64()? },
        tag::REFUSED => ReplMessage::Refused {
            reason: r.string("reason", MAX_REASON_LEN)?,
        },
        other => return Err(DecodeError::UnknownTag(other)),
    })
}

#[cfg(test)]
#[path = "msg_tests.rs"]
mod tests;
