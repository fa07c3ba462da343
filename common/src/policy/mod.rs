//! The policy engine: the security database model (RON), access-route parsing and matching, and
//! the decisions a worker makes. Pure: time is passed in; argon2 verification is CPU work only.
//!
//! Flow: [`Database::load`] (or a shipped copy) → [`PolicySnapshot::compile`] (all parsing and
//! cross-checks, once) → [`PolicySnapshot::authorize`] / [`PolicySnapshot::authenticate`] per
//! request, and [`PolicySnapshot::node_keys`] for the handshake key store. docs/POLICY.md is the
//! admin-facing description of the rules; keep the two in step.
//!
//! - [`model`]: serde types of the database file.
//! - [`change`]: one admin mutation ([`Change`]) and [`apply`], all-or-nothing.
//! - `compile`: database → snapshot, [`PolicyError`].
//! - `decide`: authorize / authenticate, [`Decision`].
//! - `identities`: Unix identities checked and indexed; [`PolicySnapshot::lookup`].
//! - [`route_check`]: which hosts a route's patterns name (admin warnings and shows).
//! - `route`, `pattern`, `window`, [`time`]: rule syntax, globs, weekday/time windows, civil time.
//! - [`aging`]: password expiry and warning (schedules, records, the answer after a correct
//!   password).
//! - [`password`]: argon2id hashing and verification; [`password_rules`]: what a new password
//!   must be.

pub mod aging;
pub mod change;
mod compile;
mod decide;
mod identities;
pub mod model;
mod name_hash;
pub mod password;
pub mod password_rules;
mod pattern;
mod route;
pub mod route_check;
pub mod time;
mod window;

#[cfg(test)]
mod tests;

pub use change::{apply, apply_compiled, Change, ChangeError, RouteTarget};
pub use compile::{PolicyError, PolicySnapshot, RouteOwner, UserStanding};
pub use decide::Decision;
pub use model::{
    Database, Host, HostGroup, Lockout, PasswordRecord, Route, UnixAccount, UnixGroup, User,
    UserClass,
};
pub use password::{hash_password, HashCost, PasswordHashError};
pub use route::RouteParseError;
pub use time::{PolicyTime, TimeParseError};
pub use window::WindowParseError;
