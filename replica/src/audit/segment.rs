//! The journal's files (docs/PROTOCOL.md, "The audit journal on disk"): a directory of
//! segments named by their first sequence (`00000000000000000001.journal`), each a header
//! and a run of entries:
//!
//! ```text
//! segment = magic:"GHAUDJ01" stream:u64 first_seq:u64 entry*
//! entry   = len:u32 crc32:u32 seq:u64 record[len]      (crc32 over seq and record)
//! ```
//!
//! A crash can leave the last segment's tail torn (a partial entry, or garbage where a write
//! was not finished); [`valid_prefix`] finds where the good entries end, and the journal cuts
//! the file there when it opens. Sequences in a stream run 1, 2, 3… without gaps inside a
//! segment.
//!
//! The parsing is pure; [`SegmentReader`] reads a file entry by entry. Used by the journal's
//! writer (framing, recovery) and its relay (reading).

use gatehouse_common::audit::MAX_RECORD_LEN;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The first eight bytes of every segment.
pub const MAGIC: &[u8; 8] = b"GHAUDJ01";
/// Header bytes: magic, stream, first sequence.
pub const HEADER_LEN: usize = 24;
/// Entry header bytes: length, checksum, sequence.
pub const ENTRY_HEADER_LEN: usize = 16;
/// A segment is closed and a new one started once it holds this many bytes (4 MiB, about
/// 25,000 records): the unit in which relayed records are deleted and, after a restart,
/// the most a replica sends again (the master drops what it already has).
pub const SEGMENT_BYTES: u64 = 4 * 1024 * 1024;

/// A segment's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub stream: u64,
    pub first_seq: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8..16].copy_from_slice(&self.stream.to_be_bytes());
        out[16..].copy_from_slice(&self.first_seq.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Header> {
        let bytes: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
        if &bytes[..8] != MAGIC {
            return None;
        }
        let u64_at = |i: usize| bytes[i..i + 8].try_into().ok().map(u64::from_be_bytes);
        Some(Header {
            stream: u64_at(8)?,
            first_seq: u64_at(16)?,
        })
    }
}

/// A segment's file name: its first sequence, zero-padded so names sort by sequence.
pub fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.journal")
}

/// The first sequence a segment's file name says, if it is one.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".journal")?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

/// The lock file in a journal's directory: held (`flock`, exclusive) by the process that has
/// the journal open, so a second server configured with the same directory (a master and a
/// replica on one host, both defaulting to `audit/` in /var/lib/gatehouse) is refused at
/// start instead of interleaving its records with the first one's.
pub const LOCK_FILE: &str = "journal.lock";

/// Takes `dir`'s lock, held until the returned file is closed. Refused when another process
/// holds it; where the system has no file locks, a warning and no lock.
pub fn lock_dir(dir: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "{} is held by another process: each server needs its own audit journal \
                 directory (audit.dir)",
                path.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
            log::warn!(
                "{}: file locks are not supported here; make sure no other server uses this \
                 journal directory",
                path.display()
            );
            Ok(file)
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The segments in `dir`, by first sequence.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_file_name) {
            out.push((first, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Reserves an entry's header at the end of `buf`; returns where the entry starts. The
/// record is appended next, then [`finish_entry`] fills the header in.
pub fn begin_entry(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; ENTRY_HEADER_LEN]);
    start
}

/// Completes the entry begun at `start` with sequence `seq`.
pub fn finish_entry(buf: &mut [u8], start: usize, seq: u64) {
    let len = buf.len() - start - ENTRY_HEADER_LEN;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_be_bytes());
    crc.update(&buf[start + ENTRY_HEADER_LEN..]);
    let header = &mut buf[start..start + ENTRY_HEADER_LEN];
    header[..4].copy_from_slice(&(len as u32).to_be_bytes());
    header[4..8].copy_from_slice(&crc.finalize().to_be_bytes());
    header[8..].copy_from_slice(&seq.to_be_bytes());
}

/// One entry read from `bytes` (at its start): its sequence, record and total length; `None`
/// when the bytes do not hold a whole, intact entry.
pub fn parse_entry(bytes: &[u8]) -> Option<(u64, &[u8], usize)> {
    let header = bytes.get(..ENTRY_HEADER_LEN)?;
    let len = u32::from_be_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_be_bytes(header[4..8].try_into().ok()?);
    let seq = u64::from_be_bytes(header[8..].try_into().ok()?);
    if len == 0 || len > MAX_RECORD_LEN {
        return None;
    }
    let record = bytes.get(ENTRY_HEADER_LEN..ENTRY_HEADER_LEN + len)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_be_bytes());
    hasher.update(record);
    (hasher.finalize() == crc).then_some((seq, record, ENTRY_HEADER_LEN + len))
}

/// How many bytes of a segment (header included) hold intact entries in sequence from the
/// header's first, and the last sequence among them (`first_seq - 1` when there is none).
/// `None`: not a segment (no valid header).
pub fn valid_prefix(bytes: &[u8]) -> Option<(Header, usize, u64)> {
    let header = Header::decode(bytes)?;
    let mut at = HEADER_LEN;
    let mut last = header.first_seq.saturating_sub(1);
    while let Some((seq, _, len)) = bytes.get(at..).and_then(parse_entry) {
        if seq != last.saturating_add(1) {
            break;
        }
        last = seq;
        at += len;
    }
    Some((header, at, last))
}

/// Reads a segment's entries one by one, in order.
pub struct SegmentReader {
    file: BufReader<File>,
    pub header: Header,
    /// Where the next entry starts.
    pos: u64,
    buf: Vec<u8>,
}

impl SegmentReader {
    pub fn open(path: &Path) -> io::Result<SegmentReader> {
        let mut file = BufReader::with_capacity(64 * 1024, File::open(path)?);
        let mut head = [0u8; HEADER_LEN];
        file.read_exact(&mut head)?;
        let header = Header::decode(&head).ok_or_else(|| {
            io::Error::other(format!("{}: not a journal segment", path.display()))
        })?;
        Ok(SegmentReader {
            file,
            header,
            pos: HEADER_LEN as u64,
            buf: Vec::new(),
        })
    }

    /// The next intact entry, or `None` at the end of what is written (or at damage); after
    /// `None` the reader stays where the entry starts, so a later call reads it once whole.
    pub fn next_entry(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        self.buf.resize(ENTRY_HEADER_LEN, 0);
        if !self.fill(0)? {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len == 0 || len > MAX_RECORD_LEN {
            self.file.seek(SeekFrom::Start(self.pos))?;
            return Ok(None);
        }
        self.buf.resize(ENTRY_HEADER_LEN + len, 0);
        if !self.fill(ENTRY_HEADER_LEN)? {
            return Ok(None);
        }
        match parse_entry(&self.buf) {
            Some((seq, record, total)) => {
                self.pos += total as u64;
                Ok(Some((seq, record)))
            }
            None => {
                self.file.seek(SeekFrom::Start(self.pos))?;
                Ok(None)
            }
        }
    }

    /// Reads `buf[from..]` whole; false (and back at the entry's start) when the file ends
    /// first.
    fn fill(&mut self, from: usize) -> io::Result<bool> {
        match self.file.read_exact(&mut self.buf[from..]) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.file.seek(SeekFrom::Start(self.pos))?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(buf: &mut Vec<u8>, seq: u64, record: &[u8]) {
        let start = begin_entry(buf);
        buf.extend_from_slice(record);
        finish_entry(buf, start, seq);
    }

    #[test]
    fn a_torn_or_damaged_tail_ends_the_valid_prefix() {
        let header = Header {
            stream: 9,
            first_seq: 5,
        };
        let mut seg = header.encode().to_vec();
        entry(&mut seg, 5, b"first record");
        entry(&mut seg, 6, b"second");
        let whole = seg.len();
        entry(&mut seg, 7, b"third, torn by a crash");
        assert_eq!(valid_prefix(&seg), Some((header, seg.len(), 7)));
        // A partial write: the third entry is cut short.
        assert_eq!(
            valid_prefix(&seg[..seg.len() - 3]),
            Some((header, whole, 6))
        );
        // A flipped bit fails the checksum.
        let mut damaged = seg.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert_eq!(valid_prefix(&damaged), Some((header, whole, 6)));
        // An entry out of sequence is not taken either.
        let mut skipped = seg[..whole].to_vec();
        entry(&mut skipped, 9, b"gap");
        assert_eq!(valid_prefix(&skipped), Some((header, whole, 6)));
        assert_eq!(valid_prefix(b"GHAUDJ00 not a segment at all"), None);
        let empty = header.encode();
        assert_eq!(valid_prefix(&empty), Some((header, HEADER_LEN, 4)));
    }

    #[test]
    fn file_names_sort_by_sequence() {
        assert_eq!(file_name(1), "00000000000000000001.journal");
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_file_name("1.journal"), None);
        assert_eq!(parse_file_name("00000000000000000001.journal.tmp"), None);
    }
}
