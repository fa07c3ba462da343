//! Who may ask the agent what, decided per request from the caller's uid as the kernel
//! reported it when the caller connected (`SO_PEERCRED` and friends,
//! `gatehouse_common::os::peer`). Pure; called by `daemon::serve` for every request.
//!
//! The rule (docs/AGENT.md, "Who may ask"): a decision about a login (authorize,
//! authenticate), a password change and the daemon's status are for trusted callers only: root, the agent's own
//! uid and the config's `trusted_uids`, since those are the PAM stacks (sshd, su, sudo,
//! login run as root) and the admins. A password check from any other local user would be a
//! free guessing oracle, and an authorize would let them map the access routes. Identity
//! lookups are open to every uid: NSS runs `getpwnam` in every process on the host (`ls -l`
//! as any user), and what they answer is what `/etc/passwd` shows anyone. The socket is mode
//! 0666 for them (`daemon::setup`); this rule, not the mode, is what keeps decisions to the
//! trusted uids.

use crate::local::LocalRequest;
use gatehouse_common::os::peer::AllowedUids;

/// Which callers a kind of request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Root, the agent's own uid and `trusted_uids`.
    Trusted,
    /// Every local uid that can reach the socket (the socket's mode still applies).
    Anyone,
}

/// The audience of each kind of request. A new request kind must be placed here (the match
/// has no catch-all, so it cannot be forgotten).
pub fn audience(request: &LocalRequest) -> Audience {
    match request {
        LocalRequest::Authorize { .. } => Audience::Trusted,
        LocalRequest::Authenticate { .. } => Audience::Trusted,
        // passwd is setuid root: it asks as root. A user's own process may not (it would be
        // a guessing oracle for the old password, like authenticate).
        LocalRequest::ChangePassword { .. } => Audience::Trusted,
        LocalRequest::Status => Audience::Trusted,
        LocalRequest::Lookup(_) => Audience::Anyone,
    }
}

/// `Ok` if the caller with `uid` may ask `request`; else the message it is answered with.
pub fn check_caller(request: &LocalRequest, uid: u32, trusted: &AllowedUids) -> Result<(), String> {
    match audience(request) {
        Audience::Anyone => Ok(()),
        Audience::Trusted if trusted.allows(uid) => Ok(()),
        Audience::Trusted => Err(format!(
            "permission denied: uid {uid} may not ask this agent for decisions (allowed: {:?}; the agent's trusted_uids setting adds more)",
            trusted.uids()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::samples::{authenticate, authorize, change_password};
    use gatehouse_common::identity::Lookup;

    fn requests() -> Vec<LocalRequest> {
        vec![
            authorize(),
            authenticate(),
            change_password(),
            LocalRequest::Status,
        ]
    }

    fn lookups() -> Vec<LocalRequest> {
        vec![
            Lookup::UserByName("alice".into()),
            Lookup::UserByUid(100_001),
            Lookup::GroupByName("ops".into()),
            Lookup::GroupByGid(100_100),
            Lookup::GroupsOfUser("alice".into()),
        ]
        .into_iter()
        .map(LocalRequest::Lookup)
        .collect()
    }

    #[test]
    fn decisions_password_changes_and_status_are_for_trusted_uids_only() {
        let trusted = AllowedUids::new(990, &[1000]);
        for request in requests() {
            for uid in [0, 990, 1000] {
                assert_eq!(check_caller(&request, uid, &trusted), Ok(()), "{uid}");
            }
            let refused = check_caller(&request, 1001, &trusted).unwrap_err();
            assert!(refused.contains("uid 1001"), "{refused}");
            assert!(refused.contains("trusted_uids"), "{refused}");
        }
    }

    #[test]
    fn identity_lookups_are_open_to_every_uid() {
        let trusted = AllowedUids::new(990, &[]);
        for request in lookups() {
            assert_eq!(audience(&request), Audience::Anyone);
            for uid in [0, 990, 1000, 65534] {
                assert_eq!(check_caller(&request, uid, &trusted), Ok(()), "{uid}");
            }
        }
    }
}
