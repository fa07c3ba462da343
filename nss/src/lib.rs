//! `libnss_gatehouse.so.2`: the glibc NSS module that shows Gatehouse's Unix identities on a
//! managed host (`passwd: files gatehouse`, `group: files gatehouse` in /etc/nsswitch.conf).
//! Build: `cargo build --release -p nss_gatehouse`, then install
//! `target/release/libnss_gatehouse.so` as `libnss_gatehouse.so.2` in the library directory
//! (README, "Logins on a managed host").
//!
//! - `ffi`: the `_nss_gatehouse_*` entry points (the only unsafe code), the errno contract
//!   and the guard that no panic crosses into glibc;
//! - `pack`: copying an entry into the caller's buffer (pure; ERANGE when it does not fit);
//! - `guard`: never asking from inside the agent, never recursing.
//!
//! Enumeration (`getent passwd` without a key) lists nothing, as SSSD does by default: a
//! directory of 100,000 users is not something every `ls -l` should fetch.

mod ffi;
mod guard;
mod pack;
