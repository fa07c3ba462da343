//! Daemon start-up steps that touch the system: the node key file (private, not an example
//! key), the open-file limit, and the local socket (a trusted directory, stale file, bind
//! with mode 0666). Called once by `daemon::run`.

use super::DaemonError;
use gatehouse_common::nodekeys::NodeKey;
use gatehouse_common::os::key_file::read_node_key_file;
use gatehouse_common::os::secure_file::check_trusted_dir;
use mio::net::UnixListener;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Mode of the local socket (0666): every process may connect, because NSS lookups run in
/// every process (`ls -l` as any user). What a caller may ask is decided per request from its
/// uid as the kernel reported it (`daemon::access`): identity lookups for all; authorize,
/// authenticate and status for root, the agent's own uid and `trusted_uids` only
/// (docs/SECURITY.md, "Local sockets").
pub const SOCKET_MODE: u32 = 0o666;
/// Mode of a socket directory the daemon creates (0755): callers must be able to reach the
/// socket; the socket's own mode is what restricts them.
pub const SOCKET_DIR_MODE: u32 = 0o755;
/// Reads this host's node key: the file must be private to the agent's user (0600, in a
/// directory only root or that user can write) and hold 64 hex digits that are not a
/// published example key (`gatehouse_common::os::key_file`).
pub fn read_node_key(path: &Path) -> Result<NodeKey, DaemonError> {
    read_node_key_file(path).map_err(|e| DaemonError::NodeKey {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Raises the soft open-file limit to the hard limit; returns (soft, hard) after.
pub fn raise_nofile_limit() -> io::Result<(libc::rlim_t, libc::rlim_t)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the rlimit struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// Creates the socket's directory if missing (mode 0755), refuses one that another user owns
/// or that others can write to, removes a stale socket file (refusing when another daemon
/// answers on it, or when the path is not a socket), binds, and sets mode 0666.
pub fn bind_socket(path: &Path) -> Result<UnixListener, DaemonError> {
    let bad = |reason: String| DaemonError::Socket {
        path: path.to_path_buf(),
        reason,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(SOCKET_DIR_MODE)
        .create(dir)
        .map_err(|e| bad(format!("cannot create {}: {e}", dir.display())))?;
    // Before anything at the path is trusted: in a directory others can write, the "stale
    // socket" could be theirs, and ours could be replaced after the bind.
    check_trusted_dir(dir, "agent socket").map_err(|e| bad(e.to_string()))?;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(bad(e.to_string())),
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(bad("exists and is not a socket; not removing it".into()));
        }
        Ok(_) => {
            if UnixStream::connect(path).is_ok() {
                return Err(bad("another agent daemon is listening on it".into()));
            }
            std::fs::remove_file(path).map_err(|e| bad(format!("removing stale socket: {e}")))?;
            log::info!("removed stale socket {}", path.display());
        }
    }
    // The chmod makes the socket 0666 whatever umask the service manager set; the per-request
    // uid check, not the mode, is what protects authorize and authenticate.
    let bound = gatehouse_common::os::with_umask(0o111, || UnixListener::bind(path));
    let listener = bound.map_err(|e| bad(format!("cannot bind: {e}")))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|e| bad(format!("cannot set mode 0666: {e}")))?;
    Ok(listener)
}

/// Removes the socket file on shutdown (a missing file is fine).
pub fn remove_socket(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            log::warn!("cannot remove {}: {e}", path.display());
        }
    }
}
