//! Test databases: registered hosts with node keys from a seeded RNG, a few users and routes.

use gatehouse_common::nodekeys::NodeKey;
use gatehouse_common::policy::{hash_password, Database, HashCost, Host, Route, User};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// alice's password in [`test_database`].
pub const ALICE_PASSWORD: &str = "alice-secret";

/// A host an agent (or a test client) can authenticate as.
#[derive(Clone)]
pub struct TestHost {
    pub name: String,
    pub key: NodeKey,
}

/// A database with `agents` hosts named agent0000.., plus web1; alice may SSH to web* and
/// agent*, bob is locked. Keys and hashes come from a seeded RNG, so every run is the same.
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
            },
        ],
        ..Database::default()
    };
    (db, hosts)
}
