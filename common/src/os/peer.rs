//! Who is at the other end of a local (Unix-domain) socket: the kernel's word for the peer's
//! uid, checked both ways. A daemon accepts only the uids it is configured for; a client
//! (gatehouse-admin, the agent CLI, later the PAM module) checks that the socket file and the
//! process listening on it belong to the uid it expects before it sends anything, a password
//! above all.
//!
//! Not pure: system calls (`SO_PEERCRED` on Linux and Android, `getpeereid` on the BSDs and
//! macOS, `getpeerucred` on illumos and Solaris). On any other system the credentials are
//! unknown and every check fails closed. Called by the master's admin socket, the agent
//! daemon, and both command-line clients.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The peer's identity as the kernel recorded it (at `connect` for a client, at `listen` for
/// a server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    /// Effective uid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
}

/// The peer credentials of the connected Unix socket `socket`.
pub fn peer_credentials(socket: &impl AsRawFd) -> io::Result<PeerCredentials> {
    credentials_of(socket.as_raw_fd())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn credentials_of(fd: RawFd) -> io::Result<PeerCredentials> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a live ucred we own.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCredentials {
        uid: cred.uid,
        gid: cred.gid,
    })
}

#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
))]
fn credentials_of(fd: RawFd) -> io::Result<PeerCredentials> {
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: getpeereid writes two integers we own.
    if unsafe { libc::getpeereid(fd, &mut uid, &mut gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCredentials { uid, gid })
}

#[cfg(any(target_os = "illumos", target_os = "solaris"))]
fn credentials_of(fd: RawFd) -> io::Result<PeerCredentials> {
    let mut cred: *mut libc::ucred_t = std::ptr::null_mut();
    // SAFETY: getpeerucred allocates a ucred_t and stores its pointer in `cred`.
    if unsafe { libc::getpeerucred(fd, &mut cred) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `cred` is the valid ucred_t getpeerucred returned; it is freed exactly once.
    let (uid, gid) = unsafe {
        let ids = (libc::ucred_geteuid(cred), libc::ucred_getegid(cred));
        libc::ucred_free(cred);
        ids
    };
    // ucred_get*id return -1 (as uid_t) when the id is unknown: fail closed.
    if uid == libc::uid_t::MAX || gid == libc::gid_t::MAX {
        return Err(io::Error::other("the peer's credentials are unknown"));
    }
    Ok(PeerCredentials { uid, gid })
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly",
    target_os = "illumos",
    target_os = "solaris"
)))]
fn credentials_of(_fd: RawFd) -> io::Result<PeerCredentials> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "peer credentials are not supported on this system",
    ))
}

/// The uids a local socket trusts: root, this process's own uid (a process can never gain by
/// talking to itself), and the configured ones. Numbers, not names: resolving a name would go
/// through NSS, which on a managed host may ask the agent itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedUids(Vec<u32>);

impl AllowedUids {
    /// Root, `own` (this process's effective uid) and `configured`, without duplicates.
    pub fn new(own: u32, configured: &[u32]) -> Self {
        let mut uids = vec![0, own];
        uids.extend_from_slice(configured);
        uids.sort_unstable();
        uids.dedup();
        AllowedUids(uids)
    }

    /// Root, this process's effective uid and `configured`.
    pub fn for_this_process(configured: &[u32]) -> Self {
        Self::new(super::secure_file::effective_uid(), configured)
    }

    pub fn allows(&self, uid: u32) -> bool {
        self.0.binary_search(&uid).is_ok()
    }

    /// The uids, sorted: for messages.
    pub fn uids(&self) -> &[u32] {
        &self.0
    }
}

/// Why a client refused the daemon it reached.
#[derive(Debug, thiserror::Error)]
pub enum UntrustedServer {
    #[error("socket {path} is owned by uid {owner}, not by the daemon's expected uid (one of {expected:?}); refusing to talk to it")]
    SocketOwner {
        path: String,
        owner: u32,
        expected: Vec<u32>,
    },
    #[error("the process listening on {path} runs as uid {uid}, not as the daemon's expected uid (one of {expected:?}); refusing to talk to it")]
    PeerUid {
        path: String,
        uid: u32,
        expected: Vec<u32>,
    },
    #[error("socket {path}: cannot check who listens on it: {source}")]
    Unknown { path: String, source: io::Error },
}

/// Client side, before connecting: the socket file at `path` must be owned by an expected
/// uid (a missing file is left to `connect` to report).
pub fn check_socket_owner(path: &Path, expected: &AllowedUids) -> Result<(), UntrustedServer> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(UntrustedServer::Unknown {
                path: path.display().to_string(),
                source,
            })
        }
    };
    if expected.allows(meta.uid()) {
        Ok(())
    } else {
        Err(UntrustedServer::SocketOwner {
            path: path.display().to_string(),
            owner: meta.uid(),
            expected: expected.uids().to_vec(),
        })
    }
}

/// Client side, after connecting and before sending anything: the listening process must run
/// as an expected uid. This is the check that counts (the file's owner can be changed by
/// whoever owns the directory; the kernel's record of the listener cannot).
pub fn check_server_peer(
    socket: &impl AsRawFd,
    path: &Path,
    expected: &AllowedUids,
) -> Result<(), UntrustedServer> {
    let cred = peer_credentials(socket).map_err(|source| UntrustedServer::Unknown {
        path: path.display().to_string(),
        source,
    })?;
    if expected.allows(cred.uid) {
        Ok(())
    } else {
        Err(UntrustedServer::PeerUid {
            path: path.display().to_string(),
            uid: cred.uid,
            expected: expected.uids().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn root_and_the_own_uid_are_always_allowed() {
        let allowed = AllowedUids::new(1000, &[]);
        assert!(allowed.allows(0));
        assert!(allowed.allows(1000));
        assert!(!allowed.allows(1001));
        assert!(!allowed.allows(65534));
        let more = AllowedUids::new(0, &[33, 33, 0]);
        assert_eq!(more.uids(), &[0, 33]);
    }

    #[test]
    fn both_ends_of_a_socket_pair_see_this_process() {
        let (a, b) = UnixStream::pair().unwrap();
        let own = super::super::secure_file::effective_uid();
        assert_eq!(peer_credentials(&a).unwrap().uid, own);
        assert_eq!(peer_credentials(&b).unwrap().uid, own);
    }

    #[test]
    fn a_client_checks_the_socket_file_and_the_listener() {
        let dir = std::env::temp_dir().join(format!("gatehouse-peer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let _listener = UnixListener::bind(&path).unwrap();
        let own = super::super::secure_file::effective_uid();
        let mine = AllowedUids::new(own, &[]);
        check_socket_owner(&path, &mine).unwrap();
        let stream = UnixStream::connect(&path).unwrap();
        check_server_peer(&stream, &path, &mine).unwrap();
        // A client that expects someone else (as if this process were another user): a set
        // that leaves out this process's uid.
        let others = AllowedUids(vec![own.wrapping_add(1)]);
        assert!(matches!(
            check_socket_owner(&path, &others),
            Err(UntrustedServer::SocketOwner { .. })
        ));
        assert!(matches!(
            check_server_peer(&stream, &path, &others),
            Err(UntrustedServer::PeerUid { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
