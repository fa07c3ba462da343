//! Login-path benchmarks (docs/BENCHMARKS.md, "Logins"): getpwnam through the real NSS module
//! against a real agent and replica, answered from the agent's cache and from the replica,
//! beside glibc's own getpwnam_r of a local account (nss_files) on the same machine; and a
//! full PAM auth + account through pamtester under pam_wrapper, beside the same pamtester run
//! with pam_permit only.
//!
//! `cargo bench -p gatehouse-tests --bench login` (release build). Every loop is bounded by a
//! count; pamtester parts are skipped when it is not installed.

use gatehouse_tests::agentd::{have_tools, module_path, Agentd};
use gatehouse_tests::*;
use std::ffi::{c_char, c_int, c_void, CString};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Lookups per NSS measurement.
const LOOKUPS: usize = 20_000;
/// pamtester runs per PAM measurement.
const PAM_RUNS: usize = 100;

type GetPwNam =
    unsafe extern "C" fn(*const c_char, *mut libc::passwd, *mut c_char, usize, *mut c_int) -> c_int;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let total: Duration = samples.iter().sum();
    println!(
        "{what:<48} {:>9.0} calls/s  p50 {:>8.1} µs  p99 {:>8.1} µs",
        samples.len() as f64 / total.as_secs_f64(),
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
    );
}

fn time_lookups(mut call: impl FnMut() -> bool) -> Vec<Duration> {
    (0..LOOKUPS)
        .map(|_| {
            let start = Instant::now();
            assert!(call(), "lookup failed");
            start.elapsed()
        })
        .collect()
}

fn nss_module() -> GetPwNam {
    let path = CString::new(module_path("libnss_gatehouse.so").to_str().unwrap()).unwrap();
    // SAFETY: dlopen/dlsym of our own module; the symbol has the declared signature.
    unsafe {
        let handle = libc::dlopen(path.as_ptr(), libc::RTLD_NOW);
        assert!(!handle.is_null(), "dlopen failed");
        let symbol: *mut c_void = libc::dlsym(handle, c"_nss_gatehouse_getpwnam_r".as_ptr());
        assert!(!symbol.is_null());
        std::mem::transmute::<*mut c_void, GetPwNam>(symbol)
    }
}

fn bench_nss() {
    let (db, hosts) = test_database(1);
    let replica = start_replica(&db, "()");
    let web1 = hosts.last().unwrap();
    let getpwnam = nss_module();
    let mut buf = vec![0u8; 1024];
    let mut lookup = |name: &std::ffi::CStr| {
        // SAFETY: zeroed passwd, our buffer, our errno.
        unsafe {
            let mut pw: libc::passwd = std::mem::zeroed();
            let mut errno = 0;
            getpwnam(
                name.as_ptr(),
                &mut pw,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut errno,
            ) == 1
        }
    };
    for (label, extra) in [
        ("getpwnam(alice), NSS module, agent cache hit", ""),
        (
            "getpwnam(alice), NSS module, agent asks replica",
            "cache: (identity_ttl_s: 0)",
        ),
    ] {
        let agent = Agentd::start(web1, &[replica.addr], extra);
        std::env::set_var("GATEHOUSE_AGENT_SOCKET", &agent.socket);
        assert!(lookup(c"alice"), "{}", agent.log());
        report(label, time_lookups(|| lookup(c"alice")));
    }
    let mut pw_buf = vec![0u8; 1024];
    report(
        "getpwnam_r(root), glibc, nsswitch files",
        time_lookups(|| {
            // SAFETY: zeroed passwd, our buffer, an out pointer.
            unsafe {
                let mut pw: libc::passwd = std::mem::zeroed();
                let mut out: *mut libc::passwd = std::ptr::null_mut();
                libc::getpwnam_r(
                    c"root".as_ptr(),
                    &mut pw,
                    pw_buf.as_mut_ptr().cast(),
                    pw_buf.len(),
                    &mut out,
                ) == 0
                    && !out.is_null()
            }
        }),
    );
}

fn pamtester_run(dir: &std::path::Path, service: &str) -> Duration {
    let start = Instant::now();
    let mut child = Command::new("/usr/bin/pamtester")
        .args([
            "-I",
            "rhost=10.0.0.1",
            service,
            "alice",
            "authenticate",
            "acct_mgmt",
        ])
        .env("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so")
        .env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{ALICE_PASSWORD}\n").as_bytes());
    assert!(
        child.wait().unwrap().success(),
        "pamtester {service} failed"
    );
    start.elapsed()
}

fn bench_pam() {
    if !have_tools(
        "PAM benchmark",
        &[
            "/usr/bin/pamtester",
            "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so",
        ],
        "pamtester libpam-wrapper",
    ) {
        return;
    }
    let (db, hosts) = test_database(1);
    let replica = start_replica(&db, "()");
    let agent = Agentd::start(hosts.last().unwrap(), &[replica.addr], "");
    let dir = TestDir::new("pam-bench");
    let module = module_path("libpam_gatehouse.so");
    let socket = agent.socket.display();
    std::fs::write(
        dir.path().join("sshd"),
        format!(
            "auth required {m} socket={socket}\naccount required {m} socket={socket}\n",
            m = module.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("permit"),
        "auth required pam_permit.so\naccount required pam_permit.so\n",
    )
    .unwrap();
    for (label, service) in [
        ("pamtester auth+account, pam_gatehouse", "sshd"),
        ("pamtester auth+account, pam_permit only", "permit"),
    ] {
        let samples = (0..PAM_RUNS)
            .map(|_| pamtester_run(dir.path(), service))
            .collect();
        report(label, samples);
    }
}

fn main() {
    println!(
        "{} lookups per NSS line, {} pamtester runs per PAM line",
        LOOKUPS, PAM_RUNS
    );
    bench_nss();
    bench_pam();
}
