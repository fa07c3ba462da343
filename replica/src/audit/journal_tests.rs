//! The journal against real files in a temporary directory: records are released once
//! synced (`Synced`) or once written and synced soon after (`Written`, the default), a second
//! journal on the same directory is refused, numbering and the stream survive a restart, a
//! torn tail is cut, the relay reads everything back once per link and acknowledgements
//! delete what the master has, both policies for a full journal, and the mapped segment's
//! unused room cut at shutdown and after a crash, and the `write(2)` path where mapping fails.

use super::*;
use crate::audit::relay::Relay;
use gatehouse_common::audit::{AuditEvent, AuditRecord};
use gatehouse_common::repl::{ReplMessage, Report};
use std::path::Path;
use std::time::{Duration, Instant};

/// A fresh directory under the system temp dir, removed when dropped.
struct Dir(std::path::PathBuf);

impl Dir {
    fn new(label: &str) -> Dir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "gatehouse-journal-{label}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes the writer skip mapping segments (as where `fallocate` or `mmap` fails), for this
/// test process (nextest runs each test in its own).
pub(super) static NO_MAPPING: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn config(dir: &Path) -> AuditConfig {
    let mut config = AuditConfig::in_dir(dir.to_path_buf());
    config.segment_bytes = 16 * 1024;
    config
}

/// A record whose count says which one it is.
fn record(n: u64) -> AuditRecord<&'static str> {
    AuditRecord {
        at_unix_ms: n,
        agent: "web1",
        address: Some("10.0.0.7:40112".parse().unwrap()),
        event: AuditEvent::Suppressed { count: n },
    }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// Appends the records, waits until they are released and synced (the relay reads synced
/// records only), and returns the last sequence.
fn append_and_release(journal: &Journal, range: std::ops::RangeInclusive<u64>) -> u64 {
    let mut last = 0;
    for n in range {
        last = journal.append(&record(n)).expect("taken");
        journal.kick();
    }
    assert!(journal.wait_until(deadline(), |j| j.released_through() >= last));
    assert!(journal.wait_until(deadline(), |j| j.synced_through() >= last));
    last
}

/// Every record the relay sends until it has nothing more, acknowledging each message.
fn relay_all(relay: &mut Relay, ack: bool) -> Vec<(u64, u64)> {
    let mut seen = Vec::new();
    while let Some(message) = relay.next_message().unwrap() {
        let ReplMessage::Report {
            stream,
            first,
            records,
        } = message
        else {
            panic!("a report");
        };
        assert!(records.len() <= 64);
        for (i, r) in records.iter().enumerate() {
            let Report::Audit(AuditRecord {
                event: AuditEvent::Suppressed { count },
                ..
            }) = r
            else {
                panic!("{r:?}");
            };
            seen.push((first + i as u64, *count));
        }
        if ack {
            relay.on_ack(stream, first + records.len() as u64 - 1);
        }
    }
    seen
}

#[test]
fn synced_records_are_released_once_synced_and_numbering_survives_a_restart() {
    let dir = Dir::new("restart");
    let synced = AuditConfig {
        answer_after: AnswerAfter::Synced,
        ..config(&dir.0)
    };
    let journal = Journal::open(synced.clone()).unwrap();
    let stream = journal.stream();
    assert_eq!(journal.released_through(), 0);
    for n in 1..=100 {
        journal.append(&record(n)).expect("taken");
        journal.kick();
        // Never released ahead of the sync.
        assert!(journal.released_through() <= journal.synced_through());
    }
    assert!(journal.wait_until(deadline(), |j| j.released_through() == 100));
    assert_eq!(journal.synced_through(), 100);
    journal.shutdown();
    drop(journal);
    let journal = Journal::open(synced).unwrap();
    assert_eq!(journal.stream(), stream, "the stream is kept");
    assert_eq!(journal.append(&record(101)), Ok(101));
    journal.shutdown();
}

#[test]
fn by_default_records_are_released_once_written_and_synced_within_the_interval() {
    let dir = Dir::new("written");
    // A long interval, so the release is seen before the sync.
    let config = AuditConfig {
        sync_interval: Duration::from_secs(10),
        ..config(&dir.0)
    };
    assert_eq!(config.answer_after, AnswerAfter::Written);
    let opened = Instant::now();
    let journal = Journal::open(config).unwrap();
    for n in 1..=100 {
        journal.append(&record(n)).expect("taken");
        journal.kick();
    }
    assert!(journal.wait_until(deadline(), |j| j.released_through() == 100));
    // Written to the file: a new process reading the directory finds all 100.
    let (_, path) = segment::list(&dir.0).unwrap().pop().unwrap();
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        segment::valid_prefix(&bytes).map(|(_, _, last)| last),
        Some(100)
    );
    if opened.elapsed() < Duration::from_secs(9) {
        assert!(journal.synced_through() < 100, "released before the sync");
    }
    // Shutting down syncs the rest.
    journal.shutdown();
    assert_eq!(journal.synced_through(), 100);
}

#[test]
fn a_second_journal_on_the_same_directory_is_refused_while_the_first_is_open() {
    let dir = Dir::new("lock");
    let journal = Journal::open(config(&dir.0)).unwrap();
    let e = Journal::open(config(&dir.0)).map(|_| ()).unwrap_err();
    assert!(e.to_string().contains("held by another process"), "{e}");
    journal.shutdown();
    drop(journal);
    let journal = Journal::open(config(&dir.0)).expect("free once the first is closed");
    journal.shutdown();
}

#[test]
fn a_torn_tail_is_cut_and_numbering_continues_after_the_last_whole_record() {
    let dir = Dir::new("torn");
    let journal = Journal::open(config(&dir.0)).unwrap();
    append_and_release(&journal, 1..=10);
    journal.shutdown();
    drop(journal);
    // A crash in the middle of a write: half an entry at the end of the last segment.
    let (_, last) = segment::list(&dir.0).unwrap().pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    let whole = bytes.len();
    let mut entry = Vec::new();
    let start = segment::begin_entry(&mut entry);
    encode_record(&mut entry, &record(11));
    segment::finish_entry(&mut entry, start, 11);
    bytes.extend_from_slice(&entry[..entry.len() / 2]);
    std::fs::write(&last, &bytes).unwrap();
    let journal = Journal::open(config(&dir.0)).unwrap();
    assert_eq!(std::fs::metadata(&last).unwrap().len() as usize, whole);
    assert_eq!(journal.append(&record(11)), Ok(11));
    journal.kick();
    assert!(journal.wait_until(deadline(), |j| j.synced_through() == 11));
    let mut relay = Relay::new(journal.clone());
    let seen: Vec<u64> = relay_all(&mut relay, true).iter().map(|r| r.1).collect();
    assert_eq!(seen, (1..=11).collect::<Vec<_>>());
    journal.shutdown();
}

#[test]
fn the_relay_sends_each_record_once_per_link_and_acks_delete_what_the_master_has() {
    let dir = Dir::new("relay");
    let journal = Journal::open(config(&dir.0)).unwrap();
    // About 40 bytes a record: 3000 of them fill several 16 KiB segments.
    append_and_release(&journal, 1..=3000);
    assert!(segment::list(&dir.0).unwrap().len() > 3);
    let mut relay = Relay::new(journal.clone());
    // The first link sends 4096 at most unacknowledged: all 3000, in order, then nothing.
    let sent = relay_all(&mut relay, false);
    assert_eq!(sent.len(), 3000);
    assert!(sent
        .iter()
        .enumerate()
        .all(|(i, &(seq, n))| seq == i as u64 + 1 && n == seq));
    assert!(relay.awaiting_ack());
    // The link breaks after the master stored the first 1000: the next link starts at 1001.
    relay.on_ack(journal.stream(), 1000);
    relay.on_link_up();
    let resent = relay_all(&mut relay, true);
    assert_eq!(resent.first(), Some(&(1001, 1001)));
    assert_eq!(resent.len(), 2000);
    assert!(!relay.awaiting_ack());
    // Everything is acknowledged: only the segment being written is left.
    assert_eq!(segment::list(&dir.0).unwrap().len(), 1);
    assert_eq!(journal.status().acked, 3000);
    // An ack from another stream (an earlier journal's) changes nothing.
    relay.on_ack(journal.stream() ^ 1, 5000);
    assert_eq!(journal.status().acked, 3000);
    journal.shutdown();
}

#[test]
fn a_full_journal_drops_the_oldest_and_the_relay_skips_the_gap() {
    let dir = Dir::new("drop");
    let mut config = config(&dir.0);
    config.max_bytes = 64 * 1024;
    let journal = Journal::open(config).unwrap();
    append_and_release(&journal, 1..=5000);
    let status = journal.status();
    assert!(status.disk_bytes <= 64 * 1024 + 16 * 1024, "{status:?}");
    assert!(status.dropped > 0 && status.full, "{status:?}");
    let mut relay = Relay::new(journal.clone());
    let sent = relay_all(&mut relay, true);
    // What was kept is the newest, contiguous up to the last record.
    assert_eq!(sent.last(), Some(&(5000, 5000)));
    assert_eq!(sent.len() as u64 + status.dropped, 5000, "{status:?}");
    journal.shutdown();
}

#[test]
fn a_full_journal_set_to_refuse_takes_nothing_until_the_master_has_caught_up() {
    let dir = Dir::new("refuse");
    let mut config = config(&dir.0);
    config.max_bytes = 64 * 1024;
    config.when_full = WhenFull::RefuseNew;
    let journal = Journal::open(config).unwrap();
    let mut taken = 0;
    for n in 1..=5000 {
        match journal.append(&record(n)) {
            Ok(_) => taken = n,
            Err(refusal) => {
                assert_eq!(refusal, Refusal::Full);
                break;
            }
        }
        journal.kick();
        assert!(journal.wait_until(deadline(), |j| j.released_through() == n));
    }
    assert!(taken > 100 && taken < 5000, "{taken}");
    // The relay reads synced records.
    assert!(journal.wait_until(deadline(), |j| j.synced_through() == taken));
    assert_eq!(journal.status().refused, 1);
    assert_eq!(journal.status().dropped, 0, "nothing is ever dropped");
    // The master takes everything: room again.
    let mut relay = Relay::new(journal.clone());
    assert_eq!(relay_all(&mut relay, true).len() as u64, taken);
    assert_eq!(journal.append(&record(taken + 1)), Ok(taken + 1));
    journal.shutdown();
}

/// The length of the last segment's whole entries and the file's length.
fn last_segment_lengths(dir: &Path) -> (usize, usize) {
    let (_, path) = segment::list(dir).unwrap().pop().unwrap();
    let bytes = std::fs::read(path).unwrap();
    let (_, valid, _) = segment::valid_prefix(&bytes).unwrap();
    (valid, bytes.len())
}

#[test]
fn a_mapped_segment_is_cut_back_to_its_records_at_shutdown_and_its_unused_room_after_a_crash() {
    let dir = Dir::new("mapped");
    let journal = Journal::open(config(&dir.0)).unwrap();
    append_and_release(&journal, 1..=10);
    let (valid, len) = last_segment_lengths(&dir.0);
    if cfg!(target_os = "linux") {
        assert!(
            len > valid,
            "the open segment has its room allocated ({len} > {valid})"
        );
    }
    journal.shutdown();
    drop(journal);
    let (valid, len) = last_segment_lengths(&dir.0);
    assert_eq!(len, valid, "shutdown cuts the segment back to its records");
    // A crash leaves the room: zeros after the last record.
    let (_, path) = segment::list(&dir.0).unwrap().pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0; 8192]);
    std::fs::write(&path, &bytes).unwrap();
    let journal = Journal::open(config(&dir.0)).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, valid);
    assert_eq!(append_and_release(&journal, 11..=11), 11);
    let mut relay = Relay::new(journal.clone());
    let seen: Vec<u64> = relay_all(&mut relay, true).iter().map(|r| r.1).collect();
    assert_eq!(seen, (1..=11).collect::<Vec<_>>());
    journal.shutdown();
}

#[test]
fn without_a_mapping_records_go_through_write_across_segments() {
    NO_MAPPING.store(true, Ordering::Relaxed);
    let dir = Dir::new("unmapped");
    let journal = Journal::open(config(&dir.0)).unwrap();
    // More than one 16 KiB segment of records.
    let last = append_and_release(&journal, 1..=600);
    assert!(segment::list(&dir.0).unwrap().len() > 1, "segments rotated");
    let (valid, len) = last_segment_lengths(&dir.0);
    assert_eq!(len, valid, "no room allocated ahead");
    journal.shutdown();
    drop(journal);
    let journal = Journal::open(config(&dir.0)).unwrap();
    let mut relay = Relay::new(journal.clone());
    let seen: Vec<u64> = relay_all(&mut relay, true).iter().map(|r| r.1).collect();
    assert_eq!(seen, (1..=last).collect::<Vec<_>>());
    journal.shutdown();
    NO_MAPPING.store(false, Ordering::Relaxed);
}
