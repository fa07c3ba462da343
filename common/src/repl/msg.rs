//! Replication-link messages and their encoding (RON text inside a sealed `Session::Replication`
//! frame), and snapshot chunking. Pure.
//!
//! The link: the replica connects to the master's replication port, completes the usual
//! handshake with its own node key (the master accepts only hosts on its replica allow-list),
//! and sends `Subscribe` with the last sequence it has durably applied. The master answers with
//! every change after it in `Changes` batches, or — when its log no longer reaches back that
//! far — a `SnapshotChunk` series. The replica applies each batch atomically, persists it, and
//! sends `Ack`. Both sides send `Heartbeat` when they have been quiet for the interval.

use crate::policy::change::Change;
use crate::policy::Database;
use crate::wire::frame::MAX_FRAME_LEN;
use serde::{Deserialize, Serialize};

/// Largest encoded message, bytes: a frame minus the AEAD tag and the session tag byte, with
/// room to spare.
pub const MAX_MESSAGE_BYTES: usize = MAX_FRAME_LEN - 1024;
/// Snapshot text carried per chunk, bytes (leaves room for the chunk's own fields).
pub const SNAPSHOT_CHUNK_BYTES: usize = 48 * 1024;
/// Largest snapshot a replica accepts, bytes (256 MiB: far beyond any real fleet's database,
/// small enough that a corrupt stream cannot exhaust memory).
pub const MAX_SNAPSHOT_BYTES: usize = 256 * 1024 * 1024;

/// One message on a replication link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplMessage {
    /// Replica → master, first: "I have everything up to `applied`, durably". `epoch` is the
    /// highest master epoch the replica has followed (0 at first), so a master that was
    /// superseded by a promoted replica learns it and stops accepting writes. `heartbeat_ms`
    /// is the replica's heartbeat interval: the master heartbeats this link at least that
    /// often, so the replica's timeout always fits.
    Subscribe {
        applied: u64,
        epoch: u64,
        #[serde(default = "default_heartbeat_ms")]
        heartbeat_ms: u64,
    },
    /// Master → replica: consecutive changes following the replica's sequence; `head` is the
    /// master's latest sequence and `epoch` its epoch.
    Changes {
        changes: Vec<(u64, Change)>,
        head: u64,
        epoch: u64,
    },
    /// Master → replica: part `index` of the database at sequence `seq`, RON text; `last` on
    /// the final part. Sent when the change log was compacted past the replica's sequence.
    SnapshotChunk {
        seq: u64,
        index: u32,
        last: bool,
        data: String,
    },
    /// Replica → master: everything up to `applied` is applied and durable.
    Ack { applied: u64 },
    /// Either way, after a quiet heartbeat interval: the sender's head (master) or applied
    /// sequence (replica), and the master's epoch (0 from a replica). The master also sends
    /// one right after a subscribe, so the replica learns the head and epoch at once.
    Heartbeat {
        seq: u64,
        #[serde(default)]
        epoch: u64,
    },
    /// Master → replica: the link is refused (for example: not on the allow-list, or this
    /// master has been superseded). The master closes after it.
    Refused { reason: String },
}

fn default_heartbeat_ms() -> u64 {
    crate::repl::liveness::DEFAULT_HEARTBEAT_INTERVAL.as_millis() as u64
}

/// A message that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplError {
    #[error("replication message of {0} bytes exceeds the {MAX_MESSAGE_BYTES}-byte cap")]
    TooLarge(usize),
    #[error("malformed replication message: {0}")]
    Malformed(String),
    #[error("snapshot chunk out of order: expected {expected}, got {got}")]
    ChunkOutOfOrder { expected: u32, got: u32 },
    #[error("snapshot larger than {MAX_SNAPSHOT_BYTES} bytes")]
    SnapshotTooLarge,
}

impl ReplMessage {
    /// Encodes; fails for a message over the cap (the sender splits batches to avoid it).
    pub fn encode(&self) -> Result<Vec<u8>, ReplError> {
        let text = ron::to_string(self).map_err(|e| ReplError::Malformed(e.to_string()))?;
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(ReplError::TooLarge(text.len()));
        }
        Ok(text.into_bytes())
    }

    /// Decodes; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Self, ReplError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(ReplError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| ReplError::Malformed(e.to_string()))?;
        ron::from_str(text).map_err(|e| ReplError::Malformed(e.to_string()))
    }
}

/// Packs changes into `Changes` messages that each fit the cap, in order. A single change too
/// large for any message (an import of a huge database) is returned as the first index that
/// could not be sent: the caller sends a snapshot instead.
pub fn pack_changes(
    changes: &[(u64, Change)],
    head: u64,
    epoch: u64,
) -> (Vec<ReplMessage>, Option<usize>) {
    let mut messages = Vec::new();
    let mut batch: Vec<(u64, Change)> = Vec::new();
    let mut size = 0;
    for (i, (seq, change)) in changes.iter().enumerate() {
        let one = ron::to_string(change).map_or(usize::MAX, |t| t.len() + 32);
        if one > SNAPSHOT_CHUNK_BYTES {
            if !batch.is_empty() {
                messages.push(ReplMessage::Changes {
                    changes: std::mem::take(&mut batch),
                    head,
                    epoch,
                });
            }
            return (messages, Some(i));
        }
        if size + one > SNAPSHOT_CHUNK_BYTES && !batch.is_empty() {
            messages.push(ReplMessage::Changes {
                changes: std::mem::take(&mut batch),
                head,
                epoch,
            });
            size = 0;
        }
        size += one;
        batch.push((*seq, change.clone()));
    }
    if !batch.is_empty() {
        messages.push(ReplMessage::Changes {
            changes: batch,
            head,
            epoch,
        });
    }
    (messages, None)
}

/// Splits the database at `seq` into snapshot chunks.
pub fn snapshot_chunks(db: &Database, seq: u64) -> Result<Vec<ReplMessage>, ReplError> {
    let text = ron::to_string(db).map_err(|e| ReplError::Malformed(e.to_string()))?;
    let mut chunks = Vec::new();
    let mut rest = text.as_str();
    let mut index = 0u32;
    loop {
        let mut cut = rest.len().min(SNAPSHOT_CHUNK_BYTES);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (part, tail) = rest.split_at(cut);
        chunks.push(ReplMessage::SnapshotChunk {
            seq,
            index,
            last: tail.is_empty(),
            data: part.to_string(),
        });
        if tail.is_empty() {
            return Ok(chunks);
        }
        rest = tail;
        index += 1;
    }
}

/// Reassembles snapshot chunks, in order, up to [`MAX_SNAPSHOT_BYTES`].
#[derive(Debug, Default)]
pub struct SnapshotAssembler {
    seq: u64,
    next: u32,
    text: String,
}

impl SnapshotAssembler {
    /// Adds a chunk; returns the database and its sequence after the last chunk.
    pub fn push(
        &mut self,
        seq: u64,
        index: u32,
        last: bool,
        data: &str,
    ) -> Result<Option<(Database, u64)>, ReplError> {
        if index == 0 {
            self.seq = seq;
            self.next = 0;
            self.text.clear();
        }
        if index != self.next || seq != self.seq {
            return Err(ReplError::ChunkOutOfOrder {
                expected: self.next,
                got: index,
            });
        }
        if self.text.len() + data.len() > MAX_SNAPSHOT_BYTES {
            return Err(ReplError::SnapshotTooLarge);
        }
        self.text.push_str(data);
        self.next += 1;
        if !last {
            return Ok(None);
        }
        let db: Database =
            ron::from_str(&self.text).map_err(|e| ReplError::Malformed(e.to_string()))?;
        self.text = String::new();
        self.next = 0;
        Ok(Some((db, self.seq)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Host;

    fn big_db(hosts: usize) -> Database {
        Database {
            hosts: (0..hosts)
                .map(|n| Host {
                    name: format!("host{n:05}"),
                    addresses: vec![format!("10.{}.{}.{}", n / 65536, n / 256 % 256, n % 256)],
                    node_key: "ab".repeat(32),
                    groups: Vec::new(),
                    may_ask_for_others: false,
                })
                .collect(),
            ..Database::default()
        }
    }

    #[test]
    fn messages_round_trip_and_garbage_is_a_typed_error() {
        let m = ReplMessage::Subscribe {
            applied: 42,
            epoch: 1,
            heartbeat_ms: 250,
        };
        assert_eq!(ReplMessage::decode(&m.encode().unwrap()).unwrap(), m);
        assert!(matches!(
            ReplMessage::decode(b"\xff\xfe"),
            Err(ReplError::Malformed(_))
        ));
        assert!(matches!(
            ReplMessage::decode(b"Ack(applied: -1)"),
            Err(ReplError::Malformed(_))
        ));
    }

    #[test]
    fn a_large_snapshot_is_chunked_and_reassembled_exactly() {
        let db = big_db(3000);
        let chunks = snapshot_chunks(&db, 77).unwrap();
        assert!(chunks.len() > 3, "{} chunks", chunks.len());
        let mut asm = SnapshotAssembler::default();
        let mut out = None;
        for c in &chunks {
            assert!(c.encode().is_ok(), "every chunk fits a frame");
            let ReplMessage::SnapshotChunk {
                seq,
                index,
                last,
                data,
            } = c
            else {
                unreachable!()
            };
            out = asm.push(*seq, *index, *last, data).unwrap();
        }
        assert_eq!(out, Some((db, 77)));
    }

    #[test]
    fn chunks_out_of_order_are_refused() {
        let chunks = snapshot_chunks(&big_db(3000), 5).unwrap();
        let mut asm = SnapshotAssembler::default();
        let ReplMessage::SnapshotChunk {
            seq,
            index,
            last,
            data,
        } = &chunks[1]
        else {
            unreachable!()
        };
        assert!(matches!(
            asm.push(*seq, *index, *last, data),
            Err(ReplError::ChunkOutOfOrder { .. })
        ));
    }

    #[test]
    fn change_batches_fit_the_cap_and_keep_order() {
        let changes: Vec<(u64, Change)> = (1..=5000)
            .map(|n| {
                (
                    n,
                    Change::AddClass {
                        name: format!("class-{n}"),
                    },
                )
            })
            .collect();
        let (messages, oversized) = pack_changes(&changes, 5000, 1);
        assert_eq!(oversized, None);
        assert!(messages.len() > 1);
        let mut seqs = Vec::new();
        for m in &messages {
            assert!(m.encode().is_ok());
            let ReplMessage::Changes { changes, .. } = m else {
                unreachable!()
            };
            seqs.extend(changes.iter().map(|(s, _)| *s));
        }
        assert_eq!(seqs, (1..=5000).collect::<Vec<_>>());
    }

    #[test]
    fn a_change_too_large_for_a_message_asks_for_a_snapshot() {
        let changes = vec![
            (1, Change::AddClass { name: "a".into() }),
            (
                2,
                Change::ReplaceAll {
                    database: big_db(3000),
                },
            ),
        ];
        let (messages, oversized) = pack_changes(&changes, 2, 1);
        assert_eq!(messages.len(), 1);
        assert_eq!(oversized, Some(1));
    }
}
