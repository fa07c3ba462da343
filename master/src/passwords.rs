//! The `password_policy` section of the master's config and its check when a password is set
//! (`gatehouse-admin user passwd`): the default rules and per-class ones, and an optional
//! dictionary file read once at start.
//!
//! ```ron
//! password_policy: (
//!     min_length: 12,            // characters
//!     min_classes: 1,            // of lower case, upper case, digits, other
//!     dictionary: true,          // refuse words of dictionary_file
//!     dictionary_file: Some("/usr/share/dict/words"),
//!     max_age_days: 0,           // 0: passwords never expire
//!     warn_days: 7,              // warn this many days before the expiry
//!     history: 5,                // not one of the last 5 passwords (0: off, at most 24)
//!     classes: { "admins": (min_length: 16, min_classes: 3, max_age_days: 90) },
//! )
//! ```
//!
//! A password's age is resolved to times when it is set (see `policy::aging`): a changed
//! `max_age_days` or `warn_days` applies to each user at their next password change
//! (`gatehouse-admin user expire` forces one now).
//!
//! Only the master sets passwords, so only its config has this section. The checks are the
//! pure `policy::password_rules`; this reads the file and picks a user's rules.

use gatehouse_common::config::ConfigError;
use gatehouse_common::policy::aging::MAX_AGE_DAYS;
use gatehouse_common::policy::password_rules::{self, PasswordRules, RuleBroken};
use gatehouse_common::policy::Database;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Largest dictionary file read (64 MiB): the big word lists are a few MiB; the cap stops a
/// wrong path (a disk image) from filling the master's memory.
pub const MAX_DICTIONARY_BYTES: u64 = 64 * 1024 * 1024;

/// The section as written; a class's entry has the same fields (unset: the section's).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicyFile {
    #[serde(default)]
    min_length: Option<usize>,
    #[serde(default)]
    min_classes: Option<u8>,
    #[serde(default)]
    dictionary: Option<bool>,
    #[serde(default)]
    max_age_days: Option<u32>,
    #[serde(default)]
    warn_days: Option<u32>,
    #[serde(default)]
    history: Option<u8>,
    /// One word a line (relative to the config file); only in the section, not in a class.
    #[serde(default)]
    dictionary_file: Option<PathBuf>,
    #[serde(default)]
    classes: BTreeMap<String, PasswordPolicyFile>,
}

/// Checked settings with the dictionary loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub default: PasswordRules,
    pub classes: BTreeMap<String, PasswordRules>,
    pub dictionary: HashSet<String>,
}

fn rules(
    f: &PasswordPolicyFile,
    base: &PasswordRules,
    file: &Path,
    field: &str,
) -> Result<PasswordRules, ConfigError> {
    let rules = PasswordRules {
        min_length: f.min_length.unwrap_or(base.min_length),
        min_classes: f.min_classes.unwrap_or(base.min_classes),
        dictionary: f.dictionary.unwrap_or(base.dictionary),
        max_age_days: f.max_age_days.unwrap_or(base.max_age_days),
        warn_days: f.warn_days.unwrap_or(base.warn_days),
        history: f.history.unwrap_or(base.history),
    };
    let invalid =
        |name: &str, why: String| Err(ConfigError::invalid(file, &format!("{field}.{name}"), why));
    for (name, days) in [
        ("max_age_days", rules.max_age_days),
        ("warn_days", rules.warn_days),
    ] {
        if days > MAX_AGE_DAYS {
            return invalid(name, format!("must be 0..={MAX_AGE_DAYS} days"));
        }
    }
    if usize::from(rules.history) > password_rules::MAX_HISTORY {
        return invalid(
            "history",
            format!("must be 0..={}", password_rules::MAX_HISTORY),
        );
    }
    if !(1..=password_rules::MAX_LENGTH).contains(&rules.min_length) {
        return Err(ConfigError::invalid(
            file,
            &format!("{field}.min_length"),
            format!("must be 1..={}", password_rules::MAX_LENGTH),
        ));
    }
    if !(1..=4).contains(&rules.min_classes) {
        return Err(ConfigError::invalid(
            file,
            &format!("{field}.min_classes"),
            "must be 1..=4",
        ));
    }
    Ok(rules)
}

impl PasswordPolicy {
    /// Checks the section from config `file` (directory `base`) and reads the dictionary.
    pub fn from_file(
        f: &PasswordPolicyFile,
        file: &Path,
        base: &Path,
    ) -> Result<Self, ConfigError> {
        let default = rules(f, &PasswordRules::default(), file, "password_policy")?;
        let mut classes = BTreeMap::new();
        for (class, c) in &f.classes {
            let field = format!("password_policy.classes.{class}");
            if !c.classes.is_empty() || c.dictionary_file.is_some() {
                return Err(ConfigError::invalid(
                    file,
                    &field,
                    "a class sets min_length, min_classes, dictionary, max_age_days, warn_days \
                     and history only",
                ));
            }
            classes.insert(class.clone(), rules(c, &default, file, &field)?);
        }
        let dictionary = match &f.dictionary_file {
            None => HashSet::new(),
            Some(path) => {
                let path = base.join(path);
                let invalid = |why: String| {
                    ConfigError::invalid(file, "password_policy.dictionary_file", why)
                };
                let size = std::fs::metadata(&path)
                    .map_err(|e| invalid(format!("{}: {e}", path.display())))?
                    .len();
                if size > MAX_DICTIONARY_BYTES {
                    return Err(invalid(format!(
                        "{} is {size} bytes, over {MAX_DICTIONARY_BYTES}",
                        path.display()
                    )));
                }
                let bytes = std::fs::read(&path)
                    .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
                password_rules::dictionary(&String::from_utf8_lossy(&bytes))
            }
        };
        Ok(PasswordPolicy {
            default,
            classes,
            dictionary,
        })
    }

    /// The rules for `user` in `db`: its first class that has rules, else the default.
    pub fn rules_for(&self, db: &Database, user: &str) -> PasswordRules {
        db.users
            .iter()
            .find(|u| u.name == user)
            .and_then(|u| u.classes.iter().find_map(|c| self.classes.get(c)))
            .copied()
            .unwrap_or(self.default)
    }

    /// Checks a new password for `user`.
    pub fn check(&self, db: &Database, user: &str, password: &str) -> Result<(), RuleBroken> {
        password_rules::check(password, user, &self.rules_for(db, user), &self.dictionary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_common::policy::User;

    #[test]
    fn a_class_overrides_the_default_and_the_first_class_wins() {
        let parse = |text: &str| -> PasswordPolicyFile {
            gatehouse_common::config::parse_ron(Path::new("m.ron"), text).unwrap()
        };
        let file = parse(
            r#"(min_length: 10, classes: {"admins": (min_length: 16, min_classes: 3), "ops": (min_length: 14)})"#,
        );
        let policy = PasswordPolicy::from_file(&file, Path::new("m.ron"), Path::new(".")).unwrap();
        let user = |name: &str, classes: &[&str]| User {
            name: name.into(),
            password_hash: String::new(),
            locked: false,
            classes: classes.iter().map(|c| c.to_string()).collect(),
            routes: Vec::new(),
            unix: None,
        };
        let db = Database {
            users: vec![user("bob", &[]), user("carol", &["ops", "admins"])],
            ..Database::default()
        };
        assert_eq!(policy.rules_for(&db, "bob").min_length, 10);
        let carol = policy.rules_for(&db, "carol");
        assert_eq!((carol.min_length, carol.min_classes), (14, 1));
        assert!(policy.check(&db, "bob", "tenletters").is_ok());
        assert!(policy.check(&db, "carol", "tenletters").is_err());
        let aged = parse(r#"(max_age_days: 90, history: 3, classes: {"ops": (warn_days: 14)})"#);
        let aged = PasswordPolicy::from_file(&aged, Path::new("m.ron"), Path::new(".")).unwrap();
        let (bob, carol) = (aged.rules_for(&db, "bob"), aged.rules_for(&db, "carol"));
        assert_eq!((bob.max_age_days, bob.warn_days, bob.history), (90, 7, 3));
        assert_eq!(
            (carol.max_age_days, carol.warn_days, carol.history),
            (90, 14, 3)
        );
        for bad in [
            "(history: 25)",
            "(max_age_days: 36501)",
            r#"(classes: {"a": (warn_days: 99999)})"#,
        ] {
            let err = PasswordPolicy::from_file(&parse(bad), Path::new("m.ron"), Path::new("."));
            assert!(err.is_err(), "{bad}");
        }
        let nested = parse(r#"(classes: {"a": (classes: {"b": ()})})"#);
        assert!(PasswordPolicy::from_file(&nested, Path::new("m.ron"), Path::new(".")).is_err());
    }
}
