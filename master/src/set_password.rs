//! The one path that sets a user's password on the master, [`set_password`]: the admin's
//! `gatehouse-admin user passwd` calls it, and so does a user's own change arriving through
//! an agent (PAM chauthtok), so both meet the same rules, history and age.
//!
//! Not pure: it reads the state, runs argon2 (the history check and the new hash) and commits
//! one `Change::SetPassword`. The checks themselves are the pure `policy::password_rules` and
//! `policy::aging`; this picks the user's rules (`crate::passwords`) and puts them together.

use crate::passwords::PasswordPolicy;
use crate::state::MasterState;
use crate::store::StoreError;
use gatehouse_common::policy::aging::schedule;
use gatehouse_common::policy::password_rules::{reuses, RuleBroken};
use gatehouse_common::policy::{hash_password, Change, Database, HashCost, PolicyTime};
use rand::rngs::OsRng;

/// Why a password was not set. The message says what to do (and, for a broken rule, which).
#[derive(Debug, thiserror::Error)]
pub enum SetPasswordError {
    /// The empty password: password login is removed by locking the user, not this way.
    #[error("empty password; to remove password login, lock the user instead")]
    Empty,
    /// No such user.
    #[error("unknown user `{0}`")]
    UnknownUser(String),
    /// The password breaks one of the user's rules (named in the message).
    #[error("password not set: {0}")]
    Rule(#[from] RuleBroken),
    /// Hashing failed (a bad cost setting; never for a good password).
    #[error("password not set: {0}")]
    Hash(String),
    /// The store refused or failed the change.
    #[error(transparent)]
    NotCommitted(#[from] StoreError),
}

/// Sets `user`'s password to `password` at `now`, if it meets the user's rules (length,
/// classes, name, dictionary) and is not one of the user's last `history` passwords; records
/// the expiry and warning times its class's maximum age and warning period give. Returns the
/// change's sequence number.
pub fn set_password(
    state: &MasterState,
    policy: &PasswordPolicy,
    user: &str,
    password: &str,
    now: PolicyTime,
) -> Result<u64, SetPasswordError> {
    if password.is_empty() {
        return Err(SetPasswordError::Empty);
    }
    // The rules and the remembered hashes, read once; the argon2 work runs outside the read.
    // From the published snapshot: the user alone, never a copy of the database.
    let db = state.policy().load_full();
    let Some((_, found)) = db.user(user) else {
        return Err(SetPasswordError::UnknownUser(user.to_string()));
    };
    let current = found.password_hash.clone();
    let earlier = db
        .password_record(user)
        .map(|(_, r)| r.history)
        .unwrap_or_default();
    // The rules read the user's classes: a database of that user alone.
    let just_the_user = Database {
        users: vec![found],
        ..Database::default()
    };
    let checked = policy.check(&just_the_user, user, password);
    let rules = policy.rules_for(&just_the_user, user);
    checked?;
    reuses(password, &current, &earlier, rules.history)?;
    let hash = hash_password(password, &mut OsRng, HashCost::Standard)
        .map_err(|e| SetPasswordError::Hash(e.to_string()))?;
    let (expires, warn_from) = schedule(now, rules.max_age_days, rules.warn_days);
    let change = Change::SetPassword {
        user: user.to_string(),
        hash,
        set_at: now.to_string(),
        expires: expires.map(|t| t.to_string()),
        warn_from: warn_from.map(|t| t.to_string()),
        history: rules.history,
    };
    Ok(state.apply(&change)?)
}
