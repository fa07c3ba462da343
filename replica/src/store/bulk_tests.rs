//! The three ways rows reach the tables — one change per transaction, a batch in one
//! transaction, a whole database at once (snapshot install) — give the same tables, and a
//! change that changes nothing writes nothing and keeps the very snapshot.

use super::tests::Scratch;
use super::*;
use gatehouse_common::policy::{Route, RouteTarget, UnixAccount};

const KEY_HEX: usize = 64;

fn key(i: usize) -> String {
    format!("{:0width$x}", i + 1, width = KEY_HEX)
}

/// A few hundred changes of every kind the tables hold, with removals and re-adds (under the
/// same name and under others) so positions have gaps.
fn changes() -> Vec<Change> {
    let mut all = vec![
        Change::AddGroup {
            name: "web".into(),
            description: Some("web tier".into()),
        },
        Change::AddGroup {
            name: "db".into(),
            description: None,
        },
        Change::AddClass { name: "ops".into() },
        Change::AddRoute {
            target: RouteTarget::Class("ops".into()),
            route: Route {
                rule: "SSH:*->*@+web".into(),
                window: Some("Mon-Fri 08:00-18:00".into()),
                expires: None,
            },
        },
        Change::AddUnixGroup {
            name: "staff".into(),
            gid: 5000,
        },
    ];
    for i in 0..60 {
        let (user, host) = (format!("u{i}"), format!("h{i}"));
        all.push(Change::AddHost {
            name: host.clone(),
            node_key: key(i),
            addresses: vec![format!("10.1.0.{i}")],
            groups: vec![["web", "db"][i % 2].into()],
        });
        all.push(Change::AddUser {
            name: user.clone(),
            classes: if i % 3 == 0 {
                vec!["ops".into()]
            } else {
                vec![]
            },
        });
        all.push(Change::AddRoute {
            target: RouteTarget::User(user.clone()),
            route: Route {
                rule: format!("SSH:*->{user}@h*"),
                window: None,
                expires: (i % 5 == 0).then(|| "2031-01-01".into()),
            },
        });
        all.push(Change::SetUnixAccount {
            user: user.clone(),
            account: Some(UnixAccount {
                uid: 7000 + i as u32,
                gid: 5000,
                gecos: String::new(),
                home: format!("/home/{user}"),
                shell: "/bin/sh".into(),
            }),
        });
        if i % 4 == 0 {
            all.push(Change::AddUnixGroupMember {
                group: "staff".into(),
                user: user.clone(),
            });
        }
        if i % 7 == 0 {
            all.push(Change::SetLockout {
                user: user.clone(),
                until: "2030-01-01T00:00:00Z".into(),
            });
        }
    }
    for i in (0..60).step_by(5) {
        let (user, host) = (format!("u{i}"), format!("h{i}"));
        if i % 4 == 0 {
            all.push(Change::RemoveUnixGroupMember {
                group: "staff".into(),
                user: user.clone(),
            });
        }
        all.push(Change::RemoveUser { name: user.clone() });
        all.push(Change::RemoveHost { name: host.clone() });
        // Back under the same name (now last), and once under another.
        all.push(Change::AddUser {
            name: user,
            classes: vec![],
        });
        all.push(Change::AddHost {
            name: format!("{host}-renamed"),
            node_key: key(1000 + i),
            addresses: vec![format!("10.1.0.{i}")],
            groups: vec![],
        });
    }
    all.push(Change::SetLocked {
        user: "u1".into(),
        locked: true,
    });
    all.push(Change::AddReplica { host: "h2".into() });
    all
}

/// Every table's rows in their stored order, positions replaced by that order.
fn tables(store: &Store) -> Vec<String> {
    let queries = [
        "SELECT name, description FROM host_groups ORDER BY position",
        "SELECT name, node_key, may_ask_for_others FROM hosts ORDER BY position",
        "SELECT host, position, address FROM host_addresses ORDER BY host, position",
        "SELECT host, position, grp FROM host_group_members ORDER BY host, position",
        "SELECT name, password_hash, locked, uid, gid, gecos, home, shell FROM users
         ORDER BY position",
        "SELECT name FROM user_classes ORDER BY position",
        "SELECT user, position, class FROM user_class_members ORDER BY user, position",
        "SELECT owner_kind, owner, position, rule, time_window, expires FROM routes
         ORDER BY owner_kind, owner, position",
        "SELECT name, gid FROM unix_groups ORDER BY position",
        "SELECT grp, position, user FROM unix_group_members ORDER BY grp, position",
        "SELECT user, until FROM lockouts ORDER BY position",
        "SELECT host, position FROM replicas ORDER BY position",
    ];
    let mut out = Vec::new();
    for sql in queries {
        let mut stmt = store.conn.prepare(sql).unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let cells: Vec<String> = (0..columns)
                .map(|c| format!("{:?}", row.get_ref(c).unwrap()))
                .collect();
            out.push(cells.join("|"));
        }
        out.push("--".into());
    }
    out
}

#[test]
fn a_store_written_row_by_row_and_one_written_in_bulk_are_identical() {
    let changes = changes();
    let (a, b, c) = (Scratch::new(), Scratch::new(), Scratch::new());
    let mut by_row = Store::open(&a.file()).unwrap();
    for change in &changes {
        by_row.apply(change).unwrap();
    }
    let mut by_batch = Store::open(&b.file()).unwrap();
    let numbered: Vec<(u64, Change)> = (1..).zip(changes.iter().cloned()).collect();
    by_batch.apply_batch(&numbered).unwrap();
    let mut by_snapshot = Store::open(&c.file()).unwrap();
    let db = by_row.database();
    by_snapshot
        .install_snapshot(&db, by_row.sequence(), &mut |_| {})
        .unwrap();

    let want = tables(&by_row);
    assert!(want.len() > 300, "the changes fill the tables");
    assert_eq!(tables(&by_batch), want, "one batch in one transaction");
    assert_eq!(tables(&by_snapshot), want, "the whole database at once");
    for store in [&by_row, &by_batch, &by_snapshot] {
        assert_eq!(store.load_database().unwrap(), db);
        assert_eq!(store.database(), db);
    }
    // Reopened, each reads back the same database, and a new entity still goes last.
    drop((by_row, by_batch, by_snapshot));
    for dir in [&a, &b, &c] {
        let mut store = Store::open(&dir.file()).unwrap();
        assert_eq!(store.database(), db);
        store
            .apply(&Change::AddUser {
                name: "newest".into(),
                classes: vec![],
            })
            .unwrap();
        drop(store);
        let users = Store::open(&dir.file()).unwrap().database().users;
        assert_eq!(users.last().map(|u| u.name.as_str()), Some("newest"));
    }
}

#[test]
fn a_change_that_changes_nothing_writes_nothing_and_keeps_the_snapshot() {
    let dir = Scratch::new();
    let mut store = Store::open(&dir.file()).unwrap();
    store
        .apply(&Change::AddUser {
            name: "alice".into(),
            classes: vec![],
        })
        .unwrap();
    let before = store.policy();
    let lock_twice = Change::SetLocked {
        user: "alice".into(),
        locked: false,
    };
    assert_eq!(store.apply(&lock_twice).unwrap(), 1, "no new sequence");
    assert!(
        Arc::ptr_eq(&before, &store.policy()),
        "the very same snapshot"
    );
    assert_eq!(store.changes_after(0, 10).unwrap(), {
        ChangesAfter::Changes(vec![(
            1,
            Change::AddUser {
                name: "alice".into(),
                classes: vec![],
            },
        )])
    });
}

#[test]
fn an_import_is_logged_as_a_marker_and_asks_for_a_snapshot() {
    let dir = Scratch::new();
    let mut store = Store::open(&dir.file()).unwrap();
    let add = |name: &str| Change::AddUser {
        name: name.into(),
        classes: vec![],
    };
    store.apply(&add("a")).unwrap();
    let mut db = Database::default();
    gatehouse_common::policy::apply(&mut db, &add("imported")).unwrap();
    store.apply(&Change::ReplaceAll { database: db }).unwrap();
    store.apply(&add("b")).unwrap();
    assert_eq!(
        store.changes_after(0, 10).unwrap(),
        ChangesAfter::Changes(vec![(1, add("a"))]),
        "up to the import"
    );
    assert_eq!(
        store.changes_after(1, 10).unwrap(),
        ChangesAfter::Replaced { seq: 2 }
    );
    assert_eq!(
        store.changes_after(2, 10).unwrap(),
        ChangesAfter::Changes(vec![(3, add("b"))])
    );
    let text: String = store
        .conn
        .query_row("SELECT change FROM changelog WHERE seq = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(text, REPLACED_MARKER);
}
