//! Every file in conf/ parses and passes its checks, so the examples admins copy are valid.

use gatehouse_common::policy::{Database, PolicySnapshot};
use gatehouse_replica::config::ReplicaConfig;
use std::path::{Path, PathBuf};

fn conf_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf")
}

#[test]
fn every_example_config_and_database_loads() {
    let mut checked = 0;
    for entry in std::fs::read_dir(conf_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".ron") {
            continue;
        }
        if name.contains("-db") {
            let db = Database::load(&path).unwrap_or_else(|e| panic!("{e}"));
            PolicySnapshot::compile(&db).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else if name.starts_with("replica") {
            let config = ReplicaConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            if let gatehouse_replica::config::Source::File(db) = &config.source {
                assert!(db.exists(), "{name}: database file missing");
            }
        } else if name.starts_with("master") {
            gatehouse_master::config::MasterConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        } else if name.starts_with("agent") {
            gatehouse_agent::config::AgentConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
        } else {
            panic!("{name}: no test knows this kind of file; add it here");
        }
        checked += 1;
    }
    assert!(checked >= 3, "expected the example files in conf/");
}

#[test]
fn a_config_error_names_the_file_and_the_field() {
    let dir = gatehouse_tests::TestDir::new("conf");
    let path = dir.path().join("bad.ron");
    std::fs::write(
        &path,
        r#"(listen: "127.0.0.1:1", database: "x.ron", bridge: (max_connections: "many"))"#,
    )
    .unwrap();
    let err = ReplicaConfig::load(&path).unwrap_err().to_string();
    assert!(err.contains("bad.ron"), "{err}");
    assert!(err.contains("bridge.max_connections"), "{err}");
}

#[test]
fn the_example_replica_config_shows_the_bridge_defaults() {
    let config = ReplicaConfig::load(&conf_dir().join("replica.ron")).unwrap();
    assert_eq!(
        config.bridge,
        gatehouse_replica::bridge::BridgeConfig::default()
    );
}

#[test]
fn the_example_master_config_shows_the_lockout_defaults() {
    let config = gatehouse_master::config::MasterConfig::load(&conf_dir().join("master.ron"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.lockout,
        gatehouse_master::lockout::config::LockoutConfig::default()
    );
}

#[test]
fn the_example_configs_show_the_audit_journal_defaults() {
    use gatehouse_replica::audit::{AnswerAfter, AuditConfig};
    let replica = ReplicaConfig::load(&conf_dir().join("replica-follower.ron")).unwrap();
    let master = gatehouse_master::config::MasterConfig::load(&conf_dir().join("master.ron"))
        .unwrap_or_else(|e| panic!("{e}"));
    let replica = replica.audit.expect("a follower keeps a journal");
    let master = master.audit.journal.expect("the master keeps a journal");
    for journal in [&replica, &master] {
        assert_eq!(*journal, AuditConfig::in_dir(journal.dir.clone()));
        assert_eq!(journal.answer_after, AnswerAfter::Written);
    }
    assert_ne!(replica.dir, master.dir, "one server per journal directory");
}
