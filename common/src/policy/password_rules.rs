//! Password rules checked when a password is set: a minimum length, a minimum number of
//! character classes (lower case, upper case, digits, anything else), not the user's own name,
//! and optionally not a word of a dictionary (compared case-insensitively, also with digits
//! and symbols stripped from its ends: `Summer2026!` is the word `summer`). A refusal names the
//! rule it broke, for the admin who typed it.
//!
//! Pure: the dictionary is passed in (the master reads its file once at start).

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
}

impl Default for PasswordRules {
    fn default() -> Self {
        PasswordRules {
            min_length: DEFAULT_MIN_LENGTH,
            min_classes: DEFAULT_MIN_CLASSES,
            dictionary: true,
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
            dictionary: true,
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
    fn classes_count_lower_upper_digits_and_the_rest() {
        assert_eq!(classes("abc"), 1);
        assert_eq!(classes("abcD"), 2);
        assert_eq!(classes("abcD4"), 3);
        assert_eq!(classes("abcD4 "), 4);
        assert_eq!(classes("ÄÖü"), 2);
    }
}
