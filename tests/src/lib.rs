//! Test harness shared by the integration tests: temporary directories, test databases, the
//! real `gatehouse-replica` and `gatehouse-master` binaries as child processes, a blocking protocol client built on the
//! real `ClientSession`, and a UDP prober. Everything listens on 127.0.0.1 with ports the
//! kernel picks; every wait has a bound so a broken server fails a test instead of hanging it.

pub mod admin;
pub mod agent;
pub mod agentd;
pub mod audit;
pub mod client;
pub mod cut_proxy;
pub mod dbgen;
pub mod driving;
pub mod fleet;
pub mod loadgen_cli;
pub mod local_users;
pub mod metrics;
pub mod netns;
pub mod process;
pub mod repl_peer;
pub mod replication;
pub mod requests;
pub mod service_manager;
pub mod sim;

pub use client::{probe, Client, ClientFailure};
pub use fleet::{test_database, TestHost, ALICE_PASSWORD, ALICE_UID, OPS_GID};
pub use process::{
    bin_path, start_master, start_replica, start_replica_wrapped, write_private, MasterFiles,
    ServerProcess, TestDir,
};

use std::time::Duration;

/// Upper bound on any single wait in a test (a read, a process exit). Generous, because the
/// CI machine may be slow; a healthy run never gets near it.
pub const WAIT_LIMIT: Duration = Duration::from_secs(15);

/// A port nothing listens on (bound, then closed: connects are refused at once).
pub fn dead_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}
