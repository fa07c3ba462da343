//! The password stage against the fakes: both passes, the old password always asked, the new
//! one typed twice or taken from an earlier module, a mismatch, the master's rule shown,
//! unknown users ignored, and no answer.

use super::*;
use crate::chauthtok::*;
use gatehouse_local::ChangeOutcome;

fn known() -> Result<LocalResponse, String> {
    // alice is a Gatehouse user (an authorize reaches the routes).
    deny(DenyReason::NoMatchingRoute)
}

/// An agent that knows alice, checks her password with `auth` and changes it with `change`.
fn gatehouse(
    auth: Result<LocalResponse, String>,
    change: Result<LocalResponse, String>,
) -> FakeAgent {
    let mut agent = agent(auth);
    agent.authorize = Some(known());
    agent.change = Some(change);
    agent
}

fn changed(outcome: ChangeOutcome) -> Result<LocalResponse, String> {
    Ok(LocalResponse::PasswordChange(outcome))
}

fn auth_ok() -> Result<LocalResponse, String> {
    Ok(LocalResponse::AuthOk { server: server() })
}

fn change_of(old: &str, new: &str) -> LocalRequest {
    LocalRequest::ChangePassword {
        user: "alice".into(),
        old_password: old.to_string().into(),
        new_password: new.to_string().into(),
    }
}

#[test]
fn prelim_asks_and_checks_the_current_password_then_update_asks_the_new_one_twice() {
    let agent = gatehouse(auth_ok(), changed(ChangeOutcome::Changed));
    let opts = options(&[]);
    let mut pam = FakePam::service("passwd").types(&["old pw", "new pw", "new pw"]);
    assert_eq!(
        chauthtok(&mut pam, &agent, &opts, PAM_PRELIM_CHECK),
        PAM_SUCCESS
    );
    assert_eq!(pam.oldauthtok.as_deref(), Some("old pw"));
    assert_eq!(
        chauthtok(&mut pam, &agent, &opts, PAM_UPDATE_AUTHTOK),
        PAM_SUCCESS
    );
    assert_eq!(pam.prompts, [PROMPT_CURRENT, PROMPT_NEW, PROMPT_AGAIN]);
    // The new password is left for the modules after this one.
    assert_eq!(pam.authtok.as_deref(), Some("new pw"));
    assert!(pam.messages.is_empty(), "{:?}", pam.messages);
    assert_eq!(
        agent.asked.borrow().as_slice(),
        [
            knows_alice(),
            alice_authenticates("old pw"),
            knows_alice(),
            change_of("old pw", "new pw"),
        ]
    );
}

#[test]
fn an_expired_current_password_is_accepted_for_the_change_it_calls_for() {
    let expired = Ok(LocalResponse::AuthOkAging {
        aging: PasswordAging::Expired,
        server: server(),
    });
    let agent = gatehouse(expired, changed(ChangeOutcome::Changed));
    let opts = options(&[]);
    let mut pam = FakePam::service("sshd").types(&["old pw", "new pw", "new pw"]);
    assert_eq!(
        chauthtok(&mut pam, &agent, &opts, PAM_PRELIM_CHECK),
        PAM_SUCCESS
    );
    assert_eq!(
        chauthtok(&mut pam, &agent, &opts, PAM_UPDATE_AUTHTOK),
        PAM_SUCCESS
    );
    assert_eq!(
        agent.asked.borrow().last(),
        Some(&change_of("old pw", "new pw"))
    );
}

#[test]
fn a_wrong_current_password_stops_the_change_before_new_ones_are_typed() {
    let agent = gatehouse(auth_fail(), changed(ChangeOutcome::Changed));
    let mut pam = FakePam::service("passwd").types(&["wrong"]);
    let code = chauthtok(&mut pam, &agent, &options(&[]), PAM_PRELIM_CHECK);
    assert_eq!(code, PAM_AUTH_ERR);
    assert_eq!(pam.messages, [(true, WRONG_CURRENT.to_string())]);
    assert_eq!(pam.oldauthtok, None);
    // Without a current password from the first pass, the second changes nothing.
    let code = chauthtok(&mut pam, &agent, &options(&[]), PAM_UPDATE_AUTHTOK);
    assert_eq!(code, PAM_AUTHTOK_RECOVERY_ERR);
    assert!(!agent
        .asked
        .borrow()
        .iter()
        .any(|r| matches!(r, LocalRequest::ChangePassword { .. })));
}

#[test]
fn two_different_new_passwords_are_an_authtok_error_with_a_message() {
    let agent = gatehouse(auth_ok(), changed(ChangeOutcome::Changed));
    let mut pam = FakePam::service("passwd").types(&["new pw", "new pW"]);
    pam.oldauthtok = Some("old pw".into());
    let code = chauthtok(&mut pam, &agent, &options(&[]), PAM_UPDATE_AUTHTOK);
    assert_eq!(code, PAM_AUTHTOK_ERR);
    assert_eq!(pam.messages, [(true, MISMATCH.to_string())]);
    assert_eq!(agent.asked.borrow().as_slice(), [knows_alice()]);
}

#[test]
fn the_rule_the_master_refused_with_is_shown_to_the_user() {
    let rule = "password not set: rule min_length: at least 12 characters";
    let agent = gatehouse(
        auth_ok(),
        changed(ChangeOutcome::Refused { rule: rule.into() }),
    );
    let mut pam = FakePam::service("passwd").types(&["short", "short"]);
    pam.oldauthtok = Some("old pw".into());
    let code = chauthtok(&mut pam, &agent, &options(&[]), PAM_UPDATE_AUTHTOK);
    assert_eq!(code, PAM_AUTHTOK_ERR);
    assert_eq!(
        pam.messages,
        [(true, format!("Password not changed: {rule}"))]
    );
    // Failed (the servers' one answer) and unavailable: each its message and code.
    for (outcome, code, shown) in [
        (
            ChangeOutcome::Failed,
            PAM_AUTHTOK_ERR,
            WRONG_CURRENT.to_string(),
        ),
        (
            ChangeOutcome::unavailable("the master is unreachable"),
            PAM_AUTHINFO_UNAVAIL,
            "Gatehouse password change: the master is unreachable".to_string(),
        ),
    ] {
        let agent = gatehouse(auth_ok(), changed(outcome));
        let mut pam = FakePam::service("passwd").types(&["new pw", "new pw"]);
        pam.oldauthtok = Some("old pw".into());
        assert_eq!(
            chauthtok(&mut pam, &agent, &options(&[]), PAM_UPDATE_AUTHTOK),
            code
        );
        assert_eq!(pam.messages, [(true, shown)]);
    }
}

#[test]
fn use_authtok_takes_the_new_password_from_an_earlier_module_and_never_prompts() {
    let agent = gatehouse(auth_ok(), changed(ChangeOutcome::Changed));
    let opts = options(&["use_authtok"]);
    let mut pam = FakePam::service("passwd").stored("from pwquality");
    pam.oldauthtok = Some("old pw".into());
    let code = chauthtok(&mut pam, &agent, &opts, PAM_UPDATE_AUTHTOK);
    assert_eq!(code, PAM_SUCCESS);
    assert!(pam.prompts.is_empty());
    assert_eq!(
        agent.asked.borrow().last(),
        Some(&change_of("old pw", "from pwquality"))
    );
    // Nothing stored: an error, not a prompt.
    let mut pam = FakePam::service("passwd");
    pam.oldauthtok = Some("old pw".into());
    let code = chauthtok(&mut pam, &agent, &opts, PAM_UPDATE_AUTHTOK);
    assert_eq!(code, PAM_AUTHTOK_ERR);
    assert!(pam.prompts.is_empty());
    // An earlier module's current password (PAM_OLDAUTHTOK) is checked, not asked for again.
    let mut pam = FakePam::service("passwd");
    pam.oldauthtok = Some("old pw".into());
    assert_eq!(
        chauthtok(&mut pam, &agent, &opts, PAM_PRELIM_CHECK),
        PAM_SUCCESS
    );
    assert!(pam.prompts.is_empty());
}

#[test]
fn a_user_gatehouse_does_not_know_is_ignored_in_both_passes() {
    // Whatever ignore_unknown_user says: pam_unix must change a local account's password.
    for args in [&[][..], &["ignore_unknown_user"]] {
        for flags in [PAM_PRELIM_CHECK, PAM_UPDATE_AUTHTOK] {
            let agent = agent(deny(DenyReason::UnknownUser));
            let mut pam = FakePam::service("passwd").types(&["x", "y", "y"]);
            assert_eq!(
                chauthtok(&mut pam, &agent, &options(args), flags),
                PAM_IGNORE
            );
            assert!(pam.prompts.is_empty());
            assert_eq!(agent.asked.borrow().as_slice(), [knows_alice()]);
        }
    }
    let mut pam = FakePam::service("passwd");
    pam.user = Ok(String::new());
    let agent = agent(deny(DenyReason::UnknownUser));
    assert_eq!(
        chauthtok(&mut pam, &agent, &options(&[]), PAM_PRELIM_CHECK),
        PAM_IGNORE
    );
    pam.user = Err(PAM_SYSTEM_ERR);
    assert_eq!(
        chauthtok(&mut pam, &agent, &options(&[]), PAM_PRELIM_CHECK),
        PAM_SYSTEM_ERR
    );
}

#[test]
fn no_answer_from_the_agent_fails_closed_with_a_message() {
    for answer in [
        Err("connection refused".to_string()),
        error(LocalErrorKind::NoServerReachable),
    ] {
        let agent = agent(answer);
        let mut pam = FakePam::service("passwd").types(&["x"]);
        let code = chauthtok(&mut pam, &agent, &options(&[]), PAM_PRELIM_CHECK);
        assert_eq!(code, PAM_AUTHINFO_UNAVAIL);
        assert_eq!(pam.messages.len(), 1);
        assert!(pam.prompts.is_empty());
    }
    // A non-root caller's agent refuses the change itself: a configuration error.
    let agent = gatehouse(auth_ok(), error(LocalErrorKind::PermissionDenied));
    let mut pam = FakePam::service("passwd").types(&["new pw", "new pw"]);
    pam.oldauthtok = Some("old pw".into());
    let code = chauthtok(&mut pam, &agent, &options(&[]), PAM_UPDATE_AUTHTOK);
    assert_eq!(code, PAM_SERVICE_ERR);
    assert_eq!(pam.messages.len(), 1);
    // Neither pass given: refused, nothing asked beyond who the user is.
    let agent = gatehouse(auth_ok(), changed(ChangeOutcome::Changed));
    let mut pam = FakePam::service("passwd");
    assert_eq!(
        chauthtok(&mut pam, &agent, &options(&[]), 0),
        PAM_SERVICE_ERR
    );
}

#[test]
fn debug_never_logs_a_password() {
    let agent = gatehouse(auth_ok(), changed(ChangeOutcome::Changed));
    let opts = options(&["debug"]);
    let mut pam = FakePam::service("passwd").types(&["old-secret", "new-secret", "new-secret"]);
    chauthtok(&mut pam, &agent, &opts, PAM_PRELIM_CHECK);
    chauthtok(&mut pam, &agent, &opts, PAM_UPDATE_AUTHTOK);
    let logs = pam.logs.borrow().join("\n");
    assert!(
        logs.contains("password change (update) for `alice`: 0"),
        "{logs}"
    );
    assert!(!logs.contains("secret"), "{logs}");
}
