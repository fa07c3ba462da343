//! Tests for the secret-file rules, on real files in a scratch directory. The ownership cases
//! need root (to give a file to another uid) and say so when skipped.

use super::*;
use std::os::unix::fs::PermissionsExt;

/// A scratch directory (mode 0700) removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "gatehouse-secure-{label}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        chmod(&path, 0o700);
        Scratch(path)
    }

    fn file(&self, name: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, "secret").unwrap();
        chmod(&path, mode);
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn is_root() -> bool {
    effective_uid() == 0
}

#[test]
fn a_private_file_passes_and_any_bit_for_group_or_others_is_refused() {
    let dir = Scratch::new("modes");
    check_private_file(&dir.file("ok", 0o600), "key").unwrap();
    check_private_file(&dir.file("ro", 0o400), "key").unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660, 0o602, 0o610] {
        let path = dir.file(&format!("m{mode:o}"), mode);
        let err = check_private_file(&path, "key").unwrap_err();
        assert!(
            matches!(err, InsecurePath::OpenToOthers { mode: m, .. } if m == mode),
            "{mode:o}: {err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("chmod 600 {}", path.display())),
            "{text}"
        );
    }
}

#[test]
fn a_link_is_judged_by_its_target() {
    let dir = Scratch::new("link");
    let open = dir.file("open", 0o644);
    let link = dir.0.join("link");
    std::os::unix::fs::symlink(&open, &link).unwrap();
    assert!(check_private_file(&link, "key").is_err());
    chmod(&open, 0o600);
    check_private_file(&link, "key").unwrap();
}

#[test]
fn a_directory_is_not_a_secret_file() {
    let dir = Scratch::new("notfile");
    let sub = dir.0.join("sub");
    std::fs::create_dir(&sub).unwrap();
    chmod(&sub, 0o700);
    assert!(matches!(
        check_private_file(&sub, "store"),
        Err(InsecurePath::NotAFile { .. })
    ));
}

#[test]
fn a_writable_directory_is_refused_but_a_sticky_one_above_it_is_not() {
    let dir = Scratch::new("dirs");
    let file = dir.file("key", 0o600);
    chmod(&dir.0, 0o770);
    let err = check_private_file(&file, "key").unwrap_err();
    assert!(matches!(err, InsecurePath::DirWritable { .. }), "{err}");
    assert!(err.to_string().contains("chmod go-w"), "{err}");
    // The file's own directory must not be writable by others even when sticky: the
    // rename-protection of the sticky bit does not stop others creating files in it.
    chmod(&dir.0, 0o1777);
    assert!(check_private_file(&file, "key").is_err());
    // A sticky world-writable directory above (as /tmp) is fine.
    let inner = dir.0.join("inner");
    std::fs::create_dir(&inner).unwrap();
    chmod(&inner, 0o755);
    std::fs::write(inner.join("key"), "k").unwrap();
    chmod(&inner.join("key"), 0o600);
    check_private_file(&inner.join("key"), "key").unwrap();
    // ... but not without the sticky bit.
    chmod(&dir.0, 0o777);
    assert!(check_private_file(&inner.join("key"), "key").is_err());
    chmod(&dir.0, 0o700);
}

#[test]
fn files_owned_by_another_uid_are_refused() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to give a file to another uid");
        return;
    }
    let dir = Scratch::new("owner");
    let file = dir.file("key", 0o600);
    std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
    let err = check_private_file(&file, "key").unwrap_err();
    assert!(
        matches!(err, InsecurePath::FileOwner { owner: 65534, .. }),
        "{err}"
    );
    std::os::unix::fs::chown(&file, Some(0), None).unwrap();
    std::os::unix::fs::chown(&dir.0, Some(65534), None).unwrap();
    let err = check_private_file(&file, "key").unwrap_err();
    assert!(
        matches!(err, InsecurePath::DirOwner { owner: 65534, .. }),
        "{err}"
    );
}

#[test]
fn created_files_are_private_whatever_the_umask() {
    let dir = Scratch::new("create");
    let path = dir.0.join("new");
    crate::os::with_umask(0o000, || {
        let mut file = create_private_file(&path, Existing::Refuse).unwrap();
        file.write_all(b"k").unwrap();
    });
    assert_eq!(mode_of(&path), 0o600);
    assert!(create_private_file(&path, Existing::Refuse).is_err());
    // Replacing an existing, too-open file makes it private before anything is written.
    chmod(&path, 0o644);
    drop(create_private_file(&path, Existing::Replace).unwrap());
    assert_eq!(mode_of(&path), 0o600);
    let status = dir.0.join("status.ron");
    crate::os::with_umask(0o000, || write_private_atomically(&status, b"(state: x)")).unwrap();
    assert_eq!(mode_of(&status), 0o600);
    assert_eq!(std::fs::read_to_string(&status).unwrap(), "(state: x)");
    let open = dir.file("open", 0o666);
    restrict_to_owner(&open).unwrap();
    assert_eq!(mode_of(&open), 0o600);
    restrict_to_owner(&dir.0.join("missing")).unwrap();
}

#[test]
fn a_secret_file_is_read_only_when_private_and_small() {
    let dir = Scratch::new("read");
    let key = dir.file("key", 0o600);
    assert_eq!(
        read_private_file(&key, "key", 100).unwrap().as_str(),
        "secret"
    );
    assert!(read_private_file(&key, "key", 3).is_err());
    chmod(&key, 0o644);
    assert!(matches!(
        read_private_file(&key, "key", 100),
        Err(InsecurePath::OpenToOthers { .. })
    ));
    assert!(!check_private_file_if_present(&dir.0.join("none"), "key").unwrap());
}
