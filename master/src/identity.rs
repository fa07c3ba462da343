//! The master's identity key file: an Ed25519 secret key (64 hex digits and a newline) that
//! no replica holds; replicas pin its public key (docs/SECURITY.md, "The replication link and
//! the master's identity").
//!
//! Not pure: files. Called by `gatehouse-master` at start (the key is created on the first
//! start of a master that replicates, or of a promoted replica), by `--generate-key` (to make
//! a standby's key ahead of a promotion, so replicas can pin it in advance), and by
//! `--public-key`. The file is created with mode 0600 and never overwritten; a key file that
//! group or others can read is refused.

use gatehouse_common::repl::MasterSecretKey;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

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
    #[error("master key {path} is readable by group or others (mode {mode:03o}); it signs for this master: chmod 600 {path}")]
    Exposed { path: String, mode: u32 },
}

/// Loads the key at `path`; `None` if the file does not exist.
pub fn load(path: &Path) -> Result<Option<MasterSecretKey>, IdentityError> {
    let name = path.display().to_string();
    let io = |source| IdentityError::Io {
        path: name.clone(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::Exposed { path: name, mode });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    MasterSecretKey::from_hex(&text)
        .map(Some)
        .map_err(|e| IdentityError::Invalid {
            path: name,
            message: e.to_string(),
        })
}

/// Creates a new key at `path` (mode 0600; fails if the file exists) and returns it.
pub fn create(path: &Path) -> Result<MasterSecretKey, IdentityError> {
    let key = MasterSecretKey::generate(&mut rand::rngs::OsRng);
    let io = |source| IdentityError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    // The mode above is filtered by the umask; this makes it exactly 0600 whatever it was.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    file.write_all(format!("{}\n", key.to_hex()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io)?;
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
