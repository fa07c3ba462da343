//! The hasher for the compiled policy's name maps (hosts, addresses, users): FNV-1a, 64-bit,
//! and the persistent map type built on it. Pure.
//!
//! Every authorize looks names up in these maps, and std's default SipHash was about 1.6 % of
//! a replica's CPU per request. SipHash's key protects a table whose *keys* an attacker
//! chooses; here the keys are the administrator's (the security database), and the names an
//! agent sends are only looked up, which cannot lengthen any chain. So an unkeyed hash is safe
//! and cheaper for names of a few to a few dozen bytes. This holds only while host and user
//! names come from the administrator: if hosts ever registered themselves, go back to SipHash.

use std::hash::{BuildHasherDefault, Hasher};

/// The persistent map of the compiled policy and the node-key map: a hash array mapped trie
/// (`imbl`) with FNV-hashed keys and `Arc`-shared nodes. A clone is a reference count; an
/// update copies the path from the root to one entry (O(log n), a few small nodes), so a new
/// version shares everything else with the old one. Lookups are a few pointer steps.
pub type PersistentMap<K, V> =
    imbl::GenericHashMap<K, V, BuildHasherDefault<NameHasher>, imbl::shared_ptr::DefaultSharedPtr>;

/// FNV-1a over the bytes written (offset basis and prime from the FNV specification).
pub struct NameHasher(u64);

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Default for NameHasher {
    fn default() -> Self {
        NameHasher(FNV_OFFSET_BASIS)
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_fnv1a_vectors() {
        for (input, want) in [
            (&b""[..], 0xcbf2_9ce4_8422_2325_u64),
            (b"a", 0xaf63_dc4c_8601_ec8c),
            (b"foobar", 0x8594_4171_f739_67e8),
        ] {
            let mut h = NameHasher::default();
            h.write(input);
            assert_eq!(h.finish(), want, "{input:?}");
        }
    }

    #[test]
    fn a_name_map_finds_what_was_put_in() {
        let mut m: PersistentMap<std::sync::Arc<str>, u32> = PersistentMap::default();
        m.insert("web1".into(), 1);
        m.insert("web2".into(), 2);
        assert_eq!(m.get("web2"), Some(&2));
        assert_eq!(m.get("web3"), None);
    }
}
