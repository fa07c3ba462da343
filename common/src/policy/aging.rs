//! Password age, as shadow(5) keeps it: when the master sets a password it resolves the
//! user's policy (maximum age, warning period) into two times stored with the user
//! ([`PasswordRecord`]); every server then compares them with its own clock, so replicas need
//! no policy and a changed policy applies at each user's next password change.
//!
//! Pure: `now` is an argument. [`schedule`] is the master's half (policy → times); the
//! compiled times and [`PolicySnapshot::password_aging`] are the half every server runs after
//! a *correct* password (never before: a wrong password gets the one failure whatever the
//! account's age, docs/SECURITY.md "Password age"). [`apply_set_password`] and
//! [`apply_expire`] are what the `SetPassword` and `ExpirePassword` changes do.

use super::compile::{PolicyError, PolicySnapshot};
use super::model::{Database, PasswordRecord};
use super::password_rules::MAX_HISTORY;
use super::time::PolicyTime;
use crate::types::{AuthFailure, PasswordAging};
use crate::wire::Response;
use std::collections::HashMap;

/// Seconds in a day: ages and warnings are set in days, as in shadow(5).
pub const SECS_PER_DAY: i64 = 86_400;
/// Longest maximum age or warning period accepted, days (100 years): beyond it a time would
/// leave the range the policy's civil-time code is tested for; "never" is 0.
pub const MAX_AGE_DAYS: u32 = 36_500;

/// A user's compiled password times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CompiledAge {
    pub expires: Option<PolicyTime>,
    pub warn_from: Option<PolicyTime>,
}

/// The expiry and warning start of a password set at `now` under a maximum age of
/// `max_age_days` (0: never expires, and then no warning) and a warning period of `warn_days`
/// before it (0: no warning; longer than the maximum age: warns from the start).
pub fn schedule(
    now: PolicyTime,
    max_age_days: u32,
    warn_days: u32,
) -> (Option<PolicyTime>, Option<PolicyTime>) {
    if max_age_days == 0 {
        return (None, None);
    }
    let days = |d: u32| i64::from(d.min(MAX_AGE_DAYS)) * SECS_PER_DAY;
    let expires = PolicyTime::from_unix(now.unix().saturating_add(days(max_age_days)));
    let warn_from = (warn_days > 0)
        .then(|| PolicyTime::from_unix(expires.unix().saturating_sub(days(warn_days))));
    (Some(expires), warn_from)
}

/// The aging of a password with these times at `now`: expired from `expires` on; a warning
/// from `warn_from` until then, counting whole days left rounded up; else nothing.
pub fn aging_at(
    expires: Option<PolicyTime>,
    warn_from: Option<PolicyTime>,
    now: PolicyTime,
) -> Option<PasswordAging> {
    let expires = expires?;
    if now >= expires {
        return Some(PasswordAging::Expired);
    }
    if warn_from.is_some_and(|w| now >= w) {
        let left = expires.unix() - now.unix();
        let days = (left + SECS_PER_DAY - 1) / SECS_PER_DAY;
        return Some(PasswordAging::ExpiresIn {
            days: u16::try_from(days).unwrap_or(u16::MAX),
        });
    }
    None
}

impl PolicySnapshot {
    /// The aging of `user`'s password at `now`. Call it only after the password verified:
    /// it is what the agent is told on top of a success, never instead of a failure.
    pub fn password_aging(&self, user: &str, now: PolicyTime) -> Option<PasswordAging> {
        let age = self.users.get(user)?.age;
        aging_at(age.expires, age.warn_from, now)
    }

    /// The wire answer to `user`'s authenticate whose outcome (from
    /// [`PolicySnapshot::authenticate`]) is `outcome`: the one `AuthFail` for any failure;
    /// on success `AuthOk`, or `AuthOkAging` when the password has expired or is in its
    /// warning period.
    pub fn authenticate_answer(
        &self,
        user: &str,
        outcome: Result<(), AuthFailure>,
        now: PolicyTime,
    ) -> Response {
        match outcome {
            Err(_) => Response::AuthFail,
            Ok(()) => match self.password_aging(user, now) {
                None => Response::AuthOk,
                Some(aging) => Response::AuthOkAging(aging),
            },
        }
    }
}

/// The records by user: each names a known user, at most once, with parsable times and at
/// most [`MAX_HISTORY`] earlier hashes.
pub(crate) fn compile_records<'a>(
    db: &'a Database,
    users: &HashMap<&str, usize>,
) -> Result<HashMap<&'a str, CompiledAge>, PolicyError> {
    let mut out = HashMap::with_capacity(db.password_records.len());
    for record in &db.password_records {
        let user = record.user.as_str();
        if !users.contains_key(user) {
            return Err(PolicyError::UnknownPasswordRecordUser { user: user.into() });
        }
        if record.history.len() > MAX_HISTORY {
            return Err(PolicyError::TooMuchPasswordHistory {
                user: user.into(),
                count: record.history.len(),
                max: MAX_HISTORY,
            });
        }
        let time = |text: &Option<String>| -> Result<Option<PolicyTime>, PolicyError> {
            text.as_deref()
                .map(|t| {
                    PolicyTime::parse_utc(t).map_err(|error| PolicyError::BadPasswordRecord {
                        user: user.into(),
                        text: t.into(),
                        error,
                    })
                })
                .transpose()
        };
        time(&record.set_at)?;
        let age = CompiledAge {
            expires: time(&record.expires)?,
            warn_from: time(&record.warn_from)?,
        };
        if out.insert(user, age).is_some() {
            return Err(PolicyError::Duplicate {
                kind: "password record",
                name: user.into(),
            });
        }
    }
    Ok(out)
}

/// What `Change::SetPassword` does to the records once the user's hash is `hash` and its
/// previous one was `old`: `old` goes to the front of the history, which keeps the
/// `history - 1` newest (the current password is the first of the last `history`), and the
/// times are replaced.
pub(crate) fn apply_set_password(
    db: &mut Database,
    user: &str,
    old: String,
    set_at: &str,
    times: (&Option<String>, &Option<String>),
    history: u8,
) {
    let record = record_mut(db, user);
    let keep = usize::from(history).saturating_sub(1).min(MAX_HISTORY);
    let mut earlier = std::mem::take(&mut record.history);
    if !old.is_empty() {
        earlier.insert(0, old);
    }
    earlier.truncate(keep);
    record.history = earlier;
    record.set_at = Some(set_at.to_string());
    record.expires = times.0.clone();
    record.warn_from = times.1.clone();
}

/// What `Change::ExpirePassword` does: the password is expired from `at` (no warning first).
pub(crate) fn apply_expire(db: &mut Database, user: &str, at: &str) {
    let record = record_mut(db, user);
    record.expires = Some(at.to_string());
    record.warn_from = None;
}

/// The user's record, made empty if it has none (the user is known to exist).
fn record_mut<'a>(db: &'a mut Database, user: &str) -> &'a mut PasswordRecord {
    let at = match db.password_records.iter().position(|r| r.user == user) {
        Some(at) => at,
        None => {
            db.password_records.push(PasswordRecord {
                user: user.to_string(),
                set_at: None,
                expires: None,
                warn_from: None,
                history: Vec::new(),
            });
            db.password_records.len() - 1
        }
    };
    &mut db.password_records[at]
}

#[cfg(test)]
#[path = "aging_tests.rs"]
mod tests;
