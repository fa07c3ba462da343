//! Password age, as shadow(5) keeps it: when the master sets a password it resolves the
//! user's policy (maximum age, warning period) into two times stored with the user
//! ([`PasswordRecord`]); every server then compares them with its own clock, so replicas need
//! no policy and a changed policy applies at each user's next password change.
//!
//! Pure: `now` is an argument. [`schedule`] is the master's half (policy → times); the
//! compiled times and [`PolicySnapshot::password_aging`] are the half every server runs after
//! a *correct* password (never before: a wrong password gets the one failure whatever the
//! account's age, docs/SECURITY.md "Password age"). [`apply_set_password`] and
//! [`apply_expire`] are what the `SetPassword` and `ExpirePassword` changes do to the model;
//! `record_after_set` and `record_after_expire` the same for the snapshot (`edit.rs`), through
//! the same record logic.

use super::compile::{Name, PasswordRecordEntry, PolicyError, PolicySnapshot};
use super::model::{Database, PasswordRecord};
use super::password_rules::MAX_HISTORY;
use super::time::PolicyTime;
use crate::types::{AuthFailure, PasswordAging};
use crate::wire::Response;
use std::sync::Arc;

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
        let age = self.password_records.get(user)?.age;
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

impl PolicySnapshot {
    /// Sets `record` (checked: a known user, at most [`MAX_HISTORY`] earlier hashes, parsable
    /// times), keeping the place of the user's earlier record; false when nothing changed.
    pub(crate) fn set_password_record(
        &mut self,
        record: PasswordRecord,
    ) -> Result<bool, PolicyError> {
        let user = record.user.as_str();
        if !self.users.contains_key(user) {
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
        let position = match self.password_records.get(user) {
            Some(old) if old.record == record => return Ok(false),
            Some(old) => old.position,
            None => {
                self.next.password_record += 1;
                self.next.password_record - 1
            }
        };
        let name: Name = user.into();
        let entry = PasswordRecordEntry {
            position,
            record,
            age,
        };
        self.password_records.insert(name, Arc::new(entry));
        Ok(true)
    }

    /// `user`'s password record and its position.
    pub fn password_record(&self, user: &str) -> Option<(u64, PasswordRecord)> {
        let entry = self.password_records.get(user)?;
        Some((entry.position, entry.record.clone()))
    }

    /// `user`'s record as `Change::SetPassword` leaves it: see [`set_record`].
    pub(crate) fn record_after_set(
        &self,
        user: &str,
        old: String,
        set_at: &str,
        times: (&Option<String>, &Option<String>),
        history: u8,
    ) -> PasswordRecord {
        let mut record = self.record_or_empty(user);
        set_record(&mut record, old, set_at, times, history);
        record
    }

    /// `user`'s record as `Change::ExpirePassword` leaves it: see [`expire_record`].
    pub(crate) fn record_after_expire(&self, user: &str, at: &str) -> PasswordRecord {
        let mut record = self.record_or_empty(user);
        expire_record(&mut record, at);
        record
    }

    fn record_or_empty(&self, user: &str) -> PasswordRecord {
        match self.password_records.get(user) {
            Some(entry) => entry.record.clone(),
            None => empty_record(user),
        }
    }
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
    set_record(record_mut(db, user), old, set_at, times, history);
}

/// `old` (the hash being replaced) goes to the front of the history, which keeps the
/// `history - 1` newest (the current password is the first of the last `history`), and the
/// times are replaced.
fn set_record(
    record: &mut PasswordRecord,
    old: String,
    set_at: &str,
    times: (&Option<String>, &Option<String>),
    history: u8,
) {
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
    expire_record(record_mut(db, user), at);
}

/// The password is expired from `at`, with no warning before.
fn expire_record(record: &mut PasswordRecord, at: &str) {
    record.expires = Some(at.to_string());
    record.warn_from = None;
}

/// The user's record, made empty if it has none (the user is known to exist).
fn record_mut<'a>(db: &'a mut Database, user: &str) -> &'a mut PasswordRecord {
    let at = match db.password_records.iter().position(|r| r.user == user) {
        Some(at) => at,
        None => {
            db.password_records.push(empty_record(user));
            db.password_records.len() - 1
        }
    };
    &mut db.password_records[at]
}

/// A record with no times and no history.
fn empty_record(user: &str) -> PasswordRecord {
    PasswordRecord {
        user: user.to_string(),
        set_at: None,
        expires: None,
        warn_from: None,
        history: Vec::new(),
    }
}

#[cfg(test)]
#[path = "aging_tests.rs"]
mod tests;
