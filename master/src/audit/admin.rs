//! Admin actions in the audit trail: who (the caller's uid, from the admin socket's peer
//! credentials as the kernel reports them, and its user name), what (the request without
//! secrets: never a password, never an import's text) and the true outcome, recorded after
//! the master has answered it, before the answer is sent. Changes, refused changes, exports
//! (they carry every key and hash) and refused connections are recorded; queries that reveal
//! no secret (status, lists, `user show`, `check`, `audit` itself) are not, so following the
//! trail does not fill it.
//!
//! Pure except [`user_name`] (the password database) and [`record`] (the store).

use super::ingest::Audit;
use crate::admin::proto::{AdminErrorKind, AdminRequest, AdminResponse};
use gatehouse_common::audit::{AdminOutcome, AuditEvent, AuditRecord};
use gatehouse_common::service::kv;
use std::time::{SystemTime, UNIX_EPOCH};

/// Who is on the other end of an admin connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCaller {
    pub uid: u32,
    /// The uid's user name on the master's host, or `uid N` when it has none.
    pub name: String,
}

impl AdminCaller {
    pub fn from_uid(uid: u32) -> AdminCaller {
        AdminCaller {
            uid,
            name: user_name(uid).unwrap_or_else(|| format!("uid {uid}")),
        }
    }
}

/// The request's fields (`key=value`) without secrets: what the admin log line and the audit
/// record say.
pub fn describe(request: &AdminRequest) -> String {
    match request {
        AdminRequest::UserPasswd { name, .. } => {
            format!("kind=UserPasswd name={}", kv::value(name))
        }
        AdminRequest::ImportChunk { text } => format!("kind=ImportChunk bytes={}", text.len()),
        // What a batch will change, piece by piece (its commit is recorded too); the record's
        // caps cut a long list.
        AdminRequest::BatchAdd { requests } => {
            let each: Vec<String> = requests.iter().map(kv::fields).collect();
            format!(
                "kind=BatchAdd requests={} changes={}",
                requests.len(),
                kv::value(&each.join("; "))
            )
        }
        other => kv::fields(other),
    }
}

/// Whether `request` is recorded (see the module docs). Every request is named, so a new one
/// cannot join either side unnoticed.
pub fn is_recorded(request: &AdminRequest) -> bool {
    use AdminRequest as R;
    match request {
        // Queries that reveal no secret (an import's diff never shows a key or hash), and
        // the chunks of an import (its commit is recorded).
        R::Status
        | R::HostList
        | R::HostShow { .. }
        | R::GroupList
        | R::GroupShow { .. }
        | R::ClassList
        | R::ClassShow { .. }
        | R::UserList
        | R::UserShow { .. }
        | R::RouteList { .. }
        | R::RouteShow { .. }
        | R::ReplicaList
        | R::ReplicaShow { .. }
        | R::UnixGroupList
        | R::LockoutList
        | R::Check { .. }
        | R::Audit { .. }
        | R::ImportChunk { .. }
        | R::ImportDiff { .. } => false,
        // Changes, and the export (it carries every key and hash).
        R::HostAdd { .. }
        | R::HostRemove { .. }
        | R::HostAskForOthers { .. }
        | R::GroupAdd { .. }
        | R::GroupRemove { .. }
        | R::GroupMemberAdd { .. }
        | R::GroupMemberRemove { .. }
        | R::UserAdd { .. }
        | R::UserRemove { .. }
        | R::UserSetClasses { .. }
        | R::UserPasswd { .. }
        | R::UserLock { .. }
        | R::UserUnlock { .. }
        | R::UserExpire { .. }
        | R::UserUnix { .. }
        | R::UserUnixRemove { .. }
        | R::ClassAdd { .. }
        | R::ClassRemove { .. }
        | R::RouteAdd { .. }
        | R::RouteRemove { .. }
        | R::ReplicaAdd { .. }
        | R::ReplicaRemove { .. }
        | R::UnixGroupAdd { .. }
        | R::UnixGroupRemove { .. }
        | R::UnixGroupMemberAdd { .. }
        | R::UnixGroupMemberRemove { .. }
        | R::Compact { .. }
        | R::Export
        | R::ImportCommit { .. }
        | R::BatchAdd { .. }
        | R::BatchCommit => true,
    }
}

/// The outcome and its detail as the audit record shows them: the committed sequence, or
/// the refusal's message (never a key the answer carries).
pub fn outcome(response: &AdminResponse) -> (AdminOutcome, String) {
    match response {
        AdminResponse::Error { kind, message } => {
            let outcome = match kind {
                AdminErrorKind::Refused | AdminErrorKind::BadRequest => AdminOutcome::Refused,
                AdminErrorKind::Internal => AdminOutcome::Failed,
                AdminErrorKind::PermissionDenied => AdminOutcome::Denied,
            };
            (outcome, message.clone())
        }
        AdminResponse::Done { seq } | AdminResponse::HostAdded { seq, .. } => {
            (AdminOutcome::Done, format!("seq={seq}"))
        }
        AdminResponse::Warned { seq, warnings } => (
            AdminOutcome::Done,
            format!("seq={seq} warning: {}", warnings.join("; ")),
        ),
        AdminResponse::IdSet { seq, what, id } => {
            (AdminOutcome::Done, format!("seq={seq} {what}={id}"))
        }
        AdminResponse::Exported { seq, .. } => (AdminOutcome::Done, format!("exported seq={seq}")),
        _ => (AdminOutcome::Done, String::new()),
    }
}

/// Records `command` by `caller` with its `response`, durably. A failure to record is
/// logged (the action itself has happened: its answer is still sent).
pub fn record(audit: &Audit, caller: &AdminCaller, command: String, response: &AdminResponse) {
    let (outcome, detail) = outcome(response);
    let record = AuditRecord {
        at_unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        agent: String::new(),
        address: None,
        event: AuditEvent::Admin {
            uid: caller.uid,
            caller: caller.name.clone(),
            command,
            outcome,
            detail,
        },
    };
    if let Err(e) = audit.record_local(record) {
        log::error!(
            "audit: cannot record an admin action by uid {}: {e}",
            caller.uid
        );
    }
}

/// `bytes` as lower-case hex (how the admin socket carries an encoded record).
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of hex text; `None` if it is not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `uid`'s user name in the password database (getpwuid_r), if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: an all-zero passwd is a valid value for the out parameter.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to a live local of the right type and `buf.len()` is its size;
    // on success `result` points to `pwd`, whose strings point into `buf`.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: `pw_name` is a NUL-terminated string inside `buf`, alive here.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    #[test]
    fn commands_carry_no_secret_and_outcomes_their_detail() {
        let passwd = AdminRequest::UserPasswd {
            name: "bob".into(),
            password: Zeroizing::new("hunter2".into()),
        };
        assert_eq!(describe(&passwd), "kind=UserPasswd name=bob");
        assert!(is_recorded(&passwd));
        assert!(!is_recorded(&AdminRequest::Status));
        assert!(!is_recorded(&AdminRequest::UserList));
        assert!(!is_recorded(&AdminRequest::ImportDiff {
            file: "db.ron".into()
        }));
        assert!(is_recorded(&AdminRequest::UserSetClasses {
            name: "bob".into(),
            classes: vec![]
        }));
        let warned = AdminResponse::Warned {
            seq: 8,
            warnings: vec!["no registered host matches `web*`".into()],
        };
        assert_eq!(
            outcome(&warned),
            (
                AdminOutcome::Done,
                "seq=8 warning: no registered host matches `web*`".into()
            )
        );
        let added = AdminResponse::HostAdded {
            seq: 7,
            node_key: "ab".repeat(32),
        };
        assert_eq!(outcome(&added), (AdminOutcome::Done, "seq=7".into()));
        let refused = AdminResponse::Error {
            kind: AdminErrorKind::Refused,
            message: "unknown user `bob`".into(),
        };
        assert_eq!(
            outcome(&refused),
            (AdminOutcome::Refused, "unknown user `bob`".into())
        );
    }

    #[test]
    fn root_has_a_name() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }
}
