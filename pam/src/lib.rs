//! `pam_gatehouse.so`: the PAM module that lets the Gatehouse agent decide logins (sshd, su,
//! sudo, login). Build: `cargo build --release -p pam_gatehouse`, then install
//! `target/release/libpam_gatehouse.so` as `pam_gatehouse.so` in the PAM module directory
//! (README, "Logins on a managed host").
//!
//! - `logic`: the decisions, behind the `PamHandle` and `Agent` traits (unit-tested with
//!   fakes for every PAM code the module returns);
//! - `chauthtok`: the password stage (a user's own password change), behind the same traits;
//! - `options`: the module arguments;
//! - `codes`: the PAM constants;
//! - `ffi`: the only unsafe code — the `pam_sm_*` entry points, the handle and the
//!   conversation — and the guard that no panic crosses into the C caller.

mod chauthtok;
mod codes;
mod ffi;
mod logic;
mod options;
