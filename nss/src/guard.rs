//! When the module must not ask the agent: in the agent itself (its own lookups would ask
//! itself and wait on itself), and inside a lookup already under way on this thread (a
//! lookup that somehow triggers another must not recurse). Either way the module answers
//! "unavailable" at once and glibc moves on to the next source.
//!
//! The agent marks its process with [`BYPASS_ENV`] at start, as SSSD's daemons do with
//! `_SSS_LOOPS`. Not pure: reads the environment and a thread-local flag.

use std::cell::Cell;

/// Set (to anything) in a process whose lookups must never reach the agent.
pub const BYPASS_ENV: &str = "GATEHOUSE_NSS_BYPASS";

/// Where the agent's socket is, for tests and non-default installs. Ignored in setuid and
/// setgid programs (AT_SECURE), so a user cannot point `su` at an agent of their own.
pub const SOCKET_ENV: &str = "GATEHOUSE_AGENT_SOCKET";

thread_local! {
    static IN_LOOKUP: Cell<bool> = const { Cell::new(false) };
}

/// A lookup in progress on this thread; dropping it ends it.
pub struct Entered(());

impl Drop for Entered {
    fn drop(&mut self) {
        IN_LOOKUP.with(|f| f.set(false));
    }
}

/// Starts a lookup, or `None` when this process or thread must not ask the agent.
pub fn enter() -> Option<Entered> {
    if std::env::var_os(BYPASS_ENV).is_some() {
        return None;
    }
    if IN_LOOKUP.with(|f| f.replace(true)) {
        return None;
    }
    Some(Entered(()))
}

/// The agent's socket: [`SOCKET_ENV`] unless the process runs with elevated privileges, else
/// the default.
pub fn socket_path() -> std::path::PathBuf {
    match std::env::var_os(SOCKET_ENV) {
        Some(path) if !elevated() && !path.is_empty() => path.into(),
        _ => gatehouse_local::DEFAULT_SOCKET_PATH.into(),
    }
}

/// Whether this process runs with privileges its invoker lacks (setuid, setgid, file
/// capabilities): AT_SECURE, as glibc's own `secure_getenv` decides.
#[cfg(target_os = "linux")]
fn elevated() -> bool {
    // SAFETY: getauxval has no preconditions; AT_SECURE is 1 in setuid/setgid/capability
    // programs.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// Elsewhere the override is never trusted. (The entry points are glibc's NSS interface;
/// the crate builds on other systems only so the workspace checks there.)
#[cfg(not(target_os = "linux"))]
fn elevated() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nested_lookup_on_the_same_thread_is_refused_until_the_first_ends() {
        let first = enter().expect("first lookup");
        assert!(enter().is_none(), "nested lookup must not recurse");
        // Another thread is independent.
        assert!(std::thread::spawn(|| enter().is_some()).join().unwrap());
        drop(first);
        assert!(enter().is_some());
    }
}
