//! Files that hold secrets (stores, node keys, databases, status files) and the directories
//! they and the local sockets live in: created private to the daemon's user from the first
//! instant, and checked before a daemon trusts them, as sshd's `StrictModes` checks a user's
//! keys.
//!
//! Not pure: file-system calls. Called by every daemon at start (the stores, key files, the
//! replica's database file, the socket directories) and by whatever writes a secret file (the
//! admin CLI's key files and exports, the replica's status file, the load generator's fleets).
//!
//! The rules (docs/SECURITY.md, "Secrets at rest and in memory"):
//! - a secret file is a regular file owned by the daemon's effective uid, with no permission
//!   bit for group or others (0600 or stricter);
//! - the directory it is in is owned by root or the daemon's uid and writable by nobody else,
//!   so nobody else can replace the file or plant a link in its place;
//! - every directory above that is owned by root or the daemon's uid, and writable by others
//!   only with the sticky bit (as `/tmp`), where others cannot rename what they do not own.
//!
//! Paths are checked after resolving symbolic links, so a link is judged by what it points at.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Mode of every secret file Gatehouse creates: read and write for its owner only.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// File-creation mask around code that creates secret files we do not open ourselves
/// (SQLite's database, `-wal` and `-shm`): nothing for group or others.
pub const PRIVATE_UMASK: u32 = 0o077;
/// Permission bits a secret file must not have: any access by group or others.
const OPEN_TO_OTHERS: u32 = 0o077;
/// Permission bits a trusted directory must not have: write by group or others.
const WRITABLE_BY_OTHERS: u32 = 0o022;
/// The sticky bit: in such a directory only an entry's owner may rename or remove it.
const STICKY: u32 = 0o1000;

/// Why a file or directory is not trusted with secrets. Each message names the path and the
/// command that fixes it.
#[derive(Debug, thiserror::Error)]
pub enum InsecurePath {
    #[error("{what} {path}: group or others have access to it (mode {mode:04o}); it holds secrets. Fix: chmod 600 {path}")]
    OpenToOthers {
        what: &'static str,
        path: String,
        mode: u32,
    },
    #[error("{what} {path}: owned by uid {owner}, but this daemon runs as uid {euid}; refusing a secret another user controls. Fix: chown {euid} {path} (or run the daemon as uid {owner})")]
    FileOwner {
        what: &'static str,
        path: String,
        owner: u32,
        euid: u32,
    },
    #[error("{what} {path}: not a regular file")]
    NotAFile { what: &'static str, path: String },
    #[error("directory {path} (holding the {what}): writable by group or others (mode {mode:04o}), who could replace what is in it. Fix: chmod go-w {path}")]
    DirWritable {
        what: &'static str,
        path: String,
        mode: u32,
    },
    #[error("directory {path} (holding the {what}): owned by uid {owner}, neither root nor this daemon's uid {euid}, so that user could replace what is in it. Fix: chown root {path}")]
    DirOwner {
        what: &'static str,
        path: String,
        owner: u32,
        euid: u32,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: io::Error,
    },
}

/// This process's effective uid: the owner every secret file must have.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Checks that `path` (which must exist) is a private regular file of this process's user in
/// a trusted directory. `what` names it in the error ("store", "node key file", ...).
pub fn check_private_file(path: &Path, what: &'static str) -> Result<(), InsecurePath> {
    let io_err = |source| InsecurePath::Io {
        what,
        path: path.display().to_string(),
        source,
    };
    let real = path.canonicalize().map_err(io_err)?;
    let meta = std::fs::metadata(&real).map_err(io_err)?;
    let name = path.display().to_string();
    if !meta.is_file() {
        return Err(InsecurePath::NotAFile { what, path: name });
    }
    let euid = effective_uid();
    if meta.uid() != euid {
        return Err(InsecurePath::FileOwner {
            what,
            path: name,
            owner: meta.uid(),
            euid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & OPEN_TO_OTHERS != 0 {
        return Err(InsecurePath::OpenToOthers {
            what,
            path: name,
            mode,
        });
    }
    match real.parent() {
        Some(dir) => check_trusted_dir(dir, what),
        None => Ok(()),
    }
}

/// [`check_private_file`] when `path` exists; `Ok(false)` when it does not.
pub fn check_private_file_if_present(
    path: &Path,
    what: &'static str,
) -> Result<bool, InsecurePath> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        _ => check_private_file(path, what).map(|()| true),
    }
}

/// Checks that `dir` (which must exist) may hold secrets or a local socket: owned by root or
/// this process's user and writable by nobody else, and every directory above it owned by
/// root or this user and writable by others only with the sticky bit.
pub fn check_trusted_dir(dir: &Path, what: &'static str) -> Result<(), InsecurePath> {
    let real = dir.canonicalize().map_err(|source| InsecurePath::Io {
        what,
        path: dir.display().to_string(),
        source,
    })?;
    let euid = effective_uid();
    for (depth, ancestor) in real.ancestors().enumerate() {
        let name = ancestor.display().to_string();
        let meta = std::fs::metadata(ancestor).map_err(|source| InsecurePath::Io {
            what,
            path: name.clone(),
            source,
        })?;
        let owner = meta.uid();
        if owner != 0 && owner != euid {
            return Err(InsecurePath::DirOwner {
                what,
                path: name,
                owner,
                euid,
            });
        }
        let mode = meta.mode() & 0o7777;
        let sticky_above = depth > 0 && mode & STICKY != 0;
        if mode & WRITABLE_BY_OTHERS != 0 && !sticky_above {
            return Err(InsecurePath::DirWritable {
                what,
                path: name,
                mode,
            });
        }
    }
    Ok(())
}

/// Whether this process may create files in `dir` (access(2) with W_OK and X_OK: the real
/// uid's view, which for a daemon is its own).
pub fn writable_dir(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// Sets `path` to [`PRIVATE_FILE_MODE`] if it exists (a missing file is fine): for files
/// another library created, after it created them under [`PRIVATE_UMASK`].
pub fn restrict_to_owner(path: &Path) -> io::Result<()> {
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(PRIVATE_FILE_MODE)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Whether [`create_private_file`] may replace an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Fail if the file exists (a new key must never overwrite an old one).
    Refuse,
    /// Truncate it (and make it private).
    Replace,
}

/// Opens `path` for writing as a private file: created with mode 0600 (the umask can only
/// remove bits), and an existing file replaced only as `existing` allows and set to 0600
/// before anything is written to it.
pub fn create_private_file(path: &Path, existing: Existing) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).mode(PRIVATE_FILE_MODE);
    match existing {
        Existing::Refuse => options.create_new(true),
        Existing::Replace => options.create(true).truncate(true),
    };
    let file = options.open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(PRIVATE_FILE_MODE))?;
    Ok(file)
}

/// Writes `bytes` to `path` through a private temporary file and a rename, so a reader
/// never sees half a file and the file is never readable by others, not even for an instant.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temporary_sibling(path);
    let mut file = create_private_file(&tmp, Existing::Replace)?;
    file.write_all(bytes)?;
    drop(file);
    std::fs::rename(tmp, path)
}

fn temporary_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Reads a small secret text file after [`check_private_file`]; the text is wiped from
/// memory when dropped. A file over `max_bytes` is refused without reading it all.
pub fn read_private_file(
    path: &Path,
    what: &'static str,
    max_bytes: u64,
) -> Result<Zeroizing<String>, InsecurePath> {
    check_private_file(path, what)?;
    let io_err = |source| InsecurePath::Io {
        what,
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    if len > max_bytes {
        return Err(io_err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{len} bytes, more than the {max_bytes} such a file can hold"),
        )));
    }
    // Read into a buffer sized up front, so no copy of the secret is left behind by a
    // growing allocation.
    let mut text = Zeroizing::new(String::with_capacity(max_bytes as usize + 1));
    file.take(max_bytes + 1)
        .read_to_string(&mut text)
        .map_err(io_err)?;
    Ok(text)
}

#[cfg(test)]
#[path = "secure_file_tests.rs"]
mod tests;
