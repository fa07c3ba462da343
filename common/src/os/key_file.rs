//! A host's own node key file (64 hex digits), as the agent and a following replica read it
//! at start: private to the daemon's user (see [`super::secure_file`]), small, and a key that
//! is not a published example.
//!
//! Not pure: reads the file. Called once at start by the agent daemon and the replica.

use super::secure_file::{read_private_file, InsecurePath};
use crate::nodekeys::{NodeKey, NodeKeyParseError};
use crate::weak_keys::WeakKey;
use std::path::Path;

/// Largest node key file read, bytes (4 KiB). Why: the key is 64 hex digits and a newline; a
/// bigger file is the wrong file, and is refused without reading it all.
pub const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Why a node key file was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error(transparent)]
    Insecure(#[from] InsecurePath),
    #[error("node key file {path}: {error} (expected 64 hex digits)")]
    Parse {
        path: String,
        error: NodeKeyParseError,
    },
    #[error("node key file {path}: {weak}; generate a new key (gatehouse-admin host remove, then host add)")]
    Weak { path: String, weak: WeakKey },
}

/// Reads, checks and parses the node key file at `path`.
pub fn read_node_key_file(path: &Path) -> Result<NodeKey, KeyFileError> {
    let text = read_private_file(path, "node key file", MAX_KEY_FILE_BYTES)?;
    let name = || path.display().to_string();
    let key = NodeKey::from_hex(&text).map_err(|error| KeyFileError::Parse {
        path: name(),
        error,
    })?;
    match key.weakness() {
        Some(weak) => Err(KeyFileError::Weak { path: name(), weak }),
        None => Ok(key),
    }
}
