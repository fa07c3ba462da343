//! What the master does with each admin request: turn it into a [`Change`] and commit it, or
//! answer a query from the in-memory database.
//!
//! Not pure: commits through `MasterState`, reads the wall clock (`check` without `--at`) and
//! draws node keys and password salts from `OsRng`. Called by the admin socket threads, one
//! request at a time per connection; [`Session`] holds a connection's pending import.

use super::diff::diff;
use super::lists;
use super::proto::{
    AdminErrorKind, AdminRequest, AdminResponse, AuditEntry, AuditStatus, CheckDecision,
    LockoutEntry, StatusReport, UserInfo, MAX_IMPORT_BYTES,
};
use super::unix::{self, UnixFields};
use crate::audit::admin::to_hex;
use crate::audit::{Audit, AuditQuery};
use crate::lockout::{active_lockouts, tracker::sources, unix_ms};
use crate::passwords::PasswordPolicy;
use crate::set_password::{set_password, SetPasswordError};
use crate::state::MasterState;
use crate::store::StoreError;
use gatehouse_common::config::parse_ron;
use gatehouse_common::identity::check_unix_name;
use gatehouse_common::nodekeys::NodeKey;
use gatehouse_common::policy::{
    route_check::RouteHosts, Change, Database, Decision, PolicySnapshot, PolicyTime, Route,
    RouteTarget,
};
use gatehouse_common::weak_keys::{check_added_key, check_host_keys};
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
    services: AdminServices,
}

impl Session {
    /// A connection's session.
    pub fn new(services: AdminServices) -> Session {
        Session {
            import: String::new(),
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
    state.apply(change).map_err(|e| match e {
        StoreError::Refused(reason) => (AdminErrorKind::Refused, reason.to_string()),
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

/// Answers one request.
pub fn handle(state: &MasterState, session: &mut Session, request: AdminRequest) -> AdminResponse {
    use AdminRequest as R;
    match request {
        R::HostAdd {
            name,
            addresses,
            groups,
        } => {
            if let Some(hint) = state.read(|s| missing_group_hint(s.database(), &groups)) {
                return refused(hint);
            }
            let key = NodeKey::generate(&mut OsRng);
            // A fresh random key is never weak or shared in practice; the check makes sure
            // of it, as for imports.
            if let Err(refusal) = state.read(|s| check_added_key(&s.database().hosts, &name, &key))
            {
                return refused(refusal.to_string());
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
        R::HostRemove { name } => done(state, Change::RemoveHost { name }),
        R::HostList => state.read(|s| lists::host_list(s.database())),
        R::HostAskForOthers { name, allowed } => {
            done(state, Change::SetHostMayAskForOthers { name, allowed })
        }
        R::GroupAdd { name, description } => done(state, Change::AddGroup { name, description }),
        R::GroupRemove { name } => done(state, Change::RemoveGroup { name }),
        R::GroupMemberAdd { group, host } => done(state, Change::AddGroupMember { group, host }),
        R::GroupMemberRemove { group, host } => {
            done(state, Change::RemoveGroupMember { group, host })
        }
        R::UserAdd { name, classes } => match check_unix_name(&name) {
            // Users are login names on managed hosts: the same rules as their Unix names.
            Err(e) => refused(format!("user name: {e}")),
            Ok(()) => done(state, Change::AddUser { name, classes }),
        },
        R::UserRemove { name } => done(state, Change::RemoveUser { name }),
        R::UserPasswd { name, password } => {
            passwd(state, &session.services.passwords, name, &password)
        }
        R::UserLock { name } => done(
            state,
            Change::SetLocked {
                user: name,
                locked: true,
            },
        ),
        R::UserUnlock { name } => unlock(state, name),
        R::UserExpire { name } => done(
            state,
            Change::ExpirePassword {
                user: name,
                at: PolicyTime::from_unix(now_unix()).to_string(),
            },
        ),
        R::LockoutList => lockout_list(state),
        R::ClassAdd { name } => done(state, Change::AddClass { name }),
        R::ClassRemove { name } => done(state, Change::RemoveClass { name }),
        R::RouteAdd { target, route } => route_add(state, target, route),
        R::RouteRemove { target, rule } => done(state, Change::RemoveRoute { target, rule }),
        R::RouteList { target } => state.read(|s| route_list(s.database(), target.as_ref())),
        R::HostShow { name } => state.read(|s| lists::host_show(s.database(), &name)),
        R::GroupList => state.read(|s| lists::group_list(s.database())),
        R::GroupShow { name } => state.read(|s| lists::group_show(s.database(), &name)),
        R::ClassList => state.read(|s| lists::class_list(s.database())),
        R::ClassShow { name } => state.read(|s| lists::class_show(s.database(), &name)),
        R::UserList => state.read(|s| lists::user_list(s.database())),
        R::UserSetClasses { name, classes } => done(
            state,
            Change::SetUserClasses {
                user: name,
                classes,
            },
        ),
        R::RouteShow { target, rule } => {
            state.read(|s| lists::route_show(s.database(), target, &rule))
        }
        R::ReplicaList | R::ReplicaShow { .. } => {
            // Outside the store lock: replication's hook may need the store itself.
            let links = state.replica_links();
            state.read(|s| match &request {
                R::ReplicaShow { host } => lists::replica_show(s.database(), &links, host),
                _ => lists::replica_list(s.database(), &links),
            })
        }
        R::ImportDiff { file } => {
            let text = zeroize::Zeroizing::new(std::mem::take(&mut session.import));
            match parse_import(&file, &text) {
                Err(refusal) => *refusal,
                // The same checks the commit makes (it compiles the whole file), on a scratch
                // copy: a dry run that passes is an import that commits.
                Ok(database) => match PolicySnapshot::compile(&database) {
                    Err(e) => refused(e.to_string()),
                    Ok(_) => {
                        AdminResponse::ImportDiff(state.read(|s| diff(s.database(), &database)))
                    }
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
        R::UserUnixRemove { name } => done(
            state,
            Change::SetUnixAccount {
                user: name,
                account: None,
            },
        ),
        R::UserShow { name } => match state.read(|s| unix::show_user(s.database(), &name)) {
            AdminResponse::User(info) => AdminResponse::User(with_lockout(state, info)),
            other => other,
        },
        R::UnixGroupAdd { name, gid } => unix::add_group(state, name, gid),
        R::UnixGroupRemove { name } => done(state, Change::RemoveUnixGroup { name }),
        R::UnixGroupMemberAdd { group, user } => {
            done(state, Change::AddUnixGroupMember { group, user })
        }
        R::UnixGroupMemberRemove { group, user } => {
            done(state, Change::RemoveUnixGroupMember { group, user })
        }
        R::UnixGroupList => {
            AdminResponse::UnixGroups(state.read(|s| s.database().unix_groups.clone()))
        }
        R::ReplicaAdd { host } => done(state, Change::AddReplica { host }),
        R::ReplicaRemove { host } => done(state, Change::RemoveReplica { host }),
        R::Status => match status(state) {
            AdminResponse::Status(mut report) => {
                if let Some(audit) = &session.services.audit {
                    report.audit = audit_status(audit);
                }
                AdminResponse::Status(report)
            }
            other => other,
        },
        R::Audit { query } => match &session.services.audit {
            Some(audit) => audit_records(audit, &query),
            None => refused("this master keeps no audit trail"),
        },
        R::Compact { keep } => {
            let keep_after = state.read(|s| s.sequence()).saturating_sub(keep);
            let compacted = state
                .compact(keep_after)
                .and_then(|removed| Ok((removed, state.read(|s| s.oldest_available())?)));
            match compacted {
                Ok((removed, oldest_log_seq)) => AdminResponse::Compacted {
                    removed: removed as u64,
                    oldest_log_seq,
                },
                Err(e) => error(AdminErrorKind::Internal, e.to_string()),
            }
        }
        R::Export => {
            let (database, seq) = state.read(|s| s.snapshot());
            AdminResponse::Exported { seq, database }
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
            match parse_import(&file, &text) {
                Ok(database) => done(state, Change::ReplaceAll { database }),
                Err(refusal) => *refusal,
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
            let decision = match state
                .policy()
                .load()
                .authorize(&request, PolicyTime::from_unix(at_unix))
            {
                Decision::Allow { route } => CheckDecision::Allow {
                    route: route.to_string(),
                },
                Decision::Deny { reason } => CheckDecision::Deny { reason },
            };
            AdminResponse::Checked { at_unix, decision }
        }
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
    let has_lockout = state.read(|s| s.database().lockouts.iter().any(|l| l.user == name));
    state.lockout().forget(&name);
    if has_lockout {
        let clear = Change::ClearLockout { user: name.clone() };
        if let Err((kind, message)) = commit(state, &clear) {
            return error(kind, message);
        }
    }
    let locked = state.read(|s| {
        s.database()
            .users
            .iter()
            .any(|u| u.name == name && u.locked)
    });
    if has_lockout && !locked {
        return AdminResponse::Done {
            seq: state.read(|s| s.sequence()),
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
fn with_lockout(state: &MasterState, mut info: UserInfo) -> UserInfo {
    let now = PolicyTime::from_unix(now_unix());
    info.locked_out_until = state.read(|s| {
        active_lockouts(s.database(), now)
            .find(|l| l.user == info.name)
            .map(|l| l.until.clone())
    });
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
    let mut entries: Vec<LockoutEntry> = state.read(|s| {
        active_lockouts(s.database(), now)
            .map(|l| LockoutEntry {
                user: l.user.clone(),
                locked_out_until: Some(l.until.clone()),
                failures: 0,
                sources: String::new(),
            })
            .collect()
    });
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
            let warnings = state.read(|s| RouteHosts::new(s.database()).warnings(&rule));
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
fn missing_group_hint(db: &Database, groups: &[String]) -> Option<String> {
    let missing = groups
        .iter()
        .find(|g| !db.host_groups.iter().any(|known| &known.name == *g))?;
    Some(format!(
        "unknown host group `{missing}`: create it first with `gatehouse-admin group add {missing}`"
    ))
}

fn status(state: &MasterState) -> AdminResponse {
    let report = state.read(|s| {
        let db = s.database();
        let routes = db.users.iter().map(|u| u.routes.len()).sum::<usize>()
            + db.user_classes
                .iter()
                .map(|c| c.routes.len())
                .sum::<usize>();
        let oldest_log_seq = s.oldest_available();
        oldest_log_seq.map(|oldest_log_seq| StatusReport {
            sequence: s.sequence(),
            oldest_log_seq,
            hosts: db.hosts.len(),
            host_groups: db.host_groups.len(),
            users: db.users.len(),
            locked_users: db.users.iter().filter(|u| u.locked).count(),
            locked_out_users: active_lockouts(db, PolicyTime::from_unix(now_unix())).count(),
            classes: db.user_classes.len(),
            routes,
            replicas_allowed: db.replicas.clone(),
            replica_links: Vec::new(),
            audit: AuditStatus::default(),
        })
    });
    match report {
        Ok(mut report) => {
            // Outside the store lock: replication's hook may need the store itself.
            report.replica_links = state.replica_links();
            AdminResponse::Status(report)
        }
        Err(e) => error(AdminErrorKind::Internal, e.to_string()),
    }
}

/// The records `query` selects, each in its binary encoding.
fn audit_records(audit: &Audit, query: &AuditQuery) -> AdminResponse {
    match audit.query(query) {
        Ok(stored) => AdminResponse::AuditRecords(
            stored
                .into_iter()
                .map(|s| {
                    let mut bytes = Vec::new();
                    gatehouse_common::audit::encode_record(&mut bytes, &s.record);
                    AuditEntry {
                        id: s.id,
                        server: s.server,
                        seq: s.seq,
                        record: to_hex(&bytes),
                    }
                })
                .collect(),
        ),
        Err(e) => error(AdminErrorKind::Internal, e.to_string()),
    }
}

/// The audit part of `status` (empty where the store cannot be read: logged).
fn audit_status(audit: &Audit) -> AuditStatus {
    let mut status = AuditStatus::default();
    match (audit.count(), audit.streams()) {
        (Ok(records), Ok(streams)) => {
            status.records = records;
            status.streams = streams;
        }
        (Err(e), _) | (_, Err(e)) => log::error!("audit status: {e}"),
    }
    if let Some(journal) = audit.journal() {
        let j = journal.status();
        status.journal_unstored = j.assigned.saturating_sub(j.acked);
        status.journal_bytes = j.disk_bytes;
        status.journal_max_bytes = j.max_bytes;
        status.journal_dropped = j.dropped;
        status.journal_refused = j.refused;
        status.journal_full = j.full;
    }
    status
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().try_into().unwrap_or(i64::MAX))
}
