//! Gatehouse shared parts. Everything here is pure (no sockets, clocks or threads) except
//! `config`, which reads files, and `os`, which makes system calls (process limits, secret
//! files, peer credentials), and `service`, which talks to the service manager (notifications,
//! watchdog, signals, log output).

pub mod audit;
pub mod backoff;
#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
pub mod crypto;
pub mod identity;
pub mod nodekeys;
pub mod os;
pub mod policy;
pub mod repl;
pub mod service;
pub mod session;
pub mod types;
pub mod weak_keys;
pub mod wire;
