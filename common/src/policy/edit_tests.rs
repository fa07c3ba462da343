//! The incremental path against the definition: over random change sequences (every change
//! kind, removals, re-adds under other names, refusals), [`PolicySnapshot::apply`] must accept
//! exactly what `change::apply` (edit the model, compile it whole) accepts, and give the very
//! snapshot a full compile of the result gives — the database read back, every index, count
//! and the dummy's cost. Seeded: `GATEHOUSE_EDIT_SEED=N` replays one sequence.

use super::super::change::apply as apply_to_model;
use super::super::*;
use crate::identity::Lookup;
use crate::types::Method;
use crate::wire::AuthorizeRequest;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

/// Sequences checked per run, and changes per sequence: small name pools make most changes
/// collide with what is there (duplicates, removals of used entities, re-adds).
const SEQUENCES: u64 = 300;
const CHANGES_PER_SEQUENCE: usize = 90;

/// Everything a snapshot holds, in a comparable form (positions aside: only order matters).
fn canonical(s: &PolicySnapshot) -> String {
    let mut out = format!("{:#?}\n", s.to_database());
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v.join("\n")
    };
    let addresses = s.host_by_address.iter().map(|(a, h)| format!("{a}->{h}"));
    out += &sorted(addresses.collect());
    let keys = s
        .node_keys
        .iter()
        .map(|(h, k)| format!("{h}={}", k.to_hex()));
    out += &sorted(keys.collect());
    let groups = s.host_groups.iter().map(|(n, g)| {
        let desc = &g.description;
        format!("group {n} hosts={} routes={} {desc:?}", g.hosts, g.routes)
    });
    out += &sorted(groups.collect());
    let classes = s.classes.iter().map(|(n, c)| {
        let labels: Vec<_> = c.routes.iter().map(|r| (&*r.label, r.rule_len)).collect();
        format!("class {n} members={} {labels:?}", c.members)
    });
    out += &sorted(classes.collect());
    let users = s.users.iter().map(|(n, u)| {
        let labels: Vec<_> = u.routes.iter().map(|r| (&*r.label, r.rule_len)).collect();
        format!("user {n} {labels:?} {:?}", u.unix)
    });
    out += &sorted(users.collect());
    let ids = &s.identities;
    let uids = ids
        .by_uid
        .iter()
        .map(|(u, e)| format!("uid {u}={}", e.name));
    out += &sorted(uids.collect());
    let gids = ids
        .by_gid
        .iter()
        .map(|(g, e)| format!("gid {g}={:?}", e.entry));
    out += &sorted(gids.collect());
    let names = ids
        .groups
        .iter()
        .map(|(n, e)| format!("ug {n}={:?}", e.entry));
    out += &sorted(names.collect());
    let of = ids.groups_of.iter().map(|(u, g)| format!("of {u}={g:?}"));
    out += &sorted(of.collect());
    let lockouts = s
        .lockouts
        .iter()
        .map(|(u, l)| format!("lo {u}={:?}", l.until));
    out += &sorted(lockouts.collect());
    out += &format!(
        "\nroutes={} locked={} dummy_m={} costs={:?} replicas={:?}",
        s.route_count,
        s.locked_users,
        s.dummy.m_cost(),
        s.costs,
        s.replicas
    );
    out
}

/// Random changes over small name pools.
struct Gen {
    rng: StdRng,
    hashes: [String; 3],
}

impl Gen {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from.choose(&mut self.rng).copied().unwrap_or_default()
    }

    fn name(&mut self, kind: &str, pool: u32) -> String {
        match self.rng.gen_ratio(1, 40) {
            true => String::new(),
            false => format!("{kind}{}", self.rng.gen_range(0..pool)),
        }
    }

    fn key(&mut self) -> String {
        match self.rng.gen_ratio(1, 20) {
            true => "not-a-key".into(),
            false => (0..32)
                .map(|_| format!("{:02x}", self.rng.gen::<u8>()))
                .collect(),
        }
    }

    fn addresses(&mut self) -> Vec<String> {
        let n = self.rng.gen_range(0..3);
        (0..n)
            .map(|_| format!("10.0.0.{}", self.rng.gen_range(0..6)))
            .collect()
    }

    fn route(&mut self) -> Route {
        let user = format!("u{}", self.rng.gen_range(0..5));
        let rules = [
            format!("SSH:*->{user}@h*"),
            format!("SU:{user}@*->root@+g0"),
            "*:+g1->*@+g2".to_string(),
            format!("LOGIN:10.0.*->{user}@h1"),
            format!("  SUDO:h?->{user}@*  "),
            "SSH:*->x@+nosuchgroup".to_string(),
            "SSH *->broken".to_string(),
        ];
        let rule = self.pick(&rules.iter().map(String::as_str).collect::<Vec<_>>());
        Route {
            rule: rule.to_string(),
            window: self.rng.gen_ratio(1, 5).then(|| {
                self.pick(&["Mon-Fri 08:00-18:00", "Sat,Sun", "Mon-Fry"])
                    .into()
            }),
            expires: self.rng.gen_ratio(1, 6).then(|| {
                self.pick(&["2031-01-01", "2020-05-01T10:00:00Z", "soon"])
                    .into()
            }),
        }
    }

    fn account(&mut self) -> Option<UnixAccount> {
        self.rng.gen_ratio(3, 4).then(|| UnixAccount {
            uid: 1000 + self.rng.gen_range(0..8),
            gid: 1000 + self.rng.gen_range(0..4),
            gecos: self.pick(&["", "A User"]).into(),
            home: self
                .pick(&["/home/u", "/home/v", "/home/w", "relative"])
                .into(),
            shell: "/bin/sh".into(),
        })
    }

    /// A name of what `names` lists (usually), or one from the pool.
    fn pick_from_db(&mut self, names: Vec<&str>, kind: &str, pool: u32) -> String {
        match names.choose(&mut self.rng) {
            Some(name) if self.rng.gen_ratio(3, 4) => name.to_string(),
            _ => self.name(kind, pool),
        }
    }

    fn host(&mut self, db: &Database) -> String {
        self.pick_from_db(db.hosts.iter().map(|h| h.name.as_str()).collect(), "h", 5)
    }

    fn user(&mut self, db: &Database) -> String {
        self.pick_from_db(db.users.iter().map(|u| u.name.as_str()).collect(), "u", 6)
    }

    fn unix_user(&mut self, db: &Database) -> String {
        let with_unix = db.users.iter().filter(|u| u.unix.is_some());
        self.pick_from_db(with_unix.map(|u| u.name.as_str()).collect(), "u", 6)
    }

    fn group(&mut self, db: &Database) -> String {
        self.pick_from_db(
            db.host_groups.iter().map(|g| g.name.as_str()).collect(),
            "g",
            4,
        )
    }

    fn class(&mut self, db: &Database) -> String {
        self.pick_from_db(
            db.user_classes.iter().map(|c| c.name.as_str()).collect(),
            "c",
            4,
        )
    }

    fn several(&mut self, db: &Database, one: fn(&mut Self, &Database) -> String) -> Vec<String> {
        (0..self.rng.gen_range(0..3))
            .map(|_| one(self, db))
            .collect()
    }

    fn target(&mut self, db: &Database) -> RouteTarget {
        match self.rng.gen_bool(0.7) {
            true => RouteTarget::User(self.user(db)),
            false => RouteTarget::Class(self.class(db)),
        }
    }

    /// An existing route (its rule, perhaps with other whitespace), or a made-up one.
    fn existing_route(&mut self, db: &Database) -> (RouteTarget, String) {
        let users = db
            .users
            .iter()
            .map(|u| (RouteTarget::User(u.name.clone()), &u.routes));
        let classes = db
            .user_classes
            .iter()
            .map(|c| (RouteTarget::Class(c.name.clone()), &c.routes));
        let all: Vec<_> = users
            .chain(classes)
            .flat_map(|(t, routes)| routes.iter().map(move |r| (t.clone(), r.rule.clone())))
            .collect();
        match all.choose(&mut self.rng) {
            Some((t, rule)) if self.rng.gen_ratio(4, 5) => (t.clone(), format!(" {}", rule.trim())),
            _ => (self.target(db), self.route().rule),
        }
    }

    /// One change of any kind; the current database lets some of them reuse what exists.
    fn change(&mut self, db: &Database) -> Change {
        let hash = self
            .hashes
            .choose(&mut self.rng)
            .cloned()
            .unwrap_or_default();
        match self.rng.gen_range(0..34) {
            0 | 1 => Change::AddHost {
                name: self.host(db),
                node_key: self.key(),
                addresses: self.addresses(),
                groups: self.several(db, Self::group),
            },
            2 => Change::RemoveHost {
                name: self.host(db),
            },
            3 => Change::SetHostGroups {
                name: self.host(db),
                groups: self.several(db, Self::group),
            },
            4 => Change::SetHostMayAskForOthers {
                name: self.host(db),
                allowed: self.rng.gen(),
            },
            5 => Change::AddGroupMember {
                group: self.group(db),
                host: self.host(db),
            },
            6 => Change::RemoveGroupMember {
                group: self.group(db),
                host: self.host(db),
            },
            7 => Change::AddGroup {
                name: self.group(db),
                description: self.rng.gen_ratio(1, 2).then(|| "web servers".into()),
            },
            8 => Change::RemoveGroup {
                name: self.group(db),
            },
            9 | 10 => Change::AddUser {
                name: self.user(db),
                classes: self.several(db, Self::class),
            },
            11 => Change::RemoveUser {
                name: self.user(db),
            },
            12 => match self.rng.gen_range(0..4) {
                0 => Change::SetPasswordHash {
                    user: self.user(db),
                    hash,
                },
                1 | 2 => Change::SetPassword {
                    user: self.user(db),
                    hash,
                    set_at: self.pick(&["2030-01-01T00:00:00Z", "bad time"]).into(),
                    expires: self
                        .rng
                        .gen_ratio(1, 2)
                        .then(|| "2030-04-01T00:00:00Z".into()),
                    warn_from: self
                        .rng
                        .gen_ratio(1, 3)
                        .then(|| "2030-03-25T00:00:00Z".into()),
                    history: self.rng.gen_range(0..4),
                },
                _ => Change::ExpirePassword {
                    user: self.user(db),
                    at: "2030-02-01T00:00:00Z".into(),
                },
            },
            13 => Change::SetLocked {
                user: self.user(db),
                locked: self.rng.gen(),
            },
            14 => Change::SetUserClasses {
                user: self.user(db),
                classes: self.several(db, Self::class),
            },
            15 => Change::AddClass {
                name: self.class(db),
            },
            16 => Change::RemoveClass {
                name: self.class(db),
            },
            17 | 18 => Change::AddRoute {
                target: self.target(db),
                route: self.route(),
            },
            19 => {
                let (target, rule) = self.existing_route(db);
                Change::RemoveRoute { target, rule }
            }
            20 => Change::AddReplica {
                host: self.host(db),
            },
            21 => Change::RemoveReplica {
                host: self.host(db),
            },
            22 => {
                // The same database, or one with entries reordered (a re-import).
                let mut database = db.clone();
                if self.rng.gen() {
                    database.users.reverse();
                    database.hosts.reverse();
                }
                Change::ReplaceAll { database }
            }
            23 | 28 | 29 => Change::SetUnixAccount {
                user: self.user(db),
                account: self.account(),
            },
            24 => Change::AddUnixGroup {
                name: self.pick(&["ops", "dev", "wheel", "Bad Name"]).into(),
                gid: 2000 + self.rng.gen_range(0..3),
            },
            25 => Change::RemoveUnixGroup {
                name: self.pick(&["ops", "dev", "wheel"]).into(),
            },
            26 | 30 | 31 => Change::AddUnixGroupMember {
                group: self.pick(&["ops", "dev", "wheel"]).into(),
                user: self.unix_user(db),
            },
            _ => match self.rng.gen_range(0..4) {
                0 => {
                    let member = db.unix_groups.choose(&mut self.rng).and_then(|g| {
                        let user = g.members.choose(&mut self.rng)?;
                        Some((g.name.clone(), user.clone()))
                    });
                    let (group, user) = member.unwrap_or_else(|| ("ops".into(), "u1".into()));
                    Change::RemoveUnixGroupMember { group, user }
                }
                1 | 2 => Change::SetLockout {
                    user: self.user(db),
                    until: self
                        .pick(&["2030-01-01T00:00:00Z", "2031-06-01T12:00:00Z", "never"])
                        .into(),
                },
                _ => Change::ClearLockout {
                    user: match db.lockouts.choose(&mut self.rng) {
                        Some(l) if self.rng.gen_ratio(3, 4) => l.user.clone(),
                        _ => self.user(db),
                    },
                },
            },
        }
    }
}

fn hashes() -> [String; 3] {
    let fast = hash_password("pw", &mut StdRng::seed_from_u64(9), HashCost::Fast).unwrap();
    let other_cost = fast.replacen("m=1024", "m=2048", 1);
    [fast, other_cost, String::new()]
}

/// Runs one seeded sequence; panics with the seed, the step and both outcomes on a mismatch.
fn check_sequence(seed: u64, hashes: &[String; 3]) {
    let mut gen = Gen {
        rng: StdRng::seed_from_u64(seed),
        hashes: hashes.clone(),
    };
    let mut db = Database::default();
    let mut snapshot = PolicySnapshot::default();
    for step in 0..CHANGES_PER_SEQUENCE {
        let change = gen.change(&db);
        let mut next_db = db.clone();
        let by_model = apply_to_model(&mut next_db, &change);
        let by_snapshot = snapshot.apply(&change);
        let context = || format!("seed {seed} step {step}: {change:?}");
        match (by_model, by_snapshot) {
            (Err(_), Err(_)) => {}
            (Ok(()), Ok(applied)) => {
                let next = match applied {
                    Applied::Changed(next) => next,
                    Applied::Unchanged => {
                        assert_eq!(next_db, db, "reported unchanged: {}", context());
                        snapshot.clone()
                    }
                };
                let full = PolicySnapshot::compile(&next_db).unwrap();
                assert_eq!(canonical(&next), canonical(&full), "{}", context());
                assert_eq!(next.to_database(), next_db, "{}", context());
                snapshot = next;
                db = next_db;
            }
            (model, snap) => panic!(
                "{}: the model says {model:?}, the snapshot {:?}",
                context(),
                snap.map(|_| "ok")
            ),
        }
    }
}

#[test]
fn incremental_changes_give_the_snapshot_a_full_compile_gives() {
    let hashes = hashes();
    if let Some(seed) = std::env::var("GATEHOUSE_EDIT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return check_sequence(seed, &hashes);
    }
    for seed in 0..SEQUENCES {
        check_sequence(seed, &hashes);
    }
}

fn fleet(users: usize) -> PolicySnapshot {
    let key = |n: usize| format!("{:064x}", n + 1);
    let db = Database {
        hosts: (0..10)
            .map(|n| Host {
                name: format!("web{n}"),
                addresses: vec![format!("10.0.0.{n}")],
                node_key: key(n),
                groups: vec![],
                may_ask_for_others: false,
            })
            .collect(),
        users: (0..users)
            .map(|n| User {
                name: format!("user{n}"),
                password_hash: String::new(),
                locked: false,
                classes: vec![],
                routes: vec![Route {
                    rule: format!("SSH:*->user{n}@web*"),
                    window: None,
                    expires: None,
                }],
                unix: None,
            })
            .collect(),
        ..Database::default()
    };
    PolicySnapshot::compile(&db).unwrap()
}

#[test]
fn a_change_shares_every_entry_it_did_not_touch() {
    let before = fleet(2000);
    let lock = Change::SetLocked {
        user: "user7".into(),
        locked: true,
    };
    let Applied::Changed(after) = before.apply(&lock).unwrap() else {
        panic!("locking changes the user")
    };
    let shared = before
        .users
        .iter()
        .filter(|(name, user)| {
            after
                .users
                .get(&***name)
                .is_some_and(|a| Arc::ptr_eq(a, user))
        })
        .count();
    assert_eq!(shared, 1999, "only user7 is new");
    assert!(
        after.node_keys().ptr_eq(&before.node_keys()),
        "no host changed"
    );
    let req = AuthorizeRequest {
        method: Method::Ssh,
        from_host: "10.1.1.1",
        from_user: "",
        to_user: "user7",
        to_host: "web3",
    };
    let now = PolicyTime::from_unix(0);
    assert!(matches!(
        before.authorize(&req, now),
        Decision::Allow { .. }
    ));
    assert!(matches!(after.authorize(&req, now), Decision::Deny { .. }));
}

#[test]
fn a_change_that_changes_nothing_is_reported_unchanged() {
    let before = fleet(10);
    let noops = [
        Change::SetLocked {
            user: "user1".into(),
            locked: false,
        },
        Change::SetHostMayAskForOthers {
            name: "web1".into(),
            allowed: false,
        },
        Change::SetHostGroups {
            name: "web1".into(),
            groups: vec![],
        },
        Change::SetUnixAccount {
            user: "user1".into(),
            account: None,
        },
        Change::SetPasswordHash {
            user: "user1".into(),
            hash: String::new(),
        },
    ];
    for change in &noops {
        assert!(
            matches!(before.apply(change), Ok(Applied::Unchanged)),
            "{change:?}"
        );
    }
    assert!(matches!(before.apply_all(&noops), Ok(Applied::Unchanged)));
    let refused = Change::SetLocked {
        user: "nosuchuser".into(),
        locked: true,
    };
    assert!(before.apply(&refused).is_err());
}

#[test]
fn lookups_follow_incremental_identity_changes() {
    let mut snapshot = fleet(3);
    let steps = [
        Change::SetUnixAccount {
            user: "user1".into(),
            account: Some(UnixAccount {
                uid: 1001,
                gid: 1001,
                gecos: String::new(),
                home: "/home/user1".into(),
                shell: "/bin/sh".into(),
            }),
        },
        Change::AddUnixGroup {
            name: "wheel".into(),
            gid: 2002,
        },
        Change::AddUnixGroup {
            name: "ops".into(),
            gid: 2001,
        },
        Change::AddUnixGroupMember {
            group: "ops".into(),
            user: "user1".into(),
        },
        Change::AddUnixGroupMember {
            group: "wheel".into(),
            user: "user1".into(),
        },
    ];
    for change in &steps {
        let Applied::Changed(next) = snapshot.apply(change).unwrap() else {
            panic!("{change:?} changes something")
        };
        snapshot = next;
    }
    assert_eq!(
        snapshot.lookup(&Lookup::GroupsOfUser("user1")),
        crate::wire::Response::Groups(vec![2002, 2001].into()),
        "in the groups' database order, not the order of joining"
    );
}
