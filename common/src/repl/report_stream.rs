//! The two ends of the report channel, sans I/O: the replica's [`ReportOutbox`] numbers each
//! record in its stream, keeps it until the master acknowledges it, and sends it again after a
//! reconnect; the master's [`ReportLedger`] remembers, per replica and stream, the highest
//! sequence it has counted, so a record sent twice (an ack lost with a link) is counted once.
//!
//! What survives what: the outbox is in memory, so a replica that crashes loses the records
//! the master had not acknowledged yet (normally the last ~50 ms; everything queued while the
//! master was unreachable); it starts a new stream when it starts again. The ledger is in
//! memory too: after a master restart a replica's resent records are counted by the new run,
//! which has forgotten the old run's counts with them, so nothing is counted twice. A durable
//! journal on the replica (the audit trail's) keeps its stream across restarts.
//!
//! Pure: no clock, no I/O. Driven by the replica's follower thread and the master's replication
//! loop.

use super::msg::ReplMessage;
use super::report::{Report, MAX_REPORT_RECORDS};
use std::collections::{HashMap, VecDeque};
use std::ops::Range;

/// Records a replica keeps unacknowledged before it drops the oldest: 16,384. A record is
/// about 100 bytes (787 at most), so 1.6 MiB typically and 13 MiB at worst; at the default
/// per-host limit of 10 password checks a second that is half an hour of one host's
/// failures, or a minute of 27 hosts' failing at full rate, while the master is unreachable.
/// Older records are worth least to the lockout (its window is a minute), so they go first;
/// the master sees the gap in the sequence and logs it.
pub const MAX_PENDING_REPORTS: usize = 16_384;

/// Records sent on a link but not yet acknowledged: 1024 (16 messages). Bounds what one link
/// has in flight; more wait for acks, which come within a round trip.
pub const MAX_REPORTS_IN_FLIGHT: u64 = 1024;

/// Streams the master remembers per replica: 4. A replica uses one stream per run; two
/// processes started with the same host name (a mistake) alternate, and four entries keep
/// even that from counting a resent record twice.
pub const STREAMS_PER_REPLICA: usize = 4;

/// The replica's side. See the module docs.
#[derive(Debug)]
pub struct ReportOutbox {
    stream: u64,
    /// Unacknowledged records, oldest first, each with its sequence.
    pending: VecDeque<(u64, Report)>,
    /// The sequence the next record gets (from 1).
    next_seq: u64,
    /// The highest sequence sent on the current link.
    sent_through: u64,
    /// Records dropped because the outbox was full.
    dropped: u64,
    capacity: usize,
}

impl ReportOutbox {
    /// An empty outbox for the stream `stream` (draw it at random when the process starts).
    pub fn new(stream: u64) -> Self {
        Self::with_capacity(stream, MAX_PENDING_REPORTS)
    }

    /// [`ReportOutbox::new`] holding at most `capacity` records (at least one).
    pub fn with_capacity(stream: u64, capacity: usize) -> Self {
        ReportOutbox {
            stream,
            pending: VecDeque::new(),
            next_seq: 1,
            sent_through: 0,
            dropped: 0,
            capacity: capacity.max(1),
        }
    }

    pub fn stream(&self) -> u64 {
        self.stream
    }

    /// Records not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Records dropped so far because the outbox was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Queues `report` with the next sequence; when full, drops the oldest record first and
    /// returns false.
    pub fn push(&mut self, report: Report) -> bool {
        let kept = self.pending.len() < self.capacity;
        if !kept {
            self.pending.pop_front();
            self.dropped += 1;
        }
        self.pending.push_back((self.next_seq, report));
        self.next_seq += 1;
        kept
    }

    /// A new link is up: everything unacknowledged is sent again, oldest first.
    pub fn on_link_up(&mut self) {
        self.sent_through = self.acked_through();
    }

    /// The next `Report` to send on the link, if any record is unsent and the in-flight cap
    /// allows; marks its records as sent.
    pub fn next_message(&mut self) -> Option<ReplMessage> {
        let room = MAX_REPORTS_IN_FLIGHT.saturating_sub(self.in_flight());
        let records: Vec<(u64, Report)> = self
            .pending
            .iter()
            .filter(|(seq, _)| *seq > self.sent_through)
            .take(MAX_REPORT_RECORDS.min(room as usize))
            .cloned()
            .collect();
        let first = records.first()?.0;
        self.sent_through = records.last().map_or(self.sent_through, |(seq, _)| *seq);
        Some(ReplMessage::Report {
            stream: self.stream,
            first,
            records: records.into_iter().map(|(_, report)| report).collect(),
        })
    }

    /// Whether records were sent and not yet acknowledged.
    pub fn awaiting_ack(&self) -> bool {
        self.in_flight() > 0
    }

    /// The master counted everything of `stream` up to `through`: forget it. An ack for
    /// another stream (a previous run's) is ignored.
    pub fn on_ack(&mut self, stream: u64, through: u64) {
        if stream != self.stream {
            return;
        }
        while self.pending.front().is_some_and(|(seq, _)| *seq <= through) {
            self.pending.pop_front();
        }
    }

    /// The highest sequence acknowledged (or dropped): everything before the oldest pending.
    fn acked_through(&self) -> u64 {
        self.pending
            .front()
            .map_or(self.next_seq - 1, |(seq, _)| seq - 1)
    }

    fn in_flight(&self) -> u64 {
        self.sent_through.saturating_sub(self.acked_through())
    }
}

/// What the master makes of one `Report`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The records to count (indexes into the message's records); the rest were counted
    /// before.
    pub fresh: Range<usize>,
    /// What to acknowledge: the highest sequence of this stream counted so far.
    pub through: u64,
    /// Records of this stream that never arrived (the replica dropped them, full): 0 normally.
    pub missing: u64,
    /// The first report of this stream the master has seen (a replica's new run, or this
    /// master's).
    pub new_stream: bool,
}

/// The master's side. See the module docs.
#[derive(Debug, Default)]
pub struct ReportLedger {
    /// Per replica: (stream, highest sequence counted), most recently used last.
    replicas: HashMap<String, Vec<(u64, u64)>>,
}

impl ReportLedger {
    /// Decides which of the `count` records `first..` of `replica`'s stream `stream` are new,
    /// and records them as counted. `first` is at least 1 (the decoder checks it).
    pub fn accept(&mut self, replica: &str, stream: u64, first: u64, count: usize) -> Accepted {
        let streams = self.replicas.entry(replica.to_string()).or_default();
        let known = streams.iter().position(|(s, _)| *s == stream);
        let last = first.saturating_add(count as u64).saturating_sub(1);
        let accepted = match known.map(|i| streams.remove(i)) {
            Some((_, through)) => {
                let seen = through.saturating_sub(first.saturating_sub(1));
                let skip = usize::try_from(seen).unwrap_or(usize::MAX).min(count);
                Accepted {
                    fresh: skip..count,
                    through: through.max(last),
                    missing: first.saturating_sub(through.saturating_add(1)),
                    new_stream: false,
                }
            }
            // Nothing known before `first`: acknowledged by an earlier master run, or never
            // sent. Count all of it.
            None => Accepted {
                fresh: 0..count,
                through: last,
                missing: 0,
                new_stream: true,
            },
        };
        streams.push((stream, accepted.through));
        if streams.len() > STREAMS_PER_REPLICA {
            streams.remove(0);
        }
        accepted
    }
}

#[cfg(test)]
#[path = "report_stream_tests.rs"]
mod tests;
