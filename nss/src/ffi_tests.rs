//! The entry points called directly, as glibc calls them, against a fake agent on a socket:
//! every buffer size below the need is ERANGE and the next succeeds, unknown names are
//! NOTFOUND/ENOENT, an agent without an answer is UNAVAIL, initgroups grows and dedups the
//! caller's list, and the bypass keeps the agent's own lookups away.

use super::*;
use gatehouse_local::codec::{decode_request, encode_response, FrameBuf, MAX_REQUEST_FRAME};
use gatehouse_local::{GroupEntry, LocalErrorKind, PasswdEntry};
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::OnceLock;

fn alice() -> PasswdEntry {
    PasswdEntry::example()
}

fn ops() -> GroupEntry {
    GroupEntry {
        name: "ops".into(),
        gid: 100_100,
        members: vec!["alice".into(), "bob".into()],
    }
}

/// What the fake agent answers.
fn answer(request: LocalRequest) -> LocalResponse {
    let LocalRequest::Lookup(lookup) = request else {
        return LocalResponse::error(LocalErrorKind::PermissionDenied, "lookups only");
    };
    match lookup {
        Lookup::UserByName(n) if n == "alice" => LocalResponse::User(alice()),
        Lookup::UserByUid(100_001) => LocalResponse::User(alice()),
        Lookup::GroupByName(n) if n == "ops" => LocalResponse::Group(ops()),
        Lookup::GroupByGid(100_100) => LocalResponse::Group(ops()),
        Lookup::GroupsOfUser(n) if n == "alice" => {
            LocalResponse::Groups(vec![100_001, 100_100, 100_200, 100_100, 100_300])
        }
        Lookup::UserByName(n) if n == "down" => {
            LocalResponse::error(LocalErrorKind::NoServerReachable, "no server")
        }
        _ => LocalResponse::NotFound,
    }
}

/// Starts the fake agent once per process and points the module at it.
fn fake_agent() {
    static SOCKET: OnceLock<PathBuf> = OnceLock::new();
    SOCKET.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("gh-nss-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                std::thread::spawn(move || {
                    let mut frames = FrameBuf::new(MAX_REQUEST_FRAME);
                    let mut chunk = [0u8; 512];
                    while let Ok(n) = stream.read(&mut chunk) {
                        if n == 0 {
                            return;
                        }
                        frames.push(&chunk[..n]);
                        while let Ok(Some(body)) = frames.next_body() {
                            let request = decode_request(&body).unwrap();
                            let _ = stream.write_all(&encode_response(&answer(request)));
                        }
                    }
                });
            }
        });
        std::env::set_var(guard::SOCKET_ENV, &path);
        path
    });
}

fn getpwnam(name: &CStr, buflen: usize) -> (nss_status, c_int, Option<libc::passwd>, Vec<u8>) {
    fake_agent();
    // SAFETY: an all-zero passwd is a valid value (NULL pointers, 0 ids).
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0u8; buflen];
    let mut errno = -1;
    // SAFETY: valid name, result, buffer of `buflen` bytes, and errno.
    let status = unsafe {
        _nss_gatehouse_getpwnam_r(
            name.as_ptr(),
            &mut pw,
            buf.as_mut_ptr().cast(),
            buflen,
            &mut errno,
        )
    };
    (
        status,
        errno,
        (status == NSS_STATUS_SUCCESS).then_some(pw),
        buf,
    )
}

fn text(ptr: *const c_char) -> String {
    // SAFETY: the module set it to a NUL-terminated string in our buffer, still alive.
    unsafe { CStr::from_ptr(ptr) }.to_str().unwrap().to_string()
}

#[test]
fn getpwnam_fills_the_buffer_or_says_erange_for_every_smaller_size() {
    let need = ["alice", "x", "Alice", "/home/alice", "/bin/sh"]
        .iter()
        .map(|s| s.len() + 1)
        .sum::<usize>();
    for len in 0..need {
        let (status, errno, _, _) = getpwnam(c"alice", len);
        assert_eq!(
            (status, errno),
            (NSS_STATUS_TRYAGAIN, libc::ERANGE),
            "{len} bytes"
        );
    }
    let (status, errno, pw, _buf) = getpwnam(c"alice", need);
    assert_eq!(
        (status, errno),
        (NSS_STATUS_SUCCESS, -1),
        "errno untouched on success"
    );
    let pw = pw.unwrap();
    assert_eq!((pw.pw_uid, pw.pw_gid), (100_001, 100_001));
    let fields = [
        pw.pw_name,
        pw.pw_passwd,
        pw.pw_gecos,
        pw.pw_dir,
        pw.pw_shell,
    ]
    .map(|p| text(p));
    assert_eq!(fields, ["alice", "x", "Alice", "/home/alice", "/bin/sh"]);
}

#[test]
fn unknown_and_unusable_names_are_not_found_and_no_answer_is_unavailable() {
    for name in [c"nobody-here", c"\xff\xfe"] {
        let (status, errno, _, _) = getpwnam(name, 1024);
        assert_eq!(
            (status, errno),
            (NSS_STATUS_NOTFOUND, libc::ENOENT),
            "{name:?}"
        );
    }
    let long = std::ffi::CString::new("u".repeat(256)).unwrap();
    assert_eq!(getpwnam(&long, 1024).0, NSS_STATUS_NOTFOUND);
    let (status, errno, _, _) = getpwnam(c"down", 1024);
    assert_eq!((status, errno), (NSS_STATUS_UNAVAIL, libc::ENOENT));
    let mut errno = 0;
    // SAFETY: a NULL name is refused before anything is read or written.
    let status = unsafe {
        _nss_gatehouse_getpwnam_r(
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
            &mut errno,
        )
    };
    assert_eq!((status, errno), (NSS_STATUS_NOTFOUND, libc::ENOENT));
}

#[test]
fn getpwuid_and_groups_by_name_and_gid() {
    fake_agent();
    // SAFETY: zeroed C structs are valid; buffers and errno are ours.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0u8; 256];
        let mut errno = 0;
        let status =
            _nss_gatehouse_getpwuid_r(100_001, &mut pw, buf.as_mut_ptr().cast(), 256, &mut errno);
        assert_eq!(status, NSS_STATUS_SUCCESS);
        assert_eq!(text(pw.pw_name), "alice");
        let status =
            _nss_gatehouse_getpwuid_r(4242, &mut pw, buf.as_mut_ptr().cast(), 256, &mut errno);
        assert_eq!((status, errno), (NSS_STATUS_NOTFOUND, libc::ENOENT));

        // A group needs its pointer array (3 pointers, aligned) and its strings.
        let need_max = 7 + 3 * 8 + 4 + 2 + 6 + 4;
        let mut ok_at = None;
        for len in 0..=need_max {
            let mut gr: libc::group = std::mem::zeroed();
            let mut buf = vec![0u8; len];
            let mut errno = 0;
            let status = _nss_gatehouse_getgrnam_r(
                c"ops".as_ptr(),
                &mut gr,
                buf.as_mut_ptr().cast(),
                len,
                &mut errno,
            );
            if status == NSS_STATUS_SUCCESS {
                ok_at.get_or_insert(len);
                assert_eq!((text(gr.gr_name), gr.gr_gid), ("ops".to_string(), 100_100));
                let members: Vec<String> = (0..2).map(|i| text(*gr.gr_mem.add(i))).collect();
                assert_eq!(members, ["alice", "bob"]);
                assert!((*gr.gr_mem.add(2)).is_null());
            } else {
                assert!(
                    ok_at.is_none(),
                    "a bigger buffer must not fail after a smaller worked"
                );
                assert_eq!(
                    (status, errno),
                    (NSS_STATUS_TRYAGAIN, libc::ERANGE),
                    "{len}"
                );
            }
        }
        assert!(ok_at.is_some());
        let mut gr: libc::group = std::mem::zeroed();
        let mut buf = vec![0u8; 256];
        let status =
            _nss_gatehouse_getgrgid_r(100_100, &mut gr, buf.as_mut_ptr().cast(), 256, &mut errno);
        assert_eq!(status, NSS_STATUS_SUCCESS);
        let status = _nss_gatehouse_getgrnam_r(
            c"wheel".as_ptr(),
            &mut gr,
            buf.as_mut_ptr().cast(),
            256,
            &mut errno,
        );
        assert_eq!((status, errno), (NSS_STATUS_NOTFOUND, libc::ENOENT));
    }
}

/// Runs initgroups_dyn the way glibc does: a malloc'd list already holding the primary gid.
fn initgroups(user: &CStr, size: c_long, limit: c_long) -> (nss_status, Vec<libc::gid_t>, c_long) {
    fake_agent();
    // SAFETY: a malloc'd array of `size` gids, one in use, as glibc hands it over.
    unsafe {
        let groups = libc::malloc(size as usize * 4).cast::<libc::gid_t>();
        *groups = 100_001;
        let (mut start, mut size, mut groupsp, mut errno) = (1, size, groups, 0);
        let status = _nss_gatehouse_initgroups_dyn(
            user.as_ptr(),
            100_001,
            &mut start,
            &mut size,
            &mut groupsp,
            limit,
            &mut errno,
        );
        let list = std::slice::from_raw_parts(groupsp, start as usize).to_vec();
        libc::free(groupsp.cast());
        (status, list, size)
    }
}

#[test]
fn initgroups_appends_new_gids_growing_the_list_within_the_limit() {
    let (status, list, size) = initgroups(c"alice", 1, 0);
    assert_eq!(status, NSS_STATUS_SUCCESS);
    // The primary gid is not repeated, nor is a duplicate.
    assert_eq!(list, [100_001, 100_100, 100_200, 100_300]);
    assert!(size >= 4);
    let (status, list, size) = initgroups(c"alice", 1, 2);
    assert_eq!(
        (status, list, size),
        (NSS_STATUS_SUCCESS, vec![100_001, 100_100], 2)
    );
    let (status, list, _) = initgroups(c"nobody-here", 1, 0);
    assert_eq!((status, list), (NSS_STATUS_NOTFOUND, vec![100_001]));
}

#[test]
fn enumeration_lists_nothing() {
    let mut errno = 0;
    assert_eq!(_nss_gatehouse_setpwent(0), NSS_STATUS_SUCCESS);
    // SAFETY: only errno is written.
    let status = unsafe {
        _nss_gatehouse_getpwent_r(std::ptr::null_mut(), std::ptr::null_mut(), 0, &mut errno)
    };
    assert_eq!((status, errno), (NSS_STATUS_NOTFOUND, libc::ENOENT));
    assert_eq!(_nss_gatehouse_endpwent(), NSS_STATUS_SUCCESS);
}

#[test]
fn in_a_bypassed_process_every_lookup_is_unavailable_at_once() {
    if std::env::var_os(guard::BYPASS_ENV).is_none() {
        // Run this test again in a child process with the bypass set (the environment is
        // process-wide, so other tests must not see it).
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "ffi::tests::in_a_bypassed_process_every_lookup_is_unavailable_at_once",
            ])
            .env(guard::BYPASS_ENV, "1")
            .status()
            .unwrap();
        assert!(status.success());
        return;
    }
    let (status, errno, _, _) = getpwnam(c"alice", 1024);
    assert_eq!((status, errno), (NSS_STATUS_UNAVAIL, libc::ENOENT));
}
