//! The admin socket: a Unix stream socket, mode 0600, served by an accept thread that starts
//! one thread per connection (at most [`MAX_ADMIN_CONNECTIONS`]).
//!
//! Not pure: sockets, files and threads. Called by the master daemon at start. The socket is
//! local-only by design: changing the security database needs root on the master host, never
//! a network path. A stale socket file left by a crashed master is removed; a live one (a
//! master answers on it) makes start fail, so two masters never share one admin path.
//!
//! Who may connect (docs/SECURITY.md, "Local sockets"): the socket's directory must be owned
//! by root or the master's uid and writable by nobody else (else the master refuses to start);
//! each connection's peer uid, as the kernel reports it, must be root, the master's own uid or
//! one of the config's `admin_uids`, else it gets one error and is closed before any request
//! is read.

use super::handler::{handle, AdminServices, Session};
use super::proto::{
    read_message, write_message, AdminErrorKind, AdminRequest, AdminResponse, ProtoError,
    MAX_REQUEST_BYTES, PROGRESS_INTERVAL,
};
use crate::audit::admin::{self, AdminCaller};
use crate::audit::Audit;
use crate::state::MasterState;
use crate::store::Progress;
use gatehouse_common::os::peer::{peer_credentials, AllowedUids};
use gatehouse_common::os::secure_file::{self, InsecurePath};
use gatehouse_common::service::kv;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Admin connections served at once: 16. Admins are people and scripts; more than a handful
/// at once means something is looping, and each connection costs a thread.
pub const MAX_ADMIN_CONNECTIONS: usize = 16;
/// A connection that sends nothing for 60 s is closed, so a stuck client cannot hold one of
/// the [`MAX_ADMIN_CONNECTIONS`] slots forever.
pub const ADMIN_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// A response not taken by the client within 10 s closes the connection.
pub const ADMIN_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("admin socket {path}: another master is already listening there")]
    Live { path: String },
    #[error("admin socket {path}: exists and is not a socket; refusing to replace it")]
    NotASocket { path: String },
    #[error("admin socket {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(transparent)]
    Insecure(#[from] InsecurePath),
}

/// Binds the admin socket at `path` with mode 0600, creating its directory (mode 0700) if
/// missing, refusing a directory others could write to or that another user owns, and
/// removing a stale socket.
pub fn bind(path: &Path) -> Result<UnixListener, BindError> {
    let name = path.display().to_string();
    let io_err = |source| BindError::Io {
        path: name.clone(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err)?;
    }
    // Before anything at the path is trusted: in a directory others can write, the "stale
    // socket" could be theirs and the new one could be swapped after the bind.
    secure_file::check_trusted_dir(dir, "admin socket")?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(BindError::NotASocket { path: name });
        }
        if UnixStream::connect(path).is_ok() {
            return Err(BindError::Live { path: name });
        }
        log::info!("removing stale admin socket {name}");
        std::fs::remove_file(path).map_err(io_err)?;
    }
    // 0600 from the moment the socket exists (the umask), and whatever umask the service
    // manager set (the chmod). The master binds before it starts any thread.
    let listener =
        gatehouse_common::os::with_umask(0o177, || UnixListener::bind(path)).map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    Ok(listener)
}

/// Starts the accept thread. Connections from uids `allowed` does not hold are refused.
/// With an audit trail in `services`, every change and refused connection is recorded
/// (`audit::admin`).
pub fn spawn(
    listener: UnixListener,
    state: Arc<MasterState>,
    allowed: AllowedUids,
    services: AdminServices,
) -> io::Result<()> {
    let active = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("admin-accept".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        let audit = services.audit.as_deref();
                        if let Some((stream, uid)) = admit(stream, &allowed, audit) {
                            accept(stream, uid, &state, &services, &active);
                        }
                    }
                    Err(e) => log::warn!("admin socket accept: {e}"),
                }
            }
        })
        .map(|_| ())
}

/// The connection and its peer's uid if that uid is allowed; otherwise one error answer, a
/// log line, an audit record, and `None` (the connection closes when dropped, before any
/// request is read).
fn admit(
    mut stream: UnixStream,
    allowed: &AllowedUids,
    audit: Option<&Audit>,
) -> Option<(UnixStream, u32)> {
    let mut denied_uid = None;
    let refusal = match peer_credentials(&stream) {
        Ok(peer) if allowed.allows(peer.uid) => return Some((stream, peer.uid)),
        Ok(peer) => {
            denied_uid = Some(peer.uid);
            log::warn!(
                target: "gatehouse::admin",
                "refused an admin connection from uid {} (allowed: {:?}; see admin_uids)",
                peer.uid,
                allowed.uids()
            );
            format!(
                "permission denied: uid {} may not use the admin socket (allowed: {:?}; the master's admin_uids setting adds more)",
                peer.uid,
                allowed.uids()
            )
        }
        Err(e) => {
            log::warn!(target: "gatehouse::admin", "refused an admin connection: cannot read its credentials: {e}");
            "permission denied: the caller's credentials are unknown".to_string()
        }
    };
    let _ = stream.set_write_timeout(Some(ADMIN_WRITE_TIMEOUT));
    let reply = AdminResponse::Error {
        kind: AdminErrorKind::PermissionDenied,
        message: refusal,
    };
    if let (Some(audit), Some(uid)) = (audit, denied_uid) {
        let caller = AdminCaller::from_uid(uid);
        admin::record(audit, &caller, "connect".into(), &reply);
    }
    let _ = write_message(&mut stream, &reply);
    None
}

fn accept(
    mut stream: UnixStream,
    uid: u32,
    state: &Arc<MasterState>,
    services: &AdminServices,
    active: &Arc<AtomicUsize>,
) {
    let _ = stream.set_read_timeout(Some(ADMIN_READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(ADMIN_WRITE_TIMEOUT));
    if active.fetch_add(1, Ordering::AcqRel) >= MAX_ADMIN_CONNECTIONS {
        active.fetch_sub(1, Ordering::AcqRel);
        let busy = AdminResponse::Error {
            kind: AdminErrorKind::Internal,
            message: format!("too many admin connections (limit {MAX_ADMIN_CONNECTIONS})"),
        };
        let _ = write_message(&mut stream, &busy);
        return;
    }
    let state = state.clone();
    let services = services.clone();
    let active_conn = active.clone();
    let spawned = std::thread::Builder::new()
        .name("admin-conn".into())
        .spawn(move || {
            let caller = AdminCaller::from_uid(uid);
            serve(stream, &state, &caller, services);
            active_conn.fetch_sub(1, Ordering::AcqRel);
        });
    if let Err(e) = spawned {
        active.fetch_sub(1, Ordering::AcqRel);
        log::error!("cannot start admin connection thread: {e}");
    }
}

/// Serves one connection from `caller` until the client closes it or sends something
/// unreadable. Each request is logged, and recorded in the audit trail when it is an action,
/// after its outcome.
pub fn serve(
    mut stream: UnixStream,
    state: &MasterState,
    caller: &AdminCaller,
    services: AdminServices,
) {
    let audit = services.audit.clone();
    let mut session = Session::new(services);
    loop {
        let request = match read_message::<AdminRequest>(&mut stream, MAX_REQUEST_BYTES) {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(ProtoError::Malformed(reason)) => {
                // The frame was read whole, so the stream is still in step: answer and go on.
                log::warn!("admin: malformed request: {reason}");
                let reply = AdminResponse::Error {
                    kind: AdminErrorKind::BadRequest,
                    message: format!("malformed request: {reason}"),
                };
                if write_message(&mut stream, &reply).is_err() {
                    return;
                }
                continue;
            }
            Err(ProtoError::TooLarge { len, max }) => {
                log::warn!("admin: request of {len} bytes refused (limit {max}); closing");
                let reply = AdminResponse::Error {
                    kind: AdminErrorKind::BadRequest,
                    message: format!("request of {len} bytes is over the limit of {max}"),
                };
                let _ = write_message(&mut stream, &reply);
                return;
            }
            Err(ProtoError::Io(e)) => {
                log::debug!("admin connection ended: {e}");
                return;
            }
        };
        let command = admin::describe(&request);
        let recorded = admin::is_recorded(&request);
        let mut news = ProgressWriter::new(&mut stream);
        let response = handle(state, &mut session, request, &mut |p| news.report(p));
        let lost = news.failed;
        let (outcome, detail) = admin::outcome(&response);
        // After the outcome, so a refused change never looks committed.
        log::info!(
            target: "gatehouse::admin",
            "admin request {command} uid={} caller={} outcome={} detail={}",
            caller.uid,
            kv::value(&caller.name),
            outcome.name(),
            kv::value(&detail)
        );
        if let (Some(audit), true) = (&audit, recorded) {
            admin::record(audit, caller, command, &response);
        }
        if lost {
            return;
        }
        if let Err(e) = write_message(&mut stream, &response) {
            log::debug!("admin: cannot send response: {e}");
            return;
        }
    }
}

/// Sends a long request's progress to the client, at most every [`PROGRESS_INTERVAL`] or
/// when the stage changes; after a failed write it stays quiet (the connection is closed
/// once the request is done).
struct ProgressWriter<'a> {
    stream: &'a mut UnixStream,
    last: Option<(Instant, &'static str)>,
    failed: bool,
}

impl<'a> ProgressWriter<'a> {
    fn new(stream: &'a mut UnixStream) -> Self {
        ProgressWriter {
            stream,
            last: None,
            failed: false,
        }
    }

    fn report(&mut self, progress: Progress) {
        let now = Instant::now();
        let due = self.last.is_none_or(|(at, stage)| {
            stage != progress.stage || now.duration_since(at) >= PROGRESS_INTERVAL
        });
        if self.failed || !due {
            return;
        }
        self.last = Some((now, progress.stage));
        let news = AdminResponse::Progress {
            stage: progress.stage.to_string(),
            done: progress.done,
            total: progress.total,
        };
        if write_message(self.stream, &news).is_err() {
            self.failed = true;
        }
    }
}
