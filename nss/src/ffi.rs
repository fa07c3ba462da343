//! The `_nss_gatehouse_*` entry points glibc calls, with its contract exact:
//!
//! | outcome | status | `*errnop` |
//! |---|---|---|
//! | found, copied into the buffer | `NSS_STATUS_SUCCESS` | untouched |
//! | the buffer is too small | `NSS_STATUS_TRYAGAIN` | `ERANGE` (glibc retries with a bigger one) |
//! | no such entry | `NSS_STATUS_NOTFOUND` | `ENOENT` |
//! | no answer (agent unreachable or untrusted, no server and nothing cached, bypassed) | `NSS_STATUS_UNAVAIL` | `ENOENT` |
//! | `initgroups`: out of memory growing the list | `NSS_STATUS_TRYAGAIN` | `ENOMEM` |
//!
//! All of the module's unsafe code is here; each entry point runs inside `catch_unwind`, and a
//! panic answers UNAVAIL.

use super::guard;
use super::pack::{pack_group, pack_passwd};
use gatehouse_local::client::Asker;
use gatehouse_local::{LocalRequest, LocalResponse, Lookup};
use std::ffi::{c_char, c_int, c_long, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// glibc's `enum nss_status`.
#[allow(non_camel_case_types)]
pub type nss_status = c_int;
pub const NSS_STATUS_TRYAGAIN: nss_status = -2;
pub const NSS_STATUS_UNAVAIL: nss_status = -1;
pub const NSS_STATUS_NOTFOUND: nss_status = 0;
pub const NSS_STATUS_SUCCESS: nss_status = 1;

/// Longest name the module asks about (255 bytes, the wire's limit); a longer one is simply
/// not found.
const MAX_NAME: usize = gatehouse_common::wire::MAX_USER_LEN;

/// What the agent said, reduced to what NSS can express.
enum Answer {
    Found(Box<LocalResponse>),
    NotFound,
    Unavailable,
}

impl Answer {
    /// The answer found, or the status to return without one (`None`: UNAVAIL).
    fn found(self) -> Result<LocalResponse, Option<nss_status>> {
        match self {
            Answer::Found(found) => Ok(*found),
            Answer::NotFound => Err(Some(NSS_STATUS_NOTFOUND)),
            Answer::Unavailable => Err(None),
        }
    }
}

/// Asks the agent (unless guarded against).
fn ask(lookup: Lookup) -> Answer {
    let Some(_entered) = guard::enter() else {
        return Answer::Unavailable;
    };
    match Asker::new(guard::socket_path()).ask(&LocalRequest::Lookup(lookup)) {
        Ok(LocalResponse::NotFound) => Answer::NotFound,
        Ok(LocalResponse::Error { .. }) | Err(_) => Answer::Unavailable,
        Ok(found) => Answer::Found(Box::new(found)),
    }
}

/// A name from the caller, or `None` (NULL, not UTF-8, too long: not found).
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
unsafe fn name_arg(name: *const c_char) -> Option<String> {
    if name.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated, per the caller.
    let name = unsafe { CStr::from_ptr(name) }.to_str().ok()?;
    (name.len() <= MAX_NAME).then(|| name.to_string())
}

/// Sets `*errnop` (if the pointer is usable) and returns `status`.
///
/// # Safety
/// `errnop` is NULL or points to a writable int.
unsafe fn fail(errnop: *mut c_int, status: nss_status, errno: c_int) -> nss_status {
    // SAFETY: per the caller.
    if let Some(slot) = unsafe { errnop.as_mut() } {
        *slot = errno;
    }
    status
}

/// Runs `body`, turning a panic into UNAVAIL.
///
/// # Safety
/// `errnop` is NULL or points to a writable int.
unsafe fn guarded(errnop: *mut c_int, body: impl FnOnce() -> nss_status) -> nss_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(status) => status,
        // SAFETY: per the caller.
        Err(_) => unsafe { fail(errnop, NSS_STATUS_UNAVAIL, libc::ENOENT) },
    }
}

/// Copies a passwd answer into `result` and `buffer`.
///
/// # Safety
/// glibc's contract: `result` writable, `buffer` writable for `buflen` bytes, `errnop` an int.
unsafe fn fill_passwd(
    answer: Answer,
    result: *mut libc::passwd,
    buffer: *mut c_char,
    buflen: usize,
    errnop: *mut c_int,
) -> nss_status {
    let entry = match answer.found() {
        Ok(LocalResponse::User(entry)) => entry,
        // SAFETY: forwarded.
        Ok(_) | Err(None) => return unsafe { fail(errnop, NSS_STATUS_UNAVAIL, libc::ENOENT) },
        // SAFETY: forwarded.
        Err(Some(status)) => return unsafe { fail(errnop, status, libc::ENOENT) },
    };
    if result.is_null() || buffer.is_null() {
        // SAFETY: forwarded.
        return unsafe { fail(errnop, NSS_STATUS_UNAVAIL, libc::ENOENT) };
    }
    // SAFETY: the caller gives `buflen` writable bytes at `buffer`.
    let buf = unsafe { std::slice::from_raw_parts_mut(buffer.cast::<u8>(), buflen) };
    let Ok(at) = pack_passwd(&entry, buf) else {
        // SAFETY: forwarded.
        return unsafe { fail(errnop, NSS_STATUS_TRYAGAIN, libc::ERANGE) };
    };
    // SAFETY: offsets are within `buf` (pack_passwd wrote there); `result` is writable.
    unsafe {
        let pw = &mut *result;
        pw.pw_name = buffer.add(at.name);
        pw.pw_passwd = buffer.add(at.passwd);
        pw.pw_uid = entry.uid;
        pw.pw_gid = entry.gid;
        pw.pw_gecos = buffer.add(at.gecos);
        pw.pw_dir = buffer.add(at.dir);
        pw.pw_shell = buffer.add(at.shell);
    }
    NSS_STATUS_SUCCESS
}

/// Copies a group answer into `result` and `buffer`.
///
/// # Safety
/// As [`fill_passwd`], for a `struct group`.
unsafe fn fill_group(
    answer: Answer,
    result: *mut libc::group,
    buffer: *mut c_char,
    buflen: usize,
    errnop: *mut c_int,
) -> nss_status {
    let entry = match answer.found() {
        Ok(LocalResponse::Group(entry)) => entry,
        // SAFETY: forwarded.
        Ok(_) | Err(None) => return unsafe { fail(errnop, NSS_STATUS_UNAVAIL, libc::ENOENT) },
        // SAFETY: forwarded.
        Err(Some(status)) => return unsafe { fail(errnop, status, libc::ENOENT) },
    };
    if result.is_null() || buffer.is_null() {
        // SAFETY: forwarded.
        return unsafe { fail(errnop, NSS_STATUS_UNAVAIL, libc::ENOENT) };
    }
    // SAFETY: the caller gives `buflen` writable bytes at `buffer`.
    let buf = unsafe { std::slice::from_raw_parts_mut(buffer.cast::<u8>(), buflen) };
    let Ok(at) = pack_group(&entry, buf, buffer as usize) else {
        // SAFETY: forwarded.
        return unsafe { fail(errnop, NSS_STATUS_TRYAGAIN, libc::ERANGE) };
    };
    // SAFETY: offsets are within `buf`; the member array is pointer-aligned and holds the
    // addresses of strings in `buf`, then NULL.
    unsafe {
        let gr = &mut *result;
        gr.gr_name = buffer.add(at.name);
        gr.gr_passwd = buffer.add(at.passwd);
        gr.gr_gid = entry.gid;
        gr.gr_mem = buffer.add(at.members).cast::<*mut c_char>();
    }
    NSS_STATUS_SUCCESS
}

/// # Safety
/// glibc's `getpwnam_r` module contract.
#[no_mangle]
pub unsafe extern "C" fn _nss_gatehouse_getpwnam_r(
    name: *const c_char,
    result: *mut libc::passwd,
    buffer: *mut c_char,
    buflen: usize,
    errnop: *mut c_int,
) -> nss_status {
    // SAFETY: forwarded from glibc throughout.
    unsafe {
        guarded(errnop, || match name_arg(name) {
            Some(name) => fill_passwd(
                ask(Lookup::UserByName(name)),
                result,
                buffer,
                buflen,
                errnop,
            ),
            None => fail(errnop, NSS_STATUS_NOTFOUND, libc::ENOENT),
        })
    }
}

/// # Safety
/// glibc's `getpwuid_r` module contract.
#[no_mangle]
pub unsafe extern "C" fn _nss_gatehouse_getpwuid_r(
    uid: libc::uid_t,
    result: *mut libc::passwd,
    buffer: *mut c_char,
    buflen: usize,
    errnop: *mut c_int,
) -> nss_status {
    // SAFETY: forwarded from glibc.
    unsafe {
        guarded(errnop, || {
            fill_passwd(ask(Lookup::UserByUid(uid)), result, buffer, buflen, errnop)
        })
    }
}

/// # Safety
/// glibc's `getgrnam_r` module contract.
#[no_mangle]
pub unsafe extern "C" fn _nss_gatehouse_getgrnam_r(
    name: *const c_char,
    result: *mut libc::group,
    buffer: *mut c_char,
    buflen: usize,
    errnop: *mut c_int,
) -> nss_status {
    // SAFETY: forwarded from glibc throughout.
    unsafe {
        guarded(errnop, || match name_arg(name) {
            Some(name) => fill_group(
                ask(Lookup::GroupByName(name)),
                result,
                buffer,
                buflen,
                errnop,
            ),
            None => fail(errnop, NSS_STATUS_NOTFOUND, libc::ENOENT),
        })
    }
}

/// # Safety
/// glibc's `getgrgid_r` module contract.
#[no_mangle]
pub unsafe extern "C" fn _nss_gatehouse_getgrgid_r(
    gid: libc::gid_t,
    result: *mut libc::group,
    buffer: *mut c_char,
    buflen: usize,
    errnop: *mut c_int,
) -> nss_status {
    // SAFETY: forwarded from glibc.
    unsafe {
        guarded(errnop, || {
            fill_group(ask(Lookup::GroupByGid(gid)), result, buffer, buflen, errnop)
        })
    }
}

/// Adds the gids of `user`'s Unix groups (but `group`, its primary gid, and any already
/// listed) to `*groupsp[*start..]`, growing the array with `realloc` up to `limit` entries
/// (`limit <= 0`: no limit). SUCCESS for a known user (even with no groups), NOTFOUND for an
/// unknown one.
///
/// # Safety
/// glibc's `initgroups_dyn` module contract: `*groupsp` is a malloc'd array of `*size` gids,
/// `*start` of them in use.
#[no_mangle]
pub unsafe extern "C" fn _nss_gatehouse_initgroups_dyn(
    user: *const c_char,
    group: libc::gid_t,
    start: *mut c_long,
    size: *mut c_long,
    groupsp: *mut *mut libc::gid_t,
    limit: c_long,
    errnop: *mut c_int,
) -> nss_status {
    // SAFETY: forwarded from glibc throughout.
    unsafe {
        guarded(errnop, || {
            let Some(name) = name_arg(user) else {
                return fail(errnop, NSS_STATUS_NOTFOUND, libc::ENOENT);
            };
            let gids = match ask(Lookup::GroupsOfUser(name)).found() {
                Ok(LocalResponse::Groups(gids)) => gids,
                Ok(_) | Err(None) => return fail(errnop, NSS_STATUS_UNAVAIL, libc::ENOENT),
                Err(Some(status)) => return fail(errnop, status, libc::ENOENT),
            };
            if start.is_null() || size.is_null() || groupsp.is_null() || (*groupsp).is_null() {
                return fail(errnop, NSS_STATUS_UNAVAIL, libc::ENOENT);
            }
            for gid in gids {
                let used = usize::try_from(*start).unwrap_or(0);
                let listed = std::slice::from_raw_parts(*groupsp, used);
                if gid == group || listed.contains(&gid) {
                    continue;
                }
                if *start >= *size {
                    if limit > 0 && *size >= limit {
                        break; // the caller's maximum: the rest is dropped, as nss_files does
                    }
                    let mut grown = (*size).saturating_mul(2).max(*start + 1).max(8);
                    if limit > 0 {
                        grown = grown.min(limit);
                    }
                    let bytes = usize::try_from(grown)
                        .unwrap_or(usize::MAX)
                        .saturating_mul(std::mem::size_of::<libc::gid_t>());
                    let fresh = libc::realloc((*groupsp).cast(), bytes).cast::<libc::gid_t>();
                    if fresh.is_null() {
                        return fail(errnop, NSS_STATUS_TRYAGAIN, libc::ENOMEM);
                    }
                    *groupsp = fresh;
                    *size = grown;
                }
                *(*groupsp).add(used) = gid;
                *start += 1;
            }
            NSS_STATUS_SUCCESS
        })
    }
}

/// Enumeration lists nothing (see the crate header): `setpwent` succeeds, the first
/// `getpwent_r` reports the end.
#[no_mangle]
pub extern "C" fn _nss_gatehouse_setpwent(_stayopen: c_int) -> nss_status {
    NSS_STATUS_SUCCESS
}

#[no_mangle]
pub extern "C" fn _nss_gatehouse_endpwent() -> nss_status {
    NSS_STATUS_SUCCESS
}

/// # Safety
/// glibc's `getpwent_r` contract (`errnop` an int).
#[no_mangle]
pub unsafe extern "C" fn _nss_gatehouse_getpwent_r(
    _result: *mut libc::passwd,
    _buffer: *mut c_char,
    _buflen: usize,
    errnop: *mut c_int,
) -> nss_status {
    // SAFETY: forwarded from glibc.
    unsafe { fail(errnop, NSS_STATUS_NOTFOUND, libc::ENOENT) }
}

#[no_mangle]
pub extern "C" fn _nss_gatehouse_setgrent(_stayopen: c_int) -> nss_status {
    NSS_STATUS_SUCCESS
}

#[no_mangle]
pub extern "C" fn _nss_gatehouse_endgrent() -> nss_status {
    NSS_STATUS_SUCCESS
}

/// # Safety
/// glibc's `getgrent_r` contract (`errnop` an int).
#[no_mangle]
pub unsafe extern "C" fn _nss_gatehouse_getgrent_r(
    _result: *mut libc::group,
    _buffer: *mut c_char,
    _buflen: usize,
    errnop: *mut c_int,
) -> nss_status {
    // SAFETY: forwarded from glibc.
    unsafe { fail(errnop, NSS_STATUS_NOTFOUND, libc::ENOENT) }
}

#[cfg(test)]
#[path = "ffi_tests.rs"]
mod tests;
