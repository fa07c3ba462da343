//! Password rules checked when a password is set: a minimum length, a minimum number of
//! character classes (lower case, upper case, digits, anything else), not the user's own name,
//! and optionally not a word of a dictionary (compared case-insensitively, also with digits
//! and symbols stripped from its ends: `Summer2026!` is the word `summer`). A refusal names the
//! rule it broke, for the admin who typed it.
//!
//! The same rules carry a password's age (maximum age, warning period; see `aging`) and how
//! many earlier passwords may not be set again ([`reuses`], the rule `history`).
//!
//! Pure: the dictionary and the earlier hashes are passed in (the master reads its file once
//! at start); [`reuses`] is argon2 CPU work, one run per remembered password.

use super::password::{verify, Verify};
use std::collections::HashSet;

/// The minimum length when the config names none: 12 characters (NIST SP 800-63B asks for at
/// least 8; 12 is the common floor for accounts that reach servers).
pub const DEFAULT_MIN_LENGTH: usize = 12;
/// Character classes required when the config names none: 1 (length matters more than mixing,
/// NIST SP 800-63B; a site that wants classes sets 3 or 4).
pub const DEFAULT_MIN_CLASSES: u8 = 1;
/// Longest password accepted, characters: the wire's limit for a password (1024 bytes) is the
/// real bound; this keeps argon2's input and the dictionary lookup small.
pub const MAX_LENGTH: usize = 1024;

/// Maximum password age when the config names none: 0, never (NIST SP 800-63B advises
/// against periodic changes; a site that must have them sets `max_age_days`).
pub const DEFAULT_MAX_AGE_DAYS: u32 = 0;
/// Warning period before a password expires when the config names none: 7 days (shadow(5)'s
/// customary PASS_WARN_AGE).
pub const DEFAULT_WARN_DAYS: u32 = 7;
/// Passwords remembered when the config names no number: the last 5 (the current one
/// included) may not be set again. Each costs one argon2 verification when a password is set.
pub const DEFAULT_HISTORY: u8 = 5;
/// Most passwords a history may remember: 24 (the largest common setting, Windows' "enforce
/// password history"); it bounds a password change at 24 argon2 runs and a user's record at
/// 23 stored hashes.
pub const MAX_HISTORY: usize = 24;

/// One set of rules (the default's, or a user class's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordRules {
    pub min_length: usize,
    pub min_classes: u8,
    /// Refuse passwords found in the dictionary (when one is configured).
    pub dictionary: bool,
    /// Days a password lasts before it expires (0: never).
    pub max_age_days: u32,
    /// Days before the expiry from which a correct password is answered with a warning.
    pub warn_days: u32,
    /// How many of the user's last passwords (the current one included) a new one may not be
    /// (0: any; at most [`MAX_HISTORY`]).
    pub history: u8,
}

impl Default for PasswordRules {
    fn default() -> Self {
        PasswordRules {
            min_length: DEFAULT_MIN_LENGTH,
            min_classes: DEFAULT_MIN_CLASSES,
            dictionary: true,
            max_age_days: DEFAULT_MAX_AGE_DAYS,
            warn_days: DEFAULT_WARN_DAYS,
            history: DEFAULT_HISTORY,
        }
    }
}

/// A rule a password broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleBroken {
    #[error("rule min_length: at least {min} characters (this one has {got})")]
    TooShort { min: usize, got: usize },
    #[error("rule max_length: at most {max} characters")]
    TooLong { max: usize },
    #[error("rule min_classes: at least {min} of lower case, upper case, digits and other characters (this one has {got})")]
    TooFewClasses { min: u8, got: u8 },
    #[error("rule user_name: it contains the user's name")]
    ContainsUserName,
    #[error("rule dictionary: it is a dictionary word (`{word}`)")]
    DictionaryWord { word: String },
    #[error("rule history: it is one of the user's last {history} passwords")]
    Reused { history: u8 },
}

/// The character classes `password` uses (0..=4).
pub fn classes(password: &str) -> u8 {
    let has = |f: fn(char) -> bool| u8::from(password.chars().any(f));
    has(char::is_lowercase)
        + has(char::is_uppercase)
        + has(|c| c.is_ascii_digit())
        + has(|c| !c.is_alphanumeric())
}

/// Checks `password` for `user` against `rules` and `dictionary` (lower-case words).
pub fn check(
    password: &str,
    user: &str,
    rules: &PasswordRules,
    dictionary: &HashSet<String>,
) -> Result<(), RuleBroken> {
    let length = password.chars().count();
    if length < rules.min_length {
        return Err(RuleBroken::TooShort {
            min: rules.min_length,
            got: length,
        });
    }
    if length > MAX_LENGTH {
        return Err(RuleBroken::TooLong { max: MAX_LENGTH });
    }
    let got = classes(password);
    if got < rules.min_classes {
        return Err(RuleBroken::TooFewClasses {
            min: rules.min_classes,
            got,
        });
    }
    let lower = password.to_lowercase();
    if user.chars().count() >= 3 && lower.contains(&user.to_lowercase()) {
        return Err(RuleBroken::ContainsUserName);
    }
    if rules.dictionary && !dictionary.is_empty() {
        let core = lower.trim_matches(|c: char| !c.is_alphabetic());
        for candidate in [lower.as_str(), core] {
            if dictionary.contains(candidate) {
                return Err(RuleBroken::DictionaryWord {
                    word: candidate.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Refuses `password` when it is one of the user's last `history` passwords: the `current`
/// hash, then the `earlier` ones (newest first), each verified with argon2 (so at most
/// `history` runs; an unusable stored hash never matches).
pub fn reuses(
    password: &str,
    current: &str,
    earlier: &[String],
    history: u8,
) -> Result<(), RuleBroken> {
    let remembered = std::iter::once(current)
        .chain(earlier.iter().map(String::as_str))
        .filter(|h| !h.is_empty())
        .take(usize::from(history).min(MAX_HISTORY));
    for hash in remembered {
        if verify(hash, password) == Verify::Match {
            return Err(RuleBroken::Reused { history });
        }
    }
    Ok(())
}

/// A dictionary from a word list's text: one word a line, lower-cased, blank lines and
/// `#` comments skipped.
pub fn dictionary(text: &str) -> HashSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|w| !w.is_empty() && !w.starts_with('#'))
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_is_named_when_broken() {
        let rules = PasswordRules {
            min_length: 12,
            min_classes: 3,
            ..PasswordRules::default()
        };
        let words = dictionary("# common\nsummer\ncorrecthorsebattery\n");
        let check = |p: &str| check(p, "alice", &rules, &words);
        assert_eq!(
            check("Short1!"),
            Err(RuleBroken::TooShort { min: 12, got: 7 })
        );
        assert_eq!(
            check("alllowercaseletters"),
            Err(RuleBroken::TooFewClasses { min: 3, got: 1 })
        );
        assert_eq!(
            check("Alice-is-great-99"),
            Err(RuleBroken::ContainsUserName)
        );
        // A word with digits and symbols around it is still the word.
        assert_eq!(
            check("!!Summer!!2026"),
            Err(RuleBroken::DictionaryWord {
                word: "summer".into()
            })
        );
        assert_eq!(
            check("CorrectHorseBattery7"),
            Err(RuleBroken::DictionaryWord {
                word: "correcthorsebattery".into()
            })
        );
        assert_eq!(check("Tr0ub4dor&3-xyzzy"), Ok(()));
        assert!(check(&"Aa1!".repeat(300)).is_err(), "over the maximum");
        let message = check("Short1!").unwrap_err().to_string();
        assert!(message.starts_with("rule min_length:"), "{message}");
    }

    #[test]
    fn history_refuses_the_last_n_passwords_and_only_those() {
        use crate::policy::{hash_password, password::runs, HashCost};
        use rand::{rngs::StdRng, SeedableRng};
        let hash =
            |p: &str| hash_password(p, &mut StdRng::seed_from_u64(1), HashCost::Fast).unwrap();
        let current = hash("pw-4");
        let earlier = vec![hash("pw-3"), hash("pw-2"), hash("pw-1")];
        let reuses = |p: &str, n: u8| reuses(p, &current, &earlier, n);
        runs::take();
        assert_eq!(reuses("pw-4", 1), Err(RuleBroken::Reused { history: 1 }));
        assert_eq!(reuses("pw-2", 3), Err(RuleBroken::Reused { history: 3 }));
        assert_eq!(runs::take().len(), 4, "stops at the match");
        assert_eq!(reuses("pw-1", 3), Ok(()), "the 4th last is allowed with 3");
        assert_eq!(reuses("pw-new", 5), Ok(()));
        assert_eq!(runs::take().len(), 3 + 4, "one argon2 run per kept hash");
        assert_eq!(reuses("pw-4", 0), Ok(()), "0: history off");
        assert!(runs::take().is_empty());
        let message = RuleBroken::Reused { history: 5 }.to_string();
        assert!(message.starts_with("rule history:"), "{message}");
    }

    #[test]
    fn classes_count_lower_upper_digits_and_the_rest() {
        assert_eq!(classes("abc"), 1);
        assert_eq!(classes("abcD"), 2);
        assert_eq!(classes("abcD4"), 3);
        assert_eq!(classes("abcD4 "), 4);
        assert_eq!(classes("ÄÖü"), 2);
    }
}
