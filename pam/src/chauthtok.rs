//! `pam_sm_chauthtok`: a Gatehouse user changes their own password (passwd), behind the same
//! traits as the other stages (`logic`). Pure apart from what the traits do.
//!
//! libpam runs the password stack twice (docs/AGENT.md, "The PAM module"):
//! - PAM_PRELIM_CHECK: is this a Gatehouse user at all (an authorize, as `knows_user`)? If not,
//!   PAM_IGNORE, so pam_unix changes a local account's password. If so, the current password
//!   is asked for (unless an earlier module stored it as PAM_OLDAUTHTOK) and checked by the
//!   agent, as a login's is, so a wrong one is known before new ones are typed. **Always**,
//!   also when root runs `passwd alice`: a Gatehouse password is the user's on every managed
//!   host, not this host's to reset, so root here proves the old one like anyone (an admin
//!   resets with `gatehouse-admin user passwd` on the master).
//! - PAM_UPDATE_AUTHTOK: the new password is PAM_AUTHTOK when `use_authtok` (an earlier module,
//!   say pam_pwquality, asked for it and checked it), or with `try_first_pass` if one is there;
//!   otherwise it is asked for twice without echo, and two that differ are PAM_AUTHTOK_ERR.
//!   Then the agent is asked to change it; the master's refusal (the rule the new password
//!   broke) is shown to the user as it is.

use super::codes::*;
use super::logic::{Agent, PamHandle};
use super::options::Options;
use crate::logic::{knows_user, no_decision};
use gatehouse_common::wire::{MAX_PASSWORD_LEN, MAX_USER_LEN};
use gatehouse_local::{ChangeOutcome, LocalRequest, LocalResponse};
use zeroize::Zeroizing;

/// `flags` bit of the first pass (libpam).
pub const PAM_PRELIM_CHECK: i32 = 0x4000;
/// `flags` bit of the second pass.
pub const PAM_UPDATE_AUTHTOK: i32 = 0x2000;

/// The prompts.
pub const PROMPT_CURRENT: &str = "Current Gatehouse password: ";
pub const PROMPT_NEW: &str = "New Gatehouse password: ";
pub const PROMPT_AGAIN: &str = "Retype new Gatehouse password: ";

/// What the user is told when the two new passwords differ.
pub const MISMATCH: &str = "Sorry, the passwords do not match; password not changed.";
/// What the user is told when the current password is not accepted (one sentence for a wrong
/// password, an unknown or locked account: the servers say no more).
pub const WRONG_CURRENT: &str =
    "The current Gatehouse password is not accepted; password not changed.";

/// `pam_sm_chauthtok` with libpam's `flags`.
pub fn chauthtok(
    pam: &mut impl PamHandle,
    agent: &impl Agent,
    options: &Options,
    flags: i32,
) -> i32 {
    let user = match pam.user() {
        Ok(user) if !user.is_empty() && user.len() <= MAX_USER_LEN => user,
        // No Gatehouse user has such a name: the local modules decide.
        Ok(_) => return PAM_IGNORE,
        Err(code) => return code,
    };
    // Asked in both passes (the module keeps nothing between them): a local account must
    // never be held up by Gatehouse, and its passwd never reach the agent with a password.
    match knows_user(agent, &user) {
        Some(false) => return PAM_IGNORE,
        Some(true) => {}
        None => {
            pam.message(
                true,
                "Gatehouse cannot be reached; password not changed. Try again later.",
            );
            pam.log(&format!(
                "password change for `{user}`: no answer from the Gatehouse agent"
            ));
            return PAM_AUTHINFO_UNAVAIL;
        }
    }
    let code = if flags & PAM_PRELIM_CHECK != 0 {
        prelim(pam, agent, &user)
    } else if flags & PAM_UPDATE_AUTHTOK != 0 {
        update(pam, agent, options, &user)
    } else {
        pam.log("pam_sm_chauthtok called with neither PAM_PRELIM_CHECK nor PAM_UPDATE_AUTHTOK");
        PAM_SERVICE_ERR
    };
    if options.debug {
        pam.log(&format!(
            "password change ({}) for `{user}`: {code}",
            if flags & PAM_PRELIM_CHECK != 0 {
                "prelim"
            } else {
                "update"
            }
        ));
    }
    code
}

/// The first pass: the current password, asked for (or an earlier module's) and checked.
fn prelim(pam: &mut impl PamHandle, agent: &impl Agent, user: &str) -> i32 {
    let old = match pam.old_authtok() {
        Some(old) => old,
        None => match pam.prompt_password(PROMPT_CURRENT) {
            Ok(old) => old,
            Err(code) => return code,
        },
    };
    if old.is_empty() || old.len() > MAX_PASSWORD_LEN {
        pam.message(true, WRONG_CURRENT);
        return PAM_AUTH_ERR;
    }
    let request = LocalRequest::Authenticate {
        user: user.to_string(),
        password: old.clone(),
        host: String::new(),
    };
    match agent.ask(&request) {
        // An expired (or soon expiring) password is right, and is why passwd runs: accepted.
        Ok(LocalResponse::AuthOk { .. } | LocalResponse::AuthOkAging { .. }) => {
            match pam.set_old_authtok(&old) {
                Ok(()) => PAM_SUCCESS,
                Err(code) => code,
            }
        }
        Ok(LocalResponse::AuthFail { .. }) => {
            pam.message(true, WRONG_CURRENT);
            PAM_AUTH_ERR
        }
        other => unanswered(pam, other),
    }
}

/// The second pass: the new password, then the change.
fn update(pam: &mut impl PamHandle, agent: &impl Agent, options: &Options, user: &str) -> i32 {
    let Some(old) = pam.old_authtok() else {
        // libpam runs the first pass before this one: only a stack that skipped it gets here.
        pam.log("password change: no current password from the first pass (PAM_OLDAUTHTOK)");
        return PAM_AUTHTOK_RECOVERY_ERR;
    };
    let new = match new_password(pam, options) {
        Ok(new) => new,
        Err(code) => return code,
    };
    if new.is_empty() || new.len() > MAX_PASSWORD_LEN {
        pam.message(
            true,
            &format!("A password must be 1 to {MAX_PASSWORD_LEN} bytes; password not changed."),
        );
        return PAM_AUTHTOK_ERR;
    }
    let request = LocalRequest::ChangePassword {
        user: user.to_string(),
        old_password: old,
        new_password: new,
    };
    match agent.ask(&request) {
        Ok(LocalResponse::PasswordChange(outcome)) => match outcome {
            ChangeOutcome::Changed => {
                pam.log(&format!("Gatehouse password of `{user}` changed"));
                PAM_SUCCESS
            }
            ChangeOutcome::Refused { rule } => {
                pam.message(true, &format!("Password not changed: {rule}"));
                PAM_AUTHTOK_ERR
            }
            ChangeOutcome::Failed => {
                pam.message(true, WRONG_CURRENT);
                PAM_AUTHTOK_ERR
            }
            ChangeOutcome::Unavailable { why } => {
                // Not "not changed": a lost answer leaves it unknown, and `why` says which.
                pam.message(true, &format!("Gatehouse password change: {why}"));
                pam.log(&format!("password change for `{user}` unavailable: {why}"));
                PAM_AUTHINFO_UNAVAIL
            }
        },
        other => unanswered(pam, other),
    }
}

/// The new password: PAM_AUTHTOK with `use_authtok` (required) or `try_first_pass` (if set),
/// else typed twice. The one typed is stored as PAM_AUTHTOK for the modules after this one.
fn new_password(pam: &mut impl PamHandle, options: &Options) -> Result<Zeroizing<String>, i32> {
    if options.use_authtok || options.try_first_pass {
        if let Some(new) = pam.authtok() {
            return Ok(new);
        }
        if options.use_authtok {
            pam.log("use_authtok: no new password from an earlier module (PAM_AUTHTOK)");
            return Err(PAM_AUTHTOK_ERR);
        }
    }
    let new = pam.prompt_password(PROMPT_NEW)?;
    let again = pam.prompt_password(PROMPT_AGAIN)?;
    if new != again {
        pam.message(true, MISMATCH);
        return Err(PAM_AUTHTOK_ERR);
    }
    pam.set_authtok(&new)?;
    Ok(new)
}

/// No answer to the question asked: the agent is unreachable, or answered an error or
/// something else. The user is told; the log has why; the code is a login's
/// (`logic::no_decision`).
fn unanswered(pam: &mut impl PamHandle, answer: Result<LocalResponse, String>) -> i32 {
    pam.message(
        true,
        "Gatehouse did not answer; password not changed. Try again later.",
    );
    no_decision(pam, &answer)
}

// Tests: `chauthtok_tests.rs`, a child of `logic`'s tests (their fake PAM handle and agent).
