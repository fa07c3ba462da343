//! Node keys that must never protect a real host: all zeros (an unset key), the keys
//! published in this repository's example database and docs (anyone can read them), and a
//! key shared by two hosts (either host could then speak as the other). Pure.
//!
//! Checked by the master when a database is imported and when a host is added, and by the
//! agent and a following replica for their own key at start (`os::key_file`). A database
//! that already holds such a key still loads, so an upgraded site keeps running; the admin
//! replaces the key (docs/SECURITY.md, "Secrets at rest and in memory").

use crate::nodekeys::{NodeKey, NODE_KEY_LEN};
use crate::policy::Host;
use std::collections::HashMap;

/// The node keys of `conf/example-db.ron` (and any doc that quotes it), and every other
/// 64-hex-digit value the repository publishes, lower-case hex. A
/// test reads every `.ron` and `.md` file in `conf/` and `docs/` and fails if a 64-hex-digit
/// key there is missing from this list.
pub const PUBLISHED_EXAMPLE_KEYS: &[&str] = &[
    "4f1c2a9e8d7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa998877",
    "a7e3b1d9c5f2086e4a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f",
    "0d15ea5e0ddba11c0ffee0000000000000000000000000000000000000000db1",
    // Not node keys but 64 hex digits anyone can read, so refused as node keys all the same:
    // the example master public key (conf/replica-follower.ron) and the values of the
    // replication link's worked example (docs/PROTOCOL.md).
    "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
    "ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d59",
    "5dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22",
    "be161c07cec4aa1d3681395cdd49b529fca7b0b7000fdd20f6a5d9d78a2f2e32",
    "1c5f55da855b79dbcdc540962d60f1481518334664d611be76a74dace5c3cc66",
    "3545eea02c7287668b3a287df288a2d3a8090cc14e95570e8ab23d666864f50e",
    "cdd21d93da9c846e8180359d72b87fff3d10857a611e399a2a8327f266d60e6f",
    "09c2afd98e747271b2034fd37a86e268ffcfe6babfe22408f2ddf037951d3968",
];

/// What is wrong with one key on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakKey {
    #[error("the node key is all zeros")]
    AllZero,
    #[error("the node key is one published in Gatehouse's example database, known to anyone")]
    PublishedExample,
}

/// Why a set of hosts' keys was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    #[error("host `{host}`: {weak}; generate a fresh key for it")]
    Weak { host: String, weak: WeakKey },
    #[error("hosts `{first}` and `{second}` have the same node key, so either could speak as the other; give each its own")]
    Shared { first: String, second: String },
}

impl NodeKey {
    /// Why this key must not be used, if it must not.
    pub fn weakness(&self) -> Option<WeakKey> {
        if self.0 == [0; NODE_KEY_LEN] {
            return Some(WeakKey::AllZero);
        }
        let published = PUBLISHED_EXAMPLE_KEYS
            .iter()
            .filter_map(|hex| NodeKey::from_hex(hex).ok())
            .any(|example| example == *self);
        published.then_some(WeakKey::PublishedExample)
    }
}

/// Checks `key`, about to be given to a new host `name`, against `hosts` (the database's
/// hosts now): not weak, not any existing host's. Linear in the hosts.
pub fn check_added_key(hosts: &[Host], name: &str, key: &NodeKey) -> Result<(), KeyRefusal> {
    if let Some(weak) = key.weakness() {
        return Err(KeyRefusal::Weak {
            host: name.to_string(),
            weak,
        });
    }
    let same = hosts
        .iter()
        .find(|h| NodeKey::from_hex(&h.node_key).is_ok_and(|k| k == *key));
    match same {
        Some(first) => Err(KeyRefusal::Shared {
            first: first.name.clone(),
            second: name.to_string(),
        }),
        None => Ok(()),
    }
}

/// Checks every host's key: none weak, no two alike. Linear in the hosts. A key that is not
/// 64 hex digits is left to the database's own checks (`PolicySnapshot::compile`), which
/// name it.
pub fn check_host_keys(hosts: &[Host]) -> Result<(), KeyRefusal> {
    // Keyed by NodeKey so every copy is wiped when the map is dropped.
    let mut seen: HashMap<NodeKey, &str> = HashMap::with_capacity(hosts.len());
    for host in hosts {
        let Ok(key) = NodeKey::from_hex(&host.node_key) else {
            continue;
        };
        if let Some(weak) = key.weakness() {
            return Err(KeyRefusal::Weak {
                host: host.name.clone(),
                weak,
            });
        }
        if let Some(first) = seen.insert(key, &host.name) {
            return Err(KeyRefusal::Shared {
                first: first.to_string(),
                second: host.name.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn host(name: &str, key: &str) -> Host {
        Host {
            name: name.into(),
            addresses: Vec::new(),
            node_key: key.into(),
            groups: Vec::new(),
            may_ask_for_others: false,
        }
    }

    #[test]
    fn zero_and_published_keys_are_weak_and_random_ones_are_not() {
        assert_eq!(NodeKey([0; 32]).weakness(), Some(WeakKey::AllZero));
        for hex in PUBLISHED_EXAMPLE_KEYS {
            let key = NodeKey::from_hex(&hex.to_uppercase()).unwrap();
            assert_eq!(key.weakness(), Some(WeakKey::PublishedExample), "{hex}");
        }
        assert_eq!(NodeKey([7; 32]).weakness(), None);
    }

    #[test]
    fn a_shared_or_weak_key_is_named_with_its_hosts_and_an_unreadable_one_left_to_compile() {
        let a = "ab".repeat(32);
        let b = "cd".repeat(32);
        check_host_keys(&[host("web1", &a), host("web2", &b)]).unwrap();
        assert_eq!(
            check_host_keys(&[host("web1", &a), host("web2", &b), host("db1", &a)]),
            Err(KeyRefusal::Shared {
                first: "web1".into(),
                second: "db1".into()
            })
        );
        assert_eq!(
            check_host_keys(&[host("web1", &"0".repeat(64))]),
            Err(KeyRefusal::Weak {
                host: "web1".into(),
                weak: WeakKey::AllZero
            })
        );
        assert!(matches!(
            check_host_keys(&[host("web1", PUBLISHED_EXAMPLE_KEYS[1])]),
            Err(KeyRefusal::Weak {
                weak: WeakKey::PublishedExample,
                ..
            })
        ));
        assert_eq!(check_host_keys(&[host("web1", "00")]), Ok(()));
    }

    #[test]
    fn an_added_key_must_be_strong_and_new() {
        let a = "ab".repeat(32);
        let hosts = [host("web1", &a)];
        check_added_key(&hosts, "web2", &NodeKey([0xcd; 32])).unwrap();
        assert_eq!(
            check_added_key(&hosts, "web2", &NodeKey([0xab; 32])),
            Err(KeyRefusal::Shared {
                first: "web1".into(),
                second: "web2".into()
            })
        );
        assert!(matches!(
            check_added_key(&hosts, "web2", &NodeKey([0; 32])),
            Err(KeyRefusal::Weak {
                weak: WeakKey::AllZero,
                ..
            })
        ));
    }

    /// Every 64-hex-digit word in conf/ and docs/ is on the published list, so a key added to
    /// an example later cannot be forgotten here.
    #[test]
    fn every_key_in_the_examples_and_docs_is_on_the_published_list() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut found = 0;
        for dir in ["conf", "docs"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let wanted = path.extension().is_some_and(|e| e == "ron" || e == "md");
                if !wanted {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for word in text.split(|c: char| !c.is_ascii_hexdigit()) {
                    if word.len() == 64 {
                        found += 1;
                        let lower = word.to_ascii_lowercase();
                        assert!(
                            PUBLISHED_EXAMPLE_KEYS.contains(&lower.as_str()),
                            "{}: key {word} is published but not in PUBLISHED_EXAMPLE_KEYS",
                            path.display()
                        );
                    }
                }
            }
        }
        assert!(found >= 3, "expected the example database's keys");
    }
}
