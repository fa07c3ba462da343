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
//!
//! After its `Subscribe` the replica also sends what it has to report ([`ReplMessage::Report`]:
//! failed password checks for the central lockout), numbered in a stream of its own; the master
//! counts each record once and acknowledges it ([`ReplMessage::ReportAck`]).
//!
//! A replica forwards a user's own password change, once it has verified the old password,
//! as [`ReplMessage::PasswordChange`]; the master applies it and answers
//! [`ReplMessage::PasswordChangeResult`] with the same id. Never re-sent on a new link: a
//! change whose link broke is answered "unavailable" to the user, who may run passwd again.

use super::codec::{put_bytes, put_change, read_bytes, read_change, read_len};
use super::link_auth::{LinkAuth, LinkHello};
use super::report::{put_report, read_report, Report, MAX_REPORT_RECORDS, MIN_RECORD_LEN};
use crate::policy::change::Change;
use crate::wire::frame::MAX_FRAME_LEN;
use crate::wire::password_change::{
    put_change_request, put_outcome, read_change_request, read_outcome, ChangeOutcome,
    ChangePasswordRequest,
};
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
    /// 0x10-0x1F: the report channel (replica → master reports and their acks).
    pub const REPORT: u8 = 0x10;
    pub const REPORT_ACK: u8 = 0x11;
    /// 0x20-0x2F: forwarded requests (a user's own password change) and their answers.
    pub const PASSWORD_CHANGE: u8 = 0x20;
    pub const PASSWORD_CHANGE_RESULT: u8 = 0x21;
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
    /// Replica → master, after its `Subscribe`: records `first`, `first + 1`, … of the
    /// replica's report stream `stream` (a number it draws when it starts, so a restarted
    /// replica's records are never mistaken for repeats). At most [`MAX_REPORT_RECORDS`].
    Report {
        stream: u64,
        first: u64,
        records: Vec<Report>,
    },
    /// Master → replica: every record of `stream` up to `through` has been received and
    /// counted; the replica may forget them.
    ReportAck { stream: u64, through: u64 },
    /// Replica → master, after its `Subscribe`: apply a user's own password change whose old
    /// password the replica has verified (`request.old_password` is sent empty). `id` is the
    /// replica's, unique on the link; at most [`MAX_CHANGES_IN_FLIGHT`] unanswered.
    PasswordChange {
        id: u64,
        request: ChangePasswordRequest,
    },
    /// Master → replica: how change `id` ended (`Changed` once committed).
    PasswordChangeResult { id: u64, outcome: ChangeOutcome },
}

/// Password changes a replica may have sent on a link and not had answered (4): changes are
/// rare (a person running passwd); each holds one of the replica's workers until answered,
/// so the cap keeps logins served while a master is slow.
pub const MAX_CHANGES_IN_FLIGHT: usize = 4;

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
            ReplMessage::Report {
                stream,
                first,
                records,
            } => {
                if records.len() > MAX_REPORT_RECORDS {
                    return Err(EncodeError::TooMany {
                        field: "records",
                        count: records.len(),
                        max: MAX_REPORT_RECORDS,
                    });
                }
                out.push(tag::REPORT);
                out.extend_from_slice(&stream.to_be_bytes());
                out.extend_from_slice(&first.to_be_bytes());
                super::codec::put_len(out, "records", records.len())?;
                for record in records {
                    put_report(out, record)?;
                }
            }
            ReplMessage::ReportAck { stream, through } => {
                out.push(tag::REPORT_ACK);
                out.extend_from_slice(&stream.to_be_bytes());
                out.extend_from_slice(&through.to_be_bytes());
            }
            ReplMessage::PasswordChange { id, request } => {
                out.push(tag::PASSWORD_CHANGE);
                out.extend_from_slice(&id.to_be_bytes());
                put_change_request(out, request)?;
            }
            ReplMessage::PasswordChangeResult { id, outcome } => {
                out.push(tag::PASSWORD_CHANGE_RESULT);
                out.extend_from_slice(&id.to_be_bytes());
                put_outcome(out, outcome);
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
            ReplMessage::Report { .. } => "Report",
            ReplMessage::ReportAck { .. } => "ReportAck",
            ReplMessage::PasswordChange { .. } => "PasswordChange",
            ReplMessage::PasswordChangeResult { .. } => "PasswordChangeResult",
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
        tag::REPORT => {
            let stream = r.u64()?;
            let first = r.u64()?;
            let count = read_len(r, MIN_RECORD_LEN)?;
            if count > MAX_REPORT_RECORDS {
                return Err(DecodeError::Invalid {
                    field: "records",
                    why: "more than 64 in one report",
                });
            }
            // Sequences start at 1, and the last one must exist.
            if first == 0 || first.checked_add(count as u64).is_none() {
                return Err(DecodeError::Invalid {
                    field: "first",
                    why: "sequences run from 1 to u64::MAX - 1",
                });
            }
            let mut records = Vec::with_capacity(count);
            for _ in 0..count {
                records.push(read_report(r)?);
            }
            ReplMessage::Report {
                stream,
                first,
                records,
            }
        }
        tag::REPORT_ACK => ReplMessage::ReportAck {
            stream: r.u64()?,
            through: r.u64()?,
        },
        tag::PASSWORD_CHANGE => ReplMessage::PasswordChange {
            id: r.u64()?,
            request: read_change_request(r)?.to_owned(),
        },
        tag::PASSWORD_CHANGE_RESULT => ReplMessage::PasswordChangeResult {
            id: r.u64()?,
            outcome: read_outcome(r)?,
        },
        other => return Err(DecodeError::UnknownTag(other)),
    })
}

#[cfg(test)]
#[path = "msg_tests.rs"]
mod tests;
