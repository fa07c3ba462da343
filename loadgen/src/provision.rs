//! Provisioning for a load test: a security database with one registered host (and node key)
//! per simulated agent, plus `web1`, the users alice (password known), bob (locked) and
//! mallory (a password never sent: the mix's wrong passwords are hers), and
//! routes so the mix gets both allows and denies; and the identities file the simulated agents
//! authenticate with.
//!
//! [`provision`] is pure (keys come from a seeded RNG, so a seed gives the same files); the
//! `write_*`/`load_*` functions do the file I/O. Called by `gatehouse-loadgen provision`, the
//! demo and the tests.
//!
//! LOAD-TEST ONLY: alice's password is hashed with `HashCost::Fast` (far too weak for a real
//! account) and is a published constant. One hash per user, not per agent, so ten thousand
//! agents provision in well under a second.

use gatehouse_common::config::{load_ron, ConfigError};
use gatehouse_common::nodekeys::NodeKey;
use gatehouse_common::policy::{hash_password, Database, HashCost, Host, Route, User};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// alice's password in a provisioned database (load tests only).
pub const ALICE_PASSWORD: &str = "loadgen-alice";
/// mallory's password: never sent (the mix's wrong passwords are mallory's).
const MALLORY_PASSWORD: &str = "loadgen-mallory";
/// The host alice may SSH to; requests name it as their to-host.
pub const ALLOWED_HOST: &str = "web1";
/// Most agents one provisioning makes (default cap 100 000): host names have five digits, and
/// far beyond what one load-generator machine can hold connections for.
pub const MAX_AGENTS: usize = 100_000;
/// File names inside the output directory.
pub const DB_FILE: &str = "db.ron";
pub const IDENTITIES_FILE: &str = "identities.ron";

/// One simulated agent: a registered host name and its node key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub host: String,
    pub key: NodeKey,
}

/// The identities file: `(identities: [(host: "agent00000", key: "<64 hex>"), ...])`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitiesFile {
    pub identities: Vec<IdentityEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityEntry {
    pub host: String,
    pub key: String,
}

/// Why provisioning or loading identities failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("--agents {0} is out of range (1..={MAX_AGENTS})")]
    AgentCount(usize),
    #[error("{0}")]
    Hash(#[from] gatehouse_common::policy::PasswordHashError),
    #[error("cannot serialise: {0}")]
    Serialise(#[from] ron::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{path}: identity {host:?} has a bad key: {why}")]
    BadKey {
        path: String,
        host: String,
        why: String,
    },
    #[error("{path}: has no identities")]
    NoIdentities { path: String },
}

/// The database and identities for `agents` simulated agents named `agent00000`...
pub fn provision(agents: usize, seed: u64) -> Result<(Database, Vec<Identity>), ProvisionError> {
    if agents == 0 || agents > MAX_AGENTS {
        return Err(ProvisionError::AgentCount(agents));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let identities: Vec<Identity> = (0..agents)
        .map(|n| Identity {
            host: format!("agent{n:05}"),
            key: NodeKey::generate(&mut rng),
        })
        .collect();
    let web1 = NodeKey::generate(&mut rng);
    let host = |name: &str, key: &NodeKey| Host {
        name: name.to_string(),
        addresses: Vec::new(),
        node_key: key.to_hex(),
        groups: Vec::new(),
        may_ask_for_others: false,
    };
    let mut hosts: Vec<Host> = identities.iter().map(|i| host(&i.host, &i.key)).collect();
    hosts.push(host(ALLOWED_HOST, &web1));
    let route = |rule: &str| Route {
        rule: rule.to_string(),
        window: None,
        expires: None,
    };
    let db = Database {
        hosts,
        host_groups: Vec::new(),
        users: vec![
            User {
                name: "alice".into(),
                password_hash: hash_password(ALICE_PASSWORD, &mut rng, HashCost::Fast)?,
                locked: false,
                classes: Vec::new(),
                routes: vec![route("SSH:*->alice@web*"), route("SSH:*->alice@agent*")],
                unix: None,
            },
            User {
                name: "bob".into(),
                password_hash: String::new(),
                locked: true,
                classes: Vec::new(),
                routes: vec![route("SSH:*->bob@*")],
                unix: None,
            },
            User {
                name: "mallory".into(),
                password_hash: hash_password(MALLORY_PASSWORD, &mut rng, HashCost::Fast)?,
                locked: false,
                classes: Vec::new(),
                routes: Vec::new(),
                unix: None,
            },
        ],
        ..Database::default()
    };
    Ok((db, identities))
}

/// Writes a private file (0600): both files hold node keys, and the replica refuses a
/// database file others can read.
fn write_file(path: &Path, text: &str) -> Result<(), ProvisionError> {
    use gatehouse_common::os::secure_file::{create_private_file, Existing};
    use std::io::Write;
    let written = create_private_file(path, Existing::Replace)
        .and_then(|mut file| file.write_all(text.as_bytes()));
    written.map_err(|source| ProvisionError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `dir/db.ron` and `dir/identities.ron` (creating `dir`).
pub fn write_files(
    dir: &Path,
    db: &Database,
    identities: &[Identity],
) -> Result<(), ProvisionError> {
    std::fs::create_dir_all(dir).map_err(|source| ProvisionError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let pretty = ron::ser::PrettyConfig::default();
    write_file(
        &dir.join(DB_FILE),
        &ron::ser::to_string_pretty(db, pretty.clone())?,
    )?;
    let file = IdentitiesFile {
        identities: identities
            .iter()
            .map(|i| IdentityEntry {
                host: i.host.clone(),
                key: i.key.to_hex(),
            })
            .collect(),
    };
    write_file(
        &dir.join(IDENTITIES_FILE),
        &ron::ser::to_string_pretty(&file, pretty)?,
    )
}

/// Reads an identities file written by [`write_files`].
pub fn load_identities(path: &Path) -> Result<Vec<Identity>, ProvisionError> {
    let file: IdentitiesFile = load_ron(path)?;
    let shown = path.display().to_string();
    if file.identities.is_empty() {
        return Err(ProvisionError::NoIdentities { path: shown });
    }
    file.identities
        .into_iter()
        .map(|e| match NodeKey::from_hex(&e.key) {
            Ok(key) => Ok(Identity { host: e.host, key }),
            Err(why) => Err(ProvisionError::BadKey {
                path: shown.clone(),
                host: e.host,
                why: why.to_string(),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_common::policy::PolicySnapshot;

    #[test]
    fn a_seed_gives_the_same_keys_and_the_database_compiles() {
        let (db, ids) = provision(3, 9).unwrap();
        let (_, again) = provision(3, 9).unwrap();
        assert_eq!(ids, again);
        assert_eq!(ids[2].host, "agent00002");
        let names: Vec<&str> = db.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["agent00000", "agent00001", "agent00002", "web1"]);
        let snapshot = PolicySnapshot::compile(&db).unwrap();
        assert_eq!(snapshot.node_keys().get("agent00001"), Some(&ids[1].key));
    }

    #[test]
    fn files_round_trip() {
        let dir = std::env::temp_dir().join(format!("gh-provision-{}", std::process::id()));
        let (db, ids) = provision(5, 1).unwrap();
        write_files(&dir, &db, &ids).unwrap();
        assert_eq!(load_identities(&dir.join(IDENTITIES_FILE)).unwrap(), ids);
        assert_eq!(Database::load(&dir.join(DB_FILE)).unwrap(), db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn zero_agents_is_refused() {
        assert!(matches!(
            provision(0, 1),
            Err(ProvisionError::AgentCount(0))
        ));
    }
}
