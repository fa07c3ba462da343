//! Process settings a load generator needs: the open-file limit raised to its hard maximum
//! (thousands of agent sockets), and pinning to one CPU (so a benchmark can give the server
//! the other core).
//!
//! Not pure: system calls on the current process. Called at the start of `run`, `demo` and
//! `redis`, before any worker thread is spawned (threads inherit the affinity).

use std::io;

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a pointer to a live rlimit struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(limit.rlim_cur)
}

/// Runs the calling thread (and threads it spawns later) on CPU `cpu` only (Linux).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond the CPU set size"),
        ));
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET is bounds-checked above;
    // sched_setaffinity reads the set we pass with its exact size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Pinning is a benchmark aid (`--cpu`): where the kernel has no `sched_setaffinity` (illumos
/// has processor binding instead: run the load generator under `pbind -b CPU`), asking for
/// it is an error that says so.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("pinning to CPU {cpu} needs Linux; bind the process with the system's own tool (pbind on illumos)"),
    ))
}

/// Sockets a run needs: each agent holds one connection, occasionally two while a staggered
/// attempt races (default factor 2), plus this much for everything else (64).
pub const SPARE_DESCRIPTORS: u64 = 64;

/// Checks that `agents` connections fit in the open-file limit; the message says what to do.
pub fn check_descriptors(agents: usize, limit: u64) -> Result<(), String> {
    let need = agents as u64 * 2 + SPARE_DESCRIPTORS;
    if need > limit {
        return Err(format!(
            "{agents} agents need up to {need} open files but the limit is {limit}; \
             raise it (ulimit -Hn) or use fewer agents"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_check_counts_two_per_agent() {
        assert_eq!(check_descriptors(100, 264), Ok(()));
        let err = check_descriptors(100, 263).unwrap_err();
        assert!(err.contains("need up to 264"), "{err}");
    }
}
