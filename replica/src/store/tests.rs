use super::*;
use gatehouse_common::policy::{Route, RouteTarget, UnixAccount};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// A scratch directory removed on drop (also used by the follower's tests).
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gatehouse-store-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    pub(crate) fn file(&self) -> PathBuf {
        self.0.join("master.sqlite")
    }
    /// A raw SQLite connection on [`Scratch::file`], created private (0600) as a store must
    /// be, for setting up old or foreign files.
    fn raw(&self) -> Connection {
        use gatehouse_common::os::secure_file::{create_private_file, Existing};
        if !self.file().exists() {
            create_private_file(&self.file(), Existing::Refuse).unwrap();
        }
        Connection::open(self.file()).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn add_user(name: &str) -> Change {
    Change::AddUser {
        name: name.into(),
        classes: Vec::new(),
    }
}

fn add_host(name: &str) -> Change {
    Change::AddHost {
        name: name.into(),
        node_key: KEY.into(),
        addresses: vec![format!("10.0.0.{}", name.len())],
        groups: Vec::new(),
    }
}

fn log_len(store: &Store) -> usize {
    match store.changes_after(0, 1_000_000).unwrap() {
        ChangesAfter::Changes(c) => c.len(),
        other => panic!("no changes: {other:?}"),
    }
}

#[test]
fn a_new_store_starts_empty_and_every_change_gets_the_next_sequence() {
    let dir = Scratch::new();
    let mut store = Store::open(&dir.file()).unwrap();
    assert_eq!(store.sequence(), 0);
    assert_eq!(store.database(), Database::default());
    assert_eq!(store.apply(&add_user("alice")).unwrap(), 1);
    assert_eq!(store.apply(&add_user("bob")).unwrap(), 2);
    assert_eq!(
        store.changes_after(0, 10).unwrap(),
        ChangesAfter::Changes(vec![(1, add_user("alice")), (2, add_user("bob"))])
    );
    drop(store);

    let store = Store::open(&dir.file()).unwrap();
    assert_eq!(store.sequence(), 2);
    let db = store.database();
    let names: Vec<_> = db.users.iter().map(|u| &u.name).collect();
    assert_eq!(names, ["alice", "bob"]);
}

#[test]
fn a_refused_change_commits_nothing_and_uses_no_sequence() {
    let dir = Scratch::new();
    let mut store = Store::open(&dir.file()).unwrap();
    store.apply(&add_user("alice")).unwrap();
    let err = store.apply(&add_user("alice")).unwrap_err();
    assert_eq!(err.to_string(), "user `alice` already exists");
    // A batch is one transaction: its valid first change is not kept either.
    let batch = [(2, add_user("bob")), (3, add_user("bob"))];
    assert!(matches!(
        store.apply_batch(&batch),
        Err(StoreError::Refused(_))
    ));
    assert_eq!(store.sequence(), 1);
    assert_eq!(log_len(&store), 1);
    assert_eq!(store.database().users.len(), 1);
    assert_eq!(store.load_database().unwrap(), store.database());
    assert_eq!(store.apply(&add_user("bob")).unwrap(), 2);
}

#[test]
fn batches_must_continue_the_sequence_exactly() {
    let dir = Scratch::new();
    let mut store = Store::open(&dir.file()).unwrap();
    let err = store.apply_batch(&[(2, add_user("a"))]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "out-of-order change: expected sequence 1, got 2"
    );
    let batch = [(1, add_user("a")), (2, add_user("b")), (3, add_user("c"))];
    assert_eq!(store.apply_batch(&batch).unwrap(), 3);
    assert_eq!(log_len(&store), 3);
}

#[test]
fn the_tables_hold_exactly_what_memory_holds() {
    let dir = Scratch::new();
    let mut store = Store::open(&dir.file()).unwrap();
    let user_route = |rule: &str| Change::AddRoute {
        target: RouteTarget::User("alice".into()),
        route: Route {
            rule: rule.into(),
            window: Some("Mon-Fri 08:00-18:00".into()),
            expires: None,
        },
    };
    let changes = [
        Change::AddGroup {
            name: "web".into(),
            description: Some("front ends".into()),
        },
        add_host("web1"),
        add_host("web22"),
        Change::AddGroupMember {
            group: "web".into(),
            host: "web22".into(),
        },
        Change::AddClass { name: "ops".into() },
        Change::AddRoute {
            target: RouteTarget::Class("ops".into()),
            route: Route {
                rule: "SSH:*->*@+web".into(),
                window: None,
                expires: Some("2030-01-01".into()),
            },
        },
        add_user("alice"),
        add_user("bob"),
        Change::SetUserClasses {
            user: "alice".into(),
            classes: vec!["ops".into()],
        },
        user_route("SSH:*->alice@web1"),
        user_route("SU:*->bob@web1"),
        Change::SetPasswordHash {
            user: "bob".into(),
            hash: "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA".into(),
        },
        Change::SetLocked {
            user: "bob".into(),
            locked: true,
        },
        Change::AddReplica {
            host: "web1".into(),
        },
        Change::RemoveUser {
            name: "alice".into(),
        },
        add_user("alice"),
        Change::SetUnixAccount {
            user: "alice".into(),
            account: Some(unix_account(100_001)),
        },
        Change::SetUnixAccount {
            user: "bob".into(),
            account: Some(unix_account(100_002)),
        },
        Change::AddUnixGroup {
            name: "ops".into(),
            gid: 100_100,
        },
        Change::AddUnixGroup {
            name: "dev".into(),
            gid: 100_200,
        },
        Change::AddUnixGroupMember {
            group: "ops".into(),
            user: "bob".into(),
        },
        Change::AddUnixGroupMember {
            group: "ops".into(),
            user: "alice".into(),
        },
        Change::RemoveUnixGroup { name: "dev".into() },
        Change::SetUnixAccount {
            user: "bob".into(),
            account: Some(UnixAccount {
                gecos: "Bob, room 2".into(),
                ..unix_account(100_003)
            }),
        },
    ];
    for (i, change) in changes.iter().enumerate() {
        store
            .apply(change)
            .unwrap_or_else(|e| panic!("{change:?}: {e}"));
        assert_eq!(store.sequence(), i as u64 + 1);
        assert_eq!(
            store.load_database().unwrap(),
            store.database(),
            "after {change:?}"
        );
    }
    let before = store.database().clone();
    drop(store);
    assert_eq!(Store::open(&dir.file()).unwrap().database(), before);

    // Import replaces everything, replicas included.
    let mut store = Store::open(&dir.file()).unwrap();
    let mut imported = before.clone();
    imported.users.reverse();
    imported.replicas.clear();
    store
        .apply(&Change::ReplaceAll {
            database: imported.clone(),
        })
        .unwrap();
    assert_eq!(store.load_database().unwrap(), imported);
}

#[test]
fn changes_after_pages_and_compaction_forces_a_snapshot() {
    let dir = Scratch::new();
    let mut store = Store::open(&dir.file()).unwrap();
    for n in 0..5 {
        store.apply(&add_user(&format!("u{n}"))).unwrap();
    }
    assert_eq!(
        store.changes_after(1, 2).unwrap(),
        ChangesAfter::Changes(vec![(2, add_user("u1")), (3, add_user("u2"))])
    );
    assert_eq!(
        store.changes_after(5, 10).unwrap(),
        ChangesAfter::Changes(vec![])
    );
    assert_eq!(
        store.changes_after(6, 10).unwrap_err().to_string(),
        "sequence 6 is ahead of this store's sequence 5"
    );

    assert_eq!(store.compact(3).unwrap(), 3);
    assert_eq!(
        store.changes_after(2, 10).unwrap(),
        ChangesAfter::Compacted {
            oldest_available: 4
        }
    );
    assert_eq!(
        store.changes_after(3, 10).unwrap(),
        ChangesAfter::Changes(vec![(4, add_user("u3")), (5, add_user("u4"))])
    );

    // Compacting everything never resets the sequence, even across a restart.
    assert_eq!(store.compact(u64::MAX).unwrap(), 2);
    assert_eq!(store.oldest_available().unwrap(), 6);
    drop(store);
    let mut store = Store::open(&dir.file()).unwrap();
    assert_eq!(store.sequence(), 5);
    assert_eq!(store.apply(&add_user("u5")).unwrap(), 6);
    assert_eq!(
        store.changes_after(0, 10).unwrap(),
        ChangesAfter::Compacted {
            oldest_available: 6
        }
    );
    let (db, seq) = store.snapshot();
    assert_eq!((db.user_count(), seq), (6, 6));
}

#[test]
fn a_snapshot_install_replaces_the_copy_and_its_sequence() {
    let dir = Scratch::new();
    let mut store = Store::open(&dir.file()).unwrap();
    store.apply(&add_user("old")).unwrap();
    let mut db = Database::default();
    gatehouse_common::policy::apply(&mut db, &add_user("new")).unwrap();
    store.install_snapshot(&db, 40, &mut |_| {}).unwrap();
    assert_eq!((store.database(), store.sequence()), (db, 40));
    assert_eq!(store.apply(&add_user("next")).unwrap(), 41);
    drop(store);
    assert_eq!(Store::open(&dir.file()).unwrap().sequence(), 41);
}

#[test]
fn a_version_0_store_is_migrated_keeping_its_data() {
    let dir = Scratch::new();
    {
        let conn = dir.raw();
        conn.execute_batch(SCHEMA_V0).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO meta VALUES ('schema_version', '0'), ('sequence', '7');
             INSERT INTO hosts VALUES ('web1', '{KEY}', 0);
             INSERT INTO users VALUES ('alice', '', 0, 0);"
        ))
        .unwrap();
    }
    let mut store = Store::open(&dir.file()).unwrap();
    assert_eq!(store.sequence(), 7);
    assert_eq!(store.database().hosts[0].name, "web1");
    assert_eq!(store.database().users[0].name, "alice");
    store
        .apply(&Change::AddReplica {
            host: "web1".into(),
        })
        .unwrap();
    drop(store);
    let conn = Connection::open(dir.file()).unwrap();
    let version = schema::get_meta(&conn, "schema_version").unwrap();
    assert_eq!(version, Some(SCHEMA_VERSION.to_string()));
}

fn unix_account(uid: u32) -> UnixAccount {
    UnixAccount {
        uid,
        gid: uid,
        gecos: String::new(),
        home: format!("/home/u{uid}"),
        shell: "/bin/sh".into(),
    }
}

/// The version-1 layout (version 0 and `replicas`) with one host, one locked user and one
/// replica, at sequence 3.
fn version_1_store(dir: &Scratch) -> Connection {
    let conn = dir.raw();
    conn.execute_batch(SCHEMA_V0).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE replicas (host TEXT PRIMARY KEY, position INTEGER NOT NULL);
         INSERT INTO meta VALUES ('schema_version', '1'), ('sequence', '3');
         INSERT INTO hosts VALUES ('web1', '{KEY}', 0);
         INSERT INTO users VALUES ('alice', '', 1, 0);
         INSERT INTO replicas VALUES ('web1', 0);"
    ))
    .unwrap();
    conn
}

#[test]
fn a_version_1_store_is_migrated_through_2_to_identities_keeping_its_data() {
    let dir = Scratch::new();
    drop(version_1_store(&dir));
    let store = Store::open(&dir.file()).unwrap();
    assert_eq!(store.sequence(), 3);
    let web1 = &store.database().hosts[0];
    assert!(
        !web1.may_ask_for_others,
        "migration 1 -> 2 adds the flag, off"
    );
    identities_can_be_added_and_survive_a_reopen(&dir, store);
}

#[test]
fn a_version_2_store_is_migrated_to_identities_keeping_its_hosts_flags() {
    let dir = Scratch::new();
    {
        let conn = version_1_store(&dir);
        conn.execute_batch(&format!(
            "ALTER TABLE hosts ADD COLUMN may_ask_for_others INTEGER NOT NULL DEFAULT 0;
             INSERT INTO hosts VALUES ('jump1', '{}', 1, 1);
             UPDATE meta SET value = '2' WHERE key = 'schema_version';",
            "42".repeat(32)
        ))
        .unwrap();
    }
    let store = Store::open(&dir.file()).unwrap();
    let db = store.database();
    let flags: Vec<(&str, bool)> = db
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h.may_ask_for_others))
        .collect();
    assert_eq!(flags, [("web1", false), ("jump1", true)]);
    identities_can_be_added_and_survive_a_reopen(&dir, store);
}

/// After a migration: the one user has no identity yet; an identity, a Unix group, a member
/// and a lockout are stored, survive a reopen, and the file says the current version.
fn identities_can_be_added_and_survive_a_reopen(dir: &Scratch, mut store: Store) {
    let alice = &store.database().users[0];
    assert!(alice.locked && alice.unix.is_none());
    assert_eq!(store.database().replicas, ["web1"]);
    for change in [
        Change::SetUnixAccount {
            user: "alice".into(),
            account: Some(unix_account(100_001)),
        },
        Change::AddUnixGroup {
            name: "ops".into(),
            gid: 100_100,
        },
        Change::AddUnixGroupMember {
            group: "ops".into(),
            user: "alice".into(),
        },
        // The last migration's table.
        Change::SetLockout {
            user: "alice".into(),
            until: "2027-01-01T00:00:00Z".into(),
        },
    ] {
        store.apply(&change).unwrap();
    }
    let expected = store.database().clone();
    drop(store);
    let store = Store::open(&dir.file()).unwrap();
    assert_eq!(store.database(), expected);
    assert_eq!(store.database().unix_groups[0].members, ["alice"]);
    assert_eq!(store.database().lockouts.len(), 1);
    assert_eq!(store.sequence(), 7);
    drop(store);
    let conn = Connection::open(dir.file()).unwrap();
    let version = schema::get_meta(&conn, "schema_version").unwrap();
    assert_eq!(version, Some(SCHEMA_VERSION.to_string()));
}

#[test]
fn a_host_allowed_to_ask_for_others_is_stored_and_survives_a_reopen() {
    let dir = Scratch::new();
    let mut store = Store::open(&dir.file()).unwrap();
    store.apply(&add_host("jump1")).unwrap();
    store.apply(&add_host("web1")).unwrap();
    let allow = |allowed| Change::SetHostMayAskForOthers {
        name: "jump1".into(),
        allowed,
    };
    store.apply(&allow(true)).unwrap();
    drop(store);
    let mut store = Store::open(&dir.file()).unwrap();
    let flags: Vec<bool> = store
        .database()
        .hosts
        .iter()
        .map(|h| h.may_ask_for_others)
        .collect();
    assert_eq!(flags, [true, false]);
    store.apply(&allow(false)).unwrap();
    drop(store);
    let store = Store::open(&dir.file()).unwrap();
    assert!(!store.database().hosts[0].may_ask_for_others);
}

#[test]
fn a_lockout_is_stored_survives_a_reopen_and_goes_with_its_user() {
    let dir = Scratch::new();
    let mut store = Store::open(&dir.file()).unwrap();
    for name in ["alice", "bob"] {
        store.apply(&add_user(name)).unwrap();
    }
    let lock = |user: &str, until: &str| Change::SetLockout {
        user: user.into(),
        until: until.into(),
    };
    store.apply(&lock("bob", "2026-11-23T10:10:00Z")).unwrap();
    store.apply(&lock("alice", "2026-11-23T10:11:00Z")).unwrap();
    store.apply(&lock("bob", "2026-11-23T10:20:00Z")).unwrap();
    let before = store.database().clone();
    drop(store);
    let mut store = Store::open(&dir.file()).unwrap();
    assert_eq!(store.database(), before);
    assert_eq!(
        store.load_database().unwrap().lockouts[0].until,
        "2026-11-23T10:20:00Z"
    );
    store
        .apply(&Change::ClearLockout {
            user: "alice".into(),
        })
        .unwrap();
    store
        .apply(&Change::RemoveUser { name: "bob".into() })
        .unwrap();
    assert!(store.database().lockouts.is_empty());
    drop(store);
    let store = Store::open(&dir.file()).unwrap();
    assert!(store.load_database().unwrap().lockouts.is_empty());
}

#[test]
fn a_password_record_is_stored_survives_a_reopen_and_goes_with_its_user() {
    let dir = Scratch::new();
    let mut store = Store::open(&dir.file()).unwrap();
    for name in ["alice", "bob"] {
        store.apply(&add_user(name)).unwrap();
    }
    let set = |user: &str, hash: &str| Change::SetPassword {
        user: user.into(),
        hash: hash.into(),
        set_at: "2026-12-01T00:00:00Z".into(),
        expires: Some("2027-03-01T00:00:00Z".into()),
        warn_from: Some("2027-02-22T00:00:00Z".into()),
        history: 3,
    };
    for hash in ["$h1", "$h2", "$h3"] {
        store.apply(&set("alice", hash)).unwrap();
    }
    store
        .apply(&Change::ExpirePassword {
            user: "bob".into(),
            at: "2026-12-05T00:00:00Z".into(),
        })
        .unwrap();
    let before = store.database().clone();
    assert_eq!(before.password_records[0].history, ["$h2", "$h1"]);
    drop(store);
    let mut store = Store::open(&dir.file()).unwrap();
    assert_eq!(store.database(), before);
    assert_eq!(store.load_database().unwrap(), before);
    // A whole replacement (import, snapshot) rewrites them too.
    store
        .apply(&Change::ReplaceAll {
            database: before.clone(),
        })
        .unwrap();
    assert_eq!(store.load_database().unwrap(), before);
    store
        .apply(&Change::RemoveUser {
            name: "alice".into(),
        })
        .unwrap();
    drop(store);
    let store = Store::open(&dir.file()).unwrap();
    let records = store.load_database().unwrap().password_records;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].user, "bob");
}

fn open_err(setup: &str) -> String {
    let dir = Scratch::new();
    dir.raw().execute_batch(setup).unwrap();
    let err = Store::open(&dir.file()).err().expect("must refuse");
    err.to_string()
        .replace(&dir.file().display().to_string(), "FILE")
}

#[test]
fn newer_unknown_and_foreign_files_are_refused_with_a_clear_message() {
    let v1 = format!("{SCHEMA_V0} CREATE TABLE replicas (host TEXT, position INTEGER);");
    assert_eq!(
        open_err(&format!(
            "{v1} INSERT INTO meta VALUES ('schema_version', '99');"
        )),
        format!(
            "FILE: schema version 99 is newer than this gatehouse-master supports \
             ({SCHEMA_VERSION}); run the newer master, or restore a backup"
        )
    );
    assert_eq!(
        open_err(&format!(
            "{v1} INSERT INTO meta VALUES ('schema_version', 'x1');"
        )),
        "FILE: unknown schema version `x1`; refusing to open it"
    );
    assert_eq!(
        open_err("CREATE TABLE accounts (id INTEGER);"),
        "FILE: an SQLite database, but not a Gatehouse store (no meta table); refusing to touch it"
    );

    let dir = Scratch::new();
    std::fs::write(dir.file(), vec![b'x'; 4096]).unwrap();
    secure_file::restrict_to_owner(&dir.file()).unwrap();
    let err = Store::open(&dir.file()).err().expect("garbage refused");
    assert!(err.to_string().contains("not a database"), "{err}");
}

#[test]
fn a_second_master_cannot_open_a_store_in_use() {
    let dir = Scratch::new();
    let mut first = Store::open(&dir.file()).unwrap();
    first.apply(&add_user("alice")).unwrap();
    let err = Store::open(&dir.file()).err().expect("second open refused");
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    drop(first);
    assert_eq!(Store::open(&dir.file()).unwrap().sequence(), 1);
}

#[test]
fn a_replayed_batch_ends_exactly_where_change_by_change_application_does() {
    // What a replica receives from the master: changes that touch the same rows several times
    // and depend on each other (a group before its members, a user added then removed).
    let batch: Vec<(u64, Change)> = vec![
        add_host("h1"),
        Change::AddGroup {
            name: "g".into(),
            description: None,
        },
        Change::AddGroupMember {
            group: "g".into(),
            host: "h1".into(),
        },
        add_user("keep"),
        add_user("gone"),
        Change::AddRoute {
            target: RouteTarget::User("keep".into()),
            route: Route {
                rule: "SSH:*->keep@+g".into(),
                window: None,
                expires: None,
            },
        },
        Change::RemoveUser {
            name: "gone".into(),
        },
        Change::SetLocked {
            user: "keep".into(),
            locked: true,
        },
    ]
    .into_iter()
    .enumerate()
    .map(|(i, c)| (i as u64 + 1, c))
    .collect();
    let one_by_one = Scratch::new();
    let mut a = Store::open(&one_by_one.file()).unwrap();
    for (seq, change) in &batch {
        assert_eq!(a.apply(change).unwrap(), *seq);
    }
    let replayed = Scratch::new();
    let mut b = Store::open(&replayed.file()).unwrap();
    assert_eq!(b.apply_batch(&batch).unwrap(), batch.len() as u64);
    assert_eq!(a.database(), b.database());
    // And on disk: reopened, the tables hold the same database.
    drop(b);
    let b = Store::open(&replayed.file()).unwrap();
    assert_eq!(b.load_database().unwrap(), a.database());
    assert_eq!(b.sequence(), batch.len() as u64);
}
