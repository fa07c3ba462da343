//! A user's own password change (PAM chauthtok → agent → server → master): the request and
//! its four outcomes, and their encoding, shared by the agent↔server wire (`msg`), the
//! replication link (`repl::msg`) and the agent's local protocol (docs/PROTOCOL.md,
//! "Password change"; docs/AGENT.md).
//!
//! Pure; decoding never panics. The outcomes are deliberately few: a wrong old password and
//! an unknown or locked user are the one `Failed` (no oracle); a refusal carries the text of
//! the rule the new password broke (the user must see it to choose another); `Unavailable`
//! says the change was not made, or that whether it was is unknown (a lost answer), and why.

use super::reader::{DecodeError, Reader};
use super::writer::{put_string, truncate_utf8, EncodeError};
use super::{MAX_HOST_LEN, MAX_PASSWORD_LEN, MAX_USER_LEN};
use std::fmt;

/// Longest rule or reason text in an outcome, bytes (256): one sentence ("password not set:
/// rule min_length: at least 12 characters"). Longer text is cut on a character boundary.
pub const MAX_OUTCOME_TEXT_LEN: usize = 256;

/// change_password(user, old password, new password, host). `S` is `String` for a kept
/// request, `&str` for one read in place from a frame. Never printed with its passwords.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ChangePasswordRequest<S = String> {
    pub user: S,
    pub old_password: S,
    pub new_password: S,
    /// The host the user changes it on (empty on the local protocol: the agent's own).
    pub host: S,
}

impl<S: fmt::Debug> fmt::Debug for ChangePasswordRequest<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangePasswordRequest")
            .field("user", &self.user)
            .field("old_password", &"<redacted>")
            .field("new_password", &"<redacted>")
            .field("host", &self.host)
            .finish()
    }
}

impl<S: AsRef<str>> ChangePasswordRequest<S> {
    /// The same request, borrowed.
    pub fn view(&self) -> ChangePasswordRequest<&str> {
        ChangePasswordRequest {
            user: self.user.as_ref(),
            old_password: self.old_password.as_ref(),
            new_password: self.new_password.as_ref(),
            host: self.host.as_ref(),
        }
    }

    /// A copy that owns its strings.
    pub fn to_owned(&self) -> ChangePasswordRequest {
        ChangePasswordRequest {
            user: self.user.as_ref().to_owned(),
            old_password: self.old_password.as_ref().to_owned(),
            new_password: self.new_password.as_ref().to_owned(),
            host: self.host.as_ref().to_owned(),
        }
    }
}

impl ChangePasswordRequest {
    /// Overwrites both passwords with zeros (and empties them).
    pub fn wipe(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.old_password);
        zeroize::Zeroize::zeroize(&mut self.new_password);
    }
}

/// How a password change ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// The master committed the new password; it replicates as any change.
    Changed,
    /// The new password breaks a rule of the user's class: the rule's text, for the user.
    Refused { rule: String },
    /// Not changed: the old password is wrong, or the user is unknown or locked (one answer;
    /// the servers' log and audit trail have the reason).
    Failed,
    /// No change was made, or whether it was is not known (the master was unreachable or did
    /// not answer in time, or the answer was lost): `why`, for the user and the log.
    Unavailable { why: String },
}

const OUTCOME_CHANGED: u8 = 1;
const OUTCOME_REFUSED: u8 = 2;
const OUTCOME_FAILED: u8 = 3;
const OUTCOME_UNAVAILABLE: u8 = 4;

impl ChangeOutcome {
    /// An `Unavailable` outcome.
    pub fn unavailable(why: impl Into<String>) -> Self {
        ChangeOutcome::Unavailable { why: why.into() }
    }

    /// Short name for logs and the audit detail.
    pub fn name(&self) -> &'static str {
        match self {
            ChangeOutcome::Changed => "changed",
            ChangeOutcome::Refused { .. } => "refused",
            ChangeOutcome::Failed => "failed",
            ChangeOutcome::Unavailable { .. } => "unavailable",
        }
    }
}

/// Appends the request's fields (no kind byte); refused if a field is over its limit.
pub fn put_change_request<S: AsRef<str>>(
    out: &mut Vec<u8>,
    r: &ChangePasswordRequest<S>,
) -> Result<(), EncodeError> {
    put_string(out, "user", MAX_USER_LEN, r.user.as_ref())?;
    put_string(
        out,
        "old_password",
        MAX_PASSWORD_LEN,
        r.old_password.as_ref(),
    )?;
    put_string(
        out,
        "new_password",
        MAX_PASSWORD_LEN,
        r.new_password.as_ref(),
    )?;
    put_string(out, "host", MAX_HOST_LEN, r.host.as_ref())
}

/// Reads the request's fields in place.
pub fn read_change_request<'a>(
    r: &mut Reader<'a>,
) -> Result<ChangePasswordRequest<&'a str>, DecodeError> {
    Ok(ChangePasswordRequest {
        user: r.str("user", MAX_USER_LEN)?,
        old_password: r.str("old_password", MAX_PASSWORD_LEN)?,
        new_password: r.str("new_password", MAX_PASSWORD_LEN)?,
        host: r.str("host", MAX_HOST_LEN)?,
    })
}

/// Appends an outcome. Never fails: a text is cut to [`MAX_OUTCOME_TEXT_LEN`].
pub fn put_outcome(out: &mut Vec<u8>, outcome: &ChangeOutcome) {
    let (code, text) = match outcome {
        ChangeOutcome::Changed => (OUTCOME_CHANGED, None),
        ChangeOutcome::Refused { rule } => (OUTCOME_REFUSED, Some(rule)),
        ChangeOutcome::Failed => (OUTCOME_FAILED, None),
        ChangeOutcome::Unavailable { why } => (OUTCOME_UNAVAILABLE, Some(why)),
    };
    out.push(code);
    if let Some(text) = text {
        let text = truncate_utf8(text, MAX_OUTCOME_TEXT_LEN);
        // Cannot fail: within the limit.
        let _ = put_string(out, "text", MAX_OUTCOME_TEXT_LEN, text);
    }
}

/// Reads an outcome.
pub fn read_outcome(r: &mut Reader<'_>) -> Result<ChangeOutcome, DecodeError> {
    Ok(match r.u8()? {
        OUTCOME_CHANGED => ChangeOutcome::Changed,
        OUTCOME_REFUSED => ChangeOutcome::Refused {
            rule: r.string("rule", MAX_OUTCOME_TEXT_LEN)?,
        },
        OUTCOME_FAILED => ChangeOutcome::Failed,
        OUTCOME_UNAVAILABLE => ChangeOutcome::Unavailable {
            why: r.string("why", MAX_OUTCOME_TEXT_LEN)?,
        },
        code => {
            return Err(DecodeError::UnknownCode {
                field: "change outcome",
                code: code.into(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_round_trip_and_long_text_is_cut_not_refused() {
        let long = "é".repeat(200);
        let cases = [
            ChangeOutcome::Changed,
            ChangeOutcome::Refused {
                rule: "rule min_length: at least 12 characters".into(),
            },
            ChangeOutcome::Failed,
            ChangeOutcome::unavailable("the master is unreachable"),
        ];
        for outcome in cases {
            let mut out = Vec::new();
            put_outcome(&mut out, &outcome);
            let mut r = Reader::new(&out);
            assert_eq!(read_outcome(&mut r).unwrap(), outcome);
            r.finish().unwrap();
        }
        let mut out = Vec::new();
        put_outcome(&mut out, &ChangeOutcome::unavailable(long));
        let ChangeOutcome::Unavailable { why } = read_outcome(&mut Reader::new(&out)).unwrap()
        else {
            panic!("not unavailable")
        };
        assert_eq!(why.len(), MAX_OUTCOME_TEXT_LEN);
        for bad in [&[0u8][..], &[5], &[2, 0xff, 0xff], &[4, 0, 1, 0xc3]] {
            assert!(read_outcome(&mut Reader::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_request_never_prints_its_passwords() {
        let r = ChangePasswordRequest {
            user: "alice",
            old_password: "old-secret",
            new_password: "new-secret",
            host: "web1",
        };
        let text = format!("{r:?}");
        assert!(!text.contains("secret"), "{text}");
        let mut owned = r.to_owned();
        owned.wipe();
        assert!(owned.old_password.is_empty() && owned.new_password.is_empty());
    }
}
