//! Playing another local user in tests: run a program as `nobody`, and tell whether this test
//! process may (only root can switch uids or give files away). Tests that need it print a
//! SKIPPED line and return when not root; CI runs as root.

use crate::process::{bin_path, run_with_stdin, Finished};
use std::os::unix::process::CommandExt;
use std::process::Command;

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

/// Runs the workspace binary `binary` with `args` as uid and gid `uid`, feeding `stdin`.
pub fn run_as(uid: u32, binary: &str, args: &[&str], stdin: &str) -> Finished {
    let mut command = Command::new(bin_path(binary));
    command.args(args).uid(uid).gid(uid);
    run_with_stdin(&mut command, stdin)
}
