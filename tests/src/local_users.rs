//! Playing another local user in tests: run a program as `nobody`, and tell whether this test
//! process may (only root can switch uids or give files away). Tests that need it print a
//! SKIPPED line and return when not root; CI runs as root.

use crate::process::bin_path;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The uid tests play the other local user with: `nobody` on Linux.
pub const NOBODY: u32 = 65534;

/// True when this process runs as root. Otherwise prints why `test` is skipped.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIPPED {test}: needs root to act as another local user (uid {NOBODY})");
    }
    root
}

/// What a program run as another user did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the workspace binary `binary` with `args` as uid and gid `uid`, feeding `stdin`.
pub fn run_as(uid: u32, binary: &str, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(bin_path(binary))
        .args(args)
        .uid(uid)
        .gid(uid)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn as another user");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().expect("output");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
