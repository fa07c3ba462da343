//! Admin batches (`gatehouse-admin batch FILE`): which requests are plain changes that may be
//! batched, and a connection's pending batch, committed by `BatchCommit` in one transaction
//! with one acknowledgement (`handler`). Pure but for the session it fills.

use super::handler::{error, refused, Session};
use super::proto::{AdminErrorKind, AdminRequest, AdminResponse};
use gatehouse_common::identity::check_unix_name;
use gatehouse_common::policy::Change;
use gatehouse_common::service::kv;

/// Changes one connection may gather for one batch (1,000,000): a batch is applied in memory
/// before it is written, and a million changes of a few hundred bytes is a few hundred MiB.
pub const MAX_BATCH_CHANGES: usize = 1_000_000;

/// The change a request asks for, when it is exactly one change with nothing to decide on
/// the master first (no key or hash to make, no id to pick): what `batch` accepts, and what
/// `handle` commits for these requests one at a time.
pub fn as_change(request: &AdminRequest) -> Option<Change> {
    use AdminRequest as R;
    Some(match request.clone() {
        R::HostRemove { name } => Change::RemoveHost { name },
        R::HostAskForOthers { name, allowed } => Change::SetHostMayAskForOthers { name, allowed },
        R::GroupAdd { name, description } => Change::AddGroup { name, description },
        R::GroupRemove { name } => Change::RemoveGroup { name },
        R::GroupMemberAdd { group, host } => Change::AddGroupMember { group, host },
        R::GroupMemberRemove { group, host } => Change::RemoveGroupMember { group, host },
        R::UserAdd { name, classes } => Change::AddUser { name, classes },
        R::UserSetClasses { name, classes } => Change::SetUserClasses {
            user: name,
            classes,
        },
        R::UserRemove { name } => Change::RemoveUser { name },
        R::UserLock { name } => Change::SetLocked {
            user: name,
            locked: true,
        },
        R::ClassAdd { name } => Change::AddClass { name },
        R::ClassRemove { name } => Change::RemoveClass { name },
        R::RouteAdd { target, route } => Change::AddRoute { target, route },
        R::RouteRemove { target, rule } => Change::RemoveRoute { target, rule },
        R::UserUnixRemove { name } => Change::SetUnixAccount {
            user: name,
            account: None,
        },
        R::UnixGroupRemove { name } => Change::RemoveUnixGroup { name },
        R::UnixGroupMemberAdd { group, user } => Change::AddUnixGroupMember { group, user },
        R::UnixGroupMemberRemove { group, user } => Change::RemoveUnixGroupMember { group, user },
        R::ReplicaAdd { host } => Change::AddReplica { host },
        R::ReplicaRemove { host } => Change::RemoveReplica { host },
        _ => return None,
    })
}

/// Adds requests to the connection's pending batch: each must be one plain change
/// ([`as_change`]); the first that is not is refused, naming it, and nothing is added.
pub(super) fn add(session: &mut Session, requests: Vec<AdminRequest>) -> AdminResponse {
    let mut changes = Vec::with_capacity(requests.len());
    for (i, request) in requests.iter().enumerate() {
        if let AdminRequest::UserAdd { name, .. } = request {
            if let Err(e) = check_unix_name(name) {
                let entry = session.batch.len() + i + 1;
                return refused(format!("batch entry {entry}: user name: {e}"));
            }
        }
        let Some(change) = as_change(request) else {
            let what = kv::fields(request);
            return refused(format!(
                "batch entry {} ({what}) cannot be batched: only plain changes can (not host add, user passwd, user unlock, user unix, unixgroup add, queries)",
                session.batch.len() + i + 1
            ));
        };
        changes.push(change);
    }
    if session.batch.len() + changes.len() > MAX_BATCH_CHANGES {
        session.batch.clear();
        return error(
            AdminErrorKind::BadRequest,
            format!("a batch holds at most {MAX_BATCH_CHANGES} changes"),
        );
    }
    session.batch.extend(changes);
    AdminResponse::BatchPending {
        changes: session.batch.len(),
    }
}
