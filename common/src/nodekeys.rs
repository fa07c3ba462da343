//! Host → node key, held in lock-free memory. Pure data structure (no I/O).
//!
//! The BoKS hotfix in the seeds: receive bridges took a semaphore on every node-key lookup, and
//! with very many agents the lock traffic caused timeouts and reconnect storms. Here the map is
//! an immutable snapshot behind `arc_swap::ArcSwap`: a lookup is an atomic load plus a hash probe
//! and never takes a lock; an update builds a new map and publishes it in one store. A caller
//! that needs several lookups to agree (one request) loads the snapshot once and keeps it.

use crate::policy::PersistentMap;
use arc_swap::ArcSwap;
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroize;

/// Length of a node key, bytes.
pub const NODE_KEY_LEN: usize = 32;

/// A host's node key: 32 random bytes shared by the host's agent and the servers.
/// `Debug` never prints the key; every copy is wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NodeKey(pub [u8; NODE_KEY_LEN]);

impl Drop for NodeKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for NodeKey {}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeKey(<redacted>)")
    }
}

/// Why a node key's text form did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeKeyParseError {
    #[error("expected {expected} hex digits, found {found}")]
    WrongLength { expected: usize, found: usize },
    #[error("not a hex digit at position {0}")]
    NotHex(usize),
}

impl NodeKey {
    /// Generates a fresh key from the given RNG (the caller passes a CSPRNG such as OsRng).
    pub fn generate(rng: &mut impl rand::RngCore) -> Self {
        let mut key = [0u8; NODE_KEY_LEN];
        rng.fill_bytes(&mut key);
        NodeKey(key)
    }

    /// Parses the 64-hex-digit text form (surrounding whitespace allowed, as in key files).
    pub fn from_hex(text: &str) -> Result<Self, NodeKeyParseError> {
        let text = text.trim();
        if text.len() != NODE_KEY_LEN * 2 {
            return Err(NodeKeyParseError::WrongLength {
                expected: NODE_KEY_LEN * 2,
                found: text.len(),
            });
        }
        let mut key = [0u8; NODE_KEY_LEN];
        let bytes = text.as_bytes();
        for (i, out) in key.iter_mut().enumerate() {
            let hi = hex_value(bytes[2 * i]).ok_or(NodeKeyParseError::NotHex(2 * i))?;
            let lo = hex_value(bytes[2 * i + 1]).ok_or(NodeKeyParseError::NotHex(2 * i + 1))?;
            *out = (hi << 4) | lo;
        }
        Ok(NodeKey(key))
    }

    /// The 64-hex-digit text form (lower case).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A host → key map: one published version. Persistent (a hash array mapped trie): a clone
/// costs a reference count and a one-host update copies only the path to that host (O(log n)),
/// so a new version shares everything unchanged with the one before, and publishing a change
/// at a million hosts costs microseconds, not a copy of the whole map.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NodeKeyMap(PersistentMap<Arc<str>, NodeKey>);

impl NodeKeyMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key of `host`.
    pub fn get(&self, host: &str) -> Option<&NodeKey> {
        self.0.get(host)
    }

    /// A mutable reference to the key of `host` (copies the path to it if shared).
    pub fn get_mut(&mut self, host: &str) -> Option<&mut NodeKey> {
        self.0.get_mut(host)
    }

    /// Whether `host` has a key.
    pub fn contains_key(&self, host: &str) -> bool {
        self.0.contains_key(host)
    }

    /// Sets the key of `host`; returns the one it replaces.
    pub fn insert(&mut self, host: Arc<str>, key: NodeKey) -> Option<NodeKey> {
        self.0.insert(host, key)
    }

    /// Removes `host`'s key.
    pub fn remove(&mut self, host: &str) -> Option<NodeKey> {
        self.0.remove(host)
    }

    /// Hosts in the map.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no host has a key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every host and its key, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &NodeKey)> {
        self.0.iter()
    }

    /// True when both are the same version (shared root): an O(1) "unchanged" check.
    pub fn ptr_eq(&self, other: &NodeKeyMap) -> bool {
        self.0.ptr_eq(&other.0)
    }
}

impl fmt::Debug for NodeKeyMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl<N: Into<Arc<str>>> FromIterator<(N, NodeKey)> for NodeKeyMap {
    fn from_iter<I: IntoIterator<Item = (N, NodeKey)>>(iter: I) -> Self {
        NodeKeyMap(iter.into_iter().map(|(n, k)| (n.into(), k)).collect())
    }
}

impl<N: Into<Arc<str>>, const LEN: usize> From<[(N, NodeKey); LEN]> for NodeKeyMap {
    fn from(entries: [(N, NodeKey); LEN]) -> Self {
        entries.into_iter().collect()
    }
}

/// The lock-free store: readers `load()` a snapshot, writers `publish()` a new one.
#[derive(Debug, Default)]
pub struct NodeKeyStore {
    current: ArcSwap<NodeKeyMap>,
}

impl NodeKeyStore {
    /// A store holding `keys`.
    pub fn new(keys: NodeKeyMap) -> Self {
        NodeKeyStore {
            current: ArcSwap::from_pointee(keys),
        }
    }

    /// The current snapshot. Cheap and lock-free; hold it for as long as answers must agree.
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<NodeKeyMap>> {
        self.current.load()
    }

    /// One lookup against the current snapshot, lock-free.
    pub fn lookup(&self, host: &str) -> Option<NodeKey> {
        self.current.load().get(host).cloned()
    }

    /// Replaces the whole map; readers see the old or the new map, never a mix. Publishing the
    /// version already published (a change that touched no host) changes nothing, so readers
    /// keep the snapshot pointer they have.
    pub fn publish(&self, keys: NodeKeyMap) {
        if self.current.load().ptr_eq(&keys) {
            return;
        }
        self.current.store(Arc::new(keys));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_bad_text() {
        let key = NodeKey([0xab; NODE_KEY_LEN]);
        assert_eq!(NodeKey::from_hex(&key.to_hex()).unwrap(), key);
        assert_eq!(
            NodeKey::from_hex("abc"),
            Err(NodeKeyParseError::WrongLength {
                expected: 64,
                found: 3
            })
        );
        let mut bad = key.to_hex();
        bad.replace_range(10..11, "g");
        assert_eq!(NodeKey::from_hex(&bad), Err(NodeKeyParseError::NotHex(10)));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let text = format!("{:?}", NodeKey([7; NODE_KEY_LEN]));
        assert!(!text.contains('7'), "{text}");
    }

    #[test]
    fn a_held_snapshot_is_unchanged_by_a_publish() {
        let store = NodeKeyStore::new(NodeKeyMap::from([("a", NodeKey([1; 32]))]));
        let before = store.snapshot();
        store.publish(NodeKeyMap::from([("b", NodeKey([2; 32]))]));
        assert!(before.contains_key("a"));
        assert_eq!(store.lookup("a"), None);
        assert_eq!(store.lookup("b"), Some(NodeKey([2; 32])));
    }
}
