//! Reading the journal back for the master: [`Relay`] hands out the synced records after the
//! last acknowledged one as `Report` messages of the journal's stream (at most 64 records and
//! [`MAX_BATCH_BYTES`] each, at most [`MAX_AUDIT_IN_FLIGHT`] unacknowledged), starts again
//! from the last acknowledgement on every new link, and passes acknowledgements to the
//! journal, which deletes what the master has stored. Records the journal dropped
//! (`DropOldest`) are skipped: the next message starts after the gap, which the master sees.
//!
//! Not pure: reads segment files. Driven by the follower thread (over the link) and by the
//! master's own ingest (in process).

use super::journal::Journal;
use super::segment::SegmentReader;
use gatehouse_common::audit::record::decode_one;
use gatehouse_common::repl::report::MAX_REPORT_RECORDS;
use gatehouse_common::repl::{ReplMessage, Report};
use std::io;
use std::sync::Arc;

/// Encoded record bytes per message (60,000): with the message's 21-byte header, under the
/// replication message cap of 65,515 bytes even for the largest records.
pub const MAX_BATCH_BYTES: usize = 60_000;
/// Records sent and not yet acknowledged on a link (4096, 64 full messages): enough to keep
/// the master's group commits full over a round trip, little enough to resend after a cut.
pub const MAX_AUDIT_IN_FLIGHT: u64 = 4096;

/// See the module docs.
pub struct Relay {
    journal: Arc<Journal>,
    /// The segment being read (its first sequence) and the reader positioned in it.
    reader: Option<(u64, SegmentReader)>,
    /// The sequence the reader will return next.
    next: u64,
    /// An entry read but not sent (it did not fit the last message).
    peeked: Option<(u64, Vec<u8>)>,
    sent_through: u64,
    acked_through: u64,
}

impl Relay {
    pub fn new(journal: Arc<Journal>) -> Self {
        let acked = journal.status().acked;
        Relay {
            journal,
            reader: None,
            next: acked + 1,
            peeked: None,
            sent_through: acked,
            acked_through: acked,
        }
    }

    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// A new link: everything unacknowledged goes again, oldest first.
    pub fn on_link_up(&mut self) {
        self.sent_through = self.acked_through;
        self.rewind(self.acked_through + 1);
    }

    /// Reads from `seq` on next.
    fn rewind(&mut self, seq: u64) {
        if self.next != seq {
            self.next = seq;
            self.reader = None;
            self.peeked = None;
        }
    }

    /// Whether records were sent and not yet acknowledged.
    pub fn awaiting_ack(&self) -> bool {
        self.sent_through > self.acked_through
    }

    /// The master stored everything of `stream` up to `through`. Another stream's ack (a
    /// previous journal's) is ignored.
    pub fn on_ack(&mut self, stream: u64, through: u64) {
        if stream != self.journal.stream() || through <= self.acked_through {
            return;
        }
        // The master may have stored more than this link sent (from an earlier link):
        // nothing up to `through` goes again.
        self.acked_through = through;
        self.sent_through = self.sent_through.max(through);
        self.journal.acknowledge(through);
    }

    /// The next message to send, if synced records wait and the in-flight cap allows.
    pub fn next_message(&mut self) -> io::Result<Option<ReplMessage>> {
        let room = MAX_AUDIT_IN_FLIGHT.saturating_sub(self.sent_through - self.acked_through);
        let limit = (MAX_REPORT_RECORDS as u64).min(room) as usize;
        let synced = self.journal.synced_through();
        if limit == 0 || self.sent_through >= synced {
            return Ok(None);
        }
        // Read from where the last message ended.
        self.rewind(self.sent_through + 1);
        let mut records = Vec::new();
        let mut first = None;
        let mut bytes = 0;
        while records.len() < limit && self.next <= synced {
            let Some((seq, encoded)) = self.read_next()? else {
                break;
            };
            if bytes + encoded.len() > MAX_BATCH_BYTES {
                self.peeked = Some((seq, encoded));
                break;
            }
            match decode_one(&encoded) {
                Ok(record) => {
                    first.get_or_insert(seq);
                    bytes += encoded.len();
                    records.push(Report::Audit(record));
                    self.next = seq + 1;
                }
                Err(e) => {
                    // Intact on disk (its checksum held) but not a record this build reads:
                    // skipped; the master sees the gap.
                    log::error!("audit journal: record {seq} does not decode ({e}); skipped");
                    self.next = seq + 1;
                    if first.is_some() {
                        break;
                    }
                    self.sent_through = seq;
                }
            }
        }
        let Some(first) = first else {
            return Ok(None);
        };
        self.sent_through = first + records.len() as u64 - 1;
        Ok(Some(ReplMessage::Report {
            stream: self.journal.stream(),
            first,
            records,
        }))
    }

    /// The next intact entry at or after `self.next` (jumping a dropped gap), or `None` when
    /// nothing more is on disk yet.
    fn read_next(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        if let Some(peeked) = self.peeked.take() {
            return Ok(Some(peeked));
        }
        loop {
            if self.reader.is_none() {
                let segments = self.journal.segments.lock().clone();
                let Some(oldest) = segments.first() else {
                    return Ok(None);
                };
                if self.next < oldest.first_seq {
                    self.next = oldest.first_seq;
                }
                let Some(seg) = segments.iter().rev().find(|s| s.first_seq <= self.next) else {
                    return Ok(None);
                };
                self.reader = Some((seg.first_seq, SegmentReader::open(&seg.path)?));
            }
            let Some((seg_first, reader)) = self.reader.as_mut() else {
                return Ok(None);
            };
            let seg_first = *seg_first;
            match reader.next_entry()? {
                Some((seq, _)) if seq < self.next => continue,
                Some((seq, record)) => return Ok(Some((seq, record.to_vec()))),
                None => {
                    // The end of this segment: go on in the next one if there is one.
                    let later = self
                        .journal
                        .segments
                        .lock()
                        .iter()
                        .any(|s| s.first_seq > seg_first && s.first_seq <= self.next);
                    if !later {
                        return Ok(None);
                    }
                    self.reader = None;
                }
            }
        }
    }
}
