//! Network namespaces for fault tests: a namespace of the test's own (its loopback up), run
//! servers in it (`ip netns exec`), move a test thread into it (`setns`), and firewall rules
//! in it (nftables) that drop only TCP to a port, as a firewall that lets probes through does.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables); CI (.ci/run) installs both. Where any is
//! missing, [`Netns::create`] prints why and returns `None`, and the test skips. The namespace
//! is named after the test's pid and a counter (helpers run tests in parallel) and deleted
//! when dropped, with its rules.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A network namespace this test made; deleted when dropped.
pub struct Netns {
    name: String,
}

impl Netns {
    /// A fresh namespace with its loopback up, or `None` (with the reason printed) where
    /// namespaces or nftables are not available.
    pub fn create(label: &str) -> Option<Netns> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        if cfg!(not(target_os = "linux")) {
            return skip("network namespaces are Linux only");
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return skip("not root (network namespaces and nftables need root)");
        }
        for tool in ["ip", "nft"] {
            let found = Command::new(tool).arg("-V").output().is_ok();
            if !found {
                return skip(&format!(
                    "`{tool}` is not installed (apt-get install iproute2 nftables)"
                ));
            }
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("gh-{label}-{}-{n}", std::process::id());
        if !run("ip", &["netns", "add", &name]) {
            return skip("`ip netns add` failed (no namespace support here)");
        }
        let ns = Netns { name };
        if !run("ip", &["-n", &ns.name, "link", "set", "lo", "up"]) {
            return skip("cannot bring up the namespace's loopback");
        }
        Some(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The wrapper that runs a program inside the namespace.
    pub fn wrapper(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }

    /// Drops every TCP packet to `port` inside the namespace (UDP still passes): a connect
    /// sees neither SYN-ACK nor reset, and an open connection goes silent.
    pub fn drop_tcp_to(&self, port: u16) {
        let port = port.to_string();
        let chain = "add chain inet gh_fault input \
                     { type filter hook input priority 0; policy accept; }";
        for rule in [
            &["add", "table", "inet", "gh_fault"][..],
            &[chain][..],
            &[
                "add", "rule", "inet", "gh_fault", "input", "tcp", "dport", &port, "drop",
            ][..],
        ] {
            let mut args = vec!["netns", "exec", &self.name, "nft"];
            args.extend_from_slice(rule);
            assert!(run("ip", &args), "nft refused {rule:?}");
        }
    }

    /// Moves the calling thread into the namespace: sockets it opens from now on live there.
    /// Run it on a thread of the test's own (a thread's namespace is its own).
    pub fn enter_this_thread(&self) {
        let path = format!("/var/run/netns/{}", self.name);
        let file = std::fs::File::open(&path).expect("open the namespace");
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a descriptor we hold open, for this thread only.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        }
        // `create` returns None elsewhere, so no namespace exists to enter.
        #[cfg(not(target_os = "linux"))]
        unreachable!("no network namespaces here: {file:?}");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        run("ip", &["netns", "del", &self.name]);
    }
}

fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

fn skip(why: &str) -> Option<Netns> {
    eprintln!("SKIPPED: this test needs a network namespace: {why}");
    None
}
