//! What the master does with each admin request: turn it into a [`Change`] and commit it, or
//! answer a query from the in-memory database.
//!
//! Not pure: commits through `MasterState`, reads the wall clock (`check` without `--at`) and
//! draws node keys and password salts from `OsRng`. Called by the admin socket threads, one
//! request at a time per connection; [`Session`] holds a connection's pending import and
//! batch. Reads answer from the published snapshot, never waiting for a write.

use super::batch::{self, as_change};
use super::diff::diff;
use super::lists;
use super::proto::{
    AdminErrorKind, AdminRequest, AdminResponse, CheckDecision, LockoutEntry, UserInfo,
    MAX_IMPORT_BYTES,
};
use super::status;
use super::unix::{self, UnixFields};
use crate::audit::Audit;
use crate::lockout::{tracker::sources, unix_ms};
use crate::passwords::PasswordPolicy;
use crate::set_password::{set_password, SetPasswordError};
use crate::state::MasterState;
use crate::store::{Progress, StoreError};
use gatehouse_common::config::parse_ron;
use gatehouse_common::identity::check_unix_name;
use gatehouse_common::nodekeys::NodeKey;
use gatehouse_common::policy::{
    route_check::RouteHosts, Change, Database, Decision, PolicySnapshot, PolicyTime, Route,
    RouteTarget,
};
use gatehouse_common::weak_keys::{check_host_keys, KeyRefusal};
use gatehouse_common::wire::AuthorizeRequest;
use rand::rngs::OsRng;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What every admin connection shares: the audit trail and the password rules.
#[derive(Clone, Default)]
pub struct AdminServices {
    /// The audit trail (records, queries, status), when the master keeps one.
    pub audit: Option<Arc<Audit>>,
    pub passwords: Arc<PasswordPolicy>,
}

/// Per-connection state.
#[derive(Default)]
pub struct Session {
    /// Import text received by `ImportChunk` and not yet committed.
    import: String,
    /// Changes received by `BatchAdd` and not yet committed.
    pub(super) batch: Vec<Change>,
    services: AdminServices,
}

impl Session {
    /// A connection's session.
    pub fn new(services: AdminServices) -> Session {
        Session {
            import: String::new(),
            batch: Vec::new(),
            services,
        }
    }
}

pub(super) fn error(kind: AdminErrorKind, message: impl Into<String>) -> AdminResponse {
    AdminResponse::Error {
        kind,
        message: message.into(),
    }
}

pub(super) fn refused(message: impl Into<String>) -> AdminResponse {
    error(AdminErrorKind::Refused, message)
}

/// Commits a change; the error is the kind and message of the error response.
fn commit(state: &MasterState, change: &Change) -> Result<u64, (AdminErrorKind, String)> {
    commit_all(state, std::slice::from_ref(change), &mut |_| {})
}

/// Commits changes in one transaction, with progress; the error as for [`commit`].
fn commit_all(
    state: &MasterState,
    changes: &[Change],
    progress: &mut dyn FnMut(Progress),
) -> Result<u64, (AdminErrorKind, String)> {
    state.apply_many(changes, progress).map_err(|e| match e {
        StoreError::Refused(reason) => (AdminErrorKind::Refused, reason.to_string()),
        e @ StoreError::RefusedInBatch { .. } => (AdminErrorKind::Refused, e.to_string()),
        other => {
            log::error!("admin change not committed: {other}");
            (AdminErrorKind::Internal, format!("not committed: {other}"))
        }
    })
}

pub(super) fn done(state: &MasterState, change: Change) -> AdminResponse {
    match commit(state, &change) {
        Ok(seq) => AdminResponse::Done { seq },
        Err((kind, message)) => error(kind, message),
    }
}

/// Answers one request; a long one (an import, a batch) reports `progress` on the way.
pub fn handle(
    state: &MasterState,
    session: &mut Session,
    request: AdminRequest,
    progress: &mut dyn FnMut(Progress),
) -> AdminResponse {
    use AdminRequest as R;
    let db = state.policy().load_full();
    match request {
        R::HostAdd {
            name,
            addresses,
            groups,
        } => {
            if let Some(hint) = missing_group_hint(&db, &groups) {
                return refused(hint);
            }
            let key = NodeKey::generate(&mut OsRng);
            // A fresh random key is never weak or shared in practice; the checks make sure
            // of it, as for imports (a broken random generator would repeat itself).
            if let Some(weak) = key.weakness() {
                return refused(KeyRefusal::Weak { host: name, weak }.to_string());
            }
            if state.key_in_use(&key) {
                return refused(format!(
                    "the new key for `{name}` is already another host's: the random generator is broken; nothing was registered"
                ));
            }
            let node_key = key.to_hex();
            let change = Change::AddHost {
                name,
                node_key: node_key.clone(),
                addresses,
                groups,
            };
            match commit(state, &change) {
                Ok(seq) => AdminResponse::HostAdded { seq, node_key },
                Err((kind, message)) => error(kind, message),
            }
        }
        R::HostList => lists::host_list(&db.to_database()),
        R::UserAdd { name, classes } => match check_unix_name(&name) {
            // Users are login names on managed hosts: the same rules as their Unix names.
            Err(e) => refused(format!("user name: {e}")),
            Ok(()) => done(state, Change::AddUser { name, classes }),
        },
        R::UserPasswd { name, password } => {
            passwd(state, &session.services.passwords, name, &password)
        }
        R::UserUnlock { name } => unlock(state, name),
        R::UserExpire { name } => done(
            state,
            Change::ExpirePassword {
                user: name,
                at: PolicyTime::from_unix(now_unix()).to_string(),
            },
        ),
        R::LockoutList => lockout_list(state),
        R::RouteAdd { target, route } => route_add(state, target, route),
        R::RouteList { target } => route_list(&db.to_database(), target.as_ref()),
        R::HostShow { name } => lists::host_show(&db.to_database(), &name),
        R::GroupList => lists::group_list(&db.to_database()),
        R::GroupShow { name } => lists::group_show(&db.to_database(), &name),
        R::ClassList => lists::class_list(&db.to_database()),
        R::ClassShow { name } => lists::class_show(&db.to_database(), &name),
        R::UserList => lists::user_list(&db.to_database()),
        R::RouteShow { target, rule } => lists::route_show(&db.to_database(), target, &rule),
        R::ReplicaList => lists::replica_list(&db.to_database(), &state.replica_links()),
        R::ReplicaShow { host } => {
            lists::replica_show(&db.to_database(), &state.replica_links(), &host)
        }
        R::ImportDiff { file } => {
            let text = zeroize::Zeroizing::new(std::mem::take(&mut session.import));
            match parse_import(&file, &text) {
                Err(refusal) => *refusal,
                // The same checks the commit makes (it compiles the whole file), on a scratch
                // copy: a dry run that passes is an import that commits.
                Ok(database) => match PolicySnapshot::compile(&database) {
                    Err(e) => refused(e.to_string()),
                    Ok(_) => AdminResponse::ImportDiff(diff(&db.to_database(), &database)),
                },
            }
        }
        R::UserUnix {
            name,
            uid,
            gid,
            gecos,
            home,
            shell,
        } => {
            let fields = UnixFields {
                uid,
                gid,
                gecos,
                home,
                shell,
            };
            unix::set_account(state, name, fields)
        }
        R::UserShow { name } => match unix::show_user(&db, &name) {
            AdminResponse::User(info) => AdminResponse::User(with_lockout(state, &db, info)),
            other => other,
        },
        R::UnixGroupAdd { name, gid } => unix::add_group(state, name, gid),
        R::UnixGroupList => {
            let groups = db.unix_groups_in_order().into_iter().map(|(_, g)| g);
            AdminResponse::UnixGroups(groups.collect())
        }
        R::Status => match status::status(state, &db) {
            AdminResponse::Status(mut report) => {
                if let Some(audit) = &session.services.audit {
                    report.audit = status::audit_status(audit);
                }
                AdminResponse::Status(report)
            }
            other => other,
        },
        R::Audit { query } => match &session.services.audit {
            Some(audit) => status::audit_records(audit, &query),
            None => refused("this master keeps no audit trail"),
        },
        R::Compact { keep } => {
            let keep_after = state.read(|s| s.sequence()).saturating_sub(keep);
            match state.compact(keep_after) {
                Ok(removed) => AdminResponse::Compacted {
                    removed: removed as u64,
                    oldest_log_seq: state.oldest_log_seq(),
                },
                Err(e) => error(AdminErrorKind::Internal, e.to_string()),
            }
        }
        R::Export => {
            let (policy, seq) = state.snapshot();
            AdminResponse::Exported {
                seq,
                database: policy.to_database(),
            }
        }
        R::BatchAdd { requests } => batch::add(session, requests),
        R::BatchCommit => {
            let changes = std::mem::take(&mut session.batch);
            match commit_all(state, &changes, progress) {
                Ok(seq) => AdminResponse::Done { seq },
                Err((kind, message)) => error(kind, message),
            }
        }
        R::ImportChunk { text } => {
            if session.import.len() + text.len() > MAX_IMPORT_BYTES {
                session.import.clear();
                return error(
                    AdminErrorKind::BadRequest,
                    format!("import is larger than {MAX_IMPORT_BYTES} bytes"),
                );
            }
            session.import.push_str(&text);
            AdminResponse::ImportPending {
                bytes: session.import.len(),
            }
        }
        R::ImportCommit { file } => {
            // The text holds node keys and password hashes: wiped once parsed.
            let text = zeroize::Zeroizing::new(std::mem::take(&mut session.import));
            let total = text.len() as u64;
            progress(Progress {
                stage: "parsing",
                done: 0,
                total,
            });
            let database = match parse_import(&file, &text) {
                Ok(database) => database,
                Err(refusal) => return *refusal,
            };
            drop(text);
            let entities = (database.hosts.len() + database.users.len()) as u64;
            progress(Progress {
                stage: "checking",
                done: 0,
                total: entities,
            });
            let replace = [Change::ReplaceAll { database }];
            let committed = commit_all(state, &replace, progress);
            drop(replace);
            // The import's text and model are gone: give their memory back.
            crate::store::return_free_memory();
            match committed {
                Ok(seq) => AdminResponse::Done { seq },
                Err((kind, message)) => error(kind, message),
            }
        }
        R::Check {
            method,
            from_host,
            from_user,
            to_user,
            to_host,
            at_unix,
        } => {
            let at_unix = at_unix.unwrap_or_else(now_unix);
            let request = AuthorizeRequest {
                method,
                from_host,
                from_user,
                to_user,
                to_host,
            };
            let decision = match db.authorize(&request, PolicyTime::from_unix(at_unix)) {
                Decision::Allow { route } => CheckDecision::Allow {
                    route: route.to_string(),
                },
                Decision::Deny { reason } => CheckDecision::Deny { reason },
            };
            AdminResponse::Checked { at_unix, decision }
        }
        plain => match as_change(&plain) {
            Some(change) => done(state, change),
            None => error(AdminErrorKind::BadRequest, "not a request"),
        },
    }
}

/// Sets a password through the one path that checks rules, history and age
/// ([`set_password`]); a refusal names the rule it broke.
fn passwd(
    state: &MasterState,
    rules: &PasswordPolicy,
    name: String,
    password: &str,
) -> AdminResponse {
    match set_password(
        state,
        rules,
        &name,
        password,
        PolicyTime::from_unix(now_unix()),
    ) {
        Ok(seq) => AdminResponse::Done { seq },
        Err(SetPasswordError::NotCommitted(StoreError::Refused(reason))) => {
            refused(reason.to_string())
        }
        Err(SetPasswordError::NotCommitted(other)) => {
            log::error!("admin change not committed: {other}");
            error(AdminErrorKind::Internal, format!("not committed: {other}"))
        }
        Err(refusal) => refused(refusal.to_string()),
    }
}

/// Clears the user's lockout (if it has one, expired or not) and its admin lock, and forgets
/// the wrong passwords counted so far. A user with neither still gets the `SetLocked` change,
/// as `user unlock` always did.
fn unlock(state: &MasterState, name: String) -> AdminResponse {
    let has_lockout = state.policy().load().lockout(&name).is_some();
    state.lockout().forget(&name);
    if has_lockout {
        let clear = Change::ClearLockout { user: name.clone() };
        if let Err((kind, message)) = commit(state, &clear) {
            return error(kind, message);
        }
    }
    let locked = state.policy().load().is_locked(&name);
    if has_lockout && !locked {
        return AdminResponse::Done {
            seq: state.db_status().sequence(),
        };
    }
    done(
        state,
        Change::SetLocked {
            user: name,
            locked: false,
        },
    )
}

/// `user show` with the lockout's view of the user: locked out until when, wrong passwords
/// counted now and where from.
fn with_lockout(state: &MasterState, db: &PolicySnapshot, mut info: UserInfo) -> UserInfo {
    let now = PolicyTime::from_unix(now_unix());
    let standing = db.user_standing(&info.name);
    info.locked_out_until = standing
        .filter(|s| s.locked_out_at(now))
        .and_then(|_| db.lockout(&info.name))
        .map(|(_, l)| l.until);
    let recent = state.lockout().recent(unix_ms(SystemTime::now()));
    if let Some((_, seen)) = recent.into_iter().find(|(user, _)| *user == info.name) {
        info.wrong_passwords = seen.len() as u32;
        info.wrong_password_sources = sources(&seen);
    }
    info
}

/// Users locked out now, then users with failures counted, by name.
fn lockout_list(state: &MasterState) -> AdminResponse {
    let now_ms = unix_ms(SystemTime::now());
    let now = PolicyTime::from_unix(now_unix());
    let active = state.policy().load().active_lockouts(now);
    let mut entries: Vec<LockoutEntry> = active
        .into_iter()
        .map(|l| LockoutEntry {
            user: l.user,
            locked_out_until: Some(l.until),
            failures: 0,
            sources: String::new(),
        })
        .collect();
    for (user, seen) in state.lockout().recent(now_ms) {
        let entry = LockoutEntry {
            user,
            locked_out_until: None,
            failures: seen.len() as u32,
            sources: sources(&seen),
        };
        match entries.iter_mut().find(|e| e.user == entry.user) {
            Some(locked) => {
                locked.failures = entry.failures;
                locked.sources = entry.sources;
            }
            None => entries.push(entry),
        }
    }
    entries.sort_by(|a, b| a.user.cmp(&b.user));
    AdminResponse::Lockouts(entries)
}

fn route_list(db: &Database, target: Option<&RouteTarget>) -> AdminResponse {
    if let Some(wanted) = target {
        let known = match wanted {
            RouteTarget::User(name) => db.users.iter().any(|u| &u.name == name),
            RouteTarget::Class(name) => db.user_classes.iter().any(|c| &c.name == name),
        };
        if !known {
            return refused(format!("unknown {wanted}"));
        }
    }
    let mut routes = lists::all_routes(db);
    routes.retain(|e| target.is_none_or(|t| *t == e.target));
    AdminResponse::Routes(routes)
}

/// Parses an import's text and refuses weak or shared node keys (all-zero, published example
/// and shared keys never enter the database); the error is the answer to send.
fn parse_import(file: &str, text: &str) -> Result<Database, Box<AdminResponse>> {
    let refuse = |message: String| Box::new(refused(message));
    let database =
        parse_ron::<Database>(Path::new(file), text).map_err(|e| refuse(e.to_string()))?;
    check_host_keys(&database.hosts).map_err(|refusal| refuse(format!("{file}: {refusal}")))?;
    Ok(database)
}

/// Adds a route, and says so when its target matches no registered host (accepted: a
/// wildcard, or a host added later, may match it).
fn route_add(state: &MasterState, target: RouteTarget, route: Route) -> AdminResponse {
    let rule = route.rule.clone();
    match done(state, Change::AddRoute { target, route }) {
        AdminResponse::Done { seq } => {
            // The hosts and groups only (one pass over the hosts, as the check costs anyway),
            // from the published snapshot: never the whole database.
            let published = state.policy().load_full();
            let hosts = Database {
                hosts: published
                    .hosts_in_order()
                    .into_iter()
                    .map(|(_, h)| h)
                    .collect(),
                host_groups: published
                    .host_groups_in_order()
                    .into_iter()
                    .map(|(_, g)| g)
                    .collect(),
                ..Database::default()
            };
            let warnings = RouteHosts::new(&hosts).warnings(&rule);
            if warnings.is_empty() {
                AdminResponse::Done { seq }
            } else {
                AdminResponse::Warned { seq, warnings }
            }
        }
        other => other,
    }
}

/// The refusal for a `host add --group G` naming a group that does not exist yet, saying how
/// to create it (groups are never made implicitly: a misspelt one would silently leave the
/// host out of the routes that name the real one).
fn missing_group_hint(db: &PolicySnapshot, groups: &[String]) -> Option<String> {
    let missing = groups.iter().find(|g| db.host_group(g).is_none())?;
    Some(format!(
        "unknown host group `{missing}`: create it first with `gatehouse-admin group add {missing}`"
    ))
}

pub(super) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().try_into().unwrap_or(i64::MAX))
}
