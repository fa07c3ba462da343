//! Packing changes into `Changes` messages that fit a frame, splitting the encoded database
//! into snapshot chunks, and reassembling them on the replica. Pure.

use super::codec::{change_bytes, database_bytes, decode_database};
use super::msg::{ReplError, ReplMessage};
use crate::policy::change::Change;
use crate::policy::Database;

/// Encoded snapshot bytes per chunk (48 KiB): leaves room for the chunk's own fields within
/// a message.
pub const SNAPSHOT_CHUNK_BYTES: usize = 48 * 1024;
/// Encoded change bytes per `Changes` message (48 KiB), for the same reason. A single change
/// larger than this (an import of a large database) is sent as a snapshot instead.
pub const CHANGES_BATCH_BYTES: usize = 48 * 1024;
/// Largest snapshot a replica accepts, bytes (1 GiB: a database of a million users and hosts
/// with two million routes encodes to about 330 MiB (docs/BENCHMARKS.md, "Database scale"),
/// so three times that; small enough that a corrupt stream cannot exhaust a server's memory).
pub const MAX_SNAPSHOT_BYTES: usize = 1024 * 1024 * 1024;
/// Bytes of a `Changes` entry besides the change itself (its sequence number).
const ENTRY_OVERHEAD: usize = 8;

/// Packs changes into `Changes` messages that each fit the cap, in order. A single change too
/// large for any message (an import of a huge database) is returned as the first index that
/// could not be sent: the caller sends a snapshot instead.
pub fn pack_changes(changes: &[(u64, Change)], head: u64) -> (Vec<ReplMessage>, Option<usize>) {
    let mut messages = Vec::new();
    let mut batch: Vec<(u64, Change)> = Vec::new();
    let mut size = 0;
    let flush = |batch: &mut Vec<(u64, Change)>, messages: &mut Vec<ReplMessage>| {
        if !batch.is_empty() {
            messages.push(ReplMessage::Changes {
                head,
                changes: std::mem::take(batch),
            });
        }
    };
    for (i, (seq, change)) in changes.iter().enumerate() {
        let one =
            change_bytes(change).map_or(usize::MAX, |b| b.len().saturating_add(ENTRY_OVERHEAD));
        if one > CHANGES_BATCH_BYTES {
            flush(&mut batch, &mut messages);
            return (messages, Some(i));
        }
        if size + one > CHANGES_BATCH_BYTES {
            flush(&mut batch, &mut messages);
            size = 0;
        }
        size += one;
        batch.push((*seq, change.clone()));
    }
    flush(&mut batch, &mut messages);
    (messages, None)
}

/// Splits the database at `seq` into snapshot chunks.
pub fn snapshot_chunks(db: &Database, seq: u64) -> Result<Vec<ReplMessage>, ReplError> {
    let bytes = database_bytes(db)?;
    let mut parts: Vec<&[u8]> = bytes.chunks(SNAPSHOT_CHUNK_BYTES).collect();
    if parts.is_empty() {
        parts.push(&[]);
    }
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let index = u32::try_from(i).map_err(|_| ReplError::SnapshotTooLarge)?;
            Ok(ReplMessage::SnapshotChunk {
                seq,
                index,
                last: i == last,
                data: part.to_vec(),
            })
        })
        .collect()
}

/// Reassembles snapshot chunks, in order, up to [`MAX_SNAPSHOT_BYTES`].
#[derive(Debug, Default)]
pub struct SnapshotAssembler {
    seq: u64,
    next: u32,
    bytes: Vec<u8>,
}

impl SnapshotAssembler {
    /// Adds a chunk; returns the database and its sequence after the last chunk.
    pub fn push(
        &mut self,
        seq: u64,
        index: u32,
        last: bool,
        data: &[u8],
    ) -> Result<Option<(Database, u64)>, ReplError> {
        match self.push_encoded(seq, index, last, data)? {
            None => Ok(None),
            Some((bytes, seq)) => Ok(Some((decode_database(&bytes)?, seq))),
        }
    }

    /// Adds a chunk; returns the whole encoded database ([`decode_database`] reads it) and
    /// its sequence after the last chunk. For a caller that decodes elsewhere: a million
    /// users take seconds to decode, which a replication loop must not spend between two
    /// heartbeats.
    pub fn push_encoded(
        &mut self,
        seq: u64,
        index: u32,
        last: bool,
        data: &[u8],
    ) -> Result<Option<(Vec<u8>, u64)>, ReplError> {
        if index == 0 {
            self.seq = seq;
            self.next = 0;
            self.bytes.clear();
        }
        if index != self.next || seq != self.seq {
            return Err(ReplError::ChunkOutOfOrder {
                expected: self.next,
                got: index,
            });
        }
        if self.bytes.len() + data.len() > MAX_SNAPSHOT_BYTES {
            return Err(ReplError::SnapshotTooLarge);
        }
        self.bytes.extend_from_slice(data);
        self.next = self
            .next
            .checked_add(1)
            .ok_or(ReplError::SnapshotTooLarge)?;
        if !last {
            return Ok(None);
        }
        let bytes = std::mem::take(&mut self.bytes);
        self.next = 0;
        Ok(Some((bytes, self.seq)))
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

    fn chunk_parts(m: &ReplMessage) -> (u64, u32, bool, &[u8]) {
        match m {
            ReplMessage::SnapshotChunk {
                seq,
                index,
                last,
                data,
            } => (*seq, *index, *last, data),
            other => panic!("not a chunk: {other:?}"),
        }
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
            let (seq, index, last, data) = chunk_parts(c);
            out = asm.push(seq, index, last, data).unwrap();
        }
        assert_eq!(out, Some((db, 77)));
    }

    #[test]
    fn an_empty_database_is_one_chunk() {
        let chunks = snapshot_chunks(&Database::default(), 0).unwrap();
        assert_eq!(chunks.len(), 1);
        let (seq, index, last, data) = chunk_parts(&chunks[0]);
        let out = SnapshotAssembler::default().push(seq, index, last, data);
        assert_eq!(out.unwrap(), Some((Database::default(), 0)));
    }

    #[test]
    fn chunks_out_of_order_are_refused() {
        let chunks = snapshot_chunks(&big_db(3000), 5).unwrap();
        let mut asm = SnapshotAssembler::default();
        let (seq, index, last, data) = chunk_parts(&chunks[1]);
        assert!(matches!(
            asm.push(seq, index, last, data),
            Err(ReplError::ChunkOutOfOrder { .. })
        ));
    }

    #[test]
    fn change_batches_fit_the_cap_and_keep_order() {
        let changes: Vec<(u64, Change)> = (1..=5000)
            .map(|n| {
                let name = format!("class-{n}-{}", "x".repeat(20));
                (n, Change::AddClass { name })
            })
            .collect();
        let (messages, oversized) = pack_changes(&changes, 5000);
        assert_eq!(oversized, None);
        assert!(messages.len() > 1);
        let mut seqs = Vec::new();
        for m in &messages {
            assert!(m.encode().is_ok());
            let ReplMessage::Changes { changes, head } = m else {
                unreachable!()
            };
            assert_eq!(*head, 5000);
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
        let (messages, oversized) = pack_changes(&changes, 2);
        assert_eq!(messages.len(), 1);
        assert_eq!(oversized, Some(1));
    }
}
