//! Test databases: registered hosts with node keys from a seeded RNG, a few users and routes.

use gatehouse_common::nodekeys::NodeKey;
use gatehouse_common::policy::{
    hash_password, Database, HashCost, Host, Route, UnixAccount, UnixGroup, User,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// alice's password in [`test_database`].
pub const ALICE_PASSWORD: &str = "alice-secret";
/// alice's uid (and primary gid) in [`test_database`].
pub const ALICE_UID: u32 = 100_001;
/// The gid of the Unix group `ops` (members: alice) in [`test_database`].
pub const OPS_GID: u32 = 100_100;

/// A host an agent (or a test client) can authenticate as.
#[derive(Clone)]
pub struct TestHost {
    pub name: String,
    pub key: NodeKey,
}

/// A database with `agents` hosts named agent0000.., plus web1; alice may SSH to web* and
/// agent*, bob is locked; alice has a Unix identity and is in the Unix group `ops`, bob has
/// none. Keys and hashes come from a seeded RNG, so every run is the same.
pub fn test_database(agents: usize) -> (Database, Vec<TestHost>) {
    let mut rng = StdRng::seed_from_u64(0x6761_7465);
    let mut hosts: Vec<TestHost> = (0..agents)
        .map(|n| TestHost {
            name: format!("agent{n:04}"),
            key: NodeKey::generate(&mut rng),
        })
        .collect();
    hosts.push(TestHost {
        name: "web1".into(),
        key: NodeKey::generate(&mut rng),
    });
    let db = Database {
        hosts: hosts
            .iter()
            .map(|h| Host {
                name: h.name.clone(),
                addresses: Vec::new(),
                node_key: h.key.to_hex(),
                groups: Vec::new(),
                may_ask_for_others: false,
            })
            .collect(),
        host_groups: Vec::new(),
        users: vec![
            User {
                name: "alice".into(),
                password_hash: hash_password(ALICE_PASSWORD, &mut rng, HashCost::Fast)
                    .expect("hash"),
                locked: false,
                classes: Vec::new(),
                routes: ["SSH:*->alice@web*", "SSH:*->alice@agent*"]
                    .into_iter()
                    .map(|rule| Route {
                        rule: rule.into(),
                        window: None,
                        expires: None,
                    })
                    .collect(),
                unix: Some(UnixAccount {
                    uid: ALICE_UID,
                    gid: ALICE_UID,
                    gecos: "Alice".into(),
                    home: "/home/alice".into(),
                    shell: "/bin/sh".into(),
                }),
            },
            User {
                name: "bob".into(),
                password_hash: String::new(),
                locked: true,
                classes: Vec::new(),
                routes: vec![Route {
                    rule: "SSH:*->bob@*".into(),
                    window: None,
                    expires: None,
                }],
                unix: None,
            },
        ],
        unix_groups: vec![UnixGroup {
            name: "ops".into(),
            gid: OPS_GID,
            members: vec!["alice".into()],
        }],
        ..Database::default()
    };
    (db, hosts)
}
