//! The `lockout` section of the master's config: the default policy and per-class ones.
//!
//! ```ron
//! lockout: (
//!     failures: 6,      // wrong passwords that lock (0: never lock)
//!     window_s: 60,     // ...counted within this many seconds
//!     lock_s: 600,      // how long the lockout lasts
//!     classes: { "admins": (failures: 3, lock_s: 3600) },  // unset fields: the defaults above
//! )
//! ```
//!
//! Pure: serde types and their checked conversion. Only the master decides lockouts, so only
//! its config has this section.

use super::tracker::{LockoutPolicy, MAX_FAILURES};
use gatehouse_common::config::ConfigError;
use gatehouse_common::policy::UserStanding;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Longest window a policy may count failures in: one day (86,400 s). Longer only keeps
/// failures in memory for no gain: a guesser then spreads guesses over days anyway.
pub const MAX_WINDOW_S: u64 = 86_400;
/// Longest lockout: 30 days (2,592,000 s). Beyond that a lockout is an account disable: use
/// `gatehouse-admin user lock`.
pub const MAX_LOCK_S: u64 = 30 * 86_400;

/// The section as written, and each class's policy inside it (the same fields; a class's
/// unset fields take the section's values, and the section's the built-in defaults).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockoutFile {
    #[serde(default)]
    failures: Option<u32>,
    #[serde(default)]
    window_s: Option<u64>,
    #[serde(default)]
    lock_s: Option<u64>,
    /// Class name → its policy (at the top only: classes do not nest). A user in several
    /// classes gets the first of its classes (in the user's order) that has one, as routes
    /// are tried in order.
    #[serde(default)]
    classes: BTreeMap<String, LockoutFile>,
}

/// Checked lockout settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockoutConfig {
    pub default: LockoutPolicy,
    pub classes: BTreeMap<String, LockoutPolicy>,
}

impl LockoutConfig {
    /// Checks the section read from `file` (named in errors).
    pub fn from_file(f: &LockoutFile, file: &Path) -> Result<Self, ConfigError> {
        let default = policy(f, &LockoutPolicy::default(), file, "lockout")?;
        let classes = f
            .classes
            .iter()
            .map(|(class, p)| {
                let field = format!("lockout.classes.{class}");
                if !p.classes.is_empty() {
                    let message = "classes do not nest: give each class its own entry";
                    return Err(ConfigError::invalid(
                        file,
                        &format!("{field}.classes"),
                        message,
                    ));
                }
                policy(p, &default, file, &field).map(|p| (class.clone(), p))
            })
            .collect::<Result<_, _>>()?;
        Ok(LockoutConfig { default, classes })
    }

    /// The policy for a user: its first class that has one, else the default.
    pub fn policy_for(&self, user: &UserStanding<'_>) -> LockoutPolicy {
        user.classes()
            .find_map(|class| self.classes.get(class))
            .copied()
            .unwrap_or(self.default)
    }
}

fn policy(
    p: &LockoutFile,
    base: &LockoutPolicy,
    file: &Path,
    field: &str,
) -> Result<LockoutPolicy, ConfigError> {
    let failures = p.failures.unwrap_or(base.failures);
    if failures > MAX_FAILURES {
        return Err(ConfigError::invalid(
            file,
            &format!("{field}.failures"),
            format!("expected at most {MAX_FAILURES} (0 turns the lockout off)"),
        ));
    }
    let seconds = |name: &str, value: Option<u64>, default: Duration, max: u64| {
        let value = value.unwrap_or(default.as_secs());
        if (1..=max).contains(&value) {
            Ok(Duration::from_secs(value))
        } else {
            Err(ConfigError::invalid(
                file,
                &format!("{field}.{name}"),
                format!("expected 1 to {max} seconds"),
            ))
        }
    };
    Ok(LockoutPolicy {
        failures,
        window: seconds("window_s", p.window_s, base.window, MAX_WINDOW_S)?,
        lock_for: seconds("lock_s", p.lock_s, base.lock_for, MAX_LOCK_S)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_common::config::parse_ron;
    use gatehouse_common::policy::{Database, PolicySnapshot};

    fn config(text: &str) -> Result<LockoutConfig, ConfigError> {
        let path = Path::new("master.ron");
        LockoutConfig::from_file(&parse_ron(path, text)?, path)
    }

    #[test]
    fn defaults_are_freeipas_and_classes_inherit_what_they_leave_out() {
        assert_eq!(config("()").unwrap().default, LockoutPolicy::default());
        let c =
            config(r#"(failures: 4, lock_s: 120, classes: {"admins": (failures: 2)})"#).unwrap();
        let admins = LockoutPolicy {
            failures: 2,
            window: Duration::from_secs(60),
            lock_for: Duration::from_secs(120),
        };
        assert_eq!(c.classes["admins"], admins);
        let db: Database = parse_ron(
            Path::new("db.ron"),
            r#"(user_classes: [UserClass(name: "ops"), UserClass(name: "admins")],
                users: [User(name: "root", classes: ["ops", "admins"]), User(name: "al")])"#,
        )
        .unwrap();
        let snapshot = PolicySnapshot::compile(&db).unwrap();
        let of = |user| c.policy_for(&snapshot.user_standing(user).unwrap());
        assert_eq!(of("root"), admins);
        assert_eq!(of("al").failures, 4);
    }

    #[test]
    fn out_of_range_values_are_refused_by_field() {
        for (text, message) in [
            (
                "(failures: 1001)",
                "master.ron: field `lockout.failures`: expected at most 1000 (0 turns the lockout off)",
            ),
            (
                "(window_s: 0)",
                "master.ron: field `lockout.window_s`: expected 1 to 86400 seconds",
            ),
            (
                r#"(classes: {"ops": (lock_s: 9999999)})"#,
                "master.ron: field `lockout.classes.ops.lock_s`: expected 1 to 2592000 seconds",
            ),
            (
                r#"(classes: {"ops": (classes: {"dba": ()})})"#,
                "master.ron: field `lockout.classes.ops.classes`: classes do not nest: give each class its own entry",
            ),
        ] {
            assert_eq!(config(text).unwrap_err().to_string(), message);
        }
        assert_eq!(config("(failures: 0)").unwrap().default.failures, 0);
    }
}
