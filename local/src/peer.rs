//! Who is on the other end of a local Unix socket. The agent reads its caller's uid to decide
//! what it may ask; a module reads the agent's uid and checks it against the socket's owner
//! before it trusts any answer (docs/SECURITY.md, "The login path").
//!
//! Not pure: one `getsockopt` and two `stat`s. Linux's SO_PEERCRED gives the credentials the
//! peer had when it connected (or listened), which it cannot change afterwards.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The peer's credentials at connect (or listen) time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// The credentials of the process on the other end of the connected Unix socket `fd`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn peer_cred(fd: RawFd) -> io::Result<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, which we own and whose size
    // `len` states; `fd` is only read.
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
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// Peer credentials are read with SO_PEERCRED, which this system does not have.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn peer_cred(_fd: RawFd) -> io::Result<PeerCred> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "peer credentials (SO_PEERCRED) are implemented for Linux only",
    ))
}

/// A module's check of the agent before trusting it: the agent (the peer of `socket`) runs as
/// root, or as the uid that owns the socket file, in a directory owned by root or that uid and
/// writable by nobody else. So only root, or an account root gave the socket's directory to,
/// can answer logins; a local user cannot put a socket of its own in the agent's place.
pub fn check_agent(socket: &Path, peer_uid: u32) -> Result<(), String> {
    if peer_uid == 0 {
        return Ok(());
    }
    let file = std::fs::symlink_metadata(socket)
        .map_err(|e| format!("cannot stat {}: {e}", socket.display()))?;
    let dir = socket.parent().unwrap_or(Path::new("/"));
    let dir_meta =
        std::fs::metadata(dir).map_err(|e| format!("cannot stat {}: {e}", dir.display()))?;
    judge_owner(
        peer_uid,
        file.uid(),
        (dir_meta.uid(), dir_meta.mode()),
        &dir.display().to_string(),
    )
}

/// The rule of [`check_agent`] on the facts it gathered (pure).
fn judge_owner(
    peer_uid: u32,
    socket_uid: u32,
    (dir_uid, dir_mode): (u32, u32),
    dir: &str,
) -> Result<(), String> {
    if peer_uid == 0 {
        return Ok(());
    }
    if socket_uid != peer_uid {
        return Err(format!(
            "the agent runs as uid {peer_uid} but its socket belongs to uid {socket_uid}"
        ));
    }
    if dir_uid != 0 && dir_uid != peer_uid {
        return Err(format!(
            "{dir} belongs to uid {dir_uid}, neither root nor the agent's uid {peer_uid}"
        ));
    }
    if dir_mode & 0o022 != 0 {
        return Err(format!(
            "{dir} is writable by group or others (mode {:o})",
            dir_mode & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_socket_pair_reports_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let cred = peer_cred(a.as_raw_fd()).unwrap();
        assert_eq!(cred.pid, std::process::id() as i32);
        // SAFETY: geteuid has no preconditions.
        assert_eq!(cred.uid, unsafe { libc::geteuid() });
    }

    #[test]
    fn a_non_root_agent_must_own_its_socket_in_a_private_directory() {
        let judge =
            |peer, socket, dir_uid, mode| judge_owner(peer, socket, (dir_uid, mode), "/run/gh");
        assert_eq!(judge(0, 4242, 4242, 0o777), Ok(()), "root is trusted");
        assert_eq!(judge(998, 998, 0, 0o755), Ok(()));
        assert_eq!(judge(998, 998, 998, 0o700), Ok(()));
        let err = judge(1000, 998, 0, 0o755).unwrap_err();
        assert_eq!(
            err,
            "the agent runs as uid 1000 but its socket belongs to uid 998"
        );
        let err = judge(998, 998, 1000, 0o755).unwrap_err();
        assert!(err.contains("belongs to uid 1000, neither root"), "{err}");
        for mode in [0o775, 0o757, 0o1777] {
            let err = judge(998, 998, 0, mode).unwrap_err();
            assert!(err.contains("writable by group or others"), "{err}");
        }
    }

    #[test]
    fn the_check_reads_the_real_socket_and_directory() {
        let dir = std::env::temp_dir().join(format!("gh-peer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.join("agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let owner = std::fs::metadata(&socket).unwrap().uid();
        assert_eq!(check_agent(&socket, owner), Ok(()));
        let stranger = owner.wrapping_add(4242).max(1);
        assert!(check_agent(&socket, stranger).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
