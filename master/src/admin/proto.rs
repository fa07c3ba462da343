//! The admin socket protocol, shared by the master and `gatehouse-admin`: each message is a
//! u32 big-endian length followed by that many bytes of RON text of an [`AdminRequest`] or
//! [`AdminResponse`]. A connection carries any number of request/response pairs, in order.
//!
//! Pure except the two framing functions, which read and write the stream they are given.
//! A request that is too long closes the connection (after an error response); one that is
//! not valid RON gets an error response and the connection stays usable.

use super::diff::DiffEntry;
use crate::audit::store::StreamProgress;
use crate::audit::AuditQuery;
use crate::hooks::ReplicaLinkStatus;
use gatehouse_common::policy::{Database, Route, RouteTarget, UnixAccount, UnixGroup};
use gatehouse_common::types::{DenyReason, Method};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use zeroize::Zeroizing;

/// How often a long request reports progress (`AdminResponse::Progress`), at most: 500 ms.
/// A client's read timeout only needs to outlast this gap, not the whole request.
pub const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);
/// Largest request, bytes: 1 MiB. Every request but an import's or a batch's pieces is a few
/// hundred bytes; the cap stops a garbage length from making the master allocate gigabytes
/// (16 connections hold at most 16 MiB of requests). Imports are sent in
/// [`IMPORT_CHUNK_BYTES`] pieces to stay under it.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Largest response the CLI accepts, bytes: 1 GiB, room for exporting a database of a million
/// users and hosts (about 400 MiB of RON; docs/BENCHMARKS.md, "Database scale").
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024 * 1024;
/// Import text per `ImportChunk` request, bytes: 128 KiB. RON escapes a string byte into at
/// most 6 bytes (a control character becomes `\u{7f}`), so even a hostile file stays under
/// [`MAX_REQUEST_BYTES`]; a million-user import is about 5,000 requests, not 70,000.
pub const IMPORT_CHUNK_BYTES: usize = 128 * 1024;
/// Largest import a connection may accumulate, bytes: the same as [`MAX_RESPONSE_BYTES`], so
/// anything that can be exported can be imported.
pub const MAX_IMPORT_BYTES: usize = MAX_RESPONSE_BYTES;

/// What the CLI asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// The master generates the node key and returns it once.
    HostAdd {
        name: String,
        addresses: Vec<String>,
        groups: Vec<String>,
    },
    HostRemove {
        name: String,
    },
    HostList,
    /// Allows (`allowed: true`) or stops allowing the host's agent to ask about other hosts
    /// (a jump host or proxy).
    HostAskForOthers {
        name: String,
        allowed: bool,
    },
    GroupAdd {
        name: String,
        description: Option<String>,
    },
    GroupRemove {
        name: String,
    },
    GroupMemberAdd {
        group: String,
        host: String,
    },
    GroupMemberRemove {
        group: String,
        host: String,
    },
    UserAdd {
        name: String,
        classes: Vec<String>,
    },
    UserRemove {
        name: String,
    },
    /// The master hashes `password` (argon2id, standard cost); it is never stored or logged,
    /// and wiped from memory with the request.
    UserPasswd {
        name: String,
        password: Zeroizing<String>,
    },
    UserLock {
        name: String,
    },
    /// Makes the user's password expired now (`user expire`): the next login with the right
    /// password is asked to change it. A changed password age policy otherwise applies at
    /// each user's next password change.
    UserExpire {
        name: String,
    },
    /// Lets the user in again: clears the admin lock and the central lockout (and forgets
    /// the wrong passwords counted so far).
    UserUnlock {
        name: String,
    },
    /// Users locked out now and users with wrong passwords counted in their window.
    LockoutList,
    ClassAdd {
        name: String,
    },
    ClassRemove {
        name: String,
    },
    RouteAdd {
        target: RouteTarget,
        route: Route,
    },
    RouteRemove {
        target: RouteTarget,
        rule: String,
    },
    /// Every route, or only one user's or class's.
    RouteList {
        target: Option<RouteTarget>,
    },
    ReplicaAdd {
        host: String,
    },
    ReplicaRemove {
        host: String,
    },
    Status,
    /// Deletes change-log entries, keeping the newest `keep`. Replicas behind what remains get
    /// a snapshot when they next connect.
    Compact {
        keep: u64,
    },
    Export,
    /// Appends RON text to this connection's pending import.
    ImportChunk {
        text: String,
    },
    /// Parses the pending import (`file` names it in error messages), checks it, and replaces
    /// the whole database with it.
    ImportCommit {
        file: String,
    },
    /// Sets a user's Unix identity. A field left `None` keeps its current value, or for a user
    /// without an identity takes its default: the lowest free uid in the configured range, gid
    /// = uid, empty GECOS, home `/home/NAME`, shell `/bin/sh`.
    UserUnix {
        name: String,
        uid: Option<u32>,
        gid: Option<u32>,
        gecos: Option<String>,
        home: Option<String>,
        shell: Option<String>,
    },
    /// Removes a user's Unix identity (refused while a Unix group lists the user).
    UserUnixRemove {
        name: String,
    },
    /// Everything about one user but its password hash.
    UserShow {
        name: String,
    },
    /// Adds a Unix group; without `gid`, the lowest free gid in the configured range.
    UnixGroupAdd {
        name: String,
        gid: Option<u32>,
    },
    UnixGroupRemove {
        name: String,
    },
    UnixGroupMemberAdd {
        group: String,
        user: String,
    },
    UnixGroupMemberRemove {
        group: String,
        user: String,
    },
    UnixGroupList,
    /// Adds plain changes (see `batch::as_change`) to this connection's pending batch.
    /// Sent in pieces that fit [`MAX_REQUEST_BYTES`].
    BatchAdd {
        requests: Vec<AdminRequest>,
    },
    /// Commits the pending batch: all its changes or none, in one transaction with one
    /// acknowledgement (`Done` with the last sequence). `Progress` messages may come first.
    BatchCommit,
    /// Audit records the query selects (`gatehouse-admin audit`).
    Audit {
        query: AuditQuery,
    },
    /// Evaluates an authorize request at `at_unix` (seconds; `None` = now).
    Check {
        method: Method,
        from_host: String,
        from_user: String,
        to_user: String,
        to_host: String,
        at_unix: Option<i64>,
    },

    // Lists and shows (issue 14): never a node key or a password hash.
    /// One host, with the routes that name it.
    HostShow {
        name: String,
    },
    GroupList,
    /// One host group, with its hosts and the routes that name it.
    GroupShow {
        name: String,
    },
    ClassList,
    /// One class, with its users and routes.
    ClassShow {
        name: String,
    },
    UserList,
    /// Replaces the user's classes.
    UserSetClasses {
        name: String,
        classes: Vec<String>,
    },
    /// One route, with the warnings `route add` would give.
    RouteShow {
        target: RouteTarget,
        rule: String,
    },
    ReplicaList,
    ReplicaShow {
        host: String,
    },
    /// Parses and checks the pending import like `ImportCommit`, and answers what it would
    /// change, without changing anything.
    ImportDiff {
        file: String,
    },
}

/// What the master answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminResponse {
    /// The change is durable, with this sequence number.
    Done {
        seq: u64,
    },
    /// The host is registered; `node_key` is its key (64 hex digits), shown only this once.
    HostAdded {
        seq: u64,
        node_key: String,
    },
    Hosts(Vec<HostInfo>),
    Routes(Vec<RouteEntry>),
    Lockouts(Vec<LockoutEntry>),
    Status(StatusReport),
    /// `removed` log entries deleted; the log now starts at `oldest_log_seq`.
    Compacted {
        removed: u64,
        oldest_log_seq: u64,
    },
    Exported {
        seq: u64,
        database: Database,
    },
    /// Import text received so far, bytes.
    ImportPending {
        bytes: usize,
    },
    /// Changes in the pending batch so far.
    BatchPending {
        changes: usize,
    },
    /// Not an answer but news of a long request (an import, a batch): sent before its answer,
    /// at most every [`PROGRESS_INTERVAL`] and at each new stage, so a client waits as long
    /// as the master is working, however long that is. `stage`: `parsing` (bytes),
    /// `checking` (hosts and users), `writing` (table rows), `committing`.
    Progress {
        stage: String,
        done: u64,
        total: u64,
    },
    Checked {
        at_unix: i64,
        decision: CheckDecision,
    },
    Error {
        kind: AdminErrorKind,
        message: String,
    },
    /// The change is durable; it gave `what` (`uid` or `gid`) the value `id`.
    IdSet {
        seq: u64,
        what: String,
        id: u32,
    },
    User(UserInfo),
    UnixGroups(Vec<UnixGroup>),
    // Lists and shows (issue 14).
    /// `host show`.
    Host {
        host: HostInfo,
        routes: Vec<RouteEntry>,
    },
    Groups(Vec<GroupInfo>),
    /// `group show`.
    Group {
        group: GroupInfo,
        routes: Vec<RouteEntry>,
    },
    Classes(Vec<ClassInfo>),
    /// `class show`.
    Class {
        class: ClassInfo,
        routes: Vec<RouteEntry>,
    },
    Users(Vec<UserSummary>),
    /// `route show`.
    Route {
        entry: RouteEntry,
        warnings: Vec<String>,
    },
    Replicas(Vec<ReplicaInfo>),
    /// The change is durable, and worth a second look: `warnings` say why (a route whose
    /// target matches no registered host).
    Warned {
        seq: u64,
        warnings: Vec<String>,
    },
    /// What an import would change (nothing was changed).
    ImportDiff(Vec<DiffEntry>),
    /// Audit records, oldest first.
    AuditRecords(Vec<AuditEntry>),
}

/// One stored audit record as the admin socket carries it: the record in its binary
/// encoding (docs/PROTOCOL.md, "Audit records"), as hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: u64,
    pub server: String,
    pub seq: u64,
    pub record: String,
}

/// The audit trail in `status`: what the store holds, each server's progress, and the
/// master's own journal (with its alarm).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditStatus {
    pub records: u64,
    pub streams: Vec<StreamProgress>,
    /// The master's own journal: records not yet stored, bytes on disk of its limit,
    /// records dropped or refused since start, and whether it is (nearly) full.
    pub journal_unstored: u64,
    pub journal_bytes: u64,
    pub journal_max_bytes: u64,
    pub journal_dropped: u64,
    pub journal_refused: u64,
    pub journal_full: bool,
}

/// A user as shown (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub locked: bool,
    pub has_password: bool,
    pub classes: Vec<String>,
    pub routes: usize,
    pub unix: Option<UnixAccount>,
    /// The Unix groups listing this user, by name.
    pub unix_groups: Vec<String>,
    /// When its lockout after wrong passwords ends (`YYYY-MM-DDTHH:MM:SSZ`), if it is locked
    /// out now.
    #[serde(default)]
    pub locked_out_until: Option<String>,
    /// Wrong passwords counted in the lockout's window now, and where they came from
    /// (`web1 x2 via r1`).
    #[serde(default)]
    pub wrong_passwords: u32,
    #[serde(default)]
    pub wrong_password_sources: String,
    /// When the current password was set, when it expires and from when a login is warned
    /// (`YYYY-MM-DDTHH:MM:SSZ`; none: never recorded, never expires, no warning).
    #[serde(default)]
    pub password_set_at: Option<String>,
    #[serde(default)]
    pub password_expires: Option<String>,
    #[serde(default)]
    pub password_warn_from: Option<String>,
    /// Earlier password hashes remembered for the `history` rule (never the hashes).
    #[serde(default)]
    pub password_history: usize,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminErrorKind {
    /// The request was understood but refused (invalid change); nothing changed.
    Refused,
    /// The request could not be read (malformed, too large).
    BadRequest,
    /// The master failed (disk, database); nothing was acknowledged.
    Internal,
    /// The caller's uid may not use the admin socket (the master's `admin_uids`).
    PermissionDenied,
}

/// A host as listed (never its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    pub name: String,
    pub addresses: Vec<String>,
    pub groups: Vec<String>,
    /// Allowed to replicate.
    pub replica: bool,
    /// Allowed to ask about other hosts (a jump host or proxy).
    #[serde(default)]
    pub may_ask_for_others: bool,
}

/// A user as `lockout list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockoutEntry {
    pub user: String,
    /// When its lockout ends (`YYYY-MM-DDTHH:MM:SSZ`), if it is locked out now.
    pub locked_out_until: Option<String>,
    /// Wrong passwords counted in the window now (the lockout starts afresh after one).
    pub failures: u32,
    /// Where those came from: `web1 x2 via r1,master; web2 x1 via r2`.
    pub sources: String,
}

/// A host group as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub name: String,
    pub description: Option<String>,
    pub hosts: Vec<String>,
}

/// A user class as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassInfo {
    pub name: String,
    /// Users that have the class.
    pub users: Vec<String>,
    pub routes: usize,
}

/// A user as `user list` shows it (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub name: String,
    pub locked: bool,
    pub has_password: bool,
    pub classes: Vec<String>,
    pub routes: usize,
    /// Its Unix uid, if it has a Unix identity.
    pub uid: Option<u32>,
}

/// A host on the replica allow-list and its link, if it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaInfo {
    pub host: String,
    pub link: Option<ReplicaLinkStatus>,
}

/// One route and whose it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    pub target: RouteTarget,
    pub route: Route,
}

/// `gatehouse-admin status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub sequence: u64,
    /// Lowest sequence still in the change log (replicas behind it get a snapshot).
    pub oldest_log_seq: u64,
    pub hosts: usize,
    pub host_groups: usize,
    pub users: usize,
    pub locked_users: usize,
    /// Users whose password checks the central lockout refuses now.
    #[serde(default)]
    pub locked_out_users: usize,
    pub classes: usize,
    pub routes: usize,
    /// The replication allow-list.
    pub replicas_allowed: Vec<String>,
    /// Link states from replication (empty until it exists).
    pub replica_links: Vec<ReplicaLinkStatus>,
    /// The audit trail.
    #[serde(default)]
    pub audit: AuditStatus,
}

/// The outcome of `check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckDecision {
    Allow { route: String },
    Deny { reason: DenyReason },
}

/// Why a message could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("message of {len} bytes is over the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Writes one framed message.
pub fn write_message<T: Serialize>(out: &mut impl Write, message: &T) -> Result<(), ProtoError> {
    let text = ron::to_string(message).map_err(|e| ProtoError::Malformed(e.to_string()))?;
    let len = u32::try_from(text.len()).map_err(|_| ProtoError::TooLarge {
        len: text.len(),
        max: u32::MAX as usize,
    })?;
    // Requests may carry a password: neither copy of the text outlives the write.
    let text = Zeroizing::new(text);
    let mut frame = Zeroizing::new(Vec::with_capacity(4 + text.len()));
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(text.as_bytes());
    out.write_all(&frame)?;
    out.flush()?;
    Ok(())
}

/// Reads one framed message of at most `max` bytes. `Ok(None)`: the peer closed cleanly
/// before a new message. `Malformed` leaves the stream at the next message boundary.
pub fn read_message<T: DeserializeOwned>(
    input: &mut impl Read,
    max: usize,
) -> Result<Option<T>, ProtoError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < header.len() {
        match input.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(ProtoError::TooLarge { len, max });
    }
    // Wiped when dropped: a request may carry a password.
    let mut body = Zeroizing::new(vec![0u8; len]);
    input.read_exact(&mut body)?;
    let text = std::str::from_utf8(&body).map_err(|e| ProtoError::Malformed(e.to_string()))?;
    ron::from_str(text)
        .map(Some)
        .map_err(|e| ProtoError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_a_typed_error() {
        let request = AdminRequest::RouteAdd {
            target: RouteTarget::Class("ops".into()),
            route: Route {
                rule: "SSH:*->*@+web".into(),
                window: Some("Mon-Fri 08:00-18:00".into()),
                expires: None,
            },
        };
        let mut buf = Vec::new();
        write_message(&mut buf, &request).unwrap();
        write_message(&mut buf, &AdminRequest::Status).unwrap();
        let mut input = buf.as_slice();
        let first: Option<AdminRequest> = read_message(&mut input, MAX_REQUEST_BYTES).unwrap();
        assert_eq!(first, Some(request));
        let second: Option<AdminRequest> = read_message(&mut input, MAX_REQUEST_BYTES).unwrap();
        assert_eq!(second, Some(AdminRequest::Status));
        let end: Option<AdminRequest> = read_message(&mut input, MAX_REQUEST_BYTES).unwrap();
        assert_eq!(end, None);

        let mut garbage = 5u32.to_be_bytes().to_vec();
        garbage.extend_from_slice(b"\xff\xfe(((");
        let err = read_message::<AdminRequest>(&mut garbage.as_slice(), MAX_REQUEST_BYTES);
        assert!(matches!(err, Err(ProtoError::Malformed(_))));

        let huge = u32::MAX.to_be_bytes();
        let err = read_message::<AdminRequest>(&mut huge.as_slice(), MAX_REQUEST_BYTES);
        assert_eq!(
            err.unwrap_err().to_string(),
            "message of 4294967295 bytes is over the limit of 1048576"
        );
    }
}
