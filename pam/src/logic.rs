//! What the module decides, behind two traits: [`PamHandle`] (what PAM gives and asks) and
//! [`Agent`] (the local agent). The FFI shell (`ffi.rs`) implements them over the real handle
//! and socket; the tests implement them with fakes, so every PAM return code this module can
//! give is tested without libpam or an agent.
//!
//! Pure apart from what the traits do. The rules (docs/AGENT.md, "The PAM module"):
//! - `authenticate`: the password (stored by an earlier module, or asked for) is checked by
//!   the agent. A failed check is one answer whatever the reason (the servers say no more), so
//!   after a failure the module asks whether Gatehouse knows the user at all ([`knows_user`]:
//!   an authorize, whose `unknown_user` denial is still detailed); unknown users are
//!   PAM_USER_UNKNOWN, or PAM_IGNORE with `ignore_unknown_user`. Asking after, not before,
//!   keeps every password check the same work on the servers for known and unknown users.
//! - `acct_mgmt`: authorize with the method of PAM_SERVICE, from PAM_RHOST (else the tty;
//!   su and sudo ask from this host, with the invoking user as the acting one).
//! - Password age, as pam_unix: `authenticate` succeeds with an expired password (the
//!   servers say so only after a correct one) and keeps the age in the PAM handle; an allowed
//!   `acct_mgmt` then answers PAM_NEW_AUTHTOK_REQD with a message for an expired password (the
//!   application asks for a change), or shows "expires in N days" and succeeds.
//! - `chauthtok`: a user's own password change, in `chauthtok.rs`.
//! - No answer from the agent (unreachable, no server reachable and no offline answer, an
//!   untrusted socket): PAM_AUTHINFO_UNAVAIL, so a `required` line fails closed.

use super::codes::*;
use super::options::Options;
use gatehouse_common::types::{DenyReason, Method};
use gatehouse_common::wire::{MAX_PASSWORD_LEN, MAX_USER_LEN};
use gatehouse_local::{LocalErrorKind, LocalRequest, LocalResponse, PasswordAging};
use zeroize::Zeroizing;

/// A PAM item the module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Service,
    Rhost,
    Ruser,
    Tty,
}

/// What the module needs from PAM.
pub trait PamHandle {
    /// The user being authenticated (`pam_get_user`): `Err` is the PAM code to return.
    fn user(&mut self) -> Result<String, i32>;
    /// A string item, if set and valid UTF-8.
    fn item(&self, item: Item) -> Option<String>;
    /// The password an earlier module stored (PAM_AUTHTOK), copied into memory that is wiped
    /// when dropped.
    fn authtok(&self) -> Option<Zeroizing<String>>;
    /// Stores the password for later modules (PAM_AUTHTOK).
    fn set_authtok(&mut self, password: &str) -> Result<(), i32>;
    /// The current password in a password change (PAM_OLDAUTHTOK), wiped when dropped.
    fn old_authtok(&self) -> Option<Zeroizing<String>>;
    /// Stores the current password for the second pass and later modules (PAM_OLDAUTHTOK).
    fn set_old_authtok(&mut self, password: &str) -> Result<(), i32>;
    /// Asks the user for a password without echo (the conversation function). `Err` is the
    /// PAM code to return.
    fn prompt_password(&mut self, prompt: &str) -> Result<Zeroizing<String>, i32>;
    /// Shows the user a message (an error if `error`).
    fn message(&mut self, error: bool, text: &str);
    /// Logs one line to the system log (never a password).
    fn log(&self, text: &str);
    /// Keeps what `authenticate` learnt of the password's age for `acct_mgmt` on the same
    /// handle (`pam_set_data`); `None` clears what an earlier call kept.
    fn keep_aging(&mut self, aging: Option<PasswordAging>);
    /// What `authenticate` kept on this handle, if it ran and the password was aging.
    fn kept_aging(&self) -> Option<PasswordAging>;
}

/// The agent, as the module sees it: one request, one answer, or why there is none.
pub trait Agent {
    fn ask(&self, request: &LocalRequest) -> Result<LocalResponse, String>;
}

/// `pam_sm_authenticate`.
pub fn authenticate(pam: &mut impl PamHandle, agent: &impl Agent, options: &Options) -> i32 {
    let user = match pam.user() {
        Ok(user) if !user.is_empty() && user.len() <= MAX_USER_LEN => user,
        Ok(_) => return unknown_user(options),
        Err(code) => return code,
    };
    let password = match password(pam, options) {
        Ok(password) => password,
        Err(code) => return code,
    };
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        log_decision(
            pam,
            options,
            &user,
            "authenticate",
            "refused locally (empty or too long)",
        );
        return PAM_AUTH_ERR;
    }
    // An empty host: the agent's own (a request is about the host that asks).
    let request = LocalRequest::Authenticate {
        user: user.clone(),
        password,
        host: String::new(),
    };
    let code = match agent.ask(&request) {
        Ok(LocalResponse::AuthOk { .. }) => {
            pam.keep_aging(None);
            PAM_SUCCESS
        }
        // The right password, expired or expiring: authentication succeeds; `acct_mgmt`
        // asks for the change (or warns), as pam_unix does.
        Ok(LocalResponse::AuthOkAging { aging, .. }) => {
            pam.keep_aging(Some(aging));
            PAM_SUCCESS
        }
        Ok(LocalResponse::AuthFail { .. }) => match knows_user(agent, &user) {
            Some(false) => unknown_user(options),
            // Known, or not known to be unknown: the refusal stands.
            Some(true) | None => PAM_AUTH_ERR,
        },
        other => no_decision(pam, &other),
    };
    log_answer(pam, options, &user, "authenticate", code);
    code
}

/// `pam_sm_acct_mgmt`.
pub fn acct_mgmt(pam: &mut impl PamHandle, agent: &impl Agent, options: &Options) -> i32 {
    let user = match pam.user() {
        Ok(user) if !user.is_empty() && user.len() <= MAX_USER_LEN => user,
        Ok(_) => return unknown_user(options),
        Err(code) => return code,
    };
    let service = pam.item(Item::Service).unwrap_or_default();
    let Some(method) = options.method_of(&service) else {
        pam.log(&format!(
            "PAM service `{service}` has no Gatehouse method; add method={service}:LOGIN|SSH|SU|SUDO \
             (or default_method=) to the module's arguments"
        ));
        return PAM_SERVICE_ERR;
    };
    let request = authorize_request(pam, options, method, &user);
    let code = match agent.ask(&request) {
        Ok(LocalResponse::Allow { .. }) => password_age(pam),
        Ok(LocalResponse::Deny { reason, .. }) => match reason {
            DenyReason::UnknownUser => unknown_user(options),
            DenyReason::Locked | DenyReason::Expired => PAM_ACCT_EXPIRED,
            DenyReason::NoMatchingRoute
            | DenyReason::OutsideTimeWindow
            | DenyReason::UnknownHost => PAM_PERM_DENIED,
        },
        other => no_decision(pam, &other),
    };
    log_answer(pam, options, &user, &format!("{request:?}"), code);
    code
}

/// An allowed account's answer given its password's age (kept by `authenticate`): a change
/// required for an expired password, a warning shown in its warning period.
fn password_age(pam: &mut impl PamHandle) -> i32 {
    match pam.kept_aging() {
        None => PAM_SUCCESS,
        Some(aging @ PasswordAging::Expired) => {
            pam.message(true, &aging.message());
            PAM_NEW_AUTHTOK_REQD
        }
        Some(aging @ PasswordAging::ExpiresIn { .. }) => {
            pam.message(false, &aging.message());
            PAM_SUCCESS
        }
    }
}

/// Whether Gatehouse has an account named `user` (with or without a Unix identity): an
/// authorize of a LOGIN to `user` on this host, whose `unknown_user` denial comes before any
/// route is looked at. `None` when there is no decision (no answer, an error, an unknown
/// host): callers then treat the user as known and fail closed. An identity lookup would not
/// do: a Gatehouse user without a Unix identity (root, a local account Gatehouse also
/// decides for) is `NotFound` there, and must not fall through to the local files.
pub(crate) fn knows_user(agent: &impl Agent, user: &str) -> Option<bool> {
    let request = LocalRequest::Authorize {
        method: Method::Login,
        from_host: String::new(),
        from_user: String::new(),
        to_user: user.to_string(),
        to_host: String::new(),
    };
    match agent.ask(&request) {
        Ok(LocalResponse::Deny {
            reason: DenyReason::UnknownUser,
            ..
        }) => Some(false),
        Ok(LocalResponse::Allow { .. }) => Some(true),
        Ok(LocalResponse::Deny { reason, .. }) if reason != DenyReason::UnknownHost => Some(true),
        _ => None,
    }
}

/// The authorize request for `method`: SSH and LOGIN from PAM_RHOST (else the tty, else this
/// host) into `user`; SU and SUDO from this host, with the invoking user (PAM_RUSER; for sudo
/// PAM_USER itself, since sudo authenticates the invoker) becoming the target (PAM_USER for
/// su, `sudo_target` for sudo, which never tells PAM whom it will run as).
fn authorize_request(
    pam: &impl PamHandle,
    options: &Options,
    method: Method,
    user: &str,
) -> LocalRequest {
    let ruser = pam.item(Item::Ruser).unwrap_or_default();
    let (from_host, from_user, to_user) = match method {
        Method::Ssh | Method::Login => {
            let from = pam
                .item(Item::Rhost)
                .filter(|h| !h.is_empty())
                .or_else(|| pam.item(Item::Tty).map(|t| tty_name(&t).to_string()))
                .unwrap_or_default();
            (from, ruser, user.to_string())
        }
        Method::Su => (String::new(), ruser, user.to_string()),
        Method::Sudo => (String::new(), user.to_string(), options.sudo_target.clone()),
    };
    LocalRequest::Authorize {
        method,
        from_host,
        from_user,
        to_user,
        to_host: String::new(),
    }
}

/// `/dev/pts/3` → `pts/3`, `tty1` → `tty1`: routes match the terminal's name.
fn tty_name(tty: &str) -> &str {
    tty.strip_prefix("/dev/").unwrap_or(tty)
}

/// The password: the stored one (use_first_pass, try_first_pass), else asked for and stored.
/// Every copy is wiped when dropped.
fn password(pam: &mut impl PamHandle, options: &Options) -> Result<Zeroizing<String>, i32> {
    let stored = pam.authtok();
    if options.use_first_pass {
        return stored.ok_or_else(|| {
            pam.log("use_first_pass: no password from an earlier module");
            PAM_AUTH_ERR
        });
    }
    if options.try_first_pass {
        if let Some(password) = stored {
            return Ok(password);
        }
    }
    let password = pam.prompt_password("Password: ")?;
    pam.set_authtok(&password)?;
    Ok(password)
}

fn unknown_user(options: &Options) -> i32 {
    if options.ignore_unknown_user {
        PAM_IGNORE
    } else {
        PAM_USER_UNKNOWN
    }
}

/// No decision came back: the agent is unreachable, answered an error, or answered something
/// that does not fit the question. Fails closed.
pub(crate) fn no_decision(pam: &impl PamHandle, answer: &Result<LocalResponse, String>) -> i32 {
    match answer {
        Err(why) => {
            pam.log(&format!("no answer from the Gatehouse agent: {why}"));
            PAM_AUTHINFO_UNAVAIL
        }
        Ok(LocalResponse::Error { kind, message }) => {
            pam.log(&format!(
                "the Gatehouse agent has no decision ({}): {message}",
                kind.name()
            ));
            match kind {
                LocalErrorKind::PermissionDenied
                | LocalErrorKind::BadRequest
                | LocalErrorKind::UnsupportedVersion => PAM_SERVICE_ERR,
                _ => PAM_AUTHINFO_UNAVAIL,
            }
        }
        Ok(other) => {
            pam.log(&format!(
                "unexpected answer from the Gatehouse agent: {other:?}"
            ));
            PAM_SERVICE_ERR
        }
    }
}

fn log_answer(pam: &impl PamHandle, options: &Options, user: &str, what: &str, code: i32) {
    let outcome = match code {
        PAM_SUCCESS => "granted",
        PAM_NEW_AUTHTOK_REQD => "granted once the expired password is changed",
        PAM_IGNORE => "ignored (unknown user)",
        _ => "refused",
    };
    log_decision(pam, options, user, what, outcome);
}

fn log_decision(pam: &impl PamHandle, options: &Options, user: &str, what: &str, outcome: &str) {
    if options.debug {
        pam.log(&format!("{what} for `{user}`: {outcome}"));
    }
}

#[cfg(test)]
#[path = "logic_tests.rs"]
mod tests;
