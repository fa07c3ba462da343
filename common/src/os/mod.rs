//! What every daemon asks of the operating system. Not pure: system calls.
//!
//! - this file: process limits and the file-creation mask;
//! - [`secure_file`]: creating and checking files that hold secrets, and the directories
//!   they and the local sockets are in;
//! - [`key_file`]: a host's own node key file, read at start;
//! - [`peer`]: the peer credentials of local sockets, checked both ways.

pub mod key_file;
pub mod peer;
pub mod secure_file;

/// Raises the soft limit on open files to the hard limit and returns the new soft limit. A
/// replica holding 9950 agent connections needs more than the common default of 1024; the
/// hard limit is the administrator's ceiling (systemd `LimitNOFILE=`).
pub fn raise_fd_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a pointer to a live, correctly typed struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every platform
    Ok(limit.rlim_cur as u64)
}

/// Runs `create` with the process's file-creation mask set to `mask`, then restores it: a
/// socket or file created inside gets its restrictive mode from the moment it exists, with no
/// window in which others could open it. Call it before other threads start (the mask is
/// process-wide).
pub fn with_umask<T>(mask: u32, create: impl FnOnce() -> T) -> T {
    // SAFETY: umask only changes this process's file-creation mask.
    let old = unsafe { libc::umask(mask as libc::mode_t) };
    let result = create();
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    result
}
