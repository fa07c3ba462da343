//! The master's identity key file: an Ed25519 secret key (64 hex digits and a newline) that
//! no replica holds; replicas pin its public key (docs/SECURITY.md, "The replication link and
//! the master's identity").
//!
//! Not pure: files. Called by `gatehouse-master` at start (the key is created on the first
//! start of a master that replicates, or of a promoted replica), by `--generate-key` (to make
//! a standby's key ahead of a promotion, so replicas can pin it in advance), and by
//! `--public-key`. The file is created with mode 0600 and never overwritten; a key file that
//! group or others can read is refused.

use gatehouse_common::os::secure_file::{
    check_private_file, create_private_file, read_private_file, Existing, InsecurePath,
};
use gatehouse_common::repl::MasterSecretKey;
use std::io::Write;
use std::path::Path;

/// Largest master key file read, bytes: 64 hex digits, a newline and room for a CR.
const MAX_MASTER_KEY_FILE_BYTES: u64 = 80;

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("master key {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("master key {path}: {message}")]
    Invalid { path: String, message: String },
    /// Readable by others, owned by another uid or in a directory others can write: the same
    /// rules as every secret file (`os::secure_file`), with the fix in the message.
    #[error(transparent)]
    Insecure(#[from] InsecurePath),
}

/// Loads the key at `path`; `None` if the file does not exist.
pub fn load(path: &Path) -> Result<Option<MasterSecretKey>, IdentityError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(IdentityError::Io {
                path: path.display().to_string(),
                source,
            })
        }
    }
    let text = read_private_file(path, "master key", MAX_MASTER_KEY_FILE_BYTES)?;
    MasterSecretKey::from_hex(&text)
        .map(Some)
        .map_err(|e| IdentityError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

/// Creates a new key at `path` (mode 0600; fails if the file exists) and returns it.
pub fn create(path: &Path) -> Result<MasterSecretKey, IdentityError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        gatehouse_common::os::secure_file::check_trusted_dir(dir, "master key directory")?;
    }
    let key = MasterSecretKey::generate(&mut rand::rngs::OsRng);
    let io = |source| IdentityError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = create_private_file(path, Existing::Refuse).map_err(io)?;
    let text = zeroize::Zeroizing::new(format!("{}\n", key.to_hex()));
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    check_private_file(path, "master key")?;
    Ok(key)
}

/// Loads the key at `path`, creating it first if it does not exist (logged).
pub fn load_or_create(path: &Path) -> Result<MasterSecretKey, IdentityError> {
    if let Some(key) = load(path)? {
        return Ok(key);
    }
    let key = create(path)?;
    log::warn!(
        "created the master key {} (public key {}): pin the public key in every replica's config",
        path.display(),
        key.public()
    );
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gatehouse-identity-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("master.key")
    }

    #[test]
    fn a_created_key_is_0600_loads_again_and_is_never_overwritten() {
        let path = scratch("create");
        let key = gatehouse_common::os::with_umask(0o022, || load_or_create(&path)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create(&path).unwrap().public(), key.public());
        assert!(matches!(create(&path), Err(IdentityError::Io { .. })));
    }

    #[test]
    fn a_key_others_can_read_or_garbage_is_refused() {
        let path = scratch("exposed");
        create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::write(&path, "not a key\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(load(&path), Err(IdentityError::Invalid { .. })));
        assert!(load(&path.with_extension("none")).unwrap().is_none());
    }
}
