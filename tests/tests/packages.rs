//! The Debian packages (scripts/build-debs.sh): built from this build's binaries, installed
//! into a scratch root with `dpkg --root` (maintainer scripts chrootless, honouring
//! DPKG_ROOT: the service user and directories made there), each daemon's `--check` run from
//! its installed path and config in a private mount namespace chrooted into that root, then
//! purged with nothing of the packages left (scripts/check-debs.sh). The machine itself is
//! never changed. Needs root, dpkg-deb, unshare, chroot and systemd-sysusers: the script says
//! SKIPPED without them (.ci/run installs them).

use gatehouse_tests::agentd::module_path;
use gatehouse_tests::bin_path;
use std::path::Path;
use std::process::Command;

#[test]
fn each_package_installs_checks_from_its_installed_paths_and_purges_cleanly() {
    // Every binary and both modules, built for this profile.
    let bin_dir = bin_path("gatehouse-loadgen")
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(module_path("libpam_gatehouse.so").exists());
    assert!(module_path("libnss_gatehouse.so").exists());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/check-debs.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&bin_dir)
        .output()
        .expect("run scripts/check-debs.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    if stdout.contains("SKIPPED") {
        println!("{stdout}");
        return;
    }
    for line in [
        "installed: 4 packages, user gatehouse",
        "config and store OK (sequence 0)",
        "config and database OK",
        "config and node key OK",
        "debian packages: OK (installed, checked, purged; the machine untouched)",
    ] {
        assert!(
            stdout.contains(line),
            "{line:?} missing:\n{stdout}\n{stderr}"
        );
    }
}
