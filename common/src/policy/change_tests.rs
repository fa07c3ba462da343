use super::*;
use crate::policy::{Decision, PolicyTime};
use crate::types::{DenyReason, Method};
use crate::wire::AuthorizeRequest;

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn add_host(name: &str) -> Change {
    Change::AddHost {
        name: name.into(),
        node_key: KEY.into(),
        addresses: Vec::new(),
        groups: Vec::new(),
    }
}

fn route(rule: &str) -> Route {
    Route {
        rule: rule.into(),
        window: None,
        expires: None,
    }
}

/// web1 in group web; class ops; user alice in ops with one route.
fn base() -> Database {
    let mut db = Database::default();
    for change in [
        Change::AddGroup {
            name: "web".into(),
            description: None,
        },
        add_host("web1"),
        Change::AddGroupMember {
            group: "web".into(),
            host: "web1".into(),
        },
        Change::AddClass { name: "ops".into() },
        Change::AddUser {
            name: "alice".into(),
            classes: vec!["ops".into()],
        },
        Change::AddRoute {
            target: RouteTarget::User("alice".into()),
            route: route("SSH:*->alice@+web"),
        },
    ] {
        apply(&mut db, &change).unwrap_or_else(|e| panic!("{change:?}: {e}"));
    }
    db
}

/// Applies a change that must be refused; checks the message and that nothing changed.
fn refused(change: Change, message: &str) {
    let mut db = base();
    let err = apply(&mut db, &change).unwrap_err();
    assert_eq!(err.to_string(), message, "{change:?}");
    assert_eq!(
        db,
        base(),
        "a refused change must leave the database unchanged"
    );
}

#[test]
fn edits_build_the_database_an_admin_expects() {
    let db = base();
    assert_eq!(db.hosts[0].groups, vec!["web".to_string()]);
    assert_eq!(db.users[0].classes, vec!["ops".to_string()]);
    let snapshot = PolicySnapshot::compile(&db).unwrap();
    let req: AuthorizeRequest = AuthorizeRequest {
        method: Method::Ssh,
        from_host: "10.1.1.1".into(),
        from_user: "alice".into(),
        to_user: "alice".into(),
        to_host: "web1".into(),
    };
    assert_eq!(
        snapshot.authorize(&req, PolicyTime::from_unix(0)),
        Decision::Allow {
            route: "SSH:*->alice@+web".into()
        }
    );

    let mut db = base();
    let locked = Change::SetLocked {
        user: "alice".into(),
        locked: true,
    };
    apply(&mut db, &locked).unwrap();
    let snapshot = PolicySnapshot::compile(&db).unwrap();
    assert_eq!(
        snapshot.authorize(&req, PolicyTime::from_unix(0)),
        Decision::Deny {
            reason: DenyReason::Locked
        }
    );
}

#[test]
fn invalid_changes_are_refused_with_a_clear_message_and_change_nothing() {
    refused(add_host("web1"), "host `web1` already exists");
    refused(
        Change::RemoveHost {
            name: "web9".into(),
        },
        "unknown host `web9`",
    );
    refused(
        Change::AddHost {
            name: "web2".into(),
            node_key: "abc".into(),
            addresses: Vec::new(),
            groups: Vec::new(),
        },
        "host `web2`: bad node key: expected 64 hex digits, found 3",
    );
    refused(
        Change::SetHostGroups {
            name: "web1".into(),
            groups: vec!["db".into()],
        },
        "host `web1`: unknown host group `db`",
    );
    refused(
        Change::AddGroupMember {
            group: "web".into(),
            host: "web1".into(),
        },
        "host `web1` is already in group `web`",
    );
    refused(
        Change::RemoveGroupMember {
            group: "db".into(),
            host: "web1".into(),
        },
        "host `web1` is not in group `db`",
    );
    refused(
        Change::RemoveGroup { name: "web".into() },
        "host group `web` is still used by host `web1`; remove it there first",
    );
    refused(
        Change::AddUser {
            name: "alice".into(),
            classes: Vec::new(),
        },
        "user `alice` already exists",
    );
    refused(
        Change::AddUser {
            name: "bob".into(),
            classes: vec!["dba".into()],
        },
        "user `bob`: unknown user class `dba`",
    );
    refused(
        Change::AddUser {
            name: String::new(),
            classes: Vec::new(),
        },
        "user with an empty name",
    );
    refused(
        Change::RemoveClass { name: "ops".into() },
        "class `ops` is still used by user `alice`; remove it there first",
    );
    refused(
        Change::AddRoute {
            target: RouteTarget::User("alice".into()),
            route: route("SSH:*->alice@+mail"),
        },
        "user `alice`: rule `SSH:*->alice@+mail`: unknown host group `mail`",
    );
    refused(
        Change::AddRoute {
            target: RouteTarget::Class("ops".into()),
            route: Route {
                rule: "SSH:*->*@web1".into(),
                window: Some("Mon-Fry".into()),
                expires: None,
            },
        },
        "class `ops`: window `Mon-Fry`: unknown weekday `Fry` (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)",
    );
    refused(
        Change::AddRoute {
            target: RouteTarget::User("alice".into()),
            route: route(" SSH:*->alice@+web "),
        },
        "user `alice` already has the route `SSH:*->alice@+web`",
    );
    refused(
        Change::RemoveRoute {
            target: RouteTarget::Class("ops".into()),
            rule: "SSH:*->*@*".into(),
        },
        "class `ops` has no route `SSH:*->*@*`",
    );
    refused(
        Change::AddRoute {
            target: RouteTarget::Class("dba".into()),
            route: route("SSH:*->*@*"),
        },
        "unknown class `dba`",
    );
    refused(
        Change::AddReplica { host: "db9".into() },
        "unknown host `db9`",
    );
    refused(
        Change::RemoveReplica {
            host: "web1".into(),
        },
        "unknown replica `web1`",
    );
}

#[test]
fn the_replica_allow_list_names_registered_hosts_only() {
    let mut db = base();
    apply(
        &mut db,
        &Change::AddReplica {
            host: "web1".into(),
        },
    )
    .unwrap();
    assert_eq!(db.replicas, vec!["web1".to_string()]);
    let again = apply(
        &mut db,
        &Change::AddReplica {
            host: "web1".into(),
        },
    );
    assert_eq!(
        again.unwrap_err().to_string(),
        "replica `web1` already exists"
    );
    let err = apply(
        &mut db,
        &Change::RemoveHost {
            name: "web1".into(),
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "host `web1` is still used by the replica list; remove it there first"
    );

    // An imported database with a replica that is not a host fails closed, as a whole.
    let mut import = base();
    import.replicas = vec!["ghost".into()];
    let err = apply(&mut db, &Change::ReplaceAll { database: import }).unwrap_err();
    assert_eq!(err.to_string(), "replica `ghost` is not a registered host");
    assert_eq!(db.replicas, vec!["web1".to_string()]);
}

#[test]
fn removals_undo_additions() {
    let mut db = base();
    for change in [
        Change::RemoveRoute {
            target: RouteTarget::User("alice".into()),
            rule: "SSH:*->alice@+web".into(),
        },
        Change::RemoveUser {
            name: "alice".into(),
        },
        Change::RemoveClass { name: "ops".into() },
        Change::RemoveGroupMember {
            group: "web".into(),
            host: "web1".into(),
        },
        Change::RemoveGroup { name: "web".into() },
        Change::RemoveHost {
            name: "web1".into(),
        },
    ] {
        apply(&mut db, &change).unwrap_or_else(|e| panic!("{change:?}: {e}"));
    }
    assert_eq!(db, Database::default());
}

#[test]
fn changes_survive_a_ron_round_trip() {
    let changes = vec![
        add_host("web2"),
        Change::SetPasswordHash {
            user: "alice".into(),
            hash: "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA".into(),
        },
        Change::AddRoute {
            target: RouteTarget::Class("ops".into()),
            route: Route {
                rule: "SUDO:+web->root@+web".into(),
                window: Some("Mon-Fri 08:00-18:00".into()),
                expires: Some("2027-01-01".into()),
            },
        },
        Change::ReplaceAll { database: base() },
    ];
    for change in changes {
        let text = ron::to_string(&change).unwrap();
        let back: Change = ron::from_str(&text).unwrap();
        assert_eq!(back, change, "{text}");
    }
}

fn unix_account(uid: u32) -> Option<UnixAccount> {
    Some(UnixAccount {
        uid,
        gid: uid,
        gecos: String::new(),
        home: "/home/alice".into(),
        shell: "/bin/sh".into(),
    })
}

#[test]
fn unix_identity_changes_edit_accounts_groups_and_members() {
    let mut db = base();
    for change in [
        Change::SetUnixAccount {
            user: "alice".into(),
            account: unix_account(100_001),
        },
        Change::AddUnixGroup {
            name: "ops".into(),
            gid: 100_100,
        },
        Change::AddUnixGroupMember {
            group: "ops".into(),
            user: "alice".into(),
        },
    ] {
        apply(&mut db, &change).unwrap_or_else(|e| panic!("{change:?}: {e}"));
    }
    assert_eq!(db.users[0].unix, unix_account(100_001));
    assert_eq!(db.unix_groups[0].members, ["alice"]);
    // Host groups and Unix groups are separate name spaces: `web` can be both.
    let web = Change::AddUnixGroup {
        name: "web".into(),
        gid: 100_200,
    };
    apply(&mut db, &web).unwrap();

    let refusals = [
        (
            Change::AddUnixGroupMember {
                group: "ops".into(),
                user: "alice".into(),
            },
            "user `alice` is already a member of unix group `ops`",
        ),
        (
            Change::RemoveUser {
                name: "alice".into(),
            },
            "user `alice` is still used by unix group `ops`; remove it there first",
        ),
        (
            Change::SetUnixAccount {
                user: "alice".into(),
                account: None,
            },
            "unix group `ops`: member `alice` has no Unix identity",
        ),
        (
            Change::AddUnixGroup {
                name: "ops2".into(),
                gid: 100_100,
            },
            "gid 100100 is used by both `ops` and `ops2`",
        ),
        (
            Change::RemoveUnixGroupMember {
                group: "web".into(),
                user: "alice".into(),
            },
            "user `alice` is not a member of unix group `web`",
        ),
        (
            Change::RemoveUnixGroup { name: "db".into() },
            "unknown unix group `db`",
        ),
    ];
    for (change, message) in refusals {
        let before = db.clone();
        let err = apply(&mut db, &change).unwrap_err();
        assert_eq!(err.to_string(), message, "{change:?}");
        assert_eq!(
            db, before,
            "a refused change must leave the database unchanged"
        );
    }
    for change in [
        Change::RemoveUnixGroupMember {
            group: "ops".into(),
            user: "alice".into(),
        },
        Change::RemoveUnixGroup { name: "ops".into() },
        Change::SetUnixAccount {
            user: "alice".into(),
            account: None,
        },
    ] {
        apply(&mut db, &change).unwrap_or_else(|e| panic!("{change:?}: {e}"));
    }
    assert_eq!(db.unix_groups.len(), 1);
    assert_eq!(db.users[0].unix, None);
}

#[test]
fn a_lockout_is_set_replaced_cleared_and_goes_with_its_user() {
    let mut db = base();
    let lock = |until: &str| Change::SetLockout {
        user: "alice".into(),
        until: until.into(),
    };
    apply(&mut db, &lock("2026-11-23T10:10:00Z")).unwrap();
    apply(&mut db, &lock("2026-11-23T10:20:00Z")).unwrap();
    assert_eq!(
        db.lockouts,
        [Lockout {
            user: "alice".into(),
            until: "2026-11-23T10:20:00Z".into()
        }]
    );
    let clear = Change::ClearLockout {
        user: "alice".into(),
    };
    apply(&mut db, &clear).unwrap();
    assert!(db.lockouts.is_empty());
    assert_eq!(
        apply(&mut db, &clear).unwrap_err().to_string(),
        "user `alice` is not locked out"
    );
    // Removing a locked-out user removes its lockout (or the database would not compile).
    apply(&mut db, &lock("2026-11-23T10:20:00Z")).unwrap();
    apply(
        &mut db,
        &Change::RemoveUser {
            name: "alice".into(),
        },
    )
    .unwrap();
    assert!(db.lockouts.is_empty());
}

#[test]
fn invalid_lockouts_are_refused_and_change_nothing() {
    refused(
        Change::SetLockout {
            user: "bob".into(),
            until: "2026-11-23T10:10:00Z".into(),
        },
        "unknown user `bob`",
    );
    refused(
        Change::SetLockout {
            user: "alice".into(),
            until: "later".into(),
        },
        "lockout of user `alice`: until `later`: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)",
    );
    refused(
        Change::ClearLockout {
            user: "alice".into(),
        },
        "user `alice` is not locked out",
    );
}
