//! The audit store on a real SQLite file: a batch sent again (whole, or overlapping) stores
//! nothing twice, also after the store is reopened; gaps are counted; queries filter by time,
//! user, host, outcome and follow by id; retention deletes by age and count without letting
//! deleted records come back.

use super::*;
use gatehouse_common::audit::{AuditEvent, Verdict};
use gatehouse_common::types::{AuthFailure, DenyReason, Method};

struct Dir(PathBuf);

impl Dir {
    fn new(label: &str) -> Dir {
        let path = std::env::temp_dir().join(format!(
            "gatehouse-audit-store-{label}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        let _ =
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        Dir(path)
    }

    fn store(&self) -> AuditStore {
        AuditStore::open(&self.0.join("audit.sqlite")).unwrap()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn authorize(at: u64, user: &str, host: &str, allow: bool) -> AuditRecord {
    AuditRecord {
        at_unix_ms: at,
        agent: host.into(),
        address: Some("10.0.0.7:40112".parse().unwrap()),
        event: AuditEvent::Authorize {
            method: Method::Ssh,
            from_user: user.into(),
            from_host: "10.0.0.9".into(),
            to_user: user.into(),
            to_host: host.into(),
            verdict: match allow {
                true => Verdict::Allow {
                    route: "SSH:*->*@*".into(),
                },
                false => Verdict::Deny {
                    reason: DenyReason::NoMatchingRoute,
                },
            },
        },
    }
}

fn batch(server: &str, first: u64, records: Vec<AuditRecord>) -> Batch {
    Batch {
        server: server.into(),
        stream: 0xfeed,
        first,
        records,
    }
}

fn numbered(range: std::ops::RangeInclusive<u64>) -> Vec<AuditRecord> {
    range.map(|n| authorize(n, "alice", "web1", true)).collect()
}

#[test]
fn a_batch_sent_again_stores_nothing_twice_even_after_a_restart() {
    let dir = Dir::new("dedupe");
    let mut store = dir.store();
    let (through, stored) = store.insert(&[batch("r1", 1, numbered(1..=10))]).unwrap();
    assert_eq!((through, stored.len()), (vec![10], 10));
    // The ack was lost with the link: the same batch again, and one overlapping it.
    let (through, stored) = store
        .insert(&[
            batch("r1", 1, numbered(1..=10)),
            batch("r1", 6, numbered(6..=15)),
        ])
        .unwrap();
    assert_eq!((through, stored.len()), (vec![10, 15], 5));
    drop(store);
    let mut store = dir.store();
    let (through, stored) = store.insert(&[batch("r1", 11, numbered(11..=15))]).unwrap();
    assert_eq!((through, stored.len()), (vec![15], 0));
    // Another server's stream with the same numbers is its own.
    let (_, stored) = store.insert(&[batch("r2", 1, numbered(1..=3))]).unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(store.count().unwrap(), 18);
    // A gap (the replica's journal dropped 16..=19) is counted, not invented.
    store.insert(&[batch("r1", 20, numbered(20..=20))]).unwrap();
    let r1 = store
        .streams()
        .unwrap()
        .into_iter()
        .find(|s| s.server == "r1")
        .unwrap();
    assert_eq!((r1.through, r1.missing), (20, 4));
}

#[test]
fn queries_filter_and_follow_by_id() {
    let dir = Dir::new("query");
    let mut store = dir.store();
    let records = vec![
        authorize(1000, "alice", "web1", true),
        authorize(2000, "bob", "web2", false),
        authorize(3000, "alice", "web2", false),
        AuditRecord {
            at_unix_ms: 4000,
            agent: "web1".into(),
            address: None,
            event: AuditEvent::Authenticate {
                user: "bob".into(),
                host: "web1".into(),
                outcome: Err(AuthFailure::BadPassword),
            },
        },
    ];
    store.insert(&[batch("r1", 1, records)]).unwrap();
    let ids = |q: AuditQuery| -> Vec<u64> {
        store
            .query(&AuditQuery { limit: 100, ..q })
            .unwrap()
            .iter()
            .map(|s| s.record.at_unix_ms)
            .collect()
    };
    assert_eq!(ids(AuditQuery::default()), [1000, 2000, 3000, 4000]);
    let alice = AuditQuery {
        user: Some("alice".into()),
        ..Default::default()
    };
    assert_eq!(ids(alice), [1000, 3000]);
    let web2_denied = AuditQuery {
        host: Some("web2".into()),
        outcome: Some("deny".into()),
        ..Default::default()
    };
    assert_eq!(ids(web2_denied), [2000, 3000]);
    let window = AuditQuery {
        since_ms: Some(2000),
        until_ms: Some(4000),
        ..Default::default()
    };
    assert_eq!(ids(window), [2000, 3000]);
    let newest = store
        .query(&AuditQuery {
            limit: 2,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(newest.len(), 2);
    assert_eq!(
        newest[0].record.at_unix_ms, 3000,
        "the newest two, oldest first"
    );
    let after = AuditQuery {
        after_id: Some(newest[0].id),
        ..Default::default()
    };
    assert_eq!(ids(after), [4000]);
}

#[test]
fn retention_deletes_by_age_and_count_and_nothing_comes_back() {
    let dir = Dir::new("prune");
    let mut store = dir.store();
    store.insert(&[batch("r1", 1, numbered(1..=100))]).unwrap();
    assert_eq!(
        store.prune(51, u64::MAX / 2).unwrap(),
        50,
        "older than 51 ms"
    );
    assert_eq!(store.prune(0, 10).unwrap(), 40, "the newest 10 kept");
    assert_eq!(store.count().unwrap(), 10);
    // The replica sends them again (its ack was lost): they stay deleted.
    let (_, stored) = store.insert(&[batch("r1", 1, numbered(1..=100))]).unwrap();
    assert!(stored.is_empty());
}

#[test]
fn local_records_are_numbered_in_their_own_stream() {
    let dir = Dir::new("local");
    let mut store = dir.store();
    let first = store
        .insert_local("master", authorize(1, "root", "master", true))
        .unwrap();
    let second = store
        .insert_local("master", authorize(2, "root", "master", true))
        .unwrap();
    assert_eq!((first.seq, second.seq), (1, 2));
    assert!(second.id > first.id);
}
