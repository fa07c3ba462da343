//! The policy engine: the security database model (RON), access-route parsing and matching, and
//! the decisions a worker makes. Pure: time is passed in; argon2 verification is CPU work only.
//!
//! Flow: [`Database::load`] (or a shipped copy) → [`PolicySnapshot::compile`] (all parsing and
//! cross-checks, once) → [`PolicySnapshot::apply`] per change (the next snapshot, sharing all
//! it did not touch) → [`PolicySnapshot::authorize`] / [`PolicySnapshot::authenticate`] per
//! request, and [`PolicySnapshot::node_keys`] for the handshake key store. docs/POLICY.md is the
//! admin-facing description of the rules; keep the two in step.
//!
//! - [`model`]: serde types of the database file.
//! - [`change`]: one admin mutation ([`Change`]) and [`apply`] on the model (edit, then
//!   compile whole): the reference the incremental path is tested against.
//! - `compile`: database → snapshot, [`PolicyError`]; the snapshot is persistent.
//! - `edit`: [`PolicySnapshot::apply`], a change in O(what it touches); `entities`: the
//!   checked inserts and removals both are made of; `export`: the snapshot read back as the
//!   model (one entity, all in order, the whole [`Database`]).
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
mod edit;
mod entities;
mod export;
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

pub use change::{apply, Change, ChangeError, RouteTarget};
pub use compile::{PolicyError, PolicySnapshot, RouteOwner, UserStanding};
pub use decide::Decision;
pub use edit::Applied;
pub use export::Positioned;
pub use model::{
    Database, Host, HostGroup, Lockout, PasswordRecord, Route, UnixAccount, UnixGroup, User,
    UserClass,
};
pub use name_hash::{NameHasher, PersistentMap};
pub use password::{hash_password, HashCost, PasswordHashError};
pub use route::RouteParseError;
pub use time::{PolicyTime, TimeParseError};
pub use window::WindowParseError;
